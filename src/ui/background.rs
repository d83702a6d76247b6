//! The window's side of life in the background: tray events in, show /
//! hide / quit out, the notifications switch in the top bar, and the
//! one-time "closing quits kizuki" explanation.

use std::time::SystemTime;

use egui::{Id, Modal, RichText, Ui, ViewportCommand};

use super::KizukiApp;
use crate::app::background::commands_for;
use crate::app::{AppState, BackgroundCommand, BackgroundEffect, BannerLevel, Command, Message};

/// Runs each frame, shown or hidden: kept small, since while hidden this
/// is all the window does.
pub(super) fn logic(app: &mut KizukiApp, ctx: &egui::Context) {
    let Some(life) = app.life.as_mut() else {
        return;
    };
    if life.take_start_hidden() {
        ctx.send_viewport_cmd(ViewportCommand::Visible(false));
    }
    let events = life.drain();
    let now = SystemTime::now();
    for ev in events {
        for c in commands_for(ev, now) {
            app.apply(ctx, c);
        }
    }
    if ctx.input(|i| i.viewport().close_requested()) {
        app.apply(ctx, Command::Background(BackgroundCommand::CloseRequested));
    }
}

/// Carries out what only the window can do.
pub(super) fn effect(app: &mut KizukiApp, ctx: &egui::Context, e: BackgroundEffect) {
    let Some(life) = app.life.as_ref() else {
        return;
    };
    match e {
        BackgroundEffect::Show => {
            life.set_visible(true);
            ctx.send_viewport_cmd(ViewportCommand::Visible(true));
            ctx.send_viewport_cmd(ViewportCommand::Minimized(false));
            ctx.send_viewport_cmd(ViewportCommand::Focus);
        }
        BackgroundEffect::Hide => {
            ctx.send_viewport_cmd(ViewportCommand::CancelClose);
            ctx.send_viewport_cmd(ViewportCommand::Visible(false));
            life.set_visible(false);
        }
        BackgroundEffect::CancelClose => ctx.send_viewport_cmd(ViewportCommand::CancelClose),
        BackgroundEffect::Quit => ctx.send_viewport_cmd(ViewportCommand::Close),
        BackgroundEffect::SaveSettings(s) => {
            if let Err(e) = life.save_settings(&s) {
                app.state.push_notice_detail(
                    BannerLevel::Error,
                    Message::new("window.err.settings"),
                    e.to_string(),
                );
            }
        }
        BackgroundEffect::Control(c) => life.control(c),
    }
}

/// Tells the background thread about a language change.
pub(super) fn language_changed(app: &KizukiApp, lang: crate::i18n::Lang) {
    if let Some(life) = &app.life {
        life.control(crate::tray::watch::Control::SetLang(lang));
    }
}

/// The notifications switch, and "resume" while all traffic is stopped.
pub fn top_bar(ui: &mut Ui, state: &AppState, cmds: &mut Vec<Command>) {
    let mut on = state.background.notifications;
    if ui
        .checkbox(&mut on, state.t("tray.gui.notifications"))
        .on_hover_text(state.t("tray.gui.notifications_hint"))
        .changed()
    {
        cmds.push(Command::Background(BackgroundCommand::SetNotifications(on)));
    }
    if state.background.panic
        && ui
            .add_enabled(
                !state.waiting(),
                egui::Button::new(RichText::new(state.t("tray.menu.resume")).strong()),
            )
            .on_disabled_hover_text(state.t("gui.jobs.waiting"))
            .clicked()
    {
        cmds.push(Command::Background(BackgroundCommand::SetPanic(false)));
    }
}

/// Explains once, on a desktop without a tray, that closing quits.
pub fn explain_close(ui: &mut Ui, state: &AppState, cmds: &mut Vec<Command>) {
    if !state.background.explaining_close {
        return;
    }
    let resp = Modal::new(Id::unique("explain-close")).show(ui.ctx(), |ui| {
        ui.set_max_width(440.0);
        ui.heading(state.t("tray.close.title"));
        ui.add_space(6.0);
        ui.label(state.t("tray.close.text"));
        ui.add_space(10.0);
        ui.horizontal(|ui| {
            if ui.button(state.t("tray.close.quit")).clicked() {
                cmds.push(Command::Background(BackgroundCommand::ConfirmQuit));
            }
            if ui.button(state.t("tray.close.keep")).clicked() {
                cmds.push(Command::Background(BackgroundCommand::KeepOpen));
            }
        });
    });
    if resp.should_close() && cmds.is_empty() {
        cmds.push(Command::Background(BackgroundCommand::KeepOpen));
    }
}
