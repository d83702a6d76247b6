//! The window's state and the one function that changes it. Views (in
//! `ui/`) read [`AppState`] and return [`Command`]s; [`update`] applies
//! them and reaches the outside world only through a [`Backend`].

pub mod backend;
pub mod background;
pub mod command;
pub mod conn_order;
pub mod guard;
pub mod jobs;
pub mod native;
pub mod programs;
pub mod state;
pub mod traffic;
mod update;
pub mod wizard;

pub use backend::{
    Backend, BackendError, Call, Feature, History, HistoryRow, HistorySource, JobGate, MarkOutcome,
    MarkRequest, ProcAction, RecordingBackend, ReportRequest, SavedReport,
};
pub use background::{BackgroundCommand, BackgroundEffect, BackgroundState};
pub use command::{Command, Effect, SaveRequest};
pub use conn_order::{ConnColumn, ConnSort};
pub use jobs::{Job, JobDone, JobId, JobRunner, JobWorker, Waker};
pub use programs::{Badge, Row, RunState};
pub use state::{
    AppState, Banner, BannerAction, BannerLevel, Confirmation, DetailTab, Message, NOTICES_KEPT,
    Notice, SortKey,
};
pub use update::update;
pub use wizard::{ConsultCommand, PanicState, Wizard};
