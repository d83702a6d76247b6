//! The journal's head, kept outside the table it protects: after every
//! commit the last id, the number of records it implies and the head hash
//! go to `journal.sqlite3.head` (written atomically). Deleting the newest
//! records — and even fixing `sqlite_sequence` — then no longer verifies
//! as intact, and a journal that vanished or was emptied where one existed
//! is reported, not "intact". A same-user program can rewrite this file
//! too; the guard issue moves the authoritative head to root. Here it
//! raises the bar from "edit one table" to "edit two files consistently".

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::chain;
use crate::identity::hex;

const MAGIC: &str = "kizuki-journal-head";

/// What the side file records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideHead {
    magic: String,
    /// The last record's id (0: none yet).
    pub last_id: i64,
    /// Records from the segment's start to `last_id`.
    pub records: i64,
    /// The hash of record `last_id`, hex.
    pub hash: String,
}

/// `<journal>.head`.
pub fn path_for(journal: &Path) -> PathBuf {
    let mut s = journal.as_os_str().to_os_string();
    s.push(".head");
    PathBuf::from(s)
}

/// Writes the current head of `conn` beside `journal`. Errors are left to
/// the caller to ignore: the journal itself is already committed.
pub fn write(journal: &Path, conn: &rusqlite::Connection) -> std::io::Result<()> {
    let side = current(conn).map_err(std::io::Error::other)?;
    let bytes = serde_json::to_vec(&side).map_err(std::io::Error::other)?;
    let path = path_for(journal);
    crate::fsutil::remove_dead_temps(&path);
    crate::fsutil::write_atomic(&path, &bytes)?;
    // As private as the journal itself (0600 for the guard's).
    std::fs::set_permissions(&path, std::fs::metadata(journal)?.permissions())
}

/// The head of `conn` as the side file would record it.
pub fn current(conn: &rusqlite::Connection) -> Result<SideHead, super::JournalError> {
    let (last_id, hash) = chain::tail(conn)?;
    let seg = chain::segment(conn)?;
    Ok(SideHead {
        magic: MAGIC.into(),
        last_id,
        records: (last_id - seg.start + 1).max(0),
        hash: hex(&hash),
    })
}

/// Records the head in the `meta` table too, inside the transaction that
/// wrote the records: a cut that forgets it is caught even without the
/// side file.
pub fn store_in_meta(conn: &rusqlite::Connection) -> Result<(), super::JournalError> {
    let head = current(conn)?;
    let text = serde_json::to_string(&head).map_err(std::io::Error::other)?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('head', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [text],
    )?;
    Ok(())
}

/// The head kept in the `meta` table, if any.
pub fn read_meta(conn: &rusqlite::Connection) -> Option<SideHead> {
    let text: String = conn
        .query_row("SELECT value FROM meta WHERE key = 'head'", [], |r| {
            r.get(0)
        })
        .ok()?;
    serde_json::from_str::<SideHead>(&text)
        .ok()
        .filter(|s| s.magic == MAGIC)
}

/// Reads the side file: `None` when there is none or it is not one (a
/// damaged side file cannot vouch for anything, and is said by verify
/// through the missing check only).
pub fn read(journal: &Path) -> Option<SideHead> {
    let path = path_for(journal);
    let bytes = crate::datafile::read(&path, crate::datafile::Kind::JournalHead, SystemTime::now())
        .ok()??;
    serde_json::from_slice::<SideHead>(&bytes)
        .ok()
        .filter(|s| s.magic == MAGIC)
}

/// Compares the journal with the side file read before it. `None` when
/// they agree (records added after the side file was written are fine).
pub fn check(side: &SideHead, now: &SideHead) -> Option<chain::BadRecord> {
    let problem = if now.last_id < side.last_id {
        chain::Problem::TailRemoved { last: side.last_id }
    } else if now.last_id == side.last_id && now.hash != side.hash {
        chain::Problem::Changed
    } else if now.last_id == side.last_id && now.records != side.records {
        chain::Problem::Count {
            expected: side.records,
            found: now.records,
        }
    } else {
        return None;
    };
    Some(chain::BadRecord {
        id: now.last_id,
        at: None,
        problem,
    })
}

/// `Some(now)` when the journal now ends before `old` (records were
/// removed from the tail), or at the same id with another hash or count.
pub fn cut_since(old: &SideHead, now: &SideHead) -> Option<SideHead> {
    check(old, now).map(|_| now.clone())
}

/// The detail of the "recovered" record that states a cut tail: the head
/// the journal had (`old_head`) and where it ends now (`found`), which the
/// chain continues from.
pub fn tail_cut_detail(old: &SideHead, found: &SideHead) -> serde_json::Value {
    serde_json::json!({
        "reason": "tail-cut",
        "moved_to": null,
        "old_head": {"id": old.last_id, "records": old.records, "hash": old.hash},
        "found": {"id": found.last_id, "records": found.records, "hash": found.hash},
    })
}

impl super::Journal {
    /// For a journal with one writer (the guard): compares the journal with
    /// the head kept outside it (the side file, else the copy in `meta`)
    /// and, when its tail was cut, writes a chained "recovered" record
    /// naming the old head. Returns the old head when it did.
    pub fn recover_cut_tail(
        &mut self,
        now: SystemTime,
    ) -> Result<Option<SideHead>, super::JournalError> {
        let found = current(&self.conn)?;
        let Some(old) = read(&self.path)
            .or_else(|| read_meta(&self.conn))
            .filter(|old| check(old, &found).is_some())
        else {
            return Ok(None);
        };
        self.write_entries(&[super::Entry::Recovered {
            at: now,
            detail: tail_cut_detail(&old, &found),
        }])?;
        Ok(Some(old))
    }
}
