#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Bytes in the window, and the program list's split on a small screen:
//! the list starts at its intended width and the divider can be dragged;
//! each program's bytes show in its row (or "not counted" when nothing
//! counts them); the details draw a traffic graph; the top talkers are
//! ordered by the last hour.

mod common;

use std::sync::Arc;
use std::time::Duration;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use common::window::{COMMON, SMALL, apply, feed, window};
use kizuki::app::{Command, RecordingBackend};
use kizuki::clock::FakeClock;
use kizuki::i18n::Lang;
use kizuki::identity::FakeHasher;
use kizuki::model::{CaptureMode, RawProcess, RawSample, RawSocket, Snapshot};
use kizuki::monitor::MonitorCore;
use kizuki::probe::FakeProbe;
use kizuki::ui::KizukiApp;

const TOOL: &str = "/home/user/ダウンロード/freetool";

/// freetool, firefox and a quiet daemon; `bytes` gives each program's
/// (sent, received) per connection, `None` for a polling snapshot.
fn snapshot(generation: u64, bytes: Option<[(u64, u64); 3]>) -> Snapshot {
    let probe = FakeProbe::new(vec![RawSample::of(
        vec![
            RawProcess::fake(400, TOOL),
            RawProcess::fake(200, "/usr/bin/firefox"),
            RawProcess::fake(300, "/usr/sbin/quietd"),
        ],
        vec![
            RawSocket::tcp(400, "127.0.0.1:40000", "127.0.0.1:8000"),
            RawSocket::tcp(200, "10.0.0.2:40001", "198.51.100.1:443"),
            RawSocket::tcp(300, "10.0.0.2:40002", "198.51.100.2:443"),
        ],
    )]);
    let mut core = MonitorCore::new(
        Box::new(probe),
        Box::new(FakeHasher::with(&[(TOOL, &"ab".repeat(32))])),
        Arc::new(FakeClock::at_noon()),
        Duration::from_secs(1),
    );
    let mut snap = core.tick().unwrap();
    snap.generation = generation;
    snap.taken_at += Duration::from_secs(generation);
    if let Some(b) = bytes {
        snap.capture_mode = CaptureMode::Ebpf;
        for p in &mut snap.programs {
            let (s, r) = match p.name.as_str() {
                "freetool" => b[0],
                "firefox" => b[1],
                _ => b[2],
            };
            for c in &mut p.connections {
                c.bytes_sent = Some(s);
                c.bytes_received = Some(r);
            }
        }
    }
    snap
}

fn row_rect(h: &Harness<'static, KizukiApp>, name: &str) -> egui::Rect {
    h.get_by_role_and_label(Role::Button, name).rect()
}

/// The list's row width after the window has drawn with no snapshot yet
/// (as the real app does while the first sample is taken).
fn first_width(lang: Lang) -> (Harness<'static, KizukiApp>, f32) {
    let backend = RecordingBackend::new();
    let mut h = window(lang, SMALL, &backend);
    h.run();
    feed(&mut h, snapshot(1, None));
    let w = row_rect(&h, "freetool").max.x;
    (h, w)
}

#[test]
fn the_list_starts_at_its_intended_width_on_a_small_screen() {
    for lang in [Lang::Ja, Lang::En] {
        let (_h, right) = first_width(lang);
        // LIST_WIDTH is 430: the rows end near it (less the scroll bar
        // and margins), not where the first, empty frame's contents did.
        assert!(
            (395.0..=435.0).contains(&right),
            "{lang:?}: the list's rows end at {right}"
        );
    }
}

#[test]
fn the_divider_can_be_dragged_both_ways() {
    let (mut h, right) = first_width(Lang::Ja);
    // The divider sits just right of the list's frame.
    let handle_x = (right..right + 30.0)
        .step_by_f32(1.0)
        .into_iter()
        .find(|x| {
            h.hover_at(egui::pos2(*x, 300.0));
            h.run();
            h.output().platform_output.cursor_icon == egui::CursorIcon::ResizeHorizontal
        })
        .expect("a resize cursor over the divider");
    let drag = |h: &mut Harness<'static, KizukiApp>, from: f32, to: f32| {
        h.hover_at(egui::pos2(from, 300.0));
        h.run();
        h.drag_at(egui::pos2(from, 300.0));
        h.run();
        for x in [from + (to - from) / 2.0, to] {
            h.hover_at(egui::pos2(x, 300.0));
            h.run();
        }
        h.drop_at(egui::pos2(to, 300.0));
        h.run();
        h.remove_cursor();
        h.run();
    };
    drag(&mut h, handle_x, handle_x + 150.0);
    let wider = row_rect(&h, "freetool").max.x;
    assert!(wider > right + 100.0, "dragged right: {right} → {wider}");
    drag(&mut h, wider + (handle_x - right), wider - 200.0);
    let narrower = row_rect(&h, "freetool").max.x;
    assert!(
        narrower < wider - 100.0,
        "dragged left: {wider} → {narrower}"
    );
}

trait StepBy {
    fn step_by_f32(self, step: f32) -> Vec<f32>;
}

impl StepBy for std::ops::Range<f32> {
    fn step_by_f32(self, step: f32) -> Vec<f32> {
        let mut v = Vec::new();
        let mut x = self.start;
        while x < self.end {
            v.push(x);
            x += step;
        }
        v
    }
}

fn has_label(h: &Harness<'static, KizukiApp>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

#[test]
fn each_row_shows_what_its_program_sent_and_received() {
    let backend = RecordingBackend::new();
    let mut h = window(Lang::Ja, SMALL, &backend);
    feed(
        &mut h,
        snapshot(
            1,
            Some([(1_200_000, 34_000), (5_000, 2_500_000_000), (0, 0)]),
        ),
    );
    assert!(has_label(&h, "送信 1.2 MB"), "freetool's sent bytes");
    assert!(has_label(&h, "受信 34 KB"), "freetool's received bytes");
    assert!(has_label(&h, "受信 2.5 GB"), "firefox's received bytes");
    assert!(has_label(&h, "送信 0　受信 0"), "a counted zero is a zero");
    assert!(!has_label(&h, "数えていません"));
    apply(&mut h, Command::SetLang(Lang::En));
    assert!(has_label(&h, "sent 1.2 MB"), "in English too");
    assert!(has_label(&h, "received 2.5 GB"));
}

#[test]
fn without_capture_bytes_are_said_to_be_not_counted_never_zero() {
    for (lang, unknown, zero) in [
        (Lang::Ja, "通信量は数えていません", "送信 0"),
        (Lang::En, "Amounts are not counted", "sent 0"),
    ] {
        let backend = RecordingBackend::new();
        let mut h = window(lang, SMALL, &backend);
        feed(&mut h, snapshot(1, None));
        assert!(has_label(&h, unknown), "{lang:?}: said once above the list");
        assert!(!has_label(&h, zero), "{lang:?}: no made-up zero");
        // The status bar says how connections are seen and what it misses.
        let mode = match lang {
            Lang::Ja => "一定の間隔で確認",
            Lang::En => "Checked every",
        };
        assert!(
            has_label(&h, mode),
            "{lang:?}: capture mode in the status bar"
        );
        h.get_by_role_and_label(Role::Button, "freetool").click();
        h.run();
        let tab = match lang {
            Lang::Ja => "通信量",
            Lang::En => "Traffic",
        };
        h.get_by_role_and_label(Role::Button, tab).click();
        h.run();
        assert!(
            has_label(&h, unknown),
            "{lang:?}: the traffic tab says it too"
        );
    }
}

#[test]
fn the_details_draw_a_graph_of_the_last_hour_and_day() {
    let backend = RecordingBackend::new();
    let mut h = window(Lang::Ja, COMMON, &backend);
    feed(&mut h, snapshot(1, Some([(1_000, 10), (5, 5), (0, 0)])));
    feed(&mut h, snapshot(2, Some([(90_000, 10), (5, 5), (0, 0)])));
    h.get_by_role_and_label(Role::Button, "freetool").click();
    h.run();
    h.get_by_role_and_label(Role::Button, "通信量").click();
    h.run();
    let hour = h.get_by_role_and_label(Role::Image, "この1時間の通信量のグラフ");
    let day = h.get_by_role_and_label(Role::Image, "この1日の通信量のグラフ");
    assert!(hour.rect().width() > 200.0 && hour.rect().height() > 40.0);
    assert!(day.rect().width() > 200.0);
    assert!(
        has_label(&h, "送信 90 KB"),
        "the hour's totals beside the graph"
    );
}

#[test]
fn top_talkers_are_ordered_by_bytes_in_the_last_hour() {
    let backend = RecordingBackend::new();
    let mut h = window(Lang::Ja, SMALL, &backend);
    feed(
        &mut h,
        snapshot(1, Some([(3_000_000, 0), (10_000, 20_000), (0, 0)])),
    );
    h.get_by_role_and_label(Role::Button, "通信量の多い順")
        .click();
    h.run();
    let first = h.get_by_role_and_label(Role::Button, "1. freetool").rect();
    let second = h.get_by_role_and_label(Role::Button, "2. firefox").rect();
    assert!(first.min.y < second.min.y, "the most first");
    assert!(
        h.query_all_by_label_contains("3. ").next().is_none(),
        "a program that moved nothing is left out"
    );
    // A click opens that program's details.
    h.get_by_role_and_label(Role::Button, "2. firefox").click();
    h.run();
    let st = &h.state().state;
    let chosen = st
        .snapshot
        .programs
        .iter()
        .find(|p| Some(&p.key) == st.selected.as_ref());
    assert_eq!(chosen.map(|p| p.name.as_str()), Some("firefox"));
}

#[test]
fn with_bytes_the_tabs_and_graph_fit_a_small_screen_in_both_languages() {
    for (lang, tab, about) in [
        (Lang::Ja, "通信量", "過去の通信"),
        (Lang::En, "Traffic", "Past connections"),
    ] {
        let backend = RecordingBackend::new();
        let mut h = window(lang, SMALL, &backend);
        feed(
            &mut h,
            snapshot(1, Some([(1_200_000, 34_000), (5, 5), (0, 0)])),
        );
        h.get_by_role_and_label(Role::Button, "freetool").click();
        h.run();
        let inside = |r: egui::Rect| r.min.x >= 0.0 && r.max.x <= SMALL.x && r.max.y <= SMALL.y;
        for label in [tab, about] {
            let r = h.get_by_role_and_label(Role::Button, label).rect();
            assert!(inside(r), "{lang:?}: tab {label:?} at {r:?} is cut");
        }
        h.get_by_role_and_label(Role::Button, tab).click();
        h.run();
        let graph = match lang {
            Lang::Ja => "この1時間の通信量のグラフ",
            Lang::En => "Traffic graph, last hour",
        };
        let r = h.get_by_role_and_label(Role::Image, graph).rect();
        assert!(inside(r), "{lang:?}: the graph at {r:?} is cut");
        // The list row's amounts are inside the list, not under the details.
        let row = row_rect(&h, "freetool");
        let amounts = h
            .query_all_by_label_contains("1.2 MB")
            .next()
            .unwrap()
            .rect();
        assert!(amounts.max.y <= row.max.y + 1.0 && amounts.min.x >= row.min.x);
    }
}
