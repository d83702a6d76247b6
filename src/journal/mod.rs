//! The evidence journal: which program talked to whom, when, with the
//! executable's hash — kept in SQLite, chained with SHA-256 so edits after
//! the fact are visible (see docs/JOURNAL.md).
//!
//! - [`schema`]: opening, migrations, moving a corrupt file aside;
//! - [`chain`]: canonical record content, hashing, verification, head;
//! - [`append`]: turning [`Entry`] values into chained rows;
//! - [`writer`]: the `kizuki-journal` thread and its bounded channel;
//! - [`stage`]: the monitor stage that feeds the writer;
//! - [`flood`]: counting a flood of sessions instead of writing each;
//! - [`query`]: sessions, programs and events for the CLI, GUI and reports;
//! - [`retention`]: pruning with an anchor, so the chain stays verifiable;
//! - [`render`]: table, JSON and formula-safe CSV output.

pub mod append;
pub mod chain;
pub mod entry;
pub mod flood;
pub mod guarded;
pub mod headfile;
pub mod page;
pub mod query;
pub mod render;
pub mod retention;
pub mod schema;
pub mod stage;
pub mod writer;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::Connection;

pub use append::Appender;
pub use chain::{BadRecord, Head, Problem, VerifyReport};
pub use entry::{Entry, ProgramRef, UserAction};
pub use query::{
    EventRow, ProgramRow, SessionQuery, SessionRow, parse_since, recorded_connections,
};
pub use retention::{DEFAULT_RETENTION_DAYS, PruneReport};
pub use stage::JournalStage;
pub use writer::{JournalHandle, JournalStatus, live_handle};

/// The journal's file name inside the data folder.
pub const FILE_NAME: &str = "journal.sqlite3";

/// Where the journal of a data folder lives.
pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// Errors of the journal library; the CLI and GUI turn them into messages.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    // The cause is in the text and not also a `source`: printed with its
    // chain (`{:#}`), a nested SQLite error would repeat itself.
    #[error("journal database: {}", sql_text(.0))]
    Sql(rusqlite::Error),
    #[error("journal file: {0}")]
    Io(std::io::Error),
    #[error("the journal was written by a newer kizuki (schema {found}, this one knows {known})")]
    NewerSchema { found: i64, known: i64 },
    #[error("no journal at {0}")]
    Missing(PathBuf),
    /// The file at the journal's place is not kizuki's journal (another
    /// application's database: `PRAGMA application_id`), or not a regular
    /// file of this user (a link, a pipe). It is not opened, not migrated.
    #[error("{0}")]
    NotKizuki(String),
    /// The journal is empty or gone, but its head outside the database
    /// says it held records up to `last`.
    #[error("{}", emptied_text(.path, *.last))]
    Emptied { path: PathBuf, last: i64 },
}

impl From<rusqlite::Error> for JournalError {
    fn from(e: rusqlite::Error) -> Self {
        JournalError::Sql(e)
    }
}

impl From<std::io::Error> for JournalError {
    fn from(e: std::io::Error) -> Self {
        JournalError::Io(e)
    }
}

fn emptied_text(path: &Path, last: i64) -> String {
    let path = crate::escape::os_lossless(path.as_os_str());
    if last > 0 {
        crate::i18n::tr_args(
            "journal.err.emptied",
            &[("path", &path), ("last", &last.to_string())],
        )
    } else {
        crate::i18n::tr_args("journal.err.zero_length", &[("path", &path)])
    }
}

/// SQLite's own message once: rusqlite's text for a failure repeats the
/// code's description when there is no extra message.
fn sql_text(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(code, Some(msg)) if !msg.is_empty() => {
            format!("{msg} ({})", code.extended_code)
        }
        rusqlite::Error::SqliteFailure(code, None) => code.to_string(),
        other => other.to_string(),
    }
}

impl JournalError {
    /// True when the disk (or the database's size limit) is full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, JournalError::Sql(e)
            if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull))
            || matches!(self, JournalError::Io(e) if e.raw_os_error() == Some(28))
    }
}

/// Something the user should know about the journal. Data, not text: the
/// GUI shows [`JournalWarning::message`], the CLI prints it on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalWarning {
    /// The file could not be read; it was kept at `moved_to` and a new
    /// journal was started.
    Recovered { moved_to: PathBuf },
    /// The journal was gone, though the head kept beside it says it held
    /// records up to `last`; a new one was started and says so first.
    Vanished { last: i64 },
    /// The journal ended before the head kept outside it (records up to
    /// `last` existed): its tail was cut. A chained record says so.
    TailCut { last: i64 },
    /// A companion file (`-wal`, `-shm`, the head file) was a link, a pipe
    /// or another user's file and was moved aside: the sentence says so.
    Refused { message: String },
    /// Writing stopped because the disk is full; it resumes by itself.
    DiskFull,
    /// Writing failed for another reason; records are being lost.
    WriteFailed { error: String },
    /// Records that could not be queued or written (counted, never silent).
    Dropped { count: u64 },
    /// No journal could be opened at all; kizuki runs without one.
    Unavailable { error: String },
}

impl JournalWarning {
    /// One sentence in the current language.
    pub fn message(&self) -> String {
        use crate::i18n::{tr, tr_args};
        match self {
            JournalWarning::Recovered { moved_to } => tr_args(
                "journal.warn.recovered",
                &[("path", &crate::escape::os_lossless(moved_to.as_os_str()))],
            ),
            JournalWarning::Vanished { last } => {
                tr_args("journal.warn.vanished", &[("last", &last.to_string())])
            }
            JournalWarning::TailCut { last } => {
                tr_args("gjournal.warn.tail_cut", &[("last", &last.to_string())])
            }
            JournalWarning::Refused { message } => message.clone(),
            JournalWarning::DiskFull => tr("journal.warn.disk_full"),
            JournalWarning::WriteFailed { error } => {
                tr_args("journal.warn.write_failed", &[("error", error)])
            }
            JournalWarning::Dropped { count } => {
                tr_args("journal.warn.dropped", &[("count", &count.to_string())])
            }
            JournalWarning::Unavailable { error } => {
                tr_args("journal.warn.unavailable", &[("error", error)])
            }
        }
    }
}

/// Milliseconds since the Unix epoch, the journal's time unit.
pub fn to_millis(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

pub fn from_millis(ms: i64) -> SystemTime {
    if ms >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

/// An open journal database.
pub struct Journal {
    conn: Connection,
    path: PathBuf,
}

impl Journal {
    /// Opens (creating and migrating) the journal for writing. A file that
    /// cannot be read is moved aside and a new one started; the returned
    /// warnings say so.
    pub fn open(
        path: &Path,
        now: SystemTime,
    ) -> Result<(Journal, Vec<JournalWarning>), JournalError> {
        schema::open_for_writing(path, now)
    }

    /// Opens an existing journal for reading and verifying. Nothing is
    /// created, migrated or moved: a damaged file is an error here.
    pub fn open_existing(path: &Path) -> Result<Journal, JournalError> {
        schema::open_existing(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the head beside the database (see [`headfile`]). A failure
    /// is not an error of the commit that came before: it only makes a cut
    /// tail harder to prove, so it is ignored here.
    pub(crate) fn note_head(&self) {
        let _ = headfile::write(&self.path, &self.conn);
    }

    /// The underlying connection, for tests and benchmarks that need SQL.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The newest record and its hash: write it down or export it, and a
    /// later rebuild of the chain can be told from the original.
    pub fn head(&self) -> Result<Head, JournalError> {
        chain::head(&self.conn)
    }

    /// Recomputes the whole chain, and checks it against the head kept
    /// outside the database (read first: a writer may add records while
    /// this runs, never remove them).
    pub fn verify(&self) -> Result<VerifyReport, JournalError> {
        let side = headfile::read(&self.path);
        // One read transaction: every query sees the same snapshot, so a
        // writer committing meanwhile cannot look like a cut tail.
        let tx = self.conn.unchecked_transaction()?;
        let mut report = chain::verify(&tx)?;
        if report.first_bad.is_none() {
            let now = headfile::current(&tx)?;
            // The side file (outside the database) first, then the copy in
            // the `meta` table (outside the records table).
            report.first_bad = side
                .iter()
                .chain(headfile::read_meta(&tx).iter())
                .find_map(|h| headfile::check(h, &now));
        }
        tx.commit()?;
        Ok(report)
    }

    /// Records a user's mark or firewall action at once (its own
    /// transaction). Returns the record's id. For a running GUI,
    /// [`JournalHandle::record_action`] queues it to the writer instead.
    pub fn record_action(
        &mut self,
        action: &UserAction,
        at: SystemTime,
    ) -> Result<i64, JournalError> {
        let (_, last) = self.write_entries_last(&[Entry::Action {
            action: action.clone(),
            at,
        }])?;
        Ok(last)
    }
}

#[cfg(test)]
mod single_writer_tests;
