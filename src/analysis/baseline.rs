//! The baseline: which executables kizuki has seen, with the SHA-256 each
//! had. The first run records every program as known; later, a program not
//! in the list is a newcomer, and a known path with another hash changed.
//!
//! Kept as `baseline.json` in the data folder (written atomically; a corrupt
//! file is moved aside and a new list is started).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::escape::os_lossless;
use crate::fsutil;
use crate::i18n::tr_args;
use crate::model::Program;

/// The baseline's file inside the data folder.
pub const BASELINE_FILE: &str = "baseline.json";

const VERSION: u32 = 1;

/// Bounds the file; the oldest entries go first.
const MAX_ENTRIES: usize = 20_000;

/// How long a newcomer or a changed file stays worth mentioning.
pub const NEW_FOR: Duration = Duration::from_secs(24 * 3600);

pub fn baseline_path(data_dir: &Path) -> PathBuf {
    data_dir.join(BASELINE_FILE)
}

mod rfc {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::clock::rfc3339(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let s = String::deserialize(d)?;
        crate::clock::parse_rfc3339(&s).ok_or_else(|| D::Error::custom("not an RFC 3339 time"))
    }

    pub mod opt {
        use serde::{Deserialize, Deserializer, Serializer, de::Error};
        use std::time::SystemTime;

        pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&crate::clock::rfc3339(*t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<SystemTime>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) => crate::clock::parse_rfc3339(&s)
                    .map(Some)
                    .ok_or_else(|| D::Error::custom("not an RFC 3339 time")),
            }
        }
    }
}

/// What is known about one executable path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineEntry {
    /// SHA-256 of the file at the path when last seen; `None` if unreadable.
    pub sha256: Option<String>,
    #[serde(with = "rfc")]
    pub first_seen: SystemTime,
    /// Seen after the first run: it may be new to the user.
    #[serde(default)]
    pub newcomer: bool,
    /// The hash before the last change, and when the change was noticed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "rfc::opt")]
    pub changed_at: Option<SystemTime>,
}

#[derive(Debug, Serialize, Deserialize)]
struct BaselineFile {
    version: u32,
    programs: BTreeMap<String, BaselineEntry>,
}

/// The list of known executables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    entries: BTreeMap<String, BaselineEntry>,
    /// True until the first observation: everything seen then is known.
    first_run: bool,
    dirty: bool,
    store: Option<PathBuf>,
}

/// The SHA-256 of the file now at the program's path: a process whose image
/// is still that file (a deleted image says nothing about the path).
fn file_hash(p: &Program) -> Option<&str> {
    p.processes
        .iter()
        .filter(|x| !x.exe_deleted)
        .find_map(|x| x.sha256.as_deref())
}

impl Baseline {
    /// A first run kept only in memory.
    pub fn in_memory() -> Baseline {
        Baseline {
            entries: BTreeMap::new(),
            first_run: true,
            dirty: false,
            store: None,
        }
    }

    /// Loads `baseline.json` from `data_dir` (`None`: memory only). No file
    /// means a first run. A file that cannot be understood is moved aside
    /// and a first run starts; what happened is in the returned warnings,
    /// in the user's language.
    pub fn load(data_dir: Option<&Path>, now: SystemTime) -> (Baseline, Vec<String>) {
        let mut warnings = Vec::new();
        let Some(dir) = data_dir else {
            return (Baseline::in_memory(), warnings);
        };
        let path = baseline_path(dir);
        let mut b = Baseline {
            store: Some(path.clone()),
            ..Baseline::in_memory()
        };
        let bytes = match crate::datafile::read(&path, crate::datafile::Kind::Baseline, now) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return (b, warnings),
            Err(refused) => {
                // Not moved aside: keep it, do not overwrite it.
                if !refused.moved() {
                    b.store = None;
                }
                warnings.push(refused.message());
                return (b, warnings);
            }
        };
        match serde_json::from_slice::<BaselineFile>(&bytes) {
            Ok(f) if f.version == VERSION && f.programs.len() > crate::datafile::MAX_BASELINE => {
                let reason = crate::datafile::Reason::TooMany {
                    count: f.programs.len(),
                    cap: crate::datafile::MAX_BASELINE,
                };
                let refused = crate::datafile::refuse(&path, reason, now);
                if !refused.moved() {
                    b.store = None;
                }
                warnings.push(refused.message());
            }
            Ok(f) if f.version == VERSION => {
                b.entries = f.programs;
                b.first_run = false;
            }
            _ => {
                let msg = match fsutil::quarantine(&path, now) {
                    Ok(moved) => tr_args(
                        "findings.baseline_corrupt",
                        &[("path", &os_lossless(moved.as_os_str()))],
                    ),
                    Err(e) => {
                        b.store = None;
                        tr_args(
                            "findings.baseline_unreadable",
                            &[
                                ("path", &os_lossless(path.as_os_str())),
                                ("error", &e.to_string()),
                            ],
                        )
                    }
                };
                warnings.push(msg);
            }
        }
        (b, warnings)
    }

    /// Writes the list if it changed. Without a data folder, nothing to do.
    pub fn save(&mut self) -> io::Result<()> {
        let Some(path) = self.store.clone() else {
            return Ok(());
        };
        let path = path.as_path();
        if !self.dirty {
            return Ok(());
        }
        // The window and a one-shot command may both keep a baseline: what
        // the other saved since is kept, not overwritten.
        let _lock = fsutil::lock_beside(path);
        if let Ok(Some(bytes)) = crate::datafile::read(
            path,
            crate::datafile::Kind::Baseline,
            std::time::SystemTime::now(),
        ) && let Ok(on_disk) = serde_json::from_slice::<BaselineFile>(&bytes)
            && on_disk.version == VERSION
        {
            for (k, e) in on_disk.programs {
                self.entries.entry(k).or_insert(e);
            }
            self.trim();
        }
        let f = BaselineFile {
            version: VERSION,
            programs: self.entries.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&f).map_err(io::Error::other)?;
        fsutil::write_atomic(path, &bytes)?;
        self.dirty = false;
        Ok(())
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    pub fn is_first_run(&self) -> bool {
        self.first_run
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// When the baseline was first recorded: the first run's time, the
    /// earliest `first_seen` of the programs it learnt as known (newcomers
    /// came later). `None` before the first run.
    pub fn created_at(&self) -> Option<SystemTime> {
        self.entries
            .values()
            .filter(|e| !e.newcomer)
            .map(|e| e.first_seen)
            .min()
    }

    /// What the saved baseline of `data_dir` says, for a reader that must
    /// not write (the notifications' thread): `None` when there is no file
    /// yet or it cannot be used (the monitor deals with a damaged one).
    pub fn peek(data_dir: &Path, now: SystemTime) -> Option<Baseline> {
        let bytes = crate::datafile::read(
            &baseline_path(data_dir),
            crate::datafile::Kind::Baseline,
            now,
        )
        .ok()??;
        let f = serde_json::from_slice::<BaselineFile>(&bytes).ok()?;
        if f.version != VERSION || f.programs.len() > crate::datafile::MAX_BASELINE {
            return None;
        }
        Some(Baseline {
            entries: f.programs,
            first_run: false,
            dirty: false,
            store: None,
        })
    }

    pub fn entry(&self, exe: &Path) -> Option<&BaselineEntry> {
        self.entries.get(&os_lossless(exe.as_os_str()))
    }

    /// Records what `programs` show at `now`: unknown paths are added (as
    /// known on a first run, as newcomers later), a known path whose file
    /// now has another hash is marked changed.
    pub fn observe(&mut self, programs: &[Program], now: SystemTime) {
        let newcomer = !self.first_run;
        for p in programs {
            let Some(exe) = &p.exe else { continue };
            if super::places::is_memfd(exe) {
                continue; // a fresh random name every run: nothing to remember
            }
            let key = os_lossless(exe.as_os_str());
            let current = file_hash(p);
            match self.entries.get_mut(&key) {
                None => {
                    self.entries.insert(
                        key,
                        BaselineEntry {
                            sha256: current.or(p.sha256.as_deref()).map(str::to_string),
                            first_seen: now,
                            newcomer,
                            previous_sha256: None,
                            changed_at: None,
                        },
                    );
                    self.dirty = true;
                }
                Some(e) => match (&e.sha256, current) {
                    (None, Some(h)) => {
                        e.sha256 = Some(h.to_string());
                        self.dirty = true;
                    }
                    (Some(old), Some(h)) if old != h => {
                        e.previous_sha256 = Some(old.clone());
                        e.sha256 = Some(h.to_string());
                        e.changed_at = Some(now);
                        self.dirty = true;
                    }
                    _ => {}
                },
            }
        }
        self.first_run = false;
        self.trim();
    }

    /// Keeps the newest [`MAX_ENTRIES`]; the oldest go first.
    fn trim(&mut self) {
        crate::bounded::keep_newest(&mut self.entries, MAX_ENTRIES, |e| e.first_seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, FakeClock};
    use crate::model::{ProcessInfo, ProgramKey};

    fn prog(exe: &str, hash: &str, deleted: bool) -> Program {
        Program {
            key: ProgramKey::Exe(exe.into()),
            name: "x".into(),
            exe: Some(exe.into()),
            exe_deleted: deleted,
            sha256: Some(hash.into()),
            processes: vec![ProcessInfo {
                uid: Some(1000),
                exe_deleted: deleted,
                sha256: Some(hash.into()),
                ..ProcessInfo::fake(1, "x")
            }],
            connections: vec![],
            findings: vec![],
            mark: None,
            stale_mark: None,
            first_seen: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn first_run_knows_everything_then_newcomers_are_marked() {
        let now = FakeClock::at_noon().now();
        let mut b = Baseline::in_memory();
        b.observe(&[prog("/usr/bin/a", "aa", false)], now);
        b.observe(&[prog("/usr/bin/b", "bb", false)], now);
        assert!(!b.entry(Path::new("/usr/bin/a")).unwrap().newcomer);
        assert!(b.entry(Path::new("/usr/bin/b")).unwrap().newcomer);
    }

    #[test]
    fn the_creation_time_is_the_first_runs_and_peek_reads_it_back() {
        let t0 = FakeClock::at_noon().now();
        let t1 = t0 + Duration::from_secs(3600);
        let dir = tempfile::tempdir().unwrap();
        assert!(Baseline::peek(dir.path(), t0).is_none(), "no file yet");
        let (mut b, _) = Baseline::load(Some(dir.path()), t0);
        assert_eq!(b.created_at(), None);
        b.observe(&[prog("/usr/bin/a", "aa", false)], t0);
        b.observe(&[prog("/usr/bin/b", "bb", false)], t1);
        assert_eq!(b.created_at(), Some(t0), "a newcomer is not the start");
        b.save().unwrap();
        let peeked = Baseline::peek(dir.path(), t1).unwrap();
        assert_eq!((peeked.created_at(), peeked.len()), (Some(t0), 2));
        std::fs::write(baseline_path(dir.path()), b"{\"version\": 1").unwrap();
        assert!(Baseline::peek(dir.path(), t1).is_none());
        assert!(
            baseline_path(dir.path()).exists(),
            "peek never moves a file"
        );
    }

    #[test]
    fn changed_hash_is_recorded_but_deleted_images_say_nothing() {
        let t0 = FakeClock::at_noon().now();
        let t1 = t0 + Duration::from_secs(60);
        let mut b = Baseline::in_memory();
        b.observe(&[prog("/opt/a", "v1", false)], t0);
        // The old image keeps running after an update: not a change.
        b.observe(&[prog("/opt/a", "v0", true)], t1);
        assert_eq!(b.entry(Path::new("/opt/a")).unwrap().changed_at, None);
        b.observe(&[prog("/opt/a", "v2", false)], t1);
        let e = b.entry(Path::new("/opt/a")).unwrap();
        assert_eq!(e.sha256.as_deref(), Some("v2"));
        assert_eq!(e.previous_sha256.as_deref(), Some("v1"));
        assert_eq!(e.changed_at, Some(t1));
    }

    #[test]
    fn the_window_and_a_command_saving_in_turn_keep_both_programs() {
        let dir = tempfile::tempdir().unwrap();
        let now = FakeClock::at_noon().now();
        let (mut first, _) = Baseline::load(Some(dir.path()), now);
        first.observe(&[prog("/usr/bin/a", "aa", false)], now);
        first.save().unwrap();
        // The window and a `kizuki scan` both start from that file...
        let (mut window, _) = Baseline::load(Some(dir.path()), now);
        let (mut command, _) = Baseline::load(Some(dir.path()), now);
        command.observe(&[prog("/usr/bin/from-cli", "cc", false)], now);
        command.save().unwrap();
        window.observe(&[prog("/usr/bin/from-gui", "gg", false)], now);
        window.save().unwrap();
        // ...and the window's later save keeps what the command learnt, so
        // the command's program is not "new" again tomorrow.
        let (after, _) = Baseline::load(Some(dir.path()), now);
        for exe in ["/usr/bin/a", "/usr/bin/from-cli", "/usr/bin/from-gui"] {
            assert!(after.entry(Path::new(exe)).is_some(), "{exe} lost");
        }
        assert_eq!(after.len(), 3);
    }

    #[test]
    fn survives_a_restart_and_a_corrupt_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let now = FakeClock::at_noon().now();
        let (mut b, w) = Baseline::load(Some(dir.path()), now);
        assert!(w.is_empty() && b.is_first_run());
        b.observe(&[prog("/usr/bin/a", "aa", false)], now);
        b.save().unwrap();
        let (b2, w) = Baseline::load(Some(dir.path()), now);
        assert!(w.is_empty());
        assert!(!b2.is_first_run());
        assert_eq!(
            b2.entry(Path::new("/usr/bin/a")),
            b.entry(Path::new("/usr/bin/a"))
        );

        std::fs::write(baseline_path(dir.path()), b"{\"version\": 1, \"progr").unwrap();
        let (b3, w) = Baseline::load(Some(dir.path()), now);
        assert_eq!(w.len(), 1, "the user is told");
        assert!(b3.is_first_run() && b3.is_empty());
        let moved: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("baseline.json.corrupt-"))
            .collect();
        assert_eq!(moved.len(), 1, "the bad file is kept aside");
    }

    #[test]
    fn unknown_version_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            baseline_path(dir.path()),
            b"{\"version\": 99, \"programs\": {}}",
        )
        .unwrap();
        let (b, w) = Baseline::load(Some(dir.path()), SystemTime::UNIX_EPOCH);
        assert_eq!(w.len(), 1);
        assert!(b.is_first_run());
    }
}
