//! The backend of the real window: each method hands over to the module
//! that owns the concern (marks, firewall, process control, reports).

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::backend::{
    Backend, BackendError, History, MarkOutcome, MarkRequest, ProcAction, ReportRequest,
    SavedReport,
};
use super::guard::{self, GuardUpdate, GuardWatch};
use super::jobs::{Job, JobDone, JobId, JobRunner, JobWorker, Waker};
use crate::clock::{Clock, SystemClock};
use crate::consult::{Opener, SystemOpener};
use crate::escape::os_lossless;
use crate::guard::api::{Reply, Request};
use crate::guard::client::{GuardLink, LinkError};
use crate::journal::{self, JournalHandle, ProgramRef, UserAction};
use crate::marks::MarkStore;
use crate::model::{Program, ProgramKey, Protocol};
use crate::monitor::SnapshotReceiver;
use crate::platform::procctl;
use crate::report;
use crate::report::Report;

use super::backend::{HistoryRow, HistorySource};
use crate::guard::history::HistoryScope;
use crate::journal::page::PageQuery;

/// At most this many past sessions are shown per program.
const HISTORY_ROWS: usize = 2000;
/// The history tab waits at most this long for each page from the guard.
const HISTORY_TIMEOUT: Duration = Duration::from_secs(5);
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
    /// The `kizuki-guard` thread reading the guard's state back.
    guard_watch: Option<GuardWatch>,
    /// Asks the guard for its journal (the history tab).
    history_link: Box<dyn GuardLink>,
}

/// The steps that may wait for the administrator: blocks, unblocks and
/// the panic button asked of the guard, and the user's own marks. Runs on
/// the job worker.
struct Privileged {
    /// The store the monitor reads too, so a mark shows on the next tick.
    marks: Arc<MarkStore>,
    /// The guard (on Windows: the local firewall backend).
    link: Box<dyn GuardLink>,
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
        let link = crate::guard::local::default_link(data_dir.as_deref(), marks.clone());
        let jobs = JobRunner::spawn(Box::new(Privileged {
            marks,
            link,
            journal: journal.clone(),
        }));
        NativeBackend {
            data_dir,
            snapshots,
            journal,
            opener: Box::new(SystemOpener),
            jobs,
            guard_watch: None,
            history_link: Box::new(journal::guarded::link().with_reply_timeout(HISTORY_TIMEOUT)),
        }
    }

    /// Asks `link` for the guard's journal (tests: a fake guard).
    pub fn with_history_link(mut self, link: Box<dyn GuardLink>) -> Self {
        self.history_link = link;
        self
    }

    /// Calls `waker` (on the worker thread) whenever a job finished, so
    /// the window repaints and picks the result up.
    pub fn with_waker(self, waker: Waker) -> Self {
        self.jobs.set_waker(waker);
        self
    }

    /// Watches the guard through `link` on the `kizuki-guard` thread;
    /// `waker` repaints the window when its state changes.
    /// `blocks` follows the guard's block list for the marks stage.
    pub fn with_guard_watch(
        mut self,
        link: Box<dyn GuardLink>,
        waker: Waker,
        blocks: crate::guard::blocked::GuardBlocks,
    ) -> Self {
        self.guard_watch = Some(GuardWatch::spawn(
            link,
            crate::guard::local::watch_interval(),
            Some(waker),
            blocks,
        ));
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
    /// Records a trusted/unknown mark in the user's own store and journals it.
    fn record_mark(&self, req: &MarkRequest) -> Result<(), BackendError> {
        let changed = self
            .marks
            .set(&req.exe, &req.sha256, req.mark, req.duration)
            .map_err(|e| BackendError::Failed(e.to_string()))?;
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
        Ok(())
    }
}

impl JobWorker for Privileged {
    fn run(&mut self, job: &Job) -> Result<MarkOutcome, BackendError> {
        let mut link = std::mem::replace(&mut self.link, Box::new(NoLink));
        let result = guard::run_job(link.as_mut(), job, &mut |req| self.record_mark(req));
        self.link = link;
        // Who changed a block, as the guard reports it.
        if let Ok(MarkOutcome::Guard(a)) = &result {
            let sha = match job {
                Job::SetMark(req) => Some(req.sha256.as_str()),
                _ => None,
            };
            record(self.journal.as_ref(), a.journal(sha));
        }
        result
    }
}

/// Stands in for the link while a job holds it (never asked).
struct NoLink;

impl GuardLink for NoLink {
    fn call(&mut self, _req: &Request) -> Result<Reply, LinkError> {
        Err(LinkError::Protocol("no link".into()))
    }
}

impl Backend for NativeBackend {
    fn start_job(&mut self, id: JobId, job: Job) {
        self.jobs.start(id, job);
    }

    fn finished_jobs(&mut self) -> Vec<JobDone> {
        self.jobs.finished()
    }

    fn guard_updates(&mut self) -> Vec<GuardUpdate> {
        self.guard_watch
            .as_ref()
            .map(GuardWatch::updates)
            .unwrap_or_default()
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
        // The save dialog already asked before replacing a file.
        options.force = true;
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
        // A script program is recorded under its script.
        let Some(path) = key.path() else {
            return Ok(History::Rows {
                rows: Vec::new(),
                source: HistorySource::Own,
                more: false,
            });
        };
        let exe = os_lossless(path.as_os_str());
        // The guard's journal first: root keeps it, so what it shows is
        // what the user's programs cannot have edited.
        match journal::guarded::recent(&mut *self.history_link, exe.clone(), HISTORY_ROWS) {
            Ok(h) => {
                return Ok(History::Rows {
                    rows: h.sessions.into_iter().map(history_row).collect(),
                    source: match h.scope {
                        HistoryScope::All => HistorySource::GuardAll,
                        HistoryScope::Own { .. } => HistorySource::GuardOwn,
                    },
                    more: h.truncated,
                });
            }
            Err(journal::guarded::NotShown::NoGuard) => {}
            Err(journal::guarded::NotShown::Failed(detail)) => {
                log::warn!("the guard did not show its journal: {detail}");
            }
        }
        let Some(dir) = &self.data_dir else {
            return Ok(History::NoJournal);
        };
        let path = journal::path_in(dir);
        if !path.exists() {
            return Ok(History::NoJournal);
        }
        let j = journal::Journal::open_existing(&path)
            .map_err(|e| BackendError::Failed(e.to_string()))?;
        let page = j
            .page(&PageQuery {
                exe: Some(exe),
                newest_first: true,
                limit: HISTORY_ROWS,
                ..PageQuery::default()
            })
            .map_err(|e| BackendError::Failed(e.to_string()))?;
        Ok(History::Rows {
            more: page.next_before.is_some(),
            rows: page.sessions.into_iter().map(history_row).collect(),
            source: HistorySource::Own,
        })
    }
}

fn history_row(r: journal::SessionRow) -> HistoryRow {
    HistoryRow {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    #[cfg(unix)]
    use crate::model::Mark;

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
            duration: crate::marks::MarkFor::Hour,
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

    /// A guard that answers each call from a script (none left: not running).
    struct Scripted(Vec<Reply>);

    impl GuardLink for Scripted {
        fn call(&mut self, _req: &Request) -> Result<Reply, LinkError> {
            if self.0.is_empty() {
                return Err(LinkError::NotRunning {
                    socket: "/nowhere".into(),
                });
            }
            Ok(self.0.remove(0))
        }
    }

    fn session(id: i64, remote: &str) -> crate::guard::history::WireSession {
        crate::guard::history::WireSession {
            id,
            exe: Some("/usr/bin/curl".into()),
            name: Some("curl".into()),
            sha256: None,
            pid: Some(100),
            protocol: "tcp".into(),
            local: "10.0.0.2:40000".into(),
            remote: Some(remote.into()),
            state: "ESTABLISHED".into(),
            first_seen_ms: id * 1000,
            last_seen_ms: None,
            remote_name: None,
            remote_name_source: None,
        }
    }

    #[test]
    fn the_history_tab_shows_the_guards_journal_and_says_so() {
        use crate::guard::history::{HistoryPage, WireHead};
        let dir = tempfile::tempdir().unwrap();
        let (b, _) = backend(dir.path());
        let page = HistoryPage {
            scope: HistoryScope::Own { uid: 1000 },
            head: WireHead {
                id: Some(9),
                at_ms: Some(0),
                hash: "ab".into(),
            },
            sessions: vec![session(9, "203.0.113.9:443"), session(4, "203.0.113.4:443")],
            events: Vec::new(),
            next_after: None,
            next_before: None,
        };
        let mut b = b.with_history_link(Box::new(Scripted(vec![Reply::History {
            page: Box::new(page),
        }])));
        let h = b
            .connection_history(&ProgramKey::Exe("/usr/bin/curl".into()))
            .unwrap();
        let History::Rows { rows, source, more } = h else {
            panic!("{h:?}")
        };
        assert_eq!(source, HistorySource::GuardOwn);
        assert!(!more);
        let remotes: Vec<_> = rows.iter().map(|r| r.remote.clone().unwrap()).collect();
        assert_eq!(remotes, ["203.0.113.9:443", "203.0.113.4:443"]);
    }

    #[test]
    fn without_a_guard_the_history_tab_reads_the_own_journal_newest_first() {
        use crate::identity::FakeHasher;
        use crate::model::{RawProcess, RawSample, RawSocket};
        use crate::monitor::MonitorCore;
        use crate::probe::FakeProbe;
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FakeClock::at_noon());
        let curl = || RawProcess::fake(100, "/usr/bin/curl");
        let older = RawSocket::tcp(100, "10.0.0.2:40001", "203.0.113.1:443");
        let newer = RawSocket::tcp(100, "10.0.0.2:40002", "203.0.113.2:443");
        let samples = vec![
            RawSample::of(vec![curl()], vec![older.clone()]),
            RawSample::of(vec![curl()], vec![older, newer]),
        ];
        let mut m = MonitorCore::new(
            Box::new(FakeProbe::new(samples)),
            Box::new(FakeHasher::default()),
            clock.clone(),
            Duration::from_secs(1),
        );
        m.add_stage(Box::new(journal::JournalStage::open(
            dir.path(),
            clock.clone(),
        )));
        for _ in 0..2 {
            m.tick().unwrap();
            clock.advance(Duration::from_secs(1));
        }
        m.save();
        drop(m);
        let (b, _) = backend(dir.path());
        let mut b = b.with_history_link(Box::new(Scripted(Vec::new())));
        let h = b
            .connection_history(&ProgramKey::Exe("/usr/bin/curl".into()))
            .unwrap();
        let History::Rows { rows, source, .. } = h else {
            panic!("{h:?}")
        };
        assert_eq!(source, HistorySource::Own);
        let remotes: Vec<_> = rows.iter().map(|r| r.remote.clone().unwrap()).collect();
        assert_eq!(remotes, ["203.0.113.2:443", "203.0.113.1:443"]);
        // A script program's history is its script's.
        let h = b
            .connection_history(&ProgramKey::Script {
                script: "/usr/bin/curl".into(),
                interpreter: "/usr/bin/bash".into(),
            })
            .unwrap();
        assert!(matches!(h, History::Rows { rows, .. } if rows.len() == 2));
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
