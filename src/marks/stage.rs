//! Puts the user's marks into every snapshot.

use std::sync::Arc;

use super::MarkStore;
use crate::guard::blocked::GuardBlocks;
use crate::model::{Mark, Snapshot};
use crate::monitor::{Stage, TickContext};

/// Sets `mark` (same path and SHA-256) or `stale_mark` (same path, other
/// SHA-256) on each program. Checks the file once per tick, so marks set by
/// another kizuki process show up within one interval.
///
/// With a guard handle ([`MarksStage::with_guard`], as the app and CLI
/// build it), `blocked` comes only from what the guard reads back: the
/// user's file keeps trusted and unknown, and a `blocked` line in it (which
/// any program of the user can write) counts for nothing.
#[derive(Debug, Clone)]
pub struct MarksStage {
    store: Arc<MarkStore>,
    guard: Option<GuardBlocks>,
}

impl MarksStage {
    pub fn new(store: Arc<MarkStore>) -> Self {
        MarksStage { store, guard: None }
    }

    /// Blocks as the guard reports them, not as the user's file says.
    pub fn with_guard(mut self, blocks: GuardBlocks) -> Self {
        self.guard = Some(blocks);
        self
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
            if let Some(guard) = &self.guard {
                if p.mark == Some(Mark::Blocked) {
                    p.mark = None;
                }
                if p.stale_mark == Some(Mark::Blocked) {
                    p.stale_mark = None;
                }
                if guard.contains(exe) {
                    p.mark = Some(Mark::Blocked);
                }
            }
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

    /// Issue 16: with the guard's handle, a `blocked` line in the user's
    /// file (malware can write one, or delete one) decides nothing; only
    /// the guard's read-back list does.
    #[test]
    fn blocked_comes_from_the_guard_not_from_the_users_file() {
        use crate::guard::api::Request;
        use crate::guard::blocked::GuardBlocks;
        use crate::guard::client::{FakeGuard, GuardLink};
        let clock = Arc::new(FakeClock::at_noon());
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MarkStore::open(dir.path(), clock.clone()));
        store
            .set(
                &PathBuf::from("/opt/tool"),
                OLD,
                Mark::Blocked,
                MarkFor::Always,
            )
            .unwrap();
        let sample = RawSample::of(
            vec![
                RawProcess::fake(10, "/opt/tool"),
                RawProcess::fake(11, "/opt/other"),
            ],
            vec![],
        );
        let blocks = GuardBlocks::default();
        let mut core = MonitorCore::new(
            Box::new(FakeProbe::new(vec![sample.clone(), sample.clone()])),
            Box::new(FakeHasher::with(&[("/opt/tool", OLD), ("/opt/other", NEW)])),
            clock,
            Duration::from_secs(1),
        );
        core.add_stage(Box::new(
            MarksStage::new(store.clone()).with_guard(blocks.clone()),
        ));
        let tool = ProgramKey::Exe(PathBuf::from("/opt/tool"));
        let other = ProgramKey::Exe(PathBuf::from("/opt/other"));
        let snap = core.tick().unwrap();
        assert_eq!(snap.program(&tool).unwrap().mark, None, "the file alone");
        let mut guard = FakeGuard::default();
        guard
            .call(&Request::Block {
                exe: PathBuf::from("/opt/other"),
            })
            .unwrap();
        blocks.update(&guard.status().unwrap());
        let snap = core.tick().unwrap();
        assert_eq!(snap.program(&tool).unwrap().mark, None);
        assert_eq!(snap.program(&other).unwrap().mark, Some(Mark::Blocked));
    }
}
