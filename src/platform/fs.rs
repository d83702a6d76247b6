//! File-system facts that differ between operating systems: opening
//! without following links, what a non-regular file is, its owner, inode
//! and change time, and whether a process is alive.

use std::fs::{Metadata, OpenOptions, Permissions};

#[cfg(unix)]
pub fn no_follow(opts: &mut OpenOptions) {
    use nix::fcntl::OFlag;
    use std::os::unix::fs::OpenOptionsExt;
    opts.custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits());
}

#[cfg(unix)]
pub fn no_follow_no_block(opts: &mut OpenOptions) {
    use nix::fcntl::OFlag;
    use std::os::unix::fs::OpenOptionsExt;
    opts.custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits());
}

#[cfg(not(unix))]
pub fn no_follow(_opts: &mut OpenOptions) {}

#[cfg(not(unix))]
pub fn no_follow_no_block(_opts: &mut OpenOptions) {}

/// What a non-regular file is, for the message.
#[cfg(unix)]
pub fn special_kind(meta: &Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("dir")
    } else if t.is_fifo() {
        Some("fifo")
    } else if t.is_char_device() || t.is_block_device() {
        Some("device")
    } else if t.is_socket() {
        Some("socket")
    } else {
        Some("other")
    }
}

#[cfg(not(unix))]
pub fn special_kind(meta: &Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("dir")
    } else {
        Some("other")
    }
}

/// The owner when it is neither this user nor root (root's files cannot
/// have been planted by a program of the user).
#[cfg(unix)]
pub fn foreign_owner(meta: &Metadata) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let uid = meta.uid();
    (uid != nix::unistd::geteuid().as_raw() && uid != 0).then_some(uid)
}

#[cfg(not(unix))]
pub fn foreign_owner(_meta: &Metadata) -> Option<u32> {
    None
}

/// Device and inode (`(0, 0)` where the OS has none).
#[cfg(unix)]
pub fn dev_ino(m: &Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

#[cfg(not(unix))]
pub fn dev_ino(_m: &Metadata) -> (u64, u64) {
    (0, 0)
}

/// Modification time in nanoseconds since the epoch (0 when unknown).
#[cfg(unix)]
pub fn mtime_ns(m: &Metadata) -> i128 {
    use std::os::unix::fs::MetadataExt;
    i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec())
}

#[cfg(not(unix))]
pub fn mtime_ns(m: &Metadata) -> i128 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// Inode change time in nanoseconds (0 where the OS has none).
#[cfg(unix)]
pub fn ctime_ns(m: &Metadata) -> i128 {
    use std::os::unix::fs::MetadataExt;
    i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec())
}

#[cfg(not(unix))]
pub fn ctime_ns(_m: &Metadata) -> i128 {
    0
}

/// Whether process `pid` exists.
#[cfg(unix)]
pub fn process_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    // Signal 0 only asks whether the process exists; EPERM means it does.
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

#[cfg(not(unix))]
pub fn process_alive(_pid: u32) -> bool {
    // Without a cheap check, every writer counts as running: a temp file
    // is never taken from under a save.
    true
}

/// Read-only for its owner alone (`0400`; read-only elsewhere).
pub fn owner_read_only(perms: &mut Permissions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        perms.set_mode(0o400);
    }
    #[cfg(not(unix))]
    perms.set_readonly(true);
}

/// A new file only its owner can read (`0600`), never opened through a
/// link (nothing extra elsewhere).
#[cfg(unix)]
pub fn private_no_follow(opts: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    opts.mode(0o600)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits());
}

#[cfg(not(unix))]
pub fn private_no_follow(_opts: &mut OpenOptions) {}
