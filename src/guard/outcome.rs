//! What a client makes of the guard's answer: whether the request is now
//! really in force (judged from the state the guard read back, never from
//! the request), and, when not, one localized sentence saying what
//! happened and what to do. Shared by the CLI, the window and the tray.

use std::path::{Path, PathBuf};

use super::api::{GuardStatus, Refusal, Reply, Request};
use super::client::LinkError;
use crate::escape::{for_display, os_lossless};
use crate::i18n::{Lang, tr_args_in, tr_in};

/// Why a request is not in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No guard answers (not installed, not running).
    NotRunning,
    /// The guard could not be reached or its answer not understood.
    Link(String),
    /// The guard refused on purpose; nothing changed.
    Refused { reason: Refusal, detail: String },
    /// The guard tried and failed part way.
    Failed(String),
    /// The guard said yes, but what it read back does not show it.
    NotInForce,
}

/// The action a request stands for, for the user's headline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Block,
    Unblock,
    Panic,
    Resume,
    Clear,
    Status,
}

impl Action {
    pub fn of(req: &Request) -> Action {
        match req {
            Request::Block { .. } => Action::Block,
            Request::Unblock { .. } => Action::Unblock,
            Request::Panic => Action::Panic,
            Request::Resume => Action::Resume,
            Request::Clear => Action::Clear,
            Request::Status
            | Request::Subscribe
            | Request::History { .. }
            | Request::HistoryVerify { .. }
            | Request::Sample { .. } => Action::Status,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Unblock => "unblock",
            Action::Panic => "panic",
            Action::Resume => "resume",
            Action::Clear => "clear",
            Action::Status => "status",
        }
    }
}

/// The guard's answer to one request, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub action: Action,
    /// The program the request named (block, unblock).
    pub exe: Option<PathBuf>,
    /// The state as the guard read it back (`None`: it could not say).
    pub status: Option<GuardStatus>,
    /// `None`: what was asked is in force now.
    pub problem: Option<Problem>,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }

    /// The program's name for headlines (its file name, escaped).
    pub fn name(&self) -> String {
        self.exe.as_deref().map(program_name).unwrap_or_default()
    }

    /// One line: what happened and what to do (empty when it worked).
    pub fn message(&self, lang: Lang) -> String {
        match &self.problem {
            None => String::new(),
            Some(p) => problem_text(lang, self.action, &self.name(), p),
        }
    }
}

impl Answer {
    /// The journal entry for this change: who made it as the guard
    /// reports it (for a block, the uid and authority it holds).
    pub fn journal(&self, sha256: Option<&str>) -> crate::journal::UserAction {
        let block = self
            .exe
            .as_deref()
            .zip(self.status.as_ref())
            .and_then(|(exe, s)| s.block(exe));
        let (by_uid, authority) = match (self.action, block) {
            (Action::Block, Some(b)) => (
                Some(b.by_uid),
                Some(
                    match b.authority {
                        super::api::Authority::Root => "root",
                        super::api::Authority::Polkit => "polkit",
                        super::api::Authority::Restored => "restored",
                    }
                    .to_string(),
                ),
            ),
            _ => (None, None),
        };
        let detail = match &self.problem {
            None => String::new(),
            Some(Problem::NotRunning) => "no guard".into(),
            Some(Problem::Link(d)) => format!("link: {d}"),
            Some(Problem::Failed(d)) => format!("failed: {d}"),
            Some(Problem::NotInForce) => "not in force after the reply".into(),
            Some(Problem::Refused { reason, detail }) => {
                format!(
                    "refused ({}): {detail}",
                    reason_key(&Problem::Refused {
                        reason: *reason,
                        detail: String::new()
                    })
                    .trim_start_matches("guard.why.")
                )
            }
        };
        crate::journal::UserAction::Guard {
            program: self.exe.as_deref().map(|exe| crate::journal::ProgramRef {
                exe: Some(os_lossless(exe.as_os_str())),
                name: exe
                    .file_name()
                    .map(os_lossless)
                    .unwrap_or_else(|| os_lossless(exe.as_os_str())),
                sha256: sha256.map(str::to_string),
            }),
            verb: self.action.as_str().into(),
            ok: self.ok(),
            by_uid,
            authority,
            detail,
        }
    }
}

/// A program's file name as shown (escaped).
pub fn program_name(exe: &Path) -> String {
    for_display(
        &exe.file_name()
            .map(os_lossless)
            .unwrap_or_else(|| os_lossless(exe.as_os_str())),
    )
}

/// Whether `status` shows what `req` asked for.
pub fn in_force(req: &Request, status: &GuardStatus) -> bool {
    match req {
        Request::Block { exe } => status.blocks(exe),
        Request::Unblock { exe } => status.block(exe).is_none(),
        Request::Panic => status.panic,
        Request::Resume => !status.panic,
        Request::Clear => !status.panic && status.blocked.is_empty(),
        Request::Status
        | Request::Subscribe
        | Request::History { .. }
        | Request::HistoryVerify { .. }
        | Request::Sample { .. } => true,
    }
}

/// Judges the guard's answer to `req`.
pub fn judge(req: &Request, result: Result<Reply, LinkError>) -> Answer {
    let exe = match req {
        Request::Block { exe } | Request::Unblock { exe } => Some(exe.clone()),
        _ => None,
    };
    let action = Action::of(req);
    let (status, problem) = match result {
        Err(LinkError::NotRunning { .. }) => (None, Some(Problem::NotRunning)),
        Err(e) => (None, Some(Problem::Link(e.to_string()))),
        Ok(Reply::Ok { status }) => {
            let p = (!in_force(req, &status)).then_some(Problem::NotInForce);
            (Some(status), p)
        }
        Ok(Reply::Refused {
            reason,
            detail,
            status,
        }) => {
            // Unblocking what is not blocked: the state is as asked.
            let done =
                reason == Refusal::NotBlocked && status.as_ref().is_some_and(|s| in_force(req, s));
            let p = (!done).then_some(Problem::Refused { reason, detail });
            (status, p)
        }
        Ok(Reply::Failed { detail, status }) => (status, Some(Problem::Failed(detail))),
        Ok(
            other @ (Reply::History { .. } | Reply::HistoryVerify { .. } | Reply::Sample { .. }),
        ) => (
            None,
            Some(Problem::Link(format!("unexpected answer: {other:?}"))),
        ),
    };
    Answer {
        action,
        exe,
        status,
        problem,
    }
}

/// The catalog key of the reason part of a problem.
pub fn reason_key(p: &Problem) -> &'static str {
    match p {
        Problem::NotRunning => "guard.why.not_running",
        Problem::Link(_) => "guard.why.link",
        Problem::Failed(_) => "guard.why.failed",
        Problem::NotInForce => "guard.why.not_in_force",
        Problem::Refused { reason, .. } => match reason {
            Refusal::NotAuthorized => "guard.why.not_authorized",
            Refusal::NoAuthority => "guard.why.no_authority",
            Refusal::BadRequest => "guard.why.bad_request",
            Refusal::NotAProgram => "guard.why.not_a_program",
            Refusal::Protected => "guard.why.protected",
            Refusal::NotBlocked => "guard.why.not_blocked",
            Refusal::TooMany => "guard.why.too_many",
            Refusal::Script => "guard.why.script",
        },
    }
}

/// "Could not block 「tool」. The guard is not running: install …".
pub fn problem_text(lang: Lang, action: Action, name: &str, p: &Problem) -> String {
    let head = tr_args_in(
        lang,
        &format!("guard.head.{}", action.as_str()),
        &[("name", name)],
    );
    let detail = match p {
        Problem::Link(d) | Problem::Failed(d) => for_display(d),
        Problem::Refused { detail, .. } => for_display(detail),
        Problem::NotRunning | Problem::NotInForce => String::new(),
    };
    let why = tr_args_in(lang, reason_key(p), &[("detail", &detail)]);
    match lang {
        Lang::Ja => format!("{head}{why}"),
        Lang::En => format!("{head} {why}"),
    }
}

/// The sentence said once when no guard answers.
pub fn absent_text(lang: Lang) -> String {
    tr_in(lang, "guard.absent")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::api::{API_VERSION, Authority, BlockStatus, ExecCatch};

    fn status(blocked: &[(&str, bool)], panic: bool) -> GuardStatus {
        GuardStatus {
            api_version: API_VERSION,
            panic,
            table: true,
            exec_catch: ExecCatch::Fanotify,
            blocked: blocked
                .iter()
                .map(|(exe, enforced)| BlockStatus {
                    exe: PathBuf::from(exe),
                    sha256: "0".repeat(64),
                    since: "2026-11-30T00:00:00Z".into(),
                    by_uid: 1000,
                    authority: Authority::Polkit,
                    enforced: *enforced,
                    pids_blocked: vec![],
                    pids_outside: vec![],
                })
                .collect(),
            problems: vec![],
        }
    }

    fn block(exe: &str) -> Request {
        Request::Block { exe: exe.into() }
    }

    #[test]
    fn ok_is_judged_by_what_was_read_back() {
        let a = judge(
            &block("/tmp/x"),
            Ok(Reply::Ok {
                status: status(&[("/tmp/x", true)], false),
            }),
        );
        assert!(a.ok());
        let a = judge(
            &block("/tmp/x"),
            Ok(Reply::Ok {
                status: status(&[("/tmp/x", false)], false),
            }),
        );
        assert_eq!(a.problem, Some(Problem::NotInForce));
        let a = judge(
            &Request::Panic,
            Ok(Reply::Ok {
                status: status(&[], false),
            }),
        );
        assert_eq!(a.problem, Some(Problem::NotInForce));
    }

    #[test]
    fn refusals_and_absence_are_problems_with_words() {
        let a = judge(
            &block("/tmp/tool"),
            Ok(Reply::Refused {
                reason: Refusal::NotAuthorized,
                detail: "polkit said no".into(),
                status: Some(status(&[], false)),
            }),
        );
        assert!(!a.ok());
        for lang in [Lang::Ja, Lang::En] {
            let m = a.message(lang);
            assert!(m.contains("tool"), "{m}");
            assert!(!m.contains("guard.") && !m.contains('{'), "{m}");
        }
        let a = judge(
            &Request::Panic,
            Err(LinkError::NotRunning {
                socket: "/x".into(),
            }),
        );
        assert_eq!(a.problem, Some(Problem::NotRunning));
        assert!(a.message(Lang::Ja).contains("見張り役"));
        // Unblocking what is not blocked leaves things as asked.
        let a = judge(
            &Request::Unblock {
                exe: "/tmp/x".into(),
            },
            Ok(Reply::Refused {
                reason: Refusal::NotBlocked,
                detail: String::new(),
                status: Some(status(&[], false)),
            }),
        );
        assert!(a.ok());
    }

    #[test]
    fn every_reason_has_words_in_both_languages() {
        let reasons = [
            Refusal::NotAuthorized,
            Refusal::NoAuthority,
            Refusal::BadRequest,
            Refusal::NotAProgram,
            Refusal::Protected,
            Refusal::NotBlocked,
            Refusal::TooMany,
            Refusal::Script,
        ];
        let mut problems: Vec<Problem> = reasons
            .iter()
            .map(|r| Problem::Refused {
                reason: *r,
                detail: "d".into(),
            })
            .collect();
        problems.extend([
            Problem::NotRunning,
            Problem::Link("x".into()),
            Problem::Failed("y".into()),
            Problem::NotInForce,
        ]);
        for lang in [Lang::Ja, Lang::En] {
            for action in [
                Action::Block,
                Action::Unblock,
                Action::Panic,
                Action::Resume,
                Action::Clear,
                Action::Status,
            ] {
                for p in &problems {
                    let t = problem_text(lang, action, "tool", p);
                    assert!(!t.contains("guard.") && !t.contains('{'), "{t}");
                }
            }
            assert!(!absent_text(lang).contains("guard."));
        }
    }
}
