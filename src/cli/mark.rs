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
use crate::guard::api::{GuardStatus, Request};
use crate::guard::client::{GuardLink, LinkError};
use crate::guard::outcome::{Answer, judge};
use crate::i18n::{self, tr, tr_args};
use crate::journal::{ProgramRef, UserAction};
use crate::marks::{MarkEntry, MarkFor, MarkStore, Until, duration_allowed};
use crate::model::Mark;
use crate::monitor::DEFAULT_INTERVAL;
use crate::{guard, identity, probe, setup};

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

/// The guard (or, on Windows, the local firewall backend) to ask.
fn link(opts: &setup::Options, marks: Arc<MarkStore>) -> Box<dyn GuardLink> {
    guard::local::default_link(opts.data_dir.as_deref(), marks)
}

/// Prints what became of a request and returns the exit status: 0 only
/// when the guard's read-back state shows it in force.
fn report_answer(answer: &Answer) -> ExitCode {
    if answer.ok() {
        let key = format!("guard.done.{}", answer.action.as_str());
        println!("{}", tr_args(&key, &[("name", &answer.name())]));
        return ExitCode::SUCCESS;
    }
    eprintln!("kizuki: {}", answer.message(i18n::lang()));
    // The state as it really is, so nobody is left guessing.
    if let Some(s) = &answer.status {
        print_status(s);
    }
    ExitCode::from(1)
}

/// Asks the guard `req`, journals who changed what, and reports.
fn ask(
    opts: &setup::Options,
    link: &mut dyn GuardLink,
    req: &Request,
    sha: Option<&str>,
) -> ExitCode {
    let answer = judge(req, link.call(req));
    journal_action(opts, answer.journal(sha));
    report_answer(&answer)
}

pub(crate) fn mark(
    data: Option<PathBuf>,
    target: &str,
    mark: Mark,
    duration: Option<MarkFor>,
    record_only: bool,
) -> Result<ExitCode> {
    let dur = duration.unwrap_or(MarkFor::Always);
    if !duration_allowed(mark, dur) {
        eprintln!("kizuki: {}", tr("marks.err.timed"));
        return Ok(ExitCode::from(2));
    }
    if mark == Mark::Blocked && record_only {
        eprintln!("kizuki: {}", tr("guard.err.record_only_blocked"));
        return Ok(ExitCode::from(2));
    }
    let opts = options(data);
    let (exe, sha) = resolve(target)?;
    let marks = open_marks(&opts);
    let mut link = link(&opts, marks.clone());
    if mark == Mark::Blocked {
        // Blocks are the system's: the guard holds them, nothing of it is
        // written to the user's files.
        let req = Request::Block { exe };
        return Ok(ask(&opts, link.as_mut(), &req, Some(&sha)));
    }
    // Whether the guard blocks it, asked before the mark changes (the
    // local backend of Windows keeps its block list in the marks).
    let guard_state = if record_only {
        None
    } else {
        Some(link.status())
    };
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
    match guard_state {
        None => Ok(ExitCode::SUCCESS),
        Some(Ok(s)) if s.block(&exe).is_some() => {
            let req = Request::Unblock { exe };
            Ok(ask(&opts, link.as_mut(), &req, Some(&sha)))
        }
        // No guard: nothing is enforced, so nothing holds it.
        Some(Ok(_)) | Some(Err(LinkError::NotRunning { .. })) => Ok(ExitCode::SUCCESS),
        Some(Err(e)) => {
            eprintln!(
                "kizuki: {}",
                tr_args("guard.status.unreadable", &[("detail", &e.to_string())])
            );
            Ok(ExitCode::from(1))
        }
    }
}

pub(crate) fn firewall(data: Option<PathBuf>, action: &FirewallCommand) -> Result<ExitCode> {
    let opts = options(data);
    let marks = open_marks(&opts);
    let mut link = link(&opts, marks);
    let req = match action {
        FirewallCommand::Status | FirewallCommand::Apply { plan: None } => {
            return Ok(status(link.as_mut()));
        }
        FirewallCommand::Apply { plan: Some(file) } => {
            // The elevated side of the Windows UAC route.
            let plan = guard::local::apply_plan_file(file)?;
            let panic = tr(if plan.panic {
                "firewall.on"
            } else {
                "firewall.off"
            });
            println!(
                "{}",
                tr_args(
                    "firewall.applied_elevated",
                    &[
                        ("blocked", &plan.blocked.len().to_string()),
                        ("panic", &panic)
                    ]
                )
            );
            return Ok(ExitCode::SUCCESS);
        }
        FirewallCommand::Clear { .. } => Request::Clear,
        FirewallCommand::Panic => Request::Panic,
        FirewallCommand::Unpanic => Request::Resume,
    };
    Ok(ask(&opts, link.as_mut(), &req, None))
}

/// `kizuki firewall status`: what the guard reads back from the kernel.
/// Without a guard nothing is enforced, and that is said plainly.
fn status(link: &mut dyn GuardLink) -> ExitCode {
    match link.status() {
        Ok(s) => {
            print_status(&s);
            ExitCode::SUCCESS
        }
        Err(LinkError::NotRunning { .. }) => {
            println!("{}", tr("guard.status.no_guard"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "kizuki: {}",
                tr_args("guard.status.unreadable", &[("detail", &e.to_string())])
            );
            ExitCode::from(1)
        }
    }
}

fn pids(list: &[u32]) -> String {
    list.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_status(s: &GuardStatus) {
    println!("{}", tr("guard.status.title"));
    println!(
        "  {}",
        tr(if s.panic {
            "guard.status.panic_on"
        } else {
            "guard.status.panic_off"
        })
    );
    let catch = serde_json::to_value(s.exec_catch)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    println!("  {}", tr(&format!("guard.status.catch.{catch}")));
    if s.blocked.is_empty() {
        println!("  {}", tr("guard.status.none_blocked"));
    }
    for b in &s.blocked {
        let state = if s.blocks(&b.exe) {
            tr("guard.status.enforced")
        } else {
            tr("guard.status.not_enforced")
        };
        let mut line = format!("  {}: {state}", shown(&b.exe));
        if !b.pids_blocked.is_empty() {
            line.push_str(&format!(
                "; {}",
                tr_args("guard.status.pids", &[("pids", &pids(&b.pids_blocked))])
            ));
        }
        if !b.pids_outside.is_empty() {
            line.push_str(&format!(
                "; {}",
                tr_args("guard.status.outside", &[("pids", &pids(&b.pids_outside))])
            ));
        }
        println!("{line}");
    }
    for p in &s.problems {
        println!(
            "  {}",
            tr_args("guard.status.problem", &[("detail", &for_display(p))])
        );
    }
}
