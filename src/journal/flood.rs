//! Flood aggregation: when one program opens sessions faster than
//! [`FloodGate::limit`] per window, the rest of that window's sessions are
//! not written one by one but counted per program, user, protocol and
//! remote address (first and last time, bytes when known) in one
//! "aggregate" record. Nothing is dropped: every session is either its own
//! record or counted in one.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use super::entry::{Aggregate, Entry, ProgramRef};
use crate::model::{Connection, Protocol};

/// Sessions of one program per second written one by one (the guard's
/// setting): a busy browser stays under it, a flood does not.
pub const DEFAULT_LIMIT: u32 = 64;
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(1);
/// Most counted sessions remembered until they end; past it their ends
/// are written as ordinary "closed" records (more records, no loss).
const MAX_COUNTED_OPEN: usize = 200_000;

type Who = (Option<ProgramRef>, Option<u32>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BucketKey {
    program: Option<ProgramRef>,
    uid: Option<u32>,
    protocol: Protocol,
    remote: Option<IpAddr>,
}

/// One session, as the tracker identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SessionId {
    pid: Option<u32>,
    protocol: Protocol,
    local: SocketAddr,
    remote: Option<SocketAddr>,
    first_seen: SystemTime,
}

impl SessionId {
    fn of(c: &Connection) -> SessionId {
        SessionId {
            pid: c.pid,
            protocol: c.protocol,
            local: c.local,
            remote: c.remote,
            first_seen: c.first_seen,
        }
    }
}

/// Decides per session whether it is written or counted (see the module).
#[derive(Debug)]
pub struct FloodGate {
    limit: u32,
    window: Duration,
    window_end: Option<SystemTime>,
    counts: HashMap<Who, u32>,
    buckets: HashMap<BucketKey, Aggregate>,
    /// Counted sessions still open, each kept as a 64-bit digest of its
    /// [`SessionId`] (8 bytes instead of ~100: a guard started under
    /// 10,000 connections counts most of them). Two sessions sharing a
    /// digest (about one chance in 10^9 at the cap) would only swap
    /// which of their ends is written on its own and which is counted.
    counted_open: HashSet<u64, foldhash::fast::RandomState>,
    ids: foldhash::quality::RandomState,
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    }
}

impl FloodGate {
    pub fn new(limit: u32, window: Duration) -> FloodGate {
        FloodGate {
            limit,
            window,
            window_end: None,
            counts: HashMap::new(),
            buckets: HashMap::new(),
            counted_open: HashSet::default(),
            ids: foldhash::quality::RandomState::default(),
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Called first in every tick: when the window has ended, its
    /// aggregate records (oldest first) and a new window.
    pub fn roll(&mut self, now: SystemTime) -> Vec<Entry> {
        match self.window_end {
            Some(end) if now < end => Vec::new(),
            _ => {
                self.window_end = Some(now + self.window);
                self.counts.clear();
                self.drain()
            }
        }
    }

    /// Everything counted so far, as records (at stop).
    pub fn drain(&mut self) -> Vec<Entry> {
        let mut v: Vec<Aggregate> = self.buckets.drain().map(|(_, a)| a).collect();
        v.sort_by(|a, b| (a.first, &a.program, a.remote).cmp(&(b.first, &b.program, b.remote)));
        v.into_iter()
            .map(|a| Entry::Aggregate(Box::new(a)))
            .collect()
    }

    fn bucket(&mut self, program: &Option<ProgramRef>, c: &Connection) -> &mut Aggregate {
        let key = BucketKey {
            program: program.clone(),
            uid: c.uid,
            protocol: c.protocol,
            remote: c.remote.map(|r| r.ip()),
        };
        self.buckets.entry(key).or_insert_with(|| Aggregate {
            program: program.clone(),
            uid: c.uid,
            protocol: c.protocol,
            remote: c.remote.map(|r| r.ip()),
            opened: 0,
            closed: 0,
            first: c.first_seen,
            last: c.first_seen,
            bytes_sent: None,
            bytes_received: None,
        })
    }

    /// A session began: `true` when it is to be written on its own,
    /// `false` when it was counted.
    pub fn opened(&mut self, program: &Option<ProgramRef>, c: &Connection) -> bool {
        let n = self.counts.entry((program.clone(), c.uid)).or_default();
        *n = n.saturating_add(1);
        if *n <= self.limit {
            return true;
        }
        if self.counted_open.len() >= MAX_COUNTED_OPEN {
            // Their ends will be written as "closed" records instead.
            self.counted_open.clear();
        }
        self.counted_open.insert(self.id(c));
        let b = self.bucket(program, c);
        b.opened += 1;
        b.first = b.first.min(c.first_seen);
        b.last = b.last.max(c.last_seen);
        false
    }

    fn id(&self, c: &Connection) -> u64 {
        use std::hash::BuildHasher;
        self.ids.hash_one(SessionId::of(c))
    }

    /// A session ended: `true` when its end is to be written on its own,
    /// `false` when the session was counted (its end and bytes are added
    /// to the window's count).
    pub fn closed(&mut self, program: &Option<ProgramRef>, c: &Connection) -> bool {
        if !self.counted_open.remove(&self.id(c)) {
            return true;
        }
        let b = self.bucket(program, c);
        b.closed += 1;
        b.first = b.first.min(c.first_seen);
        b.last = b.last.max(c.last_seen);
        b.bytes_sent = add(b.bytes_sent, c.bytes_sent);
        b.bytes_received = add(b.bytes_received, c.bytes_received);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, FakeClock};
    use crate::model::SockState;

    fn conn(port: u16, at: SystemTime) -> Connection {
        Connection {
            pid: Some(100),
            protocol: Protocol::Tcp,
            local: format!("10.0.0.2:{port}").parse().unwrap(),
            remote: Some("203.0.113.7:443".parse().unwrap()),
            state: SockState::Established,
            first_seen: at,
            last_seen: at,
            live: true,
            uid: Some(1000),
            remote_name: None,
            bytes_sent: Some(10),
            bytes_received: Some(20),
        }
    }

    fn curl() -> Option<ProgramRef> {
        Some(ProgramRef {
            exe: Some("/usr/bin/curl".into()),
            name: "curl".into(),
            sha256: None,
        })
    }

    #[test]
    fn past_the_limit_sessions_are_counted_and_nothing_is_lost() {
        let clock = FakeClock::at_noon();
        let mut g = FloodGate::new(5, Duration::from_secs(1));
        assert!(g.roll(clock.now()).is_empty());
        let conns: Vec<Connection> = (0..1000).map(|i| conn(40000 + i, clock.now())).collect();
        let written = conns.iter().filter(|c| g.opened(&curl(), c)).count();
        assert_eq!(written, 5, "the first five are written one by one");
        clock.advance(Duration::from_millis(500));
        let mut ended = conns.clone();
        for c in &mut ended {
            c.last_seen = clock.now();
        }
        let closed_written = ended.iter().filter(|c| g.closed(&curl(), c)).count();
        assert_eq!(closed_written, 5, "only the written ones end on their own");
        assert!(g.roll(clock.now()).is_empty(), "the window is still open");
        clock.advance(Duration::from_millis(500));
        let out = g.roll(clock.now());
        assert_eq!(out.len(), 1);
        let Entry::Aggregate(a) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!((a.opened, a.closed), (995, 995));
        assert_eq!(a.bytes_sent, Some(9950));
        assert_eq!(a.bytes_received, Some(19_900));
        assert_eq!(a.uid, Some(1000));
        assert_eq!(a.remote, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(a.last, clock.now() - Duration::from_millis(500));
        // A new window: the program may write five again.
        assert!(g.opened(&curl(), &conn(1, clock.now())));
    }

    #[test]
    fn each_user_and_program_has_its_own_limit() {
        let clock = FakeClock::at_noon();
        let mut g = FloodGate::new(1, Duration::from_secs(1));
        g.roll(clock.now());
        let a = conn(1, clock.now());
        let mut b = conn(2, clock.now());
        b.uid = Some(1001);
        assert!(g.opened(&curl(), &a));
        assert!(
            g.opened(&curl(), &b),
            "another user's curl is not the flood"
        );
        assert!(g.opened(&None, &conn(3, clock.now())));
        assert!(!g.opened(&curl(), &conn(4, clock.now())));
        assert_eq!(g.drain().len(), 1);
    }
}
