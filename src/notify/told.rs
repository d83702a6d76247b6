//! What kizuki already told the user, kept across restarts
//! (`notified.json` in the data folder): without it every login would
//! repeat the notifications about programs that have been there all
//! along. A told finding comes back only when the executable changes or
//! after [`FORGET_AFTER`], when a reminder is fair.
//!
//! Entries are keyed by a hash of the program and the finding's kind, so
//! the file holds no paths (it says nothing about what runs here).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::escape::os_lossless;
use crate::fsutil;
use crate::i18n::tr_args;
use crate::model::{FindingKind, ProgramKey};

pub const TOLD_FILE: &str = "notified.json";
const VERSION: u32 = 1;
/// A finding told this long ago may be told again.
pub const FORGET_AFTER: Duration = Duration::from_secs(30 * 24 * 3600);
/// Bounds the file; the oldest entries go first.
const MAX_ENTRIES: usize = 5_000;

/// One told finding: the executable's hash then, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToldEntry {
    pub sha256: Option<String>,
    #[serde(with = "secs")]
    pub at: SystemTime,
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::{Duration, SystemTime};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let secs = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        s.serialize_u64(secs)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::deserialize(d)?))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct ToldFile {
    version: u32,
    told: BTreeMap<String, ToldEntry>,
}

/// The ledger of told findings.
#[derive(Debug, Default)]
pub struct ToldLedger {
    entries: BTreeMap<String, ToldEntry>,
    store: Option<PathBuf>,
    dirty: bool,
}

/// The ledger's key for `kind` on `program`.
pub fn told_id(program: &ProgramKey, kind: FindingKind) -> String {
    let (tag, text) = match program {
        ProgramKey::Exe(p) => ("exe", os_lossless(p.as_os_str())),
        ProgramKey::Name(n) => ("name", n.clone()),
        ProgramKey::Script { script, .. } => ("script", os_lossless(script.as_os_str())),
    };
    let digest = Sha256::digest(format!("{tag}\0{text}\0{}", kind.as_str()).as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

impl ToldLedger {
    /// A ledger kept only in memory.
    pub fn in_memory() -> ToldLedger {
        ToldLedger::default()
    }

    /// Loads the ledger of `data_dir`. A file that cannot be understood is
    /// moved aside (and said so in the warnings); telling again is the
    /// safe side.
    pub fn load(data_dir: Option<&Path>, now: SystemTime) -> (ToldLedger, Vec<String>) {
        let mut warnings = Vec::new();
        let Some(dir) = data_dir else {
            return (ToldLedger::in_memory(), warnings);
        };
        let path = dir.join(TOLD_FILE);
        let mut ledger = ToldLedger {
            store: Some(path.clone()),
            ..ToldLedger::default()
        };
        let bytes = match crate::datafile::read(&path, crate::datafile::Kind::Notified, now) {
            Ok(Some(b)) => b,
            Ok(None) => return (ledger, warnings),
            Err(refused) => {
                if !refused.moved() {
                    ledger.store = None;
                }
                warnings.push(refused.message());
                return (ledger, warnings);
            }
        };
        match serde_json::from_slice::<ToldFile>(&bytes) {
            Ok(f) if f.version == VERSION && f.told.len() > crate::datafile::MAX_NOTIFIED => {
                let reason = crate::datafile::Reason::TooMany {
                    count: f.told.len(),
                    cap: crate::datafile::MAX_NOTIFIED,
                };
                let refused = crate::datafile::refuse(&path, reason, now);
                if !refused.moved() {
                    ledger.store = None;
                }
                warnings.push(refused.message());
            }
            Ok(f) if f.version == VERSION => ledger.entries = f.told,
            _ => match fsutil::quarantine(&path, now) {
                Ok(moved) => warnings.push(tr_args(
                    "notify.told_corrupt",
                    &[("path", &os_lossless(moved.as_os_str()))],
                )),
                Err(e) => {
                    warnings.push(unreadable(&path, &e));
                    ledger.store = None;
                }
            },
        }
        (ledger, warnings)
    }

    /// The data folder the ledger is kept in (`None`: memory only, or the
    /// file could not be replaced).
    pub fn data_dir(&self) -> Option<&Path> {
        self.store.as_deref().and_then(Path::parent)
    }

    /// What was told for `id` and is not yet forgotten at `now`.
    pub fn get(&self, id: &str, now: SystemTime) -> Option<&ToldEntry> {
        self.entries.get(id).filter(|e| !forgotten(e, now))
    }

    pub fn record(&mut self, id: String, sha256: Option<String>, now: SystemTime) {
        let entry = ToldEntry { sha256, at: now };
        if self.entries.get(&id) != Some(&entry) {
            self.entries.insert(id, entry);
            self.dirty = true;
        }
    }

    /// The executable's hash learnt after telling (hashing is lazy); the
    /// time told stays, so the reminder still comes after [`FORGET_AFTER`].
    pub fn learn_hash(&mut self, id: &str, sha256: &str) {
        if let Some(e) = self.entries.get_mut(id)
            && e.sha256.as_deref() != Some(sha256)
        {
            e.sha256 = Some(sha256.to_string());
            self.dirty = true;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the ledger if it changed, dropping forgotten entries and the
    /// oldest beyond the bound.
    pub fn save(&mut self, now: SystemTime) -> io::Result<()> {
        let Some(path) = self.store.clone() else {
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        self.entries.retain(|_, e| !forgotten(e, now));
        crate::bounded::keep_newest(&mut self.entries, MAX_ENTRIES, |e| e.at);
        let file = ToldFile {
            version: VERSION,
            told: self.entries.clone(),
        };
        let bytes = serde_json::to_vec(&file).map_err(io::Error::other)?;
        fsutil::write_atomic(&path, &bytes)?;
        self.dirty = false;
        Ok(())
    }
}

fn forgotten(e: &ToldEntry, now: SystemTime) -> bool {
    now.duration_since(e.at)
        .is_ok_and(|age| age >= FORGET_AFTER)
}

fn unreadable(path: &Path, e: &io::Error) -> String {
    tr_args(
        "notify.told_unreadable",
        &[
            ("path", &os_lossless(path.as_os_str())),
            ("error", &fsutil::describe_io(e)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, FakeClock};

    fn key(p: &str) -> ProgramKey {
        ProgramKey::Exe(p.into())
    }

    #[test]
    fn ids_differ_by_program_and_kind_and_hide_the_path() {
        let a = told_id(&key("/tmp/freetool"), FindingKind::Tor);
        assert_eq!(a, told_id(&key("/tmp/freetool"), FindingKind::Tor));
        assert_ne!(a, told_id(&key("/tmp/freetool"), FindingKind::Listening));
        assert_ne!(a, told_id(&key("/tmp/other"), FindingKind::Tor));
        assert_ne!(
            told_id(&ProgramKey::Name("x".into()), FindingKind::Tor),
            told_id(&key("x"), FindingKind::Tor)
        );
        assert!(!a.contains("freetool"));
    }

    #[test]
    fn survives_a_restart_and_forgets_after_thirty_days() {
        let dir = tempfile::tempdir().unwrap();
        let clock = FakeClock::at_noon();
        let id = told_id(&key("/tmp/freetool"), FindingKind::Tor);
        let (mut l, w) = ToldLedger::load(Some(dir.path()), clock.now());
        assert!(w.is_empty() && l.is_empty());
        l.record(id.clone(), Some("aa".into()), clock.now());
        l.save(clock.now()).unwrap();

        let (l2, w) = ToldLedger::load(Some(dir.path()), clock.now());
        assert!(w.is_empty());
        assert_eq!(
            l2.get(&id, clock.now()).and_then(|e| e.sha256.as_deref()),
            Some("aa")
        );
        let text = std::fs::read_to_string(dir.path().join(TOLD_FILE)).unwrap();
        assert!(!text.contains("freetool"), "no paths in the file: {text}");

        clock.advance(FORGET_AFTER);
        assert!(l2.get(&id, clock.now()).is_none(), "a month on, tell again");
    }

    #[test]
    fn a_corrupt_file_is_kept_aside_and_said() {
        let dir = tempfile::tempdir().unwrap();
        let now = FakeClock::at_noon().now();
        std::fs::write(dir.path().join(TOLD_FILE), b"{\"version\":1,\"to").unwrap();
        let (l, w) = ToldLedger::load(Some(dir.path()), now);
        assert!(l.is_empty());
        assert_eq!(w.len(), 1, "{w:?}");
        let kept = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("notified.json.corrupt-")
            })
            .count();
        assert_eq!(kept, 1);
    }
}
