//! What differs between operating systems, behind one small API each, so
//! the rest of kizuki has no `#[cfg(target_os …)]` (`scripts/check-cfg.sh`
//! keeps it so).

pub mod autostart;
pub(crate) mod boot;
pub(crate) mod fs;
pub(crate) mod osbytes;
pub(crate) mod paths;
pub mod procctl;
pub mod provenance;
pub mod win;
