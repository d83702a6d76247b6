//! Turning [`Entry`] values into chained rows, a batch per transaction.
//!
//! Rows are never changed once written: a connection session is an
//! "opened" record and a later "closed" record that points at it. The
//! writer remembers which sessions are open so it can link the two.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::json;

use super::chain::{self, Fields};
use super::entry::{Entry, ProgramRef, UserAction};
use super::headfile::SideHead;
use super::{Journal, JournalError, to_millis};
use crate::clock::rfc3339;
use crate::model::{Connection as Conn, Protocol, SockState};

/// Identifies an open session between its two records.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SessionKey {
    program: Option<i64>,
    pid: Option<u32>,
    protocol: Protocol,
    local: SocketAddr,
    remote: Option<SocketAddr>,
}

/// What the writer remembers between batches. Cloned before each batch so
/// a failed transaction leaves it as it was.
#[derive(Debug, Clone, Default)]
struct State {
    programs: HashMap<ProgramRef, i64>,
    /// Open sessions: id of the "opened" record and its state, oldest first.
    open: HashMap<SessionKey, VecDeque<(i64, SockState)>>,
}

/// Appends entries to a journal; the writer thread owns one.
pub struct Appender {
    journal: Journal,
    state: State,
    last: i64,
    /// The head after the last commit, kept in memory when the writer is
    /// the journal's only writer (the guard): a tail cut between two
    /// batches is found and recorded before the next one.
    expected: Option<SideHead>,
    /// Most bytes the journal may take; the writer prunes the oldest
    /// records past it (the guard's journal).
    size_cap: Option<u64>,
}

impl Appender {
    pub fn new(journal: Journal) -> Appender {
        Appender {
            journal,
            state: State::default(),
            last: 0,
            expected: None,
            size_cap: None,
        }
    }

    /// Caps the journal's size (see [`Journal::prune_to_size`]).
    pub fn set_size_cap(&mut self, max_bytes: Option<u64>) {
        self.size_cap = max_bytes;
    }

    pub fn size_cap(&self) -> Option<u64> {
        self.size_cap
    }

    /// Keeps the head in memory and checks it before every batch (only
    /// for a journal no one else appends to).
    pub fn watch_tail(&mut self) -> Result<(), JournalError> {
        self.expected = Some(super::headfile::current(&self.journal.conn)?);
        Ok(())
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn journal_mut(&mut self) -> &mut Journal {
        &mut self.journal
    }

    /// The oldest "opened" record whose session is still open, so pruning
    /// never cuts a session that has not ended.
    pub fn oldest_open(&self) -> Option<i64> {
        self.state
            .open
            .values()
            .filter_map(|q| q.front().map(|(id, _)| *id))
            .min()
    }

    /// Writes all entries in one transaction: all or nothing. Returns the
    /// number of records written.
    pub fn write_batch(&mut self, entries: &[Entry]) -> Result<usize, JournalError> {
        let saved = self.state.clone();
        let result = write(
            &mut self.journal.conn,
            &mut self.state,
            entries,
            self.expected.as_ref(),
        );
        match result {
            Ok((n, last)) => {
                if n > 0 {
                    self.last = last;
                    self.journal.note_head();
                }
                if self.expected.is_some() {
                    self.expected = super::headfile::current(&self.journal.conn).ok();
                }
                Ok(n)
            }
            Err(e) => {
                self.state = saved;
                Err(e)
            }
        }
    }
}

impl Journal {
    /// Writes entries in one transaction with no memory of open sessions
    /// (tools, tests). Prefer an [`Appender`] for a stream of entries.
    pub fn write_entries(&mut self, entries: &[Entry]) -> Result<usize, JournalError> {
        self.write_entries_last(entries).map(|(n, _)| n)
    }

    /// Like [`Journal::write_entries`], also returning the last record's id.
    pub(super) fn write_entries_last(
        &mut self,
        entries: &[Entry],
    ) -> Result<(usize, i64), JournalError> {
        let mut state = State::default();
        let r = write(&mut self.conn, &mut state, entries, None)?;
        self.note_head();
        Ok(r)
    }
}

struct Tx<'a> {
    tx: &'a rusqlite::Transaction<'a>,
    next_id: i64,
    prev: [u8; 32],
    written: usize,
    /// The uid of the entry being written: every row it makes carries it.
    uid: Option<i64>,
}

impl Tx<'_> {
    fn insert(&mut self, mut f: Fields, program_id: Option<i64>) -> Result<i64, JournalError> {
        f.id = self.next_id;
        f.uid = self.uid;
        let hash = chain::link(&self.prev, &f);
        self.tx
            .prepare_cached(
                "INSERT INTO records
                 (id, ts, kind, program, ref, pid, protocol, local, remote, state, detail, hash, uid)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                f.id,
                f.ts,
                f.kind,
                program_id,
                f.reference,
                f.pid,
                f.protocol,
                f.local,
                f.remote,
                f.state,
                f.detail,
                &hash[..],
                f.uid
            ])?;
        self.prev = hash;
        self.next_id += 1;
        self.written += 1;
        Ok(f.id)
    }

    /// The program's id, adding it (and its "program" record) when new.
    fn program(
        &mut self,
        state: &mut State,
        p: &ProgramRef,
        at: SystemTime,
    ) -> Result<i64, JournalError> {
        if let Some(id) = state.programs.get(p) {
            return Ok(*id);
        }
        let exe = p.exe.clone().unwrap_or_default();
        let sha = p.sha256.clone().unwrap_or_default();
        let found: Option<i64> = self
            .tx
            .prepare_cached("SELECT id FROM programs WHERE exe = ?1 AND sha256 = ?2 AND name = ?3")?
            .query_row(params![exe, sha, p.name], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                self.tx
                    .prepare_cached("INSERT INTO programs (exe, name, sha256) VALUES (?1, ?2, ?3)")?
                    .execute(params![exe, p.name, sha])?;
                let id = self.tx.last_insert_rowid();
                self.insert(
                    Fields {
                        ts: to_millis(at),
                        kind: "program".into(),
                        program: Some(p.clone()),
                        ..Fields::default()
                    },
                    Some(id),
                )?;
                id
            }
        };
        state.programs.insert(p.clone(), id);
        Ok(id)
    }
}

/// The program as the chain hashes it: an empty path is no path.
fn normalized(p: &ProgramRef) -> ProgramRef {
    ProgramRef {
        exe: p.exe.clone().filter(|e| !e.is_empty()),
        name: p.name.clone(),
        sha256: p.sha256.clone().filter(|s| !s.is_empty()),
    }
}

fn detail(v: serde_json::Value) -> Option<String> {
    Some(v.to_string())
}

fn session_fields(kind: &str, program: Option<&ProgramRef>, c: &Conn) -> Fields {
    Fields {
        ts: to_millis(c.first_seen),
        kind: kind.into(),
        program: program.cloned(),
        pid: c.pid.map(i64::from),
        protocol: Some(c.protocol.as_str().into()),
        local: Some(c.local.to_string()),
        remote: c.remote.map(|r| r.to_string()),
        state: Some(c.state.as_str().into()),
        // The remote's name as known when the session opened.
        detail: c.remote_name.as_ref().and_then(|n| {
            detail(serde_json::json!({
                "remote_name": n.name,
                "remote_name_source": n.source.as_str(),
            }))
        }),
        ..Fields::default()
    }
}

fn write(
    conn: &mut Connection,
    state: &mut State,
    entries: &[Entry],
    expected: Option<&SideHead>,
) -> Result<(usize, i64), JournalError> {
    if entries.is_empty() {
        return Ok((0, 0));
    }
    // IMMEDIATE: take the write lock before reading the tail, so another
    // process appending at the same time cannot fork the chain.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (last_id, prev) = chain::tail(&tx)?;
    // AUTOINCREMENT's counter: ids are never reused, even after deletions.
    let seq: i64 = tx
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'records'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let mut t = Tx {
        tx: &tx,
        next_id: last_id.max(seq) + 1,
        prev,
        written: 0,
        uid: None,
    };
    // The tail is not where the last commit left it: records were cut
    // behind the writer's back. The chain goes on from what is there,
    // and its next record says what was lost.
    if let Some(old) = expected
        && let Some(found) = super::headfile::cut_since(old, &super::headfile::current(&tx)?)
    {
        append_one(
            &mut t,
            state,
            &Entry::Recovered {
                at: entries[0].at(),
                detail: super::headfile::tail_cut_detail(old, &found),
            },
        )?;
    }
    for e in entries {
        t.uid = e.uid().map(i64::from);
        append_one(&mut t, state, e)?;
    }
    let written = t.written;
    let last = t.next_id - 1;
    if written > 0 {
        super::headfile::store_in_meta(&tx)?;
    }
    tx.commit()?;
    Ok((written, last))
}

fn append_one(t: &mut Tx<'_>, state: &mut State, e: &Entry) -> Result<(), JournalError> {
    match e {
        Entry::Program { program, at, .. } => {
            t.program(state, &normalized(program), *at)?;
        }
        Entry::Seen { program, at, .. } => {
            let p = normalized(program);
            let id = t.program(state, &p, *at)?;
            t.insert(
                Fields {
                    ts: to_millis(*at),
                    kind: "seen".into(),
                    program: Some(p),
                    ..Fields::default()
                },
                Some(id),
            )?;
        }
        Entry::Opened { program, conn } => {
            let p = program.as_ref().map(normalized);
            let pid = match &p {
                Some(p) => Some(t.program(state, p, conn.first_seen)?),
                None => None,
            };
            let id = t.insert(session_fields("opened", p.as_ref(), conn), pid)?;
            state
                .open
                .entry(key(pid, conn))
                .or_default()
                .push_back((id, conn.state));
        }
        Entry::Closed { program, conn } => {
            let p = program.as_ref().map(normalized);
            let pid = match &p {
                Some(p) => Some(t.program(state, p, conn.first_seen)?),
                None => None,
            };
            let k = key(pid, conn);
            let opened = state.open.get_mut(&k).and_then(|q| q.pop_front());
            if state.open.get(&k).is_some_and(|q| q.is_empty()) {
                state.open.remove(&k);
            }
            // The opening was lost (queue full, or before this run): record
            // it now from the session's own first-seen time.
            let opened = match opened {
                Some((id, _)) => id,
                None => t.insert(session_fields("opened", p.as_ref(), conn), pid)?,
            };
            t.insert(
                Fields {
                    ts: to_millis(conn.last_seen),
                    kind: "closed".into(),
                    program: p,
                    reference: Some(opened),
                    state: Some(conn.state.as_str().into()),
                    ..Fields::default()
                },
                pid,
            )?;
        }
        Entry::Finding {
            program,
            kind,
            severity,
            summary,
            evidence,
            at,
            ..
        } => {
            let p = normalized(program);
            let id = t.program(state, &p, *at)?;
            t.insert(
                Fields {
                    ts: to_millis(*at),
                    kind: "finding".into(),
                    program: Some(p),
                    detail: detail(json!({
                        "kind": kind.as_str(),
                        "severity": severity.as_str(),
                        "summary": summary,
                        "evidence": evidence,
                    })),
                    ..Fields::default()
                },
                Some(id),
            )?;
        }
        Entry::Action { action, at } => {
            let (kind, program, d) = match action {
                UserAction::Mark {
                    program,
                    mark,
                    previous,
                } => (
                    "mark",
                    Some(program),
                    json!({
                        "mark": mark.map(|m| m.as_str()),
                        "previous": previous.map(|m| m.as_str()),
                    }),
                ),
                UserAction::Firewall {
                    program,
                    verb,
                    ok,
                    detail,
                } => (
                    "firewall",
                    program.as_ref(),
                    json!({"verb": verb, "ok": ok, "detail": detail}),
                ),
                UserAction::Guard {
                    program,
                    verb,
                    ok,
                    by_uid,
                    authority,
                    detail,
                } => (
                    "firewall",
                    program.as_ref(),
                    json!({
                        "verb": verb,
                        "ok": ok,
                        "detail": detail,
                        "by_uid": by_uid,
                        "authority": authority,
                    }),
                ),
            };
            let p = program.map(normalized);
            let pid = match &p {
                Some(p) => Some(t.program(state, p, *at)?),
                None => None,
            };
            t.insert(
                Fields {
                    ts: to_millis(*at),
                    kind: kind.into(),
                    program: p,
                    detail: detail(d),
                    ..Fields::default()
                },
                pid,
            )?;
        }
        Entry::Recovered { at, detail: d } => {
            t.insert(
                Fields {
                    ts: to_millis(*at),
                    kind: "recovered".into(),
                    detail: detail(d.clone()),
                    ..Fields::default()
                },
                None,
            )?;
        }
        Entry::AppStart { at, detail: d } => {
            t.insert(
                Fields {
                    ts: to_millis(*at),
                    kind: "app-start".into(),
                    detail: detail(d.clone()),
                    ..Fields::default()
                },
                None,
            )?;
        }
        Entry::AppStop { at } => {
            // Sessions still open end with the app: their last sight is now.
            let mut open: Vec<(SessionKey, i64, SockState)> = state
                .open
                .drain()
                .flat_map(|(k, q)| q.into_iter().map(move |(id, s)| (k.clone(), id, s)))
                .collect();
            open.sort_by_key(|(_, id, _)| *id);
            let names: HashMap<i64, ProgramRef> = state
                .programs
                .iter()
                .map(|(p, id)| (*id, p.clone()))
                .collect();
            for (k, id, s) in open {
                t.insert(
                    Fields {
                        ts: to_millis(*at),
                        kind: "closed".into(),
                        program: k.program.and_then(|p| names.get(&p).cloned()),
                        reference: Some(id),
                        state: Some(s.as_str().into()),
                        detail: detail(json!({"why": "app-stop"})),
                        ..Fields::default()
                    },
                    k.program,
                )?;
            }
            t.insert(
                Fields {
                    ts: to_millis(*at),
                    kind: "app-stop".into(),
                    ..Fields::default()
                },
                None,
            )?;
        }
        Entry::Aggregate(a) => {
            let p = a.program.as_ref().map(normalized);
            let pid = match &p {
                Some(p) => Some(t.program(state, p, a.first)?),
                None => None,
            };
            t.insert(
                Fields {
                    ts: to_millis(a.first),
                    kind: "aggregate".into(),
                    program: p,
                    protocol: Some(a.protocol.as_str().into()),
                    remote: a.remote.map(|r| r.to_string()),
                    detail: detail(json!({
                        "why": "flood",
                        "opened": a.opened,
                        "closed": a.closed,
                        "first": rfc3339(a.first),
                        "last": rfc3339(a.last),
                        "bytes_sent": a.bytes_sent,
                        "bytes_received": a.bytes_received,
                    })),
                    ..Fields::default()
                },
                pid,
            )?;
        }
        Entry::Dropped {
            count,
            from,
            to,
            place,
        } => {
            t.insert(
                Fields {
                    ts: to_millis(*to),
                    kind: "dropped".into(),
                    detail: detail(json!({
                        "count": count,
                        "from": rfc3339(*from),
                        "to": rfc3339(*to),
                        "place": place,
                    })),
                    ..Fields::default()
                },
                None,
            )?;
        }
    }
    Ok(())
}

fn key(program: Option<i64>, c: &Conn) -> SessionKey {
    SessionKey {
        program,
        pid: c.pid,
        protocol: c.protocol,
        local: c.local,
        remote: c.remote,
    }
}
