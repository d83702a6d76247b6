//! What views (and the monitor) ask the app to do.

use std::sync::Arc;

use super::backend::{ProcAction, TrustDuration};
use super::background::{BackgroundCommand, BackgroundEffect};
use super::state::{DetailTab, SortKey};
use crate::i18n::Lang;
use crate::model::{Mark, ProgramKey, Snapshot};

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// The monitor published a snapshot (older generations are dropped).
    NewSnapshot(Arc<Snapshot>),
    /// The monitor's last tick failed (`Some`) or worked again (`None`).
    MonitorError(Option<String>),
    Select(Option<ProgramKey>),
    SetSearch(String),
    SetOnlyNetwork(bool),
    SetOnlyAttention(bool),
    SetSort(SortKey),
    SetTab(DetailTab),
    SetLang(Lang),
    SetTrustDuration(TrustDuration),
    /// Mark a program trusted, unknown or blocked.
    SetMark(ProgramKey, Mark),
    /// Suspend or terminate ask first; resume runs at once.
    AskProcess(ProgramKey, ProcAction),
    ConfirmProcess,
    CancelConfirm,
    WriteReport(ProgramKey),
    Consult(Option<ProgramKey>),
    LoadHistory(ProgramKey),
    CopyText(String),
    DismissBanner(u64),
    RefreshNow,
    /// Tray, notifications and the window's life in the background.
    Background(BackgroundCommand),
}

/// What the window shell must do after an update (things only it can).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    CopyToClipboard(String),
    /// Ask the monitor for a sample now.
    RefreshNow,
    /// Texts made outside the window (findings) should follow this language.
    LanguageChanged(Lang),
    /// Show, hide or quit the window; tell the tray's background thread.
    Background(BackgroundEffect),
}
