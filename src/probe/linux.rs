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

/// Finds which processes hold which socket inodes.
#[derive(Debug, Default)]
pub struct SocketOwners {
    map: HashMap<u64, Vec<u32>>,
}

impl SocketOwners {
    /// Fills `pids` of every socket; returns false when some owned sockets
    /// stayed unattributed because their processes could not be read.
    pub fn attribute(&mut self, sockets: &mut [RawSocket]) -> bool {
        self.rescan();
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

    fn rescan(&mut self) {
        self.map.clear();
        let Ok(dir) = fs::read_dir("/proc") else {
            return;
        };
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            scan_fds(pid, &mut self.map);
        }
    }
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
