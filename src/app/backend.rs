//! The side effects the window can ask for, behind one trait so the views
//! and `update` are testable without touching marks, processes or files.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::model::{Mark, Program, ProgramKey, Protocol};
use crate::report::{MachineInfo, Report};

/// How long a mark lasts. Only trust can be timed (a block that ends by
/// itself would surprise the user), so blocks and "unknown" are `Always`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TrustDuration {
    OneHour,
    UntilRestart,
    #[default]
    Always,
}

impl TrustDuration {
    pub const ALL: [TrustDuration; 3] = [
        TrustDuration::OneHour,
        TrustDuration::UntilRestart,
        TrustDuration::Always,
    ];

    /// `1h`, `restart` or `always`, as the CLI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TrustDuration::OneHour => "1h",
            TrustDuration::UntilRestart => "restart",
            TrustDuration::Always => "always",
        }
    }
}

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
    pub duration: TrustDuration,
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

/// The journal's answer for one program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum History {
    /// There is no journal (yet) to ask.
    NoJournal,
    /// Newest first; may be empty.
    Rows(Vec<HistoryRow>),
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
    /// Records the user's mark (and, for blocked, enforces it).
    fn set_mark(&mut self, req: &MarkRequest) -> Result<MarkOutcome, BackendError>;
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
    /// Cuts (`true`) or restores (`false`) all network traffic: kizuki's
    /// panic button.
    fn panic(&mut self, on: bool) -> Result<MarkOutcome, BackendError>;
    /// Hands a link (`tel:`, `mailto:`, `https:`) or a folder to the desktop.
    fn open(&mut self, target: &OsStr) -> Result<(), BackendError>;
    /// Past connections of `key` from the evidence journal.
    fn connection_history(&mut self, key: &ProgramKey) -> Result<History, BackendError>;
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
}

#[derive(Debug, Default)]
struct Recorded {
    calls: Vec<Call>,
    fail_with: Option<BackendError>,
    history: Option<History>,
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

    /// What `connection_history` answers (default: no journal).
    pub fn set_history(&self, h: History) {
        self.lock().history = Some(h);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
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
    fn set_mark(&mut self, req: &MarkRequest) -> Result<MarkOutcome, BackendError> {
        self.record(Call::SetMark(req.clone()))?;
        Ok(MarkOutcome::Done)
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

    fn panic(&mut self, on: bool) -> Result<MarkOutcome, BackendError> {
        self.record(Call::Panic(on))?;
        Ok(MarkOutcome::Done)
    }

    fn open(&mut self, target: &OsStr) -> Result<(), BackendError> {
        self.record(Call::Open(target.to_os_string()))
    }

    fn connection_history(&mut self, key: &ProgramKey) -> Result<History, BackendError> {
        self.record(Call::History(key.clone()))?;
        Ok(self.lock().history.clone().unwrap_or(History::NoJournal))
    }
}
