//! Helpers for unit tests that run on Linux and, under Wine, on Windows.

use std::path::PathBuf;

/// An absolute path for a test written with a Unix path: unchanged on
/// Unix, `C:\usr\bin\tool` on Windows.
pub fn abs(unix: &str) -> PathBuf {
    if cfg!(windows) {
        PathBuf::from(format!("C:{}", unix.replace('/', "\\")))
    } else {
        PathBuf::from(unix)
    }
}

/// True when the Windows build runs under Wine, whose socket table has no
/// owning processes: tests of attribution say so and skip that part.
pub fn under_wine() -> bool {
    cfg!(windows)
        && (std::env::var_os("WINEPREFIX").is_some()
            || std::path::Path::new(r"C:\windows\system32\winecfg.exe").exists())
}
