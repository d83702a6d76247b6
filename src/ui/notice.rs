//! The one notice (banner) component: every message the window shows
//! the user — errors, warnings, "copied" — goes through it.
//!
//! - The text wraps; the 閉じる button keeps its own column on the right,
//!   so no text runs under it and its click always lands.
//! - Technical detail stays behind "詳細" (and is in the log file).
//! - At most [`VISIBLE`] are shown at once, then "ほか N 件".
//! - Passing notices sit in a strip under the details pane ([`stack`]),
//!   beside the list: the list never moves and nothing is covered; lasting
//!   ones ([`Notice::dismissable`] false, present from the start) sit in
//!   the top bar ([`lasting`]).

use egui::{Align, Layout, RichText, ScrollArea, Ui, Vec2};

use super::theme;
use crate::app::{AppState, BannerAction, Command, Notice};
use crate::i18n::Lang;

/// The most notices shown at once.
pub const VISIBLE: usize = 3;

/// What the user did with one notice this frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoticeResponse {
    pub closed: bool,
    /// The notice's own button (for example "相談する").
    pub action: bool,
}

/// One notice, `width` wide: wrapped text, "詳細" when it carries
/// detail, its button, and 閉じる when it can be dismissed.
pub fn notice(ui: &mut Ui, n: &Notice, lang: Lang, width: f32) -> NoticeResponse {
    let mut out = NoticeResponse::default();
    let c = theme::banner(n.level, ui.visuals().dark_mode);
    let t = |key: &str| crate::i18n::tr_in(lang, key);
    let close_label = t("gui.close");
    egui::Frame::new()
        .fill(c.fill)
        .corner_radius(6)
        .inner_margin(egui::Margin::symmetric(10, 4))
        .show(ui, |ui| {
            let inner = (width - 20.0).max(120.0);
            ui.set_width(inner);
            ui.with_layout(Layout::right_to_left(Align::Min), |ui| {
                if n.dismissable && ui.button(&close_label).clicked() {
                    out.closed = true;
                }
                let text_w = ui.available_width().max(80.0);
                ui.allocate_ui_with_layout(
                    Vec2::new(text_w, 0.0),
                    Layout::top_down(Align::Min),
                    |ui| {
                        ui.set_width(text_w);
                        ui.add(
                            egui::Label::new(RichText::new(n.message.text(lang)).color(c.text))
                                .wrap(),
                        );
                        if let Some(BannerAction::Consult(_)) = &n.action
                            && ui.button(t("wizard.offer.button")).clicked()
                        {
                            out.action = true;
                        }
                        if let Some(detail) = &n.detail {
                            details(ui, ("notice-detail", n.id), detail, lang, c.text);
                        }
                    },
                );
            });
        });
    out
}

/// "詳細", closed until the user opens it: the technical `detail`
/// (escaped) and that it is in the log file too.
pub fn details(
    ui: &mut Ui,
    id: impl std::hash::Hash + std::fmt::Debug,
    detail: &str,
    lang: Lang,
    color: egui::Color32,
) {
    let t = |key: &str| crate::i18n::tr_in(lang, key);
    egui::CollapsingHeader::new(RichText::new(t("gui.notice.detail")).color(color))
        .id_salt(id)
        .show(ui, |ui| {
            ScrollArea::vertical().max_height(90.0).show(ui, |ui| {
                ui.add(
                    egui::Label::new(
                        RichText::new(crate::escape::for_display(detail))
                            .monospace()
                            .small()
                            .color(color),
                    )
                    .wrap(),
                );
                ui.label(RichText::new(t("gui.notice.logged")).small().color(color));
            });
        });
}

/// Turns what the user did with `n` into commands.
fn respond(n: &Notice, r: NoticeResponse, cmds: &mut Vec<Command>) {
    if r.closed {
        cmds.push(Command::DismissBanner(n.id));
    }
    if r.action
        && let Some(BannerAction::Consult(key)) = &n.action
    {
        cmds.push(Command::Consult(Some(key.clone())));
    }
}

/// Lasting notices (not dismissable), full width, for the top bar.
pub fn lasting(ui: &mut Ui, state: &AppState, cmds: &mut Vec<Command>) {
    let width = ui.available_width();
    for n in state.banners.iter().filter(|b| !b.dismissable) {
        let r = notice(ui, n, state.lang, width);
        respond(n, r, cmds);
    }
}

/// The passing notices that are shown: the newest [`VISIBLE`] (two on a
/// short screen), oldest first, and how many more wait.
pub fn visible(state: &AppState) -> (Vec<&Notice>, usize) {
    visible_of(state, VISIBLE)
}

fn visible_of(state: &AppState, max: usize) -> (Vec<&Notice>, usize) {
    let all: Vec<&Notice> = state.banners.iter().filter(|b| b.dismissable).collect();
    let more = all.len().saturating_sub(max);
    (all[more..].to_vec(), more)
}

/// The passing notices, newest last, with "ほか N 件" above them; drawn
/// in the strip below the details pane (beside the list, never over it):
/// the list and the rows above never move when one comes or goes.
pub fn stack(ui: &mut Ui, state: &AppState, cmds: &mut Vec<Command>) {
    let short = ui.ctx().content_rect().height() < 700.0;
    let (shown, more) = visible_of(state, if short { VISIBLE - 1 } else { VISIBLE });
    let width = ui.available_width();
    ui.spacing_mut().item_spacing.y = 4.0;
    if more > 0 {
        ui.horizontal_wrapped(|ui| {
            ui.label(
                RichText::new(state.t_args("gui.notice.more", &[("count", &more.to_string())]))
                    .strong(),
            );
            if ui.button(state.t("gui.notice.close_all")).clicked() {
                cmds.push(Command::DismissAllNotices);
            }
        });
    }
    for n in shown {
        let r = notice(ui, n, state.lang, width);
        respond(n, r, cmds);
    }
}
