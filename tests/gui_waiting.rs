#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Marks and the panic button may wait for the administrator's password.
//! The recording backend holds them on its worker thread (as an open
//! password dialog would) until the test answers: the window must keep
//! drawing, say what it waits for, refuse a second click, and show the
//! answer. Widgets are found by their accessible labels.

use std::sync::Arc;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use kizuki::app::{AppState, BackendError, BackgroundCommand, Call, Command, RecordingBackend};
use kizuki::clock::FakeClock;
use kizuki::i18n::Lang;
use kizuki::model::{Mark, Snapshot};
use kizuki::ui::KizukiApp;

mod common;

fn snapshot() -> Snapshot {
    common::home_pc(Arc::new(FakeClock::at_noon()))
        .tick()
        .unwrap()
}

fn harness(lang: Lang, backend: &RecordingBackend) -> Harness<'static, KizukiApp> {
    let app = KizukiApp::new(AppState::new(lang), Box::new(backend.clone()));
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
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

/// Frames drawn while a job is held: the spinner keeps asking for more,
/// so a fixed number are run instead of "until settled". Returns the
/// passes drawn (a frame may take more than one).
fn draw_frames(h: &mut Harness<'static, KizukiApp>) -> u64 {
    let before = h.ctx.cumulative_pass_nr();
    h.run_steps(5);
    h.ctx.cumulative_pass_nr() - before
}

fn disabled(h: &Harness<'static, KizukiApp>, label: &str) -> bool {
    let all: Vec<_> = h.query_all_by_role_and_label(Role::Button, label).collect();
    assert!(!all.is_empty(), "no button {label}");
    all.iter().all(|b| b.accesskit_node().is_disabled())
}

fn select_tool(h: &mut Harness<'static, KizukiApp>) {
    h.get_by_role_and_label(Role::Button, "tool").click();
    h.run();
}

#[test]
fn blocking_waits_for_approval_while_the_window_keeps_drawing() {
    let backend = RecordingBackend::new();
    let gate = backend.hold_jobs();
    let mut h = harness(Lang::Ja, &backend);
    select_tool(&mut h);
    h.get_by_role_and_label(Role::Button, "ブロック").click();

    // The worker sits in "the password dialog"; the window goes on.
    assert!(draw_frames(&mut h) >= 5, "frames go on");
    h.get_by_label("管理者の許可を待っています…");
    h.get_by_label("「tool」を「ブロック中」にしています");
    for label in ["信頼する", "保留", "ブロック"] {
        assert!(disabled(&h, label), "{label} is disabled while waiting");
    }
    // Other parts of the window still answer.
    h.get_by_role_and_label(Role::Button, "firefox").click();
    draw_frames(&mut h);
    assert!(h.query_by_label("198.51.100.1:443").is_some());
    h.get_by_role_and_label(Role::Button, "tool").click();
    draw_frames(&mut h);
    h.get_by_role_and_label(Role::Button, "ブロック").click();
    draw_frames(&mut h);
    assert_eq!(backend.calls().len(), 1, "a second click adds nothing");
    assert!(
        h.query_by_role_and_label(Role::Label, "ブロック中")
            .is_none(),
        "not shown as blocked before it is done"
    );

    assert!(gate.release_to_guard());
    h.run();
    assert!(h.query_by_label("管理者の許可を待っています…").is_none());
    h.get_by_label(
        "「tool」をブロックしました。通信が止まっていることを見張り役サービスが確かめました。",
    );
    assert!(!disabled(&h, "信頼する"));
    assert_eq!(
        h.query_all_by_role_and_label(Role::Label, "ブロック中")
            .count(),
        3,
        "the badge in the list, in the details and in the blocked list"
    );
    let calls = backend.calls();
    let [Call::SetMark(req)] = calls.as_slice() else {
        panic!("one mark call expected, got {calls:?}");
    };
    assert_eq!((req.mark, req.pids.as_slice()), (Mark::Blocked, &[400][..]));
}

#[test]
fn a_cancelled_or_refused_approval_is_explained() {
    let backend = RecordingBackend::new();
    let gate = backend.hold_jobs();
    let mut h = harness(Lang::En, &backend);
    select_tool(&mut h);

    // Cancelled in the password dialog: the guard refuses, nothing is
    // blocked, and the reason is shown.
    backend.guard().lock().refuse = Some(kizuki::guard::api::Refusal::NotAuthorized);
    h.get_by_role_and_label(Role::Button, "Block").click();
    draw_frames(&mut h);
    h.get_by_label("Waiting for administrator approval…");
    assert!(gate.release_to_guard());
    h.run();
    h.get_by_label_contains("Could not block “tool”. The administrator's approval was not given");
    assert!(h.query_by_role_and_label(Role::Label, "Blocked").is_none());

    // Refused outright: nothing changes, and the reason is shown.
    h.get_by_role_and_label(Role::Button, "Trust").click();
    draw_frames(&mut h);
    assert!(disabled(&h, "Block"));
    assert!(gate.release(Err(BackendError::PermissionDenied("Not authorized".into()))));
    h.run();
    h.get_by_label_contains("\"Trust\" was not allowed");
    assert!(
        h.query_by_label("Waiting for administrator approval…")
            .is_none()
    );
    assert!(!disabled(&h, "Block"));
}

#[test]
fn panic_and_resume_wait_in_the_walk_through_and_the_top_bar() {
    let backend = RecordingBackend::new();
    let gate = backend.hold_jobs();
    let mut h = harness(Lang::Ja, &backend);
    select_tool(&mut h);
    h.get_all_by_role_and_label(Role::Button, "相談する")
        .last()
        .unwrap()
        .click();
    h.run();
    h.get_by_role_and_label(Role::Button, "ネットワークを切る (緊急停止)")
        .click();
    assert!(draw_frames(&mut h) >= 5, "frames go on");
    assert!(disabled(&h, "ネットワークを切る (緊急停止)"));
    // In the walk-through, and in the top bar behind it.
    assert_eq!(
        h.query_all_by_label("管理者の許可を待っています…").count(),
        2
    );
    assert!(h.query_all_by_label("すべての通信を止めています").count() >= 1);
    assert!(!h.state().state.background.panic);

    assert!(gate.release_to_guard());
    h.run();
    h.get_by_label_contains("気づきがすべての通信を止めました");
    assert!(h.state().state.background.panic);

    // "Resume" from the tray goes the same way; both resume buttons wait.
    apply(
        &mut h,
        Command::Background(BackgroundCommand::SetPanic(false)),
    );
    draw_frames(&mut h);
    assert!(disabled(&h, "通信を再開する"));
    // The top bar's "通信を再開" waits; the details pane's process
    // buttons do not need the administrator.
    assert!(disabled(&h, "通信を再開"));
    assert!(!disabled(&h, "一時停止"));
    assert!(gate.release_to_guard());
    h.run();
    assert!(h.query_by_label("管理者の許可を待っています…").is_none());
    assert!(
        h.query_by_label("通信を再開").is_none(),
        "traffic flows again: nothing to resume"
    );
    assert!(
        disabled(&h, "再開"),
        "the process one stays, for a suspended program"
    );
    h.get_by_label_contains("通信の緊急停止を解除しました");
    assert_eq!(backend.calls(), vec![Call::Panic(true), Call::Panic(false)]);
}
