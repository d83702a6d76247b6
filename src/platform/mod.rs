//! What differs between operating systems, behind one small API each, so
//! the rest of kizuki has no `#[cfg(target_os …)]` (`scripts/check-cfg.sh`
//! keeps it so).

pub mod fs;
pub mod osbytes;
