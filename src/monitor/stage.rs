//! The per-tick pipeline: the [`Stage`] trait and the one place that
//! states the order the stages run in ([`Pipeline`]).

use std::time::SystemTime;

use crate::model::{RawSample, Snapshot};

use super::tick::MonitorCore;
use super::tracker::SessionEvent;

/// What a stage gets to see about the tick it runs in.
pub struct TickContext<'a> {
    pub now: SystemTime,
    pub events: &'a [SessionEvent],
    pub raw: &'a RawSample,
}

/// A step that adds to a snapshot before it is published: marks, findings,
/// the journal. Stages run in the order they were added; [`Pipeline`]
/// states that order and what each one reads and writes.
pub trait Stage: Send {
    fn apply(&mut self, ctx: &TickContext<'_>, snapshot: &mut Snapshot);

    /// The run is ending (from [`MonitorCore::save`]): flush and close
    /// what the stage holds open. A later `apply` may start it again.
    fn finish(&mut self) {}
}

/// The stages of a monitor, by role, in the one order they run each tick.
/// A stage reads only what the tracker and the stages above it wrote:
///
/// 1. `marks` — reads each program's path and hash; writes `Program::mark`
///    and `Program::stale_mark` (a block only when the guard reads it back).
/// 2. `analysis` — reads the tracker's programs, connections and
///    [`TickContext::events`], and `Program::mark` (a blocked program that
///    runs again is a finding); writes `Program::findings` and keeps the
///    baseline file.
/// 3. `journal` — reads everything the stages above decided; writes
///    nothing into the snapshot, only the evidence journal.
///
/// `extra` stages (tests, tools) run after these.
#[derive(Default)]
pub struct Pipeline {
    pub marks: Option<Box<dyn Stage>>,
    pub analysis: Option<Box<dyn Stage>>,
    pub journal: Option<Box<dyn Stage>>,
    pub extra: Vec<Box<dyn Stage>>,
}

impl Pipeline {
    /// The stages in the order they run.
    pub fn into_stages(self) -> Vec<Box<dyn Stage>> {
        [self.marks, self.analysis, self.journal]
            .into_iter()
            .flatten()
            .chain(self.extra)
            .collect()
    }

    /// Adds the stages to `core`, in order, after any it already has.
    pub fn install(self, core: &mut MonitorCore) {
        for stage in self.into_stages() {
            core.add_stage(stage);
        }
    }
}
