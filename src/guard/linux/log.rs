//! The guard's log: every change and every refusal, one JSON line each
//! (who asked, what, on whose authority, what came of it), appended with
//! `O_APPEND|O_NOFOLLOW` in the root-owned state folder. Each line carries
//! the SHA-256 of the previous line's hash and its own content, so a line
//! removed or altered later breaks the chain. (The journal proper moves
//! into the guard with issue 18.)

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fsx;

pub const LOG_FILE: &str = "guard-log.jsonl";
/// Only the end of the file is read to find the last hash.
const TAIL_BYTES: u64 = 64 * 1024;
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub time: String,
    /// The client's uid and pid (from SO_PEERCRED); `None` for the guard's
    /// own actions (restoring at start).
    pub uid: Option<u32>,
    pub pid: Option<u32>,
    /// The request as the client sent it (parsed).
    pub request: serde_json::Value,
    /// root, polkit, restored, or null when refused before authority.
    pub authority: Option<crate::guard::api::Authority>,
    /// ok, refused, failed.
    pub outcome: String,
    pub detail: String,
}

#[derive(Serialize, Deserialize)]
struct Line {
    #[serde(flatten)]
    entry: Entry,
    prev: String,
    hash: String,
}

pub struct GuardLog {
    path: PathBuf,
    file: File,
    last: String,
}

fn chain(prev: &str, entry: &Entry) -> String {
    let body = serde_json::to_string(entry).unwrap_or_default();
    crate::identity::sha256_bytes(format!("{prev}\n{body}").as_bytes())
}

impl GuardLog {
    pub fn open(dir: &Path) -> io::Result<GuardLog> {
        let path = dir.join(LOG_FILE);
        let file = fsx::open_append(&path)?;
        let last = last_hash(&path)?.unwrap_or_else(|| GENESIS.to_string());
        Ok(GuardLog { path, file, last })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The log's size in bytes now.
    pub fn size(&self) -> u64 {
        self.file.metadata().map(|m| m.len()).unwrap_or(0)
    }

    pub fn append(&mut self, entry: Entry) -> io::Result<()> {
        let hash = chain(&self.last, &entry);
        let line = Line {
            entry,
            prev: self.last.clone(),
            hash: hash.clone(),
        };
        let mut text = serde_json::to_vec(&line).map_err(io::Error::other)?;
        text.push(b'\n');
        self.file.write_all(&text)?;
        self.file.sync_data()?;
        self.last = hash;
        Ok(())
    }
}

fn last_hash(path: &Path) -> io::Result<Option<String>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))?;
    let mut tail = String::new();
    f.take(TAIL_BYTES).read_to_string(&mut tail).ok();
    Ok(tail
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Line>(l).ok())
        .map(|l| l.hash))
}

/// Checks every line's chain; the number of lines, or the first bad line
/// (1-based).
pub fn verify(path: &Path) -> Result<usize, usize> {
    let text = std::fs::read_to_string(path).map_err(|_| 0usize)?;
    let mut prev = GENESIS.to_string();
    let mut n = 0;
    for (i, l) in text.lines().enumerate() {
        let line: Line = serde_json::from_str(l).map_err(|_| i + 1)?;
        if line.prev != prev || chain(&prev, &line.entry) != line.hash {
            return Err(i + 1);
        }
        prev = line.hash;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(outcome: &str) -> Entry {
        Entry {
            time: "2026-11-30T00:00:00Z".into(),
            uid: Some(65534),
            pid: Some(7),
            request: serde_json::json!({"op": "unblock", "exe": "/tmp/x"}),
            authority: None,
            outcome: outcome.into(),
            detail: "no polkit".into(),
        }
    }

    #[test]
    fn the_chain_survives_reopening_and_catches_an_edit() {
        let t = tempfile::tempdir().unwrap();
        let mut log = GuardLog::open(t.path()).unwrap();
        log.append(entry("refused")).unwrap();
        drop(log);
        let mut log = GuardLog::open(t.path()).unwrap();
        log.append(entry("ok")).unwrap();
        assert_eq!(verify(log.path()), Ok(2));
        let text = std::fs::read_to_string(log.path()).unwrap();
        std::fs::write(log.path(), text.replacen("refused", "ok", 1)).unwrap();
        assert_eq!(verify(log.path()), Err(1));
    }
}
