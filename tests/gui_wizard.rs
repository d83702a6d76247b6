#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The "相談する" walk-through and the report box, driven like a user
//! would: by accessible labels, no display. Nothing is launched: links
//! and folders reach a recording opener or the recording backend.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use kizuki::app::native::NativeBackend;
use kizuki::app::{AppState, Backend, Call, Command, ProcAction, RecordingBackend, ReportRequest};
use kizuki::clock::FakeClock;
use kizuki::consult::RecordingOpener;
use kizuki::i18n::Lang;
use kizuki::marks::MarkStore;
use kizuki::model::{Finding, FindingKind, ProgramKey, Severity, Snapshot};
use kizuki::ui::KizukiApp;
use kizuki::ui::save_dialog::FakeSaveDialog;

mod common;

use common::{TOOL, TOOL_SHA};
/// The lasting banner while all traffic is stopped (tray, top bar and
/// walk-through share it).
const PANIC_BANNER: &str = "通信を全部止めています (このパソコンの中の通信は除く)。元に戻すには「通信を再開」を押してください。";
const IPA: &str = "IPA 情報セキュリティ安心相談窓口";
const IPA_PHONE: &str = "03-5978-7509";

fn tool_key() -> ProgramKey {
    ProgramKey::Exe(TOOL.into())
}

/// One snapshot of a home PC where a "free tool" in a cache folder
/// talks to a server; `raised` marks its high finding as new.
fn snapshot(generation_ticks: usize, raised: bool) -> Snapshot {
    let clock = Arc::new(FakeClock::at_noon());
    let mut core = common::home_pc(clock.clone());
    let mut snap = core.tick().unwrap();
    for _ in 1..generation_ticks {
        clock.advance(Duration::from_secs(1));
        snap = core.tick().unwrap();
    }
    for p in &mut snap.programs {
        if p.key == tool_key() {
            p.findings.push(Finding {
                kind: FindingKind::RunsFromTemp,
                severity: Severity::High,
                summary: "一時フォルダから動いています".into(),
                evidence: Default::default(),
                first_raised: snap.taken_at,
            });
        }
    }
    if raised {
        snap.newly_raised = vec![(tool_key(), FindingKind::RunsFromTemp)];
    }
    snap
}

fn harness_with(lang: Lang, backend: Box<dyn Backend>) -> Harness<'static, KizukiApp> {
    harness_app(KizukiApp::new(AppState::new(lang), backend))
}

fn harness_app(app: KizukiApp) -> Harness<'static, KizukiApp> {
    Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .with_context_setup(kizuki::ui::setup_context)
        .build_ui_state(|ui, app: &mut KizukiApp| app.show(ui), app)
}

fn apply(h: &mut Harness<'static, KizukiApp>, cmd: Command) {
    let ctx = h.ctx.clone();
    h.state_mut().apply(&ctx, cmd);
    h.run();
}

fn feed(h: &mut Harness<'static, KizukiApp>, snap: Snapshot) {
    apply(h, Command::NewSnapshot(Arc::new(snap)));
}

fn click_button(h: &mut Harness<'static, KizukiApp>, label: &str) {
    h.get_by_role_and_label(Role::Button, label).click();
    h.run();
}

/// The report box shows in the details pane too (behind the dialog): the
/// dialog's copy is the one drawn last.
fn click_in_dialog(h: &mut Harness<'static, KizukiApp>, label: &str) {
    h.get_all_by_role_and_label(Role::Button, label)
        .last()
        .unwrap()
        .click();
    h.run();
}

fn shown(h: &Harness<'static, KizukiApp>, label: &str) -> bool {
    h.query_all_by_label(label).next().is_some()
}

/// Opens the walk-through about the tool from its details pane.
fn open_about_tool(h: &mut Harness<'static, KizukiApp>) {
    h.get_by_role_and_label(Role::Button, "tool").click();
    h.run();
    h.get_all_by_role_and_label(Role::Button, "相談する")
        .last()
        .unwrap()
        .click();
    h.run();
    let w = h
        .state()
        .state
        .wizard
        .clone()
        .expect("the walk-through is open");
    assert_eq!(w.program, Some(tool_key()));
}

fn go_to_step(h: &mut Harness<'static, KizukiApp>, n: usize) {
    while h.state().state.wizard.as_ref().unwrap().step + 1 < n {
        click_button(h, "次へ");
    }
}

fn step_title(h: &Harness<'static, KizukiApp>, title: &str) {
    h.get_by_label(title);
}

#[test]
fn walk_through_all_six_steps_shows_ipa_and_the_fake_call_warning() {
    let backend = RecordingBackend::new();
    let mut h = harness_with(Lang::Ja, Box::new(backend.clone()));
    click_button(&mut h, "相談する");
    h.get_by_label("ステップ 1 / 6");
    step_title(&h, "1. 被害を広げず、証拠を残す");
    h.get_by_label_contains("パソコンの電源は切らないでください");
    h.get_by_label_contains("LAN ケーブルをパソコンから抜くか");
    h.get_by_role_and_label(Role::Button, "ネットワークを切る (緊急停止)");
    assert!(
        h.query_by_role_and_label(Role::Button, "戻る")
            .unwrap()
            .accesskit_node()
            .is_disabled()
    );

    click_button(&mut h, "次へ");
    h.get_by_label("ステップ 2 / 6");
    step_title(&h, "2. 報告書を保存する");
    h.get_by_label("プログラムのファイルも証拠として保存する");

    click_button(&mut h, "次へ");
    step_title(&h, "3. ウイルス対策ソフトで調べる");

    click_button(&mut h, "次へ");
    step_title(&h, "4. IPA の安心相談窓口に相談する");
    h.get_by_label(IPA);
    h.get_by_role_and_label(Role::Link, IPA_PHONE);
    h.get_by_role_and_label(Role::Link, "anshin@ipa.go.jp");
    h.get_by_role_and_label(
        Role::Link,
        "https://www.ipa.go.jp/security/anshin/about.html",
    );
    h.get_by_label("ニセの電話にご注意");
    h.get_by_label_contains("IPA (情報処理推進機構) が電話をかけてきて");
    h.get_by_label_contains("そのような電話は詐欺です");
    h.get_by_label_contains("平日 10:00-12:00");
    // The hours are not confirmed, the phone number is.
    assert_eq!(h.query_all_by_label("(未確認)").count(), 1);
    h.get_by_label_contains("調査・修理や犯人の特定は行いません");
    h.get_by_label("相談の前に用意しておくこと");
    h.get_by_label_contains("2026-11-25 時点");

    click_button(&mut h, "次へ");
    step_title(&h, "5. 犯罪に使われた・脅された・お金を払ったとき");
    for number in ["#9110", "110", "188"] {
        h.get_by_role_and_label(Role::Link, number);
    }
    h.get_by_label("警察庁 サイバー事案の通報・相談 オンライン受付");

    click_button(&mut h, "次へ");
    h.get_by_label("ステップ 6 / 6");
    step_title(&h, "6. あとで: パスワードを変える");
    h.get_by_label_contains("別の安全な機器で");
    assert!(h.query_by_role_and_label(Role::Button, "次へ").is_none());
    click_button(&mut h, "閉じる");
    assert!(h.state().state.wizard.is_none());
    assert!(backend.calls().is_empty(), "walking touches nothing");
}

#[test]
fn the_walk_through_reads_in_english_too() {
    let backend = RecordingBackend::new();
    let mut h = harness_with(Lang::Ja, Box::new(backend));
    click_button(&mut h, "相談する");
    // The switch inside the dialog (the title bar has one as well).
    h.get_all_by_label("English").last().unwrap().click();
    h.run();
    h.get_by_label("Step 1 of 6");
    h.get_by_label_contains("Do not turn the PC off");
    h.get_by_role_and_label(Role::Button, "Next");
    h.get_by_label("4 Ask IPA").click();
    h.run();
    h.get_by_label("IPA Information Security Safety Consultation Desk");
    h.get_by_role_and_label(Role::Link, IPA_PHONE);
    h.get_by_label_contains("IPA never phones you");
    h.get_by_label("(unconfirmed)");
}

#[test]
fn phone_and_mail_links_reach_the_opener_with_a_prefilled_mail() {
    let dir = tempfile::tempdir().unwrap();
    let marks = Arc::new(MarkStore::open(dir.path(), Arc::new(FakeClock::at_noon())));
    let opener = Arc::new(RecordingOpener::default());
    let backend = NativeBackend::new(Some(dir.path().to_path_buf()), marks, None)
        .with_opener(Box::new(opener.clone()));
    let mut h = harness_with(Lang::Ja, Box::new(backend));
    feed(&mut h, snapshot(1, false));
    open_about_tool(&mut h);
    go_to_step(&mut h, 4);

    // Few computers can place a call: the number is copied, and said so.
    h.get_by_role_and_label(Role::Link, IPA_PHONE).click();
    h.run();
    assert!(opener.opened().is_empty(), "no phone handler is tried");
    assert_eq!(h.state().copied(), ["0359787509".to_string()]);
    h.get_by_label_contains("おかけください");

    h.get_by_role_and_label(Role::Link, "anshin@ipa.go.jp")
        .click();
    h.run();
    let mail = opener.opened()[0].to_string_lossy().into_owned();
    // 不審 (U+4E0D U+5BE9) starts the subject, percent-encoded UTF-8.
    assert!(
        mail.starts_with("mailto:anshin@ipa.go.jp?subject=%E4%B8%8D%E5%AF%A9"),
        "{mail}"
    );
    assert!(mail.contains("&body="), "{mail}");
    assert!(
        mail.contains(TOOL_SHA),
        "the summary holds the hash: {mail}"
    );
    assert!(
        mail.contains("203.0.113.7%3A8080"),
        "and whom it talked to: {mail}"
    );
    assert!(mail.contains("%0D%0A"), "line breaks are CRLF: {mail}");
    assert!(mail.is_ascii() && !mail.contains(' '), "{mail}");

    // The checklist is filled from the report.
    h.get_by_label_contains(&format!("ファイルの指紋 (SHA-256): {TOOL_SHA}"));
    h.get_by_label_contains("通信先: 203.0.113.7:8080");

    // And every number can be copied instead.
    h.get_all_by_role_and_label(Role::Button, "コピー")
        .next()
        .unwrap()
        .click();
    h.run();
    assert_eq!(
        h.state().copied(),
        ["0359787509".to_string(), IPA_PHONE.to_string()]
    );
    assert_eq!(opener.opened().len(), 1, "copying opens nothing");
    // Said inside the dialog (the window's notices wait behind it).
    assert_eq!(
        h.query_all_by_label("クリップボードにコピーしました。")
            .count(),
        1
    );
}

#[test]
fn panic_and_suspend_reach_the_backend() {
    let backend = RecordingBackend::new();
    let mut h = harness_with(Lang::Ja, Box::new(backend.clone()));
    feed(&mut h, snapshot(1, false));
    open_about_tool(&mut h);
    click_button(&mut h, "ネットワークを切る (緊急停止)");
    assert_eq!(backend.calls(), vec![Call::Panic(true)]);
    h.get_by_label_contains("気づきがすべての通信を止めました");
    // In the window's banners and repeated at the foot of the dialog.
    assert_eq!(h.query_all_by_label(PANIC_BANNER).count(), 2);
    click_button(&mut h, "通信を再開する");
    assert_eq!(backend.calls()[1], Call::Panic(false));
    assert!(h.query_by_label(PANIC_BANNER).is_none());

    click_button(&mut h, "このプログラムを一時停止する");
    h.get_by_label("「tool」を一時停止しますか?");
    click_button(&mut h, "一時停止する");
    assert_eq!(
        backend.calls()[2],
        Call::Process(ProcAction::Suspend, vec![400])
    );
    assert!(
        h.state().state.wizard.is_some(),
        "the walk-through stays open"
    );
}

#[test]
fn report_saved_shows_the_path_and_opens_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let marks = Arc::new(MarkStore::open(dir.path(), Arc::new(FakeClock::at_noon())));
    let opener = Arc::new(RecordingOpener::default());
    let backend = NativeBackend::new(Some(dir.path().to_path_buf()), marks, None)
        .with_opener(Box::new(opener.clone()));
    let mut h = harness_with(Lang::Ja, Box::new(backend));
    feed(&mut h, snapshot(1, false));
    open_about_tool(&mut h);
    go_to_step(&mut h, 2);
    assert!(!shown(&h, "報告書を保存しました:"));
    click_button(&mut h, "報告書を保存");

    let saved = h.state().state.last_report.clone().unwrap();
    let reports = dir.path().join("reports");
    assert!(saved.path.starts_with(&reports), "{:?}", saved.path);
    let text = std::fs::read_to_string(&saved.path).unwrap();
    assert!(text.contains(TOOL_SHA));
    assert!(shown(&h, "報告書を保存しました:"));
    assert!(shown(&h, &saved.path.to_string_lossy()));

    click_in_dialog(&mut h, "フォルダーを開く");
    assert_eq!(opener.opened(), vec![reports.into_os_string()]);

    click_in_dialog(&mut h, "まとめをコピー");
    let copied = h.state().copied().to_vec();
    assert_eq!(copied.len(), 1);
    assert!(copied[0].contains(TOOL_SHA), "{}", copied[0]);
    assert!(copied[0].contains("203.0.113.7"), "{}", copied[0]);
}

#[test]
fn save_as_goes_through_the_dialog_to_the_chosen_file() {
    let backend = RecordingBackend::new();
    let dialog = FakeSaveDialog::answering(vec![Some(PathBuf::from("/media/usb/for-ipa.md"))]);
    let app = KizukiApp::new(AppState::new(Lang::Ja), Box::new(backend.clone()))
        .with_save_dialog(Box::new(dialog.clone()));
    let mut h = harness_app(app);
    feed(&mut h, snapshot(1, false));
    open_about_tool(&mut h);
    go_to_step(&mut h, 2);
    h.get_by_label("プログラムのファイルも証拠として保存する")
        .click();
    h.run();
    click_button(&mut h, "報告書を保存");
    assert!(shown(&h, "/reports/tool.md"));
    click_in_dialog(&mut h, "別の場所に保存…");
    h.run();
    let asked = dialog.asked();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].file_name, "tool.md");
    assert_eq!(asked[0].title, "報告書の保存先を選んでください");
    let with_consent = |out: Option<&str>| ReportRequest {
        out: out.map(PathBuf::from),
        evidence_copy: true,
    };
    assert_eq!(
        backend.calls(),
        vec![
            Call::Report(tool_key(), with_consent(None)),
            Call::Report(tool_key(), with_consent(Some("/media/usb/for-ipa.md"))),
        ]
    );
    assert!(shown(&h, "/media/usb/for-ipa.md"));
    assert!(!h.state().state.save_dialog_open);
}

#[test]
fn a_high_finding_offers_the_walk_through_once() {
    let backend = RecordingBackend::new();
    let mut h = harness_with(Lang::Ja, Box::new(backend));
    feed(&mut h, snapshot(1, false));
    assert!(
        h.query_by_role_and_label(Role::Button, "相談の手順を開く")
            .is_none()
    );
    feed(&mut h, snapshot(2, true));
    h.get_by_label_contains("「tool」に危険な兆候があります");
    assert_eq!(
        h.query_all_by_role_and_label(Role::Button, "相談の手順を開く")
            .count(),
        1
    );
    // Raised again (another kind, a later tick): not offered twice.
    feed(&mut h, snapshot(3, true));
    assert_eq!(
        h.query_all_by_role_and_label(Role::Button, "相談の手順を開く")
            .count(),
        1
    );
    click_button(&mut h, "相談の手順を開く");
    let w = h.state().state.wizard.clone().unwrap();
    assert_eq!(w.program, Some(tool_key()));
    assert!(
        h.query_by_role_and_label(Role::Button, "相談の手順を開く")
            .is_none(),
        "the offer is taken up"
    );
    click_button(&mut h, "閉じる");
    feed(&mut h, snapshot(4, true));
    assert!(
        h.query_by_role_and_label(Role::Button, "相談の手順を開く")
            .is_none()
    );
}

#[test]
fn the_tray_command_opens_the_walk_through() {
    let backend = RecordingBackend::new();
    let mut h = harness_with(Lang::En, Box::new(backend));
    assert!(h.query_by_label("What to do now").is_none());
    apply(&mut h, Command::OpenConsultation(None));
    h.get_by_label("What to do now");
    h.get_by_label("Step 1 of 6");
}
