//! The user's marks — trusted, unknown, blocked — tied to a program's
//! identity (executable path plus SHA-256), kept in `marks.json` in the data
//! folder. A changed executable does not inherit the mark of the old one.
//!
//! [`MarkStore`] is shared by the CLI and the GUI (and by both at once: it
//! notices when another process changed the file); [`MarksStage`] puts the
//! marks into every snapshot.

mod file;
mod stage;
mod store;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

pub use crate::platform::boot::boot_id;
pub use file::{FileProblem, is_sha256};
pub use stage::MarksStage;
pub use store::{Changed, MarkError, MarkStore, MarkWarning};

use crate::model::Mark;

/// The marks file inside the data folder.
pub const MARKS_FILE: &str = "marks.json";

/// Version of the file's layout; a file with another version is kept aside
/// and what can be read from it is taken over.
pub const SCHEMA_VERSION: u32 = 1;

/// How long a mark lasts, as the user chooses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MarkFor {
    /// One hour from now.
    Hour,
    /// Until the computer restarts (until kizuki restarts where the OS does
    /// not tell kizuki about restarts).
    Restart,
    #[default]
    Always,
}

impl MarkFor {
    pub const HOUR: Duration = Duration::from_secs(3600);

    pub const ALL: [MarkFor; 3] = [MarkFor::Hour, MarkFor::Restart, MarkFor::Always];

    pub fn as_str(self) -> &'static str {
        match self {
            MarkFor::Hour => "1h",
            MarkFor::Restart => "restart",
            MarkFor::Always => "always",
        }
    }
}

/// When a mark stops applying.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Until {
    Always,
    /// Until this moment (wall clock).
    Time(SystemTime),
    /// While the kernel's boot id is this one (Linux): until the computer
    /// restarts.
    Boot(String),
    /// While this kizuki process runs (where there is no boot id).
    Session(String),
}

/// One mark as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkEntry {
    pub exe: PathBuf,
    /// Lowercase hex SHA-256 of the executable the user marked.
    pub sha256: String,
    pub mark: Mark,
    pub set_at: SystemTime,
    pub until: Until,
}

/// What the marks say about one running program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lookup {
    /// The mark that applies (same path, same SHA-256, not expired).
    pub mark: Option<Mark>,
    /// A mark given to another SHA-256 at the same path: it does not apply.
    pub stale: Option<Mark>,
}

/// Reads the bytes of a marks file the way [`MarkStore`] does: every entry
/// that can be read, and what was wrong with the rest (fuzzing and property
/// tests drive the loader through this).
pub fn parse_file(bytes: &[u8]) -> (Vec<MarkEntry>, Option<FileProblem>) {
    let parsed = file::parse(bytes);
    (parsed.entries, parsed.problem)
}

/// The bytes [`MarkStore`] writes for `entries`.
pub fn render_file(entries: &[MarkEntry]) -> Vec<u8> {
    file::render(entries)
}

/// Only trust can be timed: a block or "unknown" that ends by itself would
/// surprise the user.
pub fn duration_allowed(mark: Mark, dur: MarkFor) -> bool {
    dur == MarkFor::Always || mark == Mark::Trusted
}
