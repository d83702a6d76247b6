//! [`AnalysisStage`]: runs every detector on each snapshot, raises a
//! finding once per program and kind, keeps it attached while its
//! condition holds, and lists newly raised ones in
//! [`Snapshot::newly_raised`](crate::model::Snapshot::newly_raised).
//!
//! Conditions are judged on what the snapshot shows, including connections
//! that ended within the monitor's retention window, so `watch` reports
//! every finding of its window and the GUI keeps a finding as long as the
//! evidence behind it is on screen.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::baseline::Baseline;
use super::beacon::ContactTimelines;
use super::places::TempDirs;
use super::process::HostFacts;
use super::{Detected, beacon, blocked, escalate, exe, location, network, process};
use crate::i18n::tr_args;
use crate::model::{FindingKind, Program, ProgramKey, Protocol, Snapshot, SockState};
use crate::monitor::{Stage, TickContext};
use std::net::SocketAddr;

/// Maps hashed for every connection of a sample: a fast hasher, still
/// seeded per process, instead of SipHash over paths.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// One open outgoing connection of a program: PID, local, remote.
type SentKey = (Option<u32>, SocketAddr, SocketAddr);

/// Whether a file exists: the one question analysis asks the disk (is a
/// deleted executable's path empty, or was the file replaced?).
pub trait FileCheck: Send {
    fn exists(&self, path: &Path) -> bool;
}

/// Asks the real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFiles;

impl FileCheck for RealFiles {
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

/// How often a changed baseline is written at most.
const SAVE_EVERY: Duration = Duration::from_secs(10);

/// The findings engine as a monitor stage.
pub struct AnalysisStage {
    temp_dirs: TempDirs,
    baseline: Baseline,
    files: Box<dyn FileCheck>,
    contacts: ContactTimelines,
    /// When each finding that currently holds was raised.
    raised: HashMap<ProgramKey, HashMap<FindingKind, SystemTime>>,
    last_save: Option<SystemTime>,
    save_failed: bool,
    /// Programs that contacted an address beyond this PC this run.
    contacted_outside: HashSet<ProgramKey>,
    /// kizuki's own PID: its own process is never a finding.
    own_pid: u32,
    /// Bytes sent so far on each open outgoing TCP connection (when the
    /// capture counts them): a beacon that keeps one connection open and
    /// polls inside it shows as periodic small sends.
    /// Per program (its key copied once, not once per connection).
    sent: FastMap<ProgramKey, FastMap<SentKey, u64>>,
}

/// What one tick knows beyond the program itself.
struct TickFacts<'a> {
    host: &'a HostFacts,
    tor_socks: &'a HashMap<u16, String>,
}

impl AnalysisStage {
    /// Notes each send on an open outgoing connection as a contact with its
    /// size (keep-alive polling). Connections accepted on a port the
    /// program listens on are a server answering, not contacts.
    fn record_transfers(&mut self, snap: &Snapshot, now: SystemTime) {
        let mut seen: FastMap<ProgramKey, FastMap<SentKey, u64>> = FastMap::default();
        for p in &snap.programs {
            let listening: FastSet<u16> = p
                .connections
                .iter()
                .filter(|c| c.state == SockState::Listen)
                .map(|c| c.local.port())
                .collect();
            let before = self.sent.get(&p.key);
            // At most one entry per connection: no growing step by step.
            let mut now_sent: FastMap<SentKey, u64> =
                FastMap::with_capacity_and_hasher(p.connections.len(), Default::default());
            for c in &p.connections {
                let (Some(remote), Some(sent)) = (c.remote, c.bytes_sent) else {
                    continue;
                };
                if !c.live
                    || c.protocol != Protocol::Tcp
                    || c.state != SockState::Established
                    || listening.contains(&c.local.port())
                {
                    continue;
                }
                let key = (c.pid, c.local, remote);
                if let Some(prev) = before.and_then(|b| b.get(&key))
                    && sent > *prev
                {
                    self.contacts
                        .record_transfer(&p.key, remote, now, sent - prev);
                }
                now_sent.insert(key, sent);
            }
            if !now_sent.is_empty() {
                seen.insert(p.key.clone(), now_sent);
            }
        }
        self.sent = seen;
    }

    /// A stage over `baseline` (see [`Baseline::load`]) that classifies
    /// paths with `temp_dirs` (see [`TempDirs::detect`]) and checks real
    /// files.
    pub fn new(temp_dirs: TempDirs, baseline: Baseline) -> Self {
        AnalysisStage {
            temp_dirs,
            baseline,
            files: Box::new(RealFiles),
            contacts: ContactTimelines::default(),
            raised: HashMap::new(),
            last_save: None,
            save_failed: false,
            contacted_outside: HashSet::new(),
            sent: FastMap::default(),
            own_pid: std::process::id(),
        }
    }

    /// Sets which PID is kizuki's own (tests).
    pub fn with_own_pid(mut self, pid: u32) -> Self {
        self.own_pid = pid;
        self
    }

    /// Loads the baseline from `data_dir` (`None`: memory only) and builds
    /// the stage; the warnings (a corrupt baseline moved aside) are in the
    /// user's language, for stderr or a notice.
    pub fn open(
        data_dir: Option<&Path>,
        temp_dirs: TempDirs,
        now: SystemTime,
    ) -> (Self, Vec<String>) {
        let (baseline, warnings) = Baseline::load(data_dir, now);
        (Self::new(temp_dirs, baseline), warnings)
    }

    /// Replaces the file check (tests).
    pub fn with_files(mut self, files: Box<dyn FileCheck>) -> Self {
        self.files = files;
        self
    }

    /// Every condition that holds for `p` now, after independent signs
    /// were added up ([`escalate`]).
    fn detect(
        &self,
        p: &Program,
        now: SystemTime,
        interval: Duration,
        facts: &TickFacts<'_>,
    ) -> Vec<Detected> {
        let style = self.temp_dirs.style();
        let entry = p.exe.as_deref().and_then(|e| self.baseline.entry(e));
        let file_at_path = p.exe_deleted && p.exe.as_deref().is_some_and(|e| self.files.exists(e));
        let in_temp = p
            .exe
            .as_deref()
            .is_some_and(|e| super::places::temp_kind(e, &self.temp_dirs).is_some());
        let timelines = self.contacts.of(&p.key);
        let outside = self.contacted_outside.contains(&p.key);
        let mut found: Vec<Detected> = [
            exe::new_program(p, entry, now, style, outside),
            exe::exe_deleted(p, file_at_path, in_temp, style),
            exe::exe_changed(p, entry, now, style),
            location::runs_from_temp(p, &self.temp_dirs),
            network::listening(p, style),
            network::tor(p, facts.host.keeps_tor_data(p), facts.tor_socks),
            beacon::beaconing(p, &timelines, interval),
            blocked::blocked_running(p),
            process::remote_shell(p, facts.host),
            process::raw_socket(p, facts.host, style),
            process::disguised(p),
        ]
        .into_iter()
        .flatten()
        .collect();
        escalate::escalate(&mut found, super::is_trusted(p));
        found
    }

    fn save_if_due(&mut self, now: SystemTime) {
        if !self.baseline.is_dirty() {
            return;
        }
        let due = self
            .last_save
            .is_none_or(|t| now.duration_since(t).map_or(true, |d| d >= SAVE_EVERY));
        if !due {
            return;
        }
        self.last_save = Some(now);
        self.save_now();
    }

    /// Writes a changed baseline; a failure is said once.
    fn save_now(&mut self) {
        if !self.baseline.is_dirty() {
            return;
        }
        match self.baseline.save() {
            Ok(()) => self.save_failed = false,
            Err(e) => {
                // Said once; the list stays in memory and is retried.
                if !self.save_failed {
                    log::warn!(
                        "{}",
                        tr_args(
                            "findings.baseline_save_failed",
                            &[("error", &crate::fsutil::describe_io(&e))]
                        )
                    );
                }
                self.save_failed = true;
            }
        }
    }
}

impl Stage for AnalysisStage {
    fn apply(&mut self, ctx: &TickContext<'_>, snap: &mut Snapshot) {
        let now = ctx.now;
        self.baseline.observe(&snap.programs, now);
        self.contacts.record_events(ctx.events, &snap.programs);
        self.record_transfers(snap, now);
        let present: HashSet<ProgramKey> = snap.programs.iter().map(|p| p.key.clone()).collect();
        self.contacts.prune(now, |k| present.contains(k));
        self.raised.retain(|k, _| present.contains(k));

        for p in &snap.programs {
            if exe::contacts_outside(p) && !self.contacted_outside.contains(&p.key) {
                self.contacted_outside.insert(p.key.clone());
            }
        }
        self.contacted_outside.retain(|k| present.contains(k));
        let host = HostFacts::from_sample(ctx.raw);
        let tor_socks = process::tor_listeners(&snap.programs, &host);
        let facts = TickFacts {
            host: &host,
            tor_socks: &tor_socks,
        };

        let interval = snap.interval;
        let mut newly = Vec::new();
        for i in 0..snap.programs.len() {
            // kizuki does not report itself, wherever it was started from.
            let own = snap.programs[i]
                .processes
                .iter()
                .any(|x| x.alive && x.pid == self.own_pid);
            let found = if own {
                Vec::new()
            } else {
                self.detect(&snap.programs[i], now, interval, &facts)
            };
            let p = &mut snap.programs[i];
            let raised = self.raised.entry(p.key.clone()).or_default();
            let holding: HashSet<FindingKind> = found.iter().map(|d| d.kind).collect();
            // A condition that went away is raised afresh when it returns.
            raised.retain(|k, _| holding.contains(k));
            for d in found {
                let first = *raised.entry(d.kind).or_insert_with(|| {
                    newly.push((p.key.clone(), d.kind));
                    now
                });
                p.findings.push(d.into_finding(first));
            }
            p.findings
                .sort_by(|a, b| b.severity.cmp(&a.severity).then(a.kind.cmp(&b.kind)));
        }
        self.raised.retain(|_, m| !m.is_empty());
        snap.newly_raised.extend(newly);
        self.save_if_due(now);
    }

    /// What the last ticks learned is not lost when a run ends.
    fn finish(&mut self) {
        self.save_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::places::UnixEnv;
    use crate::clock::{Clock, FakeClock};
    use crate::identity::{ExeHasher, FakeHasher};
    use crate::model::{Mark, RawProcess, RawSample, RawSocket, Severity};
    use crate::monitor::MonitorCore;
    use crate::probe::FakeProbe;
    use std::path::PathBuf;
    use std::sync::Arc;

    const SEC: Duration = Duration::from_secs(1);

    /// Files that exist, for the deleted-or-replaced question.
    struct Files(Vec<PathBuf>);
    impl FileCheck for Files {
        fn exists(&self, path: &Path) -> bool {
            self.0.iter().any(|p| p == path)
        }
    }

    /// Stands in for the marks stage, which runs before analysis.
    struct Marks(Vec<(&'static str, Mark)>);
    impl Stage for Marks {
        fn apply(&mut self, _: &TickContext<'_>, snap: &mut Snapshot) {
            for p in &mut snap.programs {
                for (exe, m) in &self.0 {
                    if p.exe.as_deref() == Some(Path::new(exe)) {
                        p.mark = Some(*m);
                    }
                }
            }
        }
    }

    fn dirs() -> TempDirs {
        TempDirs::unix(&UnixEnv {
            home: Some("/home/alice".into()),
            ..UnixEnv::default()
        })
    }

    struct Rig {
        core: MonitorCore,
        probe: FakeProbe,
        clock: Arc<FakeClock>,
    }

    impl Rig {
        fn new(stage: AnalysisStage, marks: Vec<(&'static str, Mark)>) -> Rig {
            Rig::with_hasher(stage, marks, Box::new(FakeHasher::default()))
        }

        fn with_hasher(
            stage: AnalysisStage,
            marks: Vec<(&'static str, Mark)>,
            hasher: Box<dyn ExeHasher>,
        ) -> Rig {
            let clock = Arc::new(FakeClock::at_noon());
            let probe = FakeProbe::new(vec![]);
            let mut core = MonitorCore::new(Box::new(probe.clone()), hasher, clock.clone(), SEC)
                .with_retention(Duration::from_secs(5));
            core.add_stage(Box::new(Marks(marks)));
            core.add_stage(Box::new(stage));
            Rig { core, probe, clock }
        }

        /// Feeds one sample one second after the previous one.
        fn step(&mut self, sample: RawSample) -> Snapshot {
            self.probe.push(sample);
            let s = self.core.tick().unwrap();
            self.clock.advance(SEC);
            s
        }
    }

    fn stage() -> AnalysisStage {
        AnalysisStage::new(dirs(), Baseline::in_memory()).with_files(Box::new(Files(vec![])))
    }

    fn kinds(s: &Snapshot, exe: &str) -> Vec<(FindingKind, Severity)> {
        s.program(&ProgramKey::Exe(exe.into()))
            .map(|p| p.findings.iter().map(|f| (f.kind, f.severity)).collect())
            .unwrap_or_default()
    }

    fn has(s: &Snapshot, exe: &str, kind: FindingKind) -> bool {
        kinds(s, exe).iter().any(|(k, _)| *k == kind)
    }

    #[test]
    fn raised_once_kept_while_it_holds_and_raised_again_when_it_returns() {
        let tool = || RawProcess::fake(10, "/home/alice/bin/tool");
        let on = || RawSample::of(vec![tool()], vec![RawSocket::listen(10, "0.0.0.0:4444")]);
        let off = || RawSample::of(vec![tool()], vec![]);
        let key = ProgramKey::Exe("/home/alice/bin/tool".into());
        let mut rig = Rig::new(stage(), vec![]);

        let s1 = rig.step(on());
        assert_eq!(s1.newly_raised, vec![(key.clone(), FindingKind::Listening)]);
        let first = s1.program(&key).unwrap().findings[0].first_raised;
        for _ in 0..5 {
            let s = rig.step(on());
            assert!(s.newly_raised.is_empty(), "no repeat every sample");
            let f = &s.program(&key).unwrap().findings;
            assert_eq!(f.len(), 1);
            assert_eq!(f[0].first_raised, first);
        }
        // Closed: it stays while the ended listener is still shown (the
        // retention window, 5 s here), then goes.
        let s = rig.step(off());
        assert!(has(&s, "/home/alice/bin/tool", FindingKind::Listening));
        for _ in 0..6 {
            rig.step(off());
        }
        let s = rig.step(off());
        assert!(!has(&s, "/home/alice/bin/tool", FindingKind::Listening));
        // Back again: raised afresh.
        let s = rig.step(on());
        assert_eq!(s.newly_raised, vec![(key.clone(), FindingKind::Listening)]);
        assert!(s.program(&key).unwrap().findings[0].first_raised > first);
    }

    #[test]
    fn kizuki_never_reports_itself() {
        // Run from a download folder, listening on every interface.
        let me = "/home/alice/Downloads/kizuki";
        let sample = || {
            RawSample::of(
                vec![RawProcess::fake(77, me), RawProcess::fake(78, "/tmp/other")],
                vec![
                    RawSocket::listen(77, "0.0.0.0:4444"),
                    RawSocket::listen(78, "0.0.0.0:4445"),
                ],
            )
        };
        let mut rig = Rig::new(stage().with_own_pid(77), vec![]);
        let s = rig.step(sample());
        assert!(kinds(&s, me).is_empty(), "{:?}", kinds(&s, me));
        assert!(has(&s, "/tmp/other", FindingKind::RunsFromTemp));
    }

    #[test]
    fn once_outside_never_inside_this_pc() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = FakeClock::at_noon().now();
        let first = RawSample::of(vec![RawProcess::fake(3, "/usr/bin/known")], vec![]);
        run_once(dir.path(), t0, PidHasher(vec![]), vec![], vec![first]);
        let tool = "/home/alice/bin/tool";
        let p = || RawProcess::fake(9, tool);
        let out = RawSample::of(
            vec![p()],
            vec![RawSocket::tcp(9, "10.0.0.2:40000", "203.0.113.9:443")],
        );
        let local = RawSample::of(
            vec![p()],
            vec![RawSocket::tcp(9, "127.0.0.1:40001", "127.0.0.1:8080")],
        );
        // Out once, then only loopback long after the retention window.
        let mut samples = vec![out];
        samples.extend(std::iter::repeat_n(local, 12));
        let s = run_once(dir.path(), t0, PidHasher(vec![]), vec![], samples);
        let f = s.program(&ProgramKey::Exe(tool.into())).unwrap();
        let new = f
            .findings
            .iter()
            .find(|f| f.kind == FindingKind::NewProgram)
            .unwrap();
        assert!(
            f.connections
                .iter()
                .all(|c| c.remote.unwrap().ip().is_loopback()),
            "the outside contact is no longer shown"
        );
        assert_eq!(new.summary, crate::i18n::tr("findings.new_program"));
    }

    /// A client that holds each connection for `hold` samples, every
    /// `every` samples, from a new local port each time.
    fn periodic(t: u64, pid: u32, remote: &str, every: u64, hold: u64) -> Option<RawSocket> {
        (t % every < hold).then(|| {
            let port = 40000 + t / every;
            RawSocket::tcp(pid, &format!("10.0.0.2:{port}"), remote)
        })
    }

    #[test]
    fn beaconing_through_the_monitor() {
        let exe = "/home/alice/bin/poller";
        let cases: Vec<(&str, u64, u64, bool)> = vec![
            ("every 2 s, held one sample", 2, 1, true),
            ("every 5 s, held two samples", 5, 2, true),
            ("one long connection", 1000, 1000, false),
            ("a burst every sample", 1, 1, false),
        ];
        for (name, every, hold, want) in cases {
            let mut rig = Rig::new(stage(), vec![]);
            let mut last = None;
            for t in 0..40 {
                let socks = periodic(t, 10, "203.0.113.5:443", every, hold)
                    .into_iter()
                    .collect();
                last = Some(rig.step(RawSample::of(vec![RawProcess::fake(10, exe)], socks)));
            }
            let s = last.unwrap();
            assert_eq!(has(&s, exe, FindingKind::Beaconing), want, "{name}");
            if want {
                let f = s.program(&ProgramKey::Exe(exe.into())).unwrap();
                let b = f
                    .findings
                    .iter()
                    .find(|f| f.kind == FindingKind::Beaconing)
                    .unwrap();
                assert_eq!(b.evidence["endpoint"], "203.0.113.5:443", "{name}");
                assert!(b.evidence["contacts"].as_u64().unwrap() >= 4, "{name}");
                assert_eq!(b.severity, Severity::Medium, "{name}");
            }
        }
    }

    /// Issue 20: one connection kept open and polled inside every 7 s (the
    /// capture counts its bytes) is a rhythm; the same connection idle, or
    /// sending at uneven moments, is not.
    #[test]
    fn a_keep_alive_connection_polled_inside_is_beaconing() {
        let exe = "/home/alice/bin/poller";
        let one = |sent: u64| RawSocket {
            protocol: crate::model::Protocol::Tcp,
            local: "10.0.0.2:40000".parse().unwrap(),
            remote: Some("203.0.113.5:443".parse().unwrap()),
            state: crate::model::SockState::Established,
            pids: vec![10],
            uid: None,
            inode: 1,
            bytes_sent: Some(sent),
            bytes_received: Some(sent * 3),
            opened: None,
        };
        let uneven = [3u64, 4, 15, 17, 33, 34, 35, 51, 60, 62, 80];
        for (name, polls, want) in [
            (
                "every 7 s",
                (1..12).map(|i| i * 7).collect::<Vec<u64>>(),
                true,
            ),
            ("never", vec![], false),
            ("uneven", uneven.to_vec(), false),
        ] {
            let mut rig = Rig::new(stage(), vec![]);
            let mut sent = 200;
            let mut last = None;
            for t in 0..85 {
                if polls.contains(&t) {
                    sent += 120;
                }
                last = Some(rig.step(RawSample::of(
                    vec![RawProcess::fake(10, exe)],
                    vec![one(sent)],
                )));
            }
            let s = last.unwrap();
            assert_eq!(has(&s, exe, FindingKind::Beaconing), want, "{name}");
        }
    }

    #[test]
    fn a_server_answering_a_periodic_client_is_not_beaconing() {
        let server = "/home/alice/bin/server";
        let mut rig = Rig::new(stage(), vec![]);
        let mut s = Snapshot::empty();
        for t in 0..30u64 {
            let mut socks = vec![RawSocket::listen(20, "0.0.0.0:8080")];
            if t % 3 == 0 {
                // The same client, a new source port each time.
                let src = format!("192.168.1.9:{}", 50000 + t);
                socks.push(RawSocket::tcp(20, "192.168.1.5:8080", &src));
            }
            s = rig.step(RawSample::of(vec![RawProcess::fake(20, server)], socks));
        }
        assert!(has(&s, server, FindingKind::Listening));
        assert!(!has(&s, server, FindingKind::Beaconing));
    }

    // Written with Unix paths and tools.
    #[cfg(unix)]
    #[test]
    fn detectors_through_the_monitor() {
        let mut gone = RawProcess::fake(1, "/tmp/x/freetool");
        gone.exe_deleted = true;
        let mut replaced = RawProcess::fake(2, "/home/alice/app/app");
        replaced.exe_deleted = true;
        let tor_user = RawProcess::fake(3, "/home/alice/ダウンロード/tool");
        let shm = RawProcess::fake(4, "/dev/shm/.x");
        let blocked = RawProcess::fake(5, "/home/alice/bin/blocked");
        let sample = RawSample::of(
            vec![gone, replaced, tor_user, shm, blocked],
            vec![
                crate::model::RawSocket::tcp(3, "127.0.0.1:40000", "127.0.0.1:9050"),
                crate::model::RawSocket::tcp(5, "10.0.0.2:40001", "203.0.113.9:443"),
            ],
        );
        let stage = AnalysisStage::new(
            TempDirs::unix(&UnixEnv {
                home: Some("/home/alice".into()),
                user_dirs: Some("XDG_DOWNLOAD_DIR=\"$HOME/ダウンロード\"".into()),
                ..UnixEnv::default()
            }),
            Baseline::in_memory(),
        )
        .with_files(Box::new(Files(vec!["/home/alice/app/app".into()])));
        let mut rig = Rig::new(stage, vec![("/home/alice/bin/blocked", Mark::Blocked)]);
        let s = rig.step(sample);
        use FindingKind::*;
        use Severity::*;
        let cases: Vec<(&str, Vec<(FindingKind, Severity)>)> = vec![
            (
                "/tmp/x/freetool",
                vec![(ExeDeleted, High), (RunsFromTemp, Medium)],
            ),
            // Replaced in the home folder by an untrusted program: not an
            // update (an innocent file put back after deleting).
            ("/home/alice/app/app", vec![(ExeDeleted, High)]),
            (
                "/home/alice/ダウンロード/tool",
                vec![(Tor, High), (RunsFromTemp, Medium)],
            ),
            ("/dev/shm/.x", vec![(RunsFromTemp, High)]),
            ("/home/alice/bin/blocked", vec![(BlockedRunning, High)]),
        ];
        for (exe, want) in cases {
            assert_eq!(kinds(&s, exe), want, "{exe}");
        }
        assert_eq!(s.newly_raised.len(), 7);
    }

    /// Hashes by PID, so a restarted program can run a new image.
    struct PidHasher(Vec<(u32, &'static str)>);
    impl ExeHasher for PidHasher {
        fn hash(&mut self, pid: u32, exe: &Path) -> Option<String> {
            self.0
                .iter()
                .find(|(p, _)| *p == pid)
                .map(|(_, h)| h.to_string())
                .or_else(|| {
                    Some(crate::identity::sha256_bytes(
                        exe.to_string_lossy().as_bytes(),
                    ))
                })
        }
    }

    fn run_once(
        dir: &Path,
        clock_at: SystemTime,
        hasher: PidHasher,
        marks: Vec<(&'static str, Mark)>,
        samples: Vec<RawSample>,
    ) -> Snapshot {
        let (stage, warnings) = AnalysisStage::open(Some(dir), dirs(), clock_at);
        assert!(warnings.is_empty(), "{warnings:?}");
        let mut rig = Rig::with_hasher(
            stage.with_files(Box::new(Files(vec![]))),
            marks,
            Box::new(hasher),
        );
        rig.clock.set(clock_at);
        let mut last = Snapshot::empty();
        for s in samples {
            last = rig.step(s);
        }
        // The run ends as the CLI and the monitor thread end it.
        rig.core.save();
        last
    }

    #[test]
    fn what_the_last_ticks_learned_is_saved_when_the_run_ends() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = FakeClock::at_noon().now();
        let (stage, _) = AnalysisStage::open(Some(dir.path()), dirs(), t0);
        let mut rig = Rig::new(stage, vec![]);
        rig.clock.set(t0);
        let late = "/home/alice/bin/late";
        rig.step(RawSample::of(
            vec![RawProcess::fake(1, "/usr/bin/first")],
            vec![],
        ));
        // One second later: not yet due for a save.
        rig.step(RawSample::of(
            vec![
                RawProcess::fake(1, "/usr/bin/first"),
                RawProcess::fake(2, late),
            ],
            vec![],
        ));
        let known = |now| {
            let (b, _) = Baseline::load(Some(dir.path()), now);
            b.entry(Path::new(late)).is_some()
        };
        assert!(!known(t0), "saved before it was due");
        rig.core.save();
        assert!(known(t0), "the run ended without saving what it learned");
    }

    #[test]
    fn baseline_across_runs_new_program_and_changed_file() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = FakeClock::at_noon().now();
        let hour = Duration::from_secs(3600);
        let old = "/home/alice/bin/old";
        let newer = "/home/alice/bin/newer";
        let online = |pid: u32, exe: &str| {
            RawSample::of(
                vec![RawProcess::fake(pid, exe)],
                vec![RawSocket::tcp(pid, "10.0.0.2:40000", "203.0.113.9:443")],
            )
        };
        // First run: everything seen is known.
        let s = run_once(
            dir.path(),
            t0,
            PidHasher(vec![(1, "v1")]),
            vec![],
            vec![online(1, old)],
        );
        assert!(kinds(&s, old).is_empty());
        assert!(
            dir.path().join(crate::analysis::BASELINE_FILE).exists(),
            "saved"
        );

        // Second run: `newer` is new; `old` now runs another image.
        let both = RawSample::of(
            vec![RawProcess::fake(1, old), RawProcess::fake(2, newer)],
            vec![
                RawSocket::tcp(1, "10.0.0.2:40000", "203.0.113.9:443"),
                RawSocket::tcp(2, "10.0.0.2:40001", "203.0.113.9:443"),
            ],
        );
        let s = run_once(
            dir.path(),
            t0 + hour,
            PidHasher(vec![(1, "v2")]),
            vec![],
            vec![both.clone()],
        );
        assert_eq!(
            kinds(&s, newer),
            vec![(FindingKind::NewProgram, Severity::Medium)]
        );
        assert_eq!(
            kinds(&s, old),
            vec![(FindingKind::ExeChanged, Severity::Medium)]
        );
        let changed = &s.program(&ProgramKey::Exe(old.into())).unwrap().findings[0];
        assert_eq!(changed.evidence["previous_sha256"], "v1");
        assert_eq!(changed.evidence["sha256"], "v2");

        // Third run, still within the day: both still hold (survived a restart).
        let s = run_once(
            dir.path(),
            t0 + 2 * hour,
            PidHasher(vec![(1, "v2")]),
            vec![],
            vec![both.clone()],
        );
        assert!(has(&s, newer, FindingKind::NewProgram));
        assert!(has(&s, old, FindingKind::ExeChanged));
        // The user marks the new program: no longer new.
        let s = run_once(
            dir.path(),
            t0 + 3 * hour,
            PidHasher(vec![(1, "v2")]),
            vec![(newer, Mark::Unknown), (old, Mark::Trusted)],
            vec![both.clone()],
        );
        assert!(kinds(&s, newer).is_empty());
        assert!(kinds(&s, old).is_empty());
        // A day later nothing is new any more.
        let s = run_once(
            dir.path(),
            t0 + 26 * hour,
            PidHasher(vec![(1, "v2")]),
            vec![],
            vec![both],
        );
        assert!(kinds(&s, newer).is_empty() && kinds(&s, old).is_empty());
    }

    #[test]
    fn a_program_without_network_is_not_announced_as_new() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = FakeClock::at_noon().now();
        run_once(
            dir.path(),
            t0,
            PidHasher(vec![]),
            vec![],
            vec![RawSample::of(vec![], vec![])],
        );
        let quiet = "/home/alice/bin/quiet";
        let s = run_once(
            dir.path(),
            t0,
            PidHasher(vec![]),
            vec![],
            vec![RawSample::of(vec![RawProcess::fake(3, quiet)], vec![])],
        );
        assert!(s.program(&ProgramKey::Exe(quiet.into())).is_some());
        assert!(kinds(&s, quiet).is_empty());
    }

    // ---- The clean desktop: an ordinary session must not cry wolf. ----

    /// A small deterministic generator for irregular human activity.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    const FIREFOX: &str = "/usr/lib/firefox/firefox";
    const CHAT: &str = "/home/alice/.local/share/chat/chat";
    const UPDATER: &str = "/home/alice/.local/bin/updater";
    const APT: &str = "/usr/lib/apt/methods/http";
    const SPOTIFY: &str = "/home/alice/.local/share/spotify/spotify";
    const RESOLVED: &str = "/usr/lib/systemd/systemd-resolved";

    struct Desktop {
        /// (start, seconds held, host index) of each browser connection.
        browsing: Vec<(u64, u64, u64)>,
    }

    impl Desktop {
        fn new() -> Desktop {
            let mut rng = Lcg(2012);
            let mut browsing = Vec::new();
            let mut t = 0;
            while t < 900 {
                // Reading pauses of 1–40 s, then a page pulls from 1–6 hosts.
                t += 1 + rng.next(40);
                for _ in 0..=rng.next(6) {
                    browsing.push((t, 1 + rng.next(25), rng.next(30)));
                }
            }
            Desktop { browsing }
        }

        fn sample(&self, t: u64) -> RawSample {
            let mut procs = Vec::new();
            let mut socks = Vec::new();
            // sshd as root: without administrator rights its path is hidden.
            procs.push(RawProcess {
                pid: 500,
                parent: Some(1),
                name: "sshd".into(),
                exe: None,
                exe_deleted: false,
                cmdline: vec![],
                uid: Some(0),
                user: Some("root".into()),
                start_time: 1,
                ..RawProcess::default()
            });
            socks.push(RawSocket::listen(500, "0.0.0.0:22"));
            socks.push(RawSocket::listen(500, "[::]:22"));
            let mut resolved = RawProcess::fake(510, RESOLVED);
            resolved.uid = Some(990);
            procs.push(resolved);
            socks.push(RawSocket::listen(510, "127.0.0.53:53"));
            let mut cups = RawProcess::fake(520, "/usr/sbin/cupsd");
            cups.uid = Some(0);
            procs.push(cups);
            socks.push(RawSocket::listen(520, "127.0.0.1:631"));
            // Firefox: many hosts on 443 at irregular times; the package
            // manager replaces its file at t=300; restarted at t=400 with
            // the new version.
            let ff_pids: [u32; 2] = if t < 400 { [100, 101] } else { [150, 151] };
            for pid in ff_pids {
                let mut p = RawProcess::fake(pid, FIREFOX);
                p.exe_deleted = (300..400).contains(&t);
                procs.push(p);
            }
            for (i, (start, held, host)) in self.browsing.iter().enumerate() {
                if (*start..start + held).contains(&t) {
                    let local = format!("192.168.1.5:{}", 30000 + i);
                    let remote = format!("93.184.{}.{}:443", 200 + host / 10, 10 + host);
                    socks.push(RawSocket::tcp(ff_pids[0], &local, &remote));
                }
            }
            // Chat: one long connection all session.
            procs.push(RawProcess::fake(300, CHAT));
            socks.push(RawSocket::tcp(300, "192.168.1.5:45000", "203.0.113.50:443"));
            // Music app that offers itself to the home network.
            procs.push(RawProcess::fake(310, SPOTIFY));
            socks.push(RawSocket::listen(310, "0.0.0.0:57621"));
            // Trusted updater: every 60 s, about a second each.
            procs.push(RawProcess::fake(400, UPDATER));
            if t % 60 < 2 {
                let local = format!("192.168.1.5:{}", 50000 + t / 60);
                socks.push(RawSocket::tcp(400, &local, "198.51.100.7:443"));
            }
            // apt: runs from t=100 to t=160, a few fetches at irregular times.
            if (100..160).contains(&t) {
                procs.push(RawProcess::fake(200, "/usr/bin/apt"));
                procs.push(RawProcess::fake(201, APT));
                for (start, end, port) in [
                    (101, 112, 41000),
                    (120, 121, 41001),
                    (123, 125, 41002),
                    (139, 140, 41003),
                    (141, 150, 41004),
                ] {
                    if (start..end).contains(&t) {
                        socks.push(RawSocket::tcp(
                            201,
                            &format!("192.168.1.5:{port}"),
                            "151.101.2.132:80",
                        ));
                    }
                }
            }
            // The same machine seen as root: sshd's listener and a session
            // (a shell on a terminal, not on the connection).
            let mut sshd = RawProcess::fake(530, "/usr/sbin/sshd");
            sshd.uid = Some(0);
            sshd.name = "sshd".into();
            sshd.cmdline = vec!["sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups".into()];
            procs.push(sshd);
            socks.push(RawSocket::listen(530, "0.0.0.0:2222"));
            let mut session = RawProcess::fake(531, "/usr/sbin/sshd");
            session.parent = Some(530);
            session.cmdline = vec!["sshd: alice@pts/0".into()];
            procs.push(session);
            socks.push(RawSocket::tcp(
                531,
                "192.168.1.5:2222",
                "192.168.1.20:51234",
            ));
            let mut login = RawProcess::fake(532, "/usr/bin/bash");
            login.parent = Some(531);
            login.cmdline = vec!["-bash".into()];
            procs.push(login);
            // `ssh host git-upload-pack`: a shell that sshd runs over pipes.
            let mut git = RawProcess::fake(533, "/usr/bin/dash");
            git.parent = Some(531);
            git.name = "sh".into();
            git.cmdline = vec!["sh".into(), "-c".into(), "git-upload-pack 'x.git'".into()];
            procs.push(git);
            // avahi: mDNS on every interface, its title in brackets.
            let mut avahi = RawProcess::fake(540, "/usr/sbin/avahi-daemon");
            avahi.uid = Some(108);
            avahi.name = "avahi-daemon".into();
            avahi.cmdline = vec!["avahi-daemon: running [pc.local]".into()];
            procs.push(avahi);
            socks.push(RawSocket::udp(540, "0.0.0.0:5353"));
            socks.push(RawSocket::udp(540, "[::]:5353"));
            // dhclient with its packet socket; NetworkManager.
            let mut dhclient = RawProcess::fake(550, "/usr/sbin/dhclient");
            dhclient.uid = Some(0);
            procs.push(dhclient);
            let mut nm = RawProcess::fake(551, "/usr/sbin/NetworkManager");
            nm.uid = Some(0);
            procs.push(nm);
            // A local dev web server: a Python script in the project, and
            // vite on node, both on this PC; the developer's browser polls
            // the dev server for reloads every 2 s.
            let mut manage = RawProcess::fake(560, "/usr/bin/python3.11");
            manage.name = "python3".into();
            manage.cmdline = vec!["python3".into(), "manage.py".into(), "runserver".into()];
            manage.script = Some(crate::model::ScriptRun {
                path: "/home/alice/proj/manage.py".into(),
                read_from: "/home/alice/proj/manage.py".into(),
                deleted: false,
                stamp: None,
            });
            procs.push(manage);
            socks.push(RawSocket::listen(560, "127.0.0.1:8000"));
            let mut vite = RawProcess::fake(561, "/usr/bin/node");
            vite.cmdline = vec![
                "node".into(),
                "/home/alice/proj/node_modules/.bin/vite".into(),
            ];
            vite.script = Some(crate::model::ScriptRun {
                path: "/home/alice/proj/node_modules/.bin/vite".into(),
                read_from: "/home/alice/proj/node_modules/.bin/vite".into(),
                deleted: false,
                stamp: None,
            });
            procs.push(vite);
            socks.push(RawSocket::listen(561, "127.0.0.1:5173"));
            if t.is_multiple_of(2) {
                let local = format!("127.0.0.1:{}", 52000 + t / 2);
                socks.push(RawSocket::tcp(ff_pids[0], &local, "127.0.0.1:5173"));
            }
            // The apt run's package scripts: sh running a maintainer script.
            if (150..158).contains(&t) {
                let mut post = RawProcess::fake(210, "/usr/bin/dash");
                post.parent = Some(200);
                post.name = "sh".into();
                post.cmdline = vec![
                    "/bin/sh".into(),
                    "/var/lib/dpkg/info/firefox.postinst".into(),
                    "configure".into(),
                ];
                post.script = Some(crate::model::ScriptRun {
                    path: "/var/lib/dpkg/info/firefox.postinst".into(),
                    read_from: "/proc/210/fd/10".into(),
                    deleted: false,
                    stamp: None,
                });
                procs.push(post);
            }
            let mut sample = RawSample::of(procs, socks);
            sample.special_sockets.push(crate::model::RawSpecialSocket {
                family: "packet",
                inode: 77,
                pids: vec![550],
            });
            sample
        }
    }

    /// The clean desktop: an ordinary session (browser, package manager,
    /// sshd with a login and a git fetch, avahi, cups, dhclient's packet
    /// socket, a chat app, a music app, a trusted updater, a local dev web
    /// server a browser polls) must not cry wolf.
    #[test]
    fn clean_desktop_raises_nothing_high() {
        let desk = Desktop::new();
        let hasher = PidHasher(vec![
            (100, "ff-v1"),
            (101, "ff-v1"),
            (150, "ff-v2"),
            (151, "ff-v2"),
        ]);
        let stage = AnalysisStage::new(dirs(), Baseline::in_memory())
            // The package manager put a new file in place.
            .with_files(Box::new(Files(vec![FIREFOX.into()])));
        let mut rig = Rig::with_hasher(stage, vec![(UPDATER, Mark::Trusted)], Box::new(hasher));
        let mut seen: Vec<(String, FindingKind, Severity)> = Vec::new();
        for t in 0..900 {
            let s = rig.step(desk.sample(t));
            for p in &s.programs {
                for f in &p.findings {
                    let item = (p.name.clone(), f.kind, f.severity);
                    if !seen.contains(&item) {
                        seen.push(item);
                    }
                }
            }
        }
        let high: Vec<_> = seen
            .iter()
            .filter(|(_, _, s)| *s == Severity::High)
            .collect();
        assert!(
            high.is_empty(),
            "high findings on a clean desktop: {high:?}\nall: {seen:?}"
        );
        // What it does say is honest and quiet.
        use FindingKind::*;
        let expect = [
            ("sshd", Listening, Severity::Low),
            ("cupsd", Listening, Severity::Info),
            ("systemd-resolved", Listening, Severity::Info),
            ("spotify", Listening, Severity::Medium),
            ("firefox", ExeDeleted, Severity::Low),
            ("firefox", ExeChanged, Severity::Low),
            ("updater", Beaconing, Severity::Low),
            ("http", NewProgram, Severity::Low),
        ];
        for (name, kind, sev) in expect {
            assert!(
                seen.contains(&(name.to_string(), kind, sev)),
                "expected {name} {kind:?} {sev:?} in {seen:?}"
            );
        }
        for (name, kind, sev) in &seen {
            // The page reload poll to the dev server is a real rhythm, on
            // this PC: low. Browsing the internet is not a rhythm at all.
            assert!(
                !(name == "firefox" && *kind == Beaconing && *sev > Severity::Low),
                "irregular browsing is not beaconing: {seen:?}"
            );
            assert!(
                name != "chat",
                "one long connection is nothing to report: {seen:?}"
            );
            assert!(*kind != Tor && *kind != RunsFromTemp, "{seen:?}");
            assert!(
                !matches!(kind, RemoteShell | Disguised) && *kind != FindingKind::RawSocket,
                "{seen:?}"
            );
        }
    }
}
