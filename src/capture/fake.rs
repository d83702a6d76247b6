//! A capture source for tests: hands out the events it is given.

use std::sync::{Arc, Mutex};

use super::{CaptureError, CaptureSource, Event};

/// Events pushed through a shared handle come out at the next drain.
#[derive(Clone, Default)]
pub struct FakeCapture {
    queue: Arc<Mutex<Vec<Event>>>,
}

impl FakeCapture {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues an event for the next drain.
    pub fn push(&self, e: Event) {
        if let Ok(mut q) = self.queue.lock() {
            q.push(e);
        }
    }
}

impl CaptureSource for FakeCapture {
    fn drain(&mut self) -> Result<Vec<Event>, CaptureError> {
        match self.queue.lock() {
            Ok(mut q) => Ok(std::mem::take(&mut *q)),
            Err(_) => Err(CaptureError::Read("fake queue poisoned".into())),
        }
    }
}
