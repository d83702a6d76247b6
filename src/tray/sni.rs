//! The tray on Linux: a StatusNotifierItem over D-Bus (ksni, no GTK).

use std::sync::mpsc::{Receiver, Sender};

use ksni::blocking::TrayMethods;
use ksni::menu::StandardItem;

use super::{EventSink, Level, TrayEvent, TrayState, icons};

struct Item {
    state: TrayState,
    events: EventSink,
}

impl ksni::Tray for Item {
    fn id(&self) -> String {
        "kizuki".into()
    }

    fn title(&self) -> String {
        crate::i18n::tr_in(self.state.lang, "app.name")
    }

    fn category(&self) -> ksni::Category {
        ksni::Category::ApplicationStatus
    }

    fn status(&self) -> ksni::Status {
        match self.state.level {
            Level::Red => ksni::Status::NeedsAttention,
            Level::Green | Level::Amber => ksni::Status::Active,
        }
    }

    fn icon_pixmap(&self) -> Vec<ksni::Icon> {
        pixmaps(self.state.level)
    }

    fn attention_icon_pixmap(&self) -> Vec<ksni::Icon> {
        pixmaps(Level::Red)
    }

    fn tool_tip(&self) -> ksni::ToolTip {
        ksni::ToolTip {
            icon_name: String::new(),
            icon_pixmap: Vec::new(),
            title: self.state.title(),
            description: self.state.description(),
        }
    }

    fn activate(&mut self, _x: i32, _y: i32) {
        self.events.send(TrayEvent::Open);
    }

    fn menu(&self) -> Vec<ksni::MenuItem<Self>> {
        let mut out = Vec::new();
        for (item, label) in self.state.menu() {
            if item.after_separator() {
                out.push(ksni::MenuItem::Separator);
            }
            let enabled = self.state.is_enabled(item);
            out.push(
                StandardItem {
                    // Underscores mark access keys in this protocol.
                    label: label.replace('_', "__"),
                    enabled,
                    activate: Box::new(move |this: &mut Self| {
                        this.events.send(TrayEvent::from(item));
                    }),
                    ..Default::default()
                }
                .into(),
            );
        }
        out
    }

    fn watcher_online(&self) {
        self.events.send(TrayEvent::Available(true));
    }

    fn watcher_offline(&self, _reason: ksni::OfflineReason) -> bool {
        self.events.send(TrayEvent::Available(false));
        // Keep the service: the host may come back (a restarted shell).
        true
    }
}

fn pixmaps(level: Level) -> Vec<ksni::Icon> {
    icons::pixmaps(level)
        .iter()
        .map(|p| ksni::Icon {
            width: p.width,
            height: p.height,
            data: p.argb.clone(),
        })
        .collect()
}

/// Registers the item, says whether that worked, then applies each new
/// state until the channel closes.
pub fn run(
    initial: TrayState,
    events: EventSink,
    rx: Receiver<TrayState>,
    ready: Sender<Result<(), String>>,
) {
    let item = Item {
        state: initial.clone(),
        events,
    };
    let handle = match item.spawn() {
        Ok(h) => h,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut shown = initial;
    while let Ok(mut next) = rx.recv() {
        // Only the newest state matters.
        while let Ok(newer) = rx.try_recv() {
            next = newer;
        }
        if next != shown {
            shown = next.clone();
            if handle.update(move |t| t.state = next).is_none() {
                break;
            }
        }
    }
    handle.shutdown().wait();
}
