//! How often kizuki may speak up: once per program, kind and executable
//! version; at most a few notifications a minute, the rest gathered into
//! one "N more programs need attention". Pure, with an injected clock.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::Alert;
use super::told::{ToldLedger, told_id};
use crate::clock::Clock;
use crate::model::{FindingKind, ProgramKey};

/// At most this many notifications per [`WINDOW`].
pub const PER_WINDOW: usize = 3;
pub const WINDOW: Duration = Duration::from_secs(60);

/// What to show now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// One program, with what was noticed.
    One(Alert),
    /// Several held-back alerts at once: this many programs.
    Batch { programs: usize },
}

pub struct RateLimiter {
    clock: Arc<dyn Clock>,
    per_window: usize,
    window: Duration,
    /// When the notifications of the current window went out.
    sent: VecDeque<SystemTime>,
    /// Program and kind already told (or silenced), with the executable's
    /// hash at the time.
    seen: HashMap<(ProgramKey, FindingKind), Option<String>>,
    /// Alerts waiting for a free slot, oldest first.
    held: Vec<Alert>,
    /// What earlier runs told.
    ledger: ToldLedger,
}

impl RateLimiter {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_limit(clock, PER_WINDOW, WINDOW)
    }

    pub fn with_limit(clock: Arc<dyn Clock>, per_window: usize, window: Duration) -> Self {
        RateLimiter {
            clock,
            per_window: per_window.max(1),
            window,
            sent: VecDeque::new(),
            seen: HashMap::new(),
            held: Vec::new(),
            ledger: ToldLedger::in_memory(),
        }
    }

    /// Remembers across restarts through `ledger`.
    pub fn with_ledger(mut self, ledger: ToldLedger) -> Self {
        self.ledger = ledger;
        self
    }

    /// Writes what was told since the last save.
    pub fn save_ledger(&mut self) -> std::io::Result<()> {
        self.ledger.save(self.clock.now())
    }

    /// Whether an earlier run (or this one) recorded `id` in the ledger,
    /// for one-off notifications such as the quiet period's summary.
    pub fn told_once(&self, id: &str) -> bool {
        self.ledger.get(id, self.clock.now()).is_some()
    }

    /// Records a one-off notification `id` as told.
    pub fn record_once(&mut self, id: &str) {
        let now = self.clock.now();
        self.ledger.record(id.to_string(), None, now);
    }

    /// Takes in an alert; returns what to show now, if anything. An alert
    /// whose kinds were all told before is dropped.
    pub fn offer(&mut self, alert: Alert) -> Option<Outgoing> {
        if !self.remember(&alert) {
            return None;
        }
        if let Some(h) = self.held.iter_mut().find(|h| h.key == alert.key) {
            // Still waiting: the newer words replace the older ones.
            *h = alert;
        } else {
            self.held.push(alert);
        }
        self.poll()
    }

    /// Marks the alert as told without showing it (muted or turned off),
    /// so it does not come back later.
    pub fn silence(&mut self, alert: &Alert) {
        self.remember(alert);
    }

    /// Drops what is waiting (the user muted notifications).
    pub fn clear_held(&mut self) {
        self.held.clear();
    }

    /// Releases what is waiting once a slot is free: one alert as itself,
    /// several as one batch.
    pub fn poll(&mut self) -> Option<Outgoing> {
        if self.held.is_empty() || !self.slot_free() {
            return None;
        }
        self.sent.push_back(self.clock.now());
        Some(if self.held.len() == 1 {
            Outgoing::One(self.held.remove(0))
        } else {
            let programs = self.held.len();
            self.held.clear();
            Outgoing::Batch { programs }
        })
    }

    /// Number of alerts waiting.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Adds the alert's kinds to what was told; true if any was new. A
    /// hash learnt later (hashing is lazy) is not a new version; another
    /// hash than the one told is.
    fn remember(&mut self, alert: &Alert) -> bool {
        let mut new = false;
        let now = self.clock.now();
        for kind in &alert.kinds {
            let id = told_id(&alert.key, *kind);
            match self.seen.get_mut(&(alert.key.clone(), *kind)) {
                None => {
                    // Told in an earlier run: news only if the file changed.
                    let before = self.ledger.get(&id, now).map(|e| e.sha256.clone());
                    let news = match (&before, &alert.version) {
                        (None, _) => true,
                        (Some(Some(a)), Some(b)) => a != b,
                        _ => false,
                    };
                    let version = alert.version.clone().or(before.flatten());
                    if news {
                        self.ledger.record(id, version.clone(), now);
                    } else if let Some(v) = &alert.version {
                        // Seen again: the time told stays, so reminders come.
                        self.ledger.learn_hash(&id, v);
                    }
                    self.seen.insert((alert.key.clone(), *kind), version);
                    new |= news;
                }
                Some(told) => match (told.as_ref(), alert.version.as_ref()) {
                    (Some(a), Some(b)) if a != b => {
                        *told = alert.version.clone();
                        self.ledger.record(id, told.clone(), now);
                        new = true;
                    }
                    (None, Some(v)) => {
                        self.ledger.learn_hash(&id, v);
                        *told = alert.version.clone();
                    }
                    _ => {}
                },
            }
        }
        new
    }

    fn slot_free(&mut self) -> bool {
        let now = self.clock.now();
        let window = self.window;
        // A clock set back also frees the slots it would otherwise hold forever.
        self.sent.retain(|t| {
            now.duration_since(*t)
                .map(|age| age < window)
                .unwrap_or(false)
        });
        self.sent.len() < self.per_window
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::notify::Headline;
    use crate::notify::told::FORGET_AFTER;

    fn alert(name: &str, kind: FindingKind) -> Alert {
        Alert {
            key: ProgramKey::Exe(format!("/tmp/{name}").into()),
            name: name.into(),
            kinds: vec![kind],
            headline: Headline::NewProgram,
            detail: String::new(),
            version: Some("ab".repeat(32)),
        }
    }

    fn limiter() -> (Arc<FakeClock>, RateLimiter) {
        let clock = Arc::new(FakeClock::at_noon());
        (clock.clone(), RateLimiter::new(clock))
    }

    #[test]
    fn one_notification_per_program_and_kind() {
        let (_, mut l) = limiter();
        let a = alert("freetool", FindingKind::NewProgram);
        assert_eq!(l.offer(a.clone()), Some(Outgoing::One(a.clone())));
        assert_eq!(l.offer(a.clone()), None, "the same thing twice is not news");
        let mut other_kind = a.clone();
        other_kind.kinds = vec![FindingKind::Tor];
        assert!(l.offer(other_kind).is_some(), "a new kind is news");
    }

    #[test]
    fn a_hash_learnt_later_is_not_news() {
        let (_, mut l) = limiter();
        let mut a = alert("freetool", FindingKind::NewProgram);
        a.version = None;
        assert!(l.offer(a.clone()).is_some());
        a.version = Some("ab".repeat(32));
        assert_eq!(l.offer(a), None);
    }

    #[test]
    fn what_an_earlier_run_told_is_not_told_again_unless_the_file_changed() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FakeClock::at_noon());
        let a = alert("freetool", FindingKind::Tor);
        let (ledger, _) = ToldLedger::load(Some(dir.path()), clock.now());
        let mut first_run = RateLimiter::new(clock.clone()).with_ledger(ledger);
        assert!(first_run.offer(a.clone()).is_some());
        first_run.save_ledger().unwrap();

        // The next login: the same program with the same finding is quiet.
        clock.advance(Duration::from_secs(8 * 3600));
        let (ledger, _) = ToldLedger::load(Some(dir.path()), clock.now());
        let mut next_run = RateLimiter::new(clock.clone()).with_ledger(ledger);
        assert_eq!(next_run.offer(a.clone()), None);
        next_run.save_ledger().unwrap();

        // Seeing it again at each login does not put the reminder off: a
        // month after it was told, it is told again.
        clock.advance(FORGET_AFTER - Duration::from_secs(8 * 3600));
        let (ledger, _) = ToldLedger::load(Some(dir.path()), clock.now());
        let mut month_later = RateLimiter::new(clock.clone()).with_ledger(ledger);
        assert!(
            month_later.offer(a.clone()).is_some(),
            "a reminder after 30 days"
        );
        let mut new_kind = a.clone();
        new_kind.kinds = vec![FindingKind::Listening];
        assert!(next_run.offer(new_kind).is_some(), "a new kind is news");
        let mut updated = a.clone();
        updated.version = Some("cd".repeat(32));
        assert!(next_run.offer(updated).is_some(), "a changed file is news");

        // Without a ledger (no data folder) every run starts afresh.
        let mut forgetful = RateLimiter::new(clock.clone());
        assert!(forgetful.offer(a).is_some());
    }

    #[test]
    fn a_changed_executable_is_told_again() {
        let (_, mut l) = limiter();
        let a = alert("freetool", FindingKind::NewProgram);
        l.offer(a.clone());
        let mut changed = a;
        changed.version = Some("cd".repeat(32));
        assert!(l.offer(changed).is_some());
    }

    #[test]
    fn three_a_minute_and_the_rest_batched() {
        let (clock, mut l) = limiter();
        let mut shown = 0;
        for i in 0..7 {
            if let Some(o) = l.offer(alert(&format!("p{i}"), FindingKind::NewProgram)) {
                assert!(matches!(o, Outgoing::One(_)));
                shown += 1;
            }
        }
        assert_eq!(shown, 3);
        assert_eq!(l.held(), 4);
        clock.advance(Duration::from_secs(59));
        assert_eq!(l.poll(), None, "still inside the minute");
        clock.advance(Duration::from_secs(1));
        assert_eq!(l.poll(), Some(Outgoing::Batch { programs: 4 }));
        assert_eq!(l.held(), 0);
        assert_eq!(l.poll(), None);
    }

    #[test]
    fn a_single_waiting_alert_comes_out_as_itself() {
        let (clock, mut l) = limiter();
        for i in 0..3 {
            l.offer(alert(&format!("p{i}"), FindingKind::NewProgram));
        }
        let late = alert("late", FindingKind::BlockedRunning);
        assert_eq!(l.offer(late.clone()), None);
        clock.advance(WINDOW);
        assert_eq!(l.poll(), Some(Outgoing::One(late)));
    }

    #[test]
    fn the_batch_takes_a_slot_too() {
        let (clock, mut l) = limiter();
        for i in 0..5 {
            l.offer(alert(&format!("p{i}"), FindingKind::NewProgram));
        }
        clock.advance(Duration::from_secs(61));
        assert_eq!(l.poll(), Some(Outgoing::Batch { programs: 2 }));
        // Two slots left in this minute: the next two go out at once.
        assert!(l.offer(alert("q1", FindingKind::NewProgram)).is_some());
        assert!(l.offer(alert("q2", FindingKind::NewProgram)).is_some());
        assert_eq!(l.offer(alert("q3", FindingKind::NewProgram)), None);
    }

    #[test]
    fn silenced_alerts_do_not_come_back() {
        let (_, mut l) = limiter();
        let a = alert("freetool", FindingKind::NewProgram);
        l.silence(&a);
        assert_eq!(l.offer(a), None);
    }

    #[test]
    fn a_clock_set_back_does_not_block_forever() {
        let (clock, mut l) = limiter();
        for i in 0..3 {
            l.offer(alert(&format!("p{i}"), FindingKind::NewProgram));
        }
        clock.set(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000));
        assert!(l.offer(alert("after", FindingKind::NewProgram)).is_some());
    }
}
