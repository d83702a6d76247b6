//! The marks store: one in-memory copy per process, kept in step with the
//! file so the CLI and the GUI can both change marks while both run.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use super::file::{self, FileProblem};
use super::{Lookup, MARKS_FILE, MarkEntry, MarkFor, Until, duration_allowed};
use crate::clock::Clock;
use crate::escape::{for_display, os_lossless};
use crate::fsutil;
use crate::i18n::{tr, tr_args};
use crate::identity::FileStamp;
use crate::lock::MutexExt;
use crate::model::Mark;

fn shown(p: &Path) -> String {
    for_display(&os_lossless(p.as_os_str()))
}

/// Something the user must be told about the marks file. The CLI prints
/// [`MarkWarning::message`] on stderr; the GUI shows it as a banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkWarning {
    /// The file was damaged; it was kept as `backup` and `kept` marks were
    /// taken over from it.
    Recovered {
        file: PathBuf,
        backup: PathBuf,
        kept: usize,
        problem: FileProblem,
    },
    /// The file could be neither read nor moved aside; kizuki will not
    /// overwrite it, so new marks are not saved.
    Unreadable { file: PathBuf, reason: String },
    /// Recovered marks could not be written back yet.
    NotSaved { file: PathBuf, reason: String },
    /// The file was not read at all (a link, a pipe, another user's file,
    /// too large, too many marks): see [`crate::datafile`].
    Refused(crate::datafile::Refused),
}

fn problem_text(p: &FileProblem) -> String {
    match p {
        FileProblem::Empty => tr("marks.problem.empty"),
        FileProblem::NotJson => tr("marks.problem.not_json"),
        FileProblem::WrongSchema(v) => tr_args(
            "marks.problem.schema",
            &[("version", &v.map(|v| v.to_string()).unwrap_or("-".into()))],
        ),
        FileProblem::BadEntries(n) => {
            tr_args("marks.problem.entries", &[("count", &n.to_string())])
        }
        FileProblem::Unreadable(r) => for_display(r),
    }
}

impl MarkWarning {
    /// One paragraph in the current language, with paths made safe to show.
    pub fn message(&self) -> String {
        match self {
            MarkWarning::Recovered {
                file,
                backup,
                kept,
                problem,
            } => tr_args(
                "marks.warn.recovered",
                &[
                    ("problem", &problem_text(problem)),
                    ("backup", &shown(backup)),
                    ("kept", &kept.to_string()),
                    ("file", &shown(file)),
                ],
            ),
            MarkWarning::Unreadable { file, reason } => tr_args(
                "marks.warn.unreadable",
                &[("reason", &for_display(reason)), ("file", &shown(file))],
            ),
            MarkWarning::NotSaved { file, reason } => tr_args(
                "marks.warn.not_saved",
                &[("reason", &for_display(reason)), ("file", &shown(file))],
            ),
            MarkWarning::Refused(r) => r.message(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MarkError {
    #[error("{}", tr_args("marks.err.save", &[("error", &fsutil::describe_io(source)), ("file", &shown(path))]))]
    Save { path: PathBuf, source: io::Error },
    #[error("{}", tr_args("marks.err.protected", &[("reason", &for_display(reason)), ("file", &shown(path))]))]
    Protected { path: PathBuf, reason: String },
    #[error("{}", tr("marks.err.timed"))]
    OnlyTrustIsTimed,
    /// More marks (or a larger file) than kizuki reads back: saving it
    /// would have the next start refuse the whole file.
    #[error("{}", tr_args("datafile.marks_full", &[("cap", &crate::datafile::MAX_MARKS.to_string())]))]
    Full,
    #[error("{}", tr_args("marks.err.hash", &[("hash", &for_display(.0))]))]
    BadHash(String),
    #[error("{}", tr_args("marks.err.relative", &[("file", &shown(.0))]))]
    RelativePath(PathBuf),
}

/// A mark that was set, and what it replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub entry: MarkEntry,
    pub previous: Option<MarkEntry>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: Vec<MarkEntry>,
    /// The file as last read or written; another stamp means another
    /// process changed it.
    seen: Option<FileStamp>,
    warnings: Vec<MarkWarning>,
    /// Why saving is refused (a file kizuki could not read or move).
    protected: Option<String>,
}

/// The user's marks, shared by every part of one process (`Arc` it).
pub struct MarkStore {
    path: Option<PathBuf>,
    clock: Arc<dyn Clock>,
    boot: Option<String>,
    session: String,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for MarkStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarkStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl MarkStore {
    /// The store of a data folder (`marks.json` in it), read now. Problems
    /// with the file are in [`MarkStore::take_warnings`].
    pub fn open(data_dir: &Path, clock: Arc<dyn Clock>) -> MarkStore {
        Self::open_with(
            Some(data_dir.join(MARKS_FILE)),
            clock,
            crate::platform::boot::boot_id(),
        )
    }

    /// Marks kept only in memory (no data folder).
    pub fn in_memory(clock: Arc<dyn Clock>) -> MarkStore {
        Self::open_with(None, clock, crate::platform::boot::boot_id())
    }

    /// Full control for tests: the file (or none) and the boot id that
    /// "until restart" is tied to.
    pub fn open_with(path: Option<PathBuf>, clock: Arc<dyn Clock>, boot: Option<String>) -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let store = MarkStore {
            path,
            clock,
            boot,
            session: format!("{}-{nanos}", std::process::id()),
            inner: Mutex::new(Inner::default()),
        };
        if store.path.is_some() {
            let lock = store.file_lock();
            if lock.is_some() {
                store.remove_stale_temps();
            }
            let mut inner = store.lock();
            store.load(&mut inner);
        }
        store
    }

    /// Temp files of saves that were killed before their rename. Only
    /// called under the file lock: no save of another process is running.
    fn remove_stale_temps(&self) {
        let Some(path) = &self.path else { return };
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return;
        };
        let prefix = format!(".{}.tmp-", name.to_string_lossy());
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                // Gone already, or not ours to remove: either way harmless.
                let _ = fs::remove_file(e.path());
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.locked()
    }

    /// Serializes read-modify-write between processes.
    fn file_lock(&self) -> Option<File> {
        crate::fsutil::lock_beside(self.path.as_ref()?)
    }

    /// Reads the file into `inner`, keeping a damaged one aside.
    fn load(&self, inner: &mut Inner) {
        let Some(path) = &self.path else { return };
        // Stamp before reading: a change after it is seen at the next check.
        let stamp = FileStamp::of(path).ok();
        let bytes =
            match crate::datafile::read(path, crate::datafile::Kind::Marks, self.clock.now()) {
                Ok(Some(b)) => b,
                Ok(None) => {
                    inner.entries.clear();
                    inner.seen = None;
                    inner.protected = None;
                    return;
                }
                Err(refused) => {
                    self.refused(inner, refused, stamp);
                    return;
                }
            };
        let parsed = file::parse(&bytes);
        if parsed.entries.len() > crate::datafile::MAX_MARKS {
            let reason = crate::datafile::Reason::TooMany {
                count: parsed.entries.len(),
                cap: crate::datafile::MAX_MARKS,
            };
            let refused = crate::datafile::refuse(path, reason, self.clock.now());
            self.refused(inner, refused, stamp);
            return;
        }
        match parsed.problem {
            None => {
                inner.entries = parsed.entries;
                inner.seen = stamp;
                inner.protected = None;
            }
            Some(problem) => self.set_aside(inner, parsed.entries, problem, stamp),
        }
    }

    /// A file refused unread: no marks from it. When it could not be moved
    /// aside, nothing is written over it.
    fn refused(
        &self,
        inner: &mut Inner,
        refused: crate::datafile::Refused,
        stamp: Option<FileStamp>,
    ) {
        inner.entries.clear();
        if refused.moved() {
            inner.protected = None;
            inner.seen = None;
        } else {
            inner.protected = Some(refused.message());
            inner.seen = stamp;
        }
        inner.warnings.push(MarkWarning::Refused(refused));
    }

    /// Moves a damaged file to `<name>.corrupt-<time>` and writes what was
    /// recovered in its place.
    fn set_aside(
        &self,
        inner: &mut Inner,
        recovered: Vec<MarkEntry>,
        problem: FileProblem,
        stamp: Option<FileStamp>,
    ) {
        let Some(path) = &self.path else { return };
        inner.entries = recovered;
        match fsutil::quarantine(path, self.clock.now()) {
            Ok(backup) => {
                inner.protected = None;
                inner.warnings.push(MarkWarning::Recovered {
                    file: path.clone(),
                    backup,
                    kept: inner.entries.len(),
                    problem,
                });
                inner.seen = None;
                if let Err(e) = self.write(inner) {
                    inner.warnings.push(MarkWarning::NotSaved {
                        file: path.clone(),
                        reason: e.to_string(),
                    });
                }
            }
            Err(e) => {
                let reason = match problem {
                    FileProblem::Unreadable(r) => format!("{r}; {e}"),
                    other => format!("{}; {e}", problem_text(&other)),
                };
                inner.warnings.push(MarkWarning::Unreadable {
                    file: path.clone(),
                    reason: reason.clone(),
                });
                inner.protected = Some(reason);
                inner.seen = stamp;
            }
        }
    }

    fn write(&self, inner: &mut Inner) -> Result<(), MarkError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if let Some(reason) = &inner.protected {
            return Err(MarkError::Protected {
                path: path.clone(),
                reason: reason.clone(),
            });
        }
        let now = self.clock.now();
        inner.entries.retain(|e| self.active(e, now));
        inner.entries.sort_by(|a, b| a.exe.cmp(&b.exe));
        let bytes = file::render(&inner.entries);
        if inner.entries.len() > crate::datafile::MAX_MARKS
            || bytes.len() as u64 > crate::datafile::Kind::Marks.max_bytes()
        {
            return Err(MarkError::Full);
        }
        fsutil::write_atomic(path, &bytes).map_err(|source| MarkError::Save {
            path: path.clone(),
            source,
        })?;
        inner.seen = FileStamp::of(path).ok();
        Ok(())
    }

    /// Reloads when another process changed the file. Costs one `stat`
    /// when nothing changed; returns true when marks were reread.
    pub fn refresh(&self) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        let now = FileStamp::of(path).ok();
        if now == self.lock().seen {
            return false;
        }
        let _lock = self.file_lock();
        let mut inner = self.lock();
        self.load(&mut inner);
        true
    }

    fn active(&self, e: &MarkEntry, now: SystemTime) -> bool {
        match &e.until {
            Until::Always => true,
            Until::Time(t) => now < *t,
            Until::Boot(b) => self.boot.as_deref() == Some(b.as_str()),
            Until::Session(s) => *s == self.session,
        }
    }

    /// When a mark set now for `dur` ends.
    fn until(&self, dur: MarkFor) -> Until {
        match dur {
            MarkFor::Always => Until::Always,
            MarkFor::Hour => Until::Time(self.clock.now() + MarkFor::HOUR),
            MarkFor::Restart => match &self.boot {
                Some(b) => Until::Boot(b.clone()),
                None => Until::Session(self.session.clone()),
            },
        }
    }

    /// Marks the executable at `exe` with content `sha256`, replacing any
    /// mark for that path, and saves at once.
    pub fn set(
        &self,
        exe: &Path,
        sha256: &str,
        mark: Mark,
        dur: MarkFor,
    ) -> Result<Changed, MarkError> {
        if !exe.is_absolute() {
            return Err(MarkError::RelativePath(exe.to_path_buf()));
        }
        if !file::is_sha256(sha256) {
            return Err(MarkError::BadHash(sha256.to_string()));
        }
        if !duration_allowed(mark, dur) {
            return Err(MarkError::OnlyTrustIsTimed);
        }
        let entry = MarkEntry {
            exe: exe.to_path_buf(),
            sha256: sha256.to_string(),
            mark,
            set_at: self.clock.now(),
            until: self.until(dur),
        };
        let previous = self.change(|entries| {
            let prev = entries
                .iter()
                .position(|e| e.exe == exe)
                .map(|i| entries.remove(i));
            entries.push(entry.clone());
            prev
        })?;
        Ok(Changed { entry, previous })
    }

    /// Forgets the mark for `exe`; returns it if there was one.
    pub fn remove(&self, exe: &Path) -> Result<Option<MarkEntry>, MarkError> {
        self.change(|entries| {
            entries
                .iter()
                .position(|e| e.exe == exe)
                .map(|i| entries.remove(i))
        })
    }

    /// Applies `f` to the newest marks (reread if another process wrote)
    /// and saves; on a failed save memory keeps the old marks too.
    fn change<T>(&self, f: impl FnOnce(&mut Vec<MarkEntry>) -> T) -> Result<T, MarkError> {
        let _lock = self.file_lock();
        let mut inner = self.lock();
        if let Some(path) = &self.path
            && FileStamp::of(path).ok() != inner.seen
        {
            self.load(&mut inner);
        }
        let before = inner.entries.clone();
        let out = f(&mut inner.entries);
        if let Err(e) = self.write(&mut inner) {
            inner.entries = before;
            return Err(e);
        }
        Ok(out)
    }

    /// What applies to a program with this path and hash now.
    pub fn lookup(&self, exe: &Path, sha256: Option<&str>) -> Lookup {
        let Some(sha) = sha256 else {
            return Lookup::default();
        };
        let now = self.clock.now();
        let inner = self.lock();
        let Some(e) = inner
            .entries
            .iter()
            .find(|e| e.exe == exe && self.active(e, now))
        else {
            return Lookup::default();
        };
        if e.sha256 == sha {
            Lookup {
                mark: Some(e.mark),
                stale: None,
            }
        } else {
            Lookup {
                mark: None,
                stale: Some(e.mark),
            }
        }
    }

    /// Every mark in force, sorted by path.
    pub fn list(&self) -> Vec<MarkEntry> {
        let now = self.clock.now();
        let mut v: Vec<MarkEntry> = self
            .lock()
            .entries
            .iter()
            .filter(|e| self.active(e, now))
            .cloned()
            .collect();
        v.sort_by(|a, b| a.exe.cmp(&b.exe));
        v
    }

    /// The programs the user blocked.
    pub fn blocked(&self) -> Vec<MarkEntry> {
        self.list()
            .into_iter()
            .filter(|e| e.mark == Mark::Blocked)
            .collect()
    }

    /// Problems met since the last call (damaged file, unsaved recovery).
    pub fn take_warnings(&self) -> Vec<MarkWarning> {
        std::mem::take(&mut self.lock().warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use std::time::Duration;

    const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const H2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn store(dir: &Path, clock: &Arc<FakeClock>, boot: Option<&str>) -> MarkStore {
        MarkStore::open_with(
            Some(dir.join(MARKS_FILE)),
            clock.clone(),
            boot.map(str::to_string),
        )
    }

    fn exe(p: &str) -> PathBuf {
        crate::testing::abs(p)
    }

    #[test]
    fn marks_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FakeClock::at_noon());
        let a = store(dir.path(), &clock, Some("boot-1"));
        a.set(&exe("/usr/bin/tool"), H1, Mark::Trusted, MarkFor::Always)
            .unwrap();
        a.set(&exe("/tmp/evil"), H2, Mark::Blocked, MarkFor::Always)
            .unwrap();
        drop(a);
        let b = store(dir.path(), &clock, Some("boot-2"));
        assert!(b.take_warnings().is_empty());
        assert_eq!(
            b.lookup(&exe("/usr/bin/tool"), Some(H1)).mark,
            Some(Mark::Trusted)
        );
        assert_eq!(b.blocked().len(), 1);
        assert_eq!(b.blocked()[0].exe, exe("/tmp/evil"));
        assert_eq!(b.list().len(), 2);
    }

    #[test]
    fn trust_for_an_hour_ends_after_an_hour() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FakeClock::at_noon());
        let s = store(dir.path(), &clock, Some("boot-1"));
        s.set(&exe("/usr/bin/tool"), H1, Mark::Trusted, MarkFor::Hour)
            .unwrap();
        clock.advance(Duration::from_secs(59 * 60));
        assert_eq!(
            s.lookup(&exe("/usr/bin/tool"), Some(H1)).mark,
            Some(Mark::Trusted)
        );
        clock.advance(Duration::from_secs(61));
        assert_eq!(s.lookup(&exe("/usr/bin/tool"), Some(H1)), Lookup::default());
        assert!(s.list().is_empty());
        // Also for another process reading the file.
        assert!(store(dir.path(), &clock, Some("boot-1")).list().is_empty());
    }

    #[test]
    fn trust_until_restart_ends_with_the_boot() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FakeClock::at_noon());
        store(dir.path(), &clock, Some("boot-1"))
            .set(&exe("/usr/bin/tool"), H1, Mark::Trusted, MarkFor::Restart)
            .unwrap();
        clock.advance(Duration::from_secs(30 * 24 * 3600));
        let same_boot = store(dir.path(), &clock, Some("boot-1"));
        assert_eq!(
            same_boot.lookup(&exe("/usr/bin/tool"), Some(H1)).mark,
            Some(Mark::Trusted)
        );
        let rebooted = store(dir.path(), &clock, Some("boot-2"));
        assert_eq!(rebooted.lookup(&exe("/usr/bin/tool"), Some(H1)).mark, None);
    }

    #[test]
    fn without_a_boot_id_restart_means_kizuki_restart() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FakeClock::at_noon());
        let s = store(dir.path(), &clock, None);
        s.set(&exe("/usr/bin/tool"), H1, Mark::Trusted, MarkFor::Restart)
            .unwrap();
        assert_eq!(
            s.lookup(&exe("/usr/bin/tool"), Some(H1)).mark,
            Some(Mark::Trusted)
        );
        let next_run = store(dir.path(), &clock, None);
        assert_eq!(next_run.lookup(&exe("/usr/bin/tool"), Some(H1)).mark, None);
    }

    #[test]
    fn only_trust_can_be_timed() {
        let clock = Arc::new(FakeClock::at_noon());
        let s = MarkStore::open_with(None, clock, None);
        for m in [Mark::Blocked, Mark::Unknown] {
            assert!(matches!(
                s.set(&exe("/x"), H1, m, MarkFor::Hour),
                Err(MarkError::OnlyTrustIsTimed)
            ));
        }
        assert!(matches!(
            s.set(&exe("rel"), H1, Mark::Trusted, MarkFor::Always),
            Err(MarkError::RelativePath(_))
        ));
        assert!(matches!(
            s.set(&exe("/x"), "ABC", Mark::Trusted, MarkFor::Always),
            Err(MarkError::BadHash(_))
        ));
    }

    #[test]
    fn a_changed_executable_does_not_inherit_the_mark() {
        let clock = Arc::new(FakeClock::at_noon());
        let s = MarkStore::open_with(None, clock, None);
        s.set(&exe("/usr/bin/tool"), H1, Mark::Trusted, MarkFor::Always)
            .unwrap();
        let l = s.lookup(&exe("/usr/bin/tool"), Some(H2));
        assert_eq!(l.mark, None);
        assert_eq!(l.stale, Some(Mark::Trusted));
        // An unreadable hash cannot prove identity either way.
        assert_eq!(s.lookup(&exe("/usr/bin/tool"), None), Lookup::default());
        // Deciding again replaces the old mark.
        let c = s
            .set(&exe("/usr/bin/tool"), H2, Mark::Blocked, MarkFor::Always)
            .unwrap();
        assert_eq!(c.previous.map(|p| p.sha256), Some(H1.to_string()));
        assert_eq!(
            s.lookup(&exe("/usr/bin/tool"), Some(H2)).mark,
            Some(Mark::Blocked)
        );
        assert_eq!(s.list().len(), 1);
    }

    #[test]
    fn a_change_by_another_process_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FakeClock::at_noon());
        let gui = store(dir.path(), &clock, Some("b"));
        let cli = store(dir.path(), &clock, Some("b"));
        assert!(!gui.refresh(), "nothing changed yet");
        cli.set(&exe("/usr/bin/tool"), H1, Mark::Blocked, MarkFor::Always)
            .unwrap();
        assert!(gui.refresh());
        assert_eq!(
            gui.lookup(&exe("/usr/bin/tool"), Some(H1)).mark,
            Some(Mark::Blocked)
        );
        // A write from the GUI keeps the CLI's mark (reread before writing).
        gui.set(&exe("/usr/bin/other"), H2, Mark::Trusted, MarkFor::Always)
            .unwrap();
        assert_eq!(store(dir.path(), &clock, Some("b")).list().len(), 2);
    }

    fn corrupt_case(bytes: &[u8], expect_kept: usize) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FakeClock::at_noon());
        let path = dir.path().join(MARKS_FILE);
        fs::write(&path, bytes).unwrap();
        let s = store(dir.path(), &clock, Some("b"));
        let warnings = s.take_warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let MarkWarning::Recovered { backup, kept, .. } = &warnings[0] else {
            panic!("expected a recovery: {warnings:?}");
        };
        assert_eq!(*kept, expect_kept);
        assert_eq!(fs::read(backup).unwrap(), bytes, "original bytes kept");
        assert!(
            backup
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("marks.json.corrupt-")
        );
        let msg = warnings[0].message();
        assert!(msg.contains("marks.json.corrupt-"), "{msg}");
        assert_eq!(s.list().len(), expect_kept);
        // kizuki continues: the file is valid again and new marks save.
        s.set(&exe("/usr/bin/new"), H2, Mark::Trusted, MarkFor::Always)
            .unwrap();
        let again = store(dir.path(), &clock, Some("b"));
        assert!(again.take_warnings().is_empty());
        assert_eq!(again.list().len(), expect_kept + 1);
    }

    fn good_file() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FakeClock::at_noon());
        let s = store(dir.path(), &clock, Some("b"));
        for (i, h) in [H1, H2].iter().enumerate() {
            s.set(
                &exe(&format!("/usr/bin/p{i}")),
                h,
                Mark::Trusted,
                MarkFor::Always,
            )
            .unwrap();
        }
        fs::read(dir.path().join(MARKS_FILE)).unwrap()
    }

    #[test]
    fn random_bytes_are_kept_aside() {
        // A fixed pseudo-random sequence (xorshift), reproducible.
        let mut x: u32 = 0x9E37_79B9;
        let bytes: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        corrupt_case(&bytes, 0);
    }

    #[test]
    fn a_truncated_file_keeps_what_came_before_the_cut() {
        let full = good_file();
        // The second entry's path as the file spells it (escaped on Windows).
        let quoted = serde_json::to_string(&exe("/usr/bin/p1")).unwrap();
        let needle = quoted.trim_matches('"').as_bytes();
        let second = full
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        corrupt_case(&full[..second + 3], 1);
    }

    #[test]
    fn an_empty_file_is_kept_aside() {
        corrupt_case(b"", 0);
    }

    #[test]
    fn a_file_of_another_schema_is_kept_and_its_readable_marks_recovered() {
        let mut v: serde_json::Value = serde_json::from_slice(&good_file()).unwrap();
        v["schema"] = serde_json::json!(99);
        corrupt_case(&serde_json::to_vec(&v).unwrap(), 2);
        corrupt_case(br#"{"something": "else"}"#, 0);
    }

    // Written with Unix paths.
    #[cfg(unix)]
    #[test]
    fn more_marks_than_are_read_back_are_not_saved() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(crate::clock::FakeClock::at_noon());
        let path = dir.path().join(MARKS_FILE);
        let sha = "ab".repeat(32);
        let entries: Vec<MarkEntry> = (0..crate::datafile::MAX_MARKS)
            .map(|i| MarkEntry {
                exe: PathBuf::from(format!("/opt/p/{i:05}")),
                sha256: sha.clone(),
                mark: Mark::Trusted,
                set_at: clock.now(),
                until: Until::Always,
            })
            .collect();
        fs::write(&path, file::render(&entries)).unwrap();
        let store = MarkStore::open(dir.path(), clock);
        assert!(store.take_warnings().is_empty());
        assert_eq!(store.list().len(), crate::datafile::MAX_MARKS);
        let before = fs::read(&path).unwrap();
        let e = store
            .set(
                Path::new("/opt/p/one-more"),
                &sha,
                Mark::Blocked,
                MarkFor::Always,
            )
            .unwrap_err();
        assert!(matches!(e, MarkError::Full), "{e:?}");
        assert_eq!(fs::read(&path).unwrap(), before, "file unchanged");
        assert_eq!(
            store.list().len(),
            crate::datafile::MAX_MARKS,
            "not shown as set"
        );
    }
}
