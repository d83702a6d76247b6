//! The backend of the real window: each method hands over to the module
//! that owns the concern (marks, firewall, process control, reports).

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::backend::{
    Backend, BackendError, History, MarkOutcome, MarkRequest, ProcAction, ReportRequest,
    SavedReport, TrustDuration,
};
use super::jobs::{Job, JobDone, JobId, JobRunner, JobWorker, Waker};
use crate::clock::{Clock, SystemClock};
use crate::consult::{Opener, SystemOpener};
use crate::escape::os_lossless;
use crate::firewall::{self, DesiredState, Enforcement, FirewallError};
use crate::journal::{self, JournalHandle, ProgramRef, SessionQuery, UserAction};
use crate::marks::{MarkFor, MarkStore};
use crate::model::{Mark, Program, ProgramKey, Protocol};
use crate::monitor::SnapshotReceiver;
use crate::report::Report;
use crate::{procctl, report};

use super::backend::HistoryRow;

/// At most this many past sessions are shown per program.
const HISTORY_ROWS: usize = 2000;
/// At most this many recorded sessions go into a report.
const REPORT_SESSIONS: usize = 5000;

pub struct NativeBackend {
    /// Where marks, the journal and reports live.
    pub data_dir: Option<PathBuf>,
    /// The latest snapshot, for reports (parent chains).
    snapshots: Option<SnapshotReceiver>,
    /// The running journal writer, for the user's actions.
    journal: Option<JournalHandle>,
    /// Opens links and folders (the desktop's handler; a recording one in tests).
    opener: Box<dyn Opener>,
    /// Marks and the panic button, off the window's thread: they may wait
    /// for the administrator's password.
    jobs: JobRunner,
}

/// The steps that may need the administrator: recording marks and
/// enforcing them, the panic button. Runs on the job worker.
struct Privileged {
    data_dir: Option<PathBuf>,
    /// The store the monitor reads too, so a mark shows on the next tick.
    marks: Arc<MarkStore>,
    /// The latest snapshot, for firewall plans (PIDs, open connections).
    snapshots: Option<SnapshotReceiver>,
    journal: Option<JournalHandle>,
}

/// Puts a user action into the evidence journal (never waits on disk).
fn record(journal: Option<&JournalHandle>, action: UserAction) {
    if let Some(j) = journal {
        j.record_action(action, SystemClock.now());
    }
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
        let jobs = JobRunner::spawn(Box::new(Privileged {
            data_dir: data_dir.clone(),
            marks,
            snapshots: snapshots.clone(),
            journal: journal.clone(),
        }));
        NativeBackend {
            data_dir,
            snapshots,
            journal,
            opener: Box::new(SystemOpener),
            jobs,
        }
    }

    /// Calls `waker` (on the worker thread) whenever a job finished, so
    /// the window repaints and picks the result up.
    pub fn with_waker(self, waker: Waker) -> Self {
        self.jobs.set_waker(waker);
        self
    }

    /// Waits up to `timeout` for the next finished job (tests; the window
    /// never waits).
    pub fn wait_job(&self, timeout: Duration) -> Option<JobDone> {
        self.jobs.wait(timeout)
    }

    fn record(&self, action: UserAction) {
        record(self.journal.as_ref(), action);
    }

    /// Uses `opener` for links and folders instead of the desktop's.
    pub fn with_opener(mut self, opener: Box<dyn Opener>) -> Self {
        self.opener = opener;
        self
    }

    /// What the report needs besides the program: parent chains from the
    /// latest snapshot.
    fn extras(&self, program: &Program) -> report::Extras {
        let mut extras = report::Extras::default();
        if let Some(r) = &self.snapshots {
            extras.parent_chains = report::parent_chains(&r.latest(), program);
        }
        if let (Some(data), Some(exe)) = (&self.data_dir, &program.exe) {
            extras.journal_connections = journal::recorded_connections(data, exe, REPORT_SESSIONS);
        }
        extras
    }
}

impl Privileged {
    /// Makes the firewall match the marks; `None` when it now does.
    fn enforce(&self) -> Option<String> {
        let (state, _warning) = DesiredState::load(self.data_dir.as_deref(), SystemClock.now());
        let snap = self.snapshots.as_ref().map(|r| r.latest());
        let plan = firewall::desired_plan(&self.marks, &state, snap.as_deref());
        let scratch = self.data_dir.clone().unwrap_or_else(std::env::temp_dir);
        match firewall::enforce(&plan, &scratch) {
            Ok(Enforcement::Applied(_)) | Ok(Enforcement::Elevated) => None,
            // Recorded; the user is told plainly that it is not enforced.
            Err(e) => Some(e.to_string()),
        }
    }

    /// Records the user's mark (and, for blocked, enforces it).
    fn set_mark(&mut self, req: &MarkRequest) -> Result<MarkOutcome, BackendError> {
        let changed = self
            .marks
            .set(&req.exe, &req.sha256, req.mark, mark_for(req.duration))
            .map_err(|e| BackendError::Failed(e.to_string()))?;
        let was_blocked = changed
            .previous
            .as_ref()
            .is_some_and(|p| p.mark == Mark::Blocked);
        record(
            self.journal.as_ref(),
            UserAction::Mark {
                program: ProgramRef {
                    sha256: Some(req.sha256.clone()),
                    ..ProgramRef::of_key(&req.key)
                },
                mark: Some(req.mark),
                previous: changed.previous.as_ref().map(|p| p.mark),
            },
        );
        if req.mark != Mark::Blocked && !was_blocked {
            return Ok(MarkOutcome::Done);
        }
        let outcome = self.enforce();
        record(
            self.journal.as_ref(),
            UserAction::Firewall {
                program: Some(ProgramRef::of_key(&req.key)),
                verb: if req.mark == Mark::Blocked {
                    "block"
                } else {
                    "unblock"
                }
                .into(),
                ok: outcome.is_none(),
                detail: outcome.clone().unwrap_or_default(),
            },
        );
        Ok(match outcome {
            None => MarkOutcome::Done,
            Some(why) => MarkOutcome::NotEnforced(why),
        })
    }

    /// Cuts (`true`) or restores (`false`) all network traffic.
    fn panic(&mut self, on: bool) -> Result<MarkOutcome, BackendError> {
        let snap = self.snapshots.as_ref().map(|r| r.latest());
        let result =
            firewall::set_panic(on, self.data_dir.as_deref(), &self.marks, snap.as_deref());
        record(self.journal.as_ref(), UserAction::panic(on, &result));
        match result {
            Ok(Enforcement::Applied(_)) | Ok(Enforcement::Elevated) => Ok(MarkOutcome::Done),
            // Recorded; the user is told plainly that traffic still flows.
            Err(e @ FirewallError::PlanFile { .. }) => Err(BackendError::Failed(e.to_string())),
            Err(e) => Ok(MarkOutcome::NotEnforced(e.to_string())),
        }
    }
}

impl JobWorker for Privileged {
    fn run(&mut self, job: &Job) -> Result<MarkOutcome, BackendError> {
        match job {
            Job::SetMark(req) => self.set_mark(req),
            Job::Panic(on) => self.panic(*on),
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
    fn start_job(&mut self, id: JobId, job: Job) {
        self.jobs.start(id, job);
    }

    fn finished_jobs(&mut self) -> Vec<JobDone> {
        self.jobs.finished()
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

    fn write_report(
        &mut self,
        program: &Program,
        req: &ReportRequest,
    ) -> Result<SavedReport, BackendError> {
        let reports_dir = match (&self.data_dir, &req.out) {
            (Some(data), _) => report::default_reports_dir(data),
            // "Save as…" needs no data folder.
            (None, Some(_)) => std::env::temp_dir(),
            // No data folder (it could not be made; the window says so):
            // the report still goes where the user can find it.
            (None, None) => directories::UserDirs::new()
                .and_then(|u| u.document_dir().map(|d| d.join("kizuki-reports")))
                .unwrap_or_else(|| std::env::temp_dir().join("kizuki-reports")),
        };
        let mut options = report::ReportOptions::new(reports_dir, SystemClock.now());
        options.lang = crate::i18n::lang();
        options.out = req.out.clone();
        options.evidence_copy = req.evidence_copy;
        options.extras = self.extras(program);
        let files = report::write_report(program, &options)
            .map_err(|e| BackendError::Failed(e.to_string()))?;
        Ok(SavedReport {
            key: program.key.clone(),
            path: files.report,
            evidence: files.evidence,
            evidence_error: files.content.evidence_error.clone(),
            content: Box::new(files.content),
        })
    }

    fn report_preview(&mut self, program: &Program) -> Result<Report, BackendError> {
        Ok(Report::build(
            program,
            &self.extras(program),
            report::machine::detect(false),
            SystemClock.now(),
            crate::i18n::lang(),
        ))
    }

    fn open(&mut self, target: &OsStr) -> Result<(), BackendError> {
        self.opener
            .open(target)
            .map_err(|e| BackendError::Failed(e.to_string()))
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

    #[cfg(unix)]
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

    // Written with Unix paths and tools.
    #[cfg(unix)]
    #[test]
    fn trusting_from_the_window_lands_in_the_shared_store() {
        let dir = tempfile::tempdir().unwrap();
        let (mut b, marks) = backend(dir.path());
        b.start_job(7, Job::SetMark(request("/usr/bin/example", Mark::Trusted)));
        let done = b.wait_job(Duration::from_secs(30)).unwrap();
        assert_eq!((done.id, done.result), (7, Ok(MarkOutcome::Done)));
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
        let saved = b.write_report(&program, &ReportRequest::default()).unwrap();
        let path = saved.path;
        assert!(path.starts_with(dir.path().join("reports")));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(&"cd".repeat(32)));
    }

    // Written with Unix paths and tools.
    #[cfg(unix)]
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
