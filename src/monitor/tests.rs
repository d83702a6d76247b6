use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::clock::Clock;
use crate::clock::FakeClock;
use crate::identity::ExeHasher;
use crate::identity::FakeHasher;
use crate::model::RawSocket;
use crate::model::{ProgramKey, RawProcess, RawSample, Snapshot, SockState};
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
    m.send(MonitorControl::TickNow);
    let s = m
        .snapshots
        .wait_newer(0, Duration::from_secs(30))
        .expect("a snapshot arrives");
    assert_eq!(s.generation, 1);
    m.send(MonitorControl::TickNow);
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

#[test]
fn a_core_that_keeps_its_ticks_makes_the_same_snapshots() {
    let clock = Arc::new(FakeClock::at_noon());
    let mut firefox = RawProcess::fake(10, "/usr/bin/firefox");
    firefox.name = "firefox-bin".into();
    // Two processes of one program, and one of another.
    let samples = vec![
        RawSample::of(
            vec![
                firefox.clone(),
                RawProcess::fake(11, "/usr/bin/firefox"),
                curl(),
            ],
            vec![
                RawSocket::tcp(10, "10.0.0.2:5000", "198.51.100.1:443"),
                RawSocket::tcp(11, "10.0.0.2:5001", "198.51.100.2:443"),
                RawSocket::tcp(100, "10.0.0.2:5002", "203.0.113.7:443"),
            ],
        ),
        RawSample::of(
            vec![firefox, curl()],
            vec![RawSocket::tcp(100, "10.0.0.2:5002", "203.0.113.7:443")],
        ),
    ];
    let mut plain = core(samples.clone(), clock.clone());
    let mut keeping = core(samples, clock.clone());
    keeping.keep_ticks();
    for _ in 0..2 {
        let a = plain.tick().unwrap();
        let b = keeping.tick().unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        clock.advance(Duration::from_secs(1));
    }
    let kept = keeping.kept.as_ref().unwrap();
    assert_eq!(kept.len(), 2, "both ticks' samples are kept");
    // The first tick opened three sessions; the second closed two.
    assert_eq!(kept[0].1.len(), 3);
    assert_eq!(kept[1].1.len(), 2);
}

/// Every event a tick reported, as (opened, closed) counts.
struct Events(Arc<Mutex<Vec<(usize, usize)>>>);
impl Stage for Events {
    fn apply(&mut self, ctx: &TickContext<'_>, _snap: &mut Snapshot) {
        let opened = ctx
            .events
            .iter()
            .filter(|e| matches!(e, SessionEvent::Opened { .. }))
            .count();
        self.0
            .lock()
            .unwrap()
            .push((opened, ctx.events.len() - opened));
    }
}

fn burst(n: u16) -> RawSample {
    RawSample::of(
        vec![curl()],
        (0..n)
            .map(|i| RawSocket::tcp(100, &format!("10.0.0.2:{}", 20000 + i), "203.0.113.7:443"))
            .collect(),
    )
}

#[test]
fn ended_sessions_kept_for_no_time_are_forgotten_with_the_same_events() {
    // 3,000 connections, all closed, then one: the guard's monitor (no
    // connection lists) forgets the ended ones and gives the table's
    // memory back; the events it reports are those of a monitor that
    // keeps them for the window.
    let samples = || vec![burst(3000), burst(3000), burst(0), burst(1)];
    let run = |lean: bool| {
        let clock = Arc::new(FakeClock::at_noon());
        let mut m = core(samples(), clock.clone());
        if lean {
            m = m.without_connections().keep_ended_sessions(Duration::ZERO);
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        m.add_stage(Box::new(Events(seen.clone())));
        let mut counts = Vec::new();
        for _ in 0..4 {
            m.tick().unwrap();
            counts.push((m.tracker().session_count(), m.tracker().session_capacity()));
            clock.advance(Duration::from_secs(1));
        }
        let events = seen.lock().unwrap().clone();
        (events, counts)
    };
    let (kept_events, kept) = run(false);
    let (lean_events, lean) = run(true);
    assert_eq!(lean_events, kept_events);
    assert_eq!(lean_events, vec![(3000, 0), (0, 0), (0, 3000), (1, 0)]);
    assert_eq!(kept[2].0, 3000, "the window keeps ended sessions");
    assert_eq!(lean[2].0, 0, "ended sessions are forgotten at once");
    assert_eq!(lean[3].0, 1);
    assert!(
        lean[3].1 < 3000,
        "the emptied table shrank: capacity {}",
        lean[3].1
    );
}

#[test]
fn the_same_connections_again_do_not_grow_the_session_table() {
    let clock = Arc::new(FakeClock::at_noon());
    let mut m = core(vec![burst(3000)], clock.clone());
    m.tick().unwrap();
    let first = m.tracker().session_capacity();
    for _ in 0..3 {
        clock.advance(Duration::from_secs(1));
        m.tick().unwrap();
    }
    assert_eq!(m.tracker().session_count(), 3000);
    // Room for one sample, not for the sample again on top of it.
    assert_eq!(m.tracker().session_capacity(), first);
    assert!(first < 6000, "capacity {first}");
}

#[test]
fn each_raw_sample_is_handed_on_after_the_stages() {
    let clock = Arc::new(FakeClock::at_noon());
    let order = Arc::new(Mutex::new(Vec::new()));
    struct Mark(Arc<Mutex<Vec<String>>>);
    impl Stage for Mark {
        fn apply(&mut self, _ctx: &TickContext<'_>, _snap: &mut Snapshot) {
            self.0.lock().unwrap().push("stage".into());
        }
    }
    let mut m = core(vec![burst(2), burst(3)], clock);
    m.add_stage(Box::new(Mark(order.clone())));
    let o = order.clone();
    m.hand_on_samples(Box::new(move |s| {
        o.lock()
            .unwrap()
            .push(format!("sample of {}", s.sockets.len()));
    }));
    m.tick().unwrap();
    m.tick().unwrap();
    assert_eq!(
        *order.lock().unwrap(),
        vec!["stage", "sample of 2", "stage", "sample of 3"]
    );
}
