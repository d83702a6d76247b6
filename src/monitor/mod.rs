//! The sampling loop: probe → track connection sessions → stages (marks,
//! findings, journal) → an immutable [`Snapshot`](crate::model::Snapshot) for every reader.
//!
//! [`Tracker`] is pure bookkeeping over raw samples and an explicit time;
//! [`MonitorCore`] adds the probe, the hasher and the stages; [`Monitor`] runs
//! a core on a named thread and publishes each snapshot to a
//! [`SnapshotReceiver`].
//!
//! - [`tracker`]: sessions, processes and programs over samples (pure);
//! - [`stage`]: the [`Stage`] trait and the ordered [`Pipeline`];
//! - [`tick`]: [`MonitorCore`], one sample through tracker and stages;
//! - [`publish`]: the latest-value channel;
//! - [`thread`]: [`Monitor`], the core on its named thread.

pub mod publish;
pub mod stage;
pub mod thread;
pub mod tick;
pub mod tracker;

pub use publish::{SnapshotReceiver, SnapshotSender};
pub use stage::{Pipeline, Stage, TickContext};
pub use thread::{Monitor, MonitorControl};
pub use tick::{DEFAULT_INTERVAL, MonitorCore, Stamper};
pub use tracker::{DEFAULT_RETAIN, ProcId, SessionEvent, Tracker, program_key};

#[cfg(test)]
mod tests;
