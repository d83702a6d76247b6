//! The guard's own state in its root-owned folder: the block list (path,
//! SHA-256, since, by whom, with what authority) and the panic flag, plus
//! where each moved process came from (a separate file, written by the
//! sweeper thread only). Versioned JSON, size- and count-capped, never read
//! from a user's folder.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fsx;
use crate::guard::api::Authority;

pub const STATE_FILE: &str = "guard-state.json";
pub const ORIGINS_FILE: &str = "guard-origins.json";
pub const STATE_VERSION: u32 = 1;
/// Most programs the guard blocks at once.
pub const MAX_BLOCKS: usize = 256;
/// Most remembered process origins (one per moved process).
pub const MAX_ORIGINS: usize = 16_384;
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// One program the guard blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    #[serde(with = "crate::pathser")]
    pub exe: PathBuf,
    pub sha256: String,
    pub since: String,
    pub by_uid: u32,
    pub authority: Authority,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub version: u32,
    pub panic: bool,
    pub blocks: Vec<Block>,
}

/// The cgroup a moved process came from, so unblocking can send it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// The program's id (its cgroup's name).
    pub id: String,
    /// Start time in clock ticks after boot (from /proc/PID/stat): a
    /// reused PID is not the same process.
    pub start_time: u64,
    /// The cgroup path relative to the v2 mount, e.g. `/user.slice/…`.
    pub cgroup: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OriginsFile {
    version: u32,
    origins: BTreeMap<u32, Origin>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("guard state {}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("guard state {} is damaged or of another version: {detail}", .path.display())]
    Damaged { path: PathBuf, detail: String },
}

fn load_json<T: for<'de> Deserialize<'de>>(
    dir: &Path,
    name: &str,
) -> Result<Option<T>, StateError> {
    let path = dir.join(name);
    let Some(bytes) =
        fsx::read_nofollow(&path, MAX_FILE_BYTES).map_err(|source| StateError::Io {
            path: path.clone(),
            source,
        })?
    else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StateError::Damaged {
            path,
            detail: e.to_string(),
        })
}

impl State {
    pub fn empty() -> State {
        State {
            version: STATE_VERSION,
            panic: false,
            blocks: Vec::new(),
        }
    }

    /// The state of `dir` (empty when there is none yet). A damaged file is
    /// an error: the guard does not guess what it should block.
    pub fn load(dir: &Path) -> Result<State, StateError> {
        let path = dir.join(STATE_FILE);
        let Some(s) = load_json::<State>(dir, STATE_FILE)? else {
            return Ok(State::empty());
        };
        let bad = |detail: String| StateError::Damaged {
            path: path.clone(),
            detail,
        };
        if s.version != STATE_VERSION {
            return Err(bad(format!("version {}", s.version)));
        }
        if s.blocks.len() > MAX_BLOCKS {
            return Err(bad(format!("{} blocks", s.blocks.len())));
        }
        for b in &s.blocks {
            super::check::exe_path(&b.exe).map_err(|e| bad(e.to_string()))?;
            if !crate::marks::is_sha256(&b.sha256) {
                return Err(bad("a block without a SHA-256".into()));
            }
        }
        Ok(s)
    }

    pub fn save(&self, dir: &Path) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        fsx::write_atomic(dir, STATE_FILE, &bytes)
    }

    pub fn block(&self, exe: &Path) -> Option<&Block> {
        self.blocks.iter().find(|b| b.exe == exe)
    }
}

/// Where moved processes came from, by PID.
pub type Origins = BTreeMap<u32, Origin>;

pub fn load_origins(dir: &Path) -> Result<Origins, StateError> {
    Ok(load_json::<OriginsFile>(dir, ORIGINS_FILE)?
        .map(|f| f.origins)
        .unwrap_or_default())
}

pub fn save_origins(dir: &Path, origins: &Origins) -> io::Result<()> {
    let f = OriginsFile {
        version: STATE_VERSION,
        origins: origins.clone(),
    };
    let bytes = serde_json::to_vec(&f).map_err(io::Error::other)?;
    fsx::write_atomic(dir, ORIGINS_FILE, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(exe: &str) -> Block {
        Block {
            exe: exe.into(),
            sha256: "a".repeat(64),
            since: "2026-11-30T00:00:00Z".into(),
            by_uid: 1000,
            authority: Authority::Polkit,
        }
    }

    #[test]
    fn state_round_trips_and_damage_is_refused_not_guessed() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(State::load(t.path()).unwrap(), State::empty());
        let mut s = State::empty();
        s.panic = true;
        s.blocks.push(block("/tmp/ツール"));
        s.save(t.path()).unwrap();
        assert_eq!(State::load(t.path()).unwrap(), s);
        for bad in [
            r#"{"version":2,"panic":false,"blocks":[]}"#,
            r#"{"version":1,"panic":false,"blocks":[],"rules":"flush ruleset"}"#,
            r#"{"version":1,"panic":false,"blocks":[{"exe":"rel/x","sha256":"aa","since":"","by_uid":0,"authority":"root"}]}"#,
            "not json",
        ] {
            std::fs::write(t.path().join(STATE_FILE), bad).unwrap();
            assert!(State::load(t.path()).is_err(), "{bad}");
        }
    }

    #[test]
    fn origins_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let mut o = Origins::new();
        o.insert(
            42,
            Origin {
                id: "ab".into(),
                start_time: 7,
                cgroup: "/user.slice".into(),
            },
        );
        save_origins(t.path(), &o).unwrap();
        assert_eq!(load_origins(t.path()).unwrap(), o);
    }
}
