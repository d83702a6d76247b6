//! Which boot of the computer this is, so "trust until restart" can tell.

/// The kernel's random id of the current boot (Linux); `None` elsewhere,
/// where "until restart" falls back to "until kizuki restarts".
pub fn boot_id() -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        let s = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_string())
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn boot_id_is_stable_within_a_boot() {
        let a = super::boot_id().unwrap();
        assert_eq!(Some(a.clone()), super::boot_id());
        assert_eq!(a.len(), 36, "a UUID: {a}");
    }
}
