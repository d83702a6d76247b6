//! Bytes in the window: amounts in plain units, the capture mode in the
//! status bar, a program's traffic graph and the top talkers. When
//! nothing counts bytes (polling without the guard's capture) every place
//! says so instead of showing 0.

use egui::{Color32, Rect, RichText, Role, Sense, Stroke, Ui, WidgetInfo};

use super::theme;
use crate::app::traffic::{Bytes, bytes_known};
use crate::app::{AppState, Command};
use crate::escape::for_display;
use crate::i18n::Lang;
use crate::model::{CaptureMode, Program};

/// How many top talkers are listed.
const TOP: usize = 10;
const GRAPH_H: f32 = 64.0;

/// `n` bytes in decimal units: `512 バイト`, `34 KB`, `1.2 MB`, `2.5 GB`.
pub fn amount(lang: Lang, n: u64) -> String {
    const UNITS: [(f64, &str); 4] = [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "KB")];
    let x = n as f64;
    for (size, unit) in UNITS {
        if x >= size {
            let v = x / size;
            // One decimal below 10 ("1.2 MB"), none above ("34 KB").
            let shown = if v < 9.95 {
                format!("{v:.1}")
            } else {
                format!("{v:.0}")
            };
            return format!("{shown} {unit}");
        }
    }
    crate::i18n::tr_args_in(lang, "traffic.bytes", &[("n", &n.to_string())])
}

/// "送信 1.2 MB　受信 34 KB".
pub fn row_text(state: &AppState, b: Bytes) -> String {
    state.t_args(
        "traffic.row",
        &[
            ("sent", &amount(state.lang, b.sent)),
            ("received", &amount(state.lang, b.received)),
        ],
    )
}

/// The same, short enough for a list row: "0" for nothing, "1 KB 未満"
/// for a few bytes.
pub fn row_text_short(state: &AppState, b: Bytes) -> String {
    let short = |n: u64| match n {
        0 => "0".to_string(),
        1..=999 => state.t_args("traffic.under_kb", &[("amount", "1 KB")]),
        n => amount(state.lang, n),
    };
    state.t_args(
        "traffic.row",
        &[("sent", &short(b.sent)), ("received", &short(b.received))],
    )
}

/// Whether the current snapshot counts bytes.
pub fn known(state: &AppState) -> bool {
    bytes_known(&state.snapshot)
}

/// "Amounts are not counted", with why on hover (once above the list,
/// and in the details).
pub fn unknown_note(ui: &mut Ui, state: &AppState) {
    ui.label(RichText::new(state.t("traffic.unknown")).weak())
        .on_hover_text(state.t("traffic.unknown_hint"));
}

/// The status bar's words for how connections are seen and what that
/// can miss.
pub fn mode_label(ui: &mut Ui, state: &AppState) {
    let secs = super::format::seconds(state.snapshot.interval);
    let (text, hint) = match state.snapshot.capture_mode {
        CaptureMode::Ebpf => (
            state.t("traffic.mode.ebpf"),
            state.t("traffic.mode.ebpf_hint"),
        ),
        CaptureMode::Polling => (
            state.t_args("traffic.mode.polling", &[("secs", &secs)]),
            state.t_args("traffic.mode.polling_hint", &[("secs", &secs)]),
        ),
        // The guard's view, shared with this ordinary-user window.
        CaptureMode::GuardEbpf => (
            state.t("live.status.guard-ebpf"),
            state.t("live.mode.guard-ebpf"),
        ),
        CaptureMode::GuardPolling => (
            state.t("live.status.guard-polling"),
            state.t("live.mode.guard-polling"),
        ),
    };
    ui.label(text).on_hover_text(hint);
}

fn colors(dark: bool) -> (Color32, Color32) {
    let sent = theme::severity(crate::model::Severity::Medium, dark).fill;
    let received = if dark {
        Color32::from_rgb(0x42, 0x8b, 0xdf)
    } else {
        Color32::from_rgb(0x15, 0x65, 0xc0)
    };
    (sent, received)
}

/// One graph: sent as bars above the middle line, received below, the
/// oldest slot on the left; the whole is one image for screen readers.
fn graph(ui: &mut Ui, series: &[Bytes], label: &str) {
    let width = ui.available_width().max(120.0);
    let (rect, resp) = ui.allocate_exact_size(egui::vec2(width, GRAPH_H), Sense::hover());
    resp.widget_info(|| WidgetInfo::labeled(Role::Image, true, label));
    let dark = ui.visuals().dark_mode;
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 4.0, ui.visuals().faint_bg_color);
    let mid = rect.center().y;
    painter.hline(
        rect.x_range(),
        mid,
        Stroke::new(1.0, ui.visuals().weak_text_color()),
    );
    let max = series
        .iter()
        .map(|b| b.sent.max(b.received))
        .max()
        .unwrap_or(0);
    if max == 0 || series.is_empty() {
        return;
    }
    let (sent_c, recv_c) = colors(dark);
    let slot = rect.width() / series.len() as f32;
    let half = GRAPH_H / 2.0 - 2.0;
    let bar = |v: u64| -> f32 {
        if v == 0 {
            0.0
        } else {
            // At least one pixel, so a small contact is visible.
            (v as f32 / max as f32 * half).max(1.0)
        }
    };
    for (i, b) in series.iter().enumerate() {
        let x0 = rect.left() + i as f32 * slot;
        let x1 = x0 + (slot - 1.0).max(1.0);
        let up = bar(b.sent);
        if up > 0.0 {
            painter.rect_filled(
                Rect::from_x_y_ranges(x0..=x1, (mid - up)..=mid),
                0.0,
                sent_c,
            );
        }
        let down = bar(b.received);
        if down > 0.0 {
            painter.rect_filled(
                Rect::from_x_y_ranges(x0..=x1, mid..=(mid + down)),
                0.0,
                recv_c,
            );
        }
    }
}

fn legend(ui: &mut Ui, state: &AppState) {
    let (sent_c, recv_c) = colors(ui.visuals().dark_mode);
    ui.horizontal_wrapped(|ui| {
        for (c, key) in [
            (sent_c, "traffic.legend.sent"),
            (recv_c, "traffic.legend.received"),
        ] {
            let (r, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), Sense::hover());
            ui.painter().rect_filled(r, 2.0, c);
            ui.label(state.t(key));
        }
    });
}

fn sum(series: &[Bytes]) -> Bytes {
    series.iter().fold(Bytes::default(), |a, b| Bytes {
        sent: a.sent.saturating_add(b.sent),
        received: a.received.saturating_add(b.received),
    })
}

/// One period: title with its totals, the busiest slot, the graph, and
/// under it where the time starts and ends.
fn period(ui: &mut Ui, state: &AppState, title: &str, series: &[Bytes], keys: (&str, &str, &str)) {
    let total = sum(series);
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(state.t(title)).strong());
        if total.total() == 0 {
            ui.label(RichText::new(state.t("traffic.quiet")).weak());
        } else {
            ui.label(row_text(state, total));
            let busiest = series.iter().map(|b| b.total()).max().unwrap_or(0);
            ui.label(
                RichText::new(state.t_args(keys.1, &[("amount", &amount(state.lang, busiest))]))
                    .small()
                    .weak(),
            );
        }
    });
    graph(ui, series, &state.t(keys.0));
    ui.horizontal(|ui| {
        ui.label(RichText::new(state.t(keys.2)).small().weak());
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Min), |ui| {
            ui.label(RichText::new(state.t("traffic.axis.now")).small().weak());
        });
    });
}

/// The details' traffic tab for `p`.
pub fn tab(ui: &mut Ui, state: &AppState, p: &Program) {
    if !known(state) {
        ui.label(RichText::new(state.t("traffic.unknown")).strong());
        ui.label(state.t("traffic.unknown_hint"));
        return;
    }
    egui::ScrollArea::vertical()
        .id_salt("traffic-tab")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            let t = &state.traffic;
            period(
                ui,
                state,
                "traffic.hour",
                &t.last_hour(&p.key),
                (
                    "traffic.graph.hour",
                    "traffic.scale.hour",
                    "traffic.axis.hour",
                ),
            );
            ui.add_space(6.0);
            period(
                ui,
                state,
                "traffic.day",
                &t.last_day(&p.key),
                ("traffic.graph.day", "traffic.scale.day", "traffic.axis.day"),
            );
            legend(ui, state);
            ui.add_space(4.0);
            let total = t.total(&p.key);
            ui.label(state.t_args("traffic.total", &[("amount", &row_text(state, total))]));
            ui.label(
                RichText::new(state.t("traffic.watching_note"))
                    .small()
                    .weak(),
            );
        });
}

/// The programs that moved the most bytes in the last hour; a click on a
/// name opens its details.
pub fn top_talkers(ui: &mut Ui, state: &AppState, cmds: &mut Vec<Command>) {
    ui.label(RichText::new(state.t("traffic.top.title")).strong());
    if !known(state) {
        unknown_note(ui, state);
        return;
    }
    let top = state.traffic.top(TOP);
    if top.is_empty() {
        ui.label(RichText::new(state.t("traffic.top.empty")).weak());
        return;
    }
    ui.label(RichText::new(state.t("traffic.top.pick")).small().weak());
    let most = top.first().map(|(_, b)| b.total()).unwrap_or(1).max(1);
    let (sent_c, _) = colors(ui.visuals().dark_mode);
    egui::Grid::new("top-talkers")
        .num_columns(3)
        .spacing([10.0, 4.0])
        .show(ui, |ui| {
            for (i, (key, b)) in top.iter().enumerate() {
                let program = state.snapshot.program(key);
                let name = match program {
                    Some(p) => for_display(&p.name),
                    None => crate::escape::for_display(&key_name(key)),
                };
                let shown = format!("{}. {name}", i + 1);
                let r = ui.add_enabled(program.is_some(), egui::Button::new(&shown).frame(false));
                // Two programs can share a name: where each lives, on hover.
                let r = match program {
                    Some(p) => r.on_hover_text(crate::app::programs::shown_path(p)),
                    None => r,
                };
                if r.clicked() {
                    cmds.push(Command::Select(Some(key.clone())));
                }
                let (bar, _) = ui.allocate_exact_size(egui::vec2(80.0, 10.0), Sense::hover());
                let w = (b.total() as f32 / most as f32 * bar.width()).max(2.0);
                ui.painter().rect_filled(
                    Rect::from_min_size(bar.min, egui::vec2(w, bar.height())),
                    2.0,
                    sent_c,
                );
                let mut text = row_text(state, *b);
                if program.is_none() {
                    text.push_str(&state.t("traffic.top.gone"));
                }
                ui.label(text);
                ui.end_row();
            }
        });
}

fn key_name(key: &crate::model::ProgramKey) -> String {
    match key {
        crate::model::ProgramKey::Name(n) => n.clone(),
        other => other
            .path()
            .and_then(|p| p.file_name())
            .map(crate::escape::os_lossless)
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_plainly_in_both_languages() {
        assert_eq!(amount(Lang::Ja, 0), "0 バイト");
        assert_eq!(amount(Lang::En, 999), "999 bytes");
        assert_eq!(amount(Lang::Ja, 34_000), "34 KB");
        assert_eq!(amount(Lang::Ja, 1_200_000), "1.2 MB");
        assert_eq!(amount(Lang::En, 9_990_000), "10 MB");
        assert_eq!(amount(Lang::En, 2_500_000_000), "2.5 GB");
    }
}
