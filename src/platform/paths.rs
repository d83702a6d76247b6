//! Where kizuki keeps its files.

use std::path::PathBuf;

/// Environment variable that overrides the data folder (tests use it).
pub const DATA_DIR_ENV: &str = "KIZUKI_DATA_DIR";

/// `--data-dir`, else `KIZUKI_DATA_DIR`, else the platform's data folder.
pub fn data_dir(cli: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(p) = cli {
        return Some(p);
    }
    if let Some(p) = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    directories::ProjectDirs::from("jp", "kizuki", "kizuki").map(|d| d.data_dir().to_path_buf())
}
