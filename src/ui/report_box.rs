//! The saved report: where it is, and what to do with it next ("open
//! folder", "save as…", "copy summary"). Shown in the details pane and in
//! the walk-through.

use egui::{RichText, Ui};

use super::theme;
use crate::app::{AppState, Command, ConsultCommand, SavedReport};
use crate::escape::{for_display, os_lossless};

pub fn show(ui: &mut Ui, state: &AppState, saved: &SavedReport, cmds: &mut Vec<Command>) {
    let c = theme::calm(ui.visuals().dark_mode);
    super::widgets::full_width_box(ui, c.fill, (10, 6), |ui| {
        ui.label(
            RichText::new(state.t("wizard.report.saved"))
                .strong()
                .color(c.text),
        );
        let path = for_display(&os_lossless(saved.path.as_os_str()));
        ui.add(egui::Label::new(RichText::new(path).monospace().color(c.text)).wrap());
        if let Some(e) = &saved.evidence {
            let shown = for_display(&os_lossless(e.as_os_str()));
            ui.label(
                RichText::new(state.t_args("wizard.report.evidence_saved", &[("path", &shown)]))
                    .color(c.text),
            );
        }
        if let Some(why) = &saved.evidence_error {
            ui.label(RichText::new(state.t("window.report.evidence_failed")).color(c.text));
            super::notice::details(ui, "evidence-detail", why, state.lang, c.text);
        }
        ui.horizontal_wrapped(|ui| {
            if ui.button(state.t("wizard.report.open_folder")).clicked() {
                cmds.push(Command::Wizard(ConsultCommand::OpenReportFolder));
            }
            let r = ui
                .add_enabled(
                    !state.save_dialog_open,
                    egui::Button::new(state.t("wizard.report.save_as")),
                )
                .on_disabled_hover_text(state.t("wizard.report.dialog_open"));
            if r.clicked() {
                cmds.push(Command::Wizard(ConsultCommand::SaveReportAs));
            }
            if ui
                .button(state.t("consult.action.copy_summary"))
                .on_hover_text(state.t("wizard.report.copy_hint"))
                .clicked()
            {
                cmds.push(Command::Wizard(ConsultCommand::CopySummary));
            }
        });
    });
}
