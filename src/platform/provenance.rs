//! Where a downloaded program came from. Windows records it as the
//! "Mark of the Web": an alternate data stream `Zone.Identifier` beside the
//! file, written by browsers and mail clients. kizuki reads it as evidence
//! for reports; it never writes or removes it.

use std::path::Path;

/// The zone a file came from, as Windows numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    LocalMachine,
    Intranet,
    Trusted,
    Internet,
    Restricted,
    Other(u32),
}

impl Zone {
    fn from_id(id: u32) -> Zone {
        match id {
            0 => Zone::LocalMachine,
            1 => Zone::Intranet,
            2 => Zone::Trusted,
            3 => Zone::Internet,
            4 => Zone::Restricted,
            n => Zone::Other(n),
        }
    }

    /// True for files that came from outside this computer and network.
    pub fn is_from_outside(self) -> bool {
        matches!(self, Zone::Internet | Zone::Restricted)
    }
}

/// What the Mark of the Web says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub zone: Zone,
    /// The page that linked to the download, when recorded.
    pub referrer_url: Option<String>,
    /// The address the file itself was downloaded from, when recorded.
    pub host_url: Option<String>,
}

/// Parses a `Zone.Identifier` stream (INI text, often UTF-16 or with a BOM
/// when written by other tools; only the UTF-8/ASCII form is common). Returns
/// `None` when there is no `ZoneId` in a `[ZoneTransfer]` section.
pub fn parse_zone_identifier(text: &str) -> Option<Provenance> {
    let mut in_section = false;
    let mut zone = None;
    let mut referrer_url = None;
    let mut host_url = None;
    for line in text.trim_start_matches('\u{FEFF}').lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line.eq_ignore_ascii_case("[ZoneTransfer]");
            continue;
        }
        if !in_section {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        // Addresses are shown to the user: keep them to one printable line.
        let clean = |v: &str| -> Option<String> {
            (!v.is_empty() && !v.chars().any(char::is_control)).then(|| v.to_string())
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "zoneid" => zone = value.parse::<u32>().ok().map(Zone::from_id),
            "referrerurl" => referrer_url = clean(value),
            "hosturl" => host_url = clean(value),
            _ => {}
        }
    }
    Some(Provenance {
        zone: zone?,
        referrer_url,
        host_url,
    })
}

/// Reads the Mark of the Web of `exe` (Windows); `None` elsewhere or when
/// the file has none.
pub fn of_file(exe: &Path) -> Option<Provenance> {
    #[cfg(windows)]
    {
        let mut stream = exe.as_os_str().to_os_string();
        stream.push(":Zone.Identifier");
        let bytes = std::fs::read(std::path::PathBuf::from(stream)).ok()?;
        parse_zone_identifier(&String::from_utf8_lossy(&bytes))
    }
    #[cfg(not(windows))]
    {
        let _ = exe;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_download_mark_is_read() {
        let text = "[ZoneTransfer]\r\nZoneId=3\r\nReferrerUrl=https://bbs.example.jp/thread/123\r\nHostUrl=https://files.example.net/freetool.zip\r\n";
        let p = parse_zone_identifier(text).unwrap();
        assert_eq!(p.zone, Zone::Internet);
        assert!(p.zone.is_from_outside());
        assert_eq!(
            p.referrer_url.as_deref(),
            Some("https://bbs.example.jp/thread/123")
        );
        assert_eq!(
            p.host_url.as_deref(),
            Some("https://files.example.net/freetool.zip")
        );
    }

    #[test]
    fn zone_only_with_bom_and_odd_case() {
        let p = parse_zone_identifier("\u{FEFF}[zonetransfer]\nzoneid = 2\n").unwrap();
        assert_eq!(p.zone, Zone::Trusted);
        assert!(!p.zone.is_from_outside());
        assert_eq!(p.host_url, None);
    }

    #[test]
    fn no_zone_or_wrong_section_is_none() {
        assert_eq!(parse_zone_identifier(""), None);
        assert_eq!(parse_zone_identifier("[Other]\nZoneId=3\n"), None);
        assert_eq!(parse_zone_identifier("[ZoneTransfer]\nZoneId=x\n"), None);
    }

    #[test]
    fn control_characters_in_urls_are_dropped() {
        let p =
            parse_zone_identifier("[ZoneTransfer]\nZoneId=3\nHostUrl=http://a\u{1b}[2J\n").unwrap();
        assert_eq!(p.host_url, None);
    }

    #[test]
    fn other_platforms_have_no_mark() {
        if !cfg!(windows) {
            assert_eq!(of_file(Path::new("/bin/sh")), None);
        }
    }
}
