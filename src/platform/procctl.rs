//! Suspend, resume and terminate every process of a program. Suspending
//! first is the gentle step: the program stops acting, while what it holds
//! in memory stays there as evidence.
//!
//! A PID that vanished meanwhile is normal (the program exited) and is
//! reported, not treated as a failure.

/// What to do to the processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Suspend,
    Resume,
    Terminate,
}

/// What happened to each PID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub done: Vec<u32>,
    /// Already gone.
    pub vanished: Vec<u32>,
    /// Refused by the OS (another user's process) or by kizuki (PIDs that
    /// would address a whole group, init, or kizuki itself), with the reason.
    pub failed: Vec<(u32, String)>,
}

impl Outcome {
    pub fn all_done(&self) -> bool {
        self.failed.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("{}", crate::i18n::tr("procctl.err.unsupported"))]
    Unsupported,
}

/// PIDs that must never be signalled: 0 and values that do not fit a
/// positive `pid_t` address process groups, 1 is init, and kizuki does not
/// stop itself.
fn refused(pid: u32) -> Option<String> {
    if pid <= 1 || i32::try_from(pid).is_err() {
        Some(crate::i18n::tr("procctl.refused.group"))
    } else if pid == std::process::id() {
        Some(crate::i18n::tr("procctl.refused.self"))
    } else {
        None
    }
}

/// Applies `action` to each of `pids`.
pub fn act(action: Action, pids: &[u32]) -> Result<Outcome, ProcError> {
    let mut out = Outcome::default();
    for &pid in pids {
        if let Some(why) = refused(pid) {
            out.failed.push((pid, why));
            continue;
        }
        match os::signal(action, pid)? {
            Sent::Done => out.done.push(pid),
            Sent::Gone => out.vanished.push(pid),
            Sent::Failed(e) => out.failed.push((pid, e)),
        }
    }
    Ok(out)
}

pub fn suspend(pids: &[u32]) -> Result<Outcome, ProcError> {
    act(Action::Suspend, pids)
}

pub fn resume(pids: &[u32]) -> Result<Outcome, ProcError> {
    act(Action::Resume, pids)
}

pub fn terminate(pids: &[u32]) -> Result<Outcome, ProcError> {
    act(Action::Terminate, pids)
}

enum Sent {
    Done,
    Gone,
    Failed(String),
}

#[cfg(unix)]
mod os {
    use nix::errno::Errno;
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    use super::{Action, ProcError, Sent};

    pub(super) fn signal(action: Action, pid: u32) -> Result<Sent, ProcError> {
        let sig = match action {
            Action::Suspend => Signal::SIGSTOP,
            Action::Resume => Signal::SIGCONT,
            Action::Terminate => Signal::SIGTERM,
        };
        // The caller checked that `pid` fits a positive pid_t.
        let Ok(raw) = i32::try_from(pid) else {
            return Ok(Sent::Failed(crate::i18n::tr("procctl.refused.group")));
        };
        Ok(match kill(Pid::from_raw(raw), sig) {
            Ok(()) => Sent::Done,
            Err(Errno::ESRCH) => Sent::Gone,
            Err(e) => Sent::Failed(e.desc().to_string()),
        })
    }
}

#[cfg(windows)]
mod os {
    use super::{Action, ProcError, Sent};
    use crate::platform::win::{self, Acted};

    /// Suspending stops every thread of the process; terminating ends it
    /// at once (Windows has no polite "please exit" for a console-less
    /// program).
    pub(super) fn signal(action: Action, pid: u32) -> Result<Sent, ProcError> {
        let done = match action {
            Action::Suspend => win::set_threads_suspended(pid, true),
            Action::Resume => win::set_threads_suspended(pid, false),
            Action::Terminate => win::terminate(pid),
        };
        Ok(match done {
            Ok(Acted::Done) => Sent::Done,
            Ok(Acted::Gone) => Sent::Gone,
            Err(e) => Sent::Failed(e.to_string()),
        })
    }
}

#[cfg(not(any(unix, windows)))]
mod os {
    use super::{Action, ProcError, Sent};

    pub(super) fn signal(_action: Action, _pid: u32) -> Result<Sent, ProcError> {
        Err(ProcError::Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_init_and_self_are_never_signalled() {
        let o = terminate(&[0, 1, u32::MAX, std::process::id()]).unwrap();
        assert!(o.done.is_empty() && o.vanished.is_empty());
        let refused: Vec<u32> = o.failed.iter().map(|f| f.0).collect();
        assert_eq!(refused, vec![0, 1, u32::MAX, std::process::id()]);
    }
}
