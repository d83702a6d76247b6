//! What the guard accepts as a program to block: an absolute path of at
//! most 4096 bytes, in the one form the OS reports executables (no `.`,
//! `..`, doubled slashes), no NUL, newline or other control characters; a
//! regular, executable file (not a symlink, folder, FIFO or device); and
//! not one the system cannot live without (the guard itself, init, the
//! tools the guard runs).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::guard::api::Refusal;

/// Longest path the guard accepts, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct Refused {
    pub reason: Refusal,
    pub detail: String,
}

fn refused(reason: Refusal, detail: impl Into<String>) -> Refused {
    Refused {
        reason,
        detail: detail.into(),
    }
}

fn shown(p: &Path) -> String {
    crate::escape::for_display(&crate::escape::os_lossless(p.as_os_str()))
}

/// The path's form alone (no file system access).
pub fn exe_path(p: &Path) -> Result<(), Refused> {
    let bytes = crate::pathser::path_bytes(p);
    if bytes.len() > MAX_PATH_BYTES {
        return Err(refused(
            Refusal::BadRequest,
            format!("path longer than {MAX_PATH_BYTES} bytes"),
        ));
    }
    if bytes.contains(&0) || bytes.contains(&b'\n') {
        return Err(refused(Refusal::BadRequest, "path contains NUL or newline"));
    }
    crate::firewall::plan::check_exe(p).map_err(|_| {
        refused(
            Refusal::BadRequest,
            format!("not an absolute path in canonical form: {}", shown(p)),
        )
    })
}

/// Device and inode of a file (following symlinks).
pub type Ident = (u64, u64);

pub fn ident(p: &Path) -> Option<Ident> {
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

/// Files that must never be blocked: the guard's own binary, init, and the
/// tools the guard runs to enforce. Compared by device and inode, so a
/// hard link or another spelling is caught too.
#[derive(Debug, Clone, Default)]
pub struct Protected {
    idents: Vec<(Ident, String)>,
}

impl Protected {
    pub fn detect() -> Protected {
        let mut p = Protected::default();
        let mut add = |path: PathBuf, why: &str| {
            if let Some(i) = ident(&path) {
                p.idents.push((i, why.to_string()));
            }
        };
        add("/proc/self/exe".into(), "the guard itself");
        add("/proc/1/exe".into(), "the init process");
        add("/sbin/init".into(), "the init process");
        for tool in ["nft", "ss", "nsenter"] {
            for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
                add(Path::new(dir).join(tool), "a tool the guard runs");
            }
        }
        p
    }

    pub fn why(&self, i: Ident) -> Option<&str> {
        self.idents
            .iter()
            .find(|(x, _)| *x == i)
            .map(|(_, w)| w.as_str())
    }
}

/// Whether the file starts with `#!` (read without following links or
/// waiting on a pipe; the caller has checked it is a regular file).
fn is_script(p: &Path) -> bool {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(mut f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(p)
    else {
        return false;
    };
    // Swapped for something else since the caller looked: not a script.
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut head = [0u8; 2];
    f.read_exact(&mut head).is_ok() && &head == b"#!"
}

/// The file at `p` as a program the guard may block: its identity.
pub fn program(p: &Path, protected: &Protected) -> Result<Ident, Refused> {
    exe_path(p)?;
    let m = std::fs::symlink_metadata(p).map_err(|e| {
        refused(
            Refusal::NotAProgram,
            format!("cannot read {}: {e}", shown(p)),
        )
    })?;
    if m.file_type().is_symlink() {
        return Err(refused(
            Refusal::NotAProgram,
            format!("a symlink, not the program itself: {}", shown(p)),
        ));
    }
    if !m.is_file() {
        return Err(refused(
            Refusal::NotAProgram,
            format!("not a regular file: {}", shown(p)),
        ));
    }
    // Programs are known by their real path (what /proc/PID/exe shows):
    // a path through a symlinked folder would never match a process.
    match std::fs::canonicalize(p) {
        Ok(real) if real == p => {}
        Ok(real) => {
            return Err(refused(
                Refusal::NotAProgram,
                format!("not the real path; give {}", shown(&real)),
            ));
        }
        Err(e) => {
            return Err(refused(
                Refusal::NotAProgram,
                format!("cannot resolve {}: {e}", shown(p)),
            ));
        }
    }
    if m.mode() & 0o111 == 0 {
        return Err(refused(
            Refusal::NotAProgram,
            format!("not executable: {}", shown(p)),
        ));
    }
    if is_script(p) {
        // Its processes show the interpreter as their image: neither the
        // exec catch nor the read-back could tell them, so a block would
        // only seem to hold.
        return Err(refused(
            Refusal::Script,
            format!("a script, run by an interpreter: {}", shown(p)),
        ));
    }
    let i = (m.dev(), m.ino());
    if let Some(why) = protected.why(i) {
        return Err(refused(
            Refusal::Protected,
            format!("{why} cannot be blocked: {}", shown(p)),
        ));
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_plain_absolute_paths_pass() {
        exe_path(Path::new("/home/太郎/ダウンロード/tool")).unwrap();
        for bad in [
            "rel/x",
            "/tmp/a\nb",
            "/tmp/a\0b",
            "/tmp/../etc/x",
            "//x",
            "/",
        ] {
            assert_eq!(
                exe_path(Path::new(bad)).unwrap_err().reason,
                Refusal::BadRequest,
                "{bad:?}"
            );
        }
        let long = format!("/{}", "a/".repeat(2100));
        assert!(exe_path(Path::new(long.trim_end_matches('/'))).is_err());
    }

    #[test]
    fn folders_fifos_symlinks_and_protected_files_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let exe = t.path().join("tool");
        std::fs::copy("/bin/true", &exe).unwrap();
        let data = t.path().join("data");
        std::fs::write(&data, b"x").unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o644)).unwrap();
        let fifo = t.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o755)).unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&exe, &link).unwrap();
        let dirlink = t.path().join("dirlink");
        std::os::unix::fs::symlink(t.path(), &dirlink).unwrap();
        let none = Protected::default();
        program(&exe, &none).unwrap();
        for (p, why) in [
            (t.path().to_path_buf(), "folder"),
            (fifo, "fifo"),
            (data, "not executable"),
            (link, "symlink"),
            (dirlink.join("tool"), "through a symlinked folder"),
            (t.path().join("missing"), "missing"),
        ] {
            assert_eq!(
                program(&p, &none).unwrap_err().reason,
                Refusal::NotAProgram,
                "{why}"
            );
        }
        // An executable script would only seem blocked: its processes
        // show the interpreter as their image.
        let script = t.path().join("poll.sh");
        std::fs::write(&script, b"#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(program(&script, &none).unwrap_err().reason, Refusal::Script);
        let protected = Protected::detect();
        let me = std::fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(
            program(&me, &protected).unwrap_err().reason,
            Refusal::Protected
        );
    }
}
