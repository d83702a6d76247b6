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
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (last_id, prev) = chain::tail(&tx)?;
        // The records before the first one that is young enough go; ids
        // follow time closely enough (a late "opened" record only keeps a
        // few older ones a little longer).
        // Walks from the oldest record and stops at the first young one, so
        // a journal with nothing to prune costs one row, not a scan.
        let first_young: Option<i64> = tx
            .query_row(
                "SELECT id FROM records WHERE ts >= ?1 ORDER BY id LIMIT 1",
                [horizon],
                |r| r.get(0),
            )
            .optional()?;
        let mut cut = first_young.unwrap_or(last_id + 1) - 1;
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
            detail: Some(
                json!({
                    "keeps_from": keeps_from,
                    "anchor": hex(&anchor),
                    "removed": removed,
                    "older_than": rfc3339(crate::journal::from_millis(horizon)),
                })
                .to_string(),
            ),
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
