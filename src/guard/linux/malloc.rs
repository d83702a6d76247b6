//! The guard's malloc settings: one arena, big blocks mapped on their own
//! and freed memory given back. The systemd unit sets them; a guard started
//! without them (by hand, by another service manager) starts itself again
//! with them, before it opens anything. glibc reads them only at start, and
//! without them the heap that loading the capture leaves (the kernel's BTF,
//! about 10 MB) and the first busy second stay resident for good.

use std::os::unix::process::CommandExt;

/// The same string as `Environment=GLIBC_TUNABLES=` in
/// `packaging/linux/kizuki-guard.service` (a test keeps them equal).
pub const TUNABLES: &str = "glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=2097152:glibc.malloc.trim_threshold=524288";

/// Returns only when the settings are in force, were set otherwise on
/// purpose (any `GLIBC_TUNABLES` is respected), or the restart failed.
pub fn ensure() {
    if std::env::var_os("GLIBC_TUNABLES").is_some() {
        return;
    }
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "kizuki".into());
    // The running file itself, even if a package update replaced its path.
    let err = std::process::Command::new("/proc/self/exe")
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", TUNABLES)
        .exec();
    log::warn!("guard: could not restart with its malloc settings ({err}); running without them");
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_unit_and_a_guard_started_by_hand_use_the_same_settings() {
        let unit = include_str!("../../../packaging/linux/kizuki-guard.service");
        let line = format!("Environment=GLIBC_TUNABLES={}\n", super::TUNABLES);
        assert!(unit.contains(&line), "the unit's GLIBC_TUNABLES differ");
    }
}
