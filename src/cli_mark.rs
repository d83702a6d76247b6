//! `kizuki mark` and `kizuki firewall`: the command-line edge of marks and
//! blocking. Logic lives in `marks` and `firewall`; this turns arguments
//! into calls and outcomes into text.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};

use crate::cli::FirewallCommand;
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::escape::{for_display, os_lossless};
use crate::firewall::{self, DesiredState, Enforcement, FirewallError, Plan};
use crate::i18n::{tr, tr_args};
use crate::journal::{ProgramRef, UserAction};
use crate::marks::{MarkEntry, MarkFor, MarkStore, Until, duration_allowed};
use crate::model::{Mark, Snapshot};
use crate::monitor::DEFAULT_INTERVAL;
use crate::{identity, probe, setup};

fn shown(p: &Path) -> String {
    for_display(&os_lossless(p.as_os_str()))
}

fn options(data: Option<PathBuf>) -> setup::Options {
    setup::Options {
        data_dir: data,
        interval: DEFAULT_INTERVAL,
        record: false,
    }
}

fn open_marks(opts: &setup::Options) -> Arc<MarkStore> {
    let marks = setup::open_marks(opts);
    for w in marks.take_warnings() {
        eprintln!("kizuki: {}", w.message());
    }
    marks
}

fn desired(opts: &setup::Options) -> DesiredState {
    let (state, warning) = DesiredState::load(opts.data_dir.as_deref(), SystemClock.now());
    if let Some(w) = warning {
        eprintln!("kizuki: {w}");
    }
    state
}

/// The executable and its SHA-256 for a path or a PID. For a PID the
/// running image is hashed (it may differ from the file on disk).
fn resolve(target: &str) -> Result<(PathBuf, String)> {
    if !target.is_empty() && target.bytes().all(|b| b.is_ascii_digit()) {
        let pid: u32 = target.parse().context(tr("cli.mark.no_process"))?;
        // An interpreter running a script: the script is the program.
        if let Some(s) = probe::script_of_pid(pid) {
            let sha = identity::sha256_file(&s.read_from)
                .with_context(|| tr_args("cli.mark.unreadable", &[("file", &shown(&s.path))]))?;
            return Ok((s.path, sha));
        }
        let (exe, _deleted) = probe::exe_of_pid(pid)
            .ok_or_else(|| anyhow!(tr_args("cli.mark.no_process_pid", &[("pid", target)])))?;
        let sha = identity::sha256_file(&identity::image_path(pid, &exe))
            .with_context(|| tr_args("cli.mark.unreadable", &[("file", &shown(&exe))]))?;
        return Ok((exe, sha));
    }
    let path = Path::new(target);
    // The monitor knows programs by their resolved path (no symlinks).
    let exe = std::fs::canonicalize(path)
        .with_context(|| tr_args("cli.mark.no_file", &[("file", &shown(path))]))?;
    if !exe.is_file() {
        return Err(anyhow!(tr_args(
            "cli.mark.no_file",
            &[("file", &shown(&exe))]
        )));
    }
    let sha = identity::sha256_file(&exe)
        .with_context(|| tr_args("cli.mark.unreadable", &[("file", &shown(&exe))]))?;
    Ok((exe, sha))
}

/// Writes a user action into the evidence journal. The journal is evidence,
/// not a precondition: when it cannot be written the user is told once and
/// the action itself stands.
fn journal_action(opts: &setup::Options, action: UserAction) {
    let Some(dir) = &opts.data_dir else { return };
    let now = SystemClock.now();
    let result = crate::journal::Journal::open(&crate::journal::path_in(dir), now)
        .and_then(|(mut j, _)| j.record_action(&action, now));
    if let Err(e) = result {
        eprintln!("kizuki: {e}");
    }
}

fn until_text(e: &MarkEntry) -> String {
    match &e.until {
        Until::Always => tr("marks.for.always"),
        Until::Time(t) => format!("{} {}", tr("marks.for.1h"), rfc3339(*t)),
        Until::Boot(_) => tr("marks.for.restart"),
        Until::Session(_) => tr("marks.for.restart_session"),
    }
}

fn mark_name(m: Mark) -> String {
    tr(&format!("mark.{}", m.as_str()))
}

pub(crate) fn mark(
    data: Option<PathBuf>,
    target: &str,
    mark: &str,
    duration: Option<&str>,
    record_only: bool,
) -> Result<ExitCode> {
    let Some(mark) = Mark::parse(mark) else {
        return Ok(ExitCode::from(2));
    };
    let dur = duration.and_then(MarkFor::parse).unwrap_or(MarkFor::Always);
    if !duration_allowed(mark, dur) {
        eprintln!("kizuki: {}", tr("marks.err.timed"));
        return Ok(ExitCode::from(2));
    }
    let opts = options(data);
    let (exe, sha) = resolve(target)?;
    let marks = open_marks(&opts);
    let before = marks.lookup(&exe, Some(&sha));
    let changed = marks.set(&exe, &sha, mark, dur)?;
    println!(
        "{}",
        tr_args(
            "marks.done",
            &[
                ("exe", &shown(&exe)),
                ("mark", &mark_name(mark)),
                ("until", &until_text(&changed.entry)),
                ("sha", &sha),
            ]
        )
    );
    if let Some(stale) = before.stale {
        println!(
            "{}",
            tr_args("marks.stale_note", &[("mark", &mark_name(stale))])
        );
    }
    journal_action(
        &opts,
        UserAction::Mark {
            program: ProgramRef {
                exe: Some(os_lossless(exe.as_os_str())),
                name: exe
                    .file_name()
                    .map(os_lossless)
                    .unwrap_or_else(|| os_lossless(exe.as_os_str())),
                sha256: Some(sha.clone()),
            },
            mark: Some(mark),
            previous: changed.previous.as_ref().map(|p| p.mark),
        },
    );
    let was_blocked = changed
        .previous
        .as_ref()
        .is_some_and(|p| p.mark == Mark::Blocked);
    if record_only || !(mark == Mark::Blocked || was_blocked) {
        return Ok(ExitCode::SUCCESS);
    }
    apply_now(&opts, &marks, true)
}

/// A snapshot of what runs now, with marks, so the plan knows PIDs and
/// connections.
fn snapshot(opts: &setup::Options, marks: Arc<MarkStore>) -> Option<Snapshot> {
    let mut core = setup::native_monitor_with(opts, marks).ok()?;
    let snap = core.tick().ok();
    core.save();
    snap
}

fn scratch(opts: &setup::Options) -> PathBuf {
    opts.data_dir.clone().unwrap_or_else(std::env::temp_dir)
}

fn report(
    plan: &Plan,
    result: Result<Enforcement, FirewallError>,
    after_mark: bool,
) -> Result<ExitCode> {
    let panic = if plan.panic {
        tr("firewall.on")
    } else {
        tr("firewall.off")
    };
    let blocked = plan.blocked.len().to_string();
    match result {
        Ok(Enforcement::Applied(a)) => {
            println!(
                "{}",
                tr_args(
                    "firewall.applied",
                    &[
                        ("blocked", &blocked),
                        ("panic", &panic),
                        ("moved", &a.moved.len().to_string()),
                        ("cut", &a.cut.to_string()),
                    ]
                )
            );
            for w in a.warnings {
                eprintln!(
                    "kizuki: {}",
                    tr_args("firewall.warning", &[("detail", &for_display(&w))])
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Ok(Enforcement::Elevated) => {
            println!(
                "{}",
                tr_args(
                    "firewall.applied_elevated",
                    &[("blocked", &blocked), ("panic", &panic)]
                )
            );
            Ok(ExitCode::SUCCESS)
        }
        // Recorded, and the user is told plainly that it is not enforced.
        Err(e @ (FirewallError::NoPrivilege | FirewallError::Elevation { .. })) => {
            if after_mark {
                eprintln!(
                    "kizuki: {}",
                    tr_args(
                        "firewall.recorded_not_enforced",
                        &[("reason", &e.to_string())]
                    )
                );
            } else {
                eprintln!("kizuki: {e}");
            }
            Ok(if after_mark {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Err(e) if after_mark => Err(anyhow!(tr_args(
            "firewall.recorded_not_enforced",
            &[("reason", &e.to_string())]
        ))),
        Err(e) => Err(e.into()),
    }
}

fn apply_now(opts: &setup::Options, marks: &Arc<MarkStore>, after_mark: bool) -> Result<ExitCode> {
    let state = desired(opts);
    let snap = snapshot(opts, marks.clone());
    let plan = firewall::desired_plan(marks, &state, snap.as_ref());
    let result = firewall::enforce(&plan, &scratch(opts));
    report(&plan, result, after_mark)
}

pub(crate) fn firewall(data: Option<PathBuf>, action: &FirewallCommand) -> Result<ExitCode> {
    let opts = options(data);
    match action {
        FirewallCommand::Status => {
            let marks = open_marks(&opts);
            print_status(&firewall::status(&marks, &desired(&opts)));
            Ok(ExitCode::SUCCESS)
        }
        FirewallCommand::Apply { plan: Some(file) } => {
            let plan = firewall::read_plan_file(file)?;
            let dir = file
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(std::env::temp_dir);
            report(&plan, firewall::enforce(&plan, &dir), false)
        }
        FirewallCommand::Apply { plan: None } => apply_now(&opts, &open_marks(&opts), false),
        FirewallCommand::Clear { system_only } => {
            if !system_only {
                DesiredState { panic: false }
                    .save(opts.data_dir.as_deref())
                    .context(tr("firewall.err.no_privilege"))?;
            }
            match firewall::clear() {
                Ok(_) => {
                    println!("{}", tr("firewall.cleared"));
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Err(e.into()),
            }
        }
        FirewallCommand::Panic | FirewallCommand::Unpanic => {
            let state = DesiredState {
                panic: matches!(action, FirewallCommand::Panic),
            };
            if let Some(d) = &opts.data_dir {
                state
                    .save(Some(d))
                    .with_context(|| shown(&d.join(firewall::STATE_FILE)))?;
            }
            let marks = open_marks(&opts);
            let snap = snapshot(&opts, marks.clone());
            let plan = firewall::desired_plan(&marks, &state, snap.as_ref());
            let result = firewall::enforce(&plan, &scratch(&opts));
            journal_action(&opts, UserAction::panic(state.panic, &result));
            report(&plan, result, false)
        }
    }
}

fn print_status(s: &firewall::StatusReport) {
    println!("{}", tr("firewall.status.title"));
    let enforced_panic = s.enforced.as_ref().ok().map(|e| e.panic);
    let panic_line = match (s.panic_recorded, enforced_panic) {
        (true, Some(true)) => tr("firewall.status.panic_on"),
        (true, _) => tr("firewall.status.panic_recorded"),
        (false, Some(true)) => tr("firewall.status.panic_stray"),
        (false, _) => tr("firewall.status.panic_off"),
    };
    println!("  {panic_line}");
    if s.blocked.is_empty() {
        println!("  {}", tr("firewall.status.none_blocked"));
    }
    for b in &s.blocked {
        let state = match s.is_enforced(&b.exe) {
            Some(true) => tr("firewall.status.enforced"),
            Some(false) => tr("firewall.status.recorded"),
            None => tr("firewall.status.unknown"),
        };
        println!("  {}: {state}", shown(&b.exe));
    }
    if let Err(reason) = &s.enforced {
        println!(
            "  {}",
            tr_args("firewall.status.unchecked", &[("reason", reason)])
        );
    }
}
