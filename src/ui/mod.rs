//! The window. Views read the latest snapshot and never do I/O.

pub mod fonts;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, anyhow};

use crate::clock::hms;
use crate::escape::for_display;
use crate::i18n::{tr, tr_args};
use crate::model::Snapshot;
use crate::monitor::{DEFAULT_INTERVAL, Monitor};
use crate::setup;

/// How the GUI was asked to start.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    pub data_dir: Option<PathBuf>,
    pub minimized: bool,
}

pub struct MainApp {
    monitor: Option<Monitor>,
    snapshot: Arc<Snapshot>,
}

impl MainApp {
    pub fn new(monitor: Option<Monitor>) -> Self {
        MainApp {
            monitor,
            snapshot: Arc::new(Snapshot::empty()),
        }
    }

    /// Takes the monitor's newest snapshot; older generations are ignored.
    fn pull(&mut self) {
        if let Some(m) = &self.monitor {
            let latest = m.snapshots.latest();
            if latest.generation > self.snapshot.generation {
                self.snapshot = latest;
            }
        }
    }
}

impl eframe::App for MainApp {
    fn logic(&mut self, _ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.pull();
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let snap = self.snapshot.clone();
        egui::Panel::bottom("status").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(tr_args(
                    "gui.status.interval",
                    &[("secs", &snap.interval.as_secs_f32().to_string())],
                ));
                ui.separator();
                ui.label(tr_args(
                    "gui.status.updated",
                    &[("time", &hms(snap.taken_at))],
                ));
                ui.separator();
                ui.label(if snap.complete {
                    tr("gui.status.complete")
                } else {
                    tr("gui.status.incomplete")
                });
            });
        });
        egui::CentralPanel::default().show(ui, |ui| {
            ui.heading(tr("gui.programs"));
            if snap.generation == 0 {
                ui.label(tr("gui.waiting"));
                return;
            }
            egui::ScrollArea::vertical().show(ui, |ui| {
                for p in &snap.programs {
                    let live = p.live_connections().count();
                    ui.horizontal(|ui| {
                        ui.strong(for_display(&p.name));
                        ui.label(format!("{} {live}", tr("gui.connections")));
                    });
                }
            });
        });
    }
}

/// Opens the window and runs until it is closed.
pub fn run(launch: Launch) -> Result<()> {
    let opts = setup::Options {
        data_dir: launch.data_dir,
        interval: DEFAULT_INTERVAL,
    };
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(tr("gui.title"))
            .with_inner_size([1100.0, 720.0])
            .with_visible(!launch.minimized),
        ..Default::default()
    };
    eframe::run_native(
        "kizuki",
        native,
        Box::new(move |cc| {
            fonts::install(&cc.egui_ctx);
            let ctx = cc.egui_ctx.clone();
            let core = setup::native_monitor(&opts)?;
            let monitor = Monitor::spawn(core, true, Box::new(move || ctx.request_repaint()))?;
            Ok(Box::new(MainApp::new(Some(monitor))))
        }),
    )
    .map_err(|e| anyhow!("{e}"))
}
