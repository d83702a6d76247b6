//! The window's part in life in the background: hiding to the tray,
//! showing again, quitting, the one-time "closing quits" explanation,
//! notification switches and the panic button from the tray.

use std::time::{Duration, SystemTime};

use super::backend::{Backend, BackendError, MarkOutcome};
use super::command::{Command, Effect};
use super::jobs::Job;
use super::state::{AppState, BannerLevel, DetailTab, Message};
use super::wizard::PanicState;
use crate::model::ProgramKey;
use crate::tray::TrayEvent;
use crate::tray::settings::Settings;
use crate::tray::watch::Control;

/// How long "mute for an hour" lasts.
pub const MUTE_FOR: Duration = Duration::from_secs(60 * 60);

/// The banner shown while all traffic is stopped.
const PANIC_BANNER: &str = "tray.banner.panic";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackgroundState {
    /// A tray indicator is registered: closing the window hides it there.
    pub tray: bool,
    /// The window is hidden in the tray.
    pub hidden: bool,
    pub notifications: bool,
    pub muted_until: Option<SystemTime>,
    /// All traffic is stopped (the panic button).
    pub panic: bool,
    /// The one-time "closing quits kizuki" explanation was already given.
    pub close_explained: bool,
    /// That explanation is on screen now.
    pub explaining_close: bool,
    /// The user asked to quit: the next close is not cancelled.
    pub quitting: bool,
}

impl Default for BackgroundState {
    fn default() -> Self {
        BackgroundState {
            tray: false,
            hidden: false,
            notifications: true,
            muted_until: None,
            panic: false,
            close_explained: false,
            explaining_close: false,
            quitting: false,
        }
    }
}

impl BackgroundState {
    /// What goes into the settings file.
    pub fn settings(&self) -> Settings {
        Settings {
            notifications: self.notifications,
            close_explained: self.close_explained,
        }
    }
}

/// What the tray, notifications and the window's frame ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackgroundCommand {
    /// Show the window (and select a program, from a notification).
    Show(Option<ProgramKey>),
    /// The window manager asked to close the window.
    CloseRequested,
    /// "Quit" in the one-time explanation.
    ConfirmQuit,
    /// "Keep it open" in the one-time explanation.
    KeepOpen,
    /// Quit from the tray.
    Quit,
    MuteUntil(SystemTime),
    SetNotifications(bool),
    SetPanic(bool),
    TrayAvailable(bool),
}

/// What only the window shell can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackgroundEffect {
    /// Show the window and bring it forward.
    Show,
    /// Cancel the close and hide the window in the tray.
    Hide,
    /// Cancel the close: the window stays.
    CancelClose,
    /// Close the window; kizuki ends.
    Quit,
    SaveSettings(Settings),
    /// Tell the background thread (tray and notifications).
    Control(Control),
}

/// The commands a tray event stands for, at time `now`.
pub fn commands_for(ev: TrayEvent, now: SystemTime) -> Vec<Command> {
    use BackgroundCommand as B;
    let b = |c| Command::Background(c);
    match ev {
        TrayEvent::Open => vec![b(B::Show(None))],
        TrayEvent::OpenProgram(k) => vec![b(B::Show(Some(k)))],
        TrayEvent::MuteOneHour => vec![b(B::MuteUntil(now + MUTE_FOR))],
        TrayEvent::Panic => vec![b(B::SetPanic(true))],
        TrayEvent::Resume => vec![b(B::SetPanic(false))],
        // The guide opens in the window, so the window comes forward first.
        TrayEvent::Consult => vec![b(B::Show(None)), Command::Consult(None)],
        TrayEvent::Quit => vec![b(B::Quit)],
        TrayEvent::Available(v) => vec![b(B::TrayAvailable(v))],
    }
}

pub fn update(
    state: &mut AppState,
    cmd: BackgroundCommand,
    backend: &mut dyn Backend,
    effects: &mut Vec<Effect>,
) {
    use BackgroundCommand as B;
    let mut fx = |e| effects.push(Effect::Background(e));
    let bg = &mut state.background;
    match cmd {
        B::Show(key) => {
            bg.hidden = false;
            if let Some(k) = key
                && state.snapshot.program(&k).is_some()
            {
                if state.selected.as_ref() != Some(&k) {
                    state.history = None;
                }
                state.selected = Some(k);
                state.tab = DetailTab::Connections;
            }
            fx(BackgroundEffect::Show);
        }
        B::CloseRequested => {
            if bg.quitting {
                return;
            }
            if bg.tray {
                bg.hidden = true;
                fx(BackgroundEffect::Hide);
            } else if !bg.close_explained {
                bg.explaining_close = true;
                fx(BackgroundEffect::CancelClose);
            } else {
                bg.quitting = true;
            }
        }
        B::ConfirmQuit => {
            bg.explaining_close = false;
            bg.close_explained = true;
            bg.quitting = true;
            let s = bg.settings();
            fx(BackgroundEffect::SaveSettings(s));
            fx(BackgroundEffect::Quit);
        }
        B::KeepOpen => {
            bg.explaining_close = false;
            bg.close_explained = true;
            let s = bg.settings();
            fx(BackgroundEffect::SaveSettings(s));
        }
        B::Quit => {
            bg.quitting = true;
            fx(BackgroundEffect::Quit);
        }
        B::MuteUntil(t) => {
            bg.muted_until = Some(t);
            fx(BackgroundEffect::Control(Control::Mute(Some(t))));
        }
        B::SetNotifications(on) => {
            if bg.notifications != on {
                bg.notifications = on;
                let s = bg.settings();
                fx(BackgroundEffect::SaveSettings(s));
                fx(BackgroundEffect::Control(Control::SetNotifications(on)));
            }
        }
        B::TrayAvailable(v) => bg.tray = v,
        B::SetPanic(on) => set_panic(state, on, backend),
    }
}

/// Starts cutting (`true`) or restoring (`false`) all traffic: the one
/// path for the tray, the top bar and the walk-through's panic button.
pub(super) fn set_panic(state: &mut AppState, on: bool, backend: &mut dyn Backend) {
    super::update::start_job(state, Job::Panic(on), backend);
}

/// Shows what became of the panic button, and tells the tray.
pub(super) fn panic_done(
    state: &mut AppState,
    on: bool,
    result: Result<MarkOutcome, BackendError>,
    effects: &mut Vec<Effect>,
) {
    let action = if on {
        "tray.action.panic"
    } else {
        "tray.action.resume"
    };
    let answer = match result {
        Ok(MarkOutcome::Guard(a)) => a,
        Ok(MarkOutcome::Done) => return,
        Ok(MarkOutcome::NotEnforced(why)) => {
            super::update::failed(state, action, &BackendError::Failed(why));
            return;
        }
        Err(e) => {
            super::update::failed(state, action, &e);
            return;
        }
    };
    // The panic banner and the tray follow what the guard read back,
    // never the request. The walk-through says a problem in place;
    // elsewhere a notice does.
    super::guard::answered(state, &answer, state.wizard.is_none(), effects);
    let not_enforced = answer.problem.clone();
    state.panic = Some(PanicState { on, not_enforced });
}

/// Keeps the lasting "all traffic is stopped" banner in step with `on`.
pub fn show_panic_banner(state: &mut AppState, on: bool) {
    state.banners.retain(|b| b.message.key != PANIC_BANNER);
    if on {
        state.push_banner(BannerLevel::Warning, Message::new(PANIC_BANNER), false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::backend::{Call, RecordingBackend};
    use crate::app::update;
    use crate::app::update::settle;
    use crate::i18n::Lang;
    use crate::model::{Program, Snapshot};
    use std::sync::Arc;

    fn run(state: &mut AppState, c: BackgroundCommand, b: &mut RecordingBackend) -> Vec<Effect> {
        update(state, Command::Background(c), b)
    }

    fn bfx(effects: Vec<Effect>) -> Vec<BackgroundEffect> {
        effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::Background(b) => Some(b),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn closing_hides_to_the_tray_when_there_is_one() {
        let mut st = AppState::new(Lang::Ja);
        let mut b = RecordingBackend::new();
        st.background.tray = true;
        let fx = bfx(run(&mut st, BackgroundCommand::CloseRequested, &mut b));
        assert_eq!(fx, vec![BackgroundEffect::Hide]);
        assert!(st.background.hidden);
        let fx = bfx(run(&mut st, BackgroundCommand::Show(None), &mut b));
        assert_eq!(fx, vec![BackgroundEffect::Show]);
        assert!(!st.background.hidden);
    }

    #[test]
    fn without_a_tray_closing_explains_once_then_quits() {
        let mut st = AppState::new(Lang::Ja);
        let mut b = RecordingBackend::new();
        let fx = bfx(run(&mut st, BackgroundCommand::CloseRequested, &mut b));
        assert_eq!(fx, vec![BackgroundEffect::CancelClose]);
        assert!(st.background.explaining_close);
        let fx = bfx(run(&mut st, BackgroundCommand::KeepOpen, &mut b));
        assert_eq!(
            fx,
            vec![BackgroundEffect::SaveSettings(Settings {
                notifications: true,
                close_explained: true
            })]
        );
        // Explained once: the next close just closes (no effect cancels it).
        let fx = bfx(run(&mut st, BackgroundCommand::CloseRequested, &mut b));
        assert!(fx.is_empty());
        assert!(st.background.quitting);
    }

    #[test]
    fn quitting_from_the_tray_is_not_cancelled() {
        let mut st = AppState::new(Lang::Ja);
        let mut b = RecordingBackend::new();
        st.background.tray = true;
        let fx = bfx(run(&mut st, BackgroundCommand::Quit, &mut b));
        assert_eq!(fx, vec![BackgroundEffect::Quit]);
        let fx = bfx(run(&mut st, BackgroundCommand::CloseRequested, &mut b));
        assert!(fx.is_empty(), "the close goes through");
    }

    #[test]
    fn a_clicked_notification_selects_its_program() {
        let mut st = AppState::new(Lang::Ja);
        let mut b = RecordingBackend::new();
        let mut s = Snapshot::empty();
        s.generation = 1;
        let key = ProgramKey::Exe("/tmp/freetool".into());
        s.programs = vec![Program {
            exe: None,
            sha256: None,
            ..Program::fake("freetool", &[])
        }];
        update(&mut st, Command::NewSnapshot(Arc::new(s)), &mut b);
        st.background.hidden = true;
        for c in commands_for(TrayEvent::OpenProgram(key.clone()), SystemTime::UNIX_EPOCH) {
            update(&mut st, c, &mut b);
        }
        assert_eq!(st.selected, Some(key));
        assert!(!st.background.hidden);
    }

    #[test]
    fn tray_menu_items_become_commands() {
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(
            commands_for(TrayEvent::MuteOneHour, now),
            vec![Command::Background(BackgroundCommand::MuteUntil(
                now + MUTE_FOR
            ))]
        );
        assert_eq!(
            commands_for(TrayEvent::Consult, now)[1],
            Command::Consult(None)
        );
        assert_eq!(
            commands_for(TrayEvent::Resume, now),
            vec![Command::Background(BackgroundCommand::SetPanic(false))]
        );
    }

    #[test]
    fn panic_from_the_tray_reaches_the_firewall_and_shows_a_lasting_banner() {
        let mut st = AppState::new(Lang::Ja);
        let mut b = RecordingBackend::new();
        let fx = bfx(run(&mut st, BackgroundCommand::SetPanic(true), &mut b));
        assert_eq!(b.calls(), vec![Call::Panic(true)]);
        assert!(fx.is_empty(), "the tray hears of it once it is done");
        assert!(!st.background.panic);
        let fx = bfx(settle(&mut st, &mut b));
        assert_eq!(
            fx,
            vec![BackgroundEffect::Control(Control::SetGuard {
                available: true,
                panic: true,
                blocked: vec![]
            })]
        );
        assert!(st.background.panic);
        assert!(
            st.banners
                .iter()
                .any(|x| x.message.key == PANIC_BANNER && !x.dismissable)
        );
        run(&mut st, BackgroundCommand::SetPanic(false), &mut b);
        settle(&mut st, &mut b);
        assert!(!st.background.panic);
        assert!(st.banners.iter().all(|x| x.message.key != PANIC_BANNER));
    }

    #[test]
    fn a_refused_panic_shows_no_banner_and_says_why() {
        let mut st = AppState::new(Lang::Ja);
        let mut b = RecordingBackend::new();
        b.guard().lock().refuse = Some(crate::guard::api::Refusal::NotAuthorized);
        run(&mut st, BackgroundCommand::SetPanic(true), &mut b);
        settle(&mut st, &mut b);
        assert!(!st.background.panic);
        assert!(st.banners.iter().all(|x| x.message.key != PANIC_BANNER));
        let texts: Vec<String> = st
            .guard
            .notices
            .iter()
            .map(|n| n.text.text(Lang::Ja))
            .collect();
        assert_eq!(texts.len(), 1, "{texts:?}");
        assert!(texts[0].contains("通信を止められませんでした"), "{texts:?}");
        assert!(texts[0].contains("管理者"), "{texts:?}");
    }

    #[test]
    fn turning_notifications_off_is_saved_and_told() {
        let mut st = AppState::new(Lang::Ja);
        let mut b = RecordingBackend::new();
        let fx = bfx(run(
            &mut st,
            BackgroundCommand::SetNotifications(false),
            &mut b,
        ));
        assert_eq!(
            fx,
            vec![
                BackgroundEffect::SaveSettings(Settings {
                    notifications: false,
                    close_explained: false
                }),
                BackgroundEffect::Control(Control::SetNotifications(false))
            ]
        );
    }
}
