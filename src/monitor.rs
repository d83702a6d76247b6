//! The sampling loop: probe → track connection sessions → stages (marks,
//! findings, journal) → an immutable [`Snapshot`] for every reader.
//!
//! [`Tracker`] is pure bookkeeping over raw samples and an explicit time;
//! [`MonitorCore`] adds the probe, the hasher and the stages; [`Monitor`] runs
//! a core on a named thread and publishes each snapshot to a
//! [`SnapshotReceiver`].

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::clock::Clock;
use crate::identity::ExeHasher;
use crate::model::{
    Connection, ProcessInfo, Program, ProgramKey, Protocol, RawProcess, RawSample, Snapshot,
    SockState,
};
use crate::names::{NameCache, RemoteName};
use crate::probe::{Probe, ProbeError};

/// One second catches a connection that lives for a second with near
/// certainty (a sample always falls inside it), at a cost measured in the
/// README's benchmark.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// How long ended connections and exited programs stay visible.
pub const DEFAULT_RETAIN: Duration = Duration::from_secs(15 * 60);

/// Upper bound on remembered ended sessions, whatever the retention.
const MAX_ENDED: usize = 50_000;

/// A process instance: a PID together with its start time, so a reused PID
/// is a different process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcId {
    pub pid: u32,
    pub start_time: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SessionKey {
    owner: Option<ProcId>,
    protocol: Protocol,
    local: SocketAddr,
    remote: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
struct SessionState {
    program: Option<ProgramKey>,
    state: SockState,
    first_seen: SystemTime,
    last_seen: SystemTime,
    live: bool,
    uid: Option<u32>,
    remote_name: Option<Arc<RemoteName>>,
    /// Bytes sent and received, when the probe counted them.
    bytes: (Option<u64>, Option<u64>),
}

#[derive(Debug, Clone)]
struct ProcState {
    raw: RawProcess,
    key: ProgramKey,
    sha256: Option<String>,
    hashed_from: HashedFrom,
    last_seen: SystemTime,
    alive: bool,
    had_connections: bool,
}

#[derive(Debug, Clone)]
struct ProgramState {
    first_seen: SystemTime,
    last_seen: SystemTime,
}

/// What changed in one tick, for the stages.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    Opened {
        program: Option<ProgramKey>,
        connection: Connection,
    },
    Closed {
        program: Option<ProgramKey>,
        connection: Connection,
    },
}

/// Pure bookkeeping of sessions, processes and programs over samples.
#[derive(Debug)]
pub struct Tracker {
    sessions: HashMap<SessionKey, SessionState>,
    procs: HashMap<ProcId, ProcState>,
    programs: HashMap<ProgramKey, ProgramState>,
    retain: Duration,
    since: Option<SystemTime>,
    /// Where remote names come from (the packet reader), when it runs.
    names: Option<Arc<NameCache>>,
}

/// The key a process is grouped under: the script an interpreter runs,
/// else the executable, else the process name.
pub fn program_key(p: &RawProcess) -> ProgramKey {
    match (&p.exe, &p.script) {
        (Some(exe), Some(s)) => ProgramKey::Script {
            script: s.path.clone(),
            interpreter: exe.clone(),
        },
        (Some(exe), None) => ProgramKey::Exe(exe.clone()),
        (None, _) => ProgramKey::Name(p.name.clone()),
    }
}

/// A program's display name: the executable's file name (the kernel's
/// process name is cut at 15 bytes), else the process name. A script is
/// named with its interpreter: `update.sh (bash)`.
fn display_name(p: &RawProcess) -> String {
    let exe_name = p
        .exe
        .as_ref()
        .and_then(|e| e.file_name())
        .map(crate::escape::os_lossless);
    if let (Some(s), Some(interp)) = (&p.script, &exe_name)
        && let Some(file) = s.path.file_name()
    {
        return format!("{} ({interp})", crate::escape::os_lossless(file));
    }
    exe_name.unwrap_or_else(|| p.name.clone())
}

/// What a process's SHA-256 was taken of: the file that is its program
/// (script or image) and that file's (device, inode) at the time. When
/// either changes the hash is taken again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HashedFrom {
    path: Option<PathBuf>,
    stamp: Option<(u64, u64)>,
}

impl HashedFrom {
    fn of(p: &RawProcess) -> HashedFrom {
        match &p.script {
            Some(s) => HashedFrom {
                path: Some(s.path.clone()),
                stamp: s.stamp,
            },
            None => HashedFrom {
                path: p.exe.clone(),
                stamp: p.exe_stamp,
            },
        }
    }
}

impl Tracker {
    pub fn new(retain: Duration) -> Self {
        Tracker {
            sessions: HashMap::new(),
            procs: HashMap::new(),
            programs: HashMap::new(),
            retain,
            since: None,
            names: None,
        }
    }

    /// Names connections from `cache` as they open (and later, while they
    /// live without one).
    pub fn set_names(&mut self, cache: Arc<NameCache>) {
        self.names = Some(cache);
    }

    fn name_for(&self, key: &SessionKey, now: SystemTime) -> Option<Arc<RemoteName>> {
        let cache = self.names.as_ref()?;
        let remote = key.remote?;
        cache
            .best(key.local, remote, key.owner.map(|o| o.pid), now)
            .map(Arc::new)
    }

    /// True when the process `p` (PID and start time) was taken in before.
    pub fn knows(&self, p: &RawProcess) -> bool {
        self.procs.contains_key(&ProcId {
            pid: p.pid,
            start_time: p.start_time,
        })
    }

    /// Number of sessions remembered (live and ended), for tests and stats.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Takes in one sample seen at `now`; returns the sessions that opened
    /// and closed. `hash` is asked once per new process.
    pub fn ingest(
        &mut self,
        sample: &RawSample,
        now: SystemTime,
        hash: &mut dyn FnMut(&RawProcess) -> Option<String>,
    ) -> Vec<SessionEvent> {
        self.since.get_or_insert(now);
        let mut events = Vec::new();

        // Processes: new instances get hashed once; the rest are refreshed.
        let mut seen_procs: HashMap<u32, ProcId> = HashMap::with_capacity(sample.processes.len());
        for p in &sample.processes {
            let id = ProcId {
                pid: p.pid,
                start_time: p.start_time,
            };
            seen_procs.insert(p.pid, id);
            match self.procs.get_mut(&id) {
                Some(st) => {
                    st.key = program_key(p);
                    // `exec` (or a swapped script) keeps the PID but not the
                    // image: hash what runs now. A hash that could not be
                    // confirmed is tried again.
                    let from = HashedFrom::of(p);
                    if p.exe.is_some()
                        && (from != st.hashed_from || (st.sha256.is_none() && from.stamp.is_some()))
                    {
                        st.sha256 = hash(p);
                        st.hashed_from = from;
                    }
                    st.raw = p.clone();
                    st.last_seen = now;
                    st.alive = true;
                }
                None => {
                    let sha256 = if p.exe.is_some() { hash(p) } else { None };
                    self.procs.insert(
                        id,
                        ProcState {
                            raw: p.clone(),
                            key: program_key(p),
                            sha256,
                            hashed_from: HashedFrom::of(p),
                            last_seen: now,
                            alive: true,
                            had_connections: false,
                        },
                    );
                }
            }
            let key = program_key(p);
            self.programs
                .entry(key)
                .and_modify(|ps| ps.last_seen = now)
                .or_insert(ProgramState {
                    first_seen: now,
                    last_seen: now,
                });
        }
        for (id, st) in self.procs.iter_mut() {
            if st.alive && seen_procs.get(&id.pid) != Some(id) {
                st.alive = false;
            }
        }
        // Processes the capture saw end before this sample: listed for
        // their connections, not as running.
        for pid in &sample.exited {
            if let Some(st) = seen_procs.get(pid).and_then(|id| self.procs.get_mut(id)) {
                st.alive = false;
            }
        }

        // Sockets: one session per socket per program holding it (a socket
        // shared after fork belongs to the lowest PID of each program).
        let mut seen_sessions: HashSet<SessionKey> = HashSet::with_capacity(sample.sockets.len());
        let listed = sample.sockets.iter().map(|s| (s, false));
        for (s, ended) in listed.chain(sample.ended.iter().map(|s| (s, true))) {
            let mut owners: Vec<(Option<ProcId>, Option<ProgramKey>)> = Vec::new();
            let mut pids = s.pids.clone();
            pids.sort_unstable();
            for pid in pids {
                let Some(id) = seen_procs.get(&pid) else {
                    continue;
                };
                let key = self.procs.get(id).map(|st| st.key.clone());
                if owners.iter().any(|(_, k)| *k == key) {
                    continue;
                }
                owners.push((Some(*id), key));
            }
            if owners.is_empty() {
                owners.push((None, None));
            }
            for (owner, program) in owners {
                let key = SessionKey {
                    owner,
                    protocol: s.protocol,
                    local: s.local,
                    remote: s.remote,
                };
                if let Some(id) = owner
                    && let Some(st) = self.procs.get_mut(&id)
                {
                    st.had_connections = true;
                }
                let unnamed = self
                    .sessions
                    .get(&key)
                    .is_none_or(|st| !st.live || st.remote_name.is_none());
                let name = if unnamed {
                    self.name_for(&key, now)
                } else {
                    None
                };
                match self.sessions.get_mut(&key) {
                    Some(st) if st.live => {
                        st.last_seen = now;
                        st.state = s.state;
                        if st.remote_name.is_none() {
                            st.remote_name = name;
                        }
                        st.bytes = (
                            st.bytes.0.max(s.bytes_sent),
                            st.bytes.1.max(s.bytes_received),
                        );
                    }
                    _ => {
                        // New, or the same 4-tuple reopened after it closed.
                        let st = SessionState {
                            remote_name: name,
                            program: program.clone(),
                            state: s.state,
                            first_seen: now,
                            last_seen: now,
                            live: true,
                            uid: s.uid,
                            bytes: (s.bytes_sent, s.bytes_received),
                        };
                        events.push(SessionEvent::Opened {
                            program: program.clone(),
                            connection: to_connection(&key, &st),
                        });
                        self.sessions.insert(key.clone(), st);
                    }
                }
                // An ended socket's session is closed just below.
                if !ended {
                    seen_sessions.insert(key);
                }
            }
        }
        for (key, st) in self.sessions.iter_mut() {
            if st.live && !seen_sessions.contains(key) {
                st.live = false;
                events.push(SessionEvent::Closed {
                    program: st.program.clone(),
                    connection: to_connection(key, st),
                });
            }
        }

        self.forget_old(now);
        events
    }

    fn forget_old(&mut self, now: SystemTime) {
        let horizon = now
            .checked_sub(self.retain)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        self.sessions
            .retain(|_, s| s.live || s.last_seen >= horizon);
        if self.sessions.len() > MAX_ENDED {
            let mut ended: Vec<(SystemTime, SessionKey)> = self
                .sessions
                .iter()
                .filter(|(_, s)| !s.live)
                .map(|(k, s)| (s.last_seen, k.clone()))
                .collect();
            ended.sort_by_key(|(t, _)| *t);
            let excess = self.sessions.len() - MAX_ENDED;
            for (_, k) in ended.into_iter().take(excess) {
                self.sessions.remove(&k);
            }
        }
        // Exited processes matter only while their connections are shown.
        self.procs
            .retain(|_, p| p.alive || (p.had_connections && p.last_seen >= horizon));
        let live_keys: HashSet<&ProgramKey> = self.procs.values().map(|p| &p.key).collect();
        self.programs
            .retain(|k, p| live_keys.contains(k) || p.last_seen >= horizon);
    }

    /// The current picture. Programs are listed when a process of theirs is
    /// alive, or when they had connections within the retention window.
    pub fn snapshot(&self, generation: u64, now: SystemTime, interval: Duration) -> Snapshot {
        let mut programs: HashMap<ProgramKey, Program> = HashMap::new();
        for (id, st) in &self.procs {
            let prog = programs.entry(st.key.clone()).or_insert_with(|| Program {
                key: st.key.clone(),
                name: display_name(&st.raw),
                exe: match &st.raw.script {
                    Some(s) => Some(s.path.clone()),
                    None => st.raw.exe.clone(),
                },
                exe_deleted: false,
                sha256: None,
                processes: Vec::new(),
                connections: Vec::new(),
                findings: Vec::new(),
                mark: None,
                stale_mark: None,
                first_seen: self
                    .programs
                    .get(&st.key)
                    .map(|p| p.first_seen)
                    .unwrap_or(now),
            });
            prog.processes.push(ProcessInfo {
                pid: id.pid,
                parent: st.raw.parent,
                name: st.raw.name.clone(),
                cmdline: st.raw.cmdline.clone(),
                user: st.raw.user.clone(),
                uid: st.raw.uid,
                start_time: st.raw.start_time,
                alive: st.alive,
                exe_deleted: match &st.raw.script {
                    Some(s) => s.deleted,
                    None => st.raw.exe_deleted,
                },
                sha256: st.sha256.clone(),
            });
        }
        let mut unattributed = Vec::new();
        for (key, st) in &self.sessions {
            let conn = to_connection(key, st);
            match st.program.as_ref().and_then(|k| programs.get_mut(k)) {
                Some(p) => p.connections.push(conn),
                None => unattributed.push(conn),
            }
        }
        let mut programs: Vec<Program> = programs
            .into_values()
            .map(|mut p| {
                p.processes.sort_by_key(|x| (!x.alive, x.pid));
                p.exe_deleted = p.processes.iter().any(|x| x.alive && x.exe_deleted)
                    || (p.processes.iter().all(|x| !x.alive)
                        && p.processes.iter().any(|x| x.exe_deleted));
                // Prefer the hash of an image that is still the file on disk.
                p.sha256 = p
                    .processes
                    .iter()
                    .filter(|x| !x.exe_deleted)
                    .chain(p.processes.iter())
                    .find_map(|x| x.sha256.clone());
                p.connections.sort_by(conn_order);
                p
            })
            .collect();
        programs.sort_by(|a, b| a.key.cmp(&b.key));
        unattributed.sort_by(conn_order);
        Snapshot {
            generation,
            taken_at: now,
            since: self.since.unwrap_or(now),
            interval,
            programs,
            unattributed,
            complete: true,
            newly_raised: Vec::new(),
            suspended: Vec::new(),
            capture_mode: Default::default(),
        }
    }
}

fn conn_order(a: &Connection, b: &Connection) -> std::cmp::Ordering {
    (b.live, a.pid, a.protocol, a.local, a.remote, a.first_seen).cmp(&(
        a.live,
        b.pid,
        b.protocol,
        b.local,
        b.remote,
        b.first_seen,
    ))
}

fn to_connection(key: &SessionKey, st: &SessionState) -> Connection {
    Connection {
        pid: key.owner.map(|o| o.pid),
        protocol: key.protocol,
        local: key.local,
        remote: key.remote,
        state: st.state,
        first_seen: st.first_seen,
        last_seen: st.last_seen,
        live: st.live,
        uid: st.uid,
        remote_name: st.remote_name.clone(),
        bytes_sent: st.bytes.0,
        bytes_received: st.bytes.1,
    }
}

/// What a stage gets to see about the tick it runs in.
pub struct TickContext<'a> {
    pub now: SystemTime,
    pub events: &'a [SessionEvent],
    pub raw: &'a RawSample,
}

/// A step that adds to a snapshot before it is published: marks, findings,
/// the journal. Stages run in the order they were added.
pub trait Stage: Send {
    fn apply(&mut self, ctx: &TickContext<'_>, snapshot: &mut Snapshot);

    /// The run is ending (from [`MonitorCore::save`]): flush and close
    /// what the stage holds open. A later `apply` may start it again.
    fn finish(&mut self) {}
}

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
}

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
        }
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

    pub fn add_stage(&mut self, stage: Box<dyn Stage>) {
        self.stages.push(stage);
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn set_interval(&mut self, interval: Duration) {
        self.interval = interval;
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
        let fresh: Vec<PathBuf> = raw
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
        let events = self.tracker.ingest(&raw, now, &mut |p| {
            confirmed_hash(p, hasher.as_mut(), stamper)
        });
        self.generation += 1;
        let mut snap = self.tracker.snapshot(self.generation, now, self.interval);
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
        self.slot
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits up to `timeout` for a snapshot newer than `generation`.
    pub fn wait_newer(&self, generation: u64, timeout: Duration) -> Option<Arc<Snapshot>> {
        let (lock, cv) = &*self.slot;
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
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
        let mut cur = lock.lock().unwrap_or_else(|e| e.into_inner());
        if snap.generation > cur.generation {
            *cur = snap;
            cv.notify_all();
        }
    }
}

/// Messages to the sampling thread.
#[derive(Debug)]
pub enum Control {
    /// Sample now instead of waiting for the interval (tests, "refresh").
    TickNow,
    SetInterval(Duration),
    Stop,
}

/// A running sampling thread.
pub struct Monitor {
    control: mpsc::Sender<Control>,
    join: Option<JoinHandle<()>>,
    pub snapshots: SnapshotReceiver,
    pub errors: Arc<Mutex<Option<String>>>,
}

impl Monitor {
    /// Starts `core` on a thread named `kizuki-monitor`. `on_publish` runs
    /// after each snapshot (the GUI asks for a repaint there). With
    /// `autorun` false the thread samples only on [`Control::TickNow`],
    /// which is how tests drive it.
    pub fn spawn(
        mut core: MonitorCore,
        autorun: bool,
        on_publish: Box<dyn Fn() + Send>,
    ) -> std::io::Result<Monitor> {
        let (tx, rx) = mpsc::channel::<Control>();
        let (sender, receiver) = SnapshotReceiver::new();
        let errors = Arc::new(Mutex::new(None));
        let errors_thread = errors.clone();
        let join = std::thread::Builder::new()
            .name("kizuki-monitor".into())
            .spawn(move || {
                let run_tick = |core: &mut MonitorCore| match core.tick() {
                    Ok(s) => {
                        *errors_thread.lock().unwrap_or_else(|e| e.into_inner()) = None;
                        sender.publish(Arc::new(s));
                        on_publish();
                    }
                    Err(e) => {
                        *errors_thread.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(e.to_string());
                        on_publish();
                    }
                };
                if autorun {
                    run_tick(&mut core);
                }
                loop {
                    let msg = if autorun {
                        rx.recv_timeout(core.interval())
                    } else {
                        rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
                    };
                    match msg {
                        Ok(Control::TickNow) | Err(RecvTimeoutError::Timeout) => {
                            run_tick(&mut core)
                        }
                        Ok(Control::SetInterval(d)) => core.set_interval(d),
                        Ok(Control::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                core.save();
            })?;
        Ok(Monitor {
            control: tx,
            join: Some(join),
            snapshots: receiver,
            errors,
        })
    }

    pub fn send(&self, c: Control) {
        // The thread only stops when asked to, so a failed send means it is
        // already gone; there is nothing left to tell.
        let _ = self.control.send(c);
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.control.send(Control::Stop);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Exe paths of a snapshot's programs, for lookups by path.
pub fn exe_index(snap: &Snapshot) -> HashMap<PathBuf, usize> {
    snap.programs
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.exe.clone().map(|e| (e, i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::identity::FakeHasher;
    use crate::model::RawSocket;
    use crate::probe::FakeProbe;

    fn core(samples: Vec<RawSample>, clock: Arc<FakeClock>) -> MonitorCore {
        MonitorCore::new(
            Box::new(FakeProbe::new(samples)),
            Box::new(FakeHasher::default()),
            clock,
            Duration::from_secs(1),
        )
    }

    fn curl() -> RawProcess {
        RawProcess::fake(100, "/usr/bin/curl")
    }

    #[test]
    fn processes_of_one_executable_are_one_program() {
        let clock = Arc::new(FakeClock::at_noon());
        let mut a = RawProcess::fake(10, "/usr/bin/firefox");
        a.name = "firefox-bin".into();
        let b = RawProcess::fake(11, "/usr/bin/firefox");
        let c = RawProcess::fake(12, "/usr/bin/ssh");
        let sample = RawSample::of(
            vec![a, b, c],
            vec![
                RawSocket::tcp(10, "10.0.0.2:5000", "198.51.100.1:443"),
                RawSocket::tcp(11, "10.0.0.2:5001", "198.51.100.2:443"),
            ],
        );
        let snap = core(vec![sample], clock).tick().unwrap();
        assert_eq!(snap.programs.len(), 2);
        let ff = snap
            .program(&ProgramKey::Exe("/usr/bin/firefox".into()))
            .unwrap();
        assert_eq!(ff.name, "firefox");
        assert_eq!(ff.pids(), vec![10, 11]);
        assert_eq!(ff.connections.len(), 2);
        let ssh = snap
            .program(&ProgramKey::Exe("/usr/bin/ssh".into()))
            .unwrap();
        assert!(ssh.connections.is_empty());
    }

    #[test]
    fn session_keeps_first_seen_and_moves_last_seen() {
        let clock = Arc::new(FakeClock::at_noon());
        let t0 = clock.now();
        let s = RawSample::of(
            vec![curl()],
            vec![RawSocket::tcp(100, "10.0.0.2:40000", "203.0.113.7:443")],
        );
        let mut m = core(
            vec![s.clone(), s.clone(), RawSample::of(vec![curl()], vec![])],
            clock.clone(),
        );
        m.tick().unwrap();
        clock.advance(Duration::from_secs(1));
        let snap = m.tick().unwrap();
        let c = &snap.programs[0].connections[0];
        assert_eq!(c.first_seen, t0);
        assert_eq!(c.last_seen, t0 + Duration::from_secs(1));
        assert!(c.live);
        assert_eq!(c.remote, Some("203.0.113.7:443".parse().unwrap()));
        clock.advance(Duration::from_secs(1));
        let snap = m.tick().unwrap();
        let c = &snap.programs[0].connections[0];
        assert!(!c.live, "a closed connection stays visible as ended");
        assert_eq!(c.last_seen, t0 + Duration::from_secs(1));
    }

    #[test]
    fn reused_pid_is_a_new_process_and_new_session() {
        let clock = Arc::new(FakeClock::at_noon());
        let first = RawSample::of(
            vec![curl()],
            vec![RawSocket::tcp(100, "10.0.0.2:40000", "203.0.113.7:443")],
        );
        let mut other = RawProcess::fake(100, "/tmp/evil");
        other.start_time += 50;
        let second = RawSample::of(
            vec![other],
            vec![RawSocket::tcp(100, "10.0.0.2:40000", "203.0.113.7:443")],
        );
        let mut m = core(vec![first, second], clock.clone());
        m.tick().unwrap();
        clock.advance(Duration::from_secs(1));
        let snap = m.tick().unwrap();
        let evil = snap.program(&ProgramKey::Exe("/tmp/evil".into())).unwrap();
        assert_eq!(evil.connections.len(), 1);
        assert!(evil.connections[0].live);
        assert_eq!(evil.connections[0].first_seen, clock.now());
        let curl = snap
            .program(&ProgramKey::Exe("/usr/bin/curl".into()))
            .unwrap();
        assert!(curl.processes.iter().all(|p| !p.alive));
        assert!(!curl.connections[0].live, "old owner's session ended");
    }

    #[test]
    fn reopened_tuple_is_a_new_session() {
        let clock = Arc::new(FakeClock::at_noon());
        let on = RawSample::of(
            vec![curl()],
            vec![RawSocket::tcp(100, "10.0.0.2:40000", "203.0.113.7:443")],
        );
        let off = RawSample::of(vec![curl()], vec![]);
        let mut m = core(vec![on.clone(), off, on], clock.clone());
        m.tick().unwrap();
        clock.advance(Duration::from_secs(1));
        m.tick().unwrap();
        clock.advance(Duration::from_secs(1));
        let snap = m.tick().unwrap();
        let conns = &snap.programs[0].connections;
        assert_eq!(
            conns.len(),
            1,
            "the ended session is replaced by the new one"
        );
        assert_eq!(conns[0].first_seen, clock.now());
    }

    #[test]
    fn socket_without_owner_is_unattributed() {
        let clock = Arc::new(FakeClock::at_noon());
        let mut tw = RawSocket::tcp(0, "10.0.0.2:40000", "203.0.113.7:443");
        tw.pids.clear();
        tw.state = SockState::TimeWait;
        tw.inode = 0;
        let snap = core(vec![RawSample::of(vec![curl()], vec![tw])], clock)
            .tick()
            .unwrap();
        assert_eq!(snap.unattributed.len(), 1);
        assert_eq!(snap.unattributed[0].pid, None);
        assert!(snap.programs[0].connections.is_empty());
    }

    #[test]
    fn generations_increase_and_events_are_reported() {
        let clock = Arc::new(FakeClock::at_noon());
        let mut m = core(vec![RawSample::of(vec![curl()], vec![])], clock);
        let g1 = m.tick().unwrap().generation;
        let g2 = m.tick().unwrap().generation;
        assert_eq!((g1, g2), (1, 2));
    }

    #[test]
    fn exited_program_with_connections_stays_for_the_window_then_goes() {
        let clock = Arc::new(FakeClock::at_noon());
        let on = RawSample::of(
            vec![curl()],
            vec![RawSocket::tcp(100, "10.0.0.2:40000", "203.0.113.7:443")],
        );
        let gone = RawSample::of(vec![], vec![]);
        let mut m = core(vec![on, gone], clock.clone()).with_retention(Duration::from_secs(60));
        m.tick().unwrap();
        clock.advance(Duration::from_secs(1));
        let snap = m.tick().unwrap();
        assert_eq!(snap.programs.len(), 1);
        assert!(!snap.programs[0].processes[0].alive);
        clock.advance(Duration::from_secs(120));
        let snap = m.tick().unwrap();
        assert!(snap.programs.is_empty());
        assert_eq!(m.tracker().session_count(), 0);
    }

    #[test]
    fn deleted_image_is_reported_with_its_hash() {
        let clock = Arc::new(FakeClock::at_noon());
        let mut p = RawProcess::fake(7, "/tmp/tool");
        p.exe_deleted = true;
        let mut m = MonitorCore::new(
            Box::new(FakeProbe::new(vec![RawSample::of(vec![p], vec![])])),
            Box::new(FakeHasher::with(&[("/tmp/tool", "aa11")])),
            clock,
            Duration::from_secs(1),
        );
        let snap = m.tick().unwrap();
        assert!(snap.programs[0].exe_deleted);
        assert_eq!(snap.programs[0].sha256.as_deref(), Some("aa11"));
    }

    /// Hashes by the image's inode (what a real hasher reads through
    /// `/proc/PID/exe`), counting calls.
    struct InodeHasher {
        current: Arc<Mutex<(u64, u64)>>,
        calls: Arc<Mutex<usize>>,
    }
    impl ExeHasher for InodeHasher {
        fn hash(&mut self, _pid: u32, _exe: &std::path::Path) -> Option<String> {
            *self.calls.lock().unwrap() += 1;
            Some(format!("img-{}", self.current.lock().unwrap().1))
        }
        fn hash_file(&mut self, path: &std::path::Path) -> Option<String> {
            Some(format!("file-{}", path.display()))
        }
    }

    fn stamped(pid: u32, exe: &str, ino: u64) -> RawProcess {
        let mut p = RawProcess::fake(pid, exe);
        p.exe_stamp = Some((1, ino));
        p
    }

    #[test]
    fn exec_is_hashed_again_and_a_race_yields_no_hash() {
        let clock = Arc::new(FakeClock::at_noon());
        let image = Arc::new(Mutex::new((1u64, 10u64)));
        let calls = Arc::new(Mutex::new(0usize));
        let probe = FakeProbe::new(vec![]);
        let stamp_now = image.clone();
        let mut m = MonitorCore::new(
            Box::new(probe.clone()),
            Box::new(InodeHasher {
                current: image.clone(),
                calls: calls.clone(),
            }),
            clock.clone(),
            Duration::from_secs(1),
        )
        .with_stamper(Box::new(move |_| Some(*stamp_now.lock().unwrap())));
        let sha = |s: &Snapshot| s.programs[0].sha256.clone();

        // bash starts (inode 10) and is hashed once, not every sample.
        probe.push(RawSample::of(vec![stamped(5, "/usr/bin/bash", 10)], vec![]));
        assert_eq!(sha(&m.tick().unwrap()).as_deref(), Some("img-10"));
        probe.push(RawSample::of(vec![stamped(5, "/usr/bin/bash", 10)], vec![]));
        m.tick().unwrap();
        assert_eq!(*calls.lock().unwrap(), 1);

        // Same PID calls exec: a new image (inode 20) at a new path.
        *image.lock().unwrap() = (1, 20);
        probe.push(RawSample::of(vec![stamped(5, "/tmp/x/tool", 20)], vec![]));
        let s = m.tick().unwrap();
        assert_eq!(
            s.programs[0].exe.as_deref(),
            Some(std::path::Path::new("/tmp/x/tool"))
        );
        assert_eq!(sha(&s).as_deref(), Some("img-20"), "the new image's hash");

        // The image changes between the probe's look (20) and the hash
        // (30): the hash is not tied to what the probe saw, so none is
        // given rather than the wrong one under the old path.
        *image.lock().unwrap() = (1, 30);
        probe.push(RawSample::of(vec![stamped(5, "/tmp/x/tool", 21)], vec![]));
        let s = m.tick().unwrap();
        assert_eq!(sha(&s), None, "unconfirmed hash is dropped");
        // Next sample agrees with the file: hashed and confirmed.
        probe.push(RawSample::of(vec![stamped(5, "/tmp/x/tool", 30)], vec![]));
        assert_eq!(sha(&m.tick().unwrap()).as_deref(), Some("img-30"));
    }

    #[test]
    fn a_script_is_its_own_program_hashed_by_its_file() {
        let clock = Arc::new(FakeClock::at_noon());
        let mut bash = RawProcess::fake(5, "/usr/bin/bash");
        bash.cmdline = vec!["bash".into(), "/tmp/update.sh".into()];
        bash.script = Some(crate::model::ScriptRun {
            path: "/tmp/update.sh".into(),
            read_from: "/proc/5/fd/255".into(),
            deleted: false,
            stamp: None,
        });
        let plain = RawProcess::fake(6, "/usr/bin/bash");
        let snap = core(vec![RawSample::of(vec![bash, plain], vec![])], clock)
            .tick()
            .unwrap();
        assert_eq!(snap.programs.len(), 2, "the script is not the shell");
        let key = ProgramKey::Script {
            script: "/tmp/update.sh".into(),
            interpreter: "/usr/bin/bash".into(),
        };
        let p = snap.program(&key).unwrap();
        assert_eq!(
            p.exe.as_deref(),
            Some(std::path::Path::new("/tmp/update.sh"))
        );
        assert_eq!(p.interpreter(), Some(std::path::Path::new("/usr/bin/bash")));
        assert_eq!(p.name, "update.sh (bash)");
        // FakeHasher hashes the path it is given: the script's descriptor.
        assert_eq!(
            p.sha256.as_deref(),
            Some(crate::identity::sha256_bytes(b"/proc/5/fd/255").as_str())
        );
    }

    struct Count(Arc<Mutex<Vec<usize>>>);
    impl Stage for Count {
        fn apply(&mut self, ctx: &TickContext<'_>, snap: &mut Snapshot) {
            self.0.lock().unwrap().push(ctx.events.len());
            snap.programs
                .iter_mut()
                .for_each(|p| p.mark = Some(crate::model::Mark::Trusted));
        }
    }

    #[test]
    fn stages_see_events_and_shape_the_snapshot() {
        let clock = Arc::new(FakeClock::at_noon());
        let on = RawSample::of(
            vec![curl()],
            vec![RawSocket::tcp(100, "10.0.0.2:40000", "203.0.113.7:443")],
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut m = core(vec![on.clone(), on], clock);
        m.add_stage(Box::new(Count(seen.clone())));
        let s = m.tick().unwrap();
        m.tick().unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![1, 0]);
        assert_eq!(s.programs[0].mark, Some(crate::model::Mark::Trusted));
    }

    #[test]
    fn thread_publishes_newer_generations_on_demand() {
        let clock = Arc::new(FakeClock::at_noon());
        let m = Monitor::spawn(
            core(vec![RawSample::of(vec![curl()], vec![])], clock),
            false,
            Box::new(|| {}),
        )
        .unwrap();
        assert_eq!(m.snapshots.latest().generation, 0);
        m.send(Control::TickNow);
        let s = m
            .snapshots
            .wait_newer(0, Duration::from_secs(30))
            .expect("a snapshot arrives");
        assert_eq!(s.generation, 1);
        m.send(Control::TickNow);
        let s2 = m.snapshots.wait_newer(1, Duration::from_secs(30)).unwrap();
        assert_eq!(s2.generation, 2);
        m.stop();
    }

    #[test]
    fn stale_snapshot_never_replaces_a_newer_one() {
        let (tx, rx) = SnapshotReceiver::new();
        let mut s = Snapshot::empty();
        s.generation = 5;
        tx.publish(Arc::new(s.clone()));
        s.generation = 3;
        tx.publish(Arc::new(s));
        assert_eq!(rx.latest().generation, 5);
    }
}
