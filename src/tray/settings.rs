//! The window's small settings file (`settings.toml` in the data folder):
//! whether notifications are on, and whether the user was already told
//! that closing the window quits kizuki on a desktop without a tray.
//! Missing fields take their defaults; a damaged file is kept aside.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::escape::{for_display, os_lossless};
use crate::fsutil;
use crate::i18n::tr_args;

pub const SETTINGS_FILE: &str = "settings.toml";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Desktop notifications for new programs, high findings and blocked
    /// programs running again.
    pub notifications: bool,
    /// The one-time "closing quits kizuki" explanation was shown.
    pub close_explained: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            notifications: true,
            close_explained: false,
        }
    }
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(SETTINGS_FILE)
}

impl Settings {
    /// Reads the settings of a data folder (defaults without one). A
    /// damaged file is moved aside and the returned message says where.
    pub fn load(data_dir: Option<&Path>, now: SystemTime) -> (Settings, Option<String>) {
        let Some(dir) = data_dir else {
            return (Settings::default(), None);
        };
        let file = path(dir);
        let text = match crate::datafile::read(&file, crate::datafile::Kind::Settings, now) {
            Ok(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
            Ok(None) => return (Settings::default(), None),
            Err(refused) => return (Settings::default(), Some(refused.message())),
        };
        match toml::from_str::<Settings>(&text) {
            Ok(s) => (s, None),
            Err(_) => {
                let kept = fsutil::quarantine(&file, now)
                    .map(|p| for_display(&os_lossless(p.as_os_str())))
                    .unwrap_or_else(|e| e.to_string());
                (
                    Settings::default(),
                    Some(tr_args("tray.warn.settings", &[("backup", &kept)])),
                )
            }
        }
    }

    /// Saves atomically; without a data folder there is nothing to keep.
    pub fn save(&self, data_dir: Option<&Path>) -> std::io::Result<()> {
        let Some(dir) = data_dir else { return Ok(()) };
        let text = toml::to_string(self).map_err(std::io::Error::other)?;
        fsutil::write_atomic(&path(dir), text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_a_restart_and_default_to_notifying() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::UNIX_EPOCH;
        let (s, warn) = Settings::load(Some(dir.path()), now);
        assert!(s.notifications && !s.close_explained && warn.is_none());
        let off = Settings {
            notifications: false,
            close_explained: true,
        };
        off.save(Some(dir.path())).unwrap();
        assert_eq!(Settings::load(Some(dir.path()), now).0, off);
    }

    #[test]
    fn a_damaged_file_is_kept_aside_and_defaults_apply() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), "notifications = maybe\n").unwrap();
        let (s, warn) = Settings::load(Some(dir.path()), SystemTime::UNIX_EPOCH);
        assert_eq!(s, Settings::default());
        assert!(warn.unwrap().contains("corrupt"));
        assert!(!path(dir.path()).exists());
    }

    #[test]
    fn unknown_and_missing_fields_are_forgiven() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), "close_explained = true\nfuture = 1\n").unwrap();
        let (s, warn) = Settings::load(Some(dir.path()), SystemTime::UNIX_EPOCH);
        assert!(s.notifications && s.close_explained && warn.is_none());
    }
}
