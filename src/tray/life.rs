//! Everything the window holds to live in the background: tray events to
//! drain, the background thread to steer, whether it is shown (so the
//! monitor wakes it only then), the settings file, the instance socket.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;

use super::settings::Settings;
use super::watch::{Background, Control};
use super::{TrayEvent, instance};

pub struct Life {
    events: Receiver<TrayEvent>,
    background: Option<Background>,
    visible: Arc<AtomicBool>,
    data_dir: Option<PathBuf>,
    start_hidden: bool,
    _instance: Option<instance::Guard>,
}

impl Life {
    pub fn new(
        events: Receiver<TrayEvent>,
        visible: Arc<AtomicBool>,
        data_dir: Option<PathBuf>,
        start_hidden: bool,
    ) -> Self {
        Life {
            events,
            background: None,
            visible,
            data_dir,
            start_hidden,
            _instance: None,
        }
    }

    pub fn with_background(mut self, b: Background) -> Self {
        self.background = Some(b);
        self
    }

    pub fn with_instance(mut self, g: Option<instance::Guard>) -> Self {
        self._instance = g;
        self
    }

    /// Tray events that arrived since the last call.
    pub fn drain(&self) -> Vec<TrayEvent> {
        self.events.try_iter().collect()
    }

    /// True once, on the first frame, when the window starts in the tray.
    pub fn take_start_hidden(&mut self) -> bool {
        std::mem::take(&mut self.start_hidden)
    }

    /// Whether the window is on screen: while hidden, new snapshots do not
    /// wake it.
    pub fn set_visible(&self, v: bool) {
        self.visible.store(v, Ordering::SeqCst);
    }

    pub fn control(&self, c: Control) {
        if let Some(b) = &self.background {
            b.send(c);
        }
    }

    pub fn save_settings(&self, s: &Settings) -> std::io::Result<()> {
        s.save(self.data_dir.as_deref())
    }
}
