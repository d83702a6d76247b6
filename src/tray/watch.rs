//! The background thread (`kizuki-background`): for each new snapshot it
//! works out the tray's state and the notifications to send, so nothing of
//! this needs the window, which sleeps while hidden. [`Watch`] is the pure
//! part, driven by an injected clock in tests. For the first hours after
//! the baseline is created only high findings are notified, then one
//! summary ([`crate::notify::quiet`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::SystemTime;

use super::TrayState;
use super::model::clock_text;
use crate::analysis::baseline::Baseline;
use crate::clock::Clock;
use crate::i18n::Lang;
use crate::model::{FindingKind, ProgramKey, Snapshot};
use crate::monitor::SnapshotReceiver;
use crate::notify::quiet::{self, Phase, Quiet};
use crate::notify::told::ToldLedger;
use crate::notify::{self, Outgoing, RateLimiter, Rendered};

/// What the window tells the background thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// The monitor published a snapshot.
    Snapshot,
    SetPanic(bool),
    /// The guard's state as read back: whether one runs, the panic, and
    /// the programs it really blocks.
    SetGuard {
        available: bool,
        panic: bool,
        blocked: Vec<std::path::PathBuf>,
    },
    /// Mute notifications until then (`None`: unmute).
    Mute(Option<SystemTime>),
    SetNotifications(bool),
    SetLang(Lang),
    Stop,
}

/// Snapshot in, tray state and notifications out.
pub struct Watch {
    clock: Arc<dyn Clock>,
    offset: time::UtcOffset,
    base: TrayState,
    muted_until: Option<SystemTime>,
    limiter: RateLimiter,
    generation: u64,
    /// Findings raised in the last snapshot seen, to catch up when the
    /// thread missed one (the channel keeps only the newest).
    raised: HashSet<(ProgramKey, FindingKind)>,
    last: Option<Arc<Snapshot>>,
    /// The learning period (`None`: no data folder, so no baseline kept
    /// across runs and nothing to learn quietly).
    quiet: Option<Quiet>,
    /// Where the baseline is saved, to count what it learnt.
    data_dir: Option<PathBuf>,
}

impl Watch {
    pub fn new(clock: Arc<dyn Clock>, offset: time::UtcOffset, base: TrayState) -> Self {
        Watch {
            limiter: RateLimiter::new(clock.clone()),
            clock,
            offset,
            base,
            muted_until: None,
            generation: 0,
            raised: HashSet::new(),
            last: None,
            quiet: None,
            data_dir: None,
        }
    }

    /// Remembers what was told across restarts through `ledger`, and keeps
    /// the quiet first hours of the baseline saved beside it.
    pub fn with_ledger(mut self, ledger: ToldLedger) -> Self {
        let now = self.clock.now();
        self.data_dir = ledger.data_dir().map(Path::to_path_buf);
        self.limiter = RateLimiter::new(self.clock.clone()).with_ledger(ledger);
        self.quiet = self.data_dir.as_deref().map(|dir| Quiet {
            // No baseline saved yet: it is being created by this first run.
            since: Baseline::peek(dir, now)
                .and_then(|b| b.created_at())
                .unwrap_or(now),
            summary_sent: self.limiter.told_once(quiet::SUMMARY_ID),
        });
        self
    }

    /// Writes what was told since the last save (nothing when unchanged).
    pub fn save_ledger(&mut self) -> std::io::Result<()> {
        self.limiter.save_ledger()
    }

    pub fn set_panic(&mut self, on: bool) {
        self.base.panic = on;
    }

    /// The guard's read-back state: the panic, and which programs count
    /// as blocked (running ones make the icon red).
    pub fn set_guard(&mut self, available: bool, panic: bool, blocked: Vec<std::path::PathBuf>) {
        self.base.panic = panic;
        self.base.guard_available = available;
        self.base.blocked = blocked;
    }

    pub fn set_notifications(&mut self, on: bool) {
        self.base.notifications = on;
        if !on {
            self.limiter.clear_held();
        }
    }

    pub fn mute(&mut self, until: Option<SystemTime>) {
        self.muted_until = until;
        if until.is_some() {
            self.limiter.clear_held();
        }
    }

    pub fn set_lang(&mut self, lang: Lang) {
        self.base.lang = lang;
    }

    fn muted(&self) -> bool {
        !self.base.notifications || self.muted_until.is_some_and(|u| self.clock.now() < u)
    }

    /// Takes in a snapshot; returns the notifications to send now.
    pub fn on_snapshot(&mut self, snap: Arc<Snapshot>) -> Vec<Rendered> {
        if snap.generation <= self.generation {
            return self.release();
        }
        let skipped = self.generation > 0 && snap.generation > self.generation + 1;
        let now_raised: HashSet<(ProgramKey, FindingKind)> = snap
            .programs
            .iter()
            .flat_map(|p| p.findings.iter().map(|f| (p.key.clone(), f.kind)))
            .collect();
        let mut raised = snap.newly_raised.clone();
        if skipped {
            // What was raised in the snapshots this thread never saw.
            for pair in now_raised.difference(&self.raised) {
                if !raised.contains(pair) {
                    raised.push(pair.clone());
                }
            }
        }
        self.generation = snap.generation;
        self.raised = now_raised;
        let alerts = notify::alerts(&snap, &raised);
        self.last = Some(snap);
        let mut out = Vec::new();
        let muted = self.muted();
        let now = self.clock.now();
        for a in alerts {
            let learning = self.quiet.is_some_and(|q| q.holds(a.headline, now));
            if muted || learning {
                // Learnt silently: not told now, nor once the period ends.
                self.limiter.silence(&a);
            } else if let Some(o) = self.limiter.offer(a) {
                out.push(self.render(&o));
            }
        }
        out.extend(self.summary());
        out.extend(self.release());
        out
    }

    /// The one summary once the learning period is over: how many programs
    /// the baseline holds and how many of the last snapshot's need a look.
    /// Waits while muted; with notifications turned off it is dropped.
    fn summary(&mut self) -> Option<Rendered> {
        let q = self.quiet.as_mut()?;
        if q.phase(self.clock.now()) != Phase::SummaryDue {
            return None;
        }
        if self.muted_until.is_some_and(|u| self.clock.now() < u) {
            return None;
        }
        q.summary_sent = true;
        self.limiter.record_once(quiet::SUMMARY_ID);
        if !self.base.notifications {
            return None;
        }
        let snap = self.last.as_deref()?;
        let learnt = self
            .data_dir
            .as_deref()
            .and_then(|dir| Baseline::peek(dir, self.clock.now()))
            .map(|b| b.len())
            // The saved baseline cannot be read: the programs seen now.
            .unwrap_or(snap.programs.len());
        Some(quiet::summary(
            learnt,
            quiet::attention(snap),
            self.base.lang,
        ))
    }

    /// Held-back notifications whose time has come.
    pub fn release(&mut self) -> Vec<Rendered> {
        if self.muted() {
            self.limiter.clear_held();
            return Vec::new();
        }
        self.limiter
            .poll()
            .map(|o| vec![self.render(&o)])
            .unwrap_or_default()
    }

    fn render(&self, o: &Outgoing) -> Rendered {
        notify::render(o, self.base.lang)
    }

    /// What the tray should show now.
    pub fn tray_state(&self) -> TrayState {
        let mut st = match &self.last {
            Some(s) => self.base.with_snapshot(s),
            None => self.base.clone(),
        };
        st.muted_until = self
            .muted_until
            .filter(|u| self.clock.now() < *u)
            .map(|u| clock_text(u, self.offset));
        st
    }
}

/// Where the background thread sends its results.
pub trait Outlet: Send {
    fn tray(&mut self, state: TrayState);
    fn notify(&mut self, n: Rendered);
}

/// The running background thread.
pub struct Background {
    tx: Sender<Control>,
    join: Option<JoinHandle<()>>,
}

impl Background {
    /// A channel for [`Control`]s; create it first so the monitor's publish
    /// hook can hold the sender.
    pub fn channel() -> (Sender<Control>, Receiver<Control>) {
        mpsc::channel()
    }

    pub fn spawn(
        mut watch: Watch,
        snapshots: SnapshotReceiver,
        tx: Sender<Control>,
        rx: Receiver<Control>,
        mut outlet: Box<dyn Outlet>,
    ) -> std::io::Result<Background> {
        let join = std::thread::Builder::new()
            .name("kizuki-background".into())
            .spawn(move || {
                let mut shown: Option<TrayState> = None;
                let mut save_failed_said = false;
                while let Ok(msg) = rx.recv() {
                    let sends = match msg {
                        Control::Snapshot => {
                            let sends = watch.on_snapshot(snapshots.latest());
                            if let Err(e) = watch.save_ledger()
                                && !std::mem::replace(&mut save_failed_said, true)
                            {
                                log::warn!(
                                    "{}",
                                    crate::i18n::tr_args(
                                        "notify.told_save_failed",
                                        &[("error", &crate::fsutil::describe_io(&e))]
                                    )
                                );
                            }
                            sends
                        }
                        Control::SetPanic(on) => {
                            watch.set_panic(on);
                            Vec::new()
                        }
                        Control::SetGuard {
                            available,
                            panic,
                            blocked,
                        } => {
                            watch.set_guard(available, panic, blocked);
                            Vec::new()
                        }
                        Control::Mute(until) => {
                            watch.mute(until);
                            Vec::new()
                        }
                        Control::SetNotifications(on) => {
                            watch.set_notifications(on);
                            Vec::new()
                        }
                        Control::SetLang(l) => {
                            watch.set_lang(l);
                            Vec::new()
                        }
                        Control::Stop => break,
                    };
                    for n in sends {
                        outlet.notify(n);
                    }
                    let st = watch.tray_state();
                    if shown.as_ref() != Some(&st) {
                        shown = Some(st.clone());
                        outlet.tray(st);
                    }
                }
            })?;
        Ok(Background {
            tx,
            join: Some(join),
        })
    }

    pub fn send(&self, c: Control) {
        // The thread runs until Stop; a failed send means it already ended.
        let _ = self.tx.send(c);
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.tx.send(Control::Stop);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::model::{Program, Severity};
    use crate::notify::quiet;
    use crate::tray::Level;
    use std::sync::Mutex;
    use std::time::Duration;

    fn program(name: &str, kinds: &[(FindingKind, Severity)]) -> Program {
        Program::fake(name, kinds)
    }

    fn snap(generation: u64, programs: Vec<Program>, fresh: bool) -> Arc<Snapshot> {
        let mut s = Snapshot::empty();
        s.generation = generation;
        if fresh {
            s.newly_raised = programs
                .iter()
                .flat_map(|p| p.findings.iter().map(|f| (p.key.clone(), f.kind)))
                .collect();
        }
        s.programs = programs;
        Arc::new(s)
    }

    fn watch() -> (Arc<FakeClock>, Watch) {
        let clock = Arc::new(FakeClock::at_noon());
        let w = Watch::new(
            clock.clone(),
            time::UtcOffset::UTC,
            TrayState::initial(Lang::En),
        );
        (clock, w)
    }

    const NEW: (FindingKind, Severity) = (FindingKind::NewProgram, Severity::Low);

    #[test]
    fn the_tray_follows_the_guards_read_back_state() {
        let (_, mut w) = watch();
        let mut p = program("freetool", &[]);
        p.processes = vec![crate::model::ProcessInfo::fake(42, "freetool")];
        let exe = p.exe.clone().unwrap();
        w.on_snapshot(snap(1, vec![p], false));
        assert_eq!(w.tray_state().level, Level::Green);
        w.set_guard(true, true, vec![exe]);
        let st = w.tray_state();
        assert_eq!(
            (st.level, st.panic),
            (Level::Red, true),
            "blocked and running"
        );
        w.set_guard(false, false, vec![]);
        let st = w.tray_state();
        assert_eq!((st.level, st.panic), (Level::Green, false));
        assert!(!st.is_enabled(crate::tray::MenuItem::Panic));
    }

    #[test]
    fn a_new_program_notifies_once_and_the_tray_follows() {
        let (_, mut w) = watch();
        let p = program("freetool", &[(FindingKind::BlockedRunning, Severity::High)]);
        let out = w.on_snapshot(snap(1, vec![p.clone()], true));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].target, Some(p.key.clone()));
        assert_eq!(w.tray_state().level, Level::Red);
        assert!(w.on_snapshot(snap(2, vec![p], false)).is_empty());
    }

    #[test]
    fn muted_findings_are_not_told_later() {
        let (clock, mut w) = watch();
        w.mute(Some(clock.now() + Duration::from_secs(3600)));
        assert_eq!(w.tray_state().muted_until.as_deref(), Some("13:00"));
        let p = program("freetool", &[NEW]);
        assert!(w.on_snapshot(snap(1, vec![p.clone()], true)).is_empty());
        clock.advance(Duration::from_secs(3601));
        assert_eq!(w.tray_state().muted_until, None, "the hour is over");
        assert!(w.on_snapshot(snap(2, vec![p], true)).is_empty());
        let q = program("other", &[NEW]);
        assert_eq!(w.on_snapshot(snap(3, vec![q], true)).len(), 1);
    }

    #[test]
    fn notifications_off_sends_nothing() {
        let (_, mut w) = watch();
        w.set_notifications(false);
        assert!(
            w.on_snapshot(snap(1, vec![program("a", &[NEW])], true))
                .is_empty()
        );
        assert!(!w.tray_state().notifications);
    }

    #[test]
    fn a_missed_snapshot_is_caught_up_from_the_findings() {
        let (_, mut w) = watch();
        w.on_snapshot(snap(1, vec![], true));
        // Generation 2 (which raised it) was never seen.
        let out = w.on_snapshot(snap(3, vec![program("a", &[NEW])], false));
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn held_notifications_come_out_as_a_batch_a_minute_later() {
        let (clock, mut w) = watch();
        let programs: Vec<Program> = (0..5).map(|i| program(&format!("p{i}"), &[NEW])).collect();
        assert_eq!(w.on_snapshot(snap(1, programs.clone(), true)).len(), 3);
        clock.advance(Duration::from_secs(60));
        let out = w.on_snapshot(snap(2, programs, false));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].summary, "2 more programs need attention");
        assert_eq!(out[0].target, None);
    }

    /// A watch over the data folder `dir`, as the window starts one.
    fn watch_in(clock: &Arc<FakeClock>, dir: &Path) -> Watch {
        let (ledger, warnings) = ToldLedger::load(Some(dir), clock.now());
        assert!(warnings.is_empty());
        Watch::new(
            clock.clone(),
            time::UtcOffset::UTC,
            TrayState::initial(Lang::En),
        )
        .with_ledger(ledger)
    }

    /// The first run records these programs as the baseline, now.
    fn first_run(clock: &FakeClock, dir: &Path, programs: &[Program]) {
        let (mut b, _) = Baseline::load(Some(dir), clock.now());
        b.observe(programs, clock.now());
        b.save().unwrap();
    }

    const HIGH: (FindingKind, Severity) = (FindingKind::Tor, Severity::High);
    const MEDIUM: (FindingKind, Severity) = (FindingKind::Listening, Severity::Medium);

    #[test]
    fn the_first_hours_learn_new_programs_silently_but_tell_high_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FakeClock::at_noon());
        // No baseline saved yet: this run is creating it.
        let mut w = watch_in(&clock, dir.path());
        let fresh = program("freetool", &[NEW]);
        assert!(w.on_snapshot(snap(1, vec![fresh.clone()], true)).is_empty());
        clock.advance(Duration::from_secs(3 * 3600));
        assert!(
            w.on_snapshot(snap(2, vec![program("later", &[NEW])], true))
                .is_empty()
        );
        let tor = program("relay", &[NEW, HIGH]);
        let out = w.on_snapshot(snap(3, vec![fresh, tor.clone()], true));
        assert_eq!(out.len(), 1, "high is told at once: {out:?}");
        assert_eq!(out[0].summary, "A program shows signs of danger");
        assert_eq!(out[0].target, Some(tor.key));
    }

    #[test]
    fn after_six_hours_one_summary_then_notifications_as_usual() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FakeClock::at_noon());
        let known: Vec<Program> = ["a", "b", "c"].map(|n| program(n, &[])).into();
        first_run(&clock, dir.path(), &known);
        let mut w = watch_in(&clock, dir.path());
        clock.advance(Duration::from_secs(60));
        let listener = program("listener", &[NEW, MEDIUM]);
        let quiet = program("quiet", &[NEW]);
        let now = vec![listener.clone(), quiet.clone()];
        first_run(&clock, dir.path(), &now); // newcomers: not the start
        assert!(w.on_snapshot(snap(1, now.clone(), true)).is_empty());

        clock.advance(quiet::QUIET_FOR - Duration::from_secs(61));
        assert!(w.on_snapshot(snap(2, now.clone(), false)).is_empty());
        clock.advance(Duration::from_secs(1));
        let out = w.on_snapshot(snap(3, now.clone(), false));
        assert_eq!(out.len(), 1, "exactly one summary: {out:?}");
        assert_eq!(out[0].body, "kizuki learnt 5 programs; 1 need a look.");
        assert_eq!(out[0].target, None, "a click opens the window");
        assert!(w.on_snapshot(snap(4, now.clone(), true)).is_empty());

        let next = program("next", &[NEW]);
        let out = w.on_snapshot(snap(5, vec![next.clone()], true));
        assert_eq!(out.len(), 1, "new programs are told again");
        assert_eq!(out[0].target, Some(next.key));
        w.save_ledger().unwrap();

        // The next login: the summary is not repeated, nor what was learnt.
        clock.advance(Duration::from_secs(3600));
        let mut again = watch_in(&clock, dir.path());
        assert!(again.on_snapshot(snap(1, now, true)).is_empty());
    }

    #[test]
    fn a_summary_waits_for_the_end_of_a_mute() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FakeClock::at_noon());
        first_run(&clock, dir.path(), &[program("a", &[]), program("b", &[])]);
        let mut w = watch_in(&clock, dir.path());
        clock.advance(quiet::QUIET_FOR);
        w.mute(Some(clock.now() + Duration::from_secs(600)));
        assert!(w.on_snapshot(snap(1, vec![], false)).is_empty());
        clock.advance(Duration::from_secs(600));
        let out = w.on_snapshot(snap(2, vec![], false));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].body, "kizuki learnt 2 programs; 0 need a look.");
    }

    #[test]
    fn a_baseline_older_than_the_feature_brings_no_summary() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FakeClock::at_noon());
        first_run(&clock, dir.path(), &[program("a", &[])]);
        clock.advance(quiet::SUMMARY_UNTIL);
        let mut w = watch_in(&clock, dir.path());
        let out = w.on_snapshot(snap(1, vec![program("b", &[NEW])], true));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].summary, "A new program is using the network");
    }

    struct Recorder(Arc<Mutex<(Vec<TrayState>, Vec<Rendered>)>>);

    impl Outlet for Recorder {
        fn tray(&mut self, state: TrayState) {
            self.0.lock().unwrap().0.push(state);
        }
        fn notify(&mut self, n: Rendered) {
            self.0.lock().unwrap().1.push(n);
        }
    }

    #[test]
    fn the_thread_pushes_each_change_once() {
        let (_, w) = watch();
        let (sender, receiver) = SnapshotReceiver::new();
        let seen = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let (tx, rx) = Background::channel();
        let bg = Background::spawn(
            w,
            receiver,
            tx.clone(),
            rx,
            Box::new(Recorder(seen.clone())),
        )
        .unwrap();
        let medium = (FindingKind::RunsFromTemp, Severity::Medium);
        sender.publish(snap(1, vec![program("a", &[NEW, medium])], true));
        bg.send(Control::Snapshot);
        bg.send(Control::Snapshot);
        bg.send(Control::SetPanic(true));
        drop(bg); // Stop is handled after everything before it.
        let (states, notes) = &*seen.lock().unwrap();
        assert_eq!(notes.len(), 1);
        let levels: Vec<(Level, bool)> = states.iter().map(|s| (s.level, s.panic)).collect();
        assert_eq!(levels, vec![(Level::Amber, false), (Level::Amber, true)]);
    }
}
