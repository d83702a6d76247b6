//! What the journal records, as plain data: the monitor stage, the GUI and
//! the CLI build [`Entry`] values; [`super::append`] turns them into rows.

use std::time::SystemTime;

use serde::Serialize;

use crate::escape::os_lossless;
use crate::model::{Connection, FindingKind, Mark, Program, ProgramKey, Severity};

/// A program as the journal names it: executable path (lossless text),
/// display name and SHA-256. Two hashes at one path are two programs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ProgramRef {
    pub exe: Option<String>,
    pub name: String,
    pub sha256: Option<String>,
}

impl ProgramRef {
    pub fn of(p: &Program) -> ProgramRef {
        ProgramRef {
            exe: p.exe.as_ref().map(|e| os_lossless(e.as_os_str())),
            name: p.name.clone(),
            sha256: p.sha256.clone(),
        }
    }

    /// For a key whose program is not in the snapshot (rare: it left).
    pub fn of_key(key: &ProgramKey) -> ProgramRef {
        match key {
            ProgramKey::Exe(path) => ProgramRef {
                exe: Some(os_lossless(path.as_os_str())),
                name: path
                    .file_name()
                    .map(os_lossless)
                    .unwrap_or_else(|| os_lossless(path.as_os_str())),
                sha256: None,
            },
            ProgramKey::Name(n) => ProgramRef {
                exe: None,
                name: n.clone(),
                sha256: None,
            },
            // A script program is recorded by its script.
            ProgramKey::Script { script, .. } => {
                ProgramRef::of_key(&ProgramKey::Exe(script.clone()))
            }
        }
    }
}

/// A decision or action of the user, recorded as evidence of what the user
/// (not a program) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserAction {
    /// The user marked a program (`None`: removed the mark).
    Mark {
        program: ProgramRef,
        mark: Option<Mark>,
        previous: Option<Mark>,
    },
    /// A firewall change the user asked for: `verb` such as "block",
    /// "unblock", "suspend", "cut-connections"; `ok` whether it worked;
    /// `detail` what was done or why it failed.
    Firewall {
        program: Option<ProgramRef>,
        verb: String,
        ok: bool,
        detail: String,
    },
    /// A change of enforcement asked of the guard service, with who made
    /// it as the guard reports it (`by_uid`, `authority`: root, polkit).
    Guard {
        program: Option<ProgramRef>,
        verb: String,
        ok: bool,
        by_uid: Option<u32>,
        authority: Option<String>,
        detail: String,
    },
}

impl UserAction {
    /// The panic button pressed (`on`) or released, and how that went.
    pub fn panic<T, E: std::fmt::Display>(on: bool, result: &Result<T, E>) -> UserAction {
        UserAction::Firewall {
            program: None,
            verb: if on { "panic" } else { "unpanic" }.into(),
            ok: result.is_ok(),
            detail: result
                .as_ref()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default(),
        }
    }
}

/// One thing to record.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A program was seen (written only the first time the journal sees it).
    Program {
        program: ProgramRef,
        at: SystemTime,
    },
    /// A program was still running at `at` (sent periodically and at stop).
    Seen {
        program: ProgramRef,
        at: SystemTime,
    },
    /// A connection session began (`conn.first_seen`).
    Opened {
        program: Option<ProgramRef>,
        conn: Connection,
    },
    /// A connection session ended (`conn.last_seen`, last state).
    Closed {
        program: Option<ProgramRef>,
        conn: Connection,
    },
    /// A detector raised a finding.
    Finding {
        program: ProgramRef,
        kind: FindingKind,
        severity: Severity,
        summary: String,
        evidence: serde_json::Map<String, serde_json::Value>,
        at: SystemTime,
    },
    Action {
        action: UserAction,
        at: SystemTime,
    },
    AppStart {
        at: SystemTime,
        detail: serde_json::Value,
    },
    /// The journal found at start could not be used and was set aside;
    /// `detail` names where it went and its last known head, so the new
    /// chain says what it replaced.
    Recovered {
        at: SystemTime,
        detail: serde_json::Value,
    },
    /// The app stopped: sessions still open are closed at `at`.
    AppStop {
        at: SystemTime,
    },
    /// `count` records were lost between `from` and `to`; `place` says
    /// where: "queue" (the channel was full) or "disk" (writing failed).
    Dropped {
        count: u64,
        from: SystemTime,
        to: SystemTime,
        place: &'static str,
    },
}

impl Entry {
    /// When it happened.
    pub fn at(&self) -> SystemTime {
        match self {
            Entry::Program { at, .. }
            | Entry::Seen { at, .. }
            | Entry::Finding { at, .. }
            | Entry::Action { at, .. }
            | Entry::AppStart { at, .. }
            | Entry::Recovered { at, .. }
            | Entry::AppStop { at }
            | Entry::Dropped { to: at, .. } => *at,
            Entry::Opened { conn, .. } => conn.first_seen,
            Entry::Closed { conn, .. } => conn.last_seen,
        }
    }
}
