//! The one kittest fixture of the window tests: a window of a given size
//! and language over a recording backend, fed snapshots by hand.

use std::sync::Arc;

use egui_kittest::Harness;

use kizuki::app::{AppState, Command, RecordingBackend};
use kizuki::i18n::Lang;
use kizuki::model::Snapshot;
use kizuki::ui::KizukiApp;

/// A 1024×600 laptop screen, the smallest the window is made for.
pub const SMALL: egui::Vec2 = egui::vec2(1024.0, 600.0);
/// A common 1366×768 screen.
pub const COMMON: egui::Vec2 = egui::vec2(1366.0, 768.0);

/// The window at `size` in `lang` over `backend` (clones share calls).
pub fn window(
    lang: Lang,
    size: egui::Vec2,
    backend: &RecordingBackend,
) -> Harness<'static, KizukiApp> {
    let app = KizukiApp::new(AppState::new(lang), Box::new(backend.clone()));
    Harness::builder()
        .with_size(size)
        .with_context_setup(kizuki::ui::setup_context)
        .build_ui_state(|ui, app: &mut KizukiApp| app.show(ui), app)
}

/// Gives the window `cmd` as if the user (or the monitor) did it, and
/// draws.
pub fn apply(h: &mut Harness<'static, KizukiApp>, cmd: Command) {
    let ctx = h.ctx.clone();
    h.state_mut().apply(&ctx, cmd);
    h.run();
}

/// Feeds one snapshot (its generation must grow).
pub fn feed(h: &mut Harness<'static, KizukiApp>, snap: Snapshot) {
    apply(h, Command::NewSnapshot(Arc::new(snap)));
}
