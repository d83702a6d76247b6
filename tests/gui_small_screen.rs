#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A 1024×600 laptop screen, in Japanese and in English, with two
//! notices open: no column header or button is cut or off the window,
//! and several connection rows stay in sight.

mod common;

use std::sync::Arc;
use std::time::Duration;

use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable};

use common::window::{SMALL, feed, window};
use kizuki::app::{BannerLevel, Message, RecordingBackend};
use kizuki::clock::FakeClock;
use kizuki::i18n::Lang;
use kizuki::identity::FakeHasher;
use kizuki::model::{Finding, FindingKind, RawProcess, RawSample, RawSocket, Severity, Snapshot};
use kizuki::monitor::MonitorCore;
use kizuki::probe::FakeProbe;

const TOOL: &str = "/home/user/ダウンロード/freetool";

/// The planted program with long addresses and two findings, beside a
/// browser.
fn snapshot() -> Snapshot {
    let mut sockets = vec![RawSocket::tcp(
        400,
        "[2001:db8:85a3:1234:5678:8a2e:370:7334]:50123",
        "[2001:db8:ffff:eeee:dddd:cccc:bbbb:aaaa]:443",
    )];
    for i in 0..20 {
        sockets.push(RawSocket::tcp(
            400,
            &format!("192.168.100.200:{}", 40000 + i),
            "127.0.0.1:8000",
        ));
    }
    sockets.push(RawSocket::tcp(200, "10.0.0.2:40001", "198.51.100.1:443"));
    let probe = FakeProbe::new(vec![RawSample::of(
        vec![
            RawProcess::fake(400, TOOL),
            RawProcess::fake(200, "/usr/bin/firefox"),
        ],
        sockets,
    )]);
    let mut core = MonitorCore::new(
        Box::new(probe),
        Box::new(FakeHasher::with(&[(TOOL, &"ab".repeat(32))])),
        Arc::new(FakeClock::at_noon()),
        Duration::from_secs(1),
    );
    let mut snap = core.tick().unwrap();
    for p in snap.programs.iter_mut().filter(|p| p.name == "freetool") {
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

fn nothing_is_cut(lang: Lang, headers: [&str; 6], buttons: &[&str], close: &str) {
    let backend = RecordingBackend::new();
    let mut h = window(lang, SMALL, &backend);
    feed(&mut h, snapshot());
    h.get_by_role_and_label(Role::Button, "freetool").click();
    h.run();
    for action in ["gui.action.block", "gui.action.report"] {
        h.state_mut().state.push_notice_detail(
            BannerLevel::Error,
            Message::new("gui.err.failed").arg("action_key", action),
            "pkexec: Error executing command as another user: Not authorized",
        );
    }
    h.run();
    let inside = |r: egui::Rect| r.min.x >= 0.0 && r.max.x <= SMALL.x && r.max.y <= SMALL.y;
    // The table's headers: in the window, in order, none over the next.
    let mut right = 0.0;
    for label in headers {
        let r = h.query_all_by_label(label).last().expect(label).rect();
        assert!(
            inside(r) && r.min.x >= right,
            "{lang:?}: header {label:?} at {r:?} is cut"
        );
        right = r.max.x;
    }
    // Every action button whole and inside the window.
    for label in buttons {
        for n in h.query_all_by_role_and_label(Role::Button, label) {
            let r = n.rect();
            assert!(
                inside(r),
                "{lang:?}: button {label:?} at {r:?} is off the window"
            );
        }
    }
    // Both notices can be closed, and connection rows stay in sight
    // above them.
    let closes: Vec<egui::Rect> = h
        .query_all_by_role_and_label(Role::Button, close)
        .map(|n| n.rect())
        .collect();
    assert_eq!(closes.len(), 2);
    assert!(closes.iter().all(|r| inside(*r)));
    let notices_top = closes.iter().map(|r| r.min.y).fold(f32::MAX, f32::min) - 8.0;
    let header_bottom = h
        .query_all_by_label(headers[5])
        .last()
        .unwrap()
        .rect()
        .max
        .y;
    let rows = h
        .query_all_by_role(Role::Label)
        .filter(|n| {
            let a = n.accesskit_node();
            let text = a.label().or_else(|| a.value()).unwrap_or_default();
            let r = n.rect();
            text == "12:00:00" && r.min.y >= header_bottom && r.max.y <= notices_top
        })
        .count()
        / 2;
    assert!(rows >= 3, "{lang:?}: only {rows} connection rows in sight");
}

#[test]
fn small_screen_in_japanese() {
    nothing_is_cut(
        Lang::Ja,
        ["種類", "このパソコン側", "相手", "状態", "最初", "最後"],
        &[
            "信頼する",
            "保留",
            "ブロック",
            "一時停止",
            "再開",
            "終了",
            "報告書を作る",
            "相談する",
        ],
        "閉じる",
    );
}

#[test]
fn small_screen_in_english() {
    nothing_is_cut(
        Lang::En,
        [
            "Type",
            "This computer",
            "Other side",
            "State",
            "First",
            "Last",
        ],
        &[
            "Trust",
            "Hold",
            "Block",
            "Suspend",
            "Resume",
            "Terminate",
            "Write report",
            "Get help",
        ],
        "Close",
    );
}
