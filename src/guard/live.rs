//! The guard's live view, shared by the guard and its clients: what a
//! [`Request::Sample`](super::api::Request::Sample) answers, the bounded
//! store the guard keeps between its samples, and who may see what.
//!
//! The guard samples about once a second (with event capture and the
//! names reader where they load) and keeps the latest [`RawSample`] plus a
//! bounded ring of sockets that ended and processes that exited, each
//! with a sequence number. A client asks "everything since my cursor", so
//! one that polls every few seconds still gets a connection that lived
//! 10 ms. [`restrict`] withholds from a non-admin client what it could not
//! read from `/proc` itself. The client side is [`super::live_probe`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::model::{Protocol, RawProcess, RawSample, RawSocket};
use crate::names::{NameCache, NameSource};

/// Maps and sets rebuilt or searched every tick over every socket:
/// foldhash (seeded at random per run) rather than SipHash.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Longest [`LiveSample`] reply line (a busy machine's sample is
/// megabytes); other replies keep [`super::api::MAX_LINE`].
pub const MAX_SAMPLE_LINE: usize = 32 << 20;
/// Ended sockets kept for clients that poll slowly.
pub const RING_SOCKETS: usize = 20_000;
/// Exited processes kept.
pub const RING_PROCS: usize = 5_000;
/// Most sockets (live plus ended) and processes in one reply.
pub const MAX_SOCKETS_SENT: usize = 60_000;
pub const MAX_PROCS_SENT: usize = 30_000;
/// Most names in one reply.
pub const MAX_NAMES_SENT: usize = 60_000;

/// How the guard sees connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LiveCapture {
    /// eBPF event capture: every connection, with bytes.
    Ebpf,
    /// The capture could not load: the socket table at each sample.
    Polling,
}

/// The name the guard learnt for one connection (DNS answer, TLS server
/// name or HTTP Host), sent with the sockets it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowName {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub name: String,
    /// `dns`, `sni` or `http` (`remote_name_source`).
    pub source: String,
    /// When it was seen on the wire, seconds since the Unix epoch.
    pub seen: u64,
}

/// The SHA-256 of a process's image, as the guard read it through
/// `/proc/PID/exe` at the image's (device, inode) `stamp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcHash {
    pub pid: u32,
    pub start_time: u64,
    pub stamp: (u64, u64),
    pub sha256: String,
}

/// Hashes by (PID, start time).
pub type HashMapByProc = HashMap<(u32, u64), ProcHash>;

/// One answer to `Request::Sample`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSample {
    pub api_version: u32,
    /// Ask with `since: cursor` next time.
    pub cursor: u64,
    /// The ring no longer held everything since the asked cursor: some
    /// ended connections were not sent.
    pub lost: bool,
    pub capture: LiveCapture,
    /// The guard reads names from the wire.
    pub names_read: bool,
    pub interval_ms: u64,
    /// The latest sample; its `ended` holds every socket that ended after
    /// the asked cursor, its `processes` their owners (listed in
    /// `exited` when gone).
    pub sample: RawSample,
    pub names: Vec<FlowName>,
    /// SHA-256 of the image of each listed process the client may see,
    /// taken by the guard while it ran (the client need not read it again).
    pub hashes: Vec<ProcHash>,
    /// Other users' details were withheld (a non-admin client).
    pub restricted: bool,
    /// The reply was cut to its caps.
    pub truncated: bool,
}

/// A bounded ring of items, each with the sequence number of the sample
/// that produced it (pushed in non-decreasing order).
#[derive(Debug, Clone)]
pub struct Ring<T> {
    items: VecDeque<(u64, T)>,
    cap: usize,
    /// The newest sequence number pushed out for room.
    dropped: u64,
}

impl<T> Ring<T> {
    pub fn new(cap: usize) -> Self {
        Ring {
            items: VecDeque::new(),
            cap: cap.max(1),
            dropped: 0,
        }
    }

    pub fn push(&mut self, seq: u64, item: T) {
        if self.items.len() >= self.cap
            && let Some((s, _)) = self.items.pop_front()
        {
            self.dropped = self.dropped.max(s);
        }
        self.items.push_back((seq, item));
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Items pushed after `after`, oldest first, and whether some of them
    /// were already pushed out.
    pub fn after(&self, after: u64) -> (impl Iterator<Item = &T>, bool) {
        let start = self.items.partition_point(|(s, _)| *s <= after);
        (
            self.items.range(start..).map(|(_, t)| t),
            after < self.dropped,
        )
    }
}

/// An ended socket and the process that held it when last seen.
#[derive(Debug, Clone)]
struct Ended {
    socket: RawSocket,
    owners: Vec<Arc<RawProcess>>,
}

/// One socket across samples: its inode while it has one (the holders may
/// change), else its first holder (a flow only the capture saw).
type SockKey = (Protocol, SocketAddr, Option<SocketAddr>, u64);

fn key_of(s: &RawSocket) -> SockKey {
    let id = match s.inode {
        0 => (1 << 63) | u64::from(s.pids.first().copied().unwrap_or(0)),
        inode => inode,
    };
    (s.protocol, s.local, s.remote, id)
}

/// What the guard keeps between samples: the latest, and the rings.
#[derive(Debug)]
pub struct LiveStore {
    seq: u64,
    latest: Arc<RawSample>,
    ended: Ring<Ended>,
    exited: Ring<Arc<RawProcess>>,
    hashes: Arc<HashMapByProc>,
    /// The latest sample's processes, shared with the rings.
    latest_procs: HashMap<u32, Arc<RawProcess>>,
}

impl Default for LiveStore {
    fn default() -> Self {
        Self::new(RING_SOCKETS, RING_PROCS)
    }
}

impl LiveStore {
    pub fn new(sockets: usize, procs: usize) -> Self {
        LiveStore {
            seq: 0,
            latest: Arc::new(RawSample::default()),
            ended: Ring::new(sockets),
            exited: Ring::new(procs),
            hashes: Arc::default(),
            latest_procs: HashMap::default(),
        }
    }

    /// The hashes the sampler took so far (replaced as a whole).
    pub fn set_hashes(&mut self, hashes: Arc<HashMapByProc>) {
        self.hashes = hashes;
    }

    pub fn hashes(&self) -> Arc<HashMapByProc> {
        self.hashes.clone()
    }
}

/// The hashes of the processes in `sample` whose image it shows (call
/// after [`restrict`]: others' images are not shown).
pub fn hashes_for(hashes: &HashMapByProc, sample: &RawSample) -> Vec<ProcHash> {
    sample
        .processes
        .iter()
        .filter(|p| p.exe.is_some() && p.script.is_none())
        .filter_map(|p| {
            hashes
                .get(&(p.pid, p.start_time))
                .filter(|h| p.exe_stamp == Some(h.stamp))
        })
        .cloned()
        .collect()
}

impl LiveStore {
    pub fn cursor(&self) -> u64 {
        self.seq
    }

    /// Takes in a new sample: sockets of the previous one that are gone,
    /// and the sample's own ended sockets, go into the ring with their
    /// owners; processes that are gone (or listed as exited) too.
    pub fn publish(&mut self, mut sample: RawSample) {
        self.seq += 1;
        let seq = self.seq;
        let prev = &self.latest;
        // Unchanged processes keep their shared copy.
        let now_procs: HashMap<u32, Arc<RawProcess>> = sample
            .processes
            .iter()
            .map(|p| match self.latest_procs.get(&p.pid) {
                Some(a) if **a == *p => (p.pid, a.clone()),
                _ => (p.pid, Arc::new(p.clone())),
            })
            .collect();
        let prev_procs = &self.latest_procs;
        let owners = |s: &RawSocket, procs: &HashMap<u32, Arc<RawProcess>>| {
            s.pids
                .iter()
                .filter_map(|p| procs.get(p).cloned())
                .collect()
        };
        let live: HashSet<SockKey> = sample.sockets.iter().map(key_of).collect();
        for s in &prev.sockets {
            if !live.contains(&key_of(s)) {
                let o = owners(s, prev_procs);
                self.ended.push(
                    seq,
                    Ended {
                        socket: s.clone(),
                        owners: o,
                    },
                );
            }
        }
        for s in std::mem::take(&mut sample.ended) {
            let o = owners(&s, &now_procs);
            self.ended.push(
                seq,
                Ended {
                    socket: s,
                    owners: o,
                },
            );
        }
        let gone = prev
            .processes
            .iter()
            .filter(|p| {
                now_procs
                    .get(&p.pid)
                    .is_none_or(|n| n.start_time != p.start_time)
            })
            .filter(|p| !prev.exited.contains(&p.pid))
            .filter_map(|p| prev_procs.get(&p.pid));
        let newly_exited = sample.exited.iter().filter_map(|pid| now_procs.get(pid));
        let exited: Vec<Arc<RawProcess>> = gone.chain(newly_exited).cloned().collect();
        for p in exited {
            self.exited.push(seq, p);
        }
        self.latest = Arc::new(sample);
        self.latest_procs = now_procs;
    }

    /// The latest sample with everything that ended after `since` (`None`:
    /// only what ended at the latest sample), the cursor to ask from next,
    /// and whether some of it was lost to the caps.
    pub fn view(&self, since: Option<u64>) -> (RawSample, u64, bool) {
        let after = since.unwrap_or(self.seq.saturating_sub(1)).min(self.seq);
        let mut sample = (*self.latest).clone();
        let mut have: HashSet<u32> = sample.processes.iter().map(|p| p.pid).collect();
        let mut add = |sample: &mut RawSample, p: &RawProcess| {
            if have.insert(p.pid) {
                sample.exited.push(p.pid);
                sample.processes.push(p.clone());
            }
        };
        let (ended, lost_s) = self.ended.after(after);
        for e in ended {
            for o in &e.owners {
                add(&mut sample, o);
            }
            sample.ended.push(e.socket.clone());
        }
        let (exited, lost_p) = self.exited.after(after);
        for p in exited {
            add(&mut sample, p);
        }
        // A socket that ended and is listed again (reopened) is live.
        (sample, self.seq, lost_s || lost_p)
    }
}

/// Who asks, as the guard knows them from `SO_PEERCRED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    pub uid: u32,
    /// Root, or a member of an admin group: sees everything.
    pub admin: bool,
    /// `/proc` hides other users' processes (`hidepid`): so does the guard.
    pub hide_others: bool,
}

/// Withholds from a non-admin `v` what it could not read from `/proc`
/// itself: other users' processes keep only PID, parent, name, user and
/// start time (nothing at all under `hidepid`, and none that already
/// exited); other users' sockets keep what `ss` shows an ordinary user
/// (addresses, state, uid; no PIDs, no bytes); sockets that ended and raw
/// sockets are only the viewer's own. Returns whether anything was
/// withheld.
pub fn restrict(sample: &mut RawSample, v: &Viewer) -> bool {
    if v.admin {
        return false;
    }
    let mut withheld = false;
    let own: HashSet<u32> = sample
        .processes
        .iter()
        .filter(|p| p.uid == Some(v.uid))
        .map(|p| p.pid)
        .collect();
    let exited: HashSet<u32> = sample.exited.iter().copied().collect();
    sample.processes.retain_mut(|p| {
        if own.contains(&p.pid) {
            return true;
        }
        withheld = true;
        if v.hide_others || exited.contains(&p.pid) {
            return false;
        }
        *p = RawProcess {
            pid: p.pid,
            parent: p.parent,
            name: std::mem::take(&mut p.name),
            uid: p.uid,
            user: p.user.take(),
            start_time: p.start_time,
            ..RawProcess::default()
        };
        true
    });
    sample.exited.retain(|p| own.contains(p));
    sample.suspended.retain(|p| own.contains(p));
    // A socket is the viewer's when its uid is, or a process of theirs
    // holds it (a TIME_WAIT leftover the capture gave its owner has the
    // kernel's uid 0 in the table).
    let mine = |s: &RawSocket| s.uid == Some(v.uid) || s.pids.iter().any(|p| own.contains(p));
    for s in &mut sample.sockets {
        if mine(s) {
            let before = s.pids.len();
            s.pids.retain(|p| own.contains(p));
            withheld |= s.pids.len() != before;
        } else {
            withheld = true;
            s.pids.clear();
            s.bytes_sent = None;
            s.bytes_received = None;
            s.opened = None;
        }
    }
    // Only the socket table shows others' sockets: capture-only ones (no
    // inode, not a TIME_WAIT leftover) are not theirs to see.
    let n = sample.sockets.len();
    sample.sockets.retain(|s| {
        s.uid == Some(v.uid)
            || !s.pids.is_empty()
            || s.inode != 0
            || s.state == crate::model::SockState::TimeWait
    });
    let n_ended = sample.ended.len();
    sample.ended.retain_mut(|s| {
        let keep = mine(s);
        s.pids.retain(|p| own.contains(p));
        keep
    });
    let n_special = sample.special_sockets.len();
    sample.special_sockets.retain_mut(|s| {
        s.pids.retain(|p| own.contains(p));
        !s.pids.is_empty()
    });
    withheld |= n != sample.sockets.len()
        || n_ended != sample.ended.len()
        || n_special != sample.special_sockets.len();
    if withheld {
        sample.complete = false;
    }
    withheld
}

/// The guard's names for the sockets in `sample` that have an owner the
/// viewer may see (after [`restrict`]), at `now`.
pub fn names_for(sample: &RawSample, cache: &NameCache, now: SystemTime) -> Vec<FlowName> {
    let mut out = Vec::new();
    let mut seen = HashSet::default();
    for s in sample.sockets.iter().chain(&sample.ended) {
        let Some(remote) = s.remote else { continue };
        if s.pids.is_empty() || !seen.insert((s.local, remote)) {
            continue;
        }
        if let Some(n) = cache.best(s.local, remote, s.pids.first().copied(), now) {
            out.push(FlowName {
                local: s.local,
                remote,
                name: n.name,
                source: n.source.as_str().to_owned(),
                seen: n
                    .seen
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            });
            if out.len() >= MAX_NAMES_SENT {
                break;
            }
        }
    }
    out
}

/// Puts the names a guard sent into a client's cache, each for its own
/// connection.
pub fn learn_names(cache: &NameCache, names: &[FlowName]) {
    for n in names {
        let Some(source) = NameSource::parse(&n.source) else {
            continue;
        };
        let seen = SystemTime::UNIX_EPOCH + Duration::from_secs(n.seen);
        cache.record_flow(n.local, n.remote, &n.name, source, seen);
    }
}

/// Cuts a reply to the caps; returns whether anything was cut.
pub fn cap(sample: &mut RawSample) -> bool {
    let mut cut = false;
    if sample.sockets.len() > MAX_SOCKETS_SENT {
        sample.sockets.truncate(MAX_SOCKETS_SENT);
        cut = true;
    }
    let room = MAX_SOCKETS_SENT - sample.sockets.len();
    if sample.ended.len() > room {
        // The newest ended ones matter most to a client catching up.
        let excess = sample.ended.len() - room;
        sample.ended.drain(..excess);
        cut = true;
    }
    if sample.processes.len() > MAX_PROCS_SENT {
        sample.processes.truncate(MAX_PROCS_SENT);
        let kept: HashSet<u32> = sample.processes.iter().map(|p| p.pid).collect();
        sample.exited.retain(|p| kept.contains(p));
        cut = true;
    }
    cut
}

/// The line before a compact live sample: `{"reply":"sample-compact",
/// "api_version":1,"bytes":N}`, then exactly `N` bytes of the
/// [`LiveSample`] in postcard's binary form (at most
/// [`MAX_SAMPLE_LINE`]). The same content as the JSON reply, parsed in a
/// fraction of the time; anything else (a refusal) is a JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactHeader {
    pub reply: CompactTag,
    /// The shape of the bytes that follow: [`super::api::API_VERSION`].
    pub api_version: u32,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompactTag {
    SampleCompact,
}

/// Errors of the compact form.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("the live sample is larger than {MAX_SAMPLE_LINE} bytes")]
    TooLarge,
    #[error("guard speaks API version {0}, this client {api}", api = super::api::API_VERSION)]
    Version(u32),
    #[error("the compact live sample does not decode: {0}")]
    Decode(String),
}

/// The header line (with its newline) and the body of `live`.
pub fn encode_compact(live: &LiveSample) -> Result<(Vec<u8>, Vec<u8>), CompactError> {
    let body = postcard::to_stdvec(live).map_err(|e| CompactError::Decode(e.to_string()))?;
    if body.len() >= MAX_SAMPLE_LINE {
        return Err(CompactError::TooLarge);
    }
    let header = CompactHeader {
        reply: CompactTag::SampleCompact,
        api_version: super::api::API_VERSION,
        bytes: body.len() as u64,
    };
    let mut line = serde_json::to_vec(&header).map_err(|e| CompactError::Decode(e.to_string()))?;
    line.push(b'\n');
    Ok((line, body))
}

/// How many body bytes a header announces, when this client can read
/// them (the right version, within the cap).
pub fn compact_body_len(h: &CompactHeader) -> Result<usize, CompactError> {
    if h.api_version != super::api::API_VERSION {
        return Err(CompactError::Version(h.api_version));
    }
    match usize::try_from(h.bytes) {
        Ok(n) if n < MAX_SAMPLE_LINE => Ok(n),
        _ => Err(CompactError::TooLarge),
    }
}

/// The [`LiveSample`] in `body`; every byte must be used.
pub fn decode_compact(body: &[u8]) -> Result<LiveSample, CompactError> {
    match postcard::take_from_bytes::<LiveSample>(body) {
        Ok((live, [])) => Ok(live),
        Ok(_) => Err(CompactError::Decode("bytes left over".into())),
        Err(e) => Err(CompactError::Decode(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: u32, uid: u32, exe: &str) -> RawProcess {
        RawProcess {
            uid: Some(uid),
            cmdline: vec![exe.into(), "--secret".into()],
            ..RawProcess::fake(pid, exe)
        }
    }

    fn sock(pid: u32, uid: u32, local: &str, remote: &str) -> RawSocket {
        let mut s = RawSocket::tcp(pid, local, remote);
        s.uid = Some(uid);
        s.bytes_sent = Some(100);
        s.bytes_received = Some(200);
        s
    }

    #[test]
    fn the_ring_gives_what_came_after_a_cursor_and_says_when_it_lost_some() {
        let mut r = Ring::new(3);
        for (seq, x) in [(1, 'a'), (2, 'b'), (2, 'c')] {
            r.push(seq, x);
        }
        let (it, lost) = r.after(1);
        assert_eq!(it.copied().collect::<String>(), "bc");
        assert!(!lost);
        assert_eq!(r.after(2).0.count(), 0);
        r.push(3, 'd');
        r.push(4, 'e');
        assert_eq!(r.len(), 3, "bounded");
        let (it, lost) = r.after(0);
        assert_eq!(it.copied().collect::<String>(), "cde");
        assert!(lost, "a and b were pushed out");
        let (it, lost) = r.after(2);
        assert_eq!(it.copied().collect::<String>(), "de");
        assert!(!lost);
    }

    #[test]
    fn a_short_connection_between_two_client_polls_is_kept_with_its_owner() {
        let mut st = LiveStore::new(100, 100);
        let generator = proc(77, 1000, "/tmp/gen");
        st.publish(RawSample::of(vec![proc(1, 0, "/sbin/init")], vec![]));
        let (_, c0, _) = st.view(None);
        // The guard's next sample: the capture saw a 10 ms connection of a
        // process that already exited.
        let mut s = RawSample::of(vec![proc(1, 0, "/sbin/init"), generator.clone()], vec![]);
        s.exited.push(77);
        s.ended
            .push(sock(77, 1000, "127.0.0.1:40000", "127.0.0.1:8080"));
        st.publish(s);
        // And one more, where nothing of it is left.
        st.publish(RawSample::of(vec![proc(1, 0, "/sbin/init")], vec![]));
        let (v, c2, lost) = st.view(Some(c0));
        assert_eq!(c2, c0 + 2);
        assert!(!lost);
        assert_eq!(v.ended.len(), 1);
        assert_eq!(v.ended[0].pids, vec![77]);
        let p = v.processes.iter().find(|p| p.pid == 77).expect("owner");
        assert_eq!(p.exe.as_deref(), Some(std::path::Path::new("/tmp/gen")));
        assert!(v.exited.contains(&77));
        // Asked again from the new cursor: nothing twice.
        let (v, _, _) = st.view(Some(c2));
        assert!(v.ended.is_empty());
        assert!(v.processes.iter().all(|p| p.pid != 77));
    }

    #[test]
    fn a_socket_that_vanished_between_guard_samples_is_ended() {
        let mut st = LiveStore::new(100, 100);
        let a = sock(5, 1000, "127.0.0.1:40000", "127.0.0.1:8080");
        st.publish(RawSample::of(
            vec![proc(5, 1000, "/usr/bin/curl")],
            vec![a.clone()],
        ));
        let (_, c, _) = st.view(None);
        st.publish(RawSample::of(vec![], vec![]));
        let (v, _, _) = st.view(Some(c));
        assert_eq!(v.ended, vec![a]);
        assert!(
            v.processes.iter().any(|p| p.pid == 5),
            "its owner comes along"
        );
        assert!(v.exited.contains(&5));
    }

    #[test]
    fn a_socket_whose_holders_change_has_not_ended() {
        let mut st = LiveStore::new(100, 100);
        let mut a = sock(5, 1000, "127.0.0.1:40000", "127.0.0.1:8080");
        a.inode = 77;
        let p = vec![proc(5, 1000, "/usr/bin/x"), proc(6, 1000, "/usr/bin/x")];
        st.publish(RawSample::of(p.clone(), vec![a.clone()]));
        let (_, c, _) = st.view(None);
        a.pids = vec![5, 6]; // forked: both hold it now
        st.publish(RawSample::of(p, vec![a]));
        assert!(st.view(Some(c)).0.ended.is_empty());
    }

    #[test]
    fn a_non_admin_sees_only_what_proc_would_show_of_others() {
        let mut s = RawSample::of(
            vec![
                proc(10, 1000, "/usr/bin/mine"),
                proc(20, 1001, "/home/b/theirs"),
            ],
            vec![
                sock(10, 1000, "127.0.0.1:1000", "203.0.113.7:443"),
                sock(20, 1001, "127.0.0.1:2000", "198.51.100.1:443"),
            ],
        );
        let mut hidden = sock(20, 1001, "10.0.0.2:3000", "198.51.100.2:443");
        hidden.inode = 0; // capture-only (another namespace)
        s.sockets.push(hidden);
        s.ended
            .push(sock(20, 1001, "127.0.0.1:2001", "198.51.100.3:443"));
        // The viewer's own TIME_WAIT leftover: the table says uid 0.
        let mut tw = sock(10, 0, "127.0.0.1:1002", "203.0.113.9:443");
        tw.state = crate::model::SockState::TimeWait;
        tw.inode = 0;
        s.sockets.push(tw);
        s.ended
            .push(sock(10, 1000, "127.0.0.1:1001", "203.0.113.8:443"));
        s.special_sockets.push(crate::model::RawSpecialSocket {
            family: "packet",
            inode: 9,
            pids: vec![20],
        });
        s.complete = true;
        let mut all = s.clone();
        let v = Viewer {
            uid: 1000,
            admin: false,
            hide_others: false,
        };
        assert!(restrict(&mut s, &v));
        assert!(!s.complete);
        let theirs = s.processes.iter().find(|p| p.pid == 20).unwrap();
        assert_eq!(theirs.exe, None);
        assert!(theirs.cmdline.is_empty());
        assert_eq!(theirs.name, "theirs");
        let mine = s.processes.iter().find(|p| p.pid == 10).unwrap();
        assert_eq!(
            mine.exe.as_deref(),
            Some(std::path::Path::new("/usr/bin/mine"))
        );
        assert_eq!(s.sockets.len(), 3, "their capture-only socket is dropped");
        let tw = s.sockets.iter().find(|x| x.uid == Some(0)).unwrap();
        assert_eq!((tw.pids.clone(), tw.bytes_sent), (vec![10], Some(100)));
        let t = s.sockets.iter().find(|x| x.uid == Some(1001)).unwrap();
        assert!(t.pids.is_empty());
        assert_eq!((t.bytes_sent, t.bytes_received), (None, None));
        let m = s.sockets.iter().find(|x| x.uid == Some(1000)).unwrap();
        assert_eq!((m.pids.clone(), m.bytes_sent), (vec![10], Some(100)));
        assert_eq!(s.ended.len(), 1);
        assert_eq!(s.ended[0].uid, Some(1000));
        assert!(s.special_sockets.is_empty());
        // Under hidepid their process is not listed at all.
        let mut h = all.clone();
        restrict(
            &mut h,
            &Viewer {
                hide_others: true,
                ..v
            },
        );
        assert!(h.processes.iter().all(|p| p.pid != 20));
        // An admin sees everything.
        let before = all.clone();
        assert!(!restrict(
            &mut all,
            &Viewer {
                uid: 1000,
                admin: true,
                hide_others: true
            }
        ));
        assert_eq!(all, before);
    }

    #[test]
    fn names_travel_only_with_sockets_the_viewer_may_see() {
        let cache = NameCache::new();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        cache.record_dns("203.0.113.7".parse().unwrap(), "mine.example", None, now);
        cache.record_dns("198.51.100.1".parse().unwrap(), "theirs.example", None, now);
        let mut s = RawSample::of(
            vec![proc(10, 1000, "/usr/bin/mine"), proc(20, 1001, "/x")],
            vec![
                sock(10, 1000, "127.0.0.1:1000", "203.0.113.7:443"),
                sock(20, 1001, "127.0.0.1:2000", "198.51.100.1:443"),
            ],
        );
        restrict(
            &mut s,
            &Viewer {
                uid: 1000,
                admin: false,
                hide_others: false,
            },
        );
        let names = names_for(&s, &cache, now);
        assert_eq!(names.len(), 1);
        assert_eq!(
            (names[0].name.as_str(), names[0].source.as_str()),
            ("mine.example", "dns")
        );
        let client = NameCache::new();
        learn_names(&client, &names);
        let n = client
            .best(
                "127.0.0.1:1000".parse().unwrap(),
                "203.0.113.7:443".parse().unwrap(),
                Some(10),
                now,
            )
            .unwrap();
        assert_eq!(n.name, "mine.example");
        assert_eq!(n.source, NameSource::Dns);
    }

    #[test]
    fn a_sample_round_trips_and_stays_within_its_caps() {
        let mut s = RawSample::of(
            vec![proc(10, 1000, "/usr/bin/mine")],
            vec![sock(10, 1000, "127.0.0.1:1000", "[::1]:443")],
        );
        s.special_sockets.push(crate::model::RawSpecialSocket {
            family: "raw6",
            inode: 9,
            pids: vec![10],
        });
        let line = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<RawSample>(&line).unwrap(), s);
        s.sockets = vec![s.sockets[0].clone(); MAX_SOCKETS_SENT + 5];
        s.ended = vec![s.sockets[0].clone(); 10];
        assert!(cap(&mut s));
        assert_eq!(s.sockets.len() + s.ended.len(), MAX_SOCKETS_SENT);
    }

    fn full_live() -> LiveSample {
        let mut p = proc(10, 1000, "/usr/bin/python3");
        p.script = Some(crate::model::ScriptRun {
            path: "/home/a/ツール.py".into(),
            read_from: "/proc/10/fd/3".into(),
            deleted: true,
            stamp: Some((1, 2)),
        });
        p.exe_stamp = Some((3, 4));
        p.std_sockets = vec![77];
        p.tor_data = true;
        #[cfg(unix)]
        let odd = {
            use std::os::unix::ffi::OsStringExt;
            std::ffi::OsString::from_vec(b"/tmp/\xff\xfe x".to_vec()).into()
        };
        #[cfg(not(unix))]
        let odd = std::path::PathBuf::from("C:/odd");
        let mut q = proc(11, 0, "/bin/sh");
        q.exe = Some(odd);
        let mut s1 = sock(10, 1000, "127.0.0.1:40000", "[2001:db8::1]:443");
        s1.opened = Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123));
        let mut s2 = sock(11, 0, "0.0.0.0:53", "1.2.3.4:53");
        s2.protocol = Protocol::Udp;
        s2.remote = None;
        s2.bytes_sent = None;
        LiveSample {
            api_version: super::super::api::API_VERSION,
            cursor: 99,
            lost: true,
            capture: LiveCapture::Ebpf,
            names_read: true,
            interval_ms: 1000,
            sample: RawSample {
                processes: vec![p, q],
                sockets: vec![s1.clone(), s2],
                complete: false,
                special_sockets: vec![crate::model::RawSpecialSocket {
                    family: "packet",
                    inode: 5,
                    pids: vec![11],
                }],
                suspended: vec![11],
                exited: vec![10],
                ended: vec![s1.clone()],
            },
            names: vec![FlowName {
                local: s1.local,
                remote: s1.remote.unwrap(),
                name: "例え.jp".into(),
                source: "sni".into(),
                seen: 12,
            }],
            hashes: vec![ProcHash {
                pid: 10,
                start_time: 7,
                stamp: (3, 4),
                sha256: "ab".repeat(32),
            }],
            restricted: false,
            truncated: true,
        }
    }

    #[test]
    fn the_compact_form_carries_exactly_what_the_json_does() {
        let live = full_live();
        let (header, body) = encode_compact(&live).unwrap();
        assert_eq!(header.last(), Some(&b'\n'));
        let h: CompactHeader = serde_json::from_slice(&header[..header.len() - 1]).unwrap();
        assert_eq!(compact_body_len(&h).unwrap(), body.len());
        assert_eq!(decode_compact(&body).unwrap(), live);
        // The same sample through JSON, for comparison: the paths and
        // times survive both.
        let json = serde_json::to_string(&live).unwrap();
        assert_eq!(serde_json::from_str::<LiveSample>(&json).unwrap(), live);
        assert!(
            body.len() < json.len() / 2,
            "{} vs {}",
            body.len(),
            json.len()
        );
    }

    #[test]
    fn a_compact_reply_is_refused_when_cut_padded_too_large_or_of_another_version() {
        let (_, body) = encode_compact(&full_live()).unwrap();
        assert!(decode_compact(&body[..body.len() - 1]).is_err());
        let mut padded = body.clone();
        padded.push(0);
        assert!(decode_compact(&padded).is_err());
        let header = |api_version, bytes| CompactHeader {
            reply: CompactTag::SampleCompact,
            api_version,
            bytes,
        };
        let api = super::super::api::API_VERSION;
        assert!(matches!(
            compact_body_len(&header(api, MAX_SAMPLE_LINE as u64)),
            Err(CompactError::TooLarge)
        ));
        assert!(matches!(
            compact_body_len(&header(api, u64::MAX)),
            Err(CompactError::TooLarge)
        ));
        assert!(matches!(
            compact_body_len(&header(api + 1, 10)),
            Err(CompactError::Version(_))
        ));
        assert_eq!(compact_body_len(&header(api, 10)).unwrap(), 10);
    }
}
