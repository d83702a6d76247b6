#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A window a frightened home user can trust (issue 21), driven by
//! accessible labels: notices that wrap and close, visible state, the
//! copy fallback, a list that holds still under the mouse, connections
//! newest first, and the smallest screen in both languages.

mod common;

use std::time::{Duration, SystemTime};

use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable};

use common::window::{COMMON, SMALL, apply, feed, window};
use kizuki::app::{BackendError, BannerLevel, Command, ConsultCommand, Message, RecordingBackend};
use kizuki::i18n::Lang;
use kizuki::model::{
    Connection, FindingKind, ProcessInfo, Program, Protocol, Severity, Snapshot, SockState,
};

const NOON: u64 = 1_795_608_000; // 2026-11-24 12:00:00 UTC

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOON + secs)
}

fn conn(port: u16, remote: &str, first: u64) -> Connection {
    Connection {
        pid: Some(400),
        protocol: Protocol::Tcp,
        local: format!("192.168.100.200:{port}").parse().unwrap(),
        remote: Some(remote.parse().unwrap()),
        state: SockState::Established,
        first_seen: at(first),
        last_seen: at(first + 3),
        live: true,
        uid: None,
        remote_name: None,
        bytes_sent: None,
        bytes_received: None,
    }
}

/// A running program `name` (PID `pid`) with these findings.
fn program(name: &str, pid: u32, findings: &[(FindingKind, Severity)]) -> Program {
    let mut p = Program::fake(name, findings);
    p.processes = vec![ProcessInfo {
        parent: Some(1),
        ..ProcessInfo::fake(pid, name)
    }];
    p
}

fn snapshot(generation: u64, programs: Vec<Program>) -> Snapshot {
    let mut s = Snapshot::empty();
    s.generation = generation;
    s.taken_at = at(60);
    s.programs = programs;
    s
}

/// A home PC: a suspicious tool with many connections (ports ascending,
/// times not), a browser, and a mail program.
fn home(generation: u64) -> Snapshot {
    let mut tool = program(
        "tool",
        400,
        &[
            (FindingKind::RunsFromTemp, Severity::High),
            (FindingKind::Beaconing, Severity::Medium),
        ],
    );
    tool.connections = (0..12)
        .map(|i| {
            conn(
                40000 + i,
                "[2001:db8:ffff:eeee:dddd:cccc:bbbb:aaaa]:443",
                (i as u64 * 7) % 12 * 60,
            )
        })
        .collect();
    snapshot(
        generation,
        vec![
            tool,
            program("firefox", 200, &[]),
            program("thunderbird", 300, &[]),
        ],
    )
}

fn select(h: &mut egui_kittest::Harness<'static, kizuki::ui::KizukiApp>, name: &str) {
    h.get_by_role_and_label(Role::Button, name).click();
    h.run();
}

#[test]
fn a_long_error_wraps_inside_the_window_and_closes() {
    let backend = RecordingBackend::new();
    let mut h = window(Lang::Ja, SMALL, &backend);
    feed(&mut h, home(1));
    let before = h.get_by_role_and_label(Role::Button, "firefox").rect();
    let long = "ファイアウォールの設定を変えられませんでした。".repeat(8);
    h.state_mut().state.push_notice_detail(
        BannerLevel::Error,
        Message::new("gui.msg.plain").arg("text", long.clone()),
        "pkexec: Error executing command as another user: Not authorized",
    );
    h.run();
    let text = h.get_by_label(&long).rect();
    let close = h.get_by_role_and_label(Role::Button, "閉じる").rect();
    assert!(text.max.x <= SMALL.x && close.max.x <= SMALL.x, "inside");
    assert!(text.height() > 40.0, "wrapped onto several lines: {text:?}");
    assert!(
        text.max.x <= close.min.x,
        "the text {text:?} runs under 閉じる {close:?}"
    );
    // Nothing in the list moved.
    assert_eq!(
        h.get_by_role_and_label(Role::Button, "firefox").rect(),
        before
    );
    // The technical words are behind 詳細, not in the sentence.
    assert!(h.query_by_label_contains("Not authorized").is_none());
    h.get_by_label("詳細").click();
    h.run();
    assert!(h.query_by_label_contains("Not authorized").is_some());
    h.get_by_role_and_label(Role::Button, "閉じる").click();
    h.run();
    assert!(h.query_by_label(&long).is_none(), "closed");
    assert!(h.state().state.banners.is_empty());
}

#[test]
fn many_notices_show_a_few_and_how_many_more() {
    for (size, shown) in [(COMMON, 3), (SMALL, 2)] {
        let backend = RecordingBackend::new();
        let mut h = window(Lang::Ja, size, &backend);
        feed(&mut h, home(1));
        for i in 0..5 {
            h.state_mut().state.push_banner(
                BannerLevel::Info,
                Message::new("gui.msg.plain").arg("text", format!("お知らせ {i}")),
                true,
            );
        }
        h.run();
        assert_eq!(h.query_all_by_label("閉じる").count(), shown, "{size:?}");
        assert!(h.query_by_label("お知らせ 4").is_some(), "the newest shows");
        assert!(h.query_by_label("お知らせ 0").is_none());
        h.get_by_label(&format!("ほか {} 件のお知らせ", 5 - shown));
        h.get_by_role_and_label(Role::Button, "すべて閉じる")
            .click();
        h.run();
        assert!(h.state().state.banners.is_empty());
    }
}

#[test]
fn a_suspended_program_says_so_and_only_resume_is_enabled() {
    let backend = RecordingBackend::new();
    let mut h = window(Lang::Ja, COMMON, &backend);
    let mut s = home(1);
    s.suspended = vec![400];
    feed(&mut h, s);
    assert!(h.query_by_label("一時停止中").is_some(), "in the row");
    select(&mut h, "tool");
    let disabled = |h: &egui_kittest::Harness<'static, kizuki::ui::KizukiApp>, l: &str| {
        h.get_by_role_and_label(Role::Button, l)
            .accesskit_node()
            .is_disabled()
    };
    assert!(disabled(&h, "一時停止"));
    assert!(!disabled(&h, "再開"));
    // Running again (as the OS reports it): the other way round.
    feed(&mut h, home(2));
    assert!(h.query_by_label("一時停止中").is_none());
    assert!(!disabled(&h, "一時停止"));
    assert!(disabled(&h, "再開"));
}

#[test]
fn an_ended_program_is_marked_ended_and_listed_last() {
    let backend = RecordingBackend::new();
    let mut h = window(Lang::En, COMMON, &backend);
    let mut s = home(1);
    s.programs[0].processes[0].alive = false;
    feed(&mut h, s);
    assert!(h.query_by_label("Ended").is_some(), "in the row");
    let y = |h: &egui_kittest::Harness<'static, kizuki::ui::KizukiApp>, n: &str| {
        h.get_by_role_and_label(Role::Button, n).rect().min.y
    };
    assert!(y(&h, "tool") > y(&h, "thunderbird"), "after running ones");
}

#[test]
fn a_link_that_cannot_open_is_copied_and_said_plainly() {
    let backend = RecordingBackend::new();
    backend.clone().fail_with(Some(BackendError::Failed(
        "Launcher \"gio\" \"open\" \"https://www.ipa.go.jp/\" ExitStatus(unix_wait_status(512))"
            .into(),
    )));
    let mut h = window(Lang::Ja, SMALL, &backend);
    feed(&mut h, home(1));
    apply(
        &mut h,
        Command::Wizard(ConsultCommand::OpenLink("https://www.ipa.go.jp/".into())),
    );
    assert_eq!(h.state().copied(), ["https://www.ipa.go.jp/"]);
    assert!(
        h.query_by_label_contains("クリップボードにコピー")
            .is_some()
    );
    assert!(
        h.query_by_label_contains("ExitStatus").is_none(),
        "no developer text"
    );
    // Switching the language rewords it: no Japanese left in English.
    apply(&mut h, Command::SetLang(Lang::En));
    assert!(
        h.query_by_label_contains("copied to the clipboard")
            .is_some()
    );
    assert!(h.query_by_label_contains("クリップボード").is_none());
}

#[test]
fn the_list_holds_still_under_the_mouse() {
    let backend = RecordingBackend::new();
    let mut h = window(Lang::Ja, COMMON, &backend);
    feed(&mut h, home(1));
    let y = |h: &egui_kittest::Harness<'static, kizuki::ui::KizukiApp>, n: &str| {
        h.get_by_role_and_label(Role::Button, n).rect().min.y
    };
    let thunderbird = y(&h, "thunderbird");
    h.get_by_role_and_label(Role::Button, "thunderbird").hover();
    h.run();
    // Thunderbird now needs attention most: it would move to the top.
    let mut s = home(2);
    s.programs[2]
        .findings
        .extend(Program::fake("x", &[(FindingKind::Tor, Severity::High)]).findings);
    s.programs[0].findings.clear();
    feed(&mut h, s.clone());
    assert_eq!(y(&h, "thunderbird"), thunderbird, "moved under the mouse");
    // The mouse leaves: the order catches up.
    h.get_by_label("並び順:").hover();
    h.run();
    feed(&mut h, {
        s.generation = 3;
        s
    });
    assert!(y(&h, "thunderbird") < y(&h, "firefox"), "now first");
}

#[test]
fn connections_are_newest_first_and_sortable_by_time() {
    let backend = RecordingBackend::new();
    let mut h = window(Lang::En, COMMON, &backend);
    feed(&mut h, home(1));
    select(&mut h, "tool");
    let times = |h: &egui_kittest::Harness<'static, kizuki::ui::KizukiApp>| -> Vec<String> {
        let mut t: Vec<(f32, String)> = h
            .query_all_by_role(Role::Label)
            .filter_map(|n| {
                let a = n.accesskit_node();
                let l = a.label().or_else(|| a.value())?;
                let ok = l.len() == 8 && l.as_bytes()[2] == b':' && n.rect().min.x > 700.0;
                ok.then(|| (n.rect().min.y, n.rect().min.x, l))
            })
            .map(|(y, x, l)| (y + x / 10_000.0, l))
            .collect();
        // By row, the First column before the Last one; one per row.
        t.sort_by(|a, b| a.0.total_cmp(&b.0));
        t.dedup_by(|a, b| a.0.floor() == b.0.floor());
        t.into_iter().map(|x| x.1).collect()
    };
    let first: Vec<String> = times(&h);
    assert!(first.len() >= 6, "{first:?}");
    let mut sorted = first.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(first, sorted, "newest first");
    h.get_by_role_and_label(Role::Button, "First").click();
    h.run();
    let again = times(&h);
    let mut up = again.clone();
    up.sort();
    assert_eq!(again, up, "oldest first after a click");
}
