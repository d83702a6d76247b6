//! Linux specifics: socket owners from `/proc/*/fd`, executable links.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::model::RawSocket;

/// Kernel worker threads are not programs a user can act on.
pub fn is_kernel_thread(pid: u32, parent: Option<u32>) -> bool {
    pid == 2 || parent == Some(2)
}

/// The kernel's current name of a process (`/proc/PID/comm`).
pub fn comm_of(pid: u32) -> Option<String> {
    let bytes = fs::read(format!("/proc/{pid}/comm")).ok()?;
    let trimmed = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    Some(crate::escape::bytes_lossless(trimmed))
}

/// The running image's path without " (deleted)", and whether the file at
/// that path is gone or is no longer the image that runs.
pub fn exe_of(pid: u32) -> (Option<PathBuf>, bool) {
    let link = format!("/proc/{pid}/exe");
    let Ok(target) = fs::read_link(&link) else {
        return (None, false);
    };
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let bytes = target.as_os_str().as_bytes();
    const SUFFIX: &[u8] = b" (deleted)";
    let Some(stripped) = bytes.strip_suffix(SUFFIX) else {
        return (Some(target), false);
    };
    let path = PathBuf::from(std::ffi::OsString::from_vec(stripped.to_vec()));
    // A file may really be named "x (deleted)"; it is only gone when the path
    // no longer leads to the running image.
    let same = match (fs::metadata(&link), fs::metadata(&path)) {
        (Ok(img), Ok(now)) => img.dev() == now.dev() && img.ino() == now.ino(),
        _ => false,
    };
    if same {
        (Some(target), false)
    } else {
        (Some(path), true)
    }
}

use super::Attribution;

/// One sample's reads of `/proc/PID/fd`: the owner search reads every
/// descriptor of a process once, and the later looks at the same process
/// (standard streams, a script's descriptor, Tor's files) reuse it instead
/// of reading every link again.
#[derive(Debug, Default)]
pub struct FdTables {
    by_pid: HashMap<u32, Option<FdLinks>>,
}

/// A process's descriptors with their link targets.
type FdLinks = Vec<(u32, PathBuf)>;

impl FdTables {
    /// Reads `pid`'s descriptors (once per sample); `None` when they
    /// cannot be read (another user's process, or it exited).
    fn read(&mut self, pid: u32) -> Option<&[(u32, PathBuf)]> {
        self.by_pid
            .entry(pid)
            .or_insert_with(|| read_fd_links(pid))
            .as_deref()
    }

    /// Reads the descriptors of all `pids` not read yet, on a few threads
    /// when there are many (a full owner search; the links are the bulk of
    /// a first sample's system time).
    pub(crate) fn read_all(&mut self, pids: &[(u32, u64)]) {
        let todo: Vec<u32> = pids
            .iter()
            .map(|(pid, _)| *pid)
            .filter(|pid| !self.by_pid.contains_key(pid))
            .collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(READ_THREADS);
        if threads < 2 || todo.len() < PARALLEL_FROM {
            for pid in todo {
                self.read(pid);
            }
            return;
        }
        let chunk = todo.len().div_ceil(threads);
        let read: Vec<(u32, Option<FdLinks>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = todo
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|pid| (*pid, read_fd_links(*pid)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().ok())
                .flatten()
                .collect()
        });
        self.by_pid.extend(read);
    }

    /// The descriptors already read in this sample, if any.
    pub fn get(&self, pid: u32) -> Option<&[(u32, PathBuf)]> {
        self.by_pid.get(&pid).and_then(|v| v.as_deref())
    }

    /// Forgets what was read of `pid` (it is read anew on the next ask).
    fn forget(&mut self, pid: u32) {
        self.by_pid.remove(&pid);
    }
}

/// Threads that read descriptor tables at most, and the number of
/// processes from which it is worth starting them.
const READ_THREADS: usize = 4;
const PARALLEL_FROM: usize = 64;

/// Every descriptor of `pid` with its link target. Each link is read
/// relative to the open folder (`readlinkat`), sparing the kernel the walk
/// of `/proc/PID/fd/` for each of them.
fn read_fd_links(pid: u32) -> Option<FdLinks> {
    let path = format!("/proc/{pid}/fd");
    let dir = fs::File::open(&path).ok()?;
    let entries = fs::read_dir(&path).ok()?;
    let mut out = Vec::new();
    for fd in entries.flatten() {
        let name = fd.file_name();
        let Some(n) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(target) = nix::fcntl::readlinkat(&dir, name.as_os_str()) {
            out.push((n, PathBuf::from(target)));
        }
    }
    Some(out)
}

/// Samples between two full rescans in incremental mode: corrects owners
/// that drift when a socket is passed between processes or a forked child
/// keeps a socket its parent closed.
const FULL_RESCAN_EVERY: u32 = 60;

/// Finds which processes hold which socket inodes.
#[derive(Debug, Default)]
pub struct SocketOwners {
    mode: Attribution,
    map: HashMap<u64, Vec<u32>>,
    /// Processes whose descriptors were read, with their start marker so a
    /// reused PID counts as new.
    scanned: HashMap<u32, u64>,
    since_full: u32,
    /// Sockets a complete search found no holder for (a process in another
    /// PID namespace, a socket being torn down): not searched for again
    /// until the next full rescan, or every sample would become one.
    orphans: std::collections::HashSet<u64>,
    /// Processes read for the first time in the last sample: read once
    /// more in the next. A process caught between `fork` and `exec` holds
    /// copies of its parent's sockets that `exec` closes a moment later;
    /// without a second look it would be named as their owner until it
    /// exits.
    young: Vec<u32>,
    /// Descriptor directories read in the last sample (for benchmarks).
    pub last_scanned: usize,
}

impl SocketOwners {
    pub fn new(mode: Attribution) -> Self {
        SocketOwners {
            mode,
            ..Default::default()
        }
    }

    /// True when the next [`SocketOwners::attribute`] reads every
    /// process's descriptors (the first sample, a full rescan).
    pub fn reads_all(&self) -> bool {
        self.mode == Attribution::Full
            || self.scanned.is_empty()
            || self.since_full >= FULL_RESCAN_EVERY
    }

    /// Fills `pids` of every socket; returns false when some owned sockets
    /// stayed unattributed because their processes could not be read.
    pub fn attribute(
        &mut self,
        pids: &[(u32, u64)],
        sockets: &mut [RawSocket],
        fds: &mut FdTables,
    ) -> bool {
        self.last_scanned = 0;
        let full = self.reads_all();
        if full {
            self.map.clear();
            self.scanned.clear();
            self.orphans.clear();
            fds.read_all(pids);
            for (pid, marker) in pids {
                scan_fds(*pid, &mut self.map, fds);
                self.scanned.insert(*pid, *marker);
            }
            self.young = pids.iter().map(|(pid, _)| *pid).collect();
            self.last_scanned = pids.len();
            self.since_full = 0;
        } else {
            self.since_full += 1;
            self.update(pids, sockets, fds);
        }
        let mut complete = true;
        for s in sockets.iter_mut() {
            if s.inode == 0 {
                continue; // TIME_WAIT and friends: no process holds them.
            }
            match self.map.get(&s.inode) {
                Some(pids) => s.pids = pids.clone(),
                None => complete = false,
            }
        }
        complete
    }

    fn update(&mut self, pids: &[(u32, u64)], sockets: &[RawSocket], fds: &mut FdTables) {
        let current: HashMap<u32, u64> = pids.iter().copied().collect();
        // Forget processes that exited (or whose PID was reused).
        let gone: std::collections::HashSet<u32> = self
            .scanned
            .iter()
            .filter(|(pid, marker)| current.get(pid) != Some(marker))
            .map(|(pid, _)| *pid)
            .collect();
        if !gone.is_empty() {
            for pid in &gone {
                self.scanned.remove(pid);
            }
            self.map.retain(|_, owners| {
                owners.retain(|p| !gone.contains(p));
                !owners.is_empty()
            });
        }
        // Forget sockets that closed.
        let live: std::collections::HashSet<u64> = sockets.iter().map(|s| s.inode).collect();
        self.map.retain(|inode, _| live.contains(inode));
        self.orphans.retain(|inode| live.contains(inode));
        // Processes first read last time: read again, dropping what they
        // held then (see `young`).
        let again: std::collections::HashSet<u32> = std::mem::take(&mut self.young)
            .into_iter()
            .filter(|pid| self.scanned.contains_key(pid))
            .collect();
        if !again.is_empty() {
            self.map.retain(|_, owners| {
                owners.retain(|p| !again.contains(p));
                !owners.is_empty()
            });
            for pid in &again {
                scan_fds(*pid, &mut self.map, fds);
                self.last_scanned += 1;
            }
        }
        // New processes: read their descriptors now.
        for (pid, marker) in pids {
            if !self.scanned.contains_key(pid) {
                scan_fds(*pid, &mut self.map, fds);
                self.scanned.insert(*pid, *marker);
                self.young.push(*pid);
                self.last_scanned += 1;
            }
        }
        // A socket nobody is known to hold was opened by a running process:
        // read descriptors again, stopping as soon as every one is found.
        let mut unknown: std::collections::HashSet<u64> = sockets
            .iter()
            .filter(|s| {
                s.inode != 0 && !self.map.contains_key(&s.inode) && !self.orphans.contains(&s.inode)
            })
            .map(|s| s.inode)
            .collect();
        if unknown.is_empty() {
            return;
        }
        // Processes of the sockets' owners first: the kernel tells the uid.
        let uids: std::collections::HashSet<u32> = sockets
            .iter()
            .filter(|s| unknown.contains(&s.inode))
            .filter_map(|s| s.uid)
            .collect();
        let mut order: Vec<(bool, u32)> = pids
            .iter()
            .map(|(pid, _)| (!uid_of(*pid).is_some_and(|u| uids.contains(&u)), *pid))
            .collect();
        order.sort_unstable();
        for (_, pid) in order {
            let mut found = HashMap::new();
            // Read anew: a socket opened since this process was read.
            fds.forget(pid);
            scan_fds(pid, &mut found, fds);
            self.last_scanned += 1;
            for (inode, owners) in found {
                unknown.remove(&inode);
                let entry = self.map.entry(inode).or_default();
                for o in owners {
                    if !entry.contains(&o) {
                        entry.push(o);
                    }
                }
            }
            if unknown.is_empty() {
                break;
            }
        }
        self.orphans.extend(unknown);
    }
}

/// PIDs under /proc with a marker that changes when a PID is reused (the
/// process's start time in clock ticks), and the PIDs that are stopped
/// (SIGSTOP, as kizuki's 一時停止 does: state `T`), from one read of each
/// `/proc/PID/stat`.
pub fn list_pids() -> (Vec<(u32, u64)>, HashSet<u32>) {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Default::default();
    };
    let mut pids = Vec::new();
    let mut stopped = HashSet::new();
    let listed = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()));
    for pid in listed {
        let (marker, is_stopped) = stat_of(pid);
        if is_stopped {
            stopped.insert(pid);
        }
        pids.push((pid, marker));
    }
    (pids, stopped)
}

/// Field 22 of /proc/PID/stat (start time; 0 when unreadable) and whether
/// field 3 (state) is `T`.
fn stat_of(pid: u32) -> (u64, bool) {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return (0, false);
    };
    // The name in parentheses may contain spaces; fields follow the last ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return (0, false);
    };
    let mut fields = rest.split_whitespace();
    let stopped = fields.next() == Some("T");
    let marker = fields.nth(18).and_then(|v| v.parse().ok()).unwrap_or(0);
    (marker, stopped)
}

fn uid_of(pid: u32) -> Option<u32> {
    fs::metadata(format!("/proc/{pid}")).ok().map(|m| m.uid())
}

/// Adds every socket inode that `pid` holds; a process that vanished or
/// cannot be read is skipped silently (that is normal).
fn scan_fds(pid: u32, map: &mut HashMap<u64, Vec<u32>>, fds: &mut FdTables) {
    let Some(links) = fds.read(pid) else {
        return;
    };
    for (_, target) in links {
        let Some(inode) = socket_inode(target) else {
            continue;
        };
        let owners = map.entry(inode).or_default();
        if !owners.contains(&pid) {
            owners.push(pid);
        }
    }
}

/// The effective user id of this process, read without `unsafe`.
pub fn effective_uid() -> Option<u32> {
    fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// (device, inode) of the file `path` leads to (following links, so
/// `/proc/PID/exe` gives the running image even after it was deleted).
pub fn stamp_of(path: &std::path::Path) -> Option<(u64, u64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The command line as the process shows it now (`exec` and programs that
/// rewrite their arguments change it); `None` when it cannot be read.
pub fn cmdline_of(pid: u32) -> Option<Vec<String>> {
    let bytes = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let trimmed = bytes.strip_suffix(b"\0").unwrap_or(&bytes);
    if trimmed.is_empty() {
        return Some(Vec::new());
    }
    Some(
        trimmed
            .split(|b| *b == 0)
            .map(crate::escape::bytes_lossless)
            .collect(),
    )
}

fn socket_inode(target: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let b = target.as_os_str().as_bytes();
    let num = b.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(num).ok()?.parse().ok()
}

/// Socket inodes on descriptors 0, 1 and 2.
pub fn std_sockets(pid: u32, fds: &FdTables) -> Vec<u64> {
    if let Some(links) = fds.get(pid) {
        let mut std: Vec<&(u32, PathBuf)> = links.iter().filter(|(n, _)| *n < 3).collect();
        std.sort_by_key(|(n, _)| *n);
        return std
            .into_iter()
            .filter_map(|(_, t)| socket_inode(t))
            .collect();
    }
    (0..3)
        .filter_map(|fd| fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok())
        .filter_map(|t| socket_inode(&t))
        .collect()
}

/// Splits a descriptor's link target into the path and whether the kernel
/// marked it deleted.
fn strip_deleted(target: PathBuf) -> (PathBuf, bool) {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    match target.as_os_str().as_bytes().strip_suffix(b" (deleted)") {
        Some(p) => (
            PathBuf::from(std::ffi::OsString::from_vec(p.to_vec())),
            true,
        ),
        None => (target, false),
    }
}

/// The script an interpreter process runs: its path from the command line
/// (made absolute with the process's working folder), the descriptor it is
/// read through when one is open (bash keeps it on 255), and whether the
/// file is gone or replaced.
pub fn script_of(
    pid: u32,
    exe: &std::path::Path,
    cmdline: &[String],
) -> Option<crate::model::ScriptRun> {
    script_with(pid, exe, cmdline, &FdTables::default())
}

/// [`script_of`], looking among `fds` when this sample already read the
/// process's descriptors.
pub fn script_with(
    pid: u32,
    exe: &std::path::Path,
    cmdline: &[String],
    fds: &FdTables,
) -> Option<crate::model::ScriptRun> {
    let path = script_path(pid, exe, cmdline)?;
    // The descriptor the interpreter reads the script through, if open.
    let mut fd_hit: Option<(PathBuf, bool)> = None;
    if let Some(links) = fds.get(pid) {
        // bash reads its script through descriptor 255: look there first.
        let first = links.iter().filter(|(n, _)| *n == 255);
        for (n, target) in first.chain(links.iter().filter(|(n, _)| *n != 255)) {
            let (target, deleted) = strip_deleted(target.clone());
            if target == path {
                fd_hit = Some((PathBuf::from(format!("/proc/{pid}/fd/{n}")), deleted));
                break;
            }
        }
        return Some(script_run(path, fd_hit));
    }
    let fd255 = PathBuf::from(format!("/proc/{pid}/fd/255"));
    let candidates = std::iter::once(fd255).chain(
        fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path()),
    );
    for fd in candidates {
        let Ok(target) = fs::read_link(&fd) else {
            continue;
        };
        let (target, deleted) = strip_deleted(target);
        if target == path {
            fd_hit = Some((fd, deleted));
            break;
        }
    }
    Some(script_run(path, fd_hit))
}

/// The script's path an interpreter process runs, made absolute with its
/// working folder; `None` when it runs no script.
fn script_path(pid: u32, exe: &std::path::Path, cmdline: &[String]) -> Option<PathBuf> {
    let kind = super::script::interpreter_of(&exe.file_name()?.to_string_lossy())?;
    let arg = super::script::script_arg(kind, cmdline)?;
    let path = if arg.starts_with('/') {
        PathBuf::from(&arg)
    } else {
        fs::read_link(format!("/proc/{pid}/cwd")).ok()?.join(&arg)
    };
    Some(normalize(&path))
}

/// [`script_with`] for a process whose script `prev` was found at an
/// earlier sample: only the descriptor it was read through then is looked
/// at again (none when it had none), instead of every descriptor the
/// process holds (a server's thousands of sockets). Anything else — a
/// new script path, the descriptor closed or moved, this sample read the
/// descriptors anyway — takes the full look.
pub fn script_again(
    pid: u32,
    exe: &std::path::Path,
    cmdline: &[String],
    fds: &FdTables,
    prev: &crate::model::ScriptRun,
) -> Option<crate::model::ScriptRun> {
    if fds.get(pid).is_some() {
        return script_with(pid, exe, cmdline, fds);
    }
    let path = script_path(pid, exe, cmdline)?;
    if path == prev.path {
        if prev.read_from == path {
            return Some(script_run(path, None));
        }
        let fd_dir = PathBuf::from(format!("/proc/{pid}/fd"));
        if prev.read_from.parent() == Some(fd_dir.as_path())
            && let Ok(target) = fs::read_link(&prev.read_from)
        {
            let (target, deleted) = strip_deleted(target);
            if target == path {
                return Some(script_run(path, Some((prev.read_from.clone(), deleted))));
            }
        }
    }
    script_with(pid, exe, cmdline, fds)
}

/// The script run at `path`, read through the descriptor `fd_hit` when the
/// interpreter holds one open.
fn script_run(path: PathBuf, fd_hit: Option<(PathBuf, bool)>) -> crate::model::ScriptRun {
    let (read_from, deleted) = match fd_hit {
        Some((fd, marked)) => {
            // Gone, or the path now leads to another file than the one read.
            let deleted = marked || stamp_of(&fd) != stamp_of(&path);
            (fd, deleted)
        }
        None => (path.clone(), !path.exists()),
    };
    let stamp = stamp_of(&read_from);
    crate::model::ScriptRun {
        path,
        read_from,
        deleted,
        stamp,
    }
}

/// `a/./b/../c` → `a/c`, without touching the disk (the script's own path,
/// not where its links lead).
fn normalize(p: &std::path::Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Files only Tor keeps in its data directory.
const TOR_DATA_FILES: [&str; 4] = [
    "cached-consensus",
    "cached-microdesc-consensus",
    "cached-certs",
    "cached-microdescs",
];

fn is_tor_data_dir(dir: &std::path::Path) -> bool {
    TOR_DATA_FILES.iter().any(|f| dir.join(f).is_file())
}

/// True when the process works in Tor's data directory or holds one of its
/// files (`lock` beside `cached-certs`, …) open: Tor under any name.
/// `walk`: read the descriptors when this sample has not read them yet
/// (otherwise only the working folder and what was read are looked at).
pub fn tor_data_of(pid: u32, fds: &FdTables, walk: bool) -> bool {
    if fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|d| is_tor_data_dir(&d)) {
        return true;
    }
    if let Some(links) = fds.get(pid) {
        return links.iter().any(|(_, t)| is_tor_file(t));
    }
    if !walk {
        return false;
    }
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| fs::read_link(fd.path()).is_ok_and(|t| is_tor_file(&t)))
}

/// True for a descriptor's target that is one of Tor's data files.
fn is_tor_file(target: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let bytes = target.as_os_str().as_bytes();
    if bytes.starts_with(b"socket:[") || bytes.starts_with(b"pipe:[") {
        return false;
    }
    let target = std::path::Path::new(std::ffi::OsStr::from_bytes(
        bytes.strip_suffix(b" (deleted)").unwrap_or(bytes),
    ));
    let Some(name) = target.file_name().map(|n| n.to_string_lossy()) else {
        return false;
    };
    if TOR_DATA_FILES.contains(&name.as_ref()) {
        return true;
    }
    name == "lock" && target.parent().is_some_and(is_tor_data_dir)
}

/// Inodes of raw (IPv4, IPv6) and packet sockets from `/proc/net`.
pub fn special_socket_inodes() -> Vec<(&'static str, u64)> {
    let mut out = Vec::new();
    // Column of the inode in each table.
    for (family, file, col) in [
        ("raw", "/proc/net/raw", 9),
        ("raw6", "/proc/net/raw6", 9),
        ("packet", "/proc/net/packet", 8),
    ] {
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        out.extend(parse_special(&text, col).into_iter().map(|i| (family, i)));
    }
    out
}

fn parse_special(text: &str, col: usize) -> Vec<u64> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(col)?.parse::<u64>().ok())
        .filter(|i| *i != 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_packet_tables_are_parsed() {
        let raw = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                   1: 00000000:0001 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 123456 2 0000000000000000 0\n";
        assert_eq!(parse_special(raw, 9), vec![123456]);
        let packet = "sk               RefCnt Type Proto  Iface R Rmem   User   Inode\n\
                      0000000000000000 3      3    0003   2     1 0      0      98765\n";
        assert_eq!(parse_special(packet, 8), vec![98765]);
    }

    #[test]
    fn own_standard_streams_and_a_script_run() {
        let me = std::process::id();
        // The test harness's streams are files or pipes, not sockets.
        assert!(
            std_sockets(me, &FdTables::default())
                .iter()
                .all(|i| *i != 0)
        );
        assert_eq!(
            normalize(std::path::Path::new("/tmp/a/./b/../c.sh")),
            PathBuf::from("/tmp/a/c.sh")
        );
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s.sh");
        fs::write(&script, "sleep 5\n").unwrap();
        let mut child = std::process::Command::new("/bin/sh")
            .arg(&script)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let pid = child.id();
        let (exe, _) = exe_of(pid);
        let run = script_of(pid, &exe.unwrap(), &cmdline_of(pid).unwrap());
        let known = run.clone().expect("a script run");
        // Looked at again only where it was read from: the same answer.
        let (exe0, cmd0) = (exe_of(pid).0.unwrap(), cmdline_of(pid).unwrap());
        let none = FdTables::default();
        assert_eq!(script_again(pid, &exe0, &cmd0, &none, &known), run);
        fs::remove_file(&script).unwrap();
        let gone = script_of(pid, &exe_of(pid).0.unwrap(), &cmdline_of(pid).unwrap());
        assert_eq!(script_again(pid, &exe0, &cmd0, &none, &known), gone);
        // Read through one sample's descriptor table: the same answers.
        let mut fds = FdTables::default();
        assert!(fds.read(pid).is_some());
        let exe = exe_of(pid).0.unwrap();
        let cmd = cmdline_of(pid).unwrap();
        let (alone, shared) = (
            script_of(pid, &exe, &cmd),
            script_with(pid, &exe, &cmd, &fds),
        );
        assert_eq!(alone, shared);
        assert!(shared.is_some_and(|s| s.deleted));
        assert_eq!(
            std_sockets(pid, &fds),
            std_sockets(pid, &FdTables::default())
        );
        assert!(!tor_data_of(pid, &fds, true));
        let _ = child.kill();
        let _ = child.wait();
        let run = run.expect("sh running a script is a script run");
        assert_eq!(run.path, script);
        assert!(!run.deleted);
        assert!(gone.expect("still a script").deleted, "deleted script seen");
    }
}

/// `btime` of /proc/stat: boot time in seconds since the epoch.
pub fn boot_time() -> Option<u64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

// ---- Sockets netstat2 does not list: raw, ICMP, packet and SCTP sockets,
// and every socket of other network namespaces ----

use crate::model::{Protocol, SockState};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `/proc/net/{tcp,udp,raw,icmp}` address: `0100007F:1F90` (IPv4) or 32
/// hex digits (IPv6), each 32-bit word in host (little-endian) order.
fn parse_proc_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(ip, 16).ok()?.to_le_bytes(),
        )),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                let w = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
                b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// One table in the `/proc/net/tcp` format (tcp, udp, raw, icmp and their
/// IPv6 twins).
fn parse_inet_table(text: &str, protocol: Protocol) -> Vec<RawSocket> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let (Some(local), Some(remote)) = (parse_proc_addr(f[1]), parse_proc_addr(f[2])) else {
            continue;
        };
        let remote = (!(remote.ip().is_unspecified() && remote.port() == 0)).then_some(remote);
        let state = match protocol {
            Protocol::Tcp => SockState::from_linux_tcp(u8::from_str_radix(f[3], 16).unwrap_or(0)),
            _ if remote.is_some() => SockState::Established,
            _ => SockState::Unconn,
        };
        out.push(RawSocket {
            protocol,
            local,
            remote,
            state,
            pids: Vec::new(),
            uid: f[7].parse().ok(),
            inode: f[9].parse().unwrap_or(0),
            bytes_sent: None,
            bytes_received: None,
            opened: None,
        });
    }
    out
}

/// `/proc/net/packet`: `sk RefCnt Type Proto Iface R Rmem User Inode`.
/// A packet socket has no address: local is `0.0.0.0:<Ethernet protocol>`.
fn parse_packet_table(text: &str) -> Vec<RawSocket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 9 {
                return None;
            }
            let proto = u16::from_str_radix(f[3], 16).ok()?;
            Some(RawSocket {
                protocol: Protocol::Packet,
                local: SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), proto),
                remote: None,
                state: SockState::Unconn,
                pids: Vec::new(),
                uid: f[7].parse().ok(),
                inode: f[8].parse().unwrap_or(0),
                bytes_sent: None,
                bytes_received: None,
                opened: None,
            })
        })
        .collect()
}

/// `/proc/net/sctp/eps`: `ENDPT SOCK STY SST HBKT LPORT UID INODE LADDRS`
/// (present only where the kernel has SCTP).
fn parse_sctp_eps(text: &str) -> Vec<RawSocket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 9 {
                return None;
            }
            let port: u16 = f[5].parse().ok()?;
            let ip: IpAddr = f[8].parse().ok()?;
            Some(RawSocket {
                protocol: Protocol::Sctp,
                local: SocketAddr::new(ip, port),
                remote: None,
                state: SockState::Listen,
                pids: Vec::new(),
                uid: f[6].parse().ok(),
                inode: f[7].parse().unwrap_or(0),
                bytes_sent: None,
                bytes_received: None,
                opened: None,
            })
        })
        .collect()
}

/// The tables of one namespace under `dir` (`/proc/net` or
/// `/proc/PID/net`); `with_tcp_udp` adds TCP and UDP (netstat2 lists
/// those of kizuki's own namespace).
fn namespace_sockets(dir: &str, with_tcp_udp: bool) -> Vec<RawSocket> {
    let mut tables = vec![
        ("raw", Protocol::Raw),
        ("raw6", Protocol::Raw),
        ("icmp", Protocol::Icmp),
        ("icmp6", Protocol::Icmp),
    ];
    if with_tcp_udp {
        tables.extend([
            ("tcp", Protocol::Tcp),
            ("tcp6", Protocol::Tcp),
            ("udp", Protocol::Udp),
            ("udp6", Protocol::Udp),
        ]);
    }
    let mut out = Vec::new();
    for (name, proto) in tables {
        if let Ok(text) = fs::read_to_string(format!("{dir}/{name}")) {
            out.extend(parse_inet_table(&text, proto));
        }
    }
    if let Ok(text) = fs::read_to_string(format!("{dir}/packet")) {
        out.extend(parse_packet_table(&text));
    }
    if let Ok(text) = fs::read_to_string(format!("{dir}/sctp/eps")) {
        out.extend(parse_sctp_eps(&text));
    }
    out
}

/// Sockets netstat2 does not list: raw, ICMP, packet and SCTP sockets of
/// this namespace, and every socket of the other network namespaces (read
/// through one process of each).
pub fn extra_sockets(pids: &[(u32, u64)]) -> Vec<RawSocket> {
    let mut out = namespace_sockets("/proc/net", false);
    let own = fs::read_link("/proc/self/ns/net").ok();
    let mut seen = std::collections::HashSet::new();
    if let Some(own) = &own {
        seen.insert(own.clone());
    }
    for (pid, _) in pids {
        let Ok(ns) = fs::read_link(format!("/proc/{pid}/ns/net")) else {
            continue;
        };
        if seen.insert(ns) {
            out.extend(namespace_sockets(&format!("/proc/{pid}/net"), true));
        }
    }
    out
}

#[cfg(test)]
mod proc_net_tests {
    use super::*;

    #[test]
    fn proc_net_lines_decode() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 0200007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 20 4 30 10 -1\n";
        let s = parse_inet_table(tcp, Protocol::Tcp);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s[0].remote, Some("127.0.0.2:40000".parse().unwrap()));
        assert_eq!(s[0].state, SockState::Established);
        assert_eq!((s[0].uid, s[0].inode), (Some(1000), 4242));
        let raw6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n  58: 00000000000000000000000001000000:003A 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 777 2 0000000000000000 0\n";
        let s = parse_inet_table(raw6, Protocol::Raw);
        assert_eq!(s[0].local, "[::1]:58".parse().unwrap());
        assert_eq!((s[0].remote, s[0].state), (None, SockState::Unconn));
        let packet = "sk               RefCnt Type Proto  Iface R Rmem   User   Inode\n0000000000000000 3      3    0003   1     1 0      0      9911\n";
        let s = parse_packet_table(packet);
        assert_eq!(
            (s[0].protocol, s[0].local.port(), s[0].inode),
            (Protocol::Packet, 3, 9911)
        );
        let sctp = " ENDPT     SOCK   STY SST HBKT LPORT   UID INODE LADDRS\n ffff88 ffff99 2   10  29   9000      0 5555 127.0.0.1\n";
        let s = parse_sctp_eps(sctp);
        assert_eq!(
            (s[0].local, s[0].inode),
            ("127.0.0.1:9000".parse().unwrap(), 5555)
        );
        assert!(parse_inet_table("header\ngarbage line\n", Protocol::Udp).is_empty());
    }
}
