//! The backend of the real window: each method hands over to the module
//! that owns the concern (marks, firewall, process control, reports).

use std::path::PathBuf;
use std::sync::Arc;

use super::backend::{
    Backend, BackendError, Feature, History, MarkOutcome, MarkRequest, ProcAction, TrustDuration,
};
use crate::clock::{Clock, SystemClock};
use crate::escape::os_lossless;
use crate::firewall::{self, DesiredState, Enforcement, FirewallError};
use crate::journal::{self, JournalHandle, ProgramRef, SessionQuery, UserAction};
use crate::marks::{MarkFor, MarkStore};
use crate::model::{Mark, Program, ProgramKey, Protocol};
use crate::monitor::SnapshotReceiver;
use crate::{procctl, report};

use super::backend::HistoryRow;

/// At most this many past sessions are shown per program.
const HISTORY_ROWS: usize = 2000;
/// At most this many recorded sessions go into a report.
const REPORT_SESSIONS: usize = 5000;

pub struct NativeBackend {
    /// Where marks, the journal and reports live.
    pub data_dir: Option<PathBuf>,
    /// The store the monitor reads too, so a mark shows on the next tick.
    marks: Arc<MarkStore>,
    /// The latest snapshot, for firewall plans (PIDs, open connections) and
    /// reports (parent chains).
    snapshots: Option<SnapshotReceiver>,
    /// The running journal writer, for the user's actions.
    journal: Option<JournalHandle>,
}

impl NativeBackend {
    pub fn new(
        data_dir: Option<PathBuf>,
        marks: Arc<MarkStore>,
        snapshots: Option<SnapshotReceiver>,
    ) -> Self {
        let journal = data_dir
            .as_deref()
            .and_then(|d| journal::live_handle(&journal::path_in(d)));
        NativeBackend {
            data_dir,
            marks,
            snapshots,
            journal,
        }
    }

    /// Puts a user action into the evidence journal (never waits on disk).
    fn record(&self, action: UserAction) {
        if let Some(j) = &self.journal {
            j.record_action(action, SystemClock.now());
        }
    }

    /// Makes the firewall match the marks; `Ok(None)` when it now does.
    fn enforce(&self) -> Result<Option<String>, BackendError> {
        let (state, _warning) = DesiredState::load(self.data_dir.as_deref(), SystemClock.now());
        let snap = self.snapshots.as_ref().map(|r| r.latest());
        let plan = firewall::desired_plan(&self.marks, &state, snap.as_deref());
        let scratch = self.data_dir.clone().unwrap_or_else(std::env::temp_dir);
        match firewall::enforce(&plan, &scratch) {
            Ok(Enforcement::Applied(_)) | Ok(Enforcement::Elevated) => Ok(None),
            // Recorded; the user is told plainly that it is not enforced.
            Err(e @ (FirewallError::NoPrivilege | FirewallError::Elevation { .. })) => {
                Ok(Some(e.to_string()))
            }
            Err(e) => Ok(Some(e.to_string())),
        }
    }
}

fn mark_for(d: TrustDuration) -> MarkFor {
    match d {
        TrustDuration::OneHour => MarkFor::Hour,
        TrustDuration::UntilRestart => MarkFor::Restart,
        TrustDuration::Always => MarkFor::Always,
    }
}

impl Backend for NativeBackend {
    fn set_mark(&mut self, req: &MarkRequest) -> Result<MarkOutcome, BackendError> {
        let changed = self
            .marks
            .set(&req.exe, &req.sha256, req.mark, mark_for(req.duration))
            .map_err(|e| BackendError::Failed(e.to_string()))?;
        let was_blocked = changed
            .previous
            .as_ref()
            .is_some_and(|p| p.mark == Mark::Blocked);
        self.record(UserAction::Mark {
            program: ProgramRef {
                sha256: Some(req.sha256.clone()),
                ..ProgramRef::of_key(&req.key)
            },
            mark: Some(req.mark),
            previous: changed.previous.as_ref().map(|p| p.mark),
        });
        if req.mark != Mark::Blocked && !was_blocked {
            return Ok(MarkOutcome::Done);
        }
        let outcome = self.enforce()?;
        self.record(UserAction::Firewall {
            program: Some(ProgramRef::of_key(&req.key)),
            verb: if req.mark == Mark::Blocked {
                "block"
            } else {
                "unblock"
            }
            .into(),
            ok: outcome.is_none(),
            detail: outcome.clone().unwrap_or_default(),
        });
        Ok(match outcome {
            None => MarkOutcome::Done,
            Some(why) => MarkOutcome::NotEnforced(why),
        })
    }

    fn process_action(&mut self, action: ProcAction, pids: &[u32]) -> Result<(), BackendError> {
        let outcome = match action {
            ProcAction::Suspend => procctl::suspend(pids),
            ProcAction::Resume => procctl::resume(pids),
            ProcAction::Terminate => procctl::terminate(pids),
        }
        .map_err(|e| BackendError::Failed(e.to_string()))?;
        self.record(UserAction::Firewall {
            program: None,
            verb: action.as_str().into(),
            ok: outcome.failed.is_empty(),
            detail: format!("pids {:?}", outcome.done),
        });
        match outcome.failed.first() {
            None => Ok(()),
            Some((pid, why)) => Err(BackendError::PermissionDenied(format!("PID {pid}: {why}"))),
        }
    }

    fn write_report(&mut self, program: &Program) -> Result<PathBuf, BackendError> {
        let Some(data) = &self.data_dir else {
            return Err(BackendError::Failed(crate::i18n::tr("err.data_dir")));
        };
        let mut options =
            report::ReportOptions::new(report::default_reports_dir(data), SystemClock.now());
        options.lang = crate::i18n::lang();
        if let Some(r) = &self.snapshots {
            options.extras.parent_chains = report::parent_chains(&r.latest(), program);
        }
        if let Some(exe) = &program.exe {
            options.extras.journal_connections =
                journal::recorded_connections(data, exe, REPORT_SESSIONS);
        }
        report::write_report(program, &options)
            .map(|files| files.report)
            .map_err(|e| BackendError::Failed(e.to_string()))
    }

    fn open_consultation(&mut self, _program: Option<&Program>) -> Result<(), BackendError> {
        Err(BackendError::Unavailable(Feature::Consultation))
    }

    fn connection_history(&mut self, key: &ProgramKey) -> Result<History, BackendError> {
        let Some(dir) = &self.data_dir else {
            return Ok(History::NoJournal);
        };
        let ProgramKey::Exe(exe) = key else {
            return Ok(History::Rows(Vec::new()));
        };
        let path = journal::path_in(dir);
        if !path.exists() {
            return Ok(History::NoJournal);
        }
        let j = journal::Journal::open_existing(&path)
            .map_err(|e| BackendError::Failed(e.to_string()))?;
        let rows = j
            .sessions(&SessionQuery {
                exe: Some(os_lossless(exe.as_os_str())),
                since: None,
                limit: Some(HISTORY_ROWS),
            })
            .map_err(|e| BackendError::Failed(e.to_string()))?;
        Ok(History::Rows(
            rows.into_iter()
                .map(|r| HistoryRow {
                    first_seen: r.first_seen,
                    last_seen: r.last_seen.unwrap_or(r.first_seen),
                    pid: r.pid,
                    protocol: if r.protocol == "udp" {
                        Protocol::Udp
                    } else {
                        Protocol::Tcp
                    },
                    local: r.local,
                    remote: r.remote,
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;

    fn backend(dir: &std::path::Path) -> (NativeBackend, Arc<MarkStore>) {
        let marks = Arc::new(MarkStore::open(dir, Arc::new(FakeClock::at_noon())));
        (
            NativeBackend::new(Some(dir.to_path_buf()), marks.clone(), None),
            marks,
        )
    }

    fn request(exe: &str, mark: Mark) -> MarkRequest {
        MarkRequest {
            key: ProgramKey::Exe(exe.into()),
            exe: exe.into(),
            sha256: "ab".repeat(32),
            pids: vec![],
            mark,
            duration: TrustDuration::OneHour,
        }
    }

    #[test]
    fn trusting_from_the_window_lands_in_the_shared_store() {
        let dir = tempfile::tempdir().unwrap();
        let (mut b, marks) = backend(dir.path());
        let out = b
            .set_mark(&request("/usr/bin/example", Mark::Trusted))
            .unwrap();
        assert_eq!(out, MarkOutcome::Done);
        let found = marks.lookup(
            std::path::Path::new("/usr/bin/example"),
            Some(&"ab".repeat(32)),
        );
        assert_eq!(found.mark, Some(Mark::Trusted));
        // And it is on disk, for the next start and for the CLI.
        let reopened = MarkStore::open(dir.path(), Arc::new(FakeClock::at_noon()));
        assert_eq!(
            reopened
                .lookup(
                    std::path::Path::new("/usr/bin/example"),
                    Some(&"ab".repeat(32))
                )
                .mark,
            Some(Mark::Trusted)
        );
    }

    #[test]
    fn report_from_the_window_is_written_to_the_reports_folder() {
        let dir = tempfile::tempdir().unwrap();
        let (mut b, _) = backend(dir.path());
        let program = Program {
            key: ProgramKey::Exe("/tmp/freetool".into()),
            name: "freetool".into(),
            exe: Some("/tmp/freetool".into()),
            exe_deleted: true,
            sha256: Some("cd".repeat(32)),
            processes: vec![],
            connections: vec![],
            findings: vec![],
            mark: None,
            stale_mark: None,
            first_seen: std::time::SystemTime::UNIX_EPOCH,
        };
        let path = b.write_report(&program).unwrap();
        assert!(path.starts_with(dir.path().join("reports")));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(&"cd".repeat(32)));
    }

    #[test]
    fn suspend_and_resume_reach_a_real_process() {
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let dir = tempfile::tempdir().unwrap();
        let (mut b, _) = backend(dir.path());
        let state = |pid: u32| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            stat.rsplit_once(')')
                .unwrap()
                .1
                .split_whitespace()
                .next()
                .unwrap()
                .to_string()
        };
        b.process_action(ProcAction::Suspend, &[pid]).unwrap();
        let mut stopped = false;
        for _ in 0..200 {
            if state(pid) == "T" {
                stopped = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(stopped, "the process is stopped");
        b.process_action(ProcAction::Resume, &[pid]).unwrap();
        b.process_action(ProcAction::Terminate, &[pid]).unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());
    }
}
