//! Opening the database: pragmas, `PRAGMA user_version` migrations, and
//! moving an unreadable file aside so the app keeps working.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::{Journal, JournalError, JournalWarning};

/// Migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the chained records, the program dictionary, settings and anchor.
    "CREATE TABLE records (
         id       INTEGER PRIMARY KEY AUTOINCREMENT,
         ts       INTEGER NOT NULL,
         kind     TEXT    NOT NULL,
         program  INTEGER,
         ref      INTEGER,
         pid      INTEGER,
         protocol TEXT,
         local    TEXT,
         remote   TEXT,
         state    TEXT,
         detail   TEXT,
         hash     BLOB    NOT NULL
     );
     -- Sessions of one program, covering: answered from the index alone.
     CREATE INDEX records_sessions
         ON records(program, ts, pid, protocol, local, remote, state)
         WHERE kind = 'opened';
     CREATE INDEX records_by_program ON records(program, kind, ts)
         WHERE program IS NOT NULL AND kind <> 'opened';
     CREATE INDEX records_by_ref ON records(ref, ts, state) WHERE ref IS NOT NULL;
     CREATE INDEX records_events ON records(ts)
         WHERE kind NOT IN ('opened', 'closed', 'seen');
     CREATE TABLE programs (
         id     INTEGER PRIMARY KEY,
         exe    TEXT NOT NULL,
         name   TEXT NOT NULL,
         sha256 TEXT NOT NULL,
         UNIQUE (exe, sha256, name)
     );
     CREATE TABLE meta (
         key   TEXT PRIMARY KEY,
         value TEXT NOT NULL
     );",
    // 2: the uid of the process a record is about (the guard's journal
    // shows each user only their own); NULL in a per-user journal.
    "ALTER TABLE records ADD COLUMN uid INTEGER;
     CREATE INDEX records_by_uid ON records(uid, id) WHERE uid IS NOT NULL;",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `PRAGMA application_id` of a kizuki journal ("KZKJ"): another
/// application's SQLite database is refused, never migrated.
pub const APPLICATION_ID: i32 = 0x4b5a_4b4a;

/// The tables of a kizuki journal written before `application_id` was set.
const OWN_TABLES: &[&str] = &["records", "programs", "meta", "sqlite_sequence"];

/// Refuses a database that is not kizuki's: a set `application_id` that is
/// not ours, or (for journals from before it was set, and new empty files)
/// any table kizuki does not make. Checked before anything is written.
fn check_ours(conn: &Connection, path: &Path) -> Result<(), JournalError> {
    let app: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    if app == APPLICATION_ID {
        return Ok(());
    }
    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
    let tables = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    if app == 0 && tables.iter().all(|t| OWN_TABLES.contains(&t.as_str())) {
        return Ok(());
    }
    Err(JournalError::NotKizuki(crate::i18n::tr_args(
        "journal.err.foreign",
        &[("path", &crate::escape::os_lossless(path.as_os_str()))],
    )))
}

fn configure(conn: &Connection) -> Result<(), JournalError> {
    conn.busy_timeout(Duration::from_secs(5))?;
    // WAL: readers (history, verify, the GUI) never block the writer.
    // synchronous=FULL: each commit (one a second at most, batched by the
    // writer) is on disk before the head file beside it says it exists.
    // With NORMAL a power cut could lose commits the head file already
    // names, and verify would then wrongly say records were deleted.
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Some filesystems cannot share memory; the default journal still
        // keeps every commit atomic.
        conn.pragma_update(None, "journal_mode", "delete")?;
    }
    conn.pragma_update(None, "synchronous", "full")?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), JournalError> {
    // The version is read inside the write lock, so two processes opening a
    // new journal at once do not both create the tables.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(JournalError::NewerSchema {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    let app: i32 = tx.pragma_query_value(None, "application_id", |r| r.get(0))?;
    if app != APPLICATION_ID {
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    }
    tx.commit()?;
    Ok(())
}

/// Reads enough to prove the file is a journal this build understands.
fn check_readable(conn: &Connection) -> Result<(), JournalError> {
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(JournalError::NewerSchema {
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(())
}

fn open_rw(path: &Path) -> Result<Journal, JournalError> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )?;
    // Whose database is it? Asked before WAL is switched on or a table is
    // added: another application's file is left exactly as it was.
    check_readable(&conn)?;
    check_ours(&conn, path)?;
    configure(&conn)?;
    migrate(&mut conn)?;
    Ok(Journal {
        conn,
        path: path.to_path_buf(),
    })
}

/// Errors that mean "this file is not a usable journal", as opposed to a
/// full disk or a journal from a newer kizuki (which must not be moved).
fn is_damage(e: &JournalError) -> bool {
    match e {
        JournalError::Sql(err) => matches!(
            err.sqlite_error_code(),
            Some(
                ErrorCode::NotADatabase
                    | ErrorCode::DatabaseCorrupt
                    | ErrorCode::CannotOpen
                    | ErrorCode::PermissionDenied
                    | ErrorCode::ReadOnly
                    | ErrorCode::SystemIoFailure
            )
        ),
        JournalError::Io(_) => true,
        _ => false,
    }
}

/// Moves the database and its WAL/shared-memory companions aside. SQLite
/// would otherwise replay an old `-wal` into the new file.
fn quarantine_all(path: &Path, now: SystemTime) -> std::io::Result<PathBuf> {
    let moved = crate::fsutil::quarantine(path, now)?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_os_string();
        side.push(suffix);
        let side = PathBuf::from(side);
        if side.exists() {
            crate::fsutil::quarantine(&side, now)?;
        }
    }
    Ok(moved)
}

/// True when the file is empty or starts like an SQLite database. Checked
/// before SQLite opens it: closing a connection to a damaged file can
/// delete its `-wal`, which we want to keep with it.
fn looks_like_sqlite(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    match std::fs::File::open(path) {
        Ok(mut f) => match f.read(&mut head) {
            Ok(0) => true,
            Ok(16) => &head == b"SQLite format 3\0",
            _ => false,
        },
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

fn not_a_database() -> JournalError {
    JournalError::Sql(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOTADB),
        None,
    ))
}

/// Checks the journal's path before SQLite opens it: a link, a pipe or
/// another user's file is refused (`Err`) with a sentence saying so.
fn check_path(path: &Path) -> Result<(), crate::datafile::Reason> {
    crate::datafile::open_regular(path).map(|_| ())
}

/// A zero-length file where the head beside it says records existed.
fn emptied(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.len() == 0)
        && super::headfile::read(path).is_some_and(|s| s.last_id > 0)
}

fn refusal_text(path: &Path, reason: crate::datafile::Reason) -> String {
    crate::datafile::not_opened(path, reason)
}

pub(super) fn open_for_writing(
    path: &Path,
    now: SystemTime,
) -> Result<(Journal, Vec<JournalWarning>), JournalError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // SQLite opens the companions by name and follows links: a planted
    // `-wal` link would have it write into another file.
    let mut refused = Vec::new();
    for suffix in ["-wal", "-shm", "-journal", ".head"] {
        let mut side = path.as_os_str().to_os_string();
        side.push(suffix);
        let side = PathBuf::from(side);
        if let Err(reason) = check_path(&side)
            && !matches!(reason, crate::datafile::Reason::Unreadable(_))
        {
            let r = crate::datafile::refuse(&side, reason, now);
            if !r.moved() {
                return Err(JournalError::NotKizuki(r.message()));
            }
            refused.push(JournalWarning::Refused {
                message: r.message(),
            });
        }
    }
    let (j, mut warnings) = open_checked(path, now)?;
    refused.append(&mut warnings);
    Ok((j, refused))
}

fn open_checked(
    path: &Path,
    now: SystemTime,
) -> Result<(Journal, Vec<JournalWarning>), JournalError> {
    let opened = match check_path(path) {
        Err(crate::datafile::Reason::Unreadable(e)) => {
            Err(JournalError::Io(std::io::Error::other(e)))
        }
        Err(reason) => Err(JournalError::NotKizuki(refusal_text(path, reason))),
        Ok(()) if emptied(path) => Err(JournalError::Emptied {
            path: path.to_path_buf(),
            last: super::headfile::read(path).map(|s| s.last_id).unwrap_or(0),
        }),
        Ok(()) if looks_like_sqlite(path) => open_rw(path),
        Ok(()) => Err(not_a_database()),
    };
    match opened {
        Ok(mut j) => {
            // Created anew where the head beside it says a journal was:
            // the new chain starts by saying so.
            if let Some(old) = super::headfile::read(path)
                && old.last_id > 0
                && super::headfile::current(&j.conn)?.last_id == 0
            {
                let detail = serde_json::json!({
                    "moved_to": null,
                    "reason": "missing",
                    "old_head": {"id": old.last_id, "records": old.records, "hash": old.hash},
                });
                j.write_entries(&[super::Entry::Recovered { at: now, detail }])?;
                return Ok((j, vec![JournalWarning::Vanished { last: old.last_id }]));
            }
            Ok((j, Vec::new()))
        }
        Err(e)
            if (is_damage(&e)
                || matches!(e, JournalError::NotKizuki(_) | JournalError::Emptied { .. }))
                && path.symlink_metadata().is_ok() =>
        {
            // The old head, from outside the file being set aside.
            let old_head = super::headfile::read(path);
            let moved_to = quarantine_all(path, now)?;
            let mut j = open_rw(path)?;
            let detail = serde_json::json!({
                "moved_to": crate::escape::os_lossless(moved_to.as_os_str()),
                "reason": e.to_string(),
                "old_head": old_head.map(|h| serde_json::json!({
                    "id": h.last_id,
                    "records": h.records,
                    "hash": h.hash,
                })),
            });
            j.write_entries(&[super::Entry::Recovered { at: now, detail }])?;
            Ok((j, vec![JournalWarning::Recovered { moved_to }]))
        }
        Err(e) => Err(e),
    }
}

/// Opens an existing journal read-only: nothing is created, migrated or
/// moved, and a journal on read-only media (or a read-only folder) is read
/// as an immutable file. A damaged file is an error here.
pub(super) fn open_existing(path: &Path) -> Result<Journal, JournalError> {
    match check_path(path) {
        Ok(()) => {}
        Err(crate::datafile::Reason::Unreadable(e)) => {
            return Err(JournalError::Io(std::io::Error::other(e)));
        }
        Err(reason) => return Err(JournalError::NotKizuki(refusal_text(path, reason))),
    }
    let side = super::headfile::read(path);
    let size = match std::fs::symlink_metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(match side.filter(|s| s.last_id > 0) {
                Some(s) => JournalError::Emptied {
                    path: path.to_path_buf(),
                    last: s.last_id,
                },
                None => JournalError::Missing(path.to_path_buf()),
            });
        }
        Err(e) => return Err(e.into()),
    };
    if size == 0 {
        // kizuki writes the schema as soon as it creates the file.
        return Err(JournalError::Emptied {
            path: path.to_path_buf(),
            last: side.map(|s| s.last_id).unwrap_or(0),
        });
    }
    if !looks_like_sqlite(path) {
        return Err(not_a_database());
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let conn = match open_ro(path, flags) {
        Ok(c) => c,
        Err(e @ JournalError::NotKizuki(_)) => return Err(e),
        // Read-only media: SQLite cannot make the shared-memory file a
        // WAL reader needs. Nothing can change the file there: read it as
        // immutable.
        Err(_) => open_ro(&immutable_uri(path), flags | OpenFlags::SQLITE_OPEN_URI)?,
    };
    Ok(Journal {
        conn,
        path: path.to_path_buf(),
    })
}

fn open_ro(path: &Path, flags: OpenFlags) -> Result<Connection, JournalError> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    check_readable(&conn)?;
    check_ours(&conn, path)?;
    Ok(conn)
}

/// `file:<path>?immutable=1`, with the characters a URI reserves escaped.
fn immutable_uri(path: &Path) -> PathBuf {
    let raw = crate::escape::os_lossless(path.as_os_str());
    let mut out = String::from("file:");
    for c in raw.chars() {
        match c {
            '%' | '?' | '#' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push_str("?immutable=1");
    PathBuf::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_journal_has_current_schema_and_wal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("journal.sqlite3");
        let (j, w) = open_for_writing(&p, SystemTime::UNIX_EPOCH).unwrap();
        assert!(w.is_empty());
        let v: i64 = j
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let mode: String = j
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(j);
        // Reopening does not migrate twice.
        let (_j, w) = open_for_writing(&p, SystemTime::UNIX_EPOCH).unwrap();
        assert!(w.is_empty());
    }

    #[test]
    fn journal_from_a_newer_kizuki_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("journal.sqlite3");
        {
            let c = Connection::open(&p).unwrap();
            c.pragma_update(None, "user_version", 99).unwrap();
        }
        let e = open_for_writing(&p, SystemTime::UNIX_EPOCH).err().unwrap();
        assert!(matches!(e, JournalError::NewerSchema { found: 99, .. }));
        assert!(p.exists(), "a newer journal is not moved aside");
    }
}
