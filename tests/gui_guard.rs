#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The window tells the truth about the guard service: 「ブロック中」 and
//! the panic banner only from what the (fake) guard reads back; refusals
//! and failures explained in a notice that wraps and can be closed; no
//! guard said once, with the buttons that need it disabled; the blocked
//! programs listed (also ones not running), each with 解除.

use std::path::PathBuf;
use std::sync::Arc;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use kizuki::app::{AppState, BackgroundCommand, Command, RecordingBackend};
use kizuki::clock::FakeClock;
use kizuki::guard::api::{Authority, BlockStatus, Refusal, Request};
use kizuki::i18n::Lang;
use kizuki::model::Snapshot;
use kizuki::ui::KizukiApp;

mod common;

const WIDTH: f32 = 1000.0;

fn snapshot() -> Snapshot {
    common::home_pc(Arc::new(FakeClock::at_noon()))
        .tick()
        .unwrap()
}

fn harness(lang: Lang, backend: &RecordingBackend) -> Harness<'static, KizukiApp> {
    let app = KizukiApp::new(AppState::new(lang), Box::new(backend.clone()));
    let mut h = Harness::builder()
        .with_size(egui::vec2(WIDTH, 760.0))
        .with_context_setup(kizuki::ui::setup_context)
        .build_ui_state(|ui, app: &mut KizukiApp| app.show(ui), app);
    apply(&mut h, Command::NewSnapshot(Arc::new(snapshot())));
    h.run();
    h
}

fn apply(h: &mut Harness<'static, KizukiApp>, cmd: Command) {
    let ctx = h.ctx.clone();
    h.state_mut().apply(&ctx, cmd);
}

fn select_tool(h: &mut Harness<'static, KizukiApp>) {
    h.get_by_role_and_label(Role::Button, "tool").click();
    h.run();
}

fn disabled(h: &Harness<'static, KizukiApp>, label: &str) -> bool {
    let all: Vec<_> = h.query_all_by_role_and_label(Role::Button, label).collect();
    assert!(!all.is_empty(), "no button {label}");
    all.iter().all(|b| b.accesskit_node().is_disabled())
}

fn blocked_badges(h: &Harness<'static, KizukiApp>) -> usize {
    h.query_all_by_role_and_label(Role::Label, "ブロック中")
        .count()
}

const PANIC_BANNER: &str = "通信を全部止めています";

fn block(exe: &str, enforced: bool, running: &[u32]) -> BlockStatus {
    BlockStatus {
        exe: PathBuf::from(exe),
        sha256: "ab".repeat(32),
        since: "2026-11-30T09:00:00Z".into(),
        by_uid: 1000,
        authority: Authority::Polkit,
        enforced,
        pids_blocked: running.to_vec(),
        pids_outside: vec![],
    }
}

/// The notice's text wraps inside the window (more than one line, never
/// wider than the window), and its close button closes it.
fn notice_wraps_and_closes(h: &mut Harness<'static, KizukiApp>, contains: &str, long: bool) {
    let rect = h.get_by_label_contains(contains).rect();
    assert!(rect.right() <= WIDTH, "inside the window: {rect:?}");
    if long {
        assert!(rect.height() > 20.0, "wrapped onto more lines: {rect:?}");
    }
    h.get_by_role_and_label(Role::Button, "閉じる").click();
    h.run();
    assert!(h.query_by_label_contains(contains).is_none());
}

#[test]
fn a_refused_block_shows_no_badge_and_a_notice_that_wraps_and_closes() {
    let backend = RecordingBackend::new();
    backend.guard().lock().refuse = Some(Refusal::NotAuthorized);
    let mut h = harness(Lang::Ja, &backend);
    select_tool(&mut h);
    h.get_by_role_and_label(Role::Button, "ブロック").click();
    h.run();
    assert_eq!(blocked_badges(&h), 0, "nothing is blocked");
    assert!(h.query_by_label_contains("をブロックしました").is_none());
    let text = "「tool」をブロックできませんでした。管理者の承認が得られませんでした";
    h.get_by_label_contains(text);
    assert!(h.query_by_label_contains("guard.").is_none(), "translated");
    notice_wraps_and_closes(&mut h, text, true);
    assert_eq!(
        backend.guard().lock().requests,
        vec![Request::Block {
            exe: common::TOOL.into()
        }]
    );
}

#[test]
fn a_refused_panic_shows_no_banner_and_says_what_to_do() {
    let backend = RecordingBackend::new();
    backend.guard().lock().refuse = Some(Refusal::NoAuthority);
    let mut h = harness(Lang::Ja, &backend);
    apply(
        &mut h,
        Command::Background(BackgroundCommand::SetPanic(true)),
    );
    h.run();
    assert!(h.query_by_label_contains(PANIC_BANNER).is_none());
    assert!(!h.state().state.background.panic);
    let text = "通信を止められませんでした。";
    h.get_by_label_contains(text);
    h.get_by_label_contains("管理者に頼んでください");
    notice_wraps_and_closes(&mut h, text, false);
}

#[test]
fn a_guard_failing_part_way_leaves_the_view_at_the_read_back_state() {
    let backend = RecordingBackend::new();
    {
        let fake = backend.guard();
        let mut g = fake.lock();
        // What the guard read back: the block exists but does not hold.
        g.status.blocked = vec![block(common::TOOL, false, &[400])];
        g.status.table = true;
        g.fail = Some("nft: table busy".into());
    }
    let mut h = harness(Lang::Ja, &backend);
    select_tool(&mut h);
    h.get_by_role_and_label(Role::Button, "ブロック").click();
    h.run();
    assert_eq!(blocked_badges(&h), 0, "not in force: not ブロック中");
    h.get_by_label("ブロックが効いていません");
    h.get_by_label_contains("今は効いていません。このプログラムは通信できる状態です。");
    let text = "見張り役サービスが途中で失敗しました";
    let said = h
        .get_by_label_contains(text)
        .accesskit_node()
        .label()
        .unwrap_or_default()
        .to_string();
    assert!(
        !said.contains("nft"),
        "the tool's words stay behind 詳細: {said}"
    );
    assert!(h.query_by_label_contains("nft: table busy").is_none());
    h.get_by_label("詳細").click();
    h.run();
    h.get_by_label_contains("nft: table busy");
    // Panic fails the same way: no banner.
    apply(
        &mut h,
        Command::Background(BackgroundCommand::SetPanic(true)),
    );
    h.run();
    assert!(h.query_by_label_contains(PANIC_BANNER).is_none());
    // Now the guard holds it: the badge follows what it reads back.
    {
        let fake = backend.guard();
        let mut g = fake.lock();
        g.fail = None;
        g.status.blocked = vec![block(common::TOOL, true, &[400])];
        g.status.panic = true;
    }
    h.run();
    assert_eq!(blocked_badges(&h), 3, "list, details and blocked list");
    h.get_by_label_contains(PANIC_BANNER);
}

#[test]
fn without_a_guard_it_says_so_once_and_the_buttons_say_why() {
    let backend = RecordingBackend::new();
    backend.guard().lock().absent = true;
    let mut h = harness(Lang::Ja, &backend);
    select_tool(&mut h);
    let text = "ブロックと緊急停止には、気づきの見張り役サービス（kizuki guard）が必要です。";
    assert_eq!(h.query_all_by_label_contains(text).count(), 1);
    assert!(disabled(&h, "ブロック"));
    // The reason is the hover text of the disabled button.
    h.get_by_role_and_label(Role::Button, "ブロック").hover();
    h.run();
    h.get_by_label(
        "ブロックするには、気づきの見張り役サービス（kizuki guard）が必要です。パッケージからインストールしてください。",
    );
    // The other marks still work: they are the user's own.
    assert!(!disabled(&h, "信頼する"));
    // Closed, it stays closed: said once.
    h.get_by_role_and_label(Role::Button, "閉じる").click();
    for _ in 0..3 {
        h.run();
    }
    assert_eq!(h.query_all_by_label_contains(text).count(), 0);
    // The panic button in the walk-through says why too.
    h.get_all_by_role_and_label(Role::Button, "相談する")
        .last()
        .unwrap()
        .click();
    h.run();
    assert!(disabled(&h, "ネットワークを切る (緊急停止)"));
    assert!(backend.calls().is_empty(), "nothing was asked");
}

#[test]
fn a_blocked_program_that_is_not_running_is_listed_and_can_be_unblocked() {
    let backend = RecordingBackend::new();
    backend.guard().lock().status.blocked = vec![block("/home/a/ダウンロード/oldtool", true, &[])];
    let mut h = harness(Lang::Ja, &backend);
    h.get_by_label("ブロックしているプログラム（1 個）");
    h.get_by_label("oldtool");
    h.get_by_label("今は動いていません");
    h.get_by_role_and_label(Role::Button, "解除").click();
    h.run();
    assert_eq!(
        backend.guard().lock().requests,
        vec![Request::Unblock {
            exe: "/home/a/ダウンロード/oldtool".into()
        }]
    );
    h.get_by_label("「oldtool」のブロックを解除しました。");
    assert!(h.query_by_label("oldtool").is_none(), "gone from the list");
}

#[test]
fn an_unblock_that_is_refused_keeps_the_program_listed() {
    let backend = RecordingBackend::new();
    {
        let fake = backend.guard();
        let mut g = fake.lock();
        g.status.blocked = vec![block(common::TOOL, true, &[400])];
        g.refuse = Some(Refusal::NotAuthorized);
    }
    let mut h = harness(Lang::En, &backend);
    h.get_by_role_and_label(Role::Button, "Unblock").click();
    h.run();
    h.get_by_label_contains("Could not unblock “tool”.");
    assert_eq!(
        h.query_all_by_role_and_label(Role::Label, "Blocked")
            .count(),
        2,
        "still blocked: in the list and in the blocked list"
    );
}
