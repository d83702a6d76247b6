//! "Blocked" that really blocks. The desired state (the user's blocked
//! marks, what runs, the panic button) becomes a [`Plan`] — plain data that
//! can be shown, tested, saved and validated — and a [`FirewallBackend`] enforces
//! it: nftables on Linux, Windows Defender Firewall on Windows.
//!
//! Privilege: the GUI never runs as root. On Linux, enforcement belongs to
//! the guard (`kizuki guard`, see [`crate::guard`]), which builds its rules
//! with [`nft::ruleset`] and [`cgroup`]; there is no root entry point that
//! takes a plan from a user's folder. [`enforce`] applies a plan directly
//! only when kizuki already has administrator rights, else on Windows
//! through the UAC prompt (`kizuki firewall apply --plan FILE`, Windows
//! has no guard yet), else reports that the mark is only recorded.

pub mod cgroup;
pub mod netsh;
pub mod nft;
pub mod plan;
mod state;

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

pub use plan::{BlockedProgram, Flow, PLAN_VERSION, Plan, PlanError, program_id};
pub use state::{DesiredState, STATE_FILE};

use crate::escape::{for_display, os_lossless};
use crate::i18n::{tr, tr_args};
use crate::marks::{MarkEntry, MarkStore};
use crate::model::Snapshot;

/// File the unprivileged side writes for the privileged side to read.
pub const PLAN_FILE: &str = "firewall-plan.json";
/// A plan file larger than this is not read.
const MAX_PLAN_BYTES: u64 = 16 * 1024 * 1024;

fn shown(p: &Path) -> String {
    for_display(&os_lossless(p.as_os_str()))
}

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("{}", tr_args("firewall.err.plan", &[("error", &.0.to_string())]))]
    Plan(#[from] PlanError),
    #[error("{}", tr("firewall.err.no_privilege"))]
    NoPrivilege,
    #[error("{}", tr_args("firewall.err.elevation", &[("detail", &for_display(detail))]))]
    Elevation { code: Option<i32>, detail: String },
    #[error("{}", tr_args("firewall.err.tool", &[("tool", tool), ("error", &source.to_string())]))]
    Tool { tool: String, source: io::Error },
    #[error("{}", tr_args("firewall.err.rejected", &[("tool", tool), ("detail", &for_display(detail))]))]
    Rejected { tool: String, detail: String },
    #[error("{}", tr("firewall.err.no_cgroup"))]
    NoCgroupV2,
    #[error("{}", tr_args("firewall.err.cgroup", &[("error", &source.to_string()), ("path", &shown(path))]))]
    Cgroup { path: PathBuf, source: io::Error },
    #[error("{}", tr_args("firewall.err.plan_file", &[("error", &source.to_string()), ("path", &shown(path))]))]
    PlanFile { path: PathBuf, source: io::Error },
    #[error("{}", tr("firewall.err.non_unicode"))]
    NonUnicodeArgument,
    #[error("{}", tr("firewall.err.unsupported"))]
    Unsupported,
    /// `firewall apply --plan` outside Windows: the guard enforces.
    #[error("{}", tr("guard.err.no_plan_entry"))]
    NoPlanEntry,
}

/// What applying a plan did besides loading rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// PIDs moved where the firewall catches them.
    pub moved: Vec<u32>,
    /// PIDs that had exited (normal).
    pub vanished: Vec<u32>,
    /// Existing connections destroyed.
    pub cut: usize,
    /// Steps that did not work but did not stop the rest.
    pub warnings: Vec<String>,
}

/// What the firewall enforces now, as the backend reads it back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enforced {
    /// kizuki has rules in place at all.
    pub table: bool,
    pub panic: bool,
    /// [`program_id`]s of the programs blocked by rules.
    pub blocked_ids: BTreeSet<String>,
    /// The backend's own listing where rules name programs by path
    /// (Windows).
    pub listing: Option<String>,
}

impl Enforced {
    pub fn blocks(&self, exe: &Path) -> bool {
        self.blocked_ids.contains(&program_id(exe))
            || self
                .listing
                .as_deref()
                .zip(exe.to_str())
                .is_some_and(|(l, e)| l.to_lowercase().contains(&e.to_lowercase()))
    }
}

/// A way to enforce plans. Applying replaces everything kizuki enforced
/// before, so stale rules go.
pub trait FirewallBackend: Send {
    fn apply(&mut self, plan: &Plan) -> Result<Applied, FirewallError>;
    /// Removes everything kizuki added.
    fn clear(&mut self) -> Result<(), FirewallError>;
    fn status(&mut self) -> Result<Enforced, FirewallError>;
}

/// The backend for this OS, acting on the host.
pub fn native_backend() -> Result<Box<dyn FirewallBackend>, FirewallError> {
    #[cfg(target_os = "linux")]
    {
        Ok(Box::new(nft::NftBackend::new()))
    }
    #[cfg(windows)]
    {
        Ok(Box::new(netsh::NetshBackend))
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        Err(FirewallError::Unsupported)
    }
}

/// How a privileged step can be taken from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// kizuki has administrator rights.
    Direct,
    /// Ask through the Windows UAC prompt: `<kizuki> …` started "as
    /// administrator".
    Runas { kizuki: PathBuf },
    /// No way from here: on Linux the guard enforces (ask it through
    /// [`crate::guard::client`]); marks are recorded, not enforced.
    Unavailable,
}

/// The route on this machine now.
pub fn route() -> Route {
    if crate::probe::running_as_admin() {
        return Route::Direct;
    }
    if cfg!(windows)
        && let Ok(kizuki) = std::env::current_exe()
    {
        return Route::Runas { kizuki };
    }
    Route::Unavailable
}

/// How a plan was enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enforcement {
    /// Applied in this process.
    Applied(Applied),
    /// Applied by the elevated kizuki (Windows UAC).
    Elevated,
}

/// Runs `kizuki <args>` with administrator rights through `route`.
fn run_elevated(route: &Route, args: &[&std::ffi::OsStr]) -> Result<(), FirewallError> {
    match route {
        Route::Runas { kizuki } => run_as_admin(kizuki, args),
        Route::Direct | Route::Unavailable => Err(FirewallError::NoPrivilege),
    }
}

/// The UAC route: the elevated kizuki runs hidden, so its exit code is
/// all that comes back.
#[cfg(windows)]
fn run_as_admin(kizuki: &Path, args: &[&std::ffi::OsStr]) -> Result<(), FirewallError> {
    use crate::platform::win::{self, RunAs};
    let strs: Vec<&str> = args
        .iter()
        .map(|a| a.to_str().ok_or(FirewallError::NonUnicodeArgument))
        .collect::<Result<_, _>>()?;
    let params = win::cmdline::join_args(&strs).map_err(|_| FirewallError::NonUnicodeArgument)?;
    match win::run_as_admin(kizuki, &params) {
        Ok(RunAs::Exited(0)) => Ok(()),
        Ok(RunAs::Exited(code)) => Err(FirewallError::Elevation {
            code: i32::try_from(code).ok(),
            detail: tr_args("firewall.err.elevated_exit", &[("code", &code.to_string())]),
        }),
        Ok(RunAs::Declined) => Err(FirewallError::Elevation {
            code: None,
            detail: tr("firewall.err.declined"),
        }),
        Err(source) => Err(FirewallError::Tool {
            tool: "ShellExecuteExW".into(),
            source,
        }),
    }
}

#[cfg(not(windows))]
fn run_as_admin(_kizuki: &Path, _args: &[&std::ffi::OsStr]) -> Result<(), FirewallError> {
    Err(FirewallError::Unsupported)
}

/// Applies `plan` by whatever route there is. `scratch` is a folder the
/// user owns, for the plan file handed to the privileged side.
pub fn enforce(plan: &Plan, scratch: &Path) -> Result<Enforcement, FirewallError> {
    plan.validate()?;
    match route() {
        Route::Direct => Ok(Enforcement::Applied(native_backend()?.apply(plan)?)),
        route @ Route::Runas { .. } => {
            let file = scratch.join(PLAN_FILE);
            crate::fsutil::write_atomic(&file, &plan.to_json()).map_err(|source| {
                FirewallError::PlanFile {
                    path: file.clone(),
                    source,
                }
            })?;
            let result = run_elevated(
                &route,
                &[
                    "firewall".as_ref(),
                    "apply".as_ref(),
                    "--plan".as_ref(),
                    file.as_os_str(),
                ],
            );
            // The file has done its job either way.
            let _ = std::fs::remove_file(&file);
            result.map(|()| Enforcement::Elevated)
        }
        Route::Unavailable => Err(FirewallError::NoPrivilege),
    }
}

/// Removes everything kizuki enforced, by whatever route there is.
pub fn clear() -> Result<Enforcement, FirewallError> {
    match route() {
        Route::Direct => {
            native_backend()?.clear()?;
            Ok(Enforcement::Applied(Applied::default()))
        }
        route @ Route::Runas { .. } => run_elevated(
            &route,
            &[
                "firewall".as_ref(),
                "clear".as_ref(),
                "--system-only".as_ref(),
            ],
        )
        .map(|()| Enforcement::Elevated),
        Route::Unavailable => Err(FirewallError::NoPrivilege),
    }
}

/// Reads a plan file on the privileged side: size-limited, parsed and
/// validated before anything is done with it. Only Windows has this entry
/// point (the UAC route); on Linux the guard owns enforcement and a plan
/// file from a user's folder is never read as root.
pub fn read_plan_file(path: &Path) -> Result<Plan, FirewallError> {
    use std::io::Read;
    if !cfg!(windows) {
        return Err(FirewallError::NoPlanEntry);
    }
    let err = |source| FirewallError::PlanFile {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(err)?;
    let mut bytes = Vec::new();
    f.take(MAX_PLAN_BYTES)
        .read_to_end(&mut bytes)
        .map_err(err)?;
    Ok(Plan::from_json(&bytes)?)
}

/// The plan for the marks and desired state as they are now; `snapshot`
/// adds running PIDs and open connections.
pub fn desired_plan(
    marks: &MarkStore,
    desired: &DesiredState,
    snapshot: Option<&Snapshot>,
) -> Plan {
    Plan::build(&marks.blocked(), snapshot, desired.panic)
}

/// What is recorded versus what is enforced, for `firewall status` and the
/// GUI.
#[derive(Debug, Clone)]
pub struct StatusReport {
    pub blocked: Vec<MarkEntry>,
    pub panic_recorded: bool,
    /// `Err` when the firewall could not be read (no administrator rights).
    pub enforced: Result<Enforced, String>,
}

impl StatusReport {
    /// `Some(true)`: enforced; `Some(false)`: only recorded; `None`: unknown.
    pub fn is_enforced(&self, exe: &Path) -> Option<bool> {
        self.enforced.as_ref().ok().map(|e| e.blocks(exe))
    }
}

/// Reads back the firewall (needs administrator rights to see it).
pub fn status(marks: &MarkStore, desired: &DesiredState) -> StatusReport {
    // Windows Defender Firewall rules can be read without elevation;
    // nftables needs root.
    let enforced = if crate::probe::running_as_admin() || cfg!(windows) {
        native_backend()
            .and_then(|mut b| b.status())
            .map_err(|e| e.to_string())
    } else {
        Err(tr("firewall.status.needs_admin"))
    };
    StatusReport {
        blocked: marks.blocked(),
        panic_recorded: desired.panic,
        enforced,
    }
}
