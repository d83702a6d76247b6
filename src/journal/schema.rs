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
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn configure(conn: &Connection) -> Result<(), JournalError> {
    conn.busy_timeout(Duration::from_secs(5))?;
    // WAL: readers (history, verify, the GUI) never block the writer.
    // synchronous=NORMAL in WAL mode survives a killed process; only a power
    // cut can lose the last commits, never corrupt the file.
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Some filesystems cannot share memory; the default journal still
        // keeps every commit atomic.
        conn.pragma_update(None, "journal_mode", "delete")?;
    }
    conn.pragma_update(None, "synchronous", "normal")?;
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
    let mut conn = Connection::open(path)?;
    configure(&conn)?;
    check_readable(&conn)?;
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

pub(super) fn open_for_writing(
    path: &Path,
    now: SystemTime,
) -> Result<(Journal, Vec<JournalWarning>), JournalError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let opened = if looks_like_sqlite(path) {
        open_rw(path)
    } else {
        Err(not_a_database())
    };
    match opened {
        Ok(j) => Ok((j, Vec::new())),
        Err(e) if is_damage(&e) && path.exists() => {
            let moved_to = quarantine_all(path, now)?;
            let j = open_rw(path)?;
            Ok((j, vec![JournalWarning::Recovered { moved_to }]))
        }
        Err(e) => Err(e),
    }
}

pub(super) fn open_existing(path: &Path) -> Result<Journal, JournalError> {
    if !path.exists() {
        return Err(JournalError::Missing(path.to_path_buf()));
    }
    if !looks_like_sqlite(path) {
        return Err(not_a_database());
    }
    // Read-write without create: a reader may need to recover a WAL left by
    // a killed writer, which a read-only handle cannot do.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    check_readable(&conn)?;
    let mut conn = conn;
    // An older layout is brought up to date (migrations only add).
    migrate(&mut conn)?;
    Ok(Journal {
        conn,
        path: path.to_path_buf(),
    })
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
