//! Linux specifics: socket owners from `/proc/*/fd`, executable links.

use std::collections::HashMap;
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

    /// Fills `pids` of every socket; returns false when some owned sockets
    /// stayed unattributed because their processes could not be read.
    pub fn attribute(&mut self, pids: &[(u32, u64)], sockets: &mut [RawSocket]) -> bool {
        self.last_scanned = 0;
        let full = self.mode == Attribution::Full
            || self.scanned.is_empty()
            || self.since_full >= FULL_RESCAN_EVERY;
        if full {
            self.map.clear();
            self.scanned.clear();
            self.orphans.clear();
            for (pid, marker) in pids {
                scan_fds(*pid, &mut self.map);
                self.scanned.insert(*pid, *marker);
            }
            self.young = pids.iter().map(|(pid, _)| *pid).collect();
            self.last_scanned = pids.len();
            self.since_full = 0;
        } else {
            self.since_full += 1;
            self.update(pids, sockets);
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

    fn update(&mut self, pids: &[(u32, u64)], sockets: &[RawSocket]) {
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
                scan_fds(*pid, &mut self.map);
                self.last_scanned += 1;
            }
        }
        // New processes: read their descriptors now.
        for (pid, marker) in pids {
            if !self.scanned.contains_key(pid) {
                scan_fds(*pid, &mut self.map);
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
            scan_fds(pid, &mut found);
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
/// process's start time in clock ticks).
pub fn list_pids() -> Vec<(u32, u64)> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .map(|pid| (pid, start_marker(pid)))
        .collect()
}

/// Field 22 of /proc/PID/stat (start time); 0 when unreadable.
fn start_marker(pid: u32) -> u64 {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The name in parentheses may contain spaces; fields follow the last ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn uid_of(pid: u32) -> Option<u32> {
    fs::metadata(format!("/proc/{pid}")).ok().map(|m| m.uid())
}

/// Adds every socket inode that `pid` holds; a process that vanished or
/// cannot be read is skipped silently (that is normal).
fn scan_fds(pid: u32, map: &mut HashMap<u64, Vec<u32>>) {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return;
    };
    for fd in fds.flatten() {
        let Ok(target) = fs::read_link(fd.path()) else {
            continue;
        };
        use std::os::unix::ffi::OsStrExt;
        let b = target.as_os_str().as_bytes();
        let Some(rest) = b.strip_prefix(b"socket:[") else {
            continue;
        };
        let Some(num) = rest.strip_suffix(b"]") else {
            continue;
        };
        let Some(inode) = std::str::from_utf8(num).ok().and_then(|s| s.parse().ok()) else {
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

/// `btime` of /proc/stat: boot time in seconds since the epoch.
pub fn boot_time() -> Option<u64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}
