//! The cgroup v2 side of blocking on Linux: one cgroup per blocked program
//! under `kizuki-blocked`, which an nftables `socket cgroupv2` rule drops.
//! Where cgroup v2 is mounted is read from `/proc/self/mountinfo` at run
//! time (`/sys/fs/cgroup/unified` on hybrid systems, `/sys/fs/cgroup` on a
//! pure v2 desktop).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::plan::PlanError;

/// kizuki's parent cgroup, directly under the v2 root.
pub const PARENT: &str = "kizuki-blocked";
/// Environment variable naming another parent cgroup (tests give each run
/// its own, since cgroups are machine-wide, not per network namespace).
pub const PARENT_ENV: &str = "KIZUKI_CGROUP_PARENT";
/// nft resolves cgroup paths relative to this folder.
const NFT_BASE: &str = "/sys/fs/cgroup";
/// Depth of a program's cgroup below the v2 root (`kizuki-blocked/<id>`).
pub const LEVEL: u32 = 2;

/// Turns mountinfo's octal escapes (`\040` for a space) back into bytes.
fn unescape(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
        {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// The mount point of the cgroup v2 hierarchy in a mountinfo text.
pub fn find_v2_mount(mountinfo: &str) -> Option<PathBuf> {
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if right.split_whitespace().next() != Some("cgroup2") {
            continue;
        }
        let mount = left.split_whitespace().nth(4)?;
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            return Some(PathBuf::from(std::ffi::OsString::from_vec(unescape(mount))));
        }
        #[cfg(not(unix))]
        return Some(PathBuf::from(
            String::from_utf8_lossy(&unescape(mount)).into_owned(),
        ));
    }
    None
}

/// Where kizuki's cgroups live and how nft names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLayout {
    /// The cgroup v2 mount point.
    pub mount: PathBuf,
    /// The mount relative to `/sys/fs/cgroup` (`unified`, or empty).
    pub nft_prefix: String,
    /// kizuki's parent cgroup directly under the mount ([`PARENT`] unless
    /// [`PARENT_ENV`] or [`CgroupLayout::with_parent`] names another).
    pub parent: String,
}

/// The parent named by [`PARENT_ENV`] when it is one safe name, else
/// [`PARENT`].
pub fn parent_from_env() -> String {
    std::env::var(PARENT_ENV)
        .ok()
        .filter(|p| safe_component(p))
        .unwrap_or_else(|| PARENT.to_string())
}

fn safe_component(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl CgroupLayout {
    /// A layout for a v2 mount; refused when nft could not name it safely
    /// (outside `/sys/fs/cgroup`, or characters that do not belong in a
    /// quoted rule string).
    pub fn for_mount(mount: &Path) -> Result<CgroupLayout, PlanError> {
        let bad = || PlanError::BadCgroup(crate::escape::os_lossless(mount.as_os_str()));
        let rel = mount.strip_prefix(NFT_BASE).map_err(|_| bad())?;
        let rel = rel.to_str().ok_or_else(bad)?;
        if !rel.is_empty() && !rel.split('/').all(safe_component) {
            return Err(bad());
        }
        Ok(CgroupLayout {
            mount: mount.to_path_buf(),
            nft_prefix: rel.to_string(),
            parent: parent_from_env(),
        })
    }

    /// The same mount with another parent cgroup; refused unless the name
    /// is one safe path component.
    pub fn with_parent(mut self, parent: &str) -> Result<CgroupLayout, PlanError> {
        if !safe_component(parent) {
            return Err(PlanError::BadCgroup(crate::escape::for_display(parent)));
        }
        self.parent = parent.to_string();
        Ok(self)
    }

    /// This machine's layout.
    pub fn detect() -> Option<CgroupLayout> {
        let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
        Self::for_mount(&find_v2_mount(&info)?).ok()
    }

    pub fn parent_dir(&self) -> PathBuf {
        self.mount.join(&self.parent)
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.parent_dir().join(id)
    }

    /// The quoted path of a program's cgroup in an nft rule.
    pub fn nft_path(&self, id: &str) -> Result<String, PlanError> {
        if !safe_component(id) {
            return Err(PlanError::BadCgroup(crate::escape::for_display(id)));
        }
        let parent = &self.parent;
        Ok(if self.nft_prefix.is_empty() {
            format!("{parent}/{id}")
        } else {
            format!("{}/{parent}/{id}", self.nft_prefix)
        })
    }

    /// Creates the program's cgroup (nft needs it to exist for the rule).
    pub fn ensure(&self, id: &str) -> io::Result<()> {
        fs::create_dir_all(self.dir(id))
    }

    /// Program cgroups that exist now.
    pub fn existing(&self) -> Vec<String> {
        let Ok(rd) = fs::read_dir(self.parent_dir()) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = rd
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| safe_component(n))
            .collect();
        ids.sort();
        ids
    }

    /// Moves `pid` into the program's cgroup. `Ok(false)`: it had exited.
    pub fn move_pid(&self, id: &str, pid: u32) -> io::Result<bool> {
        write_pid(&self.dir(id).join("cgroup.procs"), pid)
    }

    /// Processes in a program's cgroup.
    pub fn pids(&self, id: &str) -> Vec<u32> {
        fs::read_to_string(self.dir(id).join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Removes a program's cgroup. With `evacuate`, its processes are moved
    /// back to the v2 root first; without, a cgroup still in use stays
    /// (harmless once no rule refers to it) and `Ok(false)` says so.
    pub fn remove(&self, id: &str, evacuate: bool) -> io::Result<bool> {
        let dir = self.dir(id);
        if !dir.exists() {
            return Ok(true);
        }
        if evacuate {
            for pid in self.pids(id) {
                write_pid(&self.mount.join("cgroup.procs"), pid)?;
            }
        }
        match fs::remove_dir(&dir) {
            Ok(()) => Ok(true),
            // EBUSY: still has processes.
            Err(e) if !evacuate && e.raw_os_error() == Some(16) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes the parent when nothing is left in it.
    pub fn remove_parent_if_empty(&self) {
        if self.existing().is_empty() {
            // Still in use or already gone: both fine.
            let _ = fs::remove_dir(self.parent_dir());
        }
    }
}

fn write_pid(procs: &Path, pid: u32) -> io::Result<bool> {
    let mut f = fs::OpenOptions::new().write(true).open(procs)?;
    match f.write_all(format!("{pid}\n").as_bytes()) {
        Ok(()) => Ok(true),
        // ESRCH: the process exited meanwhile.
        Err(e) if e.raw_os_error() == Some(3) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const PURE: &str =
        "30 25 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";

    #[test]
    fn finds_v2_on_hybrid_and_pure_layouts() {
        let m = find_v2_mount(HYBRID).unwrap();
        assert_eq!(m, PathBuf::from("/sys/fs/cgroup/unified"));
        let l = CgroupLayout::for_mount(&m).unwrap();
        assert_eq!(
            l.nft_path("0123456789abcdef").unwrap(),
            "unified/kizuki-blocked/0123456789abcdef"
        );
        let p = CgroupLayout::for_mount(&find_v2_mount(PURE).unwrap()).unwrap();
        assert_eq!(p.nft_path("ab").unwrap(), "kizuki-blocked/ab");
        assert_eq!(find_v2_mount("1 2 0:1 / / rw - ext4 /dev/sda rw\n"), None);
    }

    #[test]
    fn hostile_mount_points_are_refused() {
        let escaped = "41 31 0:38 / /sys/fs/cgroup/un\\040\"x rw - cgroup2 cgroup2 rw\n";
        let m = find_v2_mount(escaped).unwrap();
        assert_eq!(m, PathBuf::from("/sys/fs/cgroup/un \"x"));
        assert!(CgroupLayout::for_mount(&m).is_err());
        for bad in ["/mnt/cg2", "/sys/fs/cgroup/a;b", "/sys/fs/cgroup/../x"] {
            assert!(CgroupLayout::for_mount(Path::new(bad)).is_err(), "{bad}");
        }
        let l = CgroupLayout::for_mount(Path::new("/sys/fs/cgroup")).unwrap();
        assert!(l.nft_path("a\"b").is_err());
        assert!(l.nft_path("..").is_err());
    }
}
