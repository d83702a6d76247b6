//! `kizuki guard`: the small privileged service that owns enforcement
//! (the block list, the panic state, nftables and cgroups), and the client
//! side the window, tray and CLI use to ask it. See ARCHITECTURE.md.

pub mod api;
pub mod blocked;
pub mod client;
pub mod history;
#[cfg(target_os = "linux")]
mod linux;
pub mod live;
pub mod live_probe;
pub mod local;
pub mod outcome;

#[cfg(target_os = "linux")]
pub use linux::{Authorizer, Polkit, Subject, Verdict, state_dir, verify_log};

/// Runs the guard in the foreground (root, Linux only).
pub fn run() -> anyhow::Result<()> {
    #[cfg(target_os = "linux")]
    {
        linux::run()
    }
    #[cfg(not(target_os = "linux"))]
    {
        anyhow::bail!(crate::i18n::tr("guard.err.unsupported"))
    }
}
