//! The program list: search, filters, order, one row per program.

use egui::{
    Align, Frame, Id, Label, Layout, Margin, RichText, Role, ScrollArea, Sense, TextEdit, Ui,
    UiBuilder, WidgetInfo,
};

use super::theme;
use super::widgets::{cell, chip, cut, initial};
use crate::app::programs::{Row, RunState, rows, shown_path};
use crate::app::{AppState, Command, SortKey};
use crate::escape::for_display;
use crate::model::ProgramKey;

const ROW_HEIGHT: f32 = 46.0;
/// With a third line for the bytes sent and received.
const ROW_HEIGHT_BYTES: f32 = 60.0;
const BADGE_W: f32 = 84.0;
const CONNS_W: f32 = 44.0;
const FINDING_W: f32 = 128.0;
const USER_W: f32 = 64.0;
/// The least room a name gets before other columns give way.
const NAME_LEAST: f32 = 110.0;

/// Widths of the flexible columns for a list `avail` px wide (after the
/// initial circle): on a narrow list (a 1024×600 screen, the divider
/// dragged left) the user column goes, then "noticed" narrows; the name
/// keeps at least [`NAME_LEAST`].
#[derive(Debug, Clone, Copy)]
struct Cols {
    name: f32,
    finding: f32,
    user: Option<f32>,
}

fn cols(avail: f32, gap: f32) -> Cols {
    let fixed = BADGE_W + CONNS_W + 2.0 * gap;
    let with_user = fixed + FINDING_W + USER_W + 2.0 * gap;
    if avail - with_user >= NAME_LEAST {
        return Cols {
            name: avail - with_user,
            finding: FINDING_W,
            user: Some(USER_W),
        };
    }
    let finding = (avail - fixed - gap - NAME_LEAST).clamp(56.0, FINDING_W);
    Cols {
        name: (avail - fixed - gap - finding).max(60.0),
        finding,
        user: None,
    }
}

/// Text for a finding's short title; the summary (escaped: it may quote a
/// hostile name) when the catalog has none.
pub fn finding_title(state: &AppState, f: &crate::model::Finding) -> String {
    // Some kinds are named by where they were seen (the Downloads folder
    // is not "a temporary folder").
    if let Some(place) = f.evidence.get("folder").and_then(|v| v.as_str()) {
        let key = format!("finding.{}.title.{place}", f.kind.as_str());
        let t = state.t(&key);
        if t != key {
            return t;
        }
    }
    let key = format!("finding.{}.title", f.kind.as_str());
    let t = state.t(&key);
    if t == key { for_display(&f.summary) } else { t }
}

pub fn show(ui: &mut Ui, state: &AppState, cmds: &mut Vec<Command>) {
    toolbar(ui, state, cmds);
    ui.add_space(4.0);
    let mut rows = rows(state);
    if state.snapshot.generation == 0 {
        ui.label(state.t("gui.waiting"));
        return;
    }
    ui.horizontal_wrapped(|ui| {
        ui.label(
            RichText::new(state.t_args(
                "gui.list.count",
                &[
                    ("shown", &rows.len().to_string()),
                    ("total", &state.snapshot.programs.len().to_string()),
                ],
            ))
            .weak(),
        );
        let count = |s: RunState| rows.iter().filter(|r| r.run == s).count();
        let (suspended, ended) = (count(RunState::Suspended), count(RunState::Ended));
        // Said once, not as a 0 on every row.
        if !super::traffic::known(state) {
            super::traffic::unknown_note(ui, state);
        }
        if suspended + ended > 0 {
            ui.label(RichText::new(state.t_args(
                "gui.header.state",
                &[
                    ("running", &count(RunState::Running).to_string()),
                    ("suspended", &suspended.to_string()),
                    ("ended", &ended.to_string()),
                ],
            )));
        }
    });
    header(ui, state);
    ui.separator();
    if rows.is_empty() {
        ui.label(state.t("gui.list.empty"));
        return;
    }
    let hovered = ui
        .ctx()
        .pointer_hover_pos()
        .is_some_and(|p| ui.available_rect_before_wrap().contains(p));
    keep_order_while_hovered(ui, &mut rows, hovered);
    let bytes = super::traffic::known(state);
    let height = if bytes { ROW_HEIGHT_BYTES } else { ROW_HEIGHT };
    ScrollArea::vertical()
        .id_salt("programs")
        .auto_shrink([false, false])
        .show_rows(ui, height, rows.len(), |ui, range| {
            for r in &rows[range] {
                row(ui, state, r, height, bytes, cmds);
            }
        });
}

/// While the mouse is over the list, rows keep the order they had when it
/// came (new programs go to the end, ended ones stay where they were), so
/// a click lands on the row the user aimed at; the order catches up as
/// soon as the mouse leaves.
fn keep_order_while_hovered(ui: &Ui, rows: &mut [Row<'_>], hovered: bool) {
    let id = Id::unique("program-list-order");
    if hovered && let Some(prev) = ui.data(|d| d.get_temp::<Vec<ProgramKey>>(id)) {
        let pos: std::collections::HashMap<&ProgramKey, usize> =
            prev.iter().enumerate().map(|(i, k)| (k, i)).collect();
        rows.sort_by_key(|r| pos.get(&r.program.key).copied().unwrap_or(usize::MAX));
    }
    let order: Vec<ProgramKey> = rows.iter().map(|r| r.program.key.clone()).collect();
    ui.data_mut(|d| d.insert_temp(id, order));
}

fn toolbar(ui: &mut Ui, state: &AppState, cmds: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        let label = ui.label(state.t("gui.search"));
        let mut text = state.search.clone();
        let r = ui
            .add(
                TextEdit::singleline(&mut text)
                    .id(Id::unique("search"))
                    .hint_text(state.t("gui.search.hint"))
                    .desired_width(ui.available_width().min(260.0)),
            )
            .labelled_by(label.id);
        if r.changed() {
            cmds.push(Command::SetSearch(text));
        }
    });
    ui.horizontal_wrapped(|ui| {
        let mut v = state.only_network;
        if ui.checkbox(&mut v, state.t("gui.filter.network")).changed() {
            cmds.push(Command::SetOnlyNetwork(v));
        }
        let mut v = state.only_attention;
        if ui
            .checkbox(&mut v, state.t("gui.filter.attention"))
            .changed()
        {
            cmds.push(Command::SetOnlyAttention(v));
        }
    });
    // The order on its own line: the list can be narrow (a small screen)
    // without the row pushing the pane wider.
    let sort_name = |s: SortKey| {
        state.t(match s {
            SortKey::Attention => "gui.sort.attention",
            SortKey::Name => "gui.sort.name",
            SortKey::Connections => "gui.sort.connections",
        })
    };
    // Label and list stay on one line when the row wraps.
    ui.horizontal(|ui| {
        let label = ui.label(state.t("gui.sort"));
        egui::ComboBox::from_id_salt("sort")
            .selected_text(sort_name(state.sort))
            .show_ui(ui, |ui| {
                for s in SortKey::ALL {
                    if ui.selectable_label(state.sort == s, sort_name(s)).clicked() {
                        cmds.push(Command::SetSort(s));
                    }
                }
            })
            .response
            .labelled_by(label.id);
        if ui
            .button(state.t("traffic.top.button"))
            .on_hover_text(state.t("traffic.top.hint"))
            .clicked()
        {
            cmds.push(Command::Select(None));
        }
    });
}

fn header(ui: &mut Ui, state: &AppState) {
    let weak = |s: String| RichText::new(s).small().weak();
    ui.horizontal(|ui| {
        let gap = ui.spacing().item_spacing.x;
        // The rows' initial circle and frame margin sit before the name.
        let c = cols(ui.available_width() - 32.0 - gap - 8.0, gap);
        let name_w = c.name + 32.0 + gap + 8.0;
        cell(ui, name_w, 16.0, |ui| {
            ui.label(weak(state.t("gui.col.program")))
        });
        cell(ui, BADGE_W, 16.0, |ui| {
            ui.label(weak(state.t("gui.col.state")))
        });
        cell(ui, CONNS_W, 16.0, |ui| {
            ui.label(weak(state.t("gui.col.conns")))
        });
        cell(ui, c.finding, 16.0, |ui| {
            ui.label(weak(state.t("gui.col.finding")))
        });
        if let Some(w) = c.user {
            cell(ui, w, 16.0, |ui| ui.label(weak(state.t("gui.col.user"))));
        }
    });
}

fn row(
    ui: &mut Ui,
    state: &AppState,
    r: &Row<'_>,
    height: f32,
    bytes: bool,
    cmds: &mut Vec<Command>,
) {
    let p = r.program;
    let name = for_display(&p.name);
    let selected = state.selected.as_ref() == Some(&p.key);
    let dark = ui.visuals().dark_mode;
    let ended = r.run == RunState::Ended;
    let dim = theme::ended_text(dark);
    let resp = ui
        .scope_builder(
            UiBuilder::new()
                .id_salt(("program-row", &p.key))
                .sense(Sense::click()),
            |ui| {
                let hovered = ui.response().hovered();
                let fill = if selected {
                    ui.visuals().selection.bg_fill.gamma_multiply(0.45)
                } else if hovered {
                    ui.visuals().widgets.hovered.weak_bg_fill
                } else {
                    egui::Color32::TRANSPARENT
                };
                Frame::new()
                    .fill(fill)
                    .corner_radius(6)
                    .inner_margin(Margin::symmetric(4, 2))
                    .show(ui, |ui| {
                        let h = height - 4.0;
                        ui.set_height(h);
                        ui.horizontal(|ui| {
                            let gap = ui.spacing().item_spacing.x;
                            let c = cols(ui.available_width() - 32.0 - gap, gap);
                            let name_w = c.name;
                            cell(ui, 28.0, h, |ui| initial(ui, &name, 28.0));
                            ui.allocate_ui_with_layout(
                                egui::vec2(name_w, h),
                                Layout::top_down(Align::Min),
                                |ui| {
                                    ui.set_width(name_w);
                                    let title = RichText::new(&name).strong();
                                    ui.add(
                                        Label::new(if ended { title.color(dim) } else { title })
                                            .selectable(false)
                                            .truncate(),
                                    );
                                    ui.horizontal(|ui| {
                                        if r.run != RunState::Running {
                                            ui.add(
                                                Label::new(
                                                    RichText::new(state.t(r.run.key()))
                                                        .small()
                                                        .strong()
                                                        .color(theme::run_state(r.run, dark)),
                                                )
                                                .selectable(false),
                                            );
                                        }
                                        ui.add(
                                            Label::new(RichText::new(shown_path(p)).small().weak())
                                                .selectable(false)
                                                .truncate(),
                                        );
                                    });
                                    if bytes {
                                        let b = state.traffic.total(&p.key);
                                        ui.add(
                                            Label::new(
                                                RichText::new(super::traffic::row_text_short(
                                                    state, b,
                                                ))
                                                .small(),
                                            )
                                            .selectable(false)
                                            .truncate(),
                                        );
                                    }
                                },
                            );
                            cell(ui, BADGE_W, h, |ui| {
                                chip(
                                    ui,
                                    &state.t(&format!("gui.badge.{}", r.badge.as_str())),
                                    theme::badge(r.badge, dark),
                                )
                            });
                            cell(ui, CONNS_W, h, |ui| {
                                let t = RichText::new(r.live.to_string());
                                ui.add(
                                    Label::new(if r.live > 0 { t.strong() } else { t.weak() })
                                        .selectable(false),
                                )
                            });
                            cell(ui, c.finding, h, |ui| {
                                if let Some(f) = r.top {
                                    let colors = if ended {
                                        theme::muted(dark)
                                    } else {
                                        theme::severity(f.severity, dark)
                                    };
                                    chip(ui, &finding_title(state, f), colors)
                                        .on_hover_text(for_display(&f.summary));
                                }
                            });
                            if let Some(w) = c.user {
                                cell(ui, w, h, |ui| {
                                    cut(ui, for_display(&p.user().unwrap_or_default()))
                                });
                            }
                        });
                    });
            },
        )
        .response;
    resp.widget_info(|| WidgetInfo::selected(Role::Button, true, selected, &name));
    if resp.clicked() {
        cmds.push(Command::Select(Some(p.key.clone())));
    }
}
