//! Small building blocks shared by the views: chips, the initial circle,
//! labels that truncate with the full text on hover.

use egui::{
    Align, Align2, Color32, CornerRadius, FontId, Frame, Label, Layout, Margin, Response, RichText,
    Role, Sense, TextStyle, TextWrapMode, Ui, Vec2, WidgetInfo, WidgetText,
};

use super::theme::{self, Chip};

/// A rounded, coloured label (badges, severities), cut to the space it has
/// with the full text on hover. Painted by hand so it keeps its own height
/// in any layout; it is still a label for screen readers and tests.
pub fn chip(ui: &mut Ui, text: &str, colors: Chip) -> Response {
    let pad = Vec2::new(7.0, 2.0);
    let max_text = (ui.available_width() - 2.0 * pad.x).max(12.0);
    let galley = WidgetText::from(RichText::new(text).size(12.5)).into_galley(
        ui,
        Some(TextWrapMode::Truncate),
        max_text,
        TextStyle::Body,
    );
    let size = galley.size() + 2.0 * pad;
    let (rect, resp) = ui.allocate_exact_size(size, Sense::hover());
    if ui.is_rect_visible(rect) {
        let p = ui.painter();
        p.rect_filled(rect, CornerRadius::same(9), colors.fill);
        p.galley(rect.min + pad, galley.clone(), colors.text);
    }
    resp.widget_info(|| WidgetInfo::labeled(Role::Label, true, text));
    if galley.elided {
        resp.on_hover_text(text)
    } else {
        resp
    }
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

/// A rounded box in `fill` across the whole width (banners, notes,
/// warnings), padded by `margin` (horizontal, vertical).
pub fn full_width_box<R>(
    ui: &mut Ui,
    fill: Color32,
    margin: (i8, i8),
    add: impl FnOnce(&mut Ui) -> R,
) -> R {
    Frame::new()
        .fill(fill)
        .corner_radius(6)
        .inner_margin(Margin::symmetric(margin.0, margin.1))
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            add(ui)
        })
        .inner
}
