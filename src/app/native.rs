//! The backend of the real window. Each method hands over to the module
//! that owns the concern; where that module is not part of this build the
//! method says so with [`BackendError::Unavailable`], which the window shows
//! as a banner rather than pretending the action happened.

use std::path::PathBuf;

use super::backend::{Backend, BackendError, Feature, History, MarkRequest, ProcAction};
use crate::model::{Program, ProgramKey};

#[derive(Debug, Clone, Default)]
pub struct NativeBackend {
    /// Where marks, the journal and reports live.
    pub data_dir: Option<PathBuf>,
}

impl NativeBackend {
    pub fn new(data_dir: Option<PathBuf>) -> Self {
        NativeBackend { data_dir }
    }
}

impl Backend for NativeBackend {
    fn set_mark(&mut self, _req: &MarkRequest) -> Result<(), BackendError> {
        Err(BackendError::Unavailable(Feature::Marks))
    }

    fn process_action(&mut self, _action: ProcAction, _pids: &[u32]) -> Result<(), BackendError> {
        Err(BackendError::Unavailable(Feature::ProcessControl))
    }

    fn write_report(&mut self, _program: &Program) -> Result<PathBuf, BackendError> {
        Err(BackendError::Unavailable(Feature::Report))
    }

    fn open_consultation(&mut self, _program: Option<&Program>) -> Result<(), BackendError> {
        Err(BackendError::Unavailable(Feature::Consultation))
    }

    fn connection_history(&mut self, _key: &ProgramKey) -> Result<History, BackendError> {
        Err(BackendError::Unavailable(Feature::Journal))
    }
}
