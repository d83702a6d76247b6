#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The details pane at the window's default size: every column of the
//! connections table is inside the pane, in Japanese and in English.

use std::sync::Arc;
use std::time::Duration;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use kizuki::app::{AppState, Command, RecordingBackend};
use kizuki::clock::FakeClock;
use kizuki::i18n::Lang;
use kizuki::identity::FakeHasher;
use kizuki::model::{Finding, FindingKind, RawProcess, RawSample, RawSocket, Severity, Snapshot};
use kizuki::monitor::MonitorCore;
use kizuki::probe::FakeProbe;
use kizuki::ui::KizukiApp;

/// The window's default inner size (see `ui::run`).
const WINDOW: egui::Vec2 = egui::vec2(1180.0, 760.0);
const TOOL: &str = "/home/user/.cache/updater/tool";

/// A program with long addresses, every socket state and findings whose
/// chips widen the program list.
fn snapshot() -> Snapshot {
    let mut sockets = vec![
        RawSocket::tcp(
            400,
            "[2001:db8:85a3:1234:5678:8a2e:370:7334]:50123",
            "[2001:db8:ffff:eeee:dddd:cccc:bbbb:aaaa]:443",
        ),
        RawSocket::listen(400, "0.0.0.0:5555"),
        RawSocket::udp(400, "0.0.0.0:5353"),
    ];
    for i in 0..40 {
        sockets.push(RawSocket::tcp(
            400,
            &format!("192.168.100.200:{}", 40000 + i),
            &format!("203.0.113.{i}:8443"),
        ));
    }
    let probe = FakeProbe::new(vec![RawSample::of(
        vec![RawProcess::fake(400, TOOL)],
        sockets,
    )]);
    let mut core = MonitorCore::new(
        Box::new(probe),
        Box::new(FakeHasher::with(&[(TOOL, &"ab".repeat(32))])),
        Arc::new(FakeClock::at_noon()),
        Duration::from_secs(1),
    );
    let mut snap = core.tick().unwrap();
    for p in &mut snap.programs {
        for (kind, severity) in [
            (FindingKind::RunsFromTemp, Severity::High),
            (FindingKind::Beaconing, Severity::Medium),
        ] {
            p.findings.push(Finding {
                kind,
                severity,
                summary: "…".into(),
                evidence: Default::default(),
                first_raised: snap.taken_at,
            });
        }
    }
    snap
}

/// The tool's details, opened in `first` and then read in `lang` (the
/// list pane's width changes with the language).
fn details_of_tool(first: Lang, lang: Lang) -> Harness<'static, KizukiApp> {
    let app = KizukiApp::new(AppState::new(first), Box::new(RecordingBackend::new()));
    let mut h = Harness::builder()
        .with_size(WINDOW)
        .with_context_setup(kizuki::ui::setup_context)
        .build_ui_state(|ui, app: &mut KizukiApp| app.show(ui), app);
    let ctx = h.ctx.clone();
    h.state_mut()
        .apply(&ctx, Command::NewSnapshot(Arc::new(snapshot())));
    h.run();
    h.get_by_role_and_label(Role::Button, "tool").click();
    h.run();
    let ctx = h.ctx.clone();
    h.state_mut().apply(&ctx, Command::SetLang(lang));
    h.run();
    h
}

/// The right edge of the details pane's content (the central panel's
/// inner margin is 8 px).
const PANE_RIGHT: f32 = WINDOW.x - 8.0;

fn every_column_fits(first: Lang, lang: Lang, headers: [&str; 6]) {
    let h = details_of_tool(first, lang);
    let mut last_right = 0.0;
    for label in headers {
        // The list has a "State" column too: the details pane is drawn after it.
        let r = h.query_all_by_label(label).last().expect(label).rect();
        assert!(
            r.max.x <= PANE_RIGHT && r.min.x >= last_right,
            "{lang:?}: header {label:?} at {r:?} is outside the pane (right edge {PANE_RIGHT})"
        );
        last_right = r.max.x;
    }
    // The times in the last column are whole, not cut at the edge nor
    // under the (floating, 10 px) scroll bar.
    let times: Vec<egui::Rect> = h.query_all_by_label("12:00:00").map(|n| n.rect()).collect();
    assert!(times.len() >= 2, "{lang:?}: times shown");
    for r in times {
        assert!(
            r.max.x <= PANE_RIGHT - 10.0,
            "{lang:?}: a time at {r:?} is cut"
        );
    }
}

const EN: [&str; 6] = [
    "Type",
    "This computer",
    "Other side",
    "State",
    "First",
    "Last",
];
const JA: [&str; 6] = ["種類", "このパソコン側", "相手", "状態", "最初", "最後"];

#[test]
fn connections_table_fits_the_default_window_in_english() {
    every_column_fits(Lang::En, Lang::En, EN);
    // The English list is wider: the table follows the narrower pane.
    every_column_fits(Lang::Ja, Lang::En, EN);
}

#[test]
fn connections_table_fits_the_default_window_in_japanese() {
    every_column_fits(Lang::Ja, Lang::Ja, JA);
    every_column_fits(Lang::En, Lang::Ja, JA);
}
