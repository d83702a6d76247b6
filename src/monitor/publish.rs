//! The latest-value channel from the sampling thread to its readers.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::lock::MutexExt;
use crate::model::Snapshot;

/// Latest-value channel: readers always get the newest snapshot and never
/// a backlog, so a hidden window costs nothing and never falls behind.
#[derive(Clone)]
pub struct SnapshotReceiver {
    slot: Arc<(Mutex<Arc<Snapshot>>, Condvar)>,
}

impl SnapshotReceiver {
    pub fn new() -> (SnapshotSender, SnapshotReceiver) {
        let slot = Arc::new((Mutex::new(Arc::new(Snapshot::empty())), Condvar::new()));
        (
            SnapshotSender { slot: slot.clone() },
            SnapshotReceiver { slot },
        )
    }

    pub fn latest(&self) -> Arc<Snapshot> {
        self.slot.0.locked().clone()
    }

    /// Waits up to `timeout` for a snapshot newer than `generation`.
    pub fn wait_newer(&self, generation: u64, timeout: Duration) -> Option<Arc<Snapshot>> {
        let (lock, cv) = &*self.slot;
        let guard = lock.locked();
        let (guard, _) = cv
            .wait_timeout_while(guard, timeout, |s| s.generation <= generation)
            .unwrap_or_else(|e| e.into_inner());
        (guard.generation > generation).then(|| guard.clone())
    }
}

pub struct SnapshotSender {
    slot: Arc<(Mutex<Arc<Snapshot>>, Condvar)>,
}

impl SnapshotSender {
    /// Publishes `snap` unless a newer one is already there.
    pub fn publish(&self, snap: Arc<Snapshot>) {
        let (lock, cv) = &*self.slot;
        let mut cur = lock.locked();
        if snap.generation > cur.generation {
            *cur = snap;
            cv.notify_all();
        }
    }
}
