//! Puts the user's marks into every snapshot.

use std::sync::Arc;

use super::MarkStore;
use crate::model::Snapshot;
use crate::monitor::{Stage, TickContext};

/// Sets `mark` (same path and SHA-256) or `stale_mark` (same path, other
/// SHA-256) on each program. Checks the file once per tick, so marks set by
/// another kizuki process show up within one interval.
#[derive(Debug, Clone)]
pub struct MarksStage {
    store: Arc<MarkStore>,
}

impl MarksStage {
    pub fn new(store: Arc<MarkStore>) -> Self {
        MarksStage { store }
    }
}

impl Stage for MarksStage {
    fn apply(&mut self, _ctx: &TickContext<'_>, snapshot: &mut Snapshot) {
        self.store.refresh();
        for p in &mut snapshot.programs {
            let Some(exe) = &p.exe else { continue };
            let found = self.store.lookup(exe, p.sha256.as_deref());
            p.mark = found.mark;
            p.stale_mark = found.stale;
        }
    }
}
