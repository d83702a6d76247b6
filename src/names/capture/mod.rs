//! The live packet source: reads every packet the machine sends or
//! receives (never sends one) and feeds DNS answers, TLS server names and
//! HTTP Host headers into a [`NameCache`]. Needs root (a packet socket);
//! without it names stay absent. The guard can host the same
//! [`start`] later.

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

#[cfg(not(target_os = "linux"))]
mod other;
#[cfg(not(target_os = "linux"))]
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

/// Starts reading packets on a named thread; names go into `cache` with
/// times from `clock`. Dropping the [`Capture`] stops it.
pub fn start(cache: Arc<NameCache>, clock: Arc<dyn Clock>) -> Result<Capture, CaptureError> {
    Capture::start(cache, clock)
}
