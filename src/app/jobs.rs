//! Steps that may wait for the administrator (polkit asks for a password
//! while `pkexec kizuki …` runs) or for a slow `nft`: marking a program and
//! the panic button. They run on one worker thread, in order, so the window
//! keeps drawing; each result comes back as `Command::JobDone`.

use crate::lock::MutexExt;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::backend::{BackendError, MarkOutcome, MarkRequest};

/// Numbers the jobs of one window (given out by `update`).
pub type JobId = u64;

/// A step that may wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Record a mark (and enforce a block or an unblock).
    SetMark(MarkRequest),
    /// Cut (`true`) or restore (`false`) all traffic.
    Panic(bool),
    /// Ask the guard to lift the block on this program (the blocked
    /// programs list: also programs that are not running).
    Unblock(std::path::PathBuf),
}

/// What became of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDone {
    pub id: JobId,
    pub job: Job,
    pub result: Result<MarkOutcome, BackendError>,
}

/// Does the work of jobs, on the worker thread.
pub trait JobWorker: Send {
    fn run(&mut self, job: &Job) -> Result<MarkOutcome, BackendError>;
}

/// Called on the worker thread after each result is posted (the window
/// uses it to wake up and repaint).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// One worker thread and the way back from it.
pub struct JobRunner {
    /// `None` when the thread could not start; jobs then fail at once.
    tx: Option<Sender<(JobId, Job)>>,
    done_tx: Sender<JobDone>,
    done_rx: Receiver<JobDone>,
    waker: Arc<Mutex<Option<Waker>>>,
    spawn_error: Option<String>,
}

impl JobRunner {
    /// Starts the worker thread. It ends when the runner is dropped and
    /// the job in hand (perhaps a password dialog) is over; nobody waits
    /// for it, so closing the window never hangs on a dialog.
    pub fn spawn(mut worker: Box<dyn JobWorker>) -> Self {
        let (tx, rx) = mpsc::channel::<(JobId, Job)>();
        let (done_tx, done_rx) = mpsc::channel();
        let waker: Arc<Mutex<Option<Waker>>> = Arc::new(Mutex::new(None));
        let (thread_done, thread_waker) = (done_tx.clone(), waker.clone());
        let spawned = std::thread::Builder::new()
            .name("kizuki-jobs".into())
            .spawn(move || {
                for (id, job) in rx {
                    let result = worker.run(&job);
                    if thread_done.send(JobDone { id, job, result }).is_err() {
                        return;
                    }
                    let wake = thread_waker.locked().clone();
                    if let Some(w) = wake {
                        w();
                    }
                }
            });
        let (tx, spawn_error) = match spawned {
            Ok(_) => (Some(tx), None),
            Err(e) => (None, Some(e.to_string())),
        };
        JobRunner {
            tx,
            done_tx,
            done_rx,
            waker,
            spawn_error,
        }
    }

    /// Calls `waker` after each finished job.
    pub fn set_waker(&self, waker: Waker) {
        *self.waker.locked() = Some(waker);
    }

    /// Queues `job`; returns at once.
    pub fn start(&self, id: JobId, job: Job) {
        let sent = match &self.tx {
            Some(tx) => tx.send((id, job)).map_err(|e| e.0.1),
            None => Err(job),
        };
        if let Err(job) = sent {
            let why = self
                .spawn_error
                .clone()
                .unwrap_or_else(|| "worker stopped".into());
            let _ = self.done_tx.send(JobDone {
                id,
                job,
                result: Err(BackendError::Failed(why)),
            });
        }
    }

    /// Jobs finished since the last call, oldest first.
    pub fn finished(&self) -> Vec<JobDone> {
        self.done_rx.try_iter().collect()
    }

    /// Waits up to `timeout` for the next finished job (for tests and
    /// command-line callers; the window never waits).
    pub fn wait(&self, timeout: Duration) -> Option<JobDone> {
        self.done_rx.recv_timeout(timeout).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks each job until the test sends its outcome.
    struct Gated(Receiver<Result<MarkOutcome, BackendError>>);

    impl JobWorker for Gated {
        fn run(&mut self, _job: &Job) -> Result<MarkOutcome, BackendError> {
            self.0
                .recv()
                .unwrap_or(Err(BackendError::Failed("gone".into())))
        }
    }

    #[test]
    fn a_waiting_job_does_not_block_the_caller_and_wakes_it_when_done() {
        let (gate, gate_rx) = mpsc::channel();
        let runner = JobRunner::spawn(Box::new(Gated(gate_rx)));
        let (woke_tx, woke) = mpsc::channel();
        let woke_tx = Mutex::new(woke_tx);
        runner.set_waker(Arc::new(move || {
            let _ = woke_tx.lock().unwrap().send(());
        }));
        runner.start(1, Job::Panic(true));
        runner.start(2, Job::Panic(false));
        // The caller goes on while the worker waits for "the password".
        assert!(runner.finished().is_empty());
        gate.send(Ok(MarkOutcome::Done)).unwrap();
        woke.recv_timeout(Duration::from_secs(10)).unwrap();
        let done = runner.finished();
        assert_eq!(
            done,
            vec![JobDone {
                id: 1,
                job: Job::Panic(true),
                result: Ok(MarkOutcome::Done)
            }]
        );
        gate.send(Err(BackendError::PermissionDenied("cancelled".into())))
            .unwrap();
        let second = runner.wait(Duration::from_secs(10)).unwrap();
        assert_eq!((second.id, second.job), (2, Job::Panic(false)));
        assert!(second.result.is_err());
    }
}
