//! Everything the window shows or remembers between frames. Views read it;
//! only [`super::update`] changes it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::backend::{History, ProcAction, SavedReport};
use super::background::BackgroundState;
use super::jobs::{Job, JobId};
use super::wizard::{PanicState, Wizard};
use crate::consult::Contacts;
use crate::i18n::{Lang, tr_args_in};
use crate::marks::MarkFor;
use crate::model::{Mark, Program, ProgramKey, Snapshot};

/// How the program list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SortKey {
    /// Programs that need attention first (the default).
    #[default]
    Attention,
    Name,
    Connections,
}

impl SortKey {
    pub const ALL: [SortKey; 3] = [SortKey::Attention, SortKey::Name, SortKey::Connections];
}

/// Which part of the details pane is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DetailTab {
    #[default]
    Connections,
    About,
    History,
    /// Bytes sent and received: the last hour and day.
    Traffic,
}

/// A text to show, kept as a catalog key so it follows language changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub key: String,
    pub args: Vec<(String, String)>,
}

impl Message {
    pub fn new(key: &str) -> Self {
        Message {
            key: key.to_string(),
            args: Vec::new(),
        }
    }

    pub fn arg(mut self, name: &str, value: impl Into<String>) -> Self {
        self.args.push((name.to_string(), value.into()));
        self
    }

    /// Arguments that are themselves catalog keys are translated too
    /// (their names end in `_key`).
    pub fn text(&self, lang: Lang) -> String {
        let args: Vec<(String, String)> = self
            .args
            .iter()
            .map(|(n, v)| match n.strip_suffix("_key") {
                Some(name) => (name.to_string(), crate::i18n::tr_in(lang, v)),
                None => (n.clone(), v.clone()),
            })
            .collect();
        let refs: Vec<(&str, &str)> = args.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        tr_args_in(lang, &self.key, &refs)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BannerLevel {
    Info,
    Warning,
    Error,
}

/// One notice (banner) the window shows: a localized sentence (what
/// happened, what to do), kept as a catalog key so it follows the
/// language; technical detail for a helper sits behind "詳細".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    pub id: u64,
    pub level: BannerLevel,
    pub message: Message,
    /// False for lasting conditions (running as administrator).
    pub dismissable: bool,
    /// A button the banner offers besides "close".
    pub action: Option<BannerAction>,
    /// Technical detail (an OS error, a command's output), shown only
    /// when the user opens "詳細"; never translated.
    pub detail: Option<String>,
}

/// The window's notices are its banners; the name the UI component uses.
pub type Notice = Banner;

/// At most this many notices are kept; older dismissable ones go first.
pub const NOTICES_KEPT: usize = 30;

/// What a banner's button does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BannerAction {
    /// Open the consultation walk-through about this program.
    Consult(ProgramKey),
}

/// A process action waiting for the user's "yes".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    pub key: ProgramKey,
    /// The program's name as shown (already escaped).
    pub name: String,
    pub pids: Vec<u32>,
    pub action: ProcAction,
}

/// The window's whole state.
#[derive(Debug, Clone)]
pub struct AppState {
    pub snapshot: Arc<Snapshot>,
    pub lang: Lang,
    pub selected: Option<ProgramKey>,
    pub search: String,
    pub only_network: bool,
    pub only_attention: bool,
    pub sort: SortKey,
    pub tab: DetailTab,
    /// How the connections table is ordered (newest first).
    pub conn_sort: super::conn_order::ConnSort,
    pub trust_duration: MarkFor,
    pub banners: Vec<Banner>,
    next_banner: u64,
    pub confirm: Option<Confirmation>,
    /// Marks the user set that the snapshots do not show yet.
    pub pending_marks: HashMap<ProgramKey, Mark>,
    /// The journal's answer for the program it was asked about.
    pub history: Option<(ProgramKey, History)>,
    /// The sampling thread's last error, if the last tick failed.
    pub monitor_error: Option<String>,
    /// Offset of local time from UTC, for showing times.
    pub utc_offset: time::UtcOffset,
    /// The consultation walk-through, while it is open.
    pub wizard: Option<Wizard>,
    /// The help desks the walk-through shows.
    pub contacts: Arc<Contacts>,
    /// Programs the walk-through was already offered for (once each).
    pub consult_offered: HashSet<ProgramKey>,
    /// The report saved last, for "open folder", "save as…", "copy summary".
    pub last_report: Option<SavedReport>,
    /// The user agreed to an evidence copy of the program file.
    pub evidence_consent: bool,
    /// What the panic button did last (this session), for the
    /// walk-through's note. Whether traffic is stopped now is
    /// `background.panic`.
    pub panic: Option<PanicState>,
    /// Marks and panic steps started and not finished: they may be
    /// waiting for the administrator's password.
    pub jobs: Vec<(JobId, Job)>,
    next_job: JobId,
    /// A "save as…" dialog is open.
    pub save_dialog_open: bool,
    /// Tray, notifications, hidden or shown.
    pub background: BackgroundState,
    /// What the guard service reads back, and its notices.
    pub guard: super::guard::GuardState,
    /// Bytes per program over the last hour and day, fed from snapshots.
    pub traffic: super::traffic::Traffic,
}

impl AppState {
    pub fn new(lang: Lang) -> Self {
        AppState {
            snapshot: Arc::new(Snapshot::empty()),
            lang,
            selected: None,
            search: String::new(),
            only_network: false,
            only_attention: false,
            sort: SortKey::default(),
            tab: DetailTab::default(),
            conn_sort: Default::default(),
            trust_duration: MarkFor::default(),
            banners: Vec::new(),
            next_banner: 1,
            confirm: None,
            pending_marks: HashMap::new(),
            history: None,
            monitor_error: None,
            utc_offset: time::UtcOffset::UTC,
            wizard: None,
            contacts: Arc::new(Contacts::builtin()),
            consult_offered: HashSet::new(),
            last_report: None,
            evidence_consent: false,
            panic: None,
            jobs: Vec::new(),
            next_job: 1,
            save_dialog_open: false,
            background: BackgroundState::default(),
            guard: super::guard::GuardState::default(),
            traffic: Default::default(),
        }
    }

    pub fn push_banner(&mut self, level: BannerLevel, message: Message, dismissable: bool) {
        self.push_banner_full(level, message, dismissable, None, None);
    }

    /// A dismissable notice with technical detail behind "詳細"; the
    /// detail is also written to the log file. Returns its id.
    pub fn push_notice_detail(
        &mut self,
        level: BannerLevel,
        message: Message,
        detail: impl Into<String>,
    ) -> u64 {
        let detail = detail.into();
        log::warn!("{}: {detail}", message.key);
        self.push_banner_full(level, message, true, None, Some(detail));
        self.banners.last().map(|b| b.id).unwrap_or(0)
    }

    /// Removes every dismissable notice.
    pub fn dismiss_all_notices(&mut self) {
        self.banners.retain(|b| !b.dismissable);
    }

    /// A dismissable banner with a button.
    pub fn push_banner_with(
        &mut self,
        level: BannerLevel,
        message: Message,
        action: Option<BannerAction>,
    ) {
        self.push_banner_full(level, message, true, action, None);
    }

    fn push_banner_full(
        &mut self,
        level: BannerLevel,
        message: Message,
        dismissable: bool,
        action: Option<BannerAction>,
        detail: Option<String>,
    ) {
        // The same message twice in a row says nothing new.
        if let Some(last) = self.banners.last()
            && last.message == message
            && last.level == level
        {
            return;
        }
        let id = self.next_banner;
        self.next_banner += 1;
        self.banners.push(Banner {
            id,
            level,
            message,
            dismissable,
            action,
            detail,
        });
        // The window shows the newest few (and "N more"); memory keeps a
        // bounded number, dropping the oldest dismissable ones.
        let dismissable = self.banners.iter().filter(|b| b.dismissable).count();
        if dismissable > NOTICES_KEPT {
            let mut drop = dismissable - NOTICES_KEPT;
            self.banners.retain(|b| {
                if drop > 0 && b.dismissable {
                    drop -= 1;
                    false
                } else {
                    true
                }
            });
        }
    }

    /// The id the next banner will get: banners from now on have ids at
    /// least this.
    pub fn next_banner_id(&self) -> u64 {
        self.next_banner
    }

    /// A step is waiting (perhaps for the administrator): marks and the
    /// panic button wait their turn.
    pub fn waiting(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// Remembers `job` as started; returns its id, or `None` when the same
    /// job is already waiting (a second click adds nothing).
    pub fn begin_job(&mut self, job: Job) -> Option<JobId> {
        if self.jobs.iter().any(|(_, j)| *j == job) {
            return None;
        }
        let id = self.next_job;
        self.next_job += 1;
        self.jobs.push((id, job));
        Some(id)
    }

    /// The mark that applies, counting one the user just set. Blocked
    /// only when the guard reads the block back: a user-side "blocked"
    /// enforces nothing, so it is not shown as a block.
    pub fn mark_of(&self, p: &Program) -> Option<Mark> {
        if p.exe.as_deref().is_some_and(|e| self.guard.blocks(e)) {
            return Some(Mark::Blocked);
        }
        match self.pending_marks.get(&p.key).copied().or(p.mark) {
            Some(Mark::Blocked) => None,
            m => m,
        }
    }

    pub fn t(&self, key: &str) -> String {
        crate::i18n::tr_in(self.lang, key)
    }

    pub fn t_args(&self, key: &str, args: &[(&str, &str)]) -> String {
        tr_args_in(self.lang, key, args)
    }
}
