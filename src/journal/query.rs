//! Reading the journal: connection sessions (an "opened" record joined with
//! its "closed" record), programs with first and last sight, and events
//! (findings, the user's marks and firewall actions, app start and stop).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, Row, params};

use super::{Journal, JournalError, from_millis, to_millis};

/// What to read. `exe` is the executable path as `scan` prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionQuery {
    pub exe: Option<String>,
    /// Only what began at or after this time.
    pub since: Option<SystemTime>,
    pub limit: Option<usize>,
}

/// One connection session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Id of the session's "opened" record.
    pub id: i64,
    pub exe: Option<String>,
    /// Program name; `None` when no process could be seen holding it.
    pub name: Option<String>,
    pub sha256: Option<String>,
    pub pid: Option<u32>,
    pub protocol: String,
    pub local: String,
    pub remote: Option<String>,
    /// The state at the last sight.
    pub state: String,
    pub first_seen: SystemTime,
    /// `None` while it is open, or when kizuki stopped without seeing it end.
    pub last_seen: Option<SystemTime>,
    /// The remote's host name as known when it opened, and how it was
    /// learnt ("dns", "sni", "http").
    pub remote_name: Option<String>,
    pub remote_name_source: Option<String>,
}

/// A program the journal knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramRow {
    pub exe: Option<String>,
    pub name: String,
    pub sha256: Option<String>,
    pub first_seen: Option<SystemTime>,
    pub last_seen: Option<SystemTime>,
    pub sessions: u64,
}

/// Anything that is not a session: `kind` is "finding", "mark",
/// "firewall", "app-start", "app-stop", "dropped", "pruned" or "program".
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub id: i64,
    pub at: SystemTime,
    pub kind: String,
    pub exe: Option<String>,
    pub name: Option<String>,
    pub sha256: Option<String>,
    pub detail: serde_json::Value,
}

pub(super) fn opt_text(v: SqlValue) -> Option<String> {
    match v {
        SqlValue::Text(s) if !s.is_empty() => Some(s),
        SqlValue::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

pub(super) fn opt_ms(v: SqlValue) -> Option<SystemTime> {
    match v {
        SqlValue::Integer(ms) => Some(from_millis(ms)),
        _ => None,
    }
}

fn limit(q: &SessionQuery) -> i64 {
    q.limit
        .map(|l| i64::try_from(l).unwrap_or(i64::MAX))
        .unwrap_or(-1)
}

/// Sessions of one program: the covering `records_sessions` index gives
/// the "opened" rows in time order, `records_by_ref` their "closed" rows;
/// no table row is read (see `plan_tests`).
const SESSIONS: &str = "
    SELECT o.id, o.program, o.pid, o.protocol, o.local, o.remote,
           coalesce(c.state, o.state), o.ts, c.ts
    FROM records o
    LEFT JOIN records c ON c.ref = o.id
    WHERE o.kind = 'opened' AND o.program = ?1 AND o.ts >= ?2
    ORDER BY o.ts
    LIMIT ?3";

const SESSIONS_ALL: &str = "
    SELECT o.id, o.program, o.pid, o.protocol, o.local, o.remote,
           coalesce(c.state, o.state), o.ts, c.ts
    FROM records o
    LEFT JOIN records c ON c.ref = o.id
    WHERE o.kind = 'opened' AND o.ts >= ?1
    ORDER BY o.ts, o.id
    LIMIT ?2";

pub(super) type ProgramNames = HashMap<i64, (Option<String>, Option<String>, Option<String>)>;

pub(super) fn session_row(r: &Row<'_>, names: &ProgramNames) -> rusqlite::Result<SessionRow> {
    let program: Option<i64> = r.get(1)?;
    let (exe, name, sha256) = program
        .and_then(|p| names.get(&p).cloned())
        .unwrap_or((None, None, None));
    Ok(SessionRow {
        id: r.get(0)?,
        exe,
        name,
        sha256,
        pid: r
            .get::<_, Option<i64>>(2)
            .ok()
            .flatten()
            .and_then(|p| u32::try_from(p).ok()),
        protocol: opt_text(r.get(3)?).unwrap_or_default(),
        local: opt_text(r.get(4)?).unwrap_or_default(),
        remote: opt_text(r.get(5)?),
        state: opt_text(r.get(6)?).unwrap_or_default(),
        first_seen: opt_ms(r.get(7)?).unwrap_or(SystemTime::UNIX_EPOCH),
        last_seen: opt_ms(r.get(8)?),
        remote_name: None,
        remote_name_source: None,
    })
}

/// The name an "opened" record's detail holds, checked again (the file
/// is as hostile as anything a user-level program can write).
pub(super) fn name_of(detail: &str) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(detail).ok()?;
    let name = crate::names::host::clean_host(v.get("remote_name")?.as_str()?)?;
    let source = crate::names::NameSource::parse(v.get("remote_name_source")?.as_str()?)?;
    Some((name, source.as_str().to_owned()))
}

const EVENT_KINDS: &str = "kind NOT IN ('opened', 'closed', 'seen')";

impl Journal {
    /// Program ids with path, name and SHA-256 (those at `exe`, or all).
    pub(super) fn program_names(&self, exe: Option<&str>) -> Result<ProgramNames, JournalError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, exe, name, sha256 FROM programs WHERE ?1 IS NULL OR exe = ?1",
        )?;
        let rows = stmt.query_map([exe], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                (
                    opt_text(r.get(1)?),
                    opt_text(r.get(2)?),
                    opt_text(r.get(3)?),
                ),
            ))
        })?;
        let mut map = HashMap::new();
        for row in rows {
            let (id, names) = row?;
            map.insert(id, names);
        }
        Ok(map)
    }

    /// Connection sessions, oldest first.
    pub fn sessions(&self, q: &SessionQuery) -> Result<Vec<SessionRow>, JournalError> {
        let since = q.since.map(to_millis).unwrap_or(i64::MIN);
        let names = self.program_names(q.exe.as_deref())?;
        let mut rows = Vec::new();
        match &q.exe {
            Some(_) => {
                // One indexed range per program at that path (one per hash).
                let mut stmt = self.conn.prepare_cached(SESSIONS)?;
                for id in names.keys() {
                    let part = stmt
                        .query_map(params![id, since, limit(q)], |r| session_row(r, &names))?
                        .collect::<Result<Vec<_>, _>>()?;
                    rows.extend(part);
                }
                if names.len() > 1 {
                    rows.sort_by_key(|s: &SessionRow| (s.first_seen, s.id));
                }
                if let Some(l) = q.limit {
                    rows.truncate(l);
                }
            }
            None => {
                let mut stmt = self.conn.prepare_cached(SESSIONS_ALL)?;
                rows = stmt
                    .query_map(params![since, limit(q)], |r| session_row(r, &names))?
                    .collect::<Result<Vec<_>, _>>()?;
            }
        }
        // Names live in the opened record's detail, outside the covering
        // index: one look-up by id per session.
        let mut detail = self
            .conn
            .prepare_cached("SELECT detail FROM records WHERE id = ?1 AND detail IS NOT NULL")?;
        for row in &mut rows {
            let text: Option<String> =
                detail.query_row(params![row.id], |r| r.get(0)).optional()?;
            if let Some((name, source)) = text.as_deref().and_then(name_of) {
                row.remote_name = Some(name);
                row.remote_name_source = Some(source);
            }
        }
        Ok(rows)
    }

    /// Findings, marks, firewall actions, app start/stop, drops, pruning
    /// and first sights of programs, oldest first.
    pub fn events(&self, q: &SessionQuery) -> Result<Vec<EventRow>, JournalError> {
        let since = q.since.map(to_millis).unwrap_or(i64::MIN);
        let base = format!(
            "SELECT r.id, r.ts, r.kind, p.exe, p.name, p.sha256, r.detail
             FROM records r LEFT JOIN programs p ON p.id = r.program
             WHERE r.{EVENT_KINDS} AND r.ts >= ?1"
        );
        let map = |r: &Row<'_>| -> rusqlite::Result<EventRow> {
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
        };
        let rows = match &q.exe {
            Some(exe) => {
                let sql = format!(
                    "{base} AND r.program IN (SELECT id FROM programs WHERE exe = ?2)
                     ORDER BY r.ts, r.id LIMIT ?3"
                );
                let mut stmt = self.conn.prepare_cached(&sql)?;
                stmt.query_map(params![since, exe, limit(q)], map)?
                    .collect::<Result<Vec<_>, _>>()?
            }
            None => {
                let sql = format!("{base} ORDER BY r.ts, r.id LIMIT ?2");
                let mut stmt = self.conn.prepare_cached(&sql)?;
                stmt.query_map(params![since, limit(q)], map)?
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        Ok(rows)
    }

    /// Programs (all, or those at `exe`) with first and last sight and
    /// their number of sessions.
    pub fn programs(&self, exe: Option<&str>) -> Result<Vec<ProgramRow>, JournalError> {
        let mut ids: Vec<(i64, ProgramRow)> = Vec::new();
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, exe, name, sha256 FROM programs
             WHERE ?1 IS NULL OR exe = ?1 ORDER BY exe, name, id",
        )?;
        let rows = stmt.query_map([exe], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                ProgramRow {
                    exe: opt_text(r.get(1)?),
                    name: opt_text(r.get(2)?).unwrap_or_default(),
                    sha256: opt_text(r.get(3)?),
                    first_seen: None,
                    last_seen: None,
                    sessions: 0,
                },
            ))
        })?;
        for row in rows {
            ids.push(row?);
        }
        let mut opened = self.conn.prepare_cached(
            "SELECT min(ts), max(ts), count(*) FROM records
             WHERE kind = 'opened' AND program = ?1",
        )?;
        let mut others = self.conn.prepare_cached(
            "SELECT min(ts), max(ts) FROM records
             WHERE program = ?1 AND kind <> 'opened'",
        )?;
        for (id, row) in &mut ids {
            let (f1, l1, n) = opened.query_row([*id], |r| {
                Ok((opt_ms(r.get(0)?), opt_ms(r.get(1)?), r.get::<_, i64>(2)?))
            })?;
            let (f2, l2) =
                others.query_row([*id], |r| Ok((opt_ms(r.get(0)?), opt_ms(r.get(1)?))))?;
            row.first_seen = [f1, f2].into_iter().flatten().min();
            row.last_seen = [l1, l2].into_iter().flatten().max();
            row.sessions = n.max(0) as u64;
        }
        Ok(ids.into_iter().map(|(_, r)| r).collect())
    }
}

/// `--since`: RFC 3339 (`2026-11-25T12:00:00Z`), a date (`2026-11-25`,
/// midnight UTC), or a time ago: a number with `s`, `m`, `h`, `d` or `w`
/// (`90m`, `2h`, `3d`, `1w`).
pub fn parse_since(s: &str, now: SystemTime) -> Option<SystemTime> {
    let s = s.trim();
    if let Some(t) = crate::clock::parse_rfc3339(s) {
        return Some(t);
    }
    if let Some(t) = crate::clock::parse_rfc3339(&format!("{s}T00:00:00Z")) {
        return Some(t);
    }
    let unit = s.chars().last()?;
    let n: u64 = s.get(..s.len() - unit.len_utf8())?.parse().ok()?;
    let secs = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return None,
    };
    now.checked_sub(Duration::from_secs(n.checked_mul(secs)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::clock::{FakeClock, rfc3339};

    #[test]
    fn since_accepts_rfc3339_dates_and_ages() {
        let now = FakeClock::at_noon().now();
        let at = |s: &str| parse_since(s, now).map(rfc3339);
        assert_eq!(
            at("2026-11-24T08:00:00Z").as_deref(),
            Some("2026-11-24T08:00:00Z")
        );
        assert_eq!(at("2026-11-24").as_deref(), Some("2026-11-24T00:00:00Z"));
        assert_eq!(at("2h").as_deref(), Some("2026-11-25T10:00:00Z"));
        assert_eq!(at("3d").as_deref(), Some("2026-11-22T12:00:00Z"));
        assert_eq!(at("1w").as_deref(), Some("2026-11-18T12:00:00Z"));
        assert_eq!(at("90m").as_deref(), Some("2026-11-25T10:30:00Z"));
        assert_eq!(at("yesterday"), None);
        assert_eq!(at("2x"), None);
        assert_eq!(at(""), None);
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;

    fn plan(j: &Journal, sql: &str, n: usize) -> String {
        let mut stmt = j
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let params: Vec<rusqlite::types::Value> =
            (0..n).map(|_| rusqlite::types::Value::Integer(0)).collect();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn per_program_queries_use_indexes_not_scans() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(&dir.path().join("j.sqlite3"), SystemTime::UNIX_EPOCH).unwrap();
        let p = plan(&j, SESSIONS, 3);
        assert!(!p.contains("SCAN"), "{p}");
        assert!(!p.contains("TEMP B-TREE"), "no sorting: {p}");
        assert!(p.contains("COVERING INDEX records_sessions"), "{p}");
        assert!(p.contains("COVERING INDEX records_by_ref"), "{p}");
        let p = plan(
            &j,
            "SELECT min(ts), max(ts), count(*) FROM records WHERE kind = 'opened' AND program = ?1",
            1,
        );
        assert!(p.contains("records_sessions") && !p.contains("SCAN"), "{p}");
        let p = plan(
            &j,
            "SELECT min(ts), max(ts) FROM records WHERE program = ?1 AND kind <> 'opened'",
            1,
        );
        assert!(
            p.contains("records_by_program") && !p.contains("SCAN"),
            "{p}"
        );
        let p = plan(
            &j,
            &format!("SELECT r.id FROM records r WHERE r.{EVENT_KINDS} AND r.ts >= ?1"),
            1,
        );
        assert!(p.contains("records_events"), "{p}");
    }
}

/// Every recorded session of the program at `exe`, as connections for a
/// report. `None` when there is no journal or it cannot be read (the report
/// then falls back to the live snapshot and says so).
pub fn recorded_connections(
    data_dir: &std::path::Path,
    exe: &std::path::Path,
    limit: usize,
) -> Option<Vec<crate::model::Connection>> {
    let exe = crate::escape::os_lossless(exe.as_os_str());
    // The guard's journal when the guard answers (it sees every process
    // of this user); else the user's own.
    let rows = match super::guarded::history(
        &mut super::guarded::link(),
        Some(exe.clone()),
        None,
        limit,
    ) {
        Ok(h) => h.sessions.into_iter().take(limit).collect(),
        Err(_) => {
            let path = super::path_in(data_dir);
            if !path.exists() {
                return None;
            }
            let j = super::Journal::open_existing(&path).ok()?;
            j.sessions(&SessionQuery {
                exe: Some(exe),
                since: None,
                limit: Some(limit),
            })
            .ok()?
        }
    };
    Some(
        rows.into_iter()
            .filter_map(|r| {
                Some(crate::model::Connection {
                    pid: r.pid,
                    protocol: if r.protocol == "udp" {
                        crate::model::Protocol::Udp
                    } else {
                        crate::model::Protocol::Tcp
                    },
                    local: r.local.parse().ok()?,
                    remote: r.remote.as_deref().and_then(|s| s.parse().ok()),
                    state: crate::model::SockState::Unknown,
                    first_seen: r.first_seen,
                    last_seen: r.last_seen.unwrap_or(r.first_seen),
                    live: r.last_seen.is_none(),
                    uid: None,
                    remote_name: r.remote_name.as_ref().and_then(|n| {
                        Some(std::sync::Arc::new(crate::names::RemoteName {
                            name: n.clone(),
                            source: crate::names::NameSource::parse(
                                r.remote_name_source.as_deref()?,
                            )?,
                            seen: r.first_seen,
                        }))
                    }),
                    bytes_sent: None,
                    bytes_received: None,
                })
            })
            .collect(),
    )
}
