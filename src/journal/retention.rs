//! Retention: records older than the retention period are deleted from the
//! front of the chain. The chain stays verifiable because the hash of the
//! last deleted record is kept as the new segment's anchor, and a chained
//! "pruned" record says so (so the anchor itself cannot be edited unseen).

use std::time::{Duration, SystemTime};

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde_json::json;

use super::chain::{self, Fields};
use super::{Journal, JournalError, to_millis};
use crate::clock::rfc3339;
use crate::identity::hex;

/// Half a year: long enough to answer "was it my PC, in spring?".
pub const DEFAULT_RETENTION_DAYS: u32 = 180;

/// Most bytes the guard's journal takes (every user's records, floods
/// counted): at ~340 bytes a session, about 750,000 sessions.
pub const GUARD_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// What a prune did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneReport {
    pub removed: u64,
    /// First id kept (the new segment's start), when anything was removed.
    pub keeps_from: Option<i64>,
}

impl Journal {
    /// The retention period in days (a setting stored in the journal).
    pub fn retention_days(&self) -> Result<u32, JournalError> {
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'retention_days'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(v.and_then(|s| s.parse().ok())
            .unwrap_or(DEFAULT_RETENTION_DAYS))
    }

    pub fn set_retention_days(&mut self, days: u32) -> Result<(), JournalError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('retention_days', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [days.to_string()],
        )?;
        Ok(())
    }

    /// Deletes records older than `retention` before `now`, except the
    /// newest record and anything from `keep_from` on (sessions still open).
    pub fn prune(
        &mut self,
        now: SystemTime,
        retention: Duration,
        keep_from: Option<i64>,
    ) -> Result<PruneReport, JournalError> {
        let horizon = to_millis(now.checked_sub(retention).unwrap_or(SystemTime::UNIX_EPOCH));
        let why = (
            "older_than",
            json!(rfc3339(crate::journal::from_millis(horizon))),
        );
        self.prune_with(now, keep_from, why, |tx, last_id| {
            // The records before the first one that is young enough go; ids
            // follow time closely enough (a late "opened" record only keeps
            // a few older ones a little longer). Walks from the oldest
            // record and stops at the first young one, so a journal with
            // nothing to prune costs one row, not a scan.
            let first_young: Option<i64> = tx
                .query_row(
                    "SELECT id FROM records WHERE ts >= ?1 ORDER BY id LIMIT 1",
                    [horizon],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(first_young.unwrap_or(last_id + 1) - 1)
        })
    }

    /// The bytes the journal's live pages take (freed pages are reused).
    pub fn used_bytes(&self) -> Result<u64, JournalError> {
        let q = |p: &str| -> Result<i64, JournalError> {
            Ok(self.conn.pragma_query_value(None, p, |r| r.get(0))?)
        };
        let used = (q("page_count")? - q("freelist_count")?).max(0) * q("page_size")?;
        Ok(u64::try_from(used).unwrap_or(0))
    }

    /// Keeps the journal under `max_bytes`: when it is larger, the oldest
    /// records go (with an anchor, as for age) until about three quarters
    /// of it would remain.
    pub fn prune_to_size(
        &mut self,
        now: SystemTime,
        max_bytes: u64,
        keep_from: Option<i64>,
    ) -> Result<PruneReport, JournalError> {
        let used = self.used_bytes()?;
        if used <= max_bytes {
            return Ok(PruneReport {
                removed: 0,
                keeps_from: None,
            });
        }
        let keep_share = (max_bytes as f64 * 0.75) / used as f64;
        let why = ("over_bytes", json!(max_bytes));
        self.prune_with(now, keep_from, why, |tx, last_id| {
            let seg = chain::segment(tx)?;
            let count = (last_id - seg.start + 1).max(0);
            let remove = ((count as f64) * (1.0 - keep_share)).ceil() as i64;
            Ok(seg.start + remove - 1)
        })
    }

    /// Deletes records up to the id `cut` returns (bounded by the newest
    /// record and `keep_from`), leaving an anchor and a chained "pruned"
    /// record that says why (`older_than` a time, or `over_bytes`).
    fn prune_with(
        &mut self,
        now: SystemTime,
        keep_from: Option<i64>,
        why: (&str, serde_json::Value),
        cut: impl FnOnce(&rusqlite::Transaction<'_>, i64) -> Result<i64, JournalError>,
    ) -> Result<PruneReport, JournalError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (last_id, prev) = chain::tail(&tx)?;
        let mut cut = cut(&tx, last_id)?;
        if let Some(k) = keep_from {
            cut = cut.min(k - 1);
        }
        // Never remove the newest record: the head stays visible.
        cut = cut.min(last_id - 1);
        let seg = chain::segment(&tx)?;
        if cut < seg.start {
            return Ok(PruneReport {
                removed: 0,
                keeps_from: None,
            });
        }
        let anchor: Vec<u8> =
            tx.query_row("SELECT hash FROM records WHERE id = ?1", [cut], |r| {
                r.get(0)
            })?;
        let keeps_from = cut + 1;
        let removed: i64 =
            tx.query_row("SELECT count(*) FROM records WHERE id <= ?1", [cut], |r| {
                r.get(0)
            })?;
        let removed = removed.max(0) as u64;
        let seq: i64 = tx
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'records'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let f = Fields {
            id: last_id.max(seq) + 1,
            ts: to_millis(now),
            kind: "pruned".into(),
            detail: Some({
                let mut d = json!({
                    "keeps_from": keeps_from,
                    "anchor": hex(&anchor),
                    "removed": removed,
                });
                d[why.0] = why.1;
                d.to_string()
            }),
            ..Fields::default()
        };
        let hash = chain::link(&prev, &f);
        tx.execute(
            "INSERT INTO records (id, ts, kind, detail, hash) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![f.id, f.ts, f.kind, f.detail, &hash[..]],
        )?;
        tx.execute("DELETE FROM records WHERE id <= ?1", [cut])?;
        for (k, v) in [
            ("segment_start", keeps_from.to_string()),
            ("segment_anchor", hex(&anchor)),
        ] {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![k, v],
            )?;
        }
        super::headfile::store_in_meta(&tx)?;
        tx.commit()?;
        self.note_head();
        Ok(PruneReport {
            removed,
            keeps_from: Some(keeps_from),
        })
    }
}
