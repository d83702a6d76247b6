//! The guard's evidence journal on the wire: what `kizuki history` asks
//! ([`HistoryQuery`]) and the guard answers ([`HistoryPage`],
//! [`HistoryVerify`]), a page at a time so no reply passes
//! [`MAX_LINE`](super::api::MAX_LINE). Times are milliseconds since 1970
//! (UTC), as in the journal. Converted to and from the journal's own rows
//! so the CLI prints the guard's journal exactly as a per-user one.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::journal::chain::{BadRecord, Head, Problem, VerifyReport};
use crate::journal::{EventRow, SessionRow, from_millis, to_millis};

/// Most sessions, and most events, in one page.
pub const MAX_PAGE: u32 = 200;

/// The filters of `kizuki history` and where the page starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only this executable (its path as `scan` shows it, lossless text).
    #[serde(default)]
    pub exe: Option<String>,
    /// Only what began at or after this time.
    #[serde(default)]
    pub since_ms: Option<i64>,
    /// Only records after this id (the previous page's `next_after`).
    #[serde(default)]
    pub after: i64,
    /// Only records before this id (the previous page's `next_before`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    /// Newest first (the window shows a program's latest connections).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub newest_first: bool,
    /// Most sessions and most events; the guard caps it at [`MAX_PAGE`].
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Whose records a page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "kebab-case", deny_unknown_fields)]
pub enum HistoryScope {
    /// Every user's (root, or a member of an admin group).
    All,
    /// Only records about this uid's processes, its own actions, and what
    /// the journal says about itself (drops, recoveries, pruning).
    Own { uid: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireHead {
    pub id: Option<i64>,
    pub at_ms: Option<i64>,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireSession {
    pub id: i64,
    pub exe: Option<String>,
    pub name: Option<String>,
    pub sha256: Option<String>,
    pub pid: Option<u32>,
    pub protocol: String,
    pub local: String,
    pub remote: Option<String>,
    pub state: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: Option<i64>,
    pub remote_name: Option<String>,
    pub remote_name_source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireEvent {
    pub id: i64,
    pub at_ms: i64,
    pub kind: String,
    pub exe: Option<String>,
    pub name: Option<String>,
    pub sha256: Option<String>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryPage {
    pub scope: HistoryScope,
    pub head: WireHead,
    pub sessions: Vec<WireSession>,
    pub events: Vec<WireEvent>,
    /// Ask again with `after` set to this for more; `None`: that was all.
    pub next_after: Option<i64>,
    /// Newest first: ask again with `before` set to this for older ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireBad {
    pub id: i64,
    pub at_ms: Option<i64>,
    pub problem: Problem,
}

/// The guard's `history verify`: the chain recomputed, checked against
/// the head the guard keeps outside the database and in memory, and the
/// recoveries the chain records (each names the head it replaced).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryVerify {
    pub records: u64,
    pub first_id: Option<i64>,
    pub head: WireHead,
    pub first_bad: Option<WireBad>,
    pub recoveries: Vec<WireEvent>,
}

fn ms(t: Option<SystemTime>) -> Option<i64> {
    t.map(to_millis)
}

impl From<&Head> for WireHead {
    fn from(h: &Head) -> Self {
        WireHead {
            id: h.id,
            at_ms: ms(h.at),
            hash: h.hash.clone(),
        }
    }
}

impl WireHead {
    pub fn head(&self) -> Head {
        Head {
            id: self.id,
            at: self.at_ms.map(from_millis),
            hash: self.hash.clone(),
        }
    }
}

impl From<&SessionRow> for WireSession {
    fn from(s: &SessionRow) -> Self {
        WireSession {
            id: s.id,
            exe: s.exe.clone(),
            name: s.name.clone(),
            sha256: s.sha256.clone(),
            pid: s.pid,
            protocol: s.protocol.clone(),
            local: s.local.clone(),
            remote: s.remote.clone(),
            state: s.state.clone(),
            first_seen_ms: to_millis(s.first_seen),
            last_seen_ms: ms(s.last_seen),
            remote_name: s.remote_name.clone(),
            remote_name_source: s.remote_name_source.clone(),
        }
    }
}

impl WireSession {
    pub fn row(&self) -> SessionRow {
        SessionRow {
            id: self.id,
            exe: self.exe.clone(),
            name: self.name.clone(),
            sha256: self.sha256.clone(),
            pid: self.pid,
            protocol: self.protocol.clone(),
            local: self.local.clone(),
            remote: self.remote.clone(),
            state: self.state.clone(),
            first_seen: from_millis(self.first_seen_ms),
            last_seen: self.last_seen_ms.map(from_millis),
            remote_name: self.remote_name.clone(),
            remote_name_source: self.remote_name_source.clone(),
        }
    }
}

impl From<&EventRow> for WireEvent {
    fn from(e: &EventRow) -> Self {
        WireEvent {
            id: e.id,
            at_ms: to_millis(e.at),
            kind: e.kind.clone(),
            exe: e.exe.clone(),
            name: e.name.clone(),
            sha256: e.sha256.clone(),
            detail: e.detail.clone(),
        }
    }
}

impl WireEvent {
    pub fn row(&self) -> EventRow {
        EventRow {
            id: self.id,
            at: from_millis(self.at_ms),
            kind: self.kind.clone(),
            exe: self.exe.clone(),
            name: self.name.clone(),
            sha256: self.sha256.clone(),
            detail: self.detail.clone(),
        }
    }
}

impl HistoryVerify {
    pub fn of(r: &VerifyReport, recoveries: Vec<WireEvent>) -> HistoryVerify {
        HistoryVerify {
            records: r.records,
            first_id: r.first_id,
            head: (&r.head).into(),
            first_bad: r.first_bad.as_ref().map(|b| WireBad {
                id: b.id,
                at_ms: ms(b.at),
                problem: b.problem.clone(),
            }),
            recoveries,
        }
    }

    pub fn report(&self) -> VerifyReport {
        VerifyReport {
            records: self.records,
            first_id: self.first_id,
            head: self.head.head(),
            first_bad: self.first_bad.as_ref().map(|b| BadRecord {
                id: b.id,
                at: b.at_ms.map(from_millis),
                problem: b.problem.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_round_trip_and_unknown_fields_are_refused() {
        let q = HistoryQuery {
            exe: Some("/usr/bin/curl".into()),
            since_ms: Some(1),
            after: 7,
            limit: Some(10),
            ..HistoryQuery::default()
        };
        let line = serde_json::to_string(&q).unwrap();
        assert_eq!(serde_json::from_str::<HistoryQuery>(&line).unwrap(), q);
        let back = HistoryQuery {
            before: Some(40),
            newest_first: true,
            ..q
        };
        let line = serde_json::to_string(&back).unwrap();
        assert_eq!(serde_json::from_str::<HistoryQuery>(&line).unwrap(), back);
        assert!(serde_json::from_str::<HistoryQuery>(r#"{"uid":0}"#).is_err());
        let bad = WireBad {
            id: 3,
            at_ms: None,
            problem: Problem::TailRemoved { last: 9 },
        };
        let line = serde_json::to_string(&bad).unwrap();
        assert_eq!(serde_json::from_str::<WireBad>(&line).unwrap(), bad);
    }
}
