//! Files as root, where a user might have set a trap: folders must be
//! owned by the guard's user and writable by nobody else, files are opened
//! with `O_NOFOLLOW` (a symlink planted in their place is refused), writes
//! are atomic (a new file made with `O_EXCL` in the same folder, fsync,
//! rename).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::libc;

fn denied(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{why}: {}", path.display()),
    )
}

/// Makes sure `dir` is a real folder (not a symlink) owned by this
/// process's user and not writable by group or others, creating it (and
/// missing parents) with `mode` when absent.
pub fn ensure_private_dir(dir: &Path, mode: u32) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(parent)?;
            }
            DirBuilder::new().mode(mode).create(dir)?;
            // The umask may have taken bits away; set exactly `mode`.
            fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
        }
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    check_private_dir(dir)
}

/// Refuses a folder that is a symlink, is not a folder, is owned by
/// another user or is writable by group or others.
pub fn check_private_dir(dir: &Path) -> io::Result<()> {
    let m = fs::symlink_metadata(dir)?;
    if m.file_type().is_symlink() || !m.is_dir() {
        return Err(denied(dir, "not a real folder"));
    }
    if m.uid() != nix::unistd::geteuid().as_raw() {
        return Err(denied(dir, "folder not owned by root"));
    }
    if m.mode() & 0o022 != 0 {
        return Err(denied(dir, "folder writable by others"));
    }
    Ok(())
}

/// Reads a whole file without following a symlink; `None` when absent;
/// an error when larger than `max` bytes.
pub fn read_nofollow(path: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !f.metadata()?.is_file() {
        return Err(denied(path, "not a regular file"));
    }
    let mut bytes = Vec::new();
    f.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {max} bytes: {}", path.display()),
        ));
    }
    Ok(Some(bytes))
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Replaces `dir/name` with `bytes` atomically: a fresh file (`O_EXCL`,
/// `O_NOFOLLOW`, mode 0600) in the same folder, fsync, rename, fsync the
/// folder.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{seq}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, dir.join(name))?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Opens `path` for appending (created 0600), never through a symlink.
pub fn open_append(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(denied(path, "not a regular file"));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_others_can_write_or_symlinks_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b/state");
        ensure_private_dir(&d, 0o700).unwrap();
        assert_eq!(fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(ensure_private_dir(&d, 0o700).is_err());
        let link = t.path().join("link");
        std::os::unix::fs::symlink(t.path(), &link).unwrap();
        assert!(check_private_dir(&link).is_err());
    }

    #[test]
    fn files_are_written_atomically_and_symlinks_never_followed() {
        let t = tempfile::tempdir().unwrap();
        write_atomic(t.path(), "s.json", b"one").unwrap();
        write_atomic(t.path(), "s.json", b"two").unwrap();
        assert_eq!(
            read_nofollow(&t.path().join("s.json"), 10).unwrap(),
            Some(b"two".to_vec())
        );
        assert!(read_nofollow(&t.path().join("s.json"), 2).is_err());
        assert_eq!(read_nofollow(&t.path().join("none"), 10).unwrap(), None);
        let target = t.path().join("target");
        fs::write(&target, b"x").unwrap();
        let link = t.path().join("log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(open_append(&link).is_err());
        assert!(read_nofollow(&link, 10).is_err());
        // Only the two files: no temp file is left behind.
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 3);
    }
}
