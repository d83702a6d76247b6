//! Reading the journal a page at a time, in record order, optionally only
//! what concerns one user: the guard answers `kizuki history` of every
//! user from one journal this way (bounded replies, no user sees another
//! user's programs).

use std::time::SystemTime;

use rusqlite::{OptionalExtension, Row, params};

use super::query::{EventRow, SessionRow, name_of, opt_ms, opt_text, session_row};
use super::{Journal, JournalError, to_millis};

/// Records about nobody in particular that every user may read: they say
/// when the journal lost, cut or recovered records, or started.
pub const SHARED_KINDS: &[&str] = &["dropped", "recovered", "pruned", "app-start", "app-stop"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageQuery {
    pub exe: Option<String>,
    pub since: Option<SystemTime>,
    /// Only records about this uid's processes (and [`SHARED_KINDS`]).
    pub uid: Option<u32>,
    /// Only records after this id (the previous page's `next_after`).
    pub after: i64,
    /// Only records before this id (the previous page's `next_before`,
    /// when reading newest first).
    pub before: Option<i64>,
    /// Newest first: the window shows a program's latest connections.
    pub newest_first: bool,
    /// Most sessions, and most events, in the page.
    pub limit: usize,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub sessions: Vec<SessionRow>,
    pub events: Vec<EventRow>,
    /// Ask again with `after` set to this for the rest; `None`: all read.
    pub next_after: Option<i64>,
    /// Newest first: ask again with `before` set to this for older
    /// records; `None`: all read.
    pub next_before: Option<i64>,
}

/// Sessions after `?1` and before `?6`, in id order (`order`: ASC or DESC).
fn sessions_sql(order: &str) -> String {
    format!(
        "SELECT o.id, o.program, o.pid, o.protocol, o.local, o.remote,
                coalesce(c.state, o.state), o.ts, c.ts
         FROM records o
         LEFT JOIN records c ON c.ref = o.id AND c.kind = 'closed'
         WHERE o.kind = 'opened' AND o.id > ?1 AND o.id < ?6 AND o.ts >= ?2
           AND (?3 IS NULL OR o.program IN (SELECT id FROM programs WHERE exe = ?3))
           AND (?4 IS NULL OR o.uid = ?4)
         ORDER BY o.id {order}
         LIMIT ?5"
    )
}

fn events_sql(order: &str) -> String {
    let shared = SHARED_KINDS
        .iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT r.id, r.ts, r.kind, p.exe, p.name, p.sha256, r.detail
         FROM records r LEFT JOIN programs p ON p.id = r.program
         WHERE r.kind NOT IN ('opened', 'closed', 'seen') AND r.id > ?1 AND r.id < ?6
           AND r.ts >= ?2
           AND (?3 IS NULL OR r.program IN (SELECT id FROM programs WHERE exe = ?3))
           AND (?4 IS NULL OR r.uid = ?4 OR (r.uid IS NULL AND r.kind IN ({shared})))
         ORDER BY r.id {order}
         LIMIT ?5"
    )
}

fn event_row(r: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: r.get(0)?,
        at: opt_ms(r.get(1)?).unwrap_or(SystemTime::UNIX_EPOCH),
        kind: opt_text(r.get(2)?).unwrap_or_default(),
        exe: opt_text(r.get(3)?),
        name: opt_text(r.get(4)?),
        sha256: opt_text(r.get(5)?),
        detail: opt_text(r.get(6)?)
            .and_then(|d| serde_json::from_str(&d).ok())
            .unwrap_or(serde_json::Value::Null),
    })
}

impl Journal {
    /// One page of sessions and events after `q.after` (and before
    /// `q.before`), in record order or, with `q.newest_first`, newest
    /// first. Both lists end at the same record, so the next page neither
    /// repeats nor skips anything.
    pub fn page(&self, q: &PageQuery) -> Result<Page, JournalError> {
        let since = q.since.map(to_millis).unwrap_or(i64::MIN);
        let limit = i64::try_from(q.limit.max(1)).unwrap_or(i64::MAX);
        let uid = q.uid.map(i64::from);
        let before = q.before.unwrap_or(i64::MAX);
        let order = if q.newest_first { "DESC" } else { "ASC" };
        let names = self.program_names(None)?;
        let mut sessions = self
            .connection()
            .prepare_cached(&sessions_sql(order))?
            .query_map(params![q.after, since, q.exe, uid, limit, before], |r| {
                session_row(r, &names)
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut events = self
            .connection()
            .prepare_cached(&events_sql(order))?
            .query_map(
                params![q.after, since, q.exe, uid, limit, before],
                event_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        // A full list may have more beyond its last id: the page ends at
        // the nearer of the two ends.
        let full = |n: usize, last: Option<i64>| last.filter(|_| n >= q.limit.max(1));
        let ends = [
            full(sessions.len(), sessions.last().map(|s| s.id)),
            full(events.len(), events.last().map(|e| e.id)),
        ]
        .into_iter()
        .flatten();
        let (next_after, next_before) = if q.newest_first {
            let end = ends.max();
            if let Some(end) = end {
                sessions.retain(|s| s.id >= end);
                events.retain(|e| e.id >= end);
            }
            (None, end)
        } else {
            let end = ends.min();
            if let Some(end) = end {
                sessions.retain(|s| s.id <= end);
                events.retain(|e| e.id <= end);
            }
            (end, None)
        };
        let mut detail = self
            .connection()
            .prepare_cached("SELECT detail FROM records WHERE id = ?1 AND detail IS NOT NULL")?;
        for row in &mut sessions {
            let text: Option<String> =
                detail.query_row(params![row.id], |r| r.get(0)).optional()?;
            if let Some((name, source)) = text.as_deref().and_then(name_of) {
                row.remote_name = Some(name);
                row.remote_name_source = Some(source);
            }
        }
        Ok(Page {
            sessions,
            events,
            next_after,
            next_before,
        })
    }
}
