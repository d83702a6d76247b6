//! [`MonitorCore`]: one call to [`MonitorCore::tick`] is one sample —
//! probe → [`Tracker`] → the stages — with time from the injected clock.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::identity::ExeHasher;
use crate::model::{RawProcess, RawSample, Snapshot};
use crate::names::NameCache;
use crate::probe::{Probe, ProbeError};

use super::stage::{Stage, TickContext};
use super::tracker::{DEFAULT_RETAIN, Tracker};

/// One second catches a connection that lives for a second with near
/// certainty (a sample always falls inside it), at a cost measured in the
/// README's benchmark.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// Probe, hasher, tracker and stages: one call to [`MonitorCore::tick`] is
/// one sample, with time from the injected clock.
/// Reads a file's (device, inode); replaced in tests.
pub type Stamper = Box<dyn Fn(&std::path::Path) -> Option<(u64, u64)> + Send>;

pub struct MonitorCore {
    probe: Box<dyn Probe>,
    hasher: Box<dyn ExeHasher>,
    stamper: Stamper,
    clock: Arc<dyn Clock>,
    tracker: Tracker,
    stages: Vec<Box<dyn Stage>>,
    generation: u64,
    interval: Duration,
    /// What fills the name cache (the packet reader), kept running as long
    /// as the core.
    names_source: Option<Box<dyn Send>>,
    /// The snapshot lists each program's connections (off: see
    /// [`MonitorCore::without_connections`]).
    connections: bool,
    /// Each tick's raw sample and events, kept instead of freed (see
    /// [`MonitorCore::keep_ticks`]).
    pub(super) kept: Option<Vec<(crate::model::RawSample, Vec<super::tracker::SessionEvent>)>>,
    /// Where each raw sample goes once the stages ran (see
    /// [`MonitorCore::hand_on_samples`]).
    raw_sink: Option<RawSink>,
}

/// Takes each raw sample after a tick (the guard's live store).
pub type RawSink = Box<dyn FnMut(RawSample) + Send>;

impl MonitorCore {
    pub fn new(
        probe: Box<dyn Probe>,
        hasher: Box<dyn ExeHasher>,
        clock: Arc<dyn Clock>,
        interval: Duration,
    ) -> Self {
        MonitorCore {
            probe,
            hasher,
            stamper: Box::new(crate::probe::file_stamp),
            clock,
            tracker: Tracker::new(DEFAULT_RETAIN),
            stages: Vec::new(),
            generation: 0,
            interval,
            names_source: None,
            connections: true,
            kept: None,
            raw_sink: None,
        }
    }

    /// For a process that ticks once and ends (`scan`, which forgets the
    /// core at exit): each tick's sample and events are kept rather than
    /// freed one allocation at a time. Not for a monitor that keeps
    /// running: every tick's sample would stay in memory.
    pub fn keep_ticks(&mut self) {
        self.kept = Some(Vec::new());
    }

    /// Snapshots list programs and processes but no connections: for a
    /// monitor whose stages read only those and the tick's session events
    /// (the guard's journal), sparing the copy of every connection each
    /// tick. The events still carry every connection.
    pub fn without_connections(mut self) -> Self {
        self.connections = false;
        self
    }

    /// Replaces how files' (device, inode) are read (tests of the hash
    /// confirmation).
    pub fn with_stamper(mut self, stamper: Stamper) -> Self {
        self.stamper = stamper;
        self
    }

    /// Keeps ended connections visible for `retain` (watch keeps its whole
    /// window).
    pub fn with_retention(mut self, retain: Duration) -> Self {
        self.tracker.retain = retain;
        self
    }

    /// Forgets ended connections after `keep` (or at once: zero), however
    /// long [`MonitorCore::with_retention`] keeps programs and processes:
    /// for a monitor that lists no connections (the guard's journal reads
    /// only the tick's session events), ended sessions are only memory.
    pub fn keep_ended_sessions(mut self, keep: Duration) -> Self {
        self.tracker.ended_sessions = Some(keep);
        self
    }

    /// Hands each tick's raw sample to `sink` once the stages are done
    /// with it (moved: the guard's live store keeps it without a copy).
    pub fn hand_on_samples(&mut self, sink: RawSink) {
        self.raw_sink = Some(sink);
    }

    pub fn add_stage(&mut self, stage: Box<dyn Stage>) {
        self.stages.push(stage);
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Names connections from `cache` (see [`Tracker::set_names`]);
    /// `source`, if any, is what fills it and runs as long as the core.
    pub fn set_names(&mut self, cache: Arc<NameCache>, source: Option<Box<dyn Send>>) {
        self.tracker.set_names(cache);
        self.names_source = source;
    }

    /// Samples once and returns the new snapshot.
    pub fn tick(&mut self) -> Result<Snapshot, ProbeError> {
        let raw = self.probe.sample()?;
        let now = self.clock.now();
        // Processes seen for the first time are hashed below one by one;
        // read their files ahead, in parallel (a first scan hashes every
        // program of the machine).
        let fresh: Vec<std::path::PathBuf> = raw
            .processes
            .iter()
            .filter(|p| p.exe.is_some() && !self.tracker.knows(p))
            .filter_map(|p| match (&p.script, &p.exe) {
                (Some(s), _) => Some(s.read_from.clone()),
                (None, Some(exe)) => Some(crate::identity::image_path(p.pid, exe)),
                (None, None) => None,
            })
            .collect();
        if fresh.len() > 1 {
            self.hasher.prefetch(&fresh);
        }
        let hasher = &mut self.hasher;
        let stamper = &self.stamper;
        // Many processes can run one script file (200 workers of one
        // Python program): it is confirmed and hashed once per sample.
        let mut scripts: ScriptHashes = ScriptHashes::default();
        let events = self.tracker.ingest(&raw, now, &mut |p| match &p.script {
            Some(s) if p.exe.is_some() => scripts
                .entry((s.read_from.clone(), s.stamp))
                .or_insert_with(|| confirmed_hash(p, hasher.as_mut(), stamper))
                .clone(),
            _ => confirmed_hash(p, hasher.as_mut(), stamper),
        });
        self.generation += 1;
        let mut snap =
            self.tracker
                .snapshot_with(self.generation, now, self.interval, self.connections);
        snap.complete = raw.complete;
        snap.suspended = raw.suspended.clone();
        snap.capture_mode = self.probe.capture_mode();
        let ctx = TickContext {
            now,
            events: &events,
            raw: &raw,
        };
        for stage in &mut self.stages {
            stage.apply(&ctx, &mut snap);
        }
        if let Some(kept) = &mut self.kept {
            kept.push((raw, events));
        } else if let Some(sink) = self.raw_sink.as_mut() {
            sink(raw);
        }
        Ok(snap)
    }

    /// Persists caches (hashes) and finishes the stages (the journal
    /// writes its stop record); called when a run ends.
    pub fn save(&mut self) {
        self.hasher.save();
        for stage in &mut self.stages {
            stage.finish();
        }
    }
}

/// Script hashes of one sample by the file they were read from and its
/// (device, inode) as the probe saw it.
type ScriptHashes = std::collections::HashMap<
    (std::path::PathBuf, Option<(u64, u64)>),
    Option<String>,
    foldhash::fast::RandomState,
>;

/// The SHA-256 of the file that is `p`'s program (its script, else its
/// image), only when that file is still the one the probe saw before and
/// after reading it: a process that calls `exec` meanwhile would otherwise
/// get the new image's hash under the old path (a false `exe-changed`).
fn confirmed_hash(p: &RawProcess, hasher: &mut dyn ExeHasher, stamper: &Stamper) -> Option<String> {
    let exe = p.exe.as_ref()?;
    let (read_from, expected) = match &p.script {
        Some(s) => (s.read_from.clone(), s.stamp),
        None => (crate::identity::image_path(p.pid, exe), p.exe_stamp),
    };
    let same = || expected.is_none() || stamper(&read_from) == expected;
    if !same() {
        return None;
    }
    let h = match &p.script {
        Some(_) => hasher.hash_file(&read_from),
        None => hasher.hash(p.pid, exe),
    }?;
    same().then_some(h)
}
