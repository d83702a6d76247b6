//! Systems without a packet reader yet: names stay absent.

use std::sync::Arc;

use super::CaptureError;
use crate::clock::Clock;
use crate::names::cache::NameCache;

pub struct Capture;

impl Capture {
    pub fn start(_cache: Arc<NameCache>, _clock: Arc<dyn Clock>) -> Result<Capture, CaptureError> {
        Err(CaptureError::Unsupported)
    }
}
