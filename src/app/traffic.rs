//! Bytes per program over time, fed from snapshots: the total since the
//! window first saw the program, the last hour by minute and the last day
//! by ten minutes. Bounded: at most [`MAX_PROGRAMS`] programs, each with
//! two fixed rings ([`HOUR_BUCKETS`] + [`DAY_BUCKETS`] slots).
//!
//! Connections carry cumulative counts (event capture); the history adds
//! what grew since the last snapshot, so a connection that stays open and
//! keeps sending is counted as it sends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::SystemTime;

use crate::model::{CaptureMode, Connection, ProgramKey, Protocol, Snapshot};

/// One-minute slots: the last hour.
pub const HOUR_BUCKETS: usize = 60;
/// Ten-minute slots: the last day.
pub const DAY_BUCKETS: usize = 144;
const MINUTE: u64 = 60;
const TEN_MINUTES: u64 = 600;
/// Programs remembered at most; the one quiet longest goes first.
pub const MAX_PROGRAMS: usize = 256;

/// Bytes sent and received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bytes {
    pub sent: u64,
    pub received: u64,
}

impl Bytes {
    pub fn total(self) -> u64 {
        self.sent.saturating_add(self.received)
    }

    fn add(&mut self, other: Bytes) {
        self.sent = self.sent.saturating_add(other.sent);
        self.received = self.received.saturating_add(other.received);
    }
}

/// A ring of time slots `width` seconds wide; each slot remembers which
/// slot number it holds, so old values are never read as new.
#[derive(Debug, Clone)]
struct Ring {
    width: u64,
    slots: Vec<(u64, Bytes)>,
}

impl Ring {
    fn new(width: u64, len: usize) -> Self {
        Ring {
            width,
            slots: vec![(u64::MAX, Bytes::default()); len],
        }
    }

    fn add(&mut self, secs: u64, b: Bytes) {
        let n = secs / self.width;
        let len = self.slots.len() as u64;
        let slot = &mut self.slots[(n % len) as usize];
        if slot.0 != n {
            *slot = (n, Bytes::default());
        }
        slot.1.add(b);
    }

    /// The slots up to the one holding `secs`, oldest first.
    fn series(&self, secs: u64) -> Vec<Bytes> {
        let now = secs / self.width;
        let len = self.slots.len() as u64;
        (0..len)
            .map(|i| {
                let Some(n) = (now + i + 1).checked_sub(len) else {
                    return Bytes::default();
                };
                let (held, b) = self.slots[(n % len) as usize];
                if held == n { b } else { Bytes::default() }
            })
            .collect()
    }
}

/// One program's bytes.
#[derive(Debug, Clone)]
pub struct ProgramTraffic {
    /// Since the window first saw the program.
    pub total: Bytes,
    hour: Ring,
    day: Ring,
    /// When bytes last grew (seconds since the epoch).
    last_active: u64,
}

impl ProgramTraffic {
    fn new() -> Self {
        ProgramTraffic {
            total: Bytes::default(),
            hour: Ring::new(MINUTE, HOUR_BUCKETS),
            day: Ring::new(TEN_MINUTES, DAY_BUCKETS),
            last_active: 0,
        }
    }
}

/// What identifies one connection session across snapshots.
type ConnId = (
    Option<u32>,
    Protocol,
    SocketAddr,
    Option<SocketAddr>,
    SystemTime,
);

fn conn_id(c: &Connection) -> ConnId {
    (c.pid, c.protocol, c.local, c.remote, c.first_seen)
}

/// Whether a snapshot counted bytes: event capture is in force, or some
/// connection carries counts.
pub fn bytes_known(snap: &Snapshot) -> bool {
    matches!(
        snap.capture_mode,
        CaptureMode::Ebpf | CaptureMode::GuardEbpf
    ) || snap
        .programs
        .iter()
        .flat_map(|p| &p.connections)
        .any(|c| c.bytes_sent.is_some() || c.bytes_received.is_some())
}

/// Every program's bytes, as far as the window has seen them.
#[derive(Debug, Clone, Default)]
pub struct Traffic {
    programs: HashMap<ProgramKey, ProgramTraffic>,
    /// The counts each connection had at the last snapshot.
    seen: HashMap<ConnId, Bytes>,
    /// When the last snapshot was taken (seconds since the epoch).
    now: u64,
}

impl Traffic {
    /// Adds what each connection sent and received since the last snapshot.
    pub fn feed(&mut self, snap: &Snapshot) {
        let now = secs(snap.taken_at);
        self.now = self.now.max(now);
        let mut seen = HashMap::with_capacity(self.seen.len());
        for p in &snap.programs {
            let mut grew = Bytes::default();
            for c in &p.connections {
                if c.bytes_sent.is_none() && c.bytes_received.is_none() {
                    continue;
                }
                let id = conn_id(c);
                let counts = Bytes {
                    sent: c.bytes_sent.unwrap_or(0),
                    received: c.bytes_received.unwrap_or(0),
                };
                let before = self.seen.get(&id).copied().unwrap_or_default();
                grew.add(Bytes {
                    sent: counts.sent.saturating_sub(before.sent),
                    received: counts.received.saturating_sub(before.received),
                });
                seen.insert(id, counts);
            }
            if grew.total() > 0 {
                let t = self
                    .programs
                    .entry(p.key.clone())
                    .or_insert_with(ProgramTraffic::new);
                t.total.add(grew);
                t.hour.add(now, grew);
                t.day.add(now, grew);
                t.last_active = now;
            }
        }
        self.seen = seen;
        while self.programs.len() > MAX_PROGRAMS {
            let Some(quiet) = self
                .programs
                .iter()
                .min_by_key(|(k, t)| (t.last_active, (*k).clone()))
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.programs.remove(&quiet);
        }
    }

    /// Bytes since the window first saw `key` (zero when it never sent).
    pub fn total(&self, key: &ProgramKey) -> Bytes {
        self.programs.get(key).map(|t| t.total).unwrap_or_default()
    }

    /// The last hour by minute, oldest first ([`HOUR_BUCKETS`] values).
    pub fn last_hour(&self, key: &ProgramKey) -> Vec<Bytes> {
        match self.programs.get(key) {
            Some(t) => t.hour.series(self.now),
            None => vec![Bytes::default(); HOUR_BUCKETS],
        }
    }

    /// The last day by ten minutes, oldest first ([`DAY_BUCKETS`] values).
    pub fn last_day(&self, key: &ProgramKey) -> Vec<Bytes> {
        match self.programs.get(key) {
            Some(t) => t.day.series(self.now),
            None => vec![Bytes::default(); DAY_BUCKETS],
        }
    }

    /// Bytes in the last hour.
    pub fn hour_total(&self, key: &ProgramKey) -> Bytes {
        let mut sum = Bytes::default();
        for b in self.last_hour(key) {
            sum.add(b);
        }
        sum
    }

    /// The programs that moved the most bytes in the last hour, most
    /// first (ties by name), at most `n`; programs that moved none are
    /// left out.
    pub fn top(&self, n: usize) -> Vec<(ProgramKey, Bytes)> {
        let mut all: Vec<(ProgramKey, Bytes)> = self
            .programs
            .keys()
            .map(|k| (k.clone(), self.hour_total(k)))
            .filter(|(_, b)| b.total() > 0)
            .collect();
        all.sort_by(|a, b| b.1.total().cmp(&a.1.total()).then_with(|| a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }

    /// Programs remembered (for tests of the bound).
    pub fn len(&self) -> usize {
        self.programs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.programs.is_empty()
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Program, SockState};
    use std::path::PathBuf;
    use std::time::Duration;

    const NOON: u64 = 1_795_608_000;

    fn key(name: &str) -> ProgramKey {
        ProgramKey::Exe(PathBuf::from(format!("/usr/bin/{name}")))
    }

    fn conn(port: u16, sent: Option<u64>, received: Option<u64>) -> Connection {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(NOON);
        Connection {
            pid: Some(1),
            protocol: Protocol::Tcp,
            local: format!("127.0.0.1:{port}").parse().unwrap(),
            remote: Some("127.0.0.1:8000".parse().unwrap()),
            state: SockState::Established,
            first_seen: t,
            last_seen: t,
            live: true,
            uid: None,
            remote_name: None,
            bytes_sent: sent,
            bytes_received: received,
        }
    }

    fn program(name: &str, conns: Vec<Connection>) -> Program {
        Program {
            key: key(name),
            name: name.into(),
            exe: None,
            exe_deleted: false,
            sha256: None,
            processes: vec![],
            connections: conns,
            findings: vec![],
            mark: None,
            stale_mark: None,
            first_seen: SystemTime::UNIX_EPOCH,
        }
    }

    fn snap(at: u64, programs: Vec<Program>) -> Snapshot {
        let mut s = Snapshot::empty();
        s.generation = at;
        s.taken_at = SystemTime::UNIX_EPOCH + Duration::from_secs(at);
        s.capture_mode = CaptureMode::Ebpf;
        s.programs = programs;
        s
    }

    #[test]
    fn an_open_connection_is_counted_as_it_grows_not_twice() {
        let mut t = Traffic::default();
        t.feed(&snap(
            NOON,
            vec![program("a", vec![conn(1, Some(100), Some(10))])],
        ));
        t.feed(&snap(
            NOON + 1,
            vec![program("a", vec![conn(1, Some(150), Some(10))])],
        ));
        // Sent 50 more a minute later.
        t.feed(&snap(
            NOON + 61,
            vec![program("a", vec![conn(1, Some(200), Some(10))])],
        ));
        assert_eq!(
            t.total(&key("a")),
            Bytes {
                sent: 200,
                received: 10
            }
        );
        let hour = t.last_hour(&key("a"));
        assert_eq!(hour.len(), HOUR_BUCKETS);
        assert_eq!(
            hour[HOUR_BUCKETS - 1],
            Bytes {
                sent: 50,
                received: 0
            }
        );
        assert_eq!(
            hour[HOUR_BUCKETS - 2],
            Bytes {
                sent: 150,
                received: 10
            }
        );
        assert_eq!(t.hour_total(&key("a")).total(), 210);
    }

    #[test]
    fn an_hour_later_the_hour_is_empty_but_the_day_and_total_remember() {
        let mut t = Traffic::default();
        t.feed(&snap(
            NOON,
            vec![program("a", vec![conn(1, Some(100), None)])],
        ));
        t.feed(&snap(
            NOON + 3700,
            vec![program("b", vec![conn(2, Some(1), None)])],
        ));
        assert_eq!(t.hour_total(&key("a")).total(), 0);
        assert_eq!(
            t.last_day(&key("a")).iter().map(|b| b.sent).sum::<u64>(),
            100
        );
        assert_eq!(t.total(&key("a")).sent, 100);
        // Top talkers: only what moved in the last hour.
        assert_eq!(
            t.top(10),
            vec![(
                key("b"),
                Bytes {
                    sent: 1,
                    received: 0
                }
            )]
        );
    }

    #[test]
    fn top_talkers_are_ordered_by_the_last_hour() {
        let mut t = Traffic::default();
        t.feed(&snap(
            NOON,
            vec![
                program("small", vec![conn(1, Some(10), Some(10))]),
                program("big", vec![conn(2, Some(5_000), Some(1))]),
                program("mid", vec![conn(3, None, Some(900))]),
                program("none", vec![conn(4, None, None)]),
            ],
        ));
        let order: Vec<ProgramKey> = t.top(10).into_iter().map(|(k, _)| k).collect();
        assert_eq!(order, vec![key("big"), key("mid"), key("small")]);
        assert_eq!(t.top(1).len(), 1);
    }

    #[test]
    fn the_history_is_bounded() {
        let mut t = Traffic::default();
        for i in 0..(MAX_PROGRAMS + 20) {
            t.feed(&snap(
                NOON + i as u64,
                vec![program(
                    &format!("p{i}"),
                    vec![conn(i as u16, Some(1), None)],
                )],
            ));
        }
        assert_eq!(t.len(), MAX_PROGRAMS);
        // The quietest went first; the newest stays.
        assert_eq!(t.total(&key("p0")).total(), 0);
        assert_eq!(t.total(&key(&format!("p{}", MAX_PROGRAMS + 19))).sent, 1);
    }

    #[test]
    fn polling_without_counts_is_not_known() {
        let mut s = snap(NOON, vec![program("a", vec![conn(1, None, None)])]);
        assert!(bytes_known(&s));
        s.capture_mode = CaptureMode::Polling;
        assert!(!bytes_known(&s));
        s.programs[0].connections[0].bytes_sent = Some(0);
        assert!(bytes_known(&s));
    }
}
