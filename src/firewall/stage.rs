//! Keeps the firewall in step with the marks while the monitor runs with
//! administrator rights: the first tick reconciles (stale rules go), later
//! ticks re-apply only when the plan changes — a blocked program started
//! anew (its PIDs must join its cgroup) or a mark changed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::{Applied, Backend, DesiredState, Plan};
use crate::identity::FileStamp;
use crate::marks::MarkStore;
use crate::model::Snapshot;
use crate::monitor::{Stage, TickContext};

/// The last enforcement, for the GUI to show.
#[derive(Debug, Clone, Default)]
pub struct EnforceReport {
    pub plan: Option<Plan>,
    pub last: Option<Result<Applied, String>>,
}

pub struct EnforceStage {
    marks: Arc<MarkStore>,
    data_dir: Option<PathBuf>,
    backend: Box<dyn Backend>,
    desired: DesiredState,
    desired_stamp: Option<FileStamp>,
    last: Option<Plan>,
    report: Arc<Mutex<EnforceReport>>,
}

impl EnforceStage {
    pub fn new(
        marks: Arc<MarkStore>,
        data_dir: Option<PathBuf>,
        backend: Box<dyn Backend>,
    ) -> Self {
        EnforceStage {
            marks,
            data_dir,
            backend,
            desired: DesiredState::default(),
            desired_stamp: None,
            last: None,
            report: Arc::new(Mutex::new(EnforceReport::default())),
        }
    }

    pub fn report(&self) -> Arc<Mutex<EnforceReport>> {
        self.report.clone()
    }

    fn refresh_desired(&mut self, now: std::time::SystemTime) {
        let Some(dir) = &self.data_dir else { return };
        let stamp = FileStamp::of(&dir.join(super::STATE_FILE)).ok();
        if stamp != self.desired_stamp || self.last.is_none() {
            self.desired = DesiredState::load(Some(dir), now).0;
            self.desired_stamp = stamp;
        }
    }

    /// A plan without connections already cut: new flows of a blocked
    /// program can only come from a process not yet moved, whose PID
    /// changes the plan anyway.
    fn key(plan: &Plan) -> Plan {
        let mut k = plan.clone();
        for b in &mut k.blocked {
            b.flows.clear();
        }
        k
    }
}

impl Stage for EnforceStage {
    fn apply(&mut self, ctx: &TickContext<'_>, snapshot: &mut Snapshot) {
        self.refresh_desired(ctx.now);
        let plan = Plan::build(&self.marks.blocked(), Some(snapshot), self.desired.panic);
        if self.last.as_ref().map(Self::key) == Some(Self::key(&plan)) {
            return;
        }
        // Remembered even when it failed: retried when the plan changes,
        // not every second.
        let result = self.backend.apply(&plan).map_err(|e| e.to_string());
        self.last = Some(plan.clone());
        let mut r = self.report.lock().unwrap_or_else(|e| e.into_inner());
        r.plan = Some(plan);
        r.last = Some(result);
    }
}

// Written with Unix paths.
#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::firewall::{Enforced, FirewallError};
    use crate::identity::FakeHasher;
    use crate::marks::MarkFor;
    use crate::model::{Mark, RawProcess, RawSample};
    use crate::monitor::MonitorCore;
    use crate::probe::FakeProbe;
    use std::time::Duration;

    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Plan>>>);

    impl Backend for Recorder {
        fn apply(&mut self, plan: &Plan) -> Result<Applied, FirewallError> {
            self.0.lock().unwrap().push(plan.clone());
            Ok(Applied::default())
        }
        fn clear(&mut self) -> Result<(), FirewallError> {
            Ok(())
        }
        fn status(&mut self) -> Result<Enforced, FirewallError> {
            Ok(Enforced::default())
        }
    }

    #[test]
    fn reconciles_once_then_only_when_a_blocked_program_starts_again() {
        let clock = Arc::new(FakeClock::at_noon());
        let dir = tempfile::tempdir().unwrap();
        let marks = Arc::new(MarkStore::open(dir.path(), clock.clone()));
        let sha = "3".repeat(64);
        marks
            .set(
                &PathBuf::from("/tmp/evil"),
                &sha,
                Mark::Blocked,
                MarkFor::Always,
            )
            .unwrap();
        let one = RawSample::of(vec![RawProcess::fake(10, "/tmp/evil")], vec![]);
        let mut again = RawProcess::fake(11, "/tmp/evil");
        again.start_time += 9;
        let two = RawSample::of(vec![RawProcess::fake(10, "/tmp/evil"), again], vec![]);
        let mut core = MonitorCore::new(
            Box::new(FakeProbe::new(vec![one.clone(), one, two])),
            Box::new(FakeHasher::default()),
            clock,
            Duration::from_secs(1),
        );
        let rec = Recorder::default();
        let stage = EnforceStage::new(
            marks.clone(),
            Some(dir.path().to_path_buf()),
            Box::new(rec.clone()),
        );
        let report = stage.report();
        core.add_stage(Box::new(stage));
        core.tick().unwrap();
        core.tick().unwrap();
        assert_eq!(rec.0.lock().unwrap().len(), 1, "unchanged plan: no reload");
        core.tick().unwrap();
        let plans = rec.0.lock().unwrap().clone();
        assert_eq!(plans.len(), 2);
        assert_eq!(plans[1].blocked[0].pids, vec![10, 11]);
        assert!(matches!(report.lock().unwrap().last, Some(Ok(_))));
        // Unblocking empties the plan: the table goes.
        marks.remove(&PathBuf::from("/tmp/evil")).unwrap();
        core.tick().unwrap();
        assert!(rec.0.lock().unwrap().last().unwrap().is_empty());
    }
}
