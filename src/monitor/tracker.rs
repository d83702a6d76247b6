//! Pure bookkeeping over raw samples and an explicit time: which
//! connection sessions opened and closed, which processes and programs are
//! alive, and the [`Snapshot`] they make. No I/O, no clock.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::model::{
    Connection, ProcessInfo, Program, ProgramKey, Protocol, RawProcess, RawSample, Snapshot,
    SockState,
};
use crate::names::{NameCache, RemoteName};

/// The tracker's maps are keyed by socket addresses and paths, hashed for
/// every connection of every sample: a fast hasher, still seeded per
/// process.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type Set<K> = HashSet<K, foldhash::fast::RandomState>;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SessionKey {
    owner: Option<ProcId>,
    protocol: Protocol,
    local: SocketAddr,
    remote: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
struct SessionState {
    /// Shared with the process's state: a busy program holds thousands of
    /// sessions, each would otherwise copy its path.
    program: Option<Arc<ProgramKey>>,
    state: SockState,
    first_seen: SystemTime,
    last_seen: SystemTime,
    live: bool,
    uid: Option<u32>,
    remote_name: Option<Arc<RemoteName>>,
    /// Bytes sent and received, when the probe counted them.
    bytes: (Option<u64>, Option<u64>),
    /// The last sample that listed it live ([`Tracker::ticks`]).
    seen_in: u64,
}

#[derive(Debug, Clone)]
struct ProcState {
    raw: RawProcess,
    key: Arc<ProgramKey>,
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
    /// The key every process of the program shares.
    shared: Arc<ProgramKey>,
}

/// What changed in one tick, for the stages.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    Opened {
        program: Option<Arc<ProgramKey>>,
        connection: Connection,
    },
    Closed {
        program: Option<Arc<ProgramKey>>,
        connection: Connection,
    },
}

/// Pure bookkeeping of sessions, processes and programs over samples.
#[derive(Debug)]
pub struct Tracker {
    sessions: Map<SessionKey, SessionState>,
    procs: Map<ProcId, ProcState>,
    programs: Map<ProgramKey, ProgramState>,
    pub(super) retain: Duration,
    /// How long ended sessions are kept, when shorter than `retain`
    /// (a monitor that lists no connections needs none of them).
    pub(super) ended_sessions: Option<Duration>,
    since: Option<SystemTime>,
    /// Where remote names come from (the packet reader), when it runs.
    names: Option<Arc<NameCache>>,
    /// Samples taken in so far.
    ticks: u64,
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
            sessions: Map::default(),
            procs: Map::default(),
            programs: Map::default(),
            retain,
            ended_sessions: None,
            since: None,
            names: None,
            ticks: 0,
        }
    }

    /// Names connections from `cache` as they open (and later, while they
    /// live without one).
    pub fn set_names(&mut self, cache: Arc<NameCache>) {
        self.names = Some(cache);
    }

    fn name_for(
        names: Option<&NameCache>,
        key: &SessionKey,
        now: SystemTime,
    ) -> Option<Arc<RemoteName>> {
        let cache = names?;
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
        // The first sample opens every session it lists: room for them
        // at once (later samples open few).
        let mut events = if self.sessions.is_empty() {
            Vec::with_capacity(sample.sockets.len() + sample.ended.len())
        } else {
            Vec::new()
        };

        // Processes: new instances get hashed once; the rest are refreshed.
        let mut seen_procs: Map<u32, ProcId> =
            Map::with_capacity_and_hasher(sample.processes.len(), Default::default());
        self.procs.reserve(sample.processes.len());
        self.programs.reserve(sample.processes.len());
        for p in &sample.processes {
            let id = ProcId {
                pid: p.pid,
                start_time: p.start_time,
            };
            seen_procs.insert(p.pid, id);
            let key = program_key(p);
            // Every process (and session) of a program shares one copy of
            // its key: the same copy is the same program.
            let shared = |programs: &Map<ProgramKey, ProgramState>, key: ProgramKey| match programs
                .get(&key)
            {
                Some(ps) => ps.shared.clone(),
                None => Arc::new(key),
            };
            let key = match self.procs.get_mut(&id) {
                Some(st) => {
                    if *st.key != key {
                        st.key = shared(&self.programs, key);
                    }
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
                    st.key.clone()
                }
                None => {
                    let sha256 = if p.exe.is_some() { hash(p) } else { None };
                    let key = shared(&self.programs, key);
                    self.procs.insert(
                        id,
                        ProcState {
                            raw: p.clone(),
                            key: key.clone(),
                            sha256,
                            hashed_from: HashedFrom::of(p),
                            last_seen: now,
                            alive: true,
                            had_connections: false,
                        },
                    );
                    key
                }
            };
            match self.programs.get_mut(&*key) {
                Some(ps) => ps.last_seen = now,
                None => {
                    self.programs.insert(
                        (*key).clone(),
                        ProgramState {
                            first_seen: now,
                            last_seen: now,
                            shared: key.clone(),
                        },
                    );
                }
            }
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
        self.ticks += 1;
        let tick = self.ticks;
        // Room for the sockets not tracked yet (most are, from the last
        // sample): reserving the whole sample again on top would double
        // the table, and a table never shrinks by itself.
        let listed = sample.sockets.len() + sample.ended.len();
        self.sessions
            .reserve(listed.saturating_sub(self.sessions.len()));
        let names = self.names.as_deref();
        let mut owners: Vec<(Option<ProcId>, Option<Arc<ProgramKey>>)> = Vec::new();
        let listed = sample.sockets.iter().map(|s| (s, false));
        for (s, ended) in listed.chain(sample.ended.iter().map(|s| (s, true))) {
            owners.clear();
            let sorted;
            let pids: &[u32] = if s.pids.len() > 1 {
                let mut p = s.pids.clone();
                p.sort_unstable();
                sorted = p;
                &sorted
            } else {
                &s.pids
            };
            for pid in pids {
                let Some(id) = seen_procs.get(pid) else {
                    continue;
                };
                let st = self.procs.get_mut(id);
                if owners
                    .iter()
                    .any(|(_, k)| k.as_ref() == st.as_ref().map(|st| &st.key))
                {
                    continue;
                }
                let key = st.map(|st| {
                    st.had_connections = true;
                    st.key.clone()
                });
                owners.push((Some(*id), key));
            }
            if owners.is_empty() {
                owners.push((None, None));
            }
            for (owner, program) in owners.drain(..) {
                let key = SessionKey {
                    owner,
                    protocol: s.protocol,
                    local: s.local,
                    remote: s.remote,
                };
                // An ended socket's session is closed below: not seen live.
                let seen_in = if ended { 0 } else { tick };
                match self.sessions.entry(key) {
                    Entry::Occupied(mut o) if o.get().live => {
                        let st = o.get_mut();
                        st.last_seen = now;
                        st.state = s.state;
                        if st.remote_name.is_none() {
                            st.remote_name = Self::name_for(names, &key, now);
                        }
                        st.bytes = (
                            st.bytes.0.max(s.bytes_sent),
                            st.bytes.1.max(s.bytes_received),
                        );
                        st.seen_in = st.seen_in.max(seen_in);
                    }
                    entry => {
                        // New, or the same 4-tuple reopened after it closed.
                        // Where capture saw it begin (between two samples),
                        // else now; never in the future.
                        let began = s.opened.map_or(now, |t| t.min(now));
                        let st = SessionState {
                            remote_name: Self::name_for(names, &key, now),
                            program: program.clone(),
                            state: s.state,
                            first_seen: began,
                            last_seen: now,
                            live: true,
                            uid: s.uid,
                            bytes: (s.bytes_sent, s.bytes_received),
                            seen_in,
                        };
                        events.push(SessionEvent::Opened {
                            program,
                            connection: to_connection(&key, &st),
                        });
                        match entry {
                            Entry::Occupied(mut o) => {
                                o.insert(st);
                            }
                            Entry::Vacant(v) => {
                                v.insert(st);
                            }
                        }
                    }
                }
            }
        }
        for (key, st) in self.sessions.iter_mut() {
            if st.live && st.seen_in != tick {
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
        let since = |d: Duration| now.checked_sub(d).unwrap_or(SystemTime::UNIX_EPOCH);
        let horizon = since(self.retain);
        let ended_horizon = since(
            self.ended_sessions
                .map_or(self.retain, |d| d.min(self.retain)),
        );
        self.sessions
            .retain(|_, s| s.live || s.last_seen >= ended_horizon);
        if self.sessions.len() > MAX_ENDED {
            let mut ended: Vec<(SystemTime, SessionKey)> = self
                .sessions
                .iter()
                .filter(|(_, s)| !s.live)
                .map(|(k, s)| (s.last_seen, *k))
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
        let live_keys: Set<&ProgramKey> = self.procs.values().map(|p| &*p.key).collect();
        self.programs
            .retain(|k, p| live_keys.contains(k) || p.last_seen >= horizon);
        shrink_sparse(&mut self.sessions);
        shrink_sparse(&mut self.procs);
    }

    /// Capacity of the session table (tests of its memory).
    pub fn session_capacity(&self) -> usize {
        self.sessions.capacity()
    }

    /// The current picture. Programs are listed when a process of theirs is
    /// alive, or when they had connections within the retention window.
    pub fn snapshot(&self, generation: u64, now: SystemTime, interval: Duration) -> Snapshot {
        self.snapshot_with(generation, now, interval, true)
    }

    /// [`Tracker::snapshot`]; without `connections` its programs list no
    /// connections and nothing is unattributed (for stages that read only
    /// programs, processes and the tick's events: the guard's journal).
    pub fn snapshot_with(
        &self,
        generation: u64,
        now: SystemTime,
        interval: Duration,
        connections: bool,
    ) -> Snapshot {
        // Connections per program, counted first: a busy program holds
        // thousands, which grown step by step would be copied again and
        // again. Sessions share their program's key: counted by its copy.
        let mut counts: Map<*const ProgramKey, usize> = Map::default();
        let mut unowned = 0;
        if connections {
            let mut last: Option<(*const ProgramKey, usize)> = None;
            for st in self.sessions.values() {
                let Some(k) = &st.program else {
                    unowned += 1;
                    continue;
                };
                let k = Arc::as_ptr(k);
                match &mut last {
                    Some((lk, n)) if *lk == k => *n += 1,
                    _ => {
                        if let Some((lk, n)) = last.take() {
                            *counts.entry(lk).or_default() += n;
                        }
                        last = Some((k, 1));
                    }
                }
            }
            if let Some((lk, n)) = last {
                *counts.entry(lk).or_default() += n;
            }
        }
        let mut programs: Map<ProgramKey, Program> = Map::default();
        for (id, st) in &self.procs {
            let prog = programs
                .entry((*st.key).clone())
                .or_insert_with(|| Program {
                    key: (*st.key).clone(),
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
            // Processes of one program normally share one key: else their
            // counts add up (nothing is pushed yet, so capacity is the sum).
            if let Some(n) = counts.remove(&Arc::as_ptr(&st.key)) {
                let want = prog.connections.capacity() + n;
                prog.connections.reserve(want);
            }
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
        let mut unattributed = Vec::with_capacity(unowned);
        // A busy program holds thousands of sessions: the program of the
        // last one is kept at hand instead of hashing its path again.
        let mut cur: Option<(&Arc<ProgramKey>, &mut Program)> = None;
        for (key, st) in self.sessions.iter().filter(|_| connections) {
            let conn = to_connection(key, st);
            let Some(k) = st.program.as_ref() else {
                unattributed.push(conn);
                continue;
            };
            if cur.as_ref().is_none_or(|(ck, _)| *ck != k) {
                cur = programs.get_mut(&**k).map(|p| (k, p));
            }
            match cur.as_mut() {
                Some((_, p)) => p.connections.push(conn),
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
                // The sessions come in hash order: stability buys nothing.
                sort_connections(&mut p.connections);
                p
            })
            .collect();
        programs.sort_by(|a, b| a.key.cmp(&b.key));
        sort_connections(&mut unattributed);
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

/// A table left mostly empty after a burst (thousands of connections
/// that closed) gives its memory back: hash tables never shrink by
/// themselves, and each slot of the session table takes ~250 bytes.
fn shrink_sparse<K: std::hash::Hash + Eq, V>(map: &mut Map<K, V>) {
    const FLOOR: usize = 1024;
    if map.capacity() > FLOOR && map.capacity() > 4 * map.len() {
        map.shrink_to((2 * map.len()).max(FLOOR));
    }
}

/// Live first, then by PID, protocol, local and remote address, and when
/// first seen: the order of the tuple `(!live, pid, protocol, local,
/// remote, first_seen)`, compared field by field with IPv4 addresses as
/// numbers (ten thousand connections are sorted per snapshot).
fn conn_order(a: &Connection, b: &Connection) -> std::cmp::Ordering {
    b.live
        .cmp(&a.live)
        .then_with(|| a.pid.cmp(&b.pid))
        .then_with(|| a.protocol.cmp(&b.protocol))
        .then_with(|| addr_order(&a.local, &b.local))
        .then_with(|| match (&a.remote, &b.remote) {
            (Some(x), Some(y)) => addr_order(x, y),
            (x, y) => x.cmp(y),
        })
        .then_with(|| a.first_seen.cmp(&b.first_seen))
}

/// Sorts by [`conn_order`]. A long list of IPv4 connections (the usual
/// case) is sorted by a key packed into integers, computed once per
/// connection: comparing and moving those costs less than comparing and
/// moving the connections themselves.
fn sort_connections(conns: &mut [Connection]) {
    let v4 = |a: &SocketAddr| a.is_ipv4();
    if conns.len() >= 64
        && conns
            .iter()
            .all(|c| v4(&c.local) && c.remote.as_ref().is_none_or(v4))
    {
        conns.sort_by_cached_key(v4_order_key);
    } else {
        conns.sort_unstable_by(conn_order);
    }
}

/// [`conn_order`] as integers, for connections whose addresses are all
/// IPv4: live first, PID (`None` first), protocol, local address and port;
/// then the remote (`None` first), then the time first seen.
fn v4_order_key(c: &Connection) -> (u128, u64, SystemTime) {
    fn v4(a: &SocketAddr) -> u64 {
        match a {
            SocketAddr::V4(a) => (u64::from(a.ip().to_bits()) << 16) | u64::from(a.port()),
            SocketAddr::V6(_) => 0,
        }
    }
    let first = (u128::from(!c.live) << 100)
        | (u128::from(c.pid.map_or(0, |p| u64::from(p) + 1)) << 64)
        | (u128::from(c.protocol as u8) << 56)
        | u128::from(v4(&c.local));
    let second = c.remote.map_or(0, |r| (1 << 48) | v4(&r));
    (first, second, c.first_seen)
}

/// `SocketAddr`'s own order, with IPv4 addresses compared as numbers.
fn addr_order(a: &SocketAddr, b: &SocketAddr) -> std::cmp::Ordering {
    match (a, b) {
        (SocketAddr::V4(x), SocketAddr::V4(y)) => {
            (x.ip().to_bits(), x.port()).cmp(&(y.ip().to_bits(), y.port()))
        }
        _ => a.cmp(b),
    }
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

#[cfg(test)]
mod order_tests {
    use super::*;

    /// The tuple order `conn_order` stands for.
    fn tuple_order(a: &Connection, b: &Connection) -> std::cmp::Ordering {
        (!a.live, a.pid, a.protocol, a.local, a.remote, a.first_seen).cmp(&(
            !b.live,
            b.pid,
            b.protocol,
            b.local,
            b.remote,
            b.first_seen,
        ))
    }

    #[test]
    fn connection_order_is_the_tuple_order() {
        let addrs = [
            "127.0.0.1:80",
            "127.0.0.1:81",
            "127.0.0.2:1",
            "10.0.0.1:65535",
            "255.255.255.255:0",
            "[::1]:80",
            "[::]:0",
            "[fe80::1%3]:22",
            "[::ffff:127.0.0.1]:80",
        ];
        let addrs: Vec<SocketAddr> = addrs.iter().map(|a| a.parse().unwrap()).collect();
        let t0 = SystemTime::UNIX_EPOCH;
        let mut conns = Vec::new();
        for (i, local) in addrs.iter().enumerate() {
            for (j, remote) in addrs.iter().map(Some).chain([None]).enumerate() {
                for k in 0..4u32 {
                    conns.push(Connection {
                        pid: (k != 0).then_some(k % 2 + (i as u32 % 2)),
                        protocol: if (i + j) % 2 == 0 {
                            Protocol::Tcp
                        } else {
                            Protocol::Udp
                        },
                        local: *local,
                        remote: remote.copied(),
                        state: SockState::Established,
                        first_seen: t0 + Duration::from_millis(u64::from(k) * 7 % 3),
                        last_seen: t0,
                        live: !(i + j + k as usize).is_multiple_of(3),
                        uid: None,
                        remote_name: None,
                        bytes_sent: None,
                        bytes_received: None,
                    });
                }
            }
        }
        for a in &conns {
            for b in &conns {
                assert_eq!(conn_order(a, b), tuple_order(a, b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn ipv4_connections_sort_by_key_in_the_tuple_order() {
        let t0 = SystemTime::UNIX_EPOCH;
        let protocols = [Protocol::Tcp, Protocol::Udp, Protocol::Icmp, Protocol::Raw];
        // A fixed pseudo-random mix: ties broken only by the last fields.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        let mut conns: Vec<Connection> = (0..2000)
            .map(|_| {
                let ip = |n: u64| {
                    std::net::Ipv4Addr::from_bits([0, 1, 0x7f00_0001, u32::MAX][n as usize])
                };
                let local = SocketAddr::from((ip(next(4)), next(3) as u16 * 30000));
                let remote =
                    (next(3) != 0).then(|| SocketAddr::from((ip(next(4)), next(3) as u16 * 30000)));
                Connection {
                    pid: [None, Some(0), Some(7), Some(u32::MAX)][next(4) as usize],
                    protocol: protocols[next(4) as usize],
                    local,
                    remote,
                    state: SockState::Established,
                    first_seen: t0 + Duration::from_secs(next(3)),
                    last_seen: t0,
                    live: next(2) == 0,
                    uid: None,
                    remote_name: None,
                    bytes_sent: None,
                    bytes_received: None,
                }
            })
            .collect();
        let mut want = conns.clone();
        want.sort_by(tuple_order);
        sort_connections(&mut conns);
        let keys = |v: &[Connection]| -> Vec<_> {
            v.iter()
                .map(|c| (c.live, c.pid, c.protocol, c.local, c.remote, c.first_seen))
                .collect()
        };
        assert_eq!(keys(&conns), keys(&want));
    }
}
