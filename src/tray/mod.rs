//! Life in the background: the tray indicator, the thread that keeps it
//! and the notifications up to date while the window is hidden, the
//! single-instance socket, and the small settings file they share.
//!
//! Data flows one way: the monitor publishes snapshots; the background
//! thread ([`watch`]) turns them into a [`TrayState`] for the tray and
//! notifications for the desktop; the tray and notification clicks send
//! [`TrayEvent`]s to the window, which turns them into `Command`s.

pub mod icons;
pub mod instance;
pub mod life;
pub mod model;
pub mod settings;
pub mod watch;

#[cfg(windows)]
mod native_win;
#[cfg(target_os = "linux")]
mod sni;

use std::sync::mpsc;
use std::sync::{Arc, mpsc::Sender};
use std::thread::JoinHandle;
use std::time::Duration;

pub use model::{Counts, Level, MenuItem, TrayState};

use crate::model::ProgramKey;

/// What the tray (and a clicked notification, and a second launch) asks
/// of the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrayEvent {
    /// Show the window and bring it forward.
    Open,
    /// Show the window with this program selected (a clicked notification).
    OpenProgram(ProgramKey),
    MuteOneHour,
    /// Stop all traffic (the panic button).
    Panic,
    /// Undo the panic.
    Resume,
    Consult,
    Quit,
    /// The tray host went away (`false`) or came back (`true`).
    Available(bool),
}

impl From<MenuItem> for TrayEvent {
    fn from(m: MenuItem) -> Self {
        match m {
            MenuItem::Open => TrayEvent::Open,
            MenuItem::MuteOneHour => TrayEvent::MuteOneHour,
            MenuItem::Panic => TrayEvent::Panic,
            MenuItem::Resume => TrayEvent::Resume,
            MenuItem::Consult => TrayEvent::Consult,
            MenuItem::Quit => TrayEvent::Quit,
        }
    }
}

/// Where tray events go: a channel the window drains, plus a wake-up so
/// the window runs even while hidden.
#[derive(Clone)]
pub struct EventSink {
    tx: Sender<TrayEvent>,
    wake: Arc<dyn Fn() + Send + Sync>,
}

impl EventSink {
    pub fn new(wake: Arc<dyn Fn() + Send + Sync>) -> (EventSink, mpsc::Receiver<TrayEvent>) {
        let (tx, rx) = mpsc::channel();
        (EventSink { tx, wake }, rx)
    }

    pub fn send(&self, ev: TrayEvent) {
        // A closed channel means the window is gone; nobody is left to tell.
        if self.tx.send(ev).is_ok() {
            (self.wake)();
        }
    }
}

/// Why there is no tray.
#[derive(Debug, thiserror::Error)]
pub enum TrayError {
    /// No tray host (StatusNotifierWatcher) on this desktop, or no session bus.
    #[error("no tray on this desktop: {0}")]
    Unavailable(String),
    #[error("the tray thread could not start: {0}")]
    Thread(#[from] std::io::Error),
}

/// The running tray: pushes states to its thread (`kizuki-tray`).
pub struct Tray {
    tx: Sender<TrayState>,
    join: Option<JoinHandle<()>>,
}

impl Tray {
    /// Registers the tray indicator. Fails with [`TrayError::Unavailable`]
    /// when the desktop has no tray; the window then quits when closed.
    pub fn spawn(initial: TrayState, events: EventSink) -> Result<Tray, TrayError> {
        let (tx, rx) = mpsc::channel::<TrayState>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let join = std::thread::Builder::new()
            .name("kizuki-tray".into())
            .spawn(move || run(initial, events, rx, ready_tx))?;
        // Registering takes milliseconds; a hung bus must not hold the start.
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(Tray {
                tx,
                join: Some(join),
            }),
            Ok(Err(why)) => Err(TrayError::Unavailable(why)),
            Err(_) => Err(TrayError::Unavailable(
                "no answer from the session bus".into(),
            )),
        }
    }

    /// Shows `state` (the tray thread skips repeats).
    pub fn push(&self, state: TrayState) {
        let _ = self.tx.send(state);
    }
}

impl Drop for Tray {
    fn drop(&mut self) {
        // Closing the channel ends the thread, which removes the item.
        let (tx, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.tx, tx));
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

#[cfg(target_os = "linux")]
fn run(
    initial: TrayState,
    events: EventSink,
    rx: mpsc::Receiver<TrayState>,
    ready: Sender<Result<(), String>>,
) {
    sni::run(initial, events, rx, ready)
}

#[cfg(windows)]
fn run(
    initial: TrayState,
    events: EventSink,
    rx: mpsc::Receiver<TrayState>,
    ready: Sender<Result<(), String>>,
) {
    native_win::run(initial, events, rx, ready)
}

#[cfg(not(any(target_os = "linux", windows)))]
fn run(
    _initial: TrayState,
    _events: EventSink,
    _rx: mpsc::Receiver<TrayState>,
    ready: Sender<Result<(), String>>,
) {
    // macOS gets its tray with tray-icon's AppKit backend, which must run
    // on the main thread; until that is wired up, none.
    let _ = ready.send(Err("no tray support on this platform yet".into()));
}

/// Runs on Windows (in CI under Wine): the notification-area icon.
#[cfg(all(test, windows))]
mod windows_tests {
    use super::*;
    use crate::i18n::Lang;

    #[test]
    fn the_tray_takes_states_and_goes_away_when_dropped() {
        let (events, _rx) = EventSink::new(Arc::new(|| {}));
        match Tray::spawn(TrayState::initial(Lang::Ja), events) {
            Ok(tray) => {
                let mut red = TrayState::initial(Lang::Ja);
                red.ready = true;
                red.level = Level::Red;
                red.panic = true;
                tray.push(red);
                // Dropping joins the tray thread: it must notice the
                // closed channel and remove the icon.
                drop(tray);
            }
            Err(TrayError::Unavailable(why)) => {
                eprintln!("skipping the tray test: no notification area here: {why}");
            }
            Err(e) => panic!("{e}"),
        }
    }
}
