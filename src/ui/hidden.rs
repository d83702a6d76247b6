//! The app started in the tray (`--minimized`, autostart) without a
//! window: eframe, its GL context (Mesa, on a machine without a GPU
//! driver: LLVM), the font atlas and the country data are made only when
//! the user first asks for the window. Until then the monitor, the tray,
//! notifications, jobs and the instance socket run as always, and this
//! loop does what the hidden window's `logic` did: tray events, finished
//! jobs, the guard's read-back state.
//!
//! Once made, the window stays and hides in the tray as before: winit
//! cannot make a second event loop in one process, and the X connection
//! it keeps holds the GL driver, so closing it would free little.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::{KizukiApp, background};

/// How long the hidden loop sleeps when nothing wakes it (a safety net:
/// every event that matters wakes it at once).
const IDLE_WAIT: Duration = Duration::from_secs(60);

/// Wakes whoever runs the app now: the window (a repaint) while it is
/// open, else the hidden loop.
#[derive(Default)]
pub struct WindowWake {
    ctx: Mutex<Option<egui::Context>>,
    pending: Mutex<bool>,
    cv: Condvar,
}

impl WindowWake {
    /// Something for the app to look at: a tray event, a finished job,
    /// the guard's state.
    pub fn wake(&self) {
        self.repaint();
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    /// Repaints the window when one is open (a new snapshot to show).
    pub fn repaint(&self) {
        if let Some(c) = self.ctx.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            c.request_repaint();
        }
    }

    /// The window's context while it is open; `None` once it closed.
    pub fn attach(&self, ctx: Option<egui::Context>) {
        *self.ctx.lock().unwrap_or_else(|e| e.into_inner()) = ctx;
    }

    /// Waits for [`WindowWake::wake`] (or `timeout`); true when woken.
    fn wait(&self, timeout: Duration) -> bool {
        let guard = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let (mut guard, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |p| !*p)
            .unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *guard)
    }
}

/// Runs the app without a window while it is hidden in the tray; returns
/// when the window is asked for or the app quits.
pub(super) fn run(app: &mut KizukiApp, wake: &WindowWake) {
    // Effects meant for a window (viewport commands, repaints) land in a
    // context nobody draws: there is no window to act on.
    let ctx = egui::Context::default();
    if let Some(life) = app.life.as_mut() {
        life.take_start_hidden();
    }
    loop {
        app.poll_jobs(&ctx);
        background::logic(app, &ctx);
        let bg = &app.state.background;
        if !bg.hidden || bg.quitting {
            return;
        }
        wake.wait(IDLE_WAIT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_before_the_wait_is_not_lost() {
        let w = WindowWake::default();
        w.wake();
        assert!(w.wait(Duration::from_secs(5)));
        // Taken: the next wait times out.
        assert!(!w.wait(Duration::from_millis(1)));
    }

    #[test]
    fn a_wake_from_another_thread_ends_the_wait() {
        let w = std::sync::Arc::new(WindowWake::default());
        let w2 = w.clone();
        let t = std::thread::spawn(move || w2.wake());
        assert!(w.wait(Duration::from_secs(30)));
        t.join().unwrap();
    }
}
