//! The firewall state the user asked for beyond marks: the panic button.
//! Kept in the user's data folder so a re-applied plan (after a mark
//! changes) keeps the panic as it was.

use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::escape::{for_display, os_lossless};
use crate::fsutil;
use crate::i18n::tr_args;

pub const STATE_FILE: &str = "firewall.json";
const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredState {
    /// All traffic but loopback stopped.
    pub panic: bool,
}

#[derive(Serialize, Deserialize)]
struct FileRepr {
    schema: u32,
    panic: bool,
}

impl DesiredState {
    /// Reads the state of a data folder; a damaged file is kept aside and
    /// the returned message says so (then the panic counts as off).
    pub fn load(data_dir: Option<&Path>, now: SystemTime) -> (DesiredState, Option<String>) {
        let Some(dir) = data_dir else {
            return (DesiredState::default(), None);
        };
        let path = dir.join(STATE_FILE);
        let bytes = match crate::datafile::read(&path, crate::datafile::Kind::FirewallState, now) {
            Ok(Some(b)) => b,
            Ok(None) => return (DesiredState::default(), None),
            Err(refused) => return (DesiredState::default(), Some(refused.message())),
        };
        match serde_json::from_slice::<FileRepr>(&bytes) {
            Ok(f) if f.schema == STATE_VERSION => (DesiredState { panic: f.panic }, None),
            _ => {
                let kept = fsutil::quarantine(&path, now)
                    .map(|p| for_display(&os_lossless(p.as_os_str())))
                    .unwrap_or_else(|e| e.to_string());
                (
                    DesiredState::default(),
                    Some(tr_args("firewall.warn.state", &[("backup", &kept)])),
                )
            }
        }
    }

    pub fn save(&self, data_dir: Option<&Path>) -> std::io::Result<()> {
        let Some(dir) = data_dir else { return Ok(()) };
        let f = FileRepr {
            schema: STATE_VERSION,
            panic: self.panic,
        };
        fsutil::write_atomic(
            &dir.join(STATE_FILE),
            &serde_json::to_vec_pretty(&f).unwrap_or_default(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_survives_a_restart_and_a_damaged_file_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::UNIX_EPOCH;
        assert!(!DesiredState::load(Some(dir.path()), now).0.panic);
        DesiredState { panic: true }.save(Some(dir.path())).unwrap();
        assert!(DesiredState::load(Some(dir.path()), now).0.panic);
        std::fs::write(dir.path().join(STATE_FILE), b"{\"panic\": tr").unwrap();
        let (s, warn) = DesiredState::load(Some(dir.path()), now);
        assert!(!s.panic);
        assert!(warn.is_some());
        let kept = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains(".corrupt-"));
        assert!(kept);
    }
}
