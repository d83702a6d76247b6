//! Where no guard service exists yet (Windows): the same API answered in
//! this process by the firewall backend (Windows Defender Firewall rules,
//! which name the program's path and so hold for new starts and reboots;
//! changes go through the UAC prompt). The block list is the user's
//! blocked marks, as before; the state is read back from the firewall.
//!
//! A Windows service answering over a named pipe can later replace this
//! behind [`GuardLink`] without the window, tray or CLI changing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::api::{
    API_VERSION, Authority, BlockStatus, ExecCatch, GuardStatus, Refusal, Reply, Request,
};
use super::client::{GuardLink, LinkError, SocketLink};
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::firewall::{self, DesiredState};
use crate::marks::{MarkFor, MarkStore};
use crate::model::Mark;

/// The link every client uses: the guard service's socket, or on Windows
/// the local firewall backend over the user's marks.
pub fn default_link(data_dir: Option<&Path>, marks: Arc<MarkStore>) -> Box<dyn GuardLink> {
    if cfg!(windows) {
        Box::new(LocalLink::new(data_dir.map(Path::to_path_buf), marks))
    } else {
        Box::new(SocketLink::from_env())
    }
}

/// How often the window reads the state back: the guard answers from
/// memory; the local backend of Windows starts `netsh` each time.
pub fn watch_interval() -> std::time::Duration {
    std::time::Duration::from_secs(if cfg!(windows) { 10 } else { 2 })
}

/// The firewall backend of this process, answering the guard's API.
pub struct LocalLink {
    data_dir: Option<PathBuf>,
    marks: Arc<MarkStore>,
}

impl LocalLink {
    pub fn new(data_dir: Option<PathBuf>, marks: Arc<MarkStore>) -> Self {
        LocalLink { data_dir, marks }
    }

    fn desired(&self) -> DesiredState {
        DesiredState::load(self.data_dir.as_deref(), SystemClock.now()).0
    }

    fn read_back(&self) -> GuardStatus {
        let report = firewall::status(&self.marks, &self.desired());
        let mut problems = Vec::new();
        if let Err(e) = &report.enforced {
            problems.push(e.clone());
        }
        let panic = report.enforced.as_ref().is_ok_and(|e| e.panic);
        let blocked = report
            .blocked
            .iter()
            .map(|m| BlockStatus {
                exe: m.exe.clone(),
                sha256: m.sha256.clone(),
                since: rfc3339(m.set_at),
                by_uid: 0,
                authority: Authority::Root,
                enforced: report.is_enforced(&m.exe) == Some(true),
                pids_blocked: Vec::new(),
                pids_outside: Vec::new(),
            })
            .collect();
        GuardStatus {
            api_version: API_VERSION,
            panic,
            table: report.enforced.as_ref().is_ok_and(|e| e.table),
            exec_catch: ExecCatch::PathRules,
            blocked,
            problems,
        }
    }

    /// Makes the firewall match the marks and the panic state.
    fn enforce(&self, panic: bool) -> Result<(), String> {
        let plan = firewall::desired_plan(&self.marks, &DesiredState { panic }, None);
        let scratch = self.data_dir.clone().unwrap_or_else(std::env::temp_dir);
        firewall::enforce(&plan, &scratch)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn answer(&self, result: Result<(), String>) -> Reply {
        let status = self.read_back();
        match result {
            Ok(()) => Reply::Ok { status },
            Err(detail) => Reply::Failed {
                detail,
                status: Some(status),
            },
        }
    }

    fn refuse(&self, reason: Refusal, detail: String) -> Reply {
        Reply::Refused {
            reason,
            detail,
            status: Some(self.read_back()),
        }
    }
}

impl GuardLink for LocalLink {
    fn call(&mut self, req: &Request) -> Result<Reply, LinkError> {
        let panic = self.desired().panic;
        Ok(match req {
            Request::Status | Request::Subscribe => Reply::Ok {
                status: self.read_back(),
            },
            // The per-user journal answers history on Windows.
            Request::History { .. } | Request::HistoryVerify { .. } => {
                self.refuse(Refusal::BadRequest, "no journal in this service".into())
            }
            // No live view in-process: the client samples itself.
            Request::Sample { .. } => Reply::Failed {
                detail: "no live view without the guard service".into(),
                status: None,
            },
            Request::Block { exe } => {
                let sha = match crate::identity::sha256_file(exe) {
                    Ok(s) => s,
                    Err(e) => return Ok(self.refuse(Refusal::NotAProgram, e.to_string())),
                };
                if let Err(e) = self.marks.set(exe, &sha, Mark::Blocked, MarkFor::Always) {
                    return Ok(self.answer(Err(e.to_string())));
                }
                self.answer(self.enforce(panic))
            }
            Request::Unblock { exe } => {
                // Stale rules go with every apply, so this also lifts a
                // block whose mark was already changed.
                if let Some(m) = self.marks.blocked().into_iter().find(|m| &m.exe == exe)
                    && let Err(e) = self
                        .marks
                        .set(exe, &m.sha256, Mark::Unknown, MarkFor::Always)
                {
                    return Ok(self.answer(Err(e.to_string())));
                }
                self.answer(self.enforce(panic))
            }
            Request::Panic | Request::Resume => {
                let on = matches!(req, Request::Panic);
                if let Err(e) = (DesiredState { panic: on }).save(self.data_dir.as_deref()) {
                    return Ok(self.answer(Err(e.to_string())));
                }
                self.answer(self.enforce(on))
            }
            Request::Clear => {
                let saved = (DesiredState { panic: false }).save(self.data_dir.as_deref());
                let cleared = firewall::clear().map(|_| ()).map_err(|e| e.to_string());
                self.answer(saved.map_err(|e| e.to_string()).and(cleared))
            }
        })
    }
}

/// `kizuki firewall apply --plan FILE`: the elevated side of the UAC route
/// (Windows). Reads, validates and applies the plan.
pub fn apply_plan_file(file: &Path) -> Result<firewall::Plan, firewall::FirewallError> {
    let plan = firewall::read_plan_file(file)?;
    let dir = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    firewall::enforce(&plan, &dir)?;
    Ok(plan)
}
