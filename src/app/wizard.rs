//! The "相談する" walk-through and the report box: their state, their
//! commands, and how `update` applies them. The steps themselves are data
//! from [`crate::consult::steps`]; this keeps only where the user is and
//! what they did.

use std::path::PathBuf;

use super::backend::{Backend, ReportRequest, SavedReport};
use super::command::{Effect, SaveRequest};
use super::state::{AppState, BannerAction, BannerLevel, Message};
use crate::consult::STEP_IDS;
use crate::escape::{for_display, os_lossless};
use crate::i18n::Lang;
use crate::model::{ProgramKey, Severity};
use crate::report::Report;

/// Number of steps in the walk-through.
pub const STEPS: usize = STEP_IDS.len();

/// The open walk-through.
#[derive(Debug, Clone, PartialEq)]
pub struct Wizard {
    /// 0-based: step `n` shows `consult::steps(..)[n]`.
    pub step: usize,
    /// The program the user is worried about, if one was chosen.
    pub program: Option<ProgramKey>,
    /// What a report about it would say: fills the checklist and e-mails.
    pub preview: Option<Box<Report>>,
    /// Banners from this id on came while the walk-through was open: it
    /// repeats the newest (the window's banners are behind it).
    pub since_banner: u64,
}

/// What the panic button did last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanicState {
    pub on: bool,
    /// `Some(problem)` when it was asked but is not in force; worded
    /// when shown (so it follows the language), detail behind "詳細".
    pub not_enforced: Option<crate::guard::outcome::Problem>,
}

/// What the walk-through and the report box ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsultCommand {
    Next,
    Back,
    /// Jump to a step (0-based).
    GoTo(usize),
    Close,
    /// Change the program the walk-through is about.
    About(Option<ProgramKey>),
    /// The panic button: cut (`true`) or restore (`false`) all traffic.
    Panic(bool),
    SetEvidenceConsent(bool),
    /// Save a report about the walk-through's program.
    SaveReport,
    /// Ask where to save a copy of the last report.
    SaveReportAs,
    /// The save dialog's answer (`None`: cancelled).
    SaveDialogAnswer(Option<PathBuf>),
    /// No save dialog could open (no portal, no zenity): the report stays
    /// in the reports folder, and the user is told where.
    SaveDialogUnavailable,
    OpenReportFolder,
    /// Copy the desk summary of the last report (or of the preview).
    CopySummary,
    /// Open a contact link (`tel:`, `mailto:`, `https:`).
    OpenLink(String),
}

/// Opens the walk-through about `key` (else the selected program).
pub(super) fn open(state: &mut AppState, key: Option<ProgramKey>, backend: &mut dyn Backend) {
    let key = key
        .or_else(|| state.selected.clone())
        .filter(|k| state.snapshot.program(k).is_some());
    // Its offer is taken up: the banner has done its job.
    if let Some(k) = &key {
        state
            .banners
            .retain(|b| b.action.as_ref() != Some(&BannerAction::Consult(k.clone())));
    }
    let (step, since_banner) = state
        .wizard
        .as_ref()
        .map(|w| (w.step, w.since_banner))
        .unwrap_or((0, state.next_banner_id()));
    state.wizard = Some(Wizard {
        step,
        program: None,
        preview: None,
        since_banner,
    });
    about(state, key, backend);
}

/// Points the walk-through at `key` and prepares its report preview.
fn about(state: &mut AppState, key: Option<ProgramKey>, backend: &mut dyn Backend) {
    let snap = state.snapshot.clone();
    let preview = match key.as_ref().and_then(|k| snap.program(k)) {
        None => None,
        Some(p) => match backend.report_preview(p) {
            Ok(r) => Some(Box::new(r)),
            Err(e) => {
                // The steps work without it; the checklist asks instead.
                super::update::failed(state, "wizard.action.prepare", &e);
                None
            }
        },
    };
    if let Some(w) = &mut state.wizard {
        w.program = key;
        w.preview = preview;
    }
}

/// Offers the walk-through, once per program, for each newly raised
/// high finding in the current snapshot.
pub(super) fn offer_for_new_findings(state: &mut AppState) {
    let snap = state.snapshot.clone();
    for (key, kind) in &snap.newly_raised {
        let Some(p) = snap.program(key) else { continue };
        let high = p
            .findings
            .iter()
            .any(|f| f.kind == *kind && f.severity == Severity::High);
        let open_about_it = state
            .wizard
            .as_ref()
            .is_some_and(|w| w.program.as_ref() == Some(key));
        if !high || open_about_it || !state.consult_offered.insert(key.clone()) {
            continue;
        }
        let message = Message::new("wizard.offer.text")
            .arg("name", for_display(&p.name))
            .arg("finding_key", format!("finding.{}.title", kind.as_str()));
        state.push_banner_with(
            BannerLevel::Warning,
            message,
            Some(BannerAction::Consult(key.clone())),
        );
    }
}

/// Applies one walk-through or report-box command.
pub(super) fn apply(
    state: &mut AppState,
    cmd: ConsultCommand,
    backend: &mut dyn Backend,
    effects: &mut Vec<Effect>,
) {
    match cmd {
        ConsultCommand::Next => step_by(state, 1),
        ConsultCommand::Back => step_by(state, -1),
        ConsultCommand::GoTo(n) => {
            if let Some(w) = &mut state.wizard {
                w.step = n.min(STEPS - 1);
            }
        }
        ConsultCommand::Close => state.wizard = None,
        ConsultCommand::About(key) => {
            if state.wizard.is_some() {
                about(state, key, backend);
            }
        }
        ConsultCommand::Panic(on) => super::background::set_panic(state, on, backend),
        ConsultCommand::SetEvidenceConsent(v) => state.evidence_consent = v,
        ConsultCommand::SaveReport => {
            if let Some(key) = state.wizard.as_ref().and_then(|w| w.program.clone()) {
                save(state, &key, None, backend);
            }
        }
        ConsultCommand::SaveReportAs => {
            if let Some(r) = &state.last_report
                && !state.save_dialog_open
            {
                state.save_dialog_open = true;
                effects.push(Effect::AskSavePath(SaveRequest {
                    title: state.t("wizard.report.save_title"),
                    file_name: r
                        .path
                        .file_name()
                        .map(os_lossless)
                        .unwrap_or_else(|| "kizuki-report.md".into()),
                }));
            }
        }
        ConsultCommand::SaveDialogUnavailable => {
            state.save_dialog_open = false;
            if let Some(r) = &state.last_report {
                let shown = for_display(&os_lossless(r.path.as_os_str()));
                state.push_banner(
                    BannerLevel::Warning,
                    Message::new("gui.save.fallback").arg("path", shown),
                    true,
                );
            }
        }
        ConsultCommand::SaveDialogAnswer(answer) => {
            state.save_dialog_open = false;
            if let (Some(path), Some(key)) =
                (answer, state.last_report.as_ref().map(|r| r.key.clone()))
            {
                save(state, &key, Some(path), backend);
            }
        }
        ConsultCommand::OpenReportFolder => {
            if let Some(folder) = state.last_report.as_ref().map(SavedReport::folder) {
                open_target(state, folder.as_os_str(), backend, effects, true);
            }
        }
        ConsultCommand::CopySummary => {
            let report = state
                .last_report
                .as_ref()
                .map(|r| &*r.content)
                .or_else(|| state.wizard.as_ref().and_then(|w| w.preview.as_deref()));
            if let Some(r) = report {
                effects.push(Effect::CopyToClipboard(summary_for_copy(r, state.lang)));
                state.push_banner(BannerLevel::Info, Message::new("gui.msg.copied"), true);
            }
        }
        ConsultCommand::OpenLink(uri) => {
            // Only what the contacts make: never `file:` or a program.
            let lower = uri.to_ascii_lowercase();
            if lower.starts_with("tel:") {
                // Few computers can place a call: copy the number and say
                // so, on every desktop.
                let number = uri["tel:".len()..].to_string();
                effects.push(Effect::CopyToClipboard(number.clone()));
                state.push_banner(
                    BannerLevel::Info,
                    Message::new("gui.open.tel_copied").arg("number", for_display(&number)),
                    true,
                );
            } else if ["mailto:", "https://", "http://"]
                .iter()
                .any(|s| lower.starts_with(s))
            {
                open_target(state, std::ffi::OsStr::new(&uri), backend, effects, false);
            }
        }
    }
}

fn step_by(state: &mut AppState, delta: isize) {
    if let Some(w) = &mut state.wizard {
        w.step = w.step.saturating_add_signed(delta).min(STEPS - 1);
    }
}

/// The desk summary to paste: Japanese (the desks work in Japanese), and
/// the English one too when the user reads English.
pub fn summary_for_copy(r: &Report, lang: Lang) -> String {
    match lang {
        Lang::Ja => r.summary_in(Lang::Ja).to_string(),
        Lang::En => format!(
            "{}\n\n{}",
            r.summary_in(Lang::Ja).trim_end(),
            r.summary_in(Lang::En)
        ),
    }
}

/// Opens `target` with the desktop's handler; when there is none (a bare
/// desktop), copies it to the clipboard and says so, the handler's own
/// words going behind "詳細".
fn open_target(
    state: &mut AppState,
    target: &std::ffi::OsStr,
    backend: &mut dyn Backend,
    effects: &mut Vec<Effect>,
    folder: bool,
) {
    if let Err(e) = backend.open(target) {
        let text = os_lossless(target);
        effects.push(Effect::CopyToClipboard(text.clone()));
        let key = if folder {
            "gui.open.folder_copied"
        } else {
            "gui.open.copied"
        };
        let detail = match e {
            super::BackendError::Unavailable(f) => f.as_str().to_string(),
            super::BackendError::PermissionDenied(d) | super::BackendError::Failed(d) => d,
        };
        state.push_notice_detail(
            BannerLevel::Warning,
            Message::new(key).arg("target", for_display(&text)),
            detail,
        );
    }
}

/// Saves a report about `key` (to `out`, else the reports folder) and
/// keeps it for the report box. Shows a banner only where the box is
/// not in sight.
pub(super) fn save(
    state: &mut AppState,
    key: &ProgramKey,
    out: Option<PathBuf>,
    backend: &mut dyn Backend,
) {
    let Some(p) = state.snapshot.program(key) else {
        return;
    };
    let req = ReportRequest {
        out,
        evidence_copy: state.evidence_consent,
    };
    match backend.write_report(p, &req) {
        Ok(saved) => {
            let in_sight = state.wizard.is_some() || state.selected.as_ref() == Some(key);
            if !in_sight {
                let shown = for_display(&os_lossless(saved.path.as_os_str()));
                state.push_banner(
                    BannerLevel::Info,
                    Message::new("gui.msg.report_saved").arg("path", shown),
                    true,
                );
            }
            if let Some(w) = &mut state.wizard
                && w.program.as_ref() == Some(key)
            {
                // The saved content is the freshest picture for the desk.
                w.preview = Some(saved.content.clone());
            }
            state.last_report = Some(saved);
        }
        Err(e) => super::update::failed(state, "gui.action.report", &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::backend::{BackendError, Call, RecordingBackend};
    use crate::app::{Command, update};
    use crate::model::{FindingKind, Program, Snapshot};
    use std::sync::Arc;

    fn program(name: &str, severity: Option<Severity>) -> Program {
        let findings: Vec<_> = severity
            .map(|s| (FindingKind::RunsFromTemp, s))
            .into_iter()
            .collect();
        Program::fake(name, &findings)
    }

    fn snap(generation: u64, programs: Vec<Program>, raised: &[&str]) -> Arc<Snapshot> {
        let mut s = Snapshot::empty();
        s.generation = generation;
        s.newly_raised = raised
            .iter()
            .map(|n| {
                (
                    ProgramKey::Exe(format!("/tmp/{n}").into()),
                    FindingKind::RunsFromTemp,
                )
            })
            .collect();
        s.programs = programs;
        Arc::new(s)
    }

    fn offers(st: &AppState) -> usize {
        st.banners.iter().filter(|b| b.action.is_some()).count()
    }

    #[test]
    fn only_high_findings_are_offered_and_only_once() {
        let mut st = AppState::new(Lang::Ja);
        let mut b = RecordingBackend::new();
        let progs = || {
            vec![
                program("bad", Some(Severity::High)),
                program("meh", Some(Severity::Medium)),
            ]
        };
        update(
            &mut st,
            Command::NewSnapshot(snap(1, progs(), &["bad", "meh"])),
            &mut b,
        );
        assert_eq!(offers(&st), 1);
        let text = st.banners[0].message.text(Lang::Ja);
        assert!(text.contains("bad"), "{text}");
        assert!(!text.contains("finding."), "translated: {text}");
        let id = st.banners[0].id;
        update(&mut st, Command::DismissBanner(id), &mut b);
        update(
            &mut st,
            Command::NewSnapshot(snap(2, progs(), &["bad"])),
            &mut b,
        );
        assert_eq!(offers(&st), 0, "a dismissed offer does not come back");
    }

    #[test]
    fn walking_stays_within_the_six_steps() {
        let mut st = AppState::new(Lang::Ja);
        let mut b = RecordingBackend::new();
        update(&mut st, Command::OpenConsultation(None), &mut b);
        let step = |st: &AppState| st.wizard.as_ref().unwrap().step;
        update(&mut st, Command::Wizard(ConsultCommand::Back), &mut b);
        assert_eq!(step(&st), 0);
        for _ in 0..10 {
            update(&mut st, Command::Wizard(ConsultCommand::Next), &mut b);
        }
        assert_eq!(step(&st), STEPS - 1);
        update(&mut st, Command::Wizard(ConsultCommand::GoTo(3)), &mut b);
        assert_eq!(step(&st), 3);
        update(&mut st, Command::Wizard(ConsultCommand::Close), &mut b);
        assert!(st.wizard.is_none());
    }

    #[test]
    fn only_contact_links_are_opened() {
        let mut st = AppState::new(Lang::Ja);
        let mut b = RecordingBackend::new();
        for uri in ["file:///etc/passwd", "javascript:alert(1)", "/bin/sh"] {
            update(
                &mut st,
                Command::Wizard(ConsultCommand::OpenLink(uri.into())),
                &mut b,
            );
        }
        assert!(b.calls().is_empty());
        update(
            &mut st,
            Command::Wizard(ConsultCommand::OpenLink("https://www.ipa.go.jp/".into())),
            &mut b,
        );
        assert_eq!(b.calls(), vec![Call::Open("https://www.ipa.go.jp/".into())]);
    }

    #[test]
    fn a_phone_number_is_copied_and_the_user_told_to_call_it() {
        let mut st = AppState::new(Lang::Ja);
        let mut b = RecordingBackend::new();
        let fx = update(
            &mut st,
            Command::Wizard(ConsultCommand::OpenLink("tel:03-5978-7509".into())),
            &mut b,
        );
        assert!(b.calls().is_empty(), "no handler is tried");
        assert_eq!(fx, vec![Effect::CopyToClipboard("03-5978-7509".into())]);
        let text = st.banners[0].message.text(Lang::Ja);
        assert!(
            text.contains("03-5978-7509") && text.contains("おかけください"),
            "{text}"
        );
    }

    #[test]
    fn a_link_that_cannot_open_is_copied_and_said_in_plain_words() {
        let mut st = AppState::new(Lang::En);
        let mut b = RecordingBackend::new();
        b.fail_with(Some(BackendError::Failed(
            "Launcher \"gio\" \"open\" ExitStatus(unix_wait_status(512))".into(),
        )));
        let fx = update(
            &mut st,
            Command::Wizard(ConsultCommand::OpenLink("https://www.ipa.go.jp/".into())),
            &mut b,
        );
        assert_eq!(
            fx,
            vec![Effect::CopyToClipboard("https://www.ipa.go.jp/".into())]
        );
        let n = &st.banners[0];
        let text = n.message.text(Lang::En);
        assert!(
            text.contains("copied") && !text.contains("ExitStatus"),
            "{text}"
        );
        assert!(
            n.detail
                .as_deref()
                .is_some_and(|d| d.contains("ExitStatus"))
        );
        // The language switch rewords it; nothing English stays.
        assert!(!n.message.text(Lang::Ja).contains("copied"));
    }

    #[test]
    fn panic_from_the_walk_through_and_resume_from_the_tray_share_one_state() {
        use crate::app::update::settle;
        use crate::app::{BackgroundCommand, BackgroundEffect};
        use crate::tray::watch::Control;
        let mut st = AppState::new(Lang::En);
        let mut b = RecordingBackend::new();
        let gate = b.hold_jobs();
        update(
            &mut st,
            Command::Wizard(ConsultCommand::Panic(true)),
            &mut b,
        );
        assert!(st.waiting(), "waits for the administrator");
        assert!(!st.background.panic, "not stopped before it is done");
        assert!(settle(&mut st, &mut b).is_empty());
        // The guard fails part way: nothing is stopped, and that is said
        // (the walk-through is not open here, so in a notice too).
        b.guard().lock().fail = Some("nft is missing".into());
        assert!(gate.release_to_guard());
        settle(&mut st, &mut b);
        assert!(!st.waiting());
        assert!(!st.background.panic, "the state as it really is");
        let why = st.panic.as_ref().and_then(|p| p.not_enforced.clone());
        let why = why.expect("the problem is kept");
        // The sentence is plain words; the tool's message is the detail.
        let said = crate::app::guard::problem_sentence(
            Lang::Ja,
            crate::guard::outcome::Action::Panic,
            "",
            &why,
        );
        assert!(!said.contains("nft"), "{said}");
        assert_eq!(
            crate::app::guard::problem_detail(&why).as_deref(),
            Some("nft is missing")
        );
        assert_eq!(st.guard.notices.len(), 1);
        assert!(st.banners.iter().all(|x| x.dismissable));
        // Again, and it works: the tray is told what the guard read back.
        b.guard().lock().fail = None;
        update(
            &mut st,
            Command::Wizard(ConsultCommand::Panic(true)),
            &mut b,
        );
        assert!(gate.release_to_guard());
        let fx = settle(&mut st, &mut b);
        assert!(
            fx.contains(&Effect::Background(BackgroundEffect::Control(
                Control::SetGuard {
                    available: true,
                    panic: true,
                    blocked: vec![]
                }
            ))),
            "the tray is told: {fx:?}"
        );
        assert!(st.background.panic);
        assert_eq!(
            st.panic,
            Some(PanicState {
                on: true,
                not_enforced: None
            })
        );
        assert!(st.banners.iter().any(|x| !x.dismissable));
        // Resume from the tray ends it for the walk-through too.
        update(
            &mut st,
            Command::Background(BackgroundCommand::SetPanic(false)),
            &mut b,
        );
        assert!(gate.release_to_guard());
        settle(&mut st, &mut b);
        assert!(!st.background.panic);
        assert_eq!(st.panic.as_ref().map(|p| p.on), Some(false));
        assert!(st.banners.iter().all(|x| x.dismissable));
        assert_eq!(
            b.calls(),
            vec![Call::Panic(true), Call::Panic(true), Call::Panic(false)]
        );
    }

    #[test]
    fn save_as_asks_once_and_writes_where_the_user_chose() {
        let mut st = AppState::new(Lang::Ja);
        let mut b = RecordingBackend::new();
        update(
            &mut st,
            Command::NewSnapshot(snap(1, vec![program("bad", None)], &[])),
            &mut b,
        );
        let key = ProgramKey::Exe("/tmp/bad".into());
        update(
            &mut st,
            Command::OpenConsultation(Some(key.clone())),
            &mut b,
        );
        update(
            &mut st,
            Command::Wizard(ConsultCommand::SetEvidenceConsent(true)),
            &mut b,
        );
        update(&mut st, Command::Wizard(ConsultCommand::SaveReport), &mut b);
        let fx = update(
            &mut st,
            Command::Wizard(ConsultCommand::SaveReportAs),
            &mut b,
        );
        assert!(matches!(&fx[..], [Effect::AskSavePath(r)] if r.file_name == "bad.md"));
        let again = update(
            &mut st,
            Command::Wizard(ConsultCommand::SaveReportAs),
            &mut b,
        );
        assert!(again.is_empty(), "one dialog at a time");
        update(
            &mut st,
            Command::Wizard(ConsultCommand::SaveDialogAnswer(Some(
                "/media/usb/r.md".into(),
            ))),
            &mut b,
        );
        let req = |out: Option<&str>| ReportRequest {
            out: out.map(PathBuf::from),
            evidence_copy: true,
        };
        assert_eq!(
            b.calls(),
            vec![
                Call::Report(key.clone(), req(None)),
                Call::Report(key, req(Some("/media/usb/r.md"))),
            ]
        );
        assert_eq!(
            st.last_report.as_ref().unwrap().path,
            PathBuf::from("/media/usb/r.md")
        );
    }
}
