//! Small building blocks shared by the views: chips, the initial circle,
//! labels that truncate with the full text on hover.

use egui::{
    Align, Align2, CornerRadius, FontId, Frame, Label, Layout, Margin, Response, RichText, Sense,
    Ui, Vec2,
};

use super::theme::{self, Chip};

/// A rounded, coloured label (badges, severities).
pub fn chip(ui: &mut Ui, text: &str, colors: Chip) -> Response {
    Frame::new()
        .fill(colors.fill)
        .corner_radius(CornerRadius::same(9))
        .inner_margin(Margin::symmetric(7, 1))
        .show(ui, |ui| {
            ui.add(
                Label::new(RichText::new(text).color(colors.text).size(12.5))
                    .selectable(false)
                    .truncate(),
            )
        })
        .inner
}

/// A coloured circle with the name's first letter, standing in for an icon.
pub fn initial(ui: &mut Ui, name: &str, diameter: f32) {
    let (rect, _) = ui.allocate_exact_size(Vec2::splat(diameter), Sense::hover());
    let c = theme::initial(name, ui.visuals().dark_mode);
    let letter: String = name
        .chars()
        .find(|c| c.is_alphanumeric())
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_else(|| "?".into());
    let p = ui.painter();
    p.circle_filled(rect.center(), diameter / 2.0, c.fill);
    p.text(
        rect.center(),
        Align2::CENTER_CENTER,
        letter,
        FontId::proportional(diameter * 0.55),
        c.text,
    );
}

/// A label cut to the space it has, the full text shown on hover.
pub fn cut(ui: &mut Ui, text: impl Into<RichText>) -> Response {
    ui.add(Label::new(text.into()).truncate())
}

/// Runs `f` in a cell of exactly `width`, contents centred vertically.
pub fn cell<R>(ui: &mut Ui, width: f32, height: f32, f: impl FnOnce(&mut Ui) -> R) -> R {
    ui.allocate_ui_with_layout(
        Vec2::new(width, height),
        Layout::left_to_right(Align::Center),
        |ui| {
            ui.set_width(width);
            f(ui)
        },
    )
    .inner
}
