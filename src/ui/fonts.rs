//! Japanese glyphs on every machine: egui's own fonts have none, so the
//! bundled IPAexGothic is added as a fallback to both families.

use egui::epaint::text::{FontInsert, FontPriority, InsertFontFamily};
use egui::{FontData, FontFamily};

static IPAEX_GOTHIC: &[u8] = include_bytes!("../../assets/fonts/ipaexg.ttf");

/// Installs the bundled Japanese font into `ctx`. Call it for every
/// context, test harnesses included.
pub fn install(ctx: &egui::Context) {
    ctx.add_font(FontInsert::new(
        "ipaexg",
        FontData::from_static(IPAEX_GOTHIC),
        vec![
            InsertFontFamily {
                family: FontFamily::Proportional,
                priority: FontPriority::Lowest,
            },
            InsertFontFamily {
                family: FontFamily::Monospace,
                priority: FontPriority::Lowest,
            },
        ],
    ));
}
