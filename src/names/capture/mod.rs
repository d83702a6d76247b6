//! The live name source. Linux: reads every packet the machine sends or
//! receives (never sends one) and feeds DNS answers, TLS server names and
//! HTTP Host headers into a [`NameCache`]; needs root (a packet socket),
//! so the guard hosts it for everyone. Windows: the DNS client cache,
//! which any user may list.

use std::sync::Arc;

use thiserror::Error;

use super::cache::NameCache;
use crate::clock::Clock;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub mod resolved;
#[cfg(target_os = "linux")]
pub use linux::Capture;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::Capture;

#[cfg(not(any(target_os = "linux", windows)))]
mod other;
#[cfg(not(any(target_os = "linux", windows)))]
pub use other::Capture;

#[derive(Debug, Error)]
pub enum CaptureError {
    #[error("reading names from the network needs administrator (root) rights")]
    NotPermitted,
    #[error("reading names from the network is not supported on this system")]
    Unsupported,
    #[error("the packet reader could not start: {0}")]
    Io(#[from] std::io::Error),
}

/// A read that timed out or was interrupted: the reader loops on (and
/// checks whether it should stop).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn read_again(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Interrupted
    )
}

/// Starts reading packets on a named thread; names go into `cache` with
/// times from `clock`. Dropping the [`Capture`] stops it.
pub fn start(cache: Arc<NameCache>, clock: Arc<dyn Clock>) -> Result<Capture, CaptureError> {
    Capture::start(cache, clock)
}
