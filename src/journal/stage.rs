//! The monitor stage that feeds the journal. It runs last, sees each tick's
//! opened and closed sessions, new programs and new findings, and queues
//! them for the writer thread without ever waiting for the disk.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::entry::{Entry, ProgramRef};
use super::writer::{self, CHANNEL_CAPACITY, JournalHandle, Msg, Shared};
use super::{Appender, Journal, JournalWarning, path_in};
use crate::clock::Clock;
use crate::model::{Connection, ProgramKey, Protocol, Snapshot, SockState};
use crate::monitor::{SessionEvent, Stage, TickContext};

/// How often "still running" records are written per program.
pub const SEEN_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SessKey {
    program: Option<ProgramKey>,
    pid: Option<u32>,
    protocol: Protocol,
    local: SocketAddr,
    remote: Option<SocketAddr>,
}

impl SessKey {
    fn of(program: &Option<ProgramKey>, c: &Connection) -> SessKey {
        SessKey {
            program: program.clone(),
            pid: c.pid,
            protocol: c.protocol,
            local: c.local,
            remote: c.remote,
        }
    }
}

/// A writer that has not started yet: tests fill the channel first.
pub struct PausedWriter {
    app: Appender,
    rx: Receiver<Msg>,
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
}

impl PausedWriter {
    pub fn start(self) -> std::io::Result<JoinHandle<()>> {
        writer::spawn(self.app, self.rx, self.shared, self.clock)
    }
}

/// Records what the monitor sees into the journal (see the module doc).
pub struct JournalStage {
    path: PathBuf,
    clock: Arc<dyn Clock>,
    shared: Arc<Shared>,
    tx: SyncSender<Msg>,
    join: Option<JoinHandle<()>>,
    /// False when no journal could be opened; the stage then does nothing.
    available: bool,
    finished: bool,
    /// Programs announced in this run.
    known: HashSet<ProgramRef>,
    /// Programs seen running since the last "seen" records.
    seen: HashMap<ProgramRef, SystemTime>,
    next_seen: Option<SystemTime>,
    /// Sessions whose opening was queued, with the program named then, so
    /// the closing names the same program.
    open: HashMap<SessKey, Option<ProgramRef>>,
    last_now: Option<SystemTime>,
}

impl JournalStage {
    /// Opens `journal.sqlite3` in `data_dir` and starts the writer thread.
    /// Never fails: problems are in [`JournalStage::handle`]'s status
    /// (file moved aside, journal unavailable) and kizuki keeps working.
    pub fn open(data_dir: &Path, clock: Arc<dyn Clock>) -> JournalStage {
        Self::open_path(&path_in(data_dir), clock)
    }

    pub fn open_path(path: &Path, clock: Arc<dyn Clock>) -> JournalStage {
        let (mut stage, paused) = Self::build(path, clock, CHANNEL_CAPACITY);
        if let Some(p) = paused {
            stage.start(p);
        }
        stage
    }

    /// Like [`JournalStage::open_path`] with a channel of `capacity`, but
    /// the writer only starts when the caller starts it (tests of a full
    /// channel).
    pub fn open_paused(
        path: &Path,
        clock: Arc<dyn Clock>,
        capacity: usize,
    ) -> (JournalStage, Option<PausedWriter>) {
        Self::build(path, clock, capacity)
    }

    fn build(
        path: &Path,
        clock: Arc<dyn Clock>,
        capacity: usize,
    ) -> (JournalStage, Option<PausedWriter>) {
        let now = clock.now();
        let (tx, rx) = writer::channel(capacity);
        let (shared, paused) = match Journal::open(path, now) {
            Ok((journal, warnings)) => {
                let shared = Shared::new(path, warnings);
                let paused = PausedWriter {
                    app: Appender::new(journal),
                    rx,
                    shared: shared.clone(),
                    clock: clock.clone(),
                };
                (shared, Some(paused))
            }
            Err(e) => (
                Shared::new(
                    path,
                    vec![JournalWarning::Unavailable {
                        error: e.to_string(),
                    }],
                ),
                None,
            ),
        };
        let stage = JournalStage {
            path: path.to_path_buf(),
            clock,
            shared,
            tx,
            join: None,
            available: paused.is_some(),
            finished: false,
            known: HashSet::new(),
            seen: HashMap::new(),
            next_seen: None,
            open: HashMap::new(),
            last_now: None,
        };
        let handle = stage.handle();
        writer::register(&handle);
        if stage.available {
            handle.offer(
                Entry::AppStart {
                    at: now,
                    detail: json!({
                        "version": env!("CARGO_PKG_VERSION"),
                        "pid": std::process::id(),
                    }),
                },
                now,
            );
        }
        (stage, paused)
    }

    fn start(&mut self, paused: PausedWriter) {
        match paused.start() {
            Ok(j) => self.join = Some(j),
            Err(e) => {
                self.available = false;
                self.shared
                    .status()
                    .warnings
                    .push(JournalWarning::Unavailable {
                        error: e.to_string(),
                    });
            }
        }
    }

    /// Status, user actions and flushing for the GUI and CLI.
    pub fn handle(&self) -> JournalHandle {
        JournalHandle {
            tx: self.tx.clone(),
            shared: self.shared.clone(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn offer(&self, e: Entry, now: SystemTime) {
        self.shared.offer(&self.tx, e, now);
    }

    fn restart(&mut self) {
        let (fresh, paused) = Self::build(&self.path, self.clock.clone(), CHANNEL_CAPACITY);
        *self = fresh;
        if let Some(p) = paused {
            self.start(p);
        }
    }

    fn flush_seen(&mut self, now: SystemTime) {
        let seen: Vec<(ProgramRef, SystemTime)> = self.seen.drain().collect();
        for (program, at) in seen {
            self.offer(Entry::Seen { program, at }, now);
        }
        self.next_seen = Some(now + SEEN_EVERY);
    }

    fn session(&mut self, ev: &SessionEvent, snap: &Snapshot, now: SystemTime) {
        let (program, conn, opened) = match ev {
            SessionEvent::Opened {
                program,
                connection,
            } => (program, connection, true),
            SessionEvent::Closed {
                program,
                connection,
            } => (program, connection, false),
        };
        let key = SessKey::of(program, conn);
        if opened {
            // Sockets nobody holds in TIME_WAIT are the tail of connections
            // already recorded under their program.
            if program.is_none() && matches!(conn.state, SockState::TimeWait | SockState::Close) {
                return;
            }
            let r = program.as_ref().map(|k| {
                snap.program(k)
                    .map(ProgramRef::of)
                    .unwrap_or_else(|| ProgramRef::of_key(k))
            });
            self.open.insert(key, r.clone());
            self.offer(
                Entry::Opened {
                    program: r,
                    conn: conn.clone(),
                },
                now,
            );
        } else {
            let r = match self.open.remove(&key) {
                Some(r) => r,
                // Its opening was skipped (see above) or was before this run.
                None if program.is_none() => return,
                None => program.as_ref().map(|k| {
                    snap.program(k)
                        .map(ProgramRef::of)
                        .unwrap_or_else(|| ProgramRef::of_key(k))
                }),
            };
            self.offer(
                Entry::Closed {
                    program: r,
                    conn: conn.clone(),
                },
                now,
            );
        }
    }
}

impl Stage for JournalStage {
    fn apply(&mut self, ctx: &TickContext<'_>, snap: &mut Snapshot) {
        if self.finished {
            self.restart();
        }
        if !self.available {
            return;
        }
        let now = ctx.now;
        self.last_now = Some(now);
        for p in &snap.programs {
            let newly_raised: Vec<_> = p
                .findings
                .iter()
                .filter(|f| f.first_raised == now)
                .collect();
            let alive = p.processes.iter().any(|x| x.alive);
            if !alive && newly_raised.is_empty() {
                continue;
            }
            let r = ProgramRef::of(p);
            if self.known.insert(r.clone()) {
                self.offer(
                    Entry::Program {
                        program: r.clone(),
                        at: now,
                    },
                    now,
                );
            }
            for f in newly_raised {
                self.offer(
                    Entry::Finding {
                        program: r.clone(),
                        kind: f.kind,
                        severity: f.severity,
                        summary: f.summary.clone(),
                        evidence: f.evidence.clone(),
                        at: now,
                    },
                    now,
                );
            }
            if alive {
                self.seen.insert(r, now);
            }
        }
        for ev in ctx.events {
            self.session(ev, snap, now);
        }
        match self.next_seen {
            None => self.next_seen = Some(now + SEEN_EVERY),
            Some(t) if now >= t => self.flush_seen(now),
            Some(_) => {}
        }
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if !self.available {
            return;
        }
        let now = self.last_now.unwrap_or_else(|| self.clock.now());
        self.flush_seen(now);
        self.open.clear();
        let Some(join) = self.join.take() else {
            // No writer runs (tests of a paused one): never wait.
            let _ = self.tx.try_send(Msg::Stop(now));
            return;
        };
        // Shutting down may wait for the disk: the stop must be recorded.
        if let Some(note) = self.shared.take_pending_note(now) {
            let _ = self.tx.send(Msg::Entry(note));
        }
        let _ = self.tx.send(Msg::Stop(now));
        let _ = join.join();
    }
}

impl Drop for JournalStage {
    fn drop(&mut self) {
        if self.join.is_some() {
            self.finish();
        }
    }
}
