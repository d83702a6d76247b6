//! Whether anything happened on the network since the guard last sampled,
//! told cheaply: the kernel's packet and socket counters of the guard's
//! network namespace (`/proc/net/snmp`, `snmp6`, `sockstat`, `sockstat6`),
//! and the number of events the eBPF capture read (every connect, close,
//! exec and exit, in every namespace).
//!
//! With capture in force a quiet second needs no sample: nothing it would
//! show changed, and nothing that happens between two samples is missed
//! (capture keeps it). The guard still samples at least every
//! [`QUIET_MAX`], for what no counter announces (a process renaming
//! itself, a deleted program file).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The longest the guard goes without a sample while nothing happens.
pub const QUIET_MAX: Duration = Duration::from_secs(5);

const COUNTERS: [&str; 4] = [
    "/proc/net/snmp",
    "/proc/net/snmp6",
    "/proc/net/sockstat",
    "/proc/net/sockstat6",
];

/// Reads the counters' text (replaced in tests).
type Reader = Box<dyn FnMut() -> Vec<u8> + Send>;

/// The counters as last read, and when the guard last sampled.
pub struct Activity {
    events: Arc<AtomicU64>,
    events_seen: u64,
    read: Reader,
    counters: Vec<u8>,
    last_sample: Option<Instant>,
}

fn read_counters() -> Vec<u8> {
    let mut out = Vec::new();
    for file in COUNTERS {
        if let Ok(bytes) = std::fs::read(file) {
            out.extend_from_slice(&bytes);
        }
    }
    out
}

impl Activity {
    /// `events`: the capture's count of events read so far.
    pub fn new(events: Arc<AtomicU64>) -> Self {
        Self::with_reader(events, Box::new(read_counters))
    }

    fn with_reader(events: Arc<AtomicU64>, read: Reader) -> Self {
        Activity {
            events,
            events_seen: 0,
            read,
            counters: Vec::new(),
            last_sample: None,
        }
    }

    /// True when a sample is due at `now`: the first one, capture read an
    /// event, a packet moved or a socket was made or closed, or
    /// [`QUIET_MAX`] passed. Reads the counters (a few small files).
    pub fn due(&mut self, now: Instant) -> bool {
        let events = self.events.load(Ordering::Relaxed);
        let counters = (self.read)();
        let due = self
            .last_sample
            .is_none_or(|t| now.saturating_duration_since(t) >= QUIET_MAX)
            || events != self.events_seen
            || counters != self.counters
            // Unreadable counters: nothing tells a quiet second.
            || counters.is_empty();
        self.events_seen = events;
        self.counters = counters;
        if due {
            self.last_sample = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn a_quiet_second_is_skipped_and_an_event_a_packet_or_the_longest_gap_samples() {
        let events = Arc::new(AtomicU64::new(0));
        let text = Arc::new(Mutex::new(b"Tcp: 1 2 3".to_vec()));
        let t = text.clone();
        let mut a =
            Activity::with_reader(events.clone(), Box::new(move || t.lock().unwrap().clone()));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(a.due(at(0)), "the first sample");
        assert!(!a.due(at(1)), "nothing happened");
        events.fetch_add(3, Ordering::Relaxed);
        assert!(a.due(at(2)), "capture read events");
        assert!(!a.due(at(3)));
        *text.lock().unwrap() = b"Tcp: 1 2 4".to_vec();
        assert!(a.due(at(4)), "a packet moved");
        assert!(!a.due(at(5)));
        assert!(a.due(at(4) + QUIET_MAX), "the longest gap passed");
        *text.lock().unwrap() = Vec::new();
        assert!(a.due(at(10)), "no counters: every second");
        assert!(a.due(at(11)));
    }
}
