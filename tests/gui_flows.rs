#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The window driven like a user would, over scripted snapshots: no
//! display, no GPU. Widgets are found by their accessible labels.

use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use kizuki::app::{
    AppState, BackendError, Call, Command, Feature, ProcAction, RecordingBackend, ReportRequest,
};
use kizuki::clock::FakeClock;
use kizuki::i18n::Lang;
use kizuki::identity::FakeHasher;
use kizuki::model::{
    Finding, FindingKind, Mark, ProgramKey, RawProcess, RawSample, RawSocket, Severity, Snapshot,
};
use kizuki::monitor::MonitorCore;
use kizuki::probe::FakeProbe;
use kizuki::ui::KizukiApp;

const TOOL_SHA: &str = "5f1d7a3b9c0e2d4f6a8b0c1d3e5f7a9b1c3d5e7f9a0b2c4d6e8f0a1b3c5d7e9f";

/// A monitor over scripted samples, ticked by hand.
struct Script {
    core: MonitorCore,
    probe: FakeProbe,
    clock: Arc<FakeClock>,
}

impl Script {
    fn new(first: RawSample) -> Self {
        let probe = FakeProbe::new(vec![first]);
        let clock = Arc::new(FakeClock::at_noon());
        let core = MonitorCore::new(
            Box::new(probe.clone()),
            Box::new(FakeHasher::with(&[("/tmp/.cache/tool", TOOL_SHA)])),
            clock.clone(),
            Duration::from_secs(1),
        );
        Script { core, probe, clock }
    }

    fn tick(&mut self) -> Snapshot {
        let s = self.core.tick().unwrap();
        self.clock.advance(Duration::from_secs(1));
        s
    }
}

fn home_sample() -> RawSample {
    let mut sshd = RawProcess::fake(300, "/usr/sbin/sshd");
    sshd.user = Some("root".into());
    RawSample::of(
        vec![
            RawProcess::fake(100, "/usr/bin/curl"),
            RawProcess::fake(200, "/usr/bin/firefox"),
            sshd,
            RawProcess::fake(400, "/tmp/.cache/tool"),
        ],
        vec![
            RawSocket::tcp(100, "10.0.0.2:40000", "203.0.113.7:443"),
            RawSocket::tcp(200, "10.0.0.2:40001", "198.51.100.1:443"),
            RawSocket::tcp(200, "10.0.0.2:40002", "198.51.100.2:443"),
            RawSocket::listen(400, "0.0.0.0:5555"),
        ],
    )
}

/// What the findings engine would add about the tool in /tmp.
fn with_findings(mut s: Snapshot) -> Snapshot {
    for p in &mut s.programs {
        if p.name == "tool" {
            p.findings.push(Finding {
                kind: FindingKind::RunsFromTemp,
                severity: Severity::High,
                summary: "一時フォルダから動いています".into(),
                evidence: Default::default(),
                first_raised: s.taken_at,
            });
        }
    }
    s
}

fn harness(lang: Lang, backend: &RecordingBackend) -> Harness<'static, KizukiApp> {
    let app = KizukiApp::new(AppState::new(lang), Box::new(backend.clone()));
    Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .with_context_setup(kizuki::ui::setup_context)
        .build_ui_state(|ui, app: &mut KizukiApp| app.show(ui), app)
}

fn feed(h: &mut Harness<'static, KizukiApp>, snap: Snapshot) {
    let ctx = h.ctx.clone();
    h.state_mut()
        .apply(&ctx, Command::NewSnapshot(Arc::new(snap)));
    h.run();
}

fn row<'h>(h: &'h Harness<'static, KizukiApp>, name: &'h str) -> egui_kittest::Node<'h> {
    h.get_by_role_and_label(Role::Button, name)
}

#[test]
fn list_shows_the_scripted_programs() {
    let backend = RecordingBackend::new();
    let mut h = harness(Lang::Ja, &backend);
    assert!(
        h.query_by_label("調べています…").is_some(),
        "waits for data first"
    );
    let mut script = Script::new(home_sample());
    feed(&mut h, script.tick());
    for name in ["curl", "firefox", "sshd", "tool"] {
        row(&h, name);
    }
    assert!(h.query_by_label("4 個を表示 (全 4 個)").is_some());
}

#[test]
fn clicking_a_program_shows_its_connections() {
    let backend = RecordingBackend::new();
    let mut h = harness(Lang::Ja, &backend);
    let mut script = Script::new(home_sample());
    feed(&mut h, script.tick());
    assert!(h.query_by_label("198.51.100.1:443").is_none());
    row(&h, "firefox").click();
    h.run();
    assert!(h.query_by_label("198.51.100.1:443").is_some());
    assert!(h.query_by_label("198.51.100.2:443").is_some());
    assert!(
        h.query_by_label("203.0.113.7:443").is_none(),
        "curl's are not shown"
    );
    assert!(h.query_by_label("通信 (いま 2 件 / 記録 2 件)").is_some());
}

#[test]
fn block_sends_the_mark_and_the_badge_changes() {
    let backend = RecordingBackend::new();
    let mut h = harness(Lang::Ja, &backend);
    let mut script = Script::new(home_sample());
    feed(&mut h, with_findings(script.tick()));
    row(&h, "tool").click();
    h.run();
    assert!(
        h.query_by_role_and_label(Role::Label, "ブロック中")
            .is_none()
    );
    h.get_by_role_and_label(Role::Button, "ブロック").click();
    h.run();
    let calls = backend.calls();
    let [Call::SetMark(req)] = calls.as_slice() else {
        panic!("one mark call expected, got {calls:?}");
    };
    assert_eq!(req.mark, Mark::Blocked);
    assert_eq!(req.exe, std::path::PathBuf::from("/tmp/.cache/tool"));
    assert_eq!(req.sha256, TOOL_SHA);
    assert_eq!(req.pids, vec![400]);
    // The guard read the block back: shown in the list, the details and
    // the blocked programs list, before the monitor says anything.
    assert_eq!(
        backend.guard().lock().requests,
        vec![kizuki::guard::api::Request::Block {
            exe: "/tmp/.cache/tool".into()
        }]
    );
    assert_eq!(
        h.query_all_by_role_and_label(Role::Label, "ブロック中")
            .count(),
        3
    );

    // The next snapshot carries the mark itself: it stays blocked.
    let mut next = with_findings(script.tick());
    next.programs
        .iter_mut()
        .filter(|p| p.name == "tool")
        .for_each(|p| p.mark = Some(Mark::Blocked));
    feed(&mut h, next);
    assert!(h.state().state.pending_marks.is_empty());
    assert_eq!(
        h.query_all_by_role_and_label(Role::Label, "ブロック中")
            .count(),
        3
    );
}

#[test]
fn a_failed_mark_is_explained_and_changes_nothing() {
    let backend = RecordingBackend::new();
    backend.fail_with(Some(BackendError::Unavailable(Feature::Marks)));
    let mut h = harness(Lang::Ja, &backend);
    let mut script = Script::new(home_sample());
    feed(&mut h, script.tick());
    row(&h, "tool").click();
    h.run();
    h.get_by_role_and_label(Role::Button, "ブロック").click();
    h.run();
    assert!(
        h.query_by_role_and_label(Role::Label, "ブロック中")
            .is_none()
    );
    h.get_by_label_contains("「ブロック」は、この版ではまだ使えません");
    h.get_by_role_and_label(Role::Button, "閉じる").click();
    h.run();
    assert!(h.query_by_label_contains("まだ使えません").is_none());
}

#[test]
fn language_switch_changes_labels() {
    let backend = RecordingBackend::new();
    let mut h = harness(Lang::Ja, &backend);
    let mut script = Script::new(home_sample());
    feed(&mut h, script.tick());
    row(&h, "curl").click();
    h.run();
    h.get_by_role_and_label(Role::Button, "ブロック");
    assert!(
        h.query_by_label_contains("一定の間隔で確認中（1秒ごと）")
            .is_some()
    );
    h.get_by_label("English").click();
    h.run();
    h.get_by_role_and_label(Role::Button, "Block");
    assert!(
        h.query_by_role_and_label(Role::Button, "ブロック")
            .is_none()
    );
    assert!(h.query_by_label_contains("Checked every 1 s").is_some());
    assert!(h.query_by_label("Only using the network").is_some());
    h.get_by_label("日本語").click();
    h.run();
    h.get_by_role_and_label(Role::Button, "ブロック");
}

#[test]
fn a_suspicious_program_is_listed_first() {
    let backend = RecordingBackend::new();
    let mut h = harness(Lang::En, &backend);
    let mut script = Script::new(home_sample());
    feed(&mut h, with_findings(script.tick()));
    let y = |name: &str| row(&h, name).rect().min.y;
    let tool = y("tool");
    for other in ["curl", "firefox", "sshd"] {
        assert!(tool < y(other), "tool above {other}");
    }
    // Busy programs come next; by name it is alphabetical.
    assert!(y("firefox") < y("curl"));
    // Its most important finding shows as a chip with the short title.
    let chip = kizuki::i18n::tr_in(Lang::En, "finding.runs-from-temp.title");
    assert_ne!(
        chip, "finding.runs-from-temp.title",
        "the catalog has a title"
    );
    assert!(h.query_by_role_and_label(Role::Label, &chip).is_some());
}

#[test]
fn filters_and_search_narrow_the_list() {
    let backend = RecordingBackend::new();
    let mut h = harness(Lang::En, &backend);
    let mut script = Script::new(home_sample());
    feed(&mut h, with_findings(script.tick()));
    h.get_by_label("Only using the network").click();
    h.run();
    assert!(h.query_by_role_and_label(Role::Button, "sshd").is_none());
    row(&h, "curl");
    h.get_by_label("Only needing attention").click();
    h.run();
    assert!(h.query_by_role_and_label(Role::Button, "curl").is_none());
    row(&h, "tool");
    h.get_by_label("Only needing attention").click();
    h.get_by_label("Only using the network").click();
    h.run();
    h.get_by_label("Search").focus();
    h.run();
    h.get_by_label("Search").type_text("fire");
    h.run();
    row(&h, "firefox");
    assert!(h.query_by_role_and_label(Role::Button, "curl").is_none());
}

#[test]
fn terminate_asks_first() {
    let backend = RecordingBackend::new();
    let mut h = harness(Lang::Ja, &backend);
    let mut script = Script::new(home_sample());
    feed(&mut h, script.tick());
    row(&h, "tool").click();
    h.run();
    h.get_by_role_and_label(Role::Button, "終了").click();
    h.run();
    assert!(
        backend.calls().is_empty(),
        "nothing happens before the answer"
    );
    h.get_by_label("「tool」を終了しますか?");
    h.get_by_role_and_label(Role::Button, "やめる").click();
    h.run();
    assert!(backend.calls().is_empty());
    h.get_by_role_and_label(Role::Button, "終了").click();
    h.run();
    h.get_by_role_and_label(Role::Button, "終了する").click();
    h.run();
    assert_eq!(
        backend.calls(),
        vec![Call::Process(ProcAction::Terminate, vec![400])]
    );
    assert!(h.query_by_label("「tool」を終了しますか?").is_none());
}

#[test]
fn report_consult_and_copy_reach_the_backend() {
    let backend = RecordingBackend::new();
    let mut h = harness(Lang::Ja, &backend);
    let mut script = Script::new(home_sample());
    feed(&mut h, script.tick());
    row(&h, "tool").click();
    h.run();
    h.get_by_role_and_label(Role::Button, "報告書を作る")
        .click();
    h.run();
    // The saved report is shown in the details pane with what to do next.
    h.get_by_label("報告書を保存しました:");
    h.get_by_label("/reports/tool.md");
    h.get_by_role_and_label(Role::Button, "フォルダーを開く");
    // The details pane's button (the title bar has a general one too)
    // opens the walk-through about this program.
    h.get_all_by_role_and_label(Role::Button, "相談する")
        .last()
        .unwrap()
        .click();
    h.run();
    let key = ProgramKey::Exe("/tmp/.cache/tool".into());
    assert_eq!(
        backend.calls(),
        vec![Call::Report(key.clone(), ReportRequest::default())]
    );
    let wizard = h.state().state.wizard.clone().unwrap();
    assert_eq!(wizard.program, Some(key));
    h.get_by_role_and_label(Role::Button, "閉じる").click();
    h.run();
    assert!(h.state().state.wizard.is_none());
    h.get_by_label("詳しい情報").click();
    h.run();
    h.get_by_role_and_label(Role::Button, "コピー").click();
    h.run();
    assert_eq!(h.state().copied(), [TOOL_SHA.to_string()]);
}

#[test]
fn hostile_names_are_shown_escaped() {
    let backend = RecordingBackend::new();
    let mut h = harness(Lang::En, &backend);
    let mut evil = RawProcess::fake(500, "/tmp/invoice\u{202E}fdp.exe");
    evil.cmdline = vec!["/tmp/x".into(), "a\nb".into()];
    let mut script = Script::new(RawSample::of(vec![evil], vec![]));
    feed(&mut h, script.tick());
    row(&h, "invoice\\u{202E}fdp.exe").click();
    h.run();
    h.get_by_label("Details").click();
    h.run();
    assert!(h.query_by_label("/tmp/x a\\nb").is_some());
    assert!(h.query_by_label_contains("\u{202E}").is_none());
}

#[test]
fn stale_snapshots_are_dropped() {
    let backend = RecordingBackend::new();
    let mut h = harness(Lang::En, &backend);
    let mut script = Script::new(home_sample());
    let old = script.tick();
    script.probe.push(RawSample::of(
        vec![RawProcess::fake(9, "/usr/bin/newer")],
        vec![],
    ));
    let new = script.tick();
    let new_generation = new.generation;
    feed(&mut h, new);
    feed(&mut h, old);
    assert_eq!(h.state().state.snapshot.generation, new_generation);
    row(&h, "newer");
    // sshd had no connections: the newer picture no longer lists it.
    assert!(h.query_by_role_and_label(Role::Button, "sshd").is_none());
}

#[test]
fn ten_thousand_connections_stay_smooth() {
    let backend = RecordingBackend::new();
    let mut h = harness(Lang::Ja, &backend);
    let sockets: Vec<RawSocket> = (0..10_000u32)
        .map(|i| {
            RawSocket::tcp(
                700,
                &format!("10.0.0.2:{}", 20_000 + i),
                &format!("198.51.{}.{}:443", i / 250, i % 250),
            )
        })
        .collect();
    let mut script = Script::new(RawSample::of(
        vec![RawProcess::fake(700, "/usr/bin/busy")],
        sockets,
    ));
    let snap = script.tick();
    assert_eq!(snap.programs[0].connections.len(), 10_000);
    feed(&mut h, snap);
    row(&h, "busy").click();
    h.run();
    assert!(
        h.query_by_label("通信 (いま 10000 件 / 記録 10000 件)")
            .is_some()
    );
    assert!(
        h.query_by_label("10.0.0.2:20000").is_some(),
        "first rows drawn"
    );
    assert!(
        h.query_by_label("10.0.0.2:29999").is_none(),
        "rows out of sight are not laid out"
    );
    // Frames while the table is open: each one redraws the list and table.
    let frames = 20;
    let start = Instant::now();
    for _ in 0..frames {
        h.step();
    }
    let per_frame = start.elapsed() / frames;
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("10,000 connections: {per_frame:?} per frame ({build} build)");
    assert!(
        per_frame < Duration::from_millis(500),
        "a frame took {per_frame:?}"
    );
}

#[test]
fn connections_say_whom_by_name_and_where() {
    let backend = RecordingBackend::new();
    let mut h = harness(Lang::Ja, &backend);
    let mut script = Script::new(home_sample());
    let mut snap = script.tick();
    let firefox = snap
        .programs
        .iter_mut()
        .find(|p| p.name == "firefox")
        .unwrap();
    firefox.connections[0].remote_name = Some(Arc::new(kizuki::names::RemoteName {
        name: "board.example.jp".into(),
        source: kizuki::names::NameSource::Dns,
        seen: firefox.connections[0].first_seen,
    }));
    firefox.connections[1].remote = Some("127.0.0.1:8000".parse().unwrap());
    feed(&mut h, snap);
    row(&h, "firefox").click();
    h.run();
    assert!(h.query_by_label("board.example.jp").is_some(), "name first");
    assert!(h.query_by_label("127.0.0.1:8000 · このPC").is_some());
}
