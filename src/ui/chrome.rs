//! Around the list and details: the title bar with language and refresh,
//! banners, the status bar, and the confirmation dialog.

use egui::{Align, Frame, Id, Layout, Margin, Modal, RichText, Ui};

use super::format::clock;
use super::theme;
use crate::app::{AppState, Command, Job, ProcAction};
use crate::escape::{for_display, os_lossless};
use crate::i18n::Lang;

pub fn top_bar(ui: &mut Ui, state: &AppState, cmds: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        ui.heading(RichText::new(state.t("app.name")).strong());
        ui.label(RichText::new(state.t("app.tagline")).weak());
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            // Each language names itself, so anyone can find their own.
            for (lang, label) in [(Lang::En, "English"), (Lang::Ja, "日本語")] {
                if ui.selectable_label(state.lang == lang, label).clicked() {
                    cmds.push(Command::SetLang(lang));
                }
            }
            ui.separator();
            super::background::top_bar(ui, state, cmds);
            if ui.button(state.t("gui.action.consult")).clicked() {
                cmds.push(Command::Consult(None));
            }
            if ui.button(state.t("gui.refresh")).clicked() {
                cmds.push(Command::RefreshNow);
            }
        });
    });
}

/// While a mark or the panic button waits (perhaps for the
/// administrator's password): a spinner, what waits, and that the window
/// still works.
pub fn waiting(ui: &mut Ui, state: &AppState) {
    let Some((_, job)) = state.jobs.first() else {
        return;
    };
    let what = match job {
        Job::SetMark(req) => {
            let name = state
                .snapshot
                .program(&req.key)
                .map(|p| for_display(&p.name))
                .unwrap_or_else(|| for_display(&os_lossless(req.exe.as_os_str())));
            let mark = state.t(&format!("gui.badge.{}", req.mark.as_str()));
            state.t_args("gui.jobs.mark", &[("name", &name), ("mark", &mark)])
        }
        Job::Panic(true) => state.t("gui.jobs.panic"),
        Job::Panic(false) => state.t("gui.jobs.resume"),
        Job::Unblock(exe) => state.t_args(
            "guard.jobs.unblock",
            &[("name", &crate::guard::outcome::program_name(exe))],
        ),
    };
    ui.horizontal_wrapped(|ui| {
        ui.spinner();
        ui.label(RichText::new(state.t("gui.jobs.waiting")).strong());
        ui.label(RichText::new(what).weak());
    })
    .response
    .on_hover_text(state.t("gui.jobs.hint"));
}

pub fn status_bar(ui: &mut Ui, state: &AppState) {
    let snap = &state.snapshot;
    ui.horizontal_wrapped(|ui| {
        // How connections are seen, and what that can miss.
        super::traffic::mode_label(ui, state);
        ui.separator();
        let updated = if snap.generation == 0 {
            "—".to_string()
        } else {
            clock(snap.taken_at, state.utc_offset)
        };
        ui.label(state.t_args("gui.status.updated", &[("time", &updated)]));
        ui.separator();
        if snap.complete {
            ui.label(state.t("gui.status.complete"));
        } else {
            let c = theme::banner(crate::app::BannerLevel::Warning, ui.visuals().dark_mode);
            Frame::new()
                .fill(c.fill)
                .corner_radius(4)
                .inner_margin(Margin::symmetric(6, 1))
                .show(ui, |ui| {
                    ui.label(RichText::new(state.t("gui.status.incomplete")).color(c.text));
                });
        }
        if !snap.unattributed.is_empty() {
            ui.separator();
            // Moves to the next line whole rather than breaking mid-phrase.
            ui.add(
                egui::Label::new(state.t_args(
                    "gui.status.unattributed",
                    &[("count", &snap.unattributed.len().to_string())],
                ))
                .extend(),
            )
            .on_hover_text(state.t("gui.status.unattributed_hint"));
        }
        if let Some(e) = &state.monitor_error {
            ui.separator();
            // The OS's words only on hover (and in the log).
            ui.label(
                RichText::new(state.t("window.status.error")).color(
                    theme::severity(crate::model::Severity::High, ui.visuals().dark_mode).fill,
                ),
            )
            .on_hover_text(crate::escape::for_display(e));
        }
    });
}

pub fn confirm_dialog(ui: &mut Ui, state: &AppState, cmds: &mut Vec<Command>) {
    let Some(c) = &state.confirm else {
        return;
    };
    let (question, explain, yes) = match c.action {
        ProcAction::Terminate => (
            "gui.confirm.terminate",
            "gui.confirm.terminate_explain",
            "gui.confirm.terminate_yes",
        ),
        ProcAction::Suspend | ProcAction::Resume => (
            "gui.confirm.suspend",
            "gui.confirm.suspend_explain",
            "gui.confirm.suspend_yes",
        ),
    };
    let pids = c
        .pids
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let resp = Modal::new(Id::unique("confirm-process")).show(ui.ctx(), |ui| {
        ui.set_max_width(420.0);
        ui.heading(state.t_args(question, &[("name", &c.name)]));
        ui.add_space(6.0);
        ui.label(state.t(explain));
        ui.label(RichText::new(state.t_args("gui.confirm.pids", &[("pids", &pids)])).weak());
        ui.add_space(10.0);
        ui.horizontal(|ui| {
            if ui.button(state.t(yes)).clicked() {
                cmds.push(Command::ConfirmProcess);
            }
            if ui.button(state.t("gui.confirm.cancel")).clicked() {
                cmds.push(Command::CancelConfirm);
            }
        });
    });
    if resp.should_close() && !cmds.contains(&Command::ConfirmProcess) {
        cmds.push(Command::CancelConfirm);
    }
}
