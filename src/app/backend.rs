//! The side effects the window can ask for, behind one trait so the views
//! and `update` are testable without touching marks, processes or files.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::SystemTime;

use super::guard::GuardUpdate;
use super::jobs::{Job, JobDone, JobId, JobRunner, JobWorker};
use crate::guard::client::FakeGuard;
use crate::guard::outcome::Problem;
use crate::lock::MutexExt;
use crate::marks::MarkFor;
use crate::model::{Mark, Program, ProgramKey, Protocol};
use crate::report::{MachineInfo, Report};

/// Everything the marks store and the firewall need to mark one program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkRequest {
    pub key: ProgramKey,
    /// Absolute path of the executable.
    pub exe: PathBuf,
    /// Lowercase hex SHA-256 of the executable the user saw.
    pub sha256: String,
    /// Live PIDs (the firewall may move them into a blocked group).
    pub pids: Vec<u32>,
    pub mark: Mark,
    /// Only trust can be timed (a block that ends by itself would
    /// surprise the user), so blocks and "unknown" are `Always`.
    pub duration: MarkFor,
}

/// What the user can do to a program's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcAction {
    Suspend,
    Resume,
    Terminate,
}

impl ProcAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcAction::Suspend => "suspend",
            ProcAction::Resume => "resume",
            ProcAction::Terminate => "terminate",
        }
    }
}

/// One connection from the evidence journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub first_seen: SystemTime,
    pub last_seen: SystemTime,
    pub pid: Option<u32>,
    pub protocol: Protocol,
    /// `ip:port`, IPv6 as `[addr]:port`.
    pub local: String,
    pub remote: Option<String>,
}

/// Whose evidence journal a history comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistorySource {
    /// The guard's, kept by root: every user's records (root or an admin).
    GuardAll,
    /// The guard's, kept by root: only this user's processes.
    GuardOwn,
    /// The user's own journal (no guard answered).
    Own,
}

/// The journal's answer for one program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum History {
    /// There is no journal (yet) to ask.
    NoJournal,
    /// Newest first; may be empty.
    Rows {
        rows: Vec<HistoryRow>,
        source: HistorySource,
        /// Older sessions exist beyond the rows shown.
        more: bool,
    },
}

/// Parts of kizuki the backend may lack in a given build or platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    Marks,
    ProcessControl,
    Report,
    Consultation,
    Journal,
    Firewall,
}

impl Feature {
    pub fn as_str(self) -> &'static str {
        match self {
            Feature::Marks => "marks",
            Feature::ProcessControl => "procctl",
            Feature::Report => "report",
            Feature::Consultation => "consult",
            Feature::Journal => "journal",
            Feature::Firewall => "firewall",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    #[error("not available: {}", .0.as_str())]
    Unavailable(Feature),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Failed(String),
}

/// What became of a mark beyond being recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkOutcome {
    /// Recorded, and enforced where the mark asks for it.
    Done,
    /// Recorded, but the firewall could not be changed (why, for the user).
    NotEnforced(String),
    /// The guard's answer to a block, unblock or panic request, judged by
    /// the state it read back.
    Guard(Box<crate::guard::outcome::Answer>),
}

/// How to save a report: where, and whether the user agreed to an
/// evidence copy of the program file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportRequest {
    /// An exact file ("save as…"); `None`: the default reports folder.
    pub out: Option<PathBuf>,
    pub evidence_copy: bool,
}

/// A report that was written, and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedReport {
    pub key: ProgramKey,
    pub path: PathBuf,
    /// The evidence copy, when one was asked for and made.
    pub evidence: Option<PathBuf>,
    /// Why an agreed evidence copy could not be made.
    pub evidence_error: Option<String>,
    /// The content, for "copy summary" and the consultation steps.
    pub content: Box<Report>,
}

impl SavedReport {
    /// The folder holding the report (for "open folder").
    pub fn folder(&self) -> PathBuf {
        self.path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

/// Side effects of the window. Each call is one user action; errors are
/// shown to the user once, by `update`.
pub trait Backend {
    /// Starts a step that may wait for the administrator's approval
    /// (a mark, the panic button) and returns at once; its result comes
    /// out of [`Backend::finished_jobs`].
    fn start_job(&mut self, id: JobId, job: Job);
    /// Jobs finished since the last call, oldest first.
    fn finished_jobs(&mut self) -> Vec<JobDone>;
    /// Suspends, resumes or terminates these processes.
    fn process_action(&mut self, action: ProcAction, pids: &[u32]) -> Result<(), BackendError>;
    /// Writes a report about `program`; says where it was saved.
    fn write_report(
        &mut self,
        program: &Program,
        req: &ReportRequest,
    ) -> Result<SavedReport, BackendError>;
    /// What a report about `program` would say, without saving it (the
    /// walk-through fills its checklist and e-mail from it).
    fn report_preview(&mut self, program: &Program) -> Result<Report, BackendError>;
    /// Hands a link (`tel:`, `mailto:`, `https:`) or a folder to the desktop.
    fn open(&mut self, target: &OsStr) -> Result<(), BackendError>;
    /// Past connections of `key` from the evidence journal.
    fn connection_history(&mut self, key: &ProgramKey) -> Result<History, BackendError>;
    /// What was learned about the guard since the last call (its state
    /// read back, or that none answers), oldest first.
    fn guard_updates(&mut self) -> Vec<super::guard::GuardUpdate> {
        Vec::new()
    }
}

/// One call a [`RecordingBackend`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    SetMark(MarkRequest),
    Process(ProcAction, Vec<u32>),
    Report(ProgramKey, ReportRequest),
    Panic(bool),
    Open(OsString),
    History(ProgramKey),
    Unblock(PathBuf),
}

#[derive(Default)]
struct Recorded {
    calls: Vec<Call>,
    fail_with: Option<BackendError>,
    history: Option<History>,
    /// Jobs finished at once (nothing held).
    ready: Vec<JobDone>,
    /// While jobs are held: the worker they wait on.
    held: Option<JobRunner>,
    /// The guard behind the backend: blocks, unblocks and the panic
    /// button are asked of it as the real backend would.
    guard: FakeGuard,
    /// The guard's state last handed to the window.
    guard_seen: Option<GuardUpdate>,
}

impl std::fmt::Debug for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorded")
            .field("calls", &self.calls)
            .field("holding", &self.held.is_some())
            .finish_non_exhaustive()
    }
}

/// Lets jobs held by a [`RecordingBackend`] finish, one at a time, as a
/// password dialog would when the user answers it.
pub struct JobGate {
    /// `None`: the job asks the backend's fake guard.
    release: mpsc::Sender<Option<Result<MarkOutcome, BackendError>>>,
    posted: mpsc::Receiver<()>,
}

impl JobGate {
    /// The oldest held job finishes with `result`; returns once the result
    /// is posted for the window (false if that did not happen in time).
    pub fn release(&self, result: Result<MarkOutcome, BackendError>) -> bool {
        self.send(Some(result))
    }

    /// The oldest held job goes on to the backend's fake guard (as the
    /// real one does once the password is typed) and finishes with its
    /// answer.
    pub fn release_to_guard(&self) -> bool {
        self.send(None)
    }

    fn send(&self, r: Option<Result<MarkOutcome, BackendError>>) -> bool {
        self.release.send(r).is_ok()
            && self
                .posted
                .recv_timeout(std::time::Duration::from_secs(10))
                .is_ok()
    }
}

/// The held jobs' worker: waits for the test's answer on a channel.
struct HeldWorker(
    mpsc::Receiver<Option<Result<MarkOutcome, BackendError>>>,
    FakeGuard,
);

impl JobWorker for HeldWorker {
    fn run(&mut self, job: &Job) -> Result<MarkOutcome, BackendError> {
        match self.0.recv() {
            Ok(Some(r)) => r,
            Ok(None) => super::guard::run_job(&mut self.1, job, &mut |_| Ok(())),
            Err(_) => Err(BackendError::Failed("released without an answer".into())),
        }
    }
}

/// Records every call for tests; can be told to fail. Clones share the
/// record, so a test keeps one clone and gives the window another.
#[derive(Debug, Clone, Default)]
pub struct RecordingBackend {
    inner: Arc<Mutex<Recorded>>,
}

impl RecordingBackend {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Every following call fails with `err` (`None`: succeed again).
    pub fn fail_with(&self, err: Option<BackendError>) {
        self.lock().fail_with = err;
    }

    /// What the history tab is answered with (`None`: no journal).
    pub fn set_history(&self, history: Option<History>) {
        self.lock().history = history;
    }

    /// From now on jobs (marks, panic) wait on a worker thread until the
    /// returned gate releases them: like a password dialog left open.
    pub fn hold_jobs(&self) -> JobGate {
        let (release, release_rx) = mpsc::channel();
        let (posted_tx, posted) = mpsc::channel();
        let runner = JobRunner::spawn(Box::new(HeldWorker(release_rx, self.guard())));
        let posted_tx = Mutex::new(posted_tx);
        runner.set_waker(Arc::new(move || {
            let _ = posted_tx.lock().map(|t| t.send(()));
        }));
        self.lock().held = Some(runner);
        JobGate { release, posted }
    }

    /// The fake guard behind this backend (clones share its state): tell
    /// it to refuse, fail or be absent, and read the requests it got.
    pub fn guard(&self) -> FakeGuard {
        self.lock().guard.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.inner.locked()
    }

    fn record(&self, call: Call) -> Result<(), BackendError> {
        let mut r = self.lock();
        r.calls.push(call);
        match &r.fail_with {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

impl Backend for RecordingBackend {
    fn start_job(&mut self, id: JobId, job: Job) {
        let call = match &job {
            Job::SetMark(req) => Call::SetMark(req.clone()),
            Job::Panic(on) => Call::Panic(*on),
            Job::Unblock(exe) => Call::Unblock(exe.clone()),
        };
        let recorded = self.record(call);
        if let Some(runner) = &self.lock().held {
            runner.start(id, job);
            return;
        }
        let result = recorded.and_then(|()| {
            let mut guard = self.guard();
            super::guard::run_job(&mut guard, &job, &mut |_| Ok(()))
        });
        self.lock().ready.push(JobDone { id, job, result });
    }

    fn finished_jobs(&mut self) -> Vec<JobDone> {
        let mut r = self.lock();
        let mut done = std::mem::take(&mut r.ready);
        if let Some(runner) = &r.held {
            done.extend(runner.finished());
        }
        done
    }

    fn process_action(&mut self, action: ProcAction, pids: &[u32]) -> Result<(), BackendError> {
        self.record(Call::Process(action, pids.to_vec()))
    }

    fn write_report(
        &mut self,
        program: &Program,
        req: &ReportRequest,
    ) -> Result<SavedReport, BackendError> {
        self.record(Call::Report(program.key.clone(), req.clone()))?;
        let path = req
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/reports/{}.md", program.name)));
        let content = self.report_preview(program)?;
        Ok(SavedReport {
            key: program.key.clone(),
            path,
            evidence: None,
            evidence_error: None,
            content: Box::new(content),
        })
    }

    fn report_preview(&mut self, program: &Program) -> Result<Report, BackendError> {
        Ok(Report::build(
            program,
            &crate::report::Extras::default(),
            MachineInfo {
                os: "Test OS 1".into(),
                os_version: Some("1".into()),
                kernel: None,
                arch: "x86_64".into(),
                hostname: None,
            },
            SystemTime::UNIX_EPOCH,
            crate::i18n::Lang::Ja,
        ))
    }

    fn open(&mut self, target: &OsStr) -> Result<(), BackendError> {
        self.record(Call::Open(target.to_os_string()))
    }

    fn connection_history(&mut self, key: &ProgramKey) -> Result<History, BackendError> {
        self.record(Call::History(key.clone()))?;
        Ok(self.lock().history.clone().unwrap_or(History::NoJournal))
    }

    /// The fake guard's state as a subscription would bring it: each
    /// change once.
    fn guard_updates(&mut self) -> Vec<GuardUpdate> {
        let now = {
            let g = self.guard();
            let st = g.lock();
            if st.absent {
                GuardUpdate::Unreachable(Problem::NotRunning)
            } else {
                GuardUpdate::Status(st.status.clone())
            }
        };
        let mut r = self.lock();
        if r.guard_seen.as_ref() == Some(&now) {
            return Vec::new();
        }
        r.guard_seen = Some(now.clone());
        vec![now]
    }
}
