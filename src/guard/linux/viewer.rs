//! Who may see what of the live view: root and the members of the admin
//! groups see every process; anyone else sees of other users only what
//! `/proc` shows them (see `guard::live::restrict`).

use nix::unistd::{Gid, Group, Uid, User};

use crate::guard::live::Viewer;

/// The groups whose members administer the machine (Debian/Ubuntu's
/// `sudo`, Fedora/Arch's `wheel`). `adm` only reads logs: not one of them.
pub const ADMIN_GROUPS: &[&str] = &["sudo", "wheel"];

/// The viewer with credentials `uid`/`gid` (from `SO_PEERCRED`).
pub fn of(uid: u32, gid: u32) -> Viewer {
    Viewer {
        uid,
        admin: uid == 0 || in_admin_group(uid, gid),
        hide_others: proc_hides_others(),
    }
}

fn in_admin_group(uid: u32, gid: u32) -> bool {
    let Ok(Some(user)) = User::from_uid(Uid::from_raw(uid)) else {
        return false;
    };
    ADMIN_GROUPS
        .iter()
        .any(|name| match Group::from_name(name) {
            Ok(Some(g)) => g.gid == Gid::from_raw(gid) || g.mem.contains(&user.name),
            _ => false,
        })
}

/// `/proc` is mounted with `hidepid` (other users' processes invisible).
fn proc_hides_others() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| hidepid_in(&t))
        .unwrap_or(false)
}

fn hidepid_in(mountinfo: &str) -> bool {
    mountinfo.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(4) == Some(&"/proc")
            && l.split([' ', ',']).any(|o| {
                o.strip_prefix("hidepid=")
                    .is_some_and(|v| !matches!(v, "0" | "off"))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidepid_is_read_from_mountinfo() {
        let plain = "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n";
        assert!(!hidepid_in(plain));
        let hidden = "22 1 0:21 / /proc rw,nosuid - proc proc rw,hidepid=invisible\n";
        assert!(hidepid_in(hidden));
        assert!(!hidepid_in(
            "22 1 0:21 / /proc rw - proc proc rw,hidepid=0\n"
        ));
        assert!(!hidepid_in(
            "30 1 0:5 / /mnt/proc rw - proc proc rw,hidepid=2\n"
        ));
    }

    #[test]
    fn root_is_an_admin_and_nobody_is_not() {
        assert!(of(0, 0).admin);
        assert!(!of(65534, 65534).admin);
    }
}
