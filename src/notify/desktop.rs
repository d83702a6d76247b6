//! Hands notifications to the desktop's notification service on a thread
//! of its own (`kizuki-notify`), so a slow or missing service never holds
//! up sampling or the window. A click on a notification opens kizuki.

use std::sync::mpsc;
use std::thread::JoinHandle;

use super::Rendered;
use crate::tray::EventSink;

/// The sending thread; dropping it lets the thread end.
pub struct Notifier {
    tx: mpsc::Sender<Rendered>,
    _join: Option<JoinHandle<()>>,
}

impl Notifier {
    /// Starts the thread. Clicks are reported through `events`.
    pub fn spawn(events: EventSink) -> std::io::Result<Notifier> {
        let (tx, rx) = mpsc::channel::<Rendered>();
        let join = std::thread::Builder::new()
            .name("kizuki-notify".into())
            .spawn(move || {
                let mut service = platform::Service::new(events);
                while let Ok(n) = rx.recv() {
                    service.show(&n);
                }
            })?;
        Ok(Notifier {
            tx,
            _join: Some(join),
        })
    }

    pub fn send(&self, n: Rendered) {
        // The thread only ends when this sender is dropped.
        let _ = self.tx.send(n);
    }
}

/// Characters a notification server may read as markup become look-alikes.
#[cfg(any(target_os = "linux", test))]
fn plain(s: &str) -> String {
    s.replace('&', "＆").replace('<', "＜").replace('>', "＞")
}

/// True when a notify error means "no notification service here", which is
/// a fact about the desktop, not a failure.
#[cfg(any(target_os = "linux", test))]
fn is_unavailable(message: &str) -> bool {
    [
        "ServiceUnknown",
        "org.freedesktop.DBus.Error.NoServer",
        "NoReply",
    ]
    .iter()
    .any(|m| message.contains(m))
        || message.contains("DBUS_SESSION_BUS_ADDRESS")
}

#[cfg(target_os = "linux")]
mod platform {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use notify_rust::{Hint, Notification, NotificationHandle, Timeout, Urgency};

    use super::{Rendered, is_unavailable, plain};
    use crate::tray::{EventSink, TrayEvent};

    /// How long a shown notification's click is waited for.
    const CLICK_WAIT: Duration = Duration::from_secs(10 * 60);
    /// At most this many notifications are watched for clicks at once
    /// (each watch holds a thread and a bus connection).
    const MAX_WATCHED: usize = 6;

    pub struct Service {
        events: EventSink,
        watched: Arc<AtomicUsize>,
        unavailable_said: bool,
        failed_said: bool,
    }

    impl Service {
        pub fn new(events: EventSink) -> Self {
            Service {
                events,
                watched: Arc::new(AtomicUsize::new(0)),
                unavailable_said: false,
                failed_said: false,
            }
        }

        pub fn show(&mut self, n: &Rendered) {
            let shown = Notification::new()
                .appname("kizuki")
                .summary(&plain(&n.summary))
                .body(&plain(&n.body))
                .icon("kizuki")
                .action("default", &crate::i18n::tr("notify.action.open"))
                .hint(Hint::DesktopEntry("kizuki".into()))
                .hint(Hint::Category("network".into()))
                .urgency(Urgency::Normal)
                .timeout(Timeout::Default)
                .show();
            match shown {
                Ok(handle) => self.watch(handle, n.target.clone()),
                Err(e) => {
                    let msg = e.to_string();
                    if is_unavailable(&msg) {
                        if !self.unavailable_said {
                            self.unavailable_said = true;
                            log::warn!("{}", crate::i18n::tr("notify.unavailable"));
                        }
                    } else if !self.failed_said {
                        self.failed_said = true;
                        log::warn!("{}: {msg}", crate::i18n::tr("notify.failed"));
                    }
                }
            }
        }

        /// Waits (on a short-lived thread) for a click, then opens kizuki at
        /// the program.
        fn watch(&self, handle: NotificationHandle, target: Option<crate::model::ProgramKey>) {
            if self.watched.fetch_add(1, Ordering::SeqCst) >= MAX_WATCHED {
                self.watched.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            let events = self.events.clone();
            let watched = self.watched.clone();
            let spawned = std::thread::Builder::new()
                .name("kizuki-notify-click".into())
                .spawn(move || {
                    let mut clicked = false;
                    let wait = handle.wait_for_action_async(|r| {
                        clicked = matches!(r, notify_rust::NotificationResponse::Default)
                            || matches!(r, notify_rust::NotificationResponse::Action(a) if a == "default");
                    });
                    let timeout = async {
                        async_io::Timer::after(CLICK_WAIT).await;
                    };
                    futures_lite::future::block_on(futures_lite::future::or(wait, timeout));
                    if clicked {
                        events.send(match target {
                            Some(k) => TrayEvent::OpenProgram(k),
                            None => TrayEvent::Open,
                        });
                    }
                    watched.fetch_sub(1, Ordering::SeqCst);
                });
            if spawned.is_err() {
                self.watched.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

#[cfg(windows)]
mod platform {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use notify_rust::{Notification, NotificationResponse, Timeout};

    use super::Rendered;
    use crate::notify::APP_ID;
    use crate::tray::{EventSink, TrayEvent};

    /// Registering [`APP_ID`] for the user here makes Windows show toasts
    /// as sent by "kizuki" even without the installer's shortcut.
    const APP_ID_KEY: &str = r"Software\Classes\AppUserModelId\jp.kizuki.Kizuki";
    /// At most this many toasts are watched for clicks at once.
    const MAX_WATCHED: usize = 6;

    pub struct Service {
        events: EventSink,
        /// `None`: registering failed; toasts then go out under PowerShell's
        /// id (the one every Windows has), which still shows them.
        app_id: Option<&'static str>,
        watched: Arc<AtomicUsize>,
        failed_said: bool,
    }

    fn register() -> windows_registry::Result<()> {
        let key = windows_registry::CURRENT_USER.create(APP_ID_KEY)?;
        key.set_string("DisplayName", crate::i18n::tr("app.name"))
    }

    impl Service {
        pub fn new(events: EventSink) -> Self {
            let app_id = match register() {
                Ok(()) => Some(APP_ID),
                Err(e) => {
                    log::warn!("{}: {e}", crate::i18n::tr("notify.failed"));
                    None
                }
            };
            Service {
                events,
                app_id,
                watched: Arc::new(AtomicUsize::new(0)),
                failed_said: false,
            }
        }

        pub fn show(&mut self, n: &Rendered) {
            let mut note = Notification::new();
            note.appname("kizuki")
                .summary(&n.summary)
                .body(&n.body)
                .timeout(Timeout::Default);
            if let Some(id) = self.app_id {
                note.app_id(id);
            }
            match note.show() {
                Ok(handle) => {
                    if self.watched.fetch_add(1, Ordering::SeqCst) >= MAX_WATCHED {
                        self.watched.fetch_sub(1, Ordering::SeqCst);
                        return;
                    }
                    let events = self.events.clone();
                    let watched = self.watched.clone();
                    let target = n.target.clone();
                    // The toast answers once: clicked, dismissed or timed
                    // out (a few seconds), so this thread is short-lived.
                    let spawned = std::thread::Builder::new()
                        .name("kizuki-notify-click".into())
                        .spawn(move || {
                            let _ = handle.wait_for_response(|r: &NotificationResponse| {
                                if matches!(
                                    r,
                                    NotificationResponse::Default | NotificationResponse::Action(_)
                                ) {
                                    events.send(match target.clone() {
                                        Some(k) => TrayEvent::OpenProgram(k),
                                        None => TrayEvent::Open,
                                    });
                                }
                            });
                            watched.fetch_sub(1, Ordering::SeqCst);
                        });
                    if spawned.is_err() {
                        self.watched.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                Err(e) => {
                    if !self.failed_said {
                        self.failed_said = true;
                        log::warn!("{}: {e}", crate::i18n::tr("notify.failed"));
                    }
                }
            }
        }
    }
}

#[cfg(not(any(target_os = "linux", windows)))]
mod platform {
    use super::Rendered;
    use crate::tray::EventSink;

    /// Notifications are not wired up on this platform yet: they are
    /// "unavailable", which the app treats like a desktop without them.
    pub struct Service;

    impl Service {
        pub fn new(_events: EventSink) -> Self {
            Service
        }

        pub fn show(&mut self, _n: &Rendered) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_cannot_format_the_text() {
        assert_eq!(plain("<b>x</b> & y"), "＜b＞x＜/b＞ ＆ y");
    }

    #[test]
    fn a_missing_service_is_unavailable_not_an_error() {
        assert!(is_unavailable(
            "org.freedesktop.DBus.Error.ServiceUnknown: The name org.freedesktop.Notifications was not provided by any .service files"
        ));
        assert!(!is_unavailable("org.freedesktop.DBus.Error.AccessDenied"));
    }
}
