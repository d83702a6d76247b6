//! The guard's socket: one thread per connection (at most
//! [`MAX_CONNS`]), newline-delimited JSON, lines capped at
//! [`api::MAX_LINE`](crate::guard::api::MAX_LINE), a timeout for a client
//! that says nothing. The client is known by `SO_PEERCRED`, never by what
//! it says. Authorization (which may wait minutes for a password) happens
//! before the guard's lock is taken, so a slow client holds up nobody.

use std::io::{BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

use super::auth::{self, Authorizer, Subject};
use super::check::{self, Protected, Refused};
use super::core::{Asker, Core};
use super::procs;
use super::sampler::LiveState;
use super::viewer;
use crate::guard::api::{Event, Refusal, Reply, Request};
use crate::guard::client::read_line;
use crate::guard::live::{LiveSample, MAX_SAMPLE_LINE, cap, hashes_for, names_for, restrict};

/// Most connections (subscribers included) at once.
pub const MAX_CONNS: usize = 64;
/// Most connections of one non-root user at once, so one user cannot take
/// every slot.
pub const MAX_CONNS_PER_UID: usize = 16;
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Shared {
    pub core: Mutex<Core>,
    /// The state folder: the journal is read there without the core's lock.
    state_dir: std::path::PathBuf,
    pub authz: Box<dyn Authorizer>,
    pub protected: Protected,
    conns: AtomicUsize,
    per_uid: Mutex<std::collections::HashMap<u32, usize>>,
    subs: Mutex<Vec<SyncSender<String>>>,
    /// The live view (capture, names), when it started.
    live: Option<LiveState>,
    /// Live samples each non-root user may still ask now.
    sample_budget: Mutex<std::collections::HashMap<u32, Budget>>,
    /// Root's first question in the compact form (`since: None`, what
    /// every `kizuki scan` asks), encoded once per sample of the store:
    /// (the store's cursor, header and body).
    root_first: Mutex<Option<(u64, Arc<Vec<u8>>)>>,
}

/// A token bucket: [`SAMPLE_BURST`] samples at once, then
/// [`SAMPLES_PER_SEC`] a second, per non-root user.
#[derive(Debug, Clone, Copy)]
struct Budget {
    tokens: f64,
    at: Instant,
}

const SAMPLE_BURST: f64 = 8.0;
const SAMPLES_PER_SEC: f64 = 4.0;

impl Shared {
    pub fn new(core: Core, authz: Box<dyn Authorizer>) -> Shared {
        let protected = core.protected().clone();
        Shared {
            state_dir: core.dir().to_path_buf(),
            core: Mutex::new(core),
            authz,
            protected,
            conns: AtomicUsize::new(0),
            per_uid: Mutex::new(std::collections::HashMap::new()),
            subs: Mutex::new(Vec::new()),
            live: None,
            sample_budget: Mutex::new(std::collections::HashMap::new()),
            root_first: Mutex::new(None),
        }
    }

    pub fn with_live(mut self, live: Option<LiveState>) -> Self {
        self.live = live;
        self
    }

    /// Whether `uid` may have one more live sample now.
    fn take_sample(&self, uid: u32) -> bool {
        if uid == 0 {
            return true;
        }
        let now = Instant::now();
        let mut m = self.sample_budget.lock().unwrap_or_else(|e| e.into_inner());
        // Users who stopped asking are forgotten (bounded by uids seen).
        if m.len() > 4 * MAX_CONNS {
            m.retain(|_, b| now.duration_since(b.at) < Duration::from_secs(10));
        }
        let b = m.entry(uid).or_insert(Budget {
            tokens: SAMPLE_BURST,
            at: now,
        });
        b.tokens =
            (b.tokens + now.duration_since(b.at).as_secs_f64() * SAMPLES_PER_SEC).min(SAMPLE_BURST);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub fn core(&self) -> std::sync::MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn broadcast(&self, event: &Event) {
        let Ok(line) = serde_json::to_string(event) else {
            return;
        };
        let mut subs = self.subs.lock().unwrap_or_else(|e| e.into_inner());
        // A subscriber too slow to keep up is dropped, not waited for.
        subs.retain(|s| s.try_send(line.clone()).is_ok());
    }
}

/// A non-root user's connection slot, released when dropped.
struct UidSlot<'a> {
    shared: &'a Shared,
    uid: u32,
}

impl<'a> UidSlot<'a> {
    fn take(shared: &'a Shared, uid: u32) -> Option<UidSlot<'a>> {
        if uid == 0 {
            return Some(UidSlot { shared, uid });
        }
        let mut m = shared.per_uid.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(uid).or_default();
        if *n >= MAX_CONNS_PER_UID {
            return None;
        }
        *n += 1;
        Some(UidSlot { shared, uid })
    }
}

impl Drop for UidSlot<'_> {
    fn drop(&mut self) {
        if self.uid == 0 {
            return;
        }
        let mut m = self
            .shared
            .per_uid
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.uid);
            }
        }
    }
}

/// Releases a connection slot when the connection ends.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.conns.fetch_sub(1, Ordering::SeqCst);
    }
}

pub fn serve(listener: UnixListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        let Ok(mut stream) = conn else { continue };
        if shared.conns.fetch_add(1, Ordering::SeqCst) >= MAX_CONNS {
            shared.conns.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.set_nonblocking(true);
            let _ = write_reply(
                &mut stream,
                &Reply::Refused {
                    reason: Refusal::BadRequest,
                    detail: format!("busy: {MAX_CONNS} connections already"),
                    status: None,
                },
            );
            continue;
        }
        let slot = Slot(shared.clone());
        let spawned = std::thread::Builder::new()
            .name("guard-conn".into())
            .spawn(move || {
                let shared = slot.0.clone();
                connection(stream, &shared);
                drop(slot);
            });
        if let Err(e) = spawned {
            eprintln!("kizuki guard: connection thread: {e}");
        }
    }
}

fn write_reply(w: &mut impl Write, reply: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()
}

fn connection(stream: UnixStream, shared: &Arc<Shared>) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let Ok(cred) = getsockopt(&stream, PeerCredentials) else {
        return;
    };
    let asker = Asker {
        uid: cred.uid(),
        pid: u32::try_from(cred.pid()).unwrap_or(0),
    };
    let gid = cred.gid();
    let mut stream = stream;
    let Some(_slot) = UidSlot::take(shared, asker.uid) else {
        let _ = write_reply(
            &mut stream,
            &Reply::Refused {
                reason: Refusal::BadRequest,
                detail: format!("busy: {MAX_CONNS_PER_UID} connections of this user already"),
                status: None,
            },
        );
        return;
    };
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let line = match read_line(&mut reader) {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                let reply = refusal(
                    shared,
                    asker,
                    serde_json::Value::Null,
                    Refused {
                        reason: Refusal::BadRequest,
                        detail: format!("{e} (at most {} bytes)", crate::guard::api::MAX_LINE),
                    },
                );
                let _ = write_reply(&mut writer, &reply);
                return;
            }
            Err(_) => return,
        };
        let req = match serde_json::from_str::<Request>(&line) {
            Ok(r) => r,
            Err(e) => {
                let shown = crate::escape::truncate(&crate::escape::for_display(&line), 512);
                let reply = refusal(
                    shared,
                    asker,
                    serde_json::Value::String(shown),
                    Refused {
                        reason: Refusal::BadRequest,
                        detail: format!(
                            "not a request of API version {}: {e}",
                            crate::guard::api::API_VERSION
                        ),
                    },
                );
                if write_reply(&mut writer, &reply).is_err() {
                    return;
                }
                continue;
            }
        };
        if req == Request::Subscribe {
            subscribe(writer, shared);
            return;
        }
        if let Request::Sample { since, compact } = req {
            let written = match compact {
                true if asker.uid == 0 && since.is_none() => {
                    write_root_first(&mut writer, shared, gid)
                }
                true => {
                    write_sample_compact(&mut writer, &live_reply(shared, asker.uid, gid, since))
                }
                false => write_sample(&mut writer, &live_reply(shared, asker.uid, gid, since)),
            };
            if written.is_err() {
                return;
            }
            continue;
        }
        let reply = answer(&req, asker, shared);
        if write_reply(&mut writer, &reply).is_err() {
            return;
        }
    }
}

/// The live view as `uid` may see it. Not logged: clients ask every
/// second.
fn live_reply(shared: &Shared, uid: u32, gid: u32, since: Option<u64>) -> Reply {
    let Some(live) = &shared.live else {
        return Reply::Failed {
            detail: "the guard has no live view".into(),
            status: None,
        };
    };
    if !shared.take_sample(uid) {
        return Reply::Refused {
            reason: Refusal::BadRequest,
            detail: format!("busy: at most {SAMPLES_PER_SEC} live samples a second"),
            status: None,
        };
    }
    let ((mut sample, cursor, lost), hashes) = {
        let store = live.store();
        (store.view(since), store.hashes())
    };
    let restricted = restrict(&mut sample, &viewer::of(uid, gid));
    let truncated = cap(&mut sample);
    let hashes = hashes_for(&hashes, &sample);
    let names = names_for(&sample, &live.names, std::time::SystemTime::now());
    Reply::Sample {
        live: Box::new(LiveSample {
            api_version: crate::guard::api::API_VERSION,
            cursor,
            lost,
            capture: live.capture,
            names_read: live.names_read,
            interval_ms: u64::try_from(live.interval().as_millis()).unwrap_or(1000),
            sample,
            names,
            hashes,
            restricted,
            truncated,
        }),
    }
}

/// Writes a live sample, or says it was too large.
fn write_sample(w: &mut impl Write, reply: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    if line.len() >= MAX_SAMPLE_LINE {
        return write_reply(
            w,
            &Reply::Failed {
                detail: format!("the live sample is larger than {MAX_SAMPLE_LINE} bytes"),
                status: None,
            },
        );
    }
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()
}

/// Writes a live sample in its compact form (a header line, then the
/// bytes: [`crate::guard::live::CompactHeader`]); a refusal, or a sample
/// too large, as a JSON line.
fn write_sample_compact(w: &mut impl Write, reply: &Reply) -> std::io::Result<()> {
    let Reply::Sample { live } = reply else {
        return write_reply(w, reply);
    };
    match compact_bytes(live) {
        Ok(bytes) => {
            w.write_all(&bytes)?;
            w.flush()
        }
        Err(failed) => write_reply(w, &failed),
    }
}

/// The compact form's header and body together, or the reply saying why
/// there is none.
fn compact_bytes(live: &crate::guard::live::LiveSample) -> Result<Vec<u8>, Reply> {
    crate::guard::live::encode_compact(live)
        .map(|(mut bytes, body)| {
            bytes.extend_from_slice(&body);
            bytes
        })
        .map_err(|e| Reply::Failed {
            detail: e.to_string(),
            status: None,
        })
}

/// Root's first compact sample: the one encoded for the store's current
/// sample when there is one, else made, encoded and kept. Its names and
/// hashes are those known when it was made (at most one sample old).
fn write_root_first(w: &mut impl Write, shared: &Shared, gid: u32) -> std::io::Result<()> {
    let cursor = shared.live.as_ref().map(|l| l.store().cursor());
    let cached = shared
        .root_first
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .filter(|(c, _)| Some(*c) == cursor);
    if let Some((_, bytes)) = cached {
        w.write_all(&bytes)?;
        return w.flush();
    }
    let reply = live_reply(shared, 0, gid, None);
    let Reply::Sample { live } = &reply else {
        return write_reply(w, &reply);
    };
    match compact_bytes(live) {
        Ok(bytes) => {
            let bytes = Arc::new(bytes);
            *shared.root_first.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((live.cursor, bytes.clone()));
            w.write_all(&bytes)?;
            w.flush()
        }
        Err(failed) => write_reply(w, &failed),
    }
}

/// Logs a refusal and words the reply.
fn refusal(shared: &Shared, asker: Asker, request: serde_json::Value, r: Refused) -> Reply {
    let mut core = shared.core();
    core.record(Some(asker), request, None, "refused", &r.detail);
    Reply::Refused {
        reason: r.reason,
        detail: r.detail,
        status: Some(core.status()),
    }
}

/// The form of a request's path, before anyone is asked for a password.
fn precheck(req: &Request, protected: &Protected) -> Result<(), Refused> {
    match req {
        Request::Block { exe } => check::program(exe, protected).map(|_| ()),
        Request::Unblock { exe } => check::exe_path(exe),
        _ => Ok(()),
    }
}

pub fn answer(req: &Request, asker: Asker, shared: &Shared) -> Reply {
    match req {
        Request::History { query } => {
            return super::journal::history(&shared.state_dir, asker.uid, query);
        }
        Request::HistoryVerify { .. } => return super::journal::verify(&shared.state_dir),
        _ => {}
    }
    if !req.changes_enforcement() {
        return Reply::Ok {
            status: shared.core().status(),
        };
    }
    let logged = serde_json::to_value(req).unwrap_or_default();
    if let Err(r) = precheck(req, &shared.protected) {
        return refusal(shared, asker, logged, r);
    }
    let subject = Subject {
        pid: asker.pid,
        uid: asker.uid,
        start_time: procs::start_time(asker.pid).unwrap_or(0),
    };
    let authority = match auth::decide(req, &subject, shared.authz.as_ref()) {
        Ok(a) => a,
        Err(r) => return refusal(shared, asker, logged, r),
    };
    let (reply, event) = {
        let mut core = shared.core();
        let reply = core.handle(req, asker, authority);
        let (outcome, detail) = match &reply {
            Reply::Ok { .. } | Reply::Sample { .. } => ("ok", String::new()),
            Reply::Refused { detail, .. } => ("refused", detail.clone()),
            Reply::Failed { detail, .. } => ("failed", detail.clone()),
            Reply::History { .. } | Reply::HistoryVerify { .. } => ("ok", String::new()),
        };
        core.record(Some(asker), logged, Some(authority), outcome, &detail);
        let event = reply
            .status()
            .cloned()
            .map(|status| Event::Status { status });
        (reply, event)
    };
    if let Some(e) = event {
        shared.broadcast(&e);
    }
    reply
}

fn subscribe(mut writer: UnixStream, shared: &Arc<Shared>) {
    let (tx, rx) = sync_channel::<String>(16);
    let first = Event::Status {
        status: shared.core().status(),
    };
    shared
        .subs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(tx);
    let Ok(first) = serde_json::to_string(&first) else {
        return;
    };
    let mut send = |line: String| -> bool {
        writer
            .write_all(line.as_bytes())
            .and_then(|_| writer.write_all(b"\n"))
            .and_then(|_| writer.flush())
            .is_ok()
    };
    if !send(first) {
        return;
    }
    while let Ok(line) = rx.recv() {
        if !send(line) {
            return;
        }
    }
}
