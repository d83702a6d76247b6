//! Durable file writes and forgiving reads, shared by every store.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Writes `bytes` so that after a crash at any moment the file holds either
/// the old or the new content: temp file in the same folder, fsync, rename,
/// fsync the folder. The temp file is created new (`O_EXCL`, never through
/// a link): a link or pipe planted under its name makes kizuki pick another
/// name, never write through it. The rename replaces a link at `path`
/// itself, not what it points to.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir)?;
    write_atomic_in_existing(path, bytes)
}

/// [`write_atomic`] without creating missing folders (a report's `--out`).
pub fn write_atomic_in_existing(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let (tmp, mut f) = create_temp(dir, &name)?;
    let result = (|| {
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(dir) {
            // Directory fsync makes the rename itself durable; not every
            // filesystem supports it, and the data is already safe.
            let _ = d.sync_all();
        }
        Ok(())
    })();
    drop(f);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A new temp file `.<name>.tmp-<pid>[-n]` in `dir`, created exclusively.
fn create_temp(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    let mut last = None;
    for n in 0..64u32 {
        let tmp = if n == 0 {
            dir.join(format!(".{name}.tmp-{pid}"))
        } else {
            dir.join(format!(".{name}.tmp-{pid}-{n}"))
        };
        match crate::datafile::create_new(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
}

/// Removes temp files of [`write_atomic`] for `path` left by processes
/// that are gone (killed mid-save). A running writer's temp file is kept:
/// its pid is alive.
pub fn remove_dead_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = file.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !crate::platform::fs::process_alive(p)) {
            // Gone already, or not ours to remove: either way harmless.
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Takes an exclusive lock on `<path>.lock`, held until the returned file
/// is dropped: read-modify-write of `path` by two processes (the window
/// and a command) then cannot lose either's change. Without a lock (a
/// filesystem that has none) kizuki still works; the window for two
/// writers to race is then only the few milliseconds of a save. The lock
/// file is never opened through a link (a planted link is not followed,
/// its target not created).
pub fn lock_beside(path: &Path) -> Option<File> {
    let mut name = path.file_name()?.to_os_string();
    name.push(".lock");
    let lock_path = path.with_file_name(name);
    if let Some(dir) = lock_path.parent() {
        let _ = fs::create_dir_all(dir);
    }
    let f = crate::datafile::open_lock(&lock_path).ok()?;
    f.lock().ok()?;
    Some(f)
}

/// An I/O error as the user should read it: a full or read-only disk is
/// said plainly in their language (the OS's own text is English and stays
/// in parentheses); anything else is the OS's text.
pub fn describe_io(e: &io::Error) -> String {
    let key = match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => "hardening.disk_full",
        io::ErrorKind::ReadOnlyFilesystem => "hardening.read_only",
        _ => return e.to_string(),
    };
    crate::i18n::tr_args(key, &[("os", &e.to_string())])
}

/// Moves a file that could not be read aside as `<name>.corrupt-<unix time>`,
/// so nothing is lost, and returns where it went.
pub fn quarantine(path: &Path, now: SystemTime) -> io::Result<PathBuf> {
    crate::datafile::set_aside(path, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("marks.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temp files must not linger");
    }

    #[test]
    fn a_full_disk_is_said_plainly_in_both_languages() {
        // ENOSPC; ERROR_DISK_FULL on Windows.
        let code = if cfg!(windows) { 112 } else { 28 };
        let full = io::Error::from_raw_os_error(code);
        for lang in [crate::i18n::Lang::Ja, crate::i18n::Lang::En] {
            let text = crate::i18n::tr_args_in(lang, "hardening.disk_full", &[("os", "x")]);
            assert!(!text.contains("hardening."), "{text}");
        }
        crate::i18n::set_lang(crate::i18n::Lang::En);
        let shown = describe_io(&full);
        assert!(shown.starts_with("the disk is full"), "{shown}");
        assert!(shown.contains(&format!("os error {code}")), "{shown}");
        let other = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(describe_io(&other), other.to_string());
    }

    #[test]
    fn quarantine_keeps_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("marks.json");
        fs::write(&p, b"\x00garbage").unwrap();
        let moved = quarantine(&p, SystemTime::UNIX_EPOCH).unwrap();
        assert!(!p.exists());
        assert_eq!(fs::read(&moved).unwrap(), b"\x00garbage");
        assert!(moved.to_string_lossy().contains("marks.json.corrupt-"));
    }

    #[cfg(unix)]
    #[test]
    fn temps_of_dead_writers_go_and_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("journal.sqlite3.head");
        // pid_max is below 2^22: this pid cannot be running.
        let dead = dir.path().join(".journal.sqlite3.head.tmp-4194305");
        let live = dir.path().join(format!(
            ".journal.sqlite3.head.tmp-{}-1",
            std::process::id()
        ));
        let other = dir.path().join(".marks.json.tmp-4194305");
        for f in [&dead, &live, &other] {
            fs::write(f, b"x").unwrap();
        }
        remove_dead_temps(&p);
        assert!(!dead.exists());
        assert!(live.exists() && other.exists());
    }

    #[cfg(unix)]
    #[test]
    fn planted_temp_and_lock_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        let p = dir.path().join("marks.json");
        let tmp = dir
            .path()
            .join(format!(".marks.json.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        let absent = dir.path().join("created-by-lock");
        std::os::unix::fs::symlink(&absent, dir.path().join("marks.json.lock")).unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(fs::read(&victim).unwrap(), b"keep", "temp link followed");
        assert!(lock_beside(&p).is_none());
        assert!(!absent.exists(), "lock link followed");
    }
}
