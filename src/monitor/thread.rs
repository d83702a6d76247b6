//! [`Monitor`]: a [`MonitorCore`] running on its own named thread,
//! publishing each snapshot through a [`SnapshotReceiver`].

use crate::lock::MutexExt;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::publish::SnapshotReceiver;
use super::tick::MonitorCore;

/// Messages to the sampling thread.
#[derive(Debug)]
pub enum MonitorControl {
    /// Sample now instead of waiting for the interval (tests, "refresh").
    TickNow,
    Stop,
}

/// A running sampling thread.
pub struct Monitor {
    control: mpsc::Sender<MonitorControl>,
    join: Option<JoinHandle<()>>,
    pub snapshots: SnapshotReceiver,
    pub errors: Arc<Mutex<Option<String>>>,
}

impl Monitor {
    /// Starts `core` on a thread named `kizuki-monitor`. `on_publish` runs
    /// after each snapshot (the GUI asks for a repaint there). With
    /// `autorun` false the thread samples only on [`MonitorControl::TickNow`],
    /// which is how tests drive it.
    pub fn spawn(
        mut core: MonitorCore,
        autorun: bool,
        on_publish: Box<dyn Fn() + Send>,
    ) -> std::io::Result<Monitor> {
        let (tx, rx) = mpsc::channel::<MonitorControl>();
        let (sender, receiver) = SnapshotReceiver::new();
        let errors = Arc::new(Mutex::new(None));
        let errors_thread = errors.clone();
        let join = std::thread::Builder::new()
            .name("kizuki-monitor".into())
            .spawn(move || {
                let run_tick = |core: &mut MonitorCore| match core.tick() {
                    Ok(s) => {
                        *errors_thread.locked() = None;
                        sender.publish(Arc::new(s));
                        on_publish();
                    }
                    Err(e) => {
                        *errors_thread.locked() = Some(e.to_string());
                        on_publish();
                    }
                };
                if autorun {
                    run_tick(&mut core);
                }
                loop {
                    let msg = if autorun {
                        rx.recv_timeout(core.interval())
                    } else {
                        rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
                    };
                    match msg {
                        Ok(MonitorControl::TickNow) | Err(RecvTimeoutError::Timeout) => {
                            run_tick(&mut core)
                        }
                        Ok(MonitorControl::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                core.save();
            })?;
        Ok(Monitor {
            control: tx,
            join: Some(join),
            snapshots: receiver,
            errors,
        })
    }

    pub fn send(&self, c: MonitorControl) {
        // The thread only stops when asked to, so a failed send means it is
        // already gone; there is nothing left to tell.
        let _ = self.control.send(c);
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.control.send(MonitorControl::Stop);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.shutdown();
    }
}
