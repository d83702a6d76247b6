//! The guard's part of the window: its notices (text that wraps, a close
//! button) and the list of programs it blocks, each with 解除. Both read
//! only `state.guard`, which holds what the guard read back.

use egui::{Align, Button, Layout, RichText, ScrollArea, Ui};

use super::theme;
use super::widgets::{chip, cut, full_width_box};
use crate::app::guard::{GuardNotice, Presence};
use crate::app::{AppState, Badge, Command};
use crate::escape::{for_display, os_lossless};
use crate::guard::outcome::program_name;

/// The notices about the guard, newest last. Self-contained: a wrapping
/// text and a close button per notice.
pub fn notices(ui: &mut Ui, state: &AppState, cmds: &mut Vec<Command>) {
    for n in &state.guard.notices {
        notice(ui, state, n, cmds);
    }
}

fn notice(ui: &mut Ui, state: &AppState, n: &GuardNotice, cmds: &mut Vec<Command>) {
    let c = theme::banner(n.level, ui.visuals().dark_mode);
    full_width_box(ui, c.fill, (10, 6), |ui| {
        let close = state.t("guard.notice.close");
        // Room for the button on the right; the text wraps in the rest.
        let button_w = 16.0 + close.chars().count() as f32 * 14.0;
        ui.horizontal_top(|ui| {
            let text_w = (ui.available_width() - button_w - 12.0).max(120.0);
            ui.allocate_ui_with_layout(
                egui::vec2(text_w, 0.0),
                Layout::top_down(Align::Min),
                |ui| {
                    ui.set_max_width(text_w);
                    ui.add(
                        egui::Label::new(RichText::new(n.text.text(state.lang)).color(c.text))
                            .wrap(),
                    );
                    if let Some(d) = n.text.detail() {
                        super::notice::details(ui, ("guard-notice", n.id), &d, state.lang, c.text);
                    }
                },
            );
            ui.with_layout(Layout::right_to_left(Align::Min), |ui| {
                if ui.button(close).clicked() {
                    cmds.push(Command::DismissGuardNotice(n.id));
                }
            });
        });
    });
}

/// Whether the blocked list has anything to show.
pub fn has_list(state: &AppState) -> bool {
    state.guard.presence == Presence::Running
        && state
            .guard
            .status
            .as_ref()
            .is_some_and(|s| !s.blocked.is_empty())
}

/// The programs the guard blocks (also ones that are not running), as
/// it reads them back, each with 解除.
pub fn blocked_list(ui: &mut Ui, state: &AppState, cmds: &mut Vec<Command>) {
    let Some(status) = &state.guard.status else {
        return;
    };
    let dark = ui.visuals().dark_mode;
    ui.label(
        RichText::new(state.t_args(
            "guard.list.title",
            &[("count", &status.blocked.len().to_string())],
        ))
        .strong(),
    );
    let waiting = state.waiting();
    ScrollArea::vertical()
        .id_salt("guard-blocked")
        .max_height(132.0)
        .auto_shrink([false, true])
        .show(ui, |ui| {
            for b in &status.blocked {
                let held = status.blocks(&b.exe);
                ui.horizontal(|ui| {
                    let r = ui
                        .add_enabled(!waiting, Button::new(state.t("guard.list.unblock")))
                        .on_hover_text(state.t("guard.list.unblock_hint"))
                        .on_disabled_hover_text(state.t("gui.jobs.waiting"));
                    if r.clicked() {
                        cmds.push(Command::Unblock(b.exe.clone()));
                    }
                    if held {
                        chip(
                            ui,
                            &state.t("guard.list.enforced"),
                            theme::badge(Badge::Blocked, dark),
                        );
                    } else {
                        chip(
                            ui,
                            &state.t("guard.list.not_enforced"),
                            theme::severity(crate::model::Severity::High, dark),
                        );
                    }
                    ui.label(RichText::new(program_name(&b.exe)).strong());
                    let running = if b.pids_blocked.is_empty() {
                        state.t("guard.list.not_running")
                    } else {
                        state.t_args(
                            "guard.list.running",
                            &[("count", &b.pids_blocked.len().to_string())],
                        )
                    };
                    ui.label(RichText::new(running).weak());
                    if !b.pids_outside.is_empty() {
                        let pids = b
                            .pids_outside
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(", ");
                        ui.label(
                            RichText::new(state.t_args("guard.list.leaking", &[("pids", &pids)]))
                                .color(theme::severity(crate::model::Severity::High, dark).fill),
                        );
                    }
                    cut(
                        ui,
                        RichText::new(for_display(&os_lossless(b.exe.as_os_str()))).weak(),
                    );
                });
            }
        });
}
