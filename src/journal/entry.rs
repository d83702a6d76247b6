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
        /// Whose process it was, when one user's (the guard's journal).
        uid: Option<u32>,
        at: SystemTime,
    },
    /// A program was still running at `at` (sent periodically and at stop).
    Seen {
        program: ProgramRef,
        uid: Option<u32>,
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
        uid: Option<u32>,
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
    /// A flood: past the per-program limit, sessions of one program to
    /// one remote address are counted in one record instead of one each.
    Aggregate(Box<Aggregate>),
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
            Entry::Aggregate(a) => a.first,
        }
    }

    /// The uid of the process the entry is about (for a guard action: who
    /// asked), when known.
    pub fn uid(&self) -> Option<u32> {
        match self {
            Entry::Program { uid, .. } | Entry::Seen { uid, .. } | Entry::Finding { uid, .. } => {
                *uid
            }
            Entry::Opened { conn, .. } | Entry::Closed { conn, .. } => conn.uid,
            Entry::Aggregate(a) => a.uid,
            Entry::Action {
                action: UserAction::Guard { by_uid, .. },
                ..
            } => *by_uid,
            _ => None,
        }
    }
}

/// Sessions counted together under a flood (see [`Entry::Aggregate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    pub program: Option<ProgramRef>,
    pub uid: Option<u32>,
    pub protocol: crate::model::Protocol,
    /// The remote address without its port (`None`: no remote).
    pub remote: Option<std::net::IpAddr>,
    /// Sessions that began, and that ended, in the window.
    pub opened: u64,
    pub closed: u64,
    pub first: SystemTime,
    pub last: SystemTime,
    /// Bytes of the sessions that ended, when counted.
    pub bytes_sent: Option<u64>,
    pub bytes_received: Option<u64>,
}
