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
