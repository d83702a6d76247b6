//! The window. Views read [`AppState`] and return [`Command`]s; this shell
//! feeds snapshots in, applies commands through [`update`], and carries out
//! the few effects only it can (clipboard, asking the monitor to sample).

mod background;
mod chrome;
mod columns;
mod details;
pub mod fonts;
pub mod format;
mod guard;
mod hidden;
mod list;
pub mod notice;
mod report_box;
pub mod save_dialog;
pub mod theme;
pub mod traffic;
mod widgets;
mod wizard;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, anyhow};

use crate::app::native::NativeBackend;
use crate::app::{
    AppState, Backend, BannerLevel, Command, ConsultCommand, Effect, Message, update,
};
use crate::clock::SystemClock;
use crate::i18n::{self, tr};
use crate::monitor::{DEFAULT_INTERVAL, Monitor, MonitorControl};
use crate::notify::desktop::Notifier;
use crate::setup;
use crate::tray::life::Life;
use crate::tray::settings::Settings;
use crate::tray::watch::{self, Background, Outlet, Watch};
use crate::tray::{EventSink, Tray, TrayState, instance};
use save_dialog::{NoSaveDialog, RfdSaveDialog, SaveDialog};

/// How the GUI was asked to start.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    pub data_dir: Option<PathBuf>,
    pub minimized: bool,
    /// Run even as administrator (root); the window then warns.
    pub allow_root: bool,
}

/// The program list's starting width (tested at 1024×600 in both
/// languages: tests/gui_small_screen.rs).
const LIST_WIDTH: f32 = 430.0;

/// The environment variable that allows running as root, like `--allow-root`.
pub const ALLOW_ROOT_ENV: &str = "KIZUKI_ALLOW_ROOT";

/// True when `--allow-root` was given or `KIZUKI_ALLOW_ROOT=1` is set.
pub fn root_allowed(flag: bool) -> bool {
    flag || std::env::var(ALLOW_ROOT_ENV).is_ok_and(|v| v == "1")
}

/// The window's state, its backend, and (in the real app) the monitor.
pub struct KizukiApp {
    pub state: AppState,
    backend: Box<dyn Backend>,
    monitor: Option<Monitor>,
    /// Clipboard texts asked for since the last frame, for tests to read.
    copied: Vec<String>,
    /// "Save as…" (none until the shell installs one: tests stay quiet).
    save_dialog: Box<dyn SaveDialog>,
    /// Tray, notifications and the instance socket (the real app only).
    life: Option<crate::tray::life::Life>,
    /// The window was fitted to the screen once.
    fitted: bool,
}

impl KizukiApp {
    pub fn new(state: AppState, backend: Box<dyn Backend>) -> Self {
        KizukiApp {
            state,
            backend,
            monitor: None,
            copied: Vec::new(),
            save_dialog: Box::new(NoSaveDialog::default()),
            life: None,
            fitted: false,
        }
    }

    /// Uses `dialog` for "save as…".
    pub fn with_save_dialog(mut self, dialog: Box<dyn SaveDialog>) -> Self {
        self.save_dialog = dialog;
        self
    }

    pub fn with_life(mut self, life: crate::tray::life::Life) -> Self {
        self.life = Some(life);
        self
    }

    pub fn with_monitor(mut self, monitor: Monitor) -> Self {
        self.monitor = Some(monitor);
        self
    }

    /// Texts put on the clipboard so far.
    pub fn copied(&self) -> &[String] {
        &self.copied
    }

    /// Applies one command and carries out its effects.
    pub fn apply(&mut self, ctx: &egui::Context, cmd: Command) {
        for effect in update(&mut self.state, cmd, self.backend.as_mut()) {
            match effect {
                Effect::CopyToClipboard(text) => {
                    ctx.copy_text(text.clone());
                    self.copied.push(text);
                }
                Effect::RefreshNow => {
                    if let Some(m) = &self.monitor {
                        m.send(MonitorControl::TickNow);
                    }
                }
                Effect::AskSavePath(req) => self.save_dialog.ask(&req, ctx),
                Effect::ShowWindow => {
                    ctx.send_viewport_cmd(egui::ViewportCommand::Visible(true));
                    ctx.send_viewport_cmd(egui::ViewportCommand::Minimized(false));
                    ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
                }
                Effect::LanguageChanged(lang) => {
                    // Findings and reports are worded where they are made.
                    i18n::set_lang(lang);
                    background::language_changed(self, lang);
                    ctx.send_viewport_cmd(egui::ViewportCommand::Title(i18n::tr_in(
                        lang,
                        "gui.title",
                    )));
                }
                Effect::Background(e) => background::effect(self, ctx, e),
            }
        }
        // Show the result of the user's action on the next frame.
        ctx.request_repaint();
    }

    /// Takes the monitor's newest snapshot and error, if they changed.
    fn pull(&mut self, ctx: &egui::Context) {
        let Some(m) = &self.monitor else {
            return;
        };
        let latest = m.snapshots.latest();
        let error = m.errors.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if latest.generation > self.state.snapshot.generation {
            self.apply(ctx, Command::NewSnapshot(latest));
        }
        if error != self.state.monitor_error {
            self.apply(ctx, Command::MonitorError(error));
        }
    }

    /// Applies the results of marks and panic steps that finished on the
    /// backend's worker since the last frame.
    fn poll_jobs(&mut self, ctx: &egui::Context) {
        for done in self.backend.finished_jobs() {
            self.apply(ctx, Command::JobDone(done));
        }
        for u in self.backend.guard_updates() {
            self.apply(ctx, Command::Guard(u));
        }
    }

    /// Draws the whole window into `ui` and applies what the user did.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        self.poll_jobs(&ui.ctx().clone());
        if let Some(answer) = self.save_dialog.poll() {
            let ctx = ui.ctx().clone();
            let cmd = if answer.is_none() && self.save_dialog.unavailable() {
                ConsultCommand::SaveDialogUnavailable
            } else {
                ConsultCommand::SaveDialogAnswer(answer)
            };
            self.apply(&ctx, Command::Wizard(cmd));
        }
        let mut cmds = Vec::new();
        let state = &self.state;
        egui::Panel::top("top").show(ui, |ui| {
            ui.add_space(4.0);
            chrome::top_bar(ui, state, &mut cmds);
            if state.waiting() {
                ui.add_space(2.0);
                chrome::waiting(ui, state);
            }
            if state.banners.iter().any(|b| !b.dismissable) {
                ui.add_space(2.0);
                notice::lasting(ui, state, &mut cmds);
            }
            if !state.guard.notices.is_empty() {
                ui.add_space(2.0);
                guard::notices(ui, state, &mut cmds);
            }
            ui.add_space(4.0);
        });
        egui::Panel::bottom("status").show(ui, |ui| {
            ui.add_space(2.0);
            chrome::status_bar(ui, state);
        });
        if guard::has_list(state) {
            egui::Panel::bottom("guard-blocked").show(ui, |ui| {
                ui.add_space(4.0);
                guard::blocked_list(ui, state, &mut cmds);
                ui.add_space(2.0);
            });
        }
        // The list starts narrow enough for a 1024×600 screen to keep
        // room for the details, and can be dragged either way.
        egui::Panel::left("programs")
            .resizable(true)
            .default_size(LIST_WIDTH)
            .size_range(300.0..=900.0)
            .show(ui, |ui| {
                // The pane keeps the width it was given: egui stores the
                // width the contents used, and before the first sample
                // (only the search line) that would shrink the list.
                ui.set_min_width(ui.available_width());
                ui.add_space(4.0);
                list::show(ui, state, &mut cmds);
            });
        // Under the details pane only (added after the list): the list
        // never moves; the walk-through shows its own.
        if state.wizard.is_none() && !notice::visible(state).0.is_empty() {
            egui::Panel::bottom("notices")
                .resizable(false)
                .show(ui, |ui| {
                    ui.add_space(4.0);
                    notice::stack(ui, state, &mut cmds);
                    ui.add_space(2.0);
                });
        }
        egui::CentralPanel::default().show(ui, |ui| {
            details::show(ui, state, &mut cmds);
        });
        wizard::show(ui, state, &mut cmds);
        chrome::confirm_dialog(ui, state, &mut cmds);
        background::explain_close(ui, state, &mut cmds);
        let ctx = ui.ctx().clone();
        for cmd in cmds {
            self.apply(&ctx, cmd);
        }
    }
}

impl eframe::App for KizukiApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        if !self.fitted {
            self.fitted = fit_to_monitor(ctx);
        }
        // Also while hidden: a panic from the tray reports back here.
        self.poll_jobs(ctx);
        background::logic(self, ctx);
        if !self.state.background.hidden {
            self.pull(ctx);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        // Hidden in the tray: nothing to draw.
        if !self.state.background.hidden {
            self.show(ui);
        }
    }
}

/// Shrinks the window to the screen when the screen is smaller than the
/// default size (a 1024×600 laptop); true once the screen size was known.
fn fit_to_monitor(ctx: &egui::Context) -> bool {
    let (monitor, inner) = ctx.input(|i| {
        let v = i.viewport();
        (v.monitor_size, v.inner_rect.map(|r| r.size()))
    });
    let (Some(m), Some(inner)) = (monitor, inner) else {
        return false;
    };
    // Leave room for a panel or task bar.
    let want = egui::vec2(inner.x.min(m.x), inner.y.min(m.y - 40.0).max(400.0));
    if want != inner {
        ctx.send_viewport_cmd(egui::ViewportCommand::OuterPosition(egui::pos2(0.0, 0.0)));
        ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(want));
    }
    true
}

/// Sets up an egui context the way the window needs it (fonts, sizes);
/// test harnesses call it too.
pub fn setup_context(ctx: &egui::Context) {
    fonts::install(ctx);
    ctx.all_styles_mut(|style| {
        style.spacing.item_spacing = egui::vec2(8.0, 5.0);
        style.spacing.button_padding = egui::vec2(8.0, 3.0);
    });
}

/// What the window needs to live in the background, made before eframe
/// starts (the instance socket and the tray decide how it starts).
struct BackgroundParts {
    /// Tray events, finished jobs and the guard's state wake the window,
    /// or the hidden loop while there is none.
    wake: Arc<hidden::WindowWake>,
    visible: Arc<AtomicBool>,
    tray: Option<Tray>,
    notifier: Option<Notifier>,
    watch: Watch,
    life: Life,
}

/// The tray and notifications the background thread feeds.
struct TrayOutlet {
    tray: Option<Tray>,
    notifier: Option<Notifier>,
}

impl Outlet for TrayOutlet {
    fn tray(&mut self, state: TrayState) {
        if let Some(t) = &self.tray {
            t.push(state);
        }
    }

    fn notify(&mut self, n: crate::notify::Rendered) {
        if let Some(x) = &self.notifier {
            x.send(n);
        }
    }
}

/// Claims the instance socket (`None`: another instance was asked to show
/// itself), reads the settings, and starts the tray and the notifier.
fn background_parts(launch: &Launch, state: &mut AppState) -> Result<Option<BackgroundParts>> {
    let data = launch.data_dir.as_deref();
    let mut guard_listener = None;
    if let Some(path) = instance::socket_path(instance::runtime_dir().as_deref(), data) {
        match instance::claim(&path) {
            Ok(instance::Claim::Secondary) => return Ok(None),
            Ok(instance::Claim::Primary(l)) => guard_listener = Some(l),
            // Without the socket a second launch opens a second window;
            // that is all this costs.
            Err(e) => log::warn!("instance socket {}: {e}", path.display()),
        }
    }
    let now = std::time::SystemTime::now();
    let (settings, warning) = Settings::load(data, now);
    if let Some(w) = warning {
        state.push_banner(
            BannerLevel::Warning,
            Message::new("gui.msg.plain").arg("text", w),
            true,
        );
    }
    // The panic state is never restored from a file: it comes from the
    // guard, read back, once the window runs.
    let bg = &mut state.background;
    bg.notifications = settings.notifications;
    bg.close_explained = settings.close_explained;

    let wake = Arc::new(hidden::WindowWake::default());
    let tray_wake = wake.clone();
    let (events, events_rx) = EventSink::new(Arc::new(move || tray_wake.wake()));
    let mut initial = TrayState::initial(state.lang);
    initial.notifications = settings.notifications;
    let tray = match Tray::spawn(initial.clone(), events.clone()) {
        Ok(t) => Some(t),
        Err(e) => {
            log::warn!("{}: {e}", tr("tray.none"));
            None
        }
    };
    state.background.tray = tray.is_some();
    // Starting in the tray needs a tray; without one the window shows.
    state.background.hidden = launch.minimized && tray.is_some();
    let notifier = Notifier::spawn(events.clone()).ok();
    let guard = match guard_listener {
        Some(l) => l.spawn(events.clone()).ok(),
        None => None,
    };
    let visible = Arc::new(AtomicBool::new(!state.background.hidden));
    let (told, told_warnings) = crate::notify::told::ToldLedger::load(
        launch.data_dir.as_deref(),
        std::time::SystemTime::now(),
    );
    for w in told_warnings {
        state.push_banner(
            BannerLevel::Warning,
            Message::new("gui.msg.plain").arg("text", w),
            true,
        );
    }
    let watch = Watch::new(Arc::new(SystemClock), state.utc_offset, initial).with_ledger(told);
    // Hidden from the start, the window is not made at all until asked
    // for (see `hidden`), so it never has to hide itself.
    let life =
        Life::new(events_rx, visible.clone(), launch.data_dir.clone(), false).with_instance(guard);
    Ok(Some(BackgroundParts {
        wake,
        visible,
        tray,
        notifier,
        watch,
        life,
    }))
}

/// The local time offset. Asked before any thread starts: the platform
/// call is only sound while the process is single-threaded.
fn local_offset() -> time::UtcOffset {
    time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC)
}

/// Windows users know "run as administrator", not "root".
const ROOT_REFUSAL: &str = if cfg!(windows) {
    "gui.err.elevated"
} else {
    "gui.err.root"
};
const ROOT_WARNING: &str = if cfg!(windows) {
    "gui.warn.elevated"
} else {
    "gui.warn.root"
};

/// Starts the log file and, when the data folder cannot be written, says
/// so for as long as the window is open: marks, settings and the journal
/// would otherwise be lost without a word.
fn data_folder_notice(state: &mut AppState, data: Option<&std::path::Path>) {
    let Some(dir) = data else {
        state.push_banner(
            BannerLevel::Error,
            Message::new("gui.err.data_dir_none"),
            false,
        );
        return;
    };
    let shown = crate::escape::for_display(&crate::escape::os_lossless(dir.as_os_str()));
    let writable = crate::logfile::init(dir).is_ok() && folder_writable(dir);
    if !writable {
        state.push_banner(
            BannerLevel::Error,
            Message::new("gui.err.data_dir").arg("path", shown),
            false,
        );
    }
}

/// True when a file can be created in `dir` (the log may be open from an
/// earlier start and say nothing about the folder now).
fn folder_writable(dir: &std::path::Path) -> bool {
    let probe = dir.join(format!(".kizuki-write-check-{}", std::process::id()));
    let ok = std::fs::write(&probe, b"ok").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// Opens the window and runs until it is closed.
pub fn run(launch: Launch) -> Result<()> {
    let admin = crate::probe::running_as_admin();
    if admin && !root_allowed(launch.allow_root) {
        return Err(anyhow!("{}", tr(ROOT_REFUSAL)));
    }
    let mut state = AppState::new(i18n::lang());
    state.utc_offset = local_offset();
    data_folder_notice(&mut state, launch.data_dir.as_deref());
    if admin {
        state.push_banner(BannerLevel::Warning, Message::new(ROOT_WARNING), false);
    }
    let opts = setup::Options {
        data_dir: launch.data_dir.clone(),
        interval: DEFAULT_INTERVAL,
        record: true,
    };
    let Some(mut parts) = background_parts(&launch, &mut state)? else {
        // Another kizuki runs on this data folder and was asked to show itself.
        println!("{}", tr("tray.already_running"));
        return Ok(());
    };
    let (contacts, contacts_err) =
        crate::consult::Contacts::load_or_builtin(launch.data_dir.as_deref());
    state.contacts = std::sync::Arc::new(contacts);
    if let Some(e) = contacts_err {
        state.push_banner(
            BannerLevel::Warning,
            Message::new("gui.msg.plain").arg("text", e.to_string()),
            true,
        );
    }
    let marks = setup::open_marks(&opts);
    for w in marks.take_warnings() {
        state.push_banner(
            BannerLevel::Warning,
            Message::new("gui.msg.plain").arg("text", w.message()),
            true,
        );
    }
    // Started from Explorer, kizuki.exe (a console program, so the CLI
    // prints) would keep an empty console window open beside this one.
    #[cfg(windows)]
    crate::platform::win::detach_own_console();
    let blocks = crate::guard::blocked::GuardBlocks::default();
    let core = setup::native_monitor_with(&opts, marks.clone(), blocks.clone())?;
    // Each snapshot goes to the background thread (tray, notifications);
    // it repaints the window only while it is shown.
    let (bg_tx, bg_rx) = Background::channel();
    let publish_tx = bg_tx.clone();
    let visible = parts.visible.clone();
    let publish_wake = parts.wake.clone();
    let on_publish = Box::new(move || {
        let _ = publish_tx.send(watch::Control::Snapshot);
        if visible.load(Ordering::SeqCst) {
            publish_wake.repaint();
        }
    });
    let monitor = Monitor::spawn(core, true, on_publish)?;
    let background = Background::spawn(
        parts.watch,
        monitor.snapshots.clone(),
        bg_tx,
        bg_rx,
        Box::new(TrayOutlet {
            tray: parts.tray.take(),
            notifier: parts.notifier.take(),
        }),
    )?;
    let life = parts.life.with_background(background);
    let (job_wake, guard_wake) = (parts.wake.clone(), parts.wake.clone());
    let guard_link = crate::guard::local::default_link(launch.data_dir.as_deref(), marks.clone());
    let backend = NativeBackend::new(launch.data_dir, marks, Some(monitor.snapshots.clone()))
        .with_waker(Arc::new(move || job_wake.wake()))
        .with_guard_watch(guard_link, Arc::new(move || guard_wake.wake()), blocks);
    let app = KizukiApp::new(state, Box::new(backend))
        .with_monitor(monitor)
        .with_save_dialog(Box::new(RfdSaveDialog::default()))
        .with_life(life);
    run_windows(app, &parts.wake)
}

/// Runs the app: hidden in the tray from the start, without a window
/// until the user asks for it (see [`hidden`]); then in the window, which
/// from then on hides and shows as usual. Returns when the app quits.
fn run_windows(mut app: KizukiApp, wake: &Arc<hidden::WindowWake>) -> Result<()> {
    if app.state.background.hidden {
        hidden::run(&mut app, wake);
        if app.state.background.quitting {
            return Ok(());
        }
    }
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(tr("gui.title"))
            .with_app_id("jp.kizuki.Kizuki")
            .with_inner_size([1180.0, 760.0])
            .with_min_inner_size([760.0, 480.0]),
        ..Default::default()
    };
    let window_wake = wake.clone();
    let result = eframe::run_native(
        "kizuki",
        native,
        Box::new(move |cc| {
            setup_context(&cc.egui_ctx);
            window_wake.attach(Some(cc.egui_ctx.clone()));
            // Country/AS data for the details, off the window's thread.
            setup::prewarm_geo();
            Ok(Box::new(app))
        }),
    );
    wake.attach(None);
    result.map_err(|e| anyhow!("{e}"))
}
