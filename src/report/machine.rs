//! What machine a report was written on: the OS and its version, and the
//! host name only when the user allows it (it can identify a person).
//! Plain files are read, so this works without cfg: where a file does not
//! exist the next source is tried.

use std::path::Path;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineInfo {
    /// Human name with version, e.g. "Debian GNU/Linux 12 (bookworm)".
    pub os: String,
    /// Version alone, e.g. "12", when known.
    pub os_version: Option<String>,
    /// Kernel release, when known.
    pub kernel: Option<String>,
    /// CPU architecture as Rust names it (x86_64, aarch64).
    pub arch: String,
    pub hostname: Option<String>,
}

/// Reads `KEY=value` lines of an os-release file (values may be quoted).
pub fn parse_os_release(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.replace("\\\"", "\"")))
        })
        .collect()
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Builds machine info from an os-release text (Linux) or, without one,
/// from the platform's name.
pub fn from_os_release(os_release: Option<&str>, kernel: Option<String>) -> MachineInfo {
    let fields = os_release.map(parse_os_release).unwrap_or_default();
    let get = |k: &str| {
        fields
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let os = get("PRETTY_NAME")
        .or_else(|| match (get("NAME"), get("VERSION")) {
            (Some(n), Some(v)) => Some(format!("{n} {v}")),
            (n, _) => n,
        })
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    MachineInfo {
        os,
        os_version: get("VERSION_ID"),
        kernel,
        arch: std::env::consts::ARCH.to_string(),
        hostname: None,
    }
}

/// This machine. The host name is read only when `include_hostname`.
pub fn detect(include_hostname: bool) -> MachineInfo {
    let os_release = read_trimmed(Path::new("/etc/os-release"))
        .or_else(|| read_trimmed(Path::new("/usr/lib/os-release")));
    let kernel = read_trimmed(Path::new("/proc/sys/kernel/osrelease"));
    let mut m = from_os_release(os_release.as_deref(), kernel);
    if include_hostname {
        m.hostname = read_trimmed(Path::new("/proc/sys/kernel/hostname"))
            .or_else(|| read_trimmed(Path::new("/etc/hostname")))
            .or_else(|| std::env::var("COMPUTERNAME").ok())
            .or_else(|| std::env::var("HOSTNAME").ok());
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_os_release_gives_name_and_version() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n# comment\nID=debian\n";
        let m = from_os_release(Some(text), Some("6.1.0".into()));
        assert_eq!(m.os, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(m.os_version.as_deref(), Some("12"));
        assert_eq!(m.kernel.as_deref(), Some("6.1.0"));
        assert_eq!(m.hostname, None);
    }

    #[test]
    fn without_pretty_name_name_and_version_are_joined() {
        let m = from_os_release(Some("NAME='Arch'\nVERSION=rolling"), None);
        assert_eq!(m.os, "Arch rolling");
        let m = from_os_release(None, None);
        assert_eq!(m.os, std::env::consts::OS);
    }

    #[test]
    fn hostname_only_when_allowed() {
        assert_eq!(detect(false).hostname, None);
        if Path::new("/proc/sys/kernel/hostname").exists() {
            assert!(detect(true).hostname.is_some());
        }
    }
}
