//! Opening the files of the data folder. Any program of the user can write
//! there — including the malware kizuki is looking for — so every file is
//! opened the same careful way: never through a link (`O_NOFOLLOW`), never
//! waiting on a pipe or a device (`O_NONBLOCK`, then it must be a regular
//! file), only when it belongs to this user (or root), and never larger
//! than kizuki itself would write. A refused file is moved aside as
//! `<name>.refused-<time>` — its bytes kept, nothing deleted — and the
//! caller gets a sentence in the user's language to show.
//!
//! The caller parses the bytes; a file that does not parse is moved aside
//! with [`set_aside`] (`<name>.corrupt-<time>`), the same way.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::escape::{for_display, os_lossless};
use crate::i18n::tr_args;
use crate::platform::fs::{foreign_owner, no_follow, no_follow_no_block, special_kind};

/// The kinds of data file, each with the largest size kizuki writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `marks.json`: at most [`MAX_MARKS`] entries.
    Marks,
    /// `baseline.json`: at most [`MAX_BASELINE`] programs.
    Baseline,
    /// `settings.toml`.
    Settings,
    /// `notified.json`: at most [`MAX_NOTIFIED`] entries.
    Notified,
    /// `contacts.toml`: at most [`MAX_CONTACTS`] contacts.
    Contacts,
    /// `firewall.json`: the panic button.
    FirewallState,
    /// `journal.sqlite3.head`: the journal's head kept beside it.
    JournalHead,
}

/// Count caps: a file holding more is refused as damaged (kizuki never
/// writes more), so a planted file cannot make it allocate without end.
pub const MAX_MARKS: usize = 10_000;
pub const MAX_BASELINE: usize = 20_000;
pub const MAX_NOTIFIED: usize = 5_000;
pub const MAX_CONTACTS: usize = 200;

impl Kind {
    /// The largest file accepted, in bytes (documented in SECURITY.md).
    pub const fn max_bytes(self) -> u64 {
        const KIB: u64 = 1024;
        const MIB: u64 = 1024 * KIB;
        match self {
            // ~300 bytes a mark, with room for long paths.
            Kind::Marks => 8 * MIB,
            Kind::Baseline => 16 * MIB,
            Kind::Settings => 64 * KIB,
            Kind::Notified => 2 * MIB,
            Kind::Contacts => MIB,
            Kind::FirewallState => 64 * KIB,
            Kind::JournalHead => 4 * KIB,
        }
    }
}

/// Why a file was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The name is a symbolic link (kizuki never makes one).
    Link,
    /// A FIFO, device, socket or folder where a file should be.
    NotRegular(&'static str),
    /// Owned by another user account.
    Owner(u32),
    /// Larger than kizuki ever writes.
    TooBig { size: u64, cap: u64 },
    /// More entries than kizuki ever keeps.
    TooMany { count: usize, cap: usize },
    /// Could not be read (permissions, I/O error): the OS's text.
    Unreadable(String),
}

/// Where the refused file is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// Moved aside to this path, unchanged.
    MovedTo(PathBuf),
    /// Left where it is (it could not be moved: the OS's text). The caller
    /// must not write over it.
    InPlace(String),
}

/// A data file kizuki did not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub path: PathBuf,
    pub reason: Reason,
    pub kept: Kept,
}

impl Refused {
    /// True when the name is free again, so the caller may save a new file.
    pub fn moved(&self) -> bool {
        matches!(self.kept, Kept::MovedTo(_))
    }

    /// One sentence in the current language: what was refused, why, and
    /// where the file is now.
    pub fn message(&self) -> String {
        let reason = reason_text(&self.path, &self.reason);
        match &self.kept {
            Kept::MovedTo(p) => tr_args(
                "datafile.moved",
                &[
                    ("reason", &reason),
                    ("kept", &for_display(&os_lossless(p.as_os_str()))),
                ],
            ),
            Kept::InPlace(e) => tr_args(
                "datafile.in_place",
                &[("reason", &reason), ("error", &for_display(e))],
            ),
        }
    }
}

/// "… was not opened" for a file a command only reads (and never moves).
pub fn not_opened(path: &Path, reason: Reason) -> String {
    tr_args(
        "datafile.not_opened",
        &[("reason", &reason_text(path, &reason))],
    )
}

fn reason_text(path: &Path, reason: &Reason) -> String {
    {
        let file = for_display(&os_lossless(path.as_os_str()));
        match reason {
            Reason::Link => tr_args("datafile.reason.link", &[("file", &file)]),
            Reason::NotRegular(what) => tr_args(
                "datafile.reason.special",
                &[
                    ("file", &file),
                    ("what", &crate::i18n::tr(&format!("datafile.what.{what}"))),
                ],
            ),
            Reason::Owner(uid) => tr_args(
                "datafile.reason.owner",
                &[("file", &file), ("uid", &uid.to_string())],
            ),
            Reason::TooBig { size, cap } => tr_args(
                "datafile.reason.too_big",
                &[
                    ("file", &file),
                    ("size", &size.to_string()),
                    ("cap", &cap.to_string()),
                ],
            ),
            Reason::TooMany { count, cap } => tr_args(
                "datafile.reason.too_many",
                &[
                    ("file", &file),
                    ("count", &count.to_string()),
                    ("cap", &cap.to_string()),
                ],
            ),
            Reason::Unreadable(e) => tr_args(
                "datafile.reason.unreadable",
                &[("file", &file), ("error", &for_display(e))],
            ),
        }
    }
}

/// Reads the data file at `path`: `Ok(None)` when there is none, its bytes
/// when it is a regular file of this user within `kind`'s size, else the
/// file is moved aside (unreadable files stay in place) and `Err` says why.
pub fn read(path: &Path, kind: Kind, now: SystemTime) -> Result<Option<Vec<u8>>, Refused> {
    match read_checked(path, kind.max_bytes()) {
        Ok(bytes) => Ok(bytes),
        Err(reason @ Reason::Unreadable(_)) => Err(Refused {
            path: path.to_path_buf(),
            kept: Kept::InPlace(match &reason {
                Reason::Unreadable(e) => e.clone(),
                _ => String::new(),
            }),
            reason,
        }),
        Err(reason) => Err(refuse(path, reason, now)),
    }
}

/// Moves a file whose content was refused (too many entries, say) aside
/// as `<name>.refused-<time>`.
pub fn refuse(path: &Path, reason: Reason, now: SystemTime) -> Refused {
    let kept = match move_aside(path, "refused", now) {
        Ok(p) => Kept::MovedTo(p),
        Err(e) => Kept::InPlace(e.to_string()),
    };
    Refused {
        path: path.to_path_buf(),
        reason,
        kept,
    }
}

/// Moves a file that could not be parsed aside as `<name>.corrupt-<time>`
/// (bytes kept) and returns where it went.
pub fn set_aside(path: &Path, now: SystemTime) -> io::Result<PathBuf> {
    move_aside(path, "corrupt", now)
}

/// Renames `path` (whatever it is: file, link, pipe, folder) to
/// `<name>.<tag>-<unix time>[-n]` beside it. The link itself moves, never
/// what it points to.
pub fn move_aside(path: &Path, tag: &str, now: SystemTime) -> io::Result<PathBuf> {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let mut target = path.with_file_name(format!("{name}.{tag}-{secs}"));
    let mut n = 1;
    while target.symlink_metadata().is_ok() {
        target = path.with_file_name(format!("{name}.{tag}-{secs}-{n}"));
        n += 1;
    }
    std::fs::rename(path, &target)?;
    Ok(target)
}

/// Opens `path` for reading without following a link and without blocking
/// on a pipe. `Err(Reason)` for anything that is not a regular file of this
/// user; `Ok(None)` when nothing is there.
pub fn open_regular(path: &Path) -> Result<Option<(File, Metadata)>, Reason> {
    let mut opts = OpenOptions::new();
    opts.read(true);
    no_follow_no_block(&mut opts);
    let file = match opts.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            // O_NOFOLLOW on a link fails (ELOOP): say "link", not the errno.
            return Err(match path.symlink_metadata() {
                Ok(m) if m.file_type().is_symlink() => Reason::Link,
                _ => Reason::Unreadable(e.to_string()),
            });
        }
    };
    let meta = file
        .metadata()
        .map_err(|e| Reason::Unreadable(e.to_string()))?;
    if let Some(what) = special_kind(&meta) {
        return Err(Reason::NotRegular(what));
    }
    if let Some(uid) = foreign_owner(&meta) {
        return Err(Reason::Owner(uid));
    }
    Ok(Some((file, meta)))
}

fn read_checked(path: &Path, cap: u64) -> Result<Option<Vec<u8>>, Reason> {
    let Some((file, meta)) = open_regular(path)? else {
        return Ok(None);
    };
    if meta.len() > cap {
        return Err(Reason::TooBig {
            size: meta.len(),
            cap,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The file may grow after fstat: never read past the cap.
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Reason::Unreadable(e.to_string()))?;
    if bytes.len() as u64 > cap {
        return Err(Reason::TooBig {
            size: bytes.len() as u64,
            cap,
        });
    }
    Ok(Some(bytes))
}

/// Creates a new file for writing: fails if anything — a file, a link, a
/// pipe — already has the name (`O_EXCL`), and never follows a link.
pub fn create_new(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    no_follow(&mut opts);
    opts.open(path)
}

/// Opens (creating) a lock file without following a link or blocking on a
/// pipe; it must then be a regular file of this user.
pub fn open_lock(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(false);
    no_follow_no_block(&mut opts);
    let f = opts.open(path)?;
    let meta = f.metadata()?;
    if special_kind(&meta).is_some() || foreign_owner(&meta).is_some() {
        return Err(io::Error::other("not a regular file of this user"));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: SystemTime = SystemTime::UNIX_EPOCH;

    #[test]
    fn a_missing_file_is_none_and_a_good_one_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("marks.json");
        assert_eq!(read(&p, Kind::Marks, NOW).unwrap(), None);
        std::fs::write(&p, b"{}").unwrap();
        assert_eq!(read(&p, Kind::Marks, NOW).unwrap(), Some(b"{}".to_vec()));
    }

    #[test]
    fn an_oversized_file_is_moved_aside_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("settings.toml");
        let big = vec![b'#'; Kind::Settings.max_bytes() as usize + 1];
        std::fs::write(&p, &big).unwrap();
        let r = read(&p, Kind::Settings, NOW).unwrap_err();
        assert!(matches!(r.reason, Reason::TooBig { .. }));
        let Kept::MovedTo(kept) = &r.kept else {
            panic!("{r:?}")
        };
        assert!(kept.to_string_lossy().contains("settings.toml.refused-"));
        assert_eq!(std::fs::read(kept).unwrap(), big);
        assert!(!p.exists());
        crate::i18n::set_lang(crate::i18n::Lang::En);
        assert!(r.message().contains("refused-"), "{}", r.message());
    }

    #[cfg(unix)]
    #[test]
    fn links_pipes_and_folders_are_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("a");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert_eq!(
            read(&link, Kind::Marks, NOW).unwrap_err().reason,
            Reason::Link
        );
        let fifo = dir.path().join("b");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(
            read(&fifo, Kind::Marks, NOW).unwrap_err().reason,
            Reason::NotRegular("fifo")
        );
        let sub = dir.path().join("c");
        std::fs::create_dir(&sub).unwrap();
        assert_eq!(
            read(&sub, Kind::Marks, NOW).unwrap_err().reason,
            Reason::NotRegular("dir")
        );
        // All three moved aside, still what they were.
        let kept: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(kept.iter().filter(|n| n.contains(".refused-")).count(), 3);
        let moved_link = dir
            .path()
            .join(kept.iter().find(|n| n.starts_with("a.")).unwrap());
        assert_eq!(
            std::fs::read_link(moved_link).unwrap(),
            PathBuf::from("/dev/zero")
        );
    }

    #[cfg(unix)]
    #[test]
    fn create_new_never_follows_or_reuses_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        std::fs::write(&target, b"keep").unwrap();
        let link = dir.path().join(".tmp");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(create_new(&link).is_err());
        assert!(open_lock(&link).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    }
}
