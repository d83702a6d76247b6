//! The `kizuki-journal` thread: takes entries from a bounded channel and
//! writes them in batches, one transaction each. Senders never wait: when
//! the channel is full the entry is dropped and counted, and a "dropped"
//! record says so as soon as there is room again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::entry::{Entry, UserAction};
use super::{Appender, JournalWarning};
use crate::clock::Clock;

/// Entries waiting for the disk; at one tick a second this is over an hour
/// of a busy machine's events.
pub const CHANNEL_CAPACITY: usize = 4096;

/// Most entries written in one transaction.
const MAX_BATCH: usize = 2048;

/// How often the writer prunes old records.
const PRUNE_EVERY: Duration = Duration::from_secs(24 * 3600);

/// How often a size-capped journal's size is checked.
const SIZE_CHECK_EVERY: Duration = Duration::from_secs(60);

pub(super) enum Msg {
    /// Boxed: the channel holds [`CHANNEL_CAPACITY`] slots from the
    /// start, each as large as a message (an entry, with its connection
    /// inline, made that 1 MB, resident in a running guard for good; one
    /// allocation per record costs less).
    Entry(Box<Entry>),
    /// Answered once everything sent before it is written (or failed).
    Flush(SyncSender<()>),
    /// Closes open sessions, records the stop and ends the thread.
    Stop(SystemTime),
}

/// What the journal is doing, for the GUI's status line and the CLI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalStatus {
    pub path: PathBuf,
    /// Records written by this process.
    pub written: u64,
    /// Entries dropped because the channel was full (sampling never waits).
    pub dropped: u64,
    /// Entries lost because writing failed (disk full, damaged file).
    pub lost: u64,
    /// Set while writing is failing: "journal paused: disk full".
    pub paused: Option<JournalWarning>,
    /// Things the user should be told once (file moved aside, …).
    pub warnings: Vec<JournalWarning>,
    /// Head hash after the last write (hex), for display.
    pub head: Option<String>,
    pub head_id: Option<i64>,
}

impl JournalStatus {
    /// Everything worth telling the user now, most important first.
    pub fn all_warnings(&self) -> Vec<JournalWarning> {
        let mut v = self.warnings.clone();
        if let Some(p) = &self.paused {
            v.insert(0, p.clone());
        }
        let lost = self.dropped + self.lost;
        if lost > 0 {
            v.push(JournalWarning::Dropped { count: lost });
        }
        v
    }
}

#[derive(Default)]
pub(super) struct Pending {
    count: u64,
    from: Option<SystemTime>,
    to: Option<SystemTime>,
}

/// State shared by the stage, handles and the writer thread.
pub(super) struct Shared {
    pub(super) status: Mutex<JournalStatus>,
    /// Drops not yet reported in the journal itself.
    pending: Mutex<Pending>,
    /// A writer thread is draining the channel.
    pub(super) running: AtomicBool,
}

impl Shared {
    pub(super) fn new(path: &Path, warnings: Vec<JournalWarning>) -> Arc<Shared> {
        Arc::new(Shared {
            status: Mutex::new(JournalStatus {
                path: path.to_path_buf(),
                warnings,
                ..JournalStatus::default()
            }),
            pending: Mutex::new(Pending::default()),
            running: AtomicBool::new(false),
        })
    }

    pub(super) fn status(&self) -> std::sync::MutexGuard<'_, JournalStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn note_drop(&self, at: SystemTime) {
        self.status().dropped += 1;
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.count += 1;
        p.from.get_or_insert(at);
        p.to = Some(at);
    }

    /// The "dropped" record for drops not yet reported, if any.
    pub(super) fn take_pending_note(&self, now: SystemTime) -> Option<Entry> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.count == 0 {
            return None;
        }
        let note = Entry::Dropped {
            count: p.count,
            from: p.from.unwrap_or(now),
            to: p.to.unwrap_or(now),
            place: "queue",
        };
        *p = Pending::default();
        Some(note)
    }

    /// Queues `entry` without waiting; false when it was dropped.
    pub(super) fn offer(&self, tx: &SyncSender<Msg>, entry: Entry, now: SystemTime) -> bool {
        if let Some(note) = self.take_pending_note(now) {
            // Still no room: the drops stay pending (the note is rebuilt).
            if let Err(TrySendError::Full(m) | TrySendError::Disconnected(m)) =
                tx.try_send(Msg::Entry(Box::new(note)))
                && let Msg::Entry(e) = m
                && let Entry::Dropped {
                    count, from, to, ..
                } = *e
            {
                let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                p.count += count;
                p.from = Some(p.from.map_or(from, |f| f.min(from)));
                p.to = Some(p.to.map_or(to, |t| t.max(to)));
            }
        }
        match tx.try_send(Msg::Entry(Box::new(entry))) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.note_drop(now);
                false
            }
        }
    }
}

/// A cheap, cloneable way to reach a running journal writer: status for
/// the GUI, user actions, flushing.
#[derive(Clone)]
pub struct JournalHandle {
    pub(super) tx: SyncSender<Msg>,
    pub(super) shared: Arc<Shared>,
}

impl JournalHandle {
    pub fn status(&self) -> JournalStatus {
        self.shared.status().clone()
    }

    pub fn path(&self) -> PathBuf {
        self.shared.status().path.clone()
    }

    /// Queues the user's mark or firewall action. False when it could not
    /// be queued (counted as dropped, like every other lost record).
    pub fn record_action(&self, action: UserAction, at: SystemTime) -> bool {
        self.shared
            .offer(&self.tx, Entry::Action { action, at }, at)
    }

    /// Queues any entry without waiting.
    pub fn offer(&self, entry: Entry, now: SystemTime) -> bool {
        self.shared.offer(&self.tx, entry, now)
    }

    /// Waits until everything queued so far is written; false on timeout
    /// or when the writer has stopped.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(ack_tx)).is_err() {
            return false;
        }
        ack_rx.recv_timeout(timeout).is_ok()
    }
}

fn registry() -> &'static Mutex<HashMap<PathBuf, JournalHandle>> {
    static LIVE: OnceLock<Mutex<HashMap<PathBuf, JournalHandle>>> = OnceLock::new();
    LIVE.get_or_init(|| Mutex::new(HashMap::new()))
}

pub(super) fn register(h: &JournalHandle) {
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(h.path(), h.clone());
}

/// The handle of the journal writer this process started for `path` (the
/// newest one), e.g. for the GUI after `setup::native_monitor`. Its status
/// stays readable after the writer stopped.
pub fn live_handle(path: &Path) -> Option<JournalHandle> {
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(path)
        .cloned()
}

/// Creates the channel; the writer is started separately so tests can
/// fill the channel before anything drains it.
pub(super) fn channel(capacity: usize) -> (SyncSender<Msg>, Receiver<Msg>) {
    mpsc::sync_channel(capacity)
}

/// Starts the `kizuki-journal` thread draining `rx` into `app`.
pub(super) fn spawn(
    app: Appender,
    rx: Receiver<Msg>,
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
) -> std::io::Result<JoinHandle<()>> {
    let outside = shared.clone();
    outside.running.store(true, Ordering::SeqCst);
    let spawned = std::thread::Builder::new()
        .name("kizuki-journal".into())
        .spawn(move || {
            let flag = shared.clone();
            Writer::new(app, shared, clock).run(rx);
            flag.running.store(false, Ordering::SeqCst);
        });
    if spawned.is_err() {
        // Nothing drains the channel: senders must not wait on it.
        outside.running.store(false, Ordering::SeqCst);
    }
    spawned
}

struct Writer {
    app: Appender,
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    /// Entries lost to failed writes, reported when writing works again.
    lost: Pending,
    next_prune: Option<SystemTime>,
    next_size_check: Option<SystemTime>,
}

impl Writer {
    fn new(app: Appender, shared: Arc<Shared>, clock: Arc<dyn Clock>) -> Writer {
        Writer {
            app,
            shared,
            clock,
            lost: Pending::default(),
            next_prune: None,
            next_size_check: None,
        }
    }

    fn run(mut self, rx: Receiver<Msg>) {
        self.prune_if_due();
        while let Ok(first) = rx.recv() {
            let mut batch = Vec::new();
            let mut acks = Vec::new();
            let mut stop = None;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Entry(e) => batch.push(*e),
                    Msg::Flush(ack) => acks.push(ack),
                    Msg::Stop(at) => {
                        stop = Some(at);
                        break;
                    }
                }
                if batch.len() < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            if let Some(at) = stop {
                batch.push(Entry::AppStop { at });
            }
            self.write(batch);
            for ack in acks {
                let _ = ack.send(());
            }
            if stop.is_some() {
                break;
            }
            self.prune_if_due();
        }
    }

    fn write(&mut self, mut batch: Vec<Entry>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        if self.lost.count > 0 {
            let now = self.clock.now();
            batch.insert(
                0,
                Entry::Dropped {
                    count: self.lost.count,
                    from: self.lost.from.unwrap_or(now),
                    to: self.lost.to.unwrap_or(now),
                    place: "disk",
                },
            );
        }
        match self.app.write_batch(&batch) {
            Ok(written) => {
                self.lost = Pending::default();
                let head = self.app.journal().head().ok();
                let mut st = self.shared.status();
                st.written += written as u64;
                st.paused = None;
                if let Some(h) = head {
                    st.head = Some(h.hash);
                    st.head_id = h.id;
                }
            }
            Err(e) => {
                let now = self.clock.now();
                self.lost.count += n;
                self.lost.from.get_or_insert(now);
                self.lost.to = Some(now);
                let mut st = self.shared.status();
                st.lost += n;
                st.paused = Some(if e.is_disk_full() {
                    JournalWarning::DiskFull
                } else {
                    JournalWarning::WriteFailed {
                        error: e.to_string(),
                    }
                });
            }
        }
    }

    fn prune_if_due(&mut self) {
        self.cap_size_if_due();
        let now = self.clock.now();
        if self.next_prune.is_some_and(|t| now < t) {
            return;
        }
        self.next_prune = Some(now + PRUNE_EVERY);
        let keep = self.app.oldest_open();
        let j = self.app.journal_mut();
        let result = j
            .retention_days()
            .and_then(|d| j.prune(now, Duration::from_secs(u64::from(d) * 86_400), keep));
        if let Err(e) = result {
            // Pruning can wait a day; writing must go on.
            let mut st = self.shared.status();
            if e.is_disk_full() {
                st.paused = Some(JournalWarning::DiskFull);
            }
        }
    }
}

impl Writer {
    /// Past the size cap the oldest records go, with an anchor and a
    /// chained "pruned" record (see [`super::Journal::prune_to_size`]).
    fn cap_size_if_due(&mut self) {
        let Some(cap) = self.app.size_cap() else {
            return;
        };
        let now = self.clock.now();
        if self.next_size_check.is_some_and(|t| now < t) {
            return;
        }
        self.next_size_check = Some(now + SIZE_CHECK_EVERY);
        let keep = self.app.oldest_open();
        if let Err(e) = self.app.journal_mut().prune_to_size(now, cap, keep)
            && e.is_disk_full()
        {
            self.shared.status().paused = Some(JournalWarning::DiskFull);
        }
    }
}

impl std::fmt::Debug for JournalHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalHandle")
            .field("path", &self.path())
            .finish()
    }
}
