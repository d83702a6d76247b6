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

// Written with Unix paths.
#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::identity::FakeHasher;
    use crate::marks::MarkFor;
    use crate::model::{Mark, ProgramKey, RawProcess, RawSample};
    use crate::monitor::MonitorCore;
    use crate::probe::FakeProbe;
    use std::path::PathBuf;
    use std::time::Duration;

    const OLD: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const NEW: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn snapshot_carries_the_mark_and_a_changed_file_shows_stale() {
        let clock = Arc::new(FakeClock::at_noon());
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MarkStore::open(dir.path(), clock.clone()));
        store
            .set(
                &PathBuf::from("/opt/tool"),
                OLD,
                Mark::Trusted,
                MarkFor::Always,
            )
            .unwrap();
        let sample = RawSample::of(vec![RawProcess::fake(10, "/opt/tool")], vec![]);
        let mut core = MonitorCore::new(
            Box::new(FakeProbe::new(vec![sample.clone()])),
            Box::new(FakeHasher::with(&[("/opt/tool", OLD)])),
            clock.clone(),
            Duration::from_secs(1),
        );
        core.add_stage(Box::new(MarksStage::new(store.clone())));
        let key = ProgramKey::Exe("/opt/tool".into());
        let snap = core.tick().unwrap();
        let p = snap.program(&key).unwrap();
        assert_eq!((p.mark, p.stale_mark), (Some(Mark::Trusted), None));

        // The file was replaced: a new process runs different bytes.
        let mut replaced = RawProcess::fake(11, "/opt/tool");
        replaced.start_time += 5;
        let mut core = MonitorCore::new(
            Box::new(FakeProbe::new(vec![RawSample::of(vec![replaced], vec![])])),
            Box::new(FakeHasher::with(&[("/opt/tool", NEW)])),
            clock,
            Duration::from_secs(1),
        );
        core.add_stage(Box::new(MarksStage::new(store.clone())));
        let snap = core.tick().unwrap();
        let p = snap.program(&key).unwrap();
        assert_eq!((p.mark, p.stale_mark), (None, Some(Mark::Trusted)));

        // Another kizuki process (the CLI) decides again: seen next tick.
        let cli = MarkStore::open(dir.path(), Arc::new(FakeClock::at_noon()));
        cli.set(
            &PathBuf::from("/opt/tool"),
            NEW,
            Mark::Blocked,
            MarkFor::Always,
        )
        .unwrap();
        let snap = core.tick().unwrap();
        let p = snap.program(&key).unwrap();
        assert_eq!((p.mark, p.stale_mark), (Some(Mark::Blocked), None));
    }
}
