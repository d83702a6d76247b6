//! The tray on Windows: a notification-area icon through tray-icon's
//! native backend (menus through muda). Win32 delivers the icon's clicks
//! as window messages to the thread that created it, so this thread runs
//! its own message loop and takes new states between messages.

use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::Duration;

use tray_icon::menu::{Menu, MenuEvent, MenuItem as NativeItem, PredefinedMenuItem};
use tray_icon::{Icon, MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};

use super::model::windows_menu_label;
use super::{EventSink, Level, MenuItem, TrayEvent, TrayState, icons};

/// Windows cuts longer tooltips.
const TOOLTIP_UNITS: usize = 127;
/// How long the loop waits for a message before looking for a new state.
const STATE_POLL: Duration = Duration::from_millis(250);

fn icon(level: Level) -> Result<Icon, String> {
    // 32 px: Windows scales it for the notification area at any DPI.
    let p = icons::pixmaps(level)
        .iter()
        .find(|p| p.width == 32)
        .ok_or_else(|| "tray icon missing".to_string())?;
    Icon::from_rgba(p.rgba(), p.width as u32, p.height as u32).map_err(|e| e.to_string())
}

fn menu(state: &TrayState) -> Result<Menu, String> {
    let menu = Menu::new();
    for (item, label) in state.menu() {
        if item.after_separator() {
            menu.append(&PredefinedMenuItem::separator())
                .map_err(|e| e.to_string())?;
        }
        let entry = NativeItem::with_id(
            item.id(),
            windows_menu_label(&label),
            state.is_enabled(item),
            None,
        );
        menu.append(&entry).map_err(|e| e.to_string())?;
    }
    Ok(menu)
}

fn build(state: &TrayState) -> Result<TrayIcon, String> {
    TrayIconBuilder::new()
        .with_id("kizuki")
        .with_icon(icon(state.level)?)
        .with_tooltip(state.tooltip_within(TOOLTIP_UNITS))
        .with_menu(Box::new(menu(state)?))
        .with_menu_on_left_click(false)
        .build()
        .map_err(|e| e.to_string())
}

fn show(tray: &TrayIcon, old: &TrayState, new: &TrayState) {
    if old.level != new.level
        && let Ok(i) = icon(new.level)
    {
        let _ = tray.set_icon(Some(i));
    }
    let _ = tray.set_tooltip(Some(new.tooltip_within(TOOLTIP_UNITS)));
    let menu_changed = old.menu() != new.menu()
        || old.is_enabled(MenuItem::MuteOneHour) != new.is_enabled(MenuItem::MuteOneHour)
        || old.is_enabled(MenuItem::Panic) != new.is_enabled(MenuItem::Panic);
    if menu_changed && let Ok(m) = menu(new) {
        tray.set_menu(Some(Box::new(m)));
    }
}

/// Adds the icon, says whether that worked, then runs until the channel
/// closes (dropping the icon removes it from the notification area).
pub fn run(
    initial: TrayState,
    events: EventSink,
    rx: Receiver<TrayState>,
    ready: Sender<Result<(), String>>,
) {
    let tray = match build(&initial) {
        Ok(t) => t,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut shown = initial;
    loop {
        crate::platform::win::pump_messages(STATE_POLL);
        while let Ok(ev) = MenuEvent::receiver().try_recv() {
            if let Some(item) = MenuItem::from_id(ev.id().as_ref()) {
                events.send(TrayEvent::from(item));
            }
        }
        while let Ok(ev) = TrayIconEvent::receiver().try_recv() {
            let open = matches!(
                ev,
                TrayIconEvent::Click {
                    button: MouseButton::Left,
                    button_state: MouseButtonState::Up,
                    ..
                } | TrayIconEvent::DoubleClick { .. }
            );
            if open {
                events.send(TrayEvent::Open);
            }
        }
        // Only the newest state matters.
        let mut next = None;
        loop {
            match rx.try_recv() {
                Ok(s) => next = Some(s),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        if let Some(next) = next
            && next != shown
        {
            show(&tray, &shown, &next);
            shown = next;
        }
    }
}
