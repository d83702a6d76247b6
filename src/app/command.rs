//! What views (and the monitor) ask the app to do.

use std::sync::Arc;

use super::backend::ProcAction;
use super::background::{BackgroundCommand, BackgroundEffect};
use super::jobs::JobDone;
use super::state::{DetailTab, SortKey};
use super::wizard::ConsultCommand;
use crate::i18n::Lang;
use crate::marks::MarkFor;
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
    SetTrustDuration(MarkFor),
    /// Mark a program trusted, unknown or blocked.
    SetMark(ProgramKey, Mark),
    /// Suspend or terminate ask first; resume runs at once.
    AskProcess(ProgramKey, ProcAction),
    ConfirmProcess,
    CancelConfirm,
    WriteReport(ProgramKey),
    /// Open the consultation walk-through (about a program, else the
    /// selected one). Sent by the window's "相談する" buttons.
    Consult(Option<ProgramKey>),
    /// The same from outside the window (the tray): also brings the
    /// window to the front.
    OpenConsultation(Option<ProgramKey>),
    /// A step of the walk-through or the report box.
    Wizard(ConsultCommand),
    LoadHistory(ProgramKey),
    CopyText(String),
    DismissBanner(u64),
    /// A click on a header of the connections table.
    SortConnections(super::conn_order::ConnColumn),
    /// Close every notice that can be closed.
    DismissAllNotices,
    RefreshNow,
    /// Tray, notifications and the window's life in the background.
    Background(BackgroundCommand),
    /// A mark or the panic button finished on the job worker.
    JobDone(JobDone),
    /// The guard's state read back, or that no guard answers.
    Guard(super::guard::GuardUpdate),
    /// Lift the guard's block on this program (the blocked list's 解除).
    Unblock(std::path::PathBuf),
    /// Close a notice about the guard.
    DismissGuardNotice(u64),
}

/// What the window shell must do after an update (things only it can).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    CopyToClipboard(String),
    /// Ask the monitor for a sample now.
    RefreshNow,
    /// Texts made outside the window (findings) should follow this language.
    LanguageChanged(Lang),
    /// Ask the user where to save a file; the answer comes back as
    /// `Command::Wizard(ConsultCommand::SaveDialogAnswer(..))`.
    AskSavePath(SaveRequest),
    /// Show the window and bring it to the front.
    ShowWindow,
    /// Show, hide or quit the window; tell the tray's background thread.
    Background(BackgroundEffect),
}

/// What a "save as…" dialog shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveRequest {
    pub title: String,
    /// The suggested file name.
    pub file_name: String,
}
