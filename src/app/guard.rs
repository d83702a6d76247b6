//! The window's view of the guard service: what it reads back (the only
//! source of 「ブロック中」 and of the panic banner), whether one runs at
//! all, and its notices. Status arrives one way, as
//! `Command::Guard(GuardUpdate)` from the `kizuki-guard` watcher thread or
//! with a finished job's answer; views only read [`GuardState`].

use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use super::backend::{BackendError, MarkOutcome, MarkRequest};
use super::command::Effect;
use super::jobs::{Job, Waker};
use super::state::{AppState, BannerLevel, Message};
use crate::guard::api::{GuardStatus, Request};
use crate::guard::blocked::GuardBlocks;
use crate::guard::client::{GuardLink, LinkError};
use crate::guard::outcome::{self, Action, Answer, Problem, judge};
use crate::i18n::Lang;
use crate::model::Mark;
use crate::tray::watch::Control;

/// What the watcher (or a job's answer) learned about the guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardUpdate {
    /// The state the guard read back from the kernel.
    Status(GuardStatus),
    /// The guard could not be asked (`Problem::NotRunning`: none runs).
    Unreachable(Problem),
}

impl GuardUpdate {
    /// The update a status request's result stands for.
    pub fn of(result: Result<GuardStatus, LinkError>) -> GuardUpdate {
        match result {
            Ok(s) => GuardUpdate::Status(s),
            Err(LinkError::NotRunning { .. }) => GuardUpdate::Unreachable(Problem::NotRunning),
            Err(e) => GuardUpdate::Unreachable(Problem::Link(e.to_string())),
        }
    }
}

/// Whether a guard answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Presence {
    /// Not asked yet, or the last answer could not be read.
    #[default]
    Unknown,
    Running,
    /// No guard (not installed, not running): nothing is enforced.
    Absent,
}

/// A notice about the guard: wraps, and the user can close it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardNotice {
    pub id: u64,
    pub level: BannerLevel,
    pub text: NoticeText,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeText {
    /// No guard: blocking and the panic button need the installed service.
    Absent,
    /// A request is not in force: what happened and what to do.
    Problem {
        action: Action,
        name: String,
        problem: Problem,
    },
}

impl NoticeText {
    /// The sentence shown: what happened and what to do, without
    /// technical detail (that is [`NoticeText::detail`]).
    pub fn text(&self, lang: Lang) -> String {
        match self {
            NoticeText::Absent => outcome::absent_text(lang),
            NoticeText::Problem {
                action,
                name,
                problem,
            } => problem_sentence(lang, *action, name, problem),
        }
    }

    /// The technical detail behind "詳細", if any.
    pub fn detail(&self) -> Option<String> {
        match self {
            NoticeText::Absent => None,
            NoticeText::Problem { problem, .. } => problem_detail(problem),
        }
    }
}

/// "Could not stop traffic. Talking to the guard service failed. Wait…":
/// the headline and the reason in words, without the guard's technical
/// detail (an OS error, a tool's output), which [`problem_detail`] gives
/// for "詳細" and the log.
pub fn problem_sentence(lang: Lang, action: Action, name: &str, p: &Problem) -> String {
    let why = match p {
        Problem::Link(_) => "window.why.link",
        Problem::Failed(_) => "window.why.failed",
        other => outcome::reason_key(other),
    };
    let head = crate::i18n::tr_args_in(
        lang,
        &format!("guard.head.{}", action.as_str()),
        &[("name", name)],
    );
    let why = crate::i18n::tr_args_in(lang, why, &[("detail", "")]);
    match lang {
        Lang::Ja => format!("{head}{why}"),
        Lang::En => format!("{head} {why}"),
    }
}

/// The technical part of a problem, for "詳細" and the log file.
pub fn problem_detail(p: &Problem) -> Option<String> {
    let d = match p {
        Problem::Link(d) | Problem::Failed(d) => d,
        Problem::Refused { detail, .. } => detail,
        Problem::NotRunning | Problem::NotInForce => return None,
    };
    (!d.trim().is_empty()).then(|| d.clone())
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardState {
    pub presence: Presence,
    /// The last state read back (`None`: none known, so nothing is shown
    /// as enforced).
    pub status: Option<GuardStatus>,
    pub notices: Vec<GuardNotice>,
    next_notice: u64,
    /// The "no guard" notice was shown (once per session).
    absent_told: bool,
}

impl GuardState {
    /// Whether the guard reads back a block on `exe` in force.
    pub fn blocks(&self, exe: &Path) -> bool {
        self.status.as_ref().is_some_and(|s| s.blocks(exe))
    }

    /// Whether the panic rules are loaded, as read back.
    pub fn panic(&self) -> bool {
        self.status.as_ref().is_some_and(|s| s.panic)
    }

    /// False when it is known that no guard runs: blocking and the panic
    /// button cannot work, and their buttons say so.
    pub fn can_enforce(&self) -> bool {
        self.presence != Presence::Absent
    }

    pub fn push_notice(&mut self, level: BannerLevel, text: NoticeText) {
        if self.notices.iter().any(|n| n.text == text) {
            return;
        }
        if let Some(d) = text.detail() {
            log::warn!("guard: {d}");
        }
        self.next_notice += 1;
        self.notices.push(GuardNotice {
            id: self.next_notice,
            level,
            text,
        });
        // The newest few are enough.
        const KEEP: usize = 3;
        if self.notices.len() > KEEP {
            let drop = self.notices.len() - KEEP;
            self.notices.drain(..drop);
        }
    }

    pub fn dismiss(&mut self, id: u64) {
        self.notices.retain(|n| n.id != id);
    }
}

/// The tray's part of the guard's state.
fn tray_control(state: &AppState) -> Control {
    let blocked = state
        .guard
        .status
        .as_ref()
        .map(|s| {
            s.blocked
                .iter()
                .filter(|b| s.blocks(&b.exe))
                .map(|b| b.exe.clone())
                .collect()
        })
        .unwrap_or_default();
    Control::SetGuard {
        available: state.guard.can_enforce(),
        panic: state.guard.panic(),
        blocked,
    }
}

/// Takes in what was learned about the guard.
pub fn apply(state: &mut AppState, update: GuardUpdate, effects: &mut Vec<Effect>) {
    let before = (state.guard.presence, state.guard.status.clone());
    match update {
        GuardUpdate::Status(s) => {
            state.guard.presence = Presence::Running;
            state.guard.status = Some(s);
        }
        GuardUpdate::Unreachable(Problem::NotRunning) => {
            state.guard.presence = Presence::Absent;
            state.guard.status = None;
            if !std::mem::replace(&mut state.guard.absent_told, true) {
                state
                    .guard
                    .push_notice(BannerLevel::Warning, NoticeText::Absent);
            }
        }
        GuardUpdate::Unreachable(_) => {
            // Unknown is not "enforced": nothing is shown as blocked.
            state.guard.presence = Presence::Unknown;
            state.guard.status = None;
        }
    }
    let panic = state.guard.panic();
    state.background.panic = panic;
    super::background::show_panic_banner(state, panic);
    if before != (state.guard.presence, state.guard.status.clone()) {
        effects.push(Effect::Background(super::BackgroundEffect::Control(
            tray_control(state),
        )));
    }
}

/// Shows the guard's answer to a request the user made.
/// `notice`: say a problem in a notice (the walk-through says it in place).
pub fn answered(state: &mut AppState, answer: &Answer, notice: bool, effects: &mut Vec<Effect>) {
    match (&answer.status, &answer.problem) {
        (Some(s), _) => apply(state, GuardUpdate::Status(s.clone()), effects),
        (None, Some(Problem::NotRunning)) => apply(
            state,
            GuardUpdate::Unreachable(Problem::NotRunning),
            effects,
        ),
        (None, _) => {}
    }
    match &answer.problem {
        None => {
            let key = format!("guard.done.{}", answer.action.as_str());
            state.push_banner(
                BannerLevel::Info,
                Message::new(&key).arg("name", answer.name()),
                true,
            );
        }
        Some(_) if !notice => {}
        Some(p) => state.guard.push_notice(
            BannerLevel::Error,
            NoticeText::Problem {
                action: answer.action,
                name: answer.name(),
                problem: p.clone(),
            },
        ),
    }
}

/// Runs one job against the guard, on the worker thread. `record` keeps
/// a trusted/unknown mark in the user's own store; blocks are only ever
/// asked of the guard.
pub fn run_job(
    link: &mut dyn GuardLink,
    job: &Job,
    record: &mut dyn FnMut(&MarkRequest) -> Result<(), BackendError>,
) -> Result<MarkOutcome, BackendError> {
    let ask = |link: &mut dyn GuardLink, req: Request| {
        let result = link.call(&req);
        MarkOutcome::Guard(Box::new(judge(&req, result)))
    };
    Ok(match job {
        Job::SetMark(req) if req.mark == Mark::Blocked => ask(
            link,
            Request::Block {
                exe: req.exe.clone(),
            },
        ),
        Job::SetMark(req) => {
            // Asked before the mark changes: the local backend of Windows
            // keeps its block list in the marks.
            let before = link.status();
            record(req)?;
            match before {
                Ok(s) if s.block(&req.exe).is_some() => ask(
                    link,
                    Request::Unblock {
                        exe: req.exe.clone(),
                    },
                ),
                _ => MarkOutcome::Done,
            }
        }
        Job::Panic(on) => ask(link, if *on { Request::Panic } else { Request::Resume }),
        Job::Unblock(exe) => ask(link, Request::Unblock { exe: exe.clone() }),
    })
}

/// The `kizuki-guard` thread: asks the guard for its state and posts each
/// change. It ends when the window drops this.
pub struct GuardWatch {
    rx: Receiver<GuardUpdate>,
}

impl GuardWatch {
    /// `blocks` is kept equal to the guard's block list (emptied while the
    /// guard does not answer), for the marks stage.
    pub fn spawn(
        mut link: Box<dyn GuardLink>,
        interval: Duration,
        waker: Option<Waker>,
        blocks: GuardBlocks,
    ) -> Self {
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("kizuki-guard".into())
            .spawn(move || {
                let mut last: Option<GuardUpdate> = None;
                loop {
                    let status = link.status();
                    match &status {
                        Ok(s) => blocks.update(s),
                        Err(_) => blocks.clear(),
                    }
                    let update = GuardUpdate::of(status);
                    if last.as_ref() != Some(&update) {
                        if tx.send(update.clone()).is_err() {
                            return;
                        }
                        if let Some(w) = &waker {
                            w();
                        }
                        last = Some(update);
                    }
                    std::thread::sleep(interval);
                }
            });
        if let Err(e) = spawned {
            log::warn!("kizuki-guard: {e}");
        }
        GuardWatch { rx }
    }

    /// Updates since the last call, oldest first.
    pub fn updates(&self) -> Vec<GuardUpdate> {
        self.rx.try_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::client::FakeGuard;
    use std::sync::{Arc, Mutex};

    #[test]
    fn the_watcher_posts_what_the_guard_reads_back_and_wakes_the_window() {
        let fake = FakeGuard::default();
        fake.lock().absent = true;
        let (tx, woke) = mpsc::channel();
        let tx = Mutex::new(tx);
        let blocks = GuardBlocks::default();
        let watch = GuardWatch::spawn(
            Box::new(fake.clone()),
            Duration::from_millis(5),
            Some(Arc::new(move || {
                let _ = tx.lock().map(|t| t.send(()));
            })),
            blocks.clone(),
        );
        woke.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(
            watch.updates(),
            vec![GuardUpdate::Unreachable(Problem::NotRunning)]
        );
        // The guard starts: its state arrives, once.
        fake.lock().absent = false;
        woke.recv_timeout(Duration::from_secs(10)).unwrap();
        let got = watch.updates();
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(matches!(&got[0], GuardUpdate::Status(s) if !s.panic));
    }
}
