#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The 過去の通信 tab: the newest connections first, and a sentence saying
//! whose journal they come from (the guard's, which the user's programs
//! cannot edit, or the window's own when no guard runs), and when older
//! ones are not shown.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use common::window::{COMMON, SMALL, feed, window};
use kizuki::app::{Call, History, HistoryRow, HistorySource, RecordingBackend};
use kizuki::clock::FakeClock;
use kizuki::i18n::Lang;
use kizuki::identity::FakeHasher;
use kizuki::model::{ProgramKey, Protocol, RawProcess, RawSample, RawSocket, Snapshot};
use kizuki::monitor::MonitorCore;
use kizuki::probe::FakeProbe;
use kizuki::ui::KizukiApp;

const TOOL: &str = "/home/user/ダウンロード/freetool";

fn snapshot() -> Snapshot {
    let probe = FakeProbe::new(vec![RawSample::of(
        vec![RawProcess::fake(400, TOOL)],
        vec![RawSocket::tcp(400, "10.0.0.2:40000", "203.0.113.5:443")],
    )]);
    let mut core = MonitorCore::new(
        Box::new(probe),
        Box::new(FakeHasher::with(&[(TOOL, &"ab".repeat(32))])),
        Arc::new(FakeClock::at_noon()),
        Duration::from_secs(1),
    );
    core.tick().unwrap()
}

fn row(remote: &str, minutes_ago: u64) -> HistoryRow {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000 - minutes_ago * 60);
    HistoryRow {
        first_seen: t,
        last_seen: t + Duration::from_secs(2),
        pid: Some(400),
        protocol: Protocol::Tcp,
        local: "10.0.0.2:40000".into(),
        remote: Some(remote.into()),
    }
}

fn open_history(
    lang: Lang,
    size: egui::Vec2,
    history: Option<History>,
) -> Harness<'static, KizukiApp> {
    let backend = RecordingBackend::new();
    backend.set_history(history);
    let mut h = window(lang, size, &backend);
    feed(&mut h, snapshot());
    h.get_by_label("freetool").click();
    h.run();
    let (tab, load) = match lang {
        Lang::Ja => ("過去の通信", "記録を読み込む"),
        Lang::En => ("Past connections", "Load history"),
    };
    h.get_by_label(tab).click();
    h.run();
    h.get_by_label(load).click();
    h.run();
    assert!(
        backend
            .calls()
            .contains(&Call::History(ProgramKey::Exe(TOOL.into()))),
        "{:?}",
        backend.calls()
    );
    h
}

fn shows(h: &Harness<'static, KizukiApp>, part: &str) -> bool {
    h.query_by_label_contains(part).is_some()
}

#[test]
fn the_guards_journal_is_shown_newest_first_and_said_to_be_out_of_reach() {
    for size in [SMALL, COMMON] {
        let h = open_history(
            Lang::Ja,
            size,
            Some(History::Rows {
                rows: vec![row("203.0.113.9:443", 1), row("203.0.113.4:443", 90)],
                source: HistorySource::GuardOwn,
                more: true,
            }),
        );
        assert!(shows(&h, "管理用サービスが記録したもの"));
        assert!(shows(&h, "ほかのプログラムは書き換えられません"));
        assert!(shows(&h, "新しいほうから 2 件"));
        let newest = h.get_by_label("203.0.113.9:443").rect();
        let older = h.get_by_label("203.0.113.4:443").rect();
        assert!(newest.top() < older.top(), "newest first");
    }
}

#[test]
fn without_a_guard_the_window_says_the_journal_is_its_own() {
    let h = open_history(
        Lang::En,
        COMMON,
        Some(History::Rows {
            rows: vec![row("203.0.113.9:443", 1)],
            source: HistorySource::Own,
            more: false,
        }),
    );
    assert!(shows(&h, "guard service is not running"));
    assert!(!shows(&h, "Older records exist"));
    let h = open_history(
        Lang::Ja,
        COMMON,
        Some(History::Rows {
            rows: Vec::new(),
            source: HistorySource::GuardAll,
            more: false,
        }),
    );
    assert!(shows(&h, "全員分"));
    assert!(shows(&h, "記録されていません"));
    let h = open_history(Lang::Ja, COMMON, None);
    assert!(shows(&h, "まだありません"));
}
