//! Catching every start of a blocked program before its first
//! instruction: fanotify `FAN_OPEN_EXEC_PERM` holds the `execve` until the
//! guard answers; the guard moves the PID into the program's cgroup, THEN
//! answers `FAN_ALLOW` (on any error moving it: `FAN_DENY`, fail closed).
//!
//! Two marks per blocked program: on its file's inode (every exec of that
//! file, under any name or hard link) and on its folder with
//! `FAN_EVENT_ON_CHILD` (every exec of a file in that folder, so a file
//! replaced or recreated at the blocked path is caught by path from its
//! very first start, with no window). A sweeper re-stats each blocked path
//! every second and marks a new inode, and moves any process running a
//! blocked program that is still outside its cgroup (the safety net, and
//! the whole mechanism when fanotify is unavailable: `ExecCatch::Polling`).
//!
//! The exec thread never takes the guard's main lock (the guard runs `nft`
//! while holding it, and `nft`'s own exec may pass through this thread).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::AT_FDCWD;
use nix::sys::fanotify::{
    EventFFlags, Fanotify, FanotifyResponse, InitFlags, MarkFlags, MaskFlags, Response,
};

use super::check::{Ident, ident};
use super::procs;
use super::state::{MAX_ORIGINS, Origin, Origins};
use crate::firewall::cgroup::CgroupLayout;
use crate::guard::api::ExecCatch;

/// What the exec thread matches against.
#[derive(Debug, Default)]
struct Targets {
    by_ident: HashMap<Ident, String>,
    by_path: HashMap<PathBuf, String>,
}

impl Targets {
    fn id_for(&self, i: Option<Ident>, path: Option<&Path>) -> Option<String> {
        i.and_then(|i| self.by_ident.get(&i))
            .or_else(|| path.and_then(|p| self.by_path.get(p)))
            .cloned()
    }
}

/// Where moved processes came from; `dirty` until written to disk.
#[derive(Debug, Default)]
pub struct Book {
    pub origins: Origins,
    pub dirty: bool,
}

#[derive(Debug, Default)]
struct Armed {
    /// Folders marked, with the ids that need each.
    dirs: HashMap<PathBuf, BTreeSet<String>>,
    inodes: HashSet<Ident>,
    /// Ids whose folder mark and inode mark are both in place.
    ids: HashSet<String>,
}

pub struct Catcher {
    fan: Option<Fanotify>,
    init_error: Option<String>,
    layout: Option<CgroupLayout>,
    targets: RwLock<Targets>,
    armed: Mutex<Armed>,
    pub book: Mutex<Book>,
    /// Longest time from reading an exec event to answering it (µs).
    pub worst_us: AtomicU64,
    pub caught: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Catcher {
    /// Starts catching (the exec thread, when fanotify is available).
    pub fn start(layout: Option<CgroupLayout>, origins: Origins) -> Arc<Catcher> {
        let fan = if std::env::var_os("KIZUKI_GUARD_NO_FANOTIFY").is_some_and(|v| v == "1") {
            Err(Errno::ENOSYS)
        } else {
            Fanotify::init(
                InitFlags::FAN_CLASS_CONTENT | InitFlags::FAN_CLOEXEC,
                EventFFlags::O_RDONLY | EventFFlags::O_LARGEFILE | EventFFlags::O_CLOEXEC,
            )
        };
        let (fan, init_error) = match fan {
            Ok(f) => (Some(f), None),
            Err(e) => (
                None,
                Some(format!("fanotify unavailable ({e}): polling /proc")),
            ),
        };
        let c = Arc::new(Catcher {
            fan,
            init_error,
            layout,
            targets: RwLock::new(Targets::default()),
            armed: Mutex::new(Armed::default()),
            book: Mutex::new(Book {
                origins,
                dirty: false,
            }),
            worst_us: AtomicU64::new(0),
            caught: AtomicU64::new(0),
        });
        if c.fan.is_some() {
            let me = c.clone();
            let spawned = std::thread::Builder::new()
                .name("guard-exec".into())
                .spawn(move || me.exec_loop());
            if let Err(e) = spawned {
                eprintln!("kizuki guard: exec thread: {e}");
            }
        }
        c
    }

    pub fn mode(&self) -> ExecCatch {
        if self.fan.is_some() {
            ExecCatch::Fanotify
        } else {
            ExecCatch::Polling
        }
    }

    pub fn init_error(&self) -> Option<&str> {
        self.init_error.as_deref()
    }

    /// Whether new starts of `id` are caught now.
    pub fn armed(&self, id: &str) -> bool {
        self.fan.is_none() || lock(&self.armed).ids.contains(id)
    }

    /// The blocked programs, `(id, path)`: what to catch from now on.
    /// Returns problems (marks that could not be placed).
    pub fn set_targets(&self, blocks: &[(String, PathBuf)]) -> Vec<String> {
        {
            let mut t = self.targets.write().unwrap_or_else(|e| e.into_inner());
            let keep: HashSet<&str> = blocks.iter().map(|(id, _)| id.as_str()).collect();
            // Inodes of earlier files at a still-blocked path stay targets:
            // a process may still run the replaced file.
            t.by_ident.retain(|_, id| keep.contains(id.as_str()));
            t.by_path.clear();
            for (id, exe) in blocks {
                t.by_path.insert(exe.clone(), id.clone());
                if let Some(i) = ident(exe) {
                    t.by_ident.insert(i, id.clone());
                }
            }
        }
        self.arm(blocks)
    }

    fn mark(&self, flags: MarkFlags, mask: MaskFlags, path: &Path) -> Result<(), String> {
        let Some(fan) = &self.fan else {
            return Ok(());
        };
        fan.mark(flags, mask, AT_FDCWD, Some(path))
            .map_err(|e| format!("fanotify mark {}: {e}", path.display()))
    }

    fn arm(&self, blocks: &[(String, PathBuf)]) -> Vec<String> {
        let mut problems = Vec::new();
        if self.fan.is_none() {
            return problems;
        }
        let mut a = lock(&self.armed);
        let mut wanted: HashMap<PathBuf, BTreeSet<String>> = HashMap::new();
        let mut ok_ids = HashSet::new();
        for (id, exe) in blocks {
            let Some(dir) = exe.parent() else { continue };
            wanted
                .entry(dir.to_path_buf())
                .or_default()
                .insert(id.clone());
            let mut ok = true;
            if !a.dirs.contains_key(dir)
                && let Err(e) = self.mark(
                    MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_ONLYDIR,
                    MaskFlags::FAN_OPEN_EXEC_PERM | MaskFlags::FAN_EVENT_ON_CHILD,
                    dir,
                )
            {
                problems.push(e);
                ok = false;
            }
            if ok {
                a.dirs
                    .entry(dir.to_path_buf())
                    .or_default()
                    .insert(id.clone());
            }
            match ident(exe) {
                Some(i) if a.inodes.contains(&i) => {}
                Some(i) => match self.mark(
                    MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_DONT_FOLLOW,
                    MaskFlags::FAN_OPEN_EXEC_PERM,
                    exe,
                ) {
                    Ok(()) => {
                        a.inodes.insert(i);
                    }
                    Err(e) => {
                        problems.push(e);
                        ok = false;
                    }
                },
                // No file at the path now: the folder mark catches one
                // that appears.
                None => {}
            }
            if ok {
                ok_ids.insert(id.clone());
            }
        }
        // Folders no blocked program lives in any more.
        let stale: Vec<PathBuf> = a
            .dirs
            .keys()
            .filter(|d| !wanted.contains_key(*d))
            .cloned()
            .collect();
        for d in stale {
            // Gone with its folder, or already removed: both fine.
            let _ = self.mark(
                MarkFlags::FAN_MARK_REMOVE | MarkFlags::FAN_MARK_ONLYDIR,
                MaskFlags::FAN_OPEN_EXEC_PERM | MaskFlags::FAN_EVENT_ON_CHILD,
                &d,
            );
            a.dirs.remove(&d);
        }
        a.ids = ok_ids;
        problems
    }

    /// Re-stats the blocked paths: a new file there gets its own inode
    /// mark and becomes a target.
    pub fn rearm(&self) {
        let blocks: Vec<(String, PathBuf)> = {
            let t = self.targets.read().unwrap_or_else(|e| e.into_inner());
            t.by_path
                .iter()
                .map(|(p, id)| (id.clone(), p.clone()))
                .collect()
        };
        let changed = {
            let t = self.targets.read().unwrap_or_else(|e| e.into_inner());
            blocks
                .iter()
                .any(|(_, p)| ident(p).is_some_and(|i| !t.by_ident.contains_key(&i)))
        };
        if changed {
            {
                let mut t = self.targets.write().unwrap_or_else(|e| e.into_inner());
                for (id, p) in &blocks {
                    if let Some(i) = ident(p) {
                        t.by_ident.insert(i, id.clone());
                    }
                }
            }
            for p in self.arm(&blocks) {
                eprintln!("kizuki guard: {p}");
            }
        }
    }

    /// The blocked program a running process runs, if any.
    pub fn program_of(&self, pid: u32) -> Option<String> {
        let t = self.targets.read().unwrap_or_else(|e| e.into_inner());
        if t.by_path.is_empty() {
            return None;
        }
        t.id_for(procs::exe_ident(pid), procs::exe_path(pid).as_deref())
    }

    /// Every process running a blocked program now, `(pid, id)`, except
    /// those the guard never touches.
    pub fn running(&self) -> Vec<(u32, String)> {
        procs::all_pids()
            .into_iter()
            .filter_map(|pid| self.program_of(pid).map(|id| (pid, id)))
            .filter(|(pid, _)| !procs::untouchable(*pid))
            .collect()
    }

    /// The cgroup path (relative to the mount) of a program.
    fn cgroup_path(&self, layout: &CgroupLayout, id: &str) -> String {
        format!("/{}/{id}", layout.parent)
    }

    /// Moves `pid` into program `id`'s cgroup, recording where it came
    /// from. `Ok(false)`: it had exited. Never moves init, kernel threads or
    /// the guard.
    pub fn move_into(&self, id: &str, pid: u32) -> io::Result<bool> {
        let layout = self
            .layout
            .as_ref()
            .ok_or_else(|| io::Error::other("no cgroup v2 mount"))?;
        if procs::untouchable(pid) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("pid {pid} is never moved"),
            ));
        }
        let target = self.cgroup_path(layout, id);
        let (Some(start_time), Some(from)) = (procs::start_time(pid), procs::cgroup_of(pid)) else {
            return Ok(false);
        };
        if from == target {
            return Ok(true);
        }
        if !layout.move_pid(id, pid)? {
            return Ok(false);
        }
        let mut book = lock(&self.book);
        let known = book
            .origins
            .get(&pid)
            .is_some_and(|o| o.start_time == start_time);
        let ours = from.starts_with(&format!("/{}/", layout.parent));
        if !known && !ours && book.origins.len() < MAX_ORIGINS {
            book.origins.insert(
                pid,
                Origin {
                    id: id.to_string(),
                    start_time,
                    cgroup: from,
                },
            );
            book.dirty = true;
        } else if let Some(o) = book.origins.get_mut(&pid) {
            o.id = id.to_string();
            book.dirty = true;
        }
        Ok(true)
    }

    /// Sends `pid` back to the cgroup it came from (the v2 root when that is
    /// unknown or gone).
    pub fn send_back(&self, pid: u32) -> io::Result<()> {
        let layout = self
            .layout
            .as_ref()
            .ok_or_else(|| io::Error::other("no cgroup v2 mount"))?;
        let origin = {
            let mut book = lock(&self.book);
            book.dirty = true;
            book.origins.remove(&pid)
        };
        let now = procs::start_time(pid);
        let dest = origin
            .filter(|o| Some(o.start_time) == now)
            .and_then(|o| origin_dir(layout, &o.cgroup));
        if let Some(d) = dest
            && write_pid(&d.join("cgroup.procs"), pid).is_ok()
        {
            return Ok(());
        }
        write_pid(&layout.mount.join("cgroup.procs"), pid)
    }

    /// Forgets origins of processes that have ended.
    pub fn prune_origins(&self) {
        let pids: Vec<(u32, u64)> = lock(&self.book)
            .origins
            .iter()
            .map(|(p, o)| (*p, o.start_time))
            .collect();
        let gone: Vec<u32> = pids
            .into_iter()
            .filter(|(p, t)| procs::start_time(*p) != Some(*t))
            .map(|(p, _)| p)
            .collect();
        if gone.is_empty() {
            return;
        }
        let mut book = lock(&self.book);
        for p in gone {
            book.origins.remove(&p);
        }
        book.dirty = true;
    }

    /// Moves every process running a blocked program that is still outside
    /// its cgroup. Returns problems.
    pub fn sweep(&self) -> Vec<String> {
        let Some(layout) = &self.layout else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        for (pid, id) in self.running() {
            if procs::cgroup_of(pid).as_deref() == Some(self.cgroup_path(layout, &id).as_str()) {
                continue;
            }
            if let Err(e) = self.move_into(&id, pid) {
                problems.push(format!("moving pid {pid}: {e}"));
            }
        }
        problems
    }

    fn exec_loop(&self) {
        let Some(fan) = &self.fan else { return };
        loop {
            let events = match fan.read_events() {
                Ok(e) => e,
                Err(Errno::EINTR | Errno::EAGAIN) => continue,
                Err(e) => {
                    eprintln!("kizuki guard: reading exec events: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            for ev in events {
                if !ev.mask().contains(MaskFlags::FAN_OPEN_EXEC_PERM) {
                    continue;
                }
                let Some(fd) = ev.fd() else { continue };
                let started = Instant::now();
                let (verdict, verdict_for) = self.decide(fd, ev.pid());
                let allow = if verdict {
                    Response::FAN_ALLOW
                } else {
                    Response::FAN_DENY
                };
                if let Err(e) = fan.write_response(FanotifyResponse::new(fd, allow)) {
                    eprintln!("kizuki guard: answering an exec event: {e}");
                }
                let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                self.worst_us.fetch_max(us, Ordering::Relaxed);
                if let Some((pid, id)) = verdict_for {
                    eprintln!(
                        "kizuki guard: caught the start of blocked program {id} (pid {pid}): in its cgroup before its first instruction; answered in {us} µs"
                    );
                }
            }
        }
    }

    /// Allow (true) or deny one exec: a blocked program's process is
    /// moved first; if that fails, the exec is denied. With the PID and
    /// program when it was a blocked program's.
    fn decide(&self, fd: std::os::fd::BorrowedFd<'_>, pid: i32) -> (bool, Option<(i32, String)>) {
        use std::os::fd::AsRawFd;
        let link = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        let id = {
            let t = self.targets.read().unwrap_or_else(|e| e.into_inner());
            if t.by_path.is_empty() && t.by_ident.is_empty() {
                return (true, None);
            }
            t.id_for(ident(&link), std::fs::read_link(&link).ok().as_deref())
        };
        let Some(id) = id else { return (true, None) };
        let who = Some((pid, id.clone()));
        let Ok(upid) = u32::try_from(pid) else {
            return (false, who);
        };
        match self.move_into(&id, upid) {
            Ok(true) => {
                self.caught.fetch_add(1, Ordering::Relaxed);
                (true, who)
            }
            Ok(false) => (false, who),
            Err(e) => {
                eprintln!("kizuki guard: exec of a blocked program denied: pid {pid}: {e}");
                (false, who)
            }
        }
    }
}

/// The folder of an origin cgroup, if it is one the guard may write to: a
/// plain path below the mount.
fn origin_dir(layout: &CgroupLayout, cgroup: &str) -> Option<PathBuf> {
    let rel = cgroup.strip_prefix('/')?;
    if rel.is_empty() {
        return Some(layout.mount.clone());
    }
    if rel
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\0'))
        || rel.starts_with(&format!("{}/", layout.parent))
    {
        return None;
    }
    let d = layout.mount.join(rel);
    d.is_dir().then_some(d)
}

fn write_pid(procs: &Path, pid: u32) -> io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).open(procs)?;
    match f.write_all(format!("{pid}\n").as_bytes()) {
        // The process exited meanwhile.
        Err(e) if e.raw_os_error() == Some(nix::libc::ESRCH) => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_outside_the_mount_or_inside_kizuki_are_not_used() {
        let layout = CgroupLayout::for_mount(Path::new("/sys/fs/cgroup"))
            .unwrap()
            .with_parent("kizuki-x")
            .unwrap();
        assert_eq!(
            origin_dir(&layout, "/"),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        for bad in ["/../../etc", "/a/../..", "relative", "/kizuki-x/abc", "//x"] {
            assert_eq!(origin_dir(&layout, bad), None, "{bad}");
        }
    }
}
