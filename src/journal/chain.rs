//! The hash chain. Each record's hash is
//! `SHA-256(previous hash || canonical content)`, where the canonical
//! content is a JSON array of every column (with the program resolved to
//! its path, name and SHA-256). Changing, inserting or deleting a row makes
//! the recomputed chain differ from the stored one at that row.

use std::collections::HashMap;
use std::time::SystemTime;

use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::entry::ProgramRef;
use super::{JournalError, from_millis};
use crate::identity::hex;

/// The "previous hash" of the very first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// The columns of one record, as they are hashed.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    pub id: i64,
    pub ts: i64,
    pub kind: String,
    pub program: Option<ProgramRef>,
    pub reference: Option<i64>,
    pub pid: Option<i64>,
    pub protocol: Option<String>,
    pub local: Option<String>,
    pub remote: Option<String>,
    pub state: Option<String>,
    pub detail: Option<String>,
    /// The uid of the process the record is about (the guard's journal).
    pub uid: Option<i64>,
}

/// The exact bytes that are hashed (after the previous hash). Stable:
/// changing it would make every existing journal fail verification. The
/// uid, when there is one, is a 14th element: records without one hash
/// exactly as before it existed.
pub fn canonical(f: &Fields) -> String {
    let (exe, name, sha) = match &f.program {
        Some(p) => (json!(p.exe), json!(p.name), json!(p.sha256)),
        None => (Value::Null, Value::Null, Value::Null),
    };
    let mut v = json!([
        f.id,
        f.ts,
        f.kind,
        exe,
        name,
        sha,
        f.reference,
        f.pid,
        f.protocol,
        f.local,
        f.remote,
        f.state,
        f.detail
    ]);
    if let (Some(uid), Some(a)) = (f.uid, v.as_array_mut()) {
        a.push(json!(uid));
    }
    v.to_string()
}

pub fn link(prev: &[u8; 32], f: &Fields) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical(f).as_bytes());
    h.finalize().into()
}

/// The newest record of the journal and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// `None` when the journal holds no records (yet, or after pruning all).
    pub id: Option<i64>,
    pub at: Option<SystemTime>,
    /// Lowercase hex SHA-256.
    pub hash: String,
}

/// Where the kept part of the chain begins: the first id and the hash it
/// continues from (genesis unless older records were pruned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub start: i64,
    pub anchor: [u8; 32],
}

pub fn segment(conn: &Connection) -> Result<Segment, JournalError> {
    let get = |k: &str| -> Result<Option<String>, JournalError> {
        match conn.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| {
            r.get::<_, String>(0)
        }) {
            Ok(v) => Ok(Some(v)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(e.into()),
        }
    };
    let start = get("segment_start")?
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let anchor = get("segment_anchor")?
        .and_then(|s| parse_hex32(&s))
        .unwrap_or(GENESIS);
    Ok(Segment { start, anchor })
}

pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The id and hash of the last record, or the segment's anchor when empty.
pub fn tail(conn: &Connection) -> Result<(i64, [u8; 32]), JournalError> {
    let last = conn.query_row(
        "SELECT id, hash FROM records ORDER BY id DESC LIMIT 1",
        [],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, SqlValue>(1)?)),
    );
    match last {
        Ok((id, SqlValue::Blob(b))) if b.len() == 32 => {
            let mut h = [0u8; 32];
            h.copy_from_slice(&b);
            Ok((id, h))
        }
        // A damaged hash still continues the chain from its id; verify
        // reports the damage.
        Ok((id, _)) => Ok((id, GENESIS)),
        Err(rusqlite::Error::QueryReturnedNoRows) => {
            let seg = segment(conn)?;
            Ok((seg.start - 1, seg.anchor))
        }
        Err(e) => Err(e.into()),
    }
}

pub fn head(conn: &Connection) -> Result<Head, JournalError> {
    let last = conn.query_row(
        "SELECT id, ts, hash FROM records ORDER BY id DESC LIMIT 1",
        [],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, SqlValue>(1)?,
                r.get::<_, SqlValue>(2)?,
            ))
        },
    );
    match last {
        Ok((id, ts, hash)) => Ok(Head {
            id: Some(id),
            at: match ts {
                SqlValue::Integer(ms) => Some(from_millis(ms)),
                _ => None,
            },
            hash: match hash {
                SqlValue::Blob(b) => hex(&b),
                _ => String::new(),
            },
        }),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(Head {
            id: None,
            at: None,
            hash: hex(&segment(conn)?.anchor),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Why a record does not verify.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "problem", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Problem {
    /// Its content or hash was changed, or a record before it was.
    Changed,
    /// Records `from..=to` are missing before it (deleted).
    Missing { from: i64, to: i64 },
    /// It names a program that is not in the program list (deleted).
    UnknownProgram { program: i64 },
    /// The recorded start of the kept chain does not match the pruning
    /// record that made it.
    Anchor,
    /// Records after it were removed: the journal once held up to `last`.
    TailRemoved { last: i64 },
    /// The head kept outside the database counts `expected` records up to
    /// the same id; the database has `found`.
    Count { expected: i64, found: i64 },
}

/// The first record where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    pub id: i64,
    pub at: Option<SystemTime>,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
    pub first_id: Option<i64>,
    pub head: Head,
    /// `None` when the chain is intact.
    pub first_bad: Option<BadRecord>,
}

impl VerifyReport {
    pub fn intact(&self) -> bool {
        self.first_bad.is_none()
    }
}

fn text(v: SqlValue) -> Option<String> {
    match v {
        SqlValue::Null => None,
        SqlValue::Text(s) => Some(s),
        SqlValue::Integer(i) => Some(i.to_string()),
        SqlValue::Real(f) => Some(f.to_string()),
        SqlValue::Blob(b) => Some(hex(&b)),
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// The program list, as verification resolves it.
pub fn programs(conn: &Connection) -> Result<HashMap<i64, ProgramRef>, JournalError> {
    let mut stmt = conn.prepare("SELECT id, exe, name, sha256 FROM programs")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            ProgramRef {
                exe: non_empty(text(r.get(1)?)),
                name: text(r.get(2)?).unwrap_or_default(),
                sha256: non_empty(text(r.get(3)?)),
            },
        ))
    })?;
    let mut map = HashMap::new();
    for row in rows {
        let (id, p) = row?;
        map.insert(id, p);
    }
    Ok(map)
}

/// Integers stay integers; anything else (a tampered type) is hashed as
/// text, so it cannot match the original integer.
fn int_or_marker(v: SqlValue) -> (Option<i64>, bool) {
    match v {
        SqlValue::Integer(i) => (Some(i), true),
        SqlValue::Null => (None, true),
        _ => (None, false),
    }
}

/// A gap before a chained "recovered" record that says the tail was cut
/// after record `expected - 1` is not a new problem: the record itself
/// states the loss (the guard writes it when it finds a cut tail).
fn explained_gap(f: &Fields, expected: i64) -> bool {
    if f.kind != "recovered" {
        return false;
    }
    let d: Value = f
        .detail
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    d["reason"] == "tail-cut" && d["found"]["id"].as_i64() == Some(expected - 1)
}

/// Recomputes the chain from the segment's anchor to the head.
pub fn verify(conn: &Connection) -> Result<VerifyReport, JournalError> {
    let progs = programs(conn)?;
    let seg = segment(conn)?;
    let mut stmt = conn.prepare(
        "SELECT id, ts, kind, program, ref, pid, protocol, local, remote, state, detail, hash, uid
         FROM records ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    let mut prev = seg.anchor;
    let mut expected = seg.start;
    let mut records = 0u64;
    let mut first_id = None;
    let mut first_bad: Option<BadRecord> = None;
    // The newest pruning record must describe the segment we start from.
    let mut last_prune: Option<(i64, String)> = None;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        first_id.get_or_insert(id);
        records += 1;
        let (ts, ts_ok) = int_or_marker(r.get(1)?);
        let at = ts.map(from_millis);
        let kind = text(r.get(2)?).unwrap_or_default();
        let (program, program_ok) = int_or_marker(r.get(3)?);
        let (reference, ref_ok) = int_or_marker(r.get(4)?);
        let (pid, pid_ok) = int_or_marker(r.get(5)?);
        let (uid, uid_ok) = int_or_marker(r.get(12)?);
        let fields = Fields {
            id,
            ts: ts.unwrap_or(i64::MIN),
            kind,
            program: program.and_then(|p| progs.get(&p).cloned()),
            reference,
            pid,
            protocol: text(r.get(6)?),
            local: text(r.get(7)?),
            remote: text(r.get(8)?),
            state: text(r.get(9)?),
            detail: text(r.get(10)?),
            uid,
        };
        let stored: SqlValue = r.get(11)?;
        let computed = link(&prev, &fields);
        if first_bad.is_none() {
            let problem = if id != expected && !explained_gap(&fields, expected) {
                Some(Problem::Missing {
                    from: expected,
                    to: id - 1,
                })
            } else if let Some(p) = program.filter(|p| !progs.contains_key(p)) {
                Some(Problem::UnknownProgram { program: p })
            } else if !(ts_ok
                && program_ok
                && ref_ok
                && pid_ok
                && uid_ok
                && matches!(&stored, SqlValue::Blob(b) if b.as_slice() == computed))
            {
                Some(Problem::Changed)
            } else {
                None
            };
            if let Some(problem) = problem {
                first_bad = Some(BadRecord { id, at, problem });
            }
        }
        if fields.kind == "pruned" {
            last_prune = Some((id, fields.detail.clone().unwrap_or_default()));
        }
        // Continue from the stored hash so one bad record is reported once,
        // not as every record after it.
        prev = match stored {
            SqlValue::Blob(b) if b.len() == 32 => {
                let mut h = [0u8; 32];
                h.copy_from_slice(&b);
                h
            }
            _ => computed,
        };
        expected = id + 1;
    }
    drop(rows);
    let head = head(conn)?;
    if first_bad.is_none() && seg.start > 1 {
        let ok = last_prune.as_ref().is_some_and(|(_, detail)| {
            let d: Value = serde_json::from_str(detail).unwrap_or(Value::Null);
            d["keeps_from"].as_i64() == Some(seg.start) && d["anchor"] == json!(hex(&seg.anchor))
        });
        if !ok {
            first_bad = Some(BadRecord {
                id: first_id.unwrap_or(seg.start),
                at: None,
                problem: Problem::Anchor,
            });
        }
    }
    if first_bad.is_none() {
        let seq: Option<i64> = conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'records'",
                [],
                |r| r.get(0),
            )
            .ok();
        let last = expected - 1;
        if let Some(seq) = seq.filter(|s| *s > last) {
            first_bad = Some(BadRecord {
                id: last,
                at: head.at,
                problem: Problem::TailRemoved { last: seq },
            });
        }
    }
    Ok(VerifyReport {
        records,
        first_id,
        head,
        first_bad,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_is_stable() {
        let f = Fields {
            id: 7,
            ts: 1_795_608_000_000,
            kind: "opened".into(),
            program: Some(ProgramRef {
                exe: Some("/usr/bin/curl".into()),
                name: "curl".into(),
                sha256: None,
            }),
            pid: Some(100),
            protocol: Some("tcp".into()),
            ..Fields::default()
        };
        assert_eq!(
            canonical(&f),
            r#"[7,1795608000000,"opened","/usr/bin/curl","curl",null,null,100,"tcp",null,null,null,null]"#
        );
        assert_ne!(
            link(&GENESIS, &f),
            link(&[1; 32], &f),
            "the link covers the previous hash"
        );
    }

    #[test]
    fn hex_round_trips() {
        let h = [0xabu8; 32];
        assert_eq!(parse_hex32(&hex(&h)), Some(h));
        assert_eq!(parse_hex32("zz"), None);
    }
}
