//! Command-line parsing and the subcommands of docs/CLI.md. Logic lives in
//! the library; this file turns arguments into calls and results into text.

mod autostart;
mod errors;
mod history;
mod json_fast;
mod mark;
pub mod output;
mod timing;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use crate::clock::{Clock, SystemClock};
use crate::i18n::{self, Lang, tr, tr_args};
use crate::marks::MarkFor;
use crate::model::{Mark, Snapshot};
use crate::monitor::{DEFAULT_INTERVAL, MonitorCore};
use crate::platform::paths;
use crate::{consult, report, setup};

#[derive(Debug, Parser)]
#[command(
    name = "kizuki",
    version,
    about = "気づき kizuki — see every program and whom it talks to",
    long_about = None
)]
pub struct Cli {
    /// Folder for marks, settings, the journal and reports
    /// (default: $KIZUKI_DATA_DIR, else the platform's data folder).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Language of messages: ja or en (default: from the locale).
    #[arg(long, global = true, value_name = "LANG")]
    pub lang: Option<LangArg>,

    /// Start hidden in the tray (for autostart).
    #[arg(long)]
    pub minimized: bool,

    /// Let the window run as administrator (root); it refuses otherwise.
    /// KIZUKI_ALLOW_ROOT=1 does the same.
    #[arg(long)]
    pub allow_root: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One snapshot: programs, their connections, marks and findings.
    Scan {
        /// Print JSON (see docs/CLI.md) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Sample for N seconds, then print every connection and finding seen.
    Watch {
        #[arg(long, default_value_t = 10, value_name = "N")]
        seconds: u64,
        #[arg(long)]
        json: bool,
        /// Sampling interval in milliseconds (default: the app's interval).
        #[arg(long, value_name = "MS", hide = true)]
        interval_ms: Option<u64>,
    },
    /// Record your decision about a program: trusted, unknown or blocked
    /// (blocked is enforced in the firewall where kizuki can).
    Mark {
        /// The program's executable path, or the PID of a running process
        /// (write ./1234 for a file named 1234).
        target: String,
        mark: MarkArg,
        /// How long trust lasts: 1h, restart (until the computer restarts)
        /// or always. Only for trusted.
        #[arg(long = "for", value_name = "DURATION")]
        duration: Option<ForArg>,
        /// Only record the mark; leave the firewall as it is.
        #[arg(long)]
        record_only: bool,
    },
    /// The firewall: what is enforced, and changing it.
    Firewall {
        #[command(subcommand)]
        action: FirewallCommand,
    },
    /// Write a suspicious-program report and print its path.
    Report {
        /// The program: the PID of one of its processes, or its executable's path.
        #[arg(value_name = "EXE-PATH or PID")]
        target: String,
        #[arg(long, value_enum, default_value_t = FormatArg::Md)]
        format: FormatArg,
        /// Write to this file instead of the reports folder.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Replace the --out file when it already exists.
        #[arg(long, requires = "out")]
        force: bool,
        /// Also save a read-only, non-executable copy of the program file
        /// next to the report (only with the user's consent).
        #[arg(long)]
        evidence_copy: bool,
        /// Put the computer's name into the report.
        #[arg(long)]
        include_hostname: bool,
    },
    /// The consultation contacts and the walk-through (language: --lang).
    Contacts {
        #[arg(long)]
        json: bool,
    },
    /// Connection history from the evidence journal; `history verify`
    /// checks that it was not altered.
    History(history::HistoryArgs),
    /// Start kizuki when you log in: on, off or status.
    Autostart {
        #[command(subcommand)]
        action: autostart::AutostartCommand,
    },
    /// The privileged service that enforces blocks and the panic button
    /// (root, Linux; runs in the foreground — systemd starts it at boot).
    /// State: $KIZUKI_STATE_DIR (default /var/lib/kizuki); socket:
    /// $KIZUKI_GUARD_SOCKET (default /run/kizuki/guard.sock).
    Guard,
}

/// `--lang`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LangArg {
    Ja,
    En,
}

impl From<LangArg> for Lang {
    fn from(l: LangArg) -> Lang {
        match l {
            LangArg::Ja => Lang::Ja,
            LangArg::En => Lang::En,
        }
    }
}

/// `kizuki mark PROGRAM <MARK>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MarkArg {
    Trusted,
    Unknown,
    Blocked,
}

impl From<MarkArg> for Mark {
    fn from(m: MarkArg) -> Mark {
        match m {
            MarkArg::Trusted => Mark::Trusted,
            MarkArg::Unknown => Mark::Unknown,
            MarkArg::Blocked => Mark::Blocked,
        }
    }
}

/// `kizuki mark … --for <DURATION>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ForArg {
    #[value(name = "1h")]
    Hour,
    Restart,
    Always,
}

impl From<ForArg> for MarkFor {
    fn from(f: ForArg) -> MarkFor {
        match f {
            ForArg::Hour => MarkFor::Hour,
            ForArg::Restart => MarkFor::Restart,
            ForArg::Always => MarkFor::Always,
        }
    }
}

/// `kizuki report … --format <FORMAT>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Md,
    Html,
    Json,
}

impl From<FormatArg> for report::Format {
    fn from(f: FormatArg) -> report::Format {
        match f {
            FormatArg::Md => report::Format::Markdown,
            FormatArg::Html => report::Format::Html,
            FormatArg::Json => report::Format::Json,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum FirewallCommand {
    /// What is recorded and what is really enforced.
    Status,
    /// Make the firewall match the marks (stale rules go).
    Apply {
        /// Apply this plan file instead (Windows: the elevated side of the
        /// UAC prompt; refused on Linux, where the guard enforces).
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
    },
    /// Remove every rule kizuki added (marks are kept).
    Clear {
        /// Only the system side (the elevated side on Windows).
        #[arg(long, hide = true)]
        system_only: bool,
    },
    /// Stop all network traffic except this computer's own loopback.
    Panic,
    /// Undo the panic button.
    Unpanic,
}

/// Parses arguments and runs; the binary's `main` is only this.
pub fn main() -> ExitCode {
    // Paths may not be UTF-8: clap gets the arguments as they are; only
    // the language is read from a lossy copy.
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let cli = match Cli::try_parse_from(std::env::args_os()) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            // The common mistakes in the user's language.
            match errors::localized(&e, errors::lang_of_args(&args)) {
                Some(text) => eprintln!("kizuki: {text}"),
                None => {
                    let _ = e.print();
                }
            }
            return ExitCode::from(code);
        }
    };
    i18n::set_lang(cli.lang.map(Lang::from).unwrap_or_else(i18n::detect_lang));
    // A subcommand's warnings go to the terminal; the window logs to its file.
    if cli.command.is_some() {
        crate::logfile::init_stderr();
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One line that says what went wrong and, in the chain, why.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("kizuki: {msg}");
            ExitCode::from(1)
        }
    }
}

fn data_dir(cli: &Cli) -> Option<PathBuf> {
    let d = paths::data_dir(cli.data_dir.clone())?;
    match std::fs::create_dir_all(&d) {
        Ok(()) => Some(d),
        Err(e) => {
            eprintln!("kizuki: {}: {e}", d.display());
            None
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    // The guard (root) never makes or reads a user's data folder.
    if matches!(cli.command, Some(Command::Guard)) {
        return crate::guard::run().map(|()| ExitCode::SUCCESS);
    }
    let data = data_dir(&cli);
    match &cli.command {
        None => {
            crate::ui::run(crate::ui::Launch {
                data_dir: data,
                minimized: cli.minimized,
                allow_root: crate::ui::root_allowed(cli.allow_root),
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Scan { json }) => {
            let opts = setup::Options {
                data_dir: data,
                interval: DEFAULT_INTERVAL,
                record: false,
            };
            let mut phases = timing::Phases::start();
            // The language's catalog is read while the guard answers (the
            // output's capture note needs it).
            let _ = std::thread::Builder::new()
                .name("kizuki-i18n".into())
                .spawn(|| drop(tr("scan.incomplete")));
            let marks = open_marks(&opts);
            let (blocks, asking) = setup::guard_blocks_ahead(&opts, marks.clone());
            phases.mark("marks");
            let mut core =
                setup::native_monitor_with(&opts, marks, blocks).context(tr("err.probe"))?;
            // One tick, then the process ends: nothing is freed piece by piece.
            core.keep_ticks();
            if let Some(h) = asking {
                let _ = h.join();
            }
            phases.mark("monitor (and the guard's first sample and blocks)");
            let snap = core.tick().context(tr("err.probe"))?;
            phases.mark("tick");
            core.save();
            history::report_warnings(opts.data_dir.as_deref());
            phases.mark("save and warnings");
            print_snapshot(&snap, *json)?;
            phases.mark("output");
            // Printed: the process ends now, and freeing ten thousand
            // connections one by one (in the snapshot and in the monitor's
            // sessions) is wasted time. The stages saved in `core.save()`
            // above; the monitor holds no thread that must be joined
            // (a one-shot look starts no name capture).
            std::mem::forget(core);
            std::mem::forget(snap);
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Watch {
            seconds,
            json,
            interval_ms,
        }) => {
            let interval = interval_ms
                .map(Duration::from_millis)
                .unwrap_or(DEFAULT_INTERVAL);
            let window = Duration::from_secs(*seconds);
            let opts = setup::Options {
                data_dir: data,
                interval,
                record: true,
            };
            let marks = open_marks(&opts);
            let blocks = setup::guard_blocks_now(&opts, marks.clone());
            setup::prewarm_geo();
            let core = setup::native_monitor_with(&opts, marks, blocks)
                .context(tr("err.probe"))?
                // Keep every connection of the window, however short.
                .with_retention(window + Duration::from_secs(3600));
            let snap = watch(core, window)?;
            history::report_warnings(opts.data_dir.as_deref());
            print_snapshot(&snap, *json)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Mark {
            target,
            mark,
            duration,
            record_only,
        }) => mark::mark(
            data,
            target,
            (*mark).into(),
            duration.map(MarkFor::from),
            *record_only,
        ),
        Some(Command::Firewall { action }) => mark::firewall(data, action),
        Some(Command::Report {
            target,
            format,
            out,
            force,
            evidence_copy,
            include_hostname,
        }) => {
            let format = report::Format::from(*format);
            run_report(
                data,
                target,
                format,
                out.clone().map(|o| (o, *force)),
                *evidence_copy,
                *include_hostname,
            )
        }
        Some(Command::Contacts { json }) => run_contacts(data.as_deref(), *json),
        Some(Command::History(args)) => history::run(args, data.as_deref()),
        Some(Command::Autostart { action }) => autostart::autostart(action),
        Some(Command::Guard) => crate::guard::run().map(|()| ExitCode::SUCCESS),
    }
}

/// `kizuki report`: one snapshot, find the program, write the report.
fn run_report(
    data: Option<PathBuf>,
    target: &str,
    format: report::Format,
    out: Option<(PathBuf, bool)>,
    evidence_copy: bool,
    include_hostname: bool,
) -> Result<ExitCode> {
    let (out, force) = match out {
        Some((o, f)) => (Some(o), f),
        None => (None, false),
    };
    let reports_dir = match (&data, &out) {
        (Some(d), _) => report::default_reports_dir(d),
        (None, Some(_)) => PathBuf::from("."),
        (None, None) => anyhow::bail!(tr("err.data_dir")),
    };
    let opts = setup::Options {
        data_dir: data,
        interval: DEFAULT_INTERVAL,
        record: false,
    };
    let mut core = setup::native_monitor(&opts).context(tr("err.probe"))?;
    let snap = core.tick().context(tr("err.probe"))?;
    core.save();
    let Some(program) = report::find_program(&snap, target) else {
        anyhow::bail!(tr_args("report.not_found", &[("target", target)]));
    };
    let mut options = report::ReportOptions::new(reports_dir, SystemClock.now());
    options.format = format;
    options.out = out;
    options.force = force;
    options.evidence_copy = evidence_copy;
    options.include_hostname = include_hostname;
    options.extras.parent_chains = report::parent_chains(&snap, program);
    if let (Some(d), Some(exe)) = (&opts.data_dir, &program.exe) {
        options.extras.journal_connections = crate::journal::recorded_connections(d, exe, 5000);
    }
    let files = report::write_report(program, &options)?;
    if let Some(e) = &files.content.evidence_error {
        eprintln!(
            "kizuki: {}",
            tr_args("report.evidence.failed", &[("error", e)])
        );
    }
    if let Some(p) = &files.evidence {
        eprintln!(
            "kizuki: {}",
            tr_args(
                "report.evidence_saved",
                &[("path", &p.display().to_string())]
            )
        );
    }
    write_stdout(&format!("{}\n", files.report.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// `kizuki contacts`: the built-in contacts, or the data folder's override.
fn run_contacts(data: Option<&std::path::Path>, json: bool) -> Result<ExitCode> {
    let (contacts, err) = consult::Contacts::load_or_builtin(data);
    if let Some(e) = err {
        eprintln!("kizuki: {e}");
    }
    let lang = i18n::lang();
    let text = if json {
        let mut s = serde_json::to_string_pretty(&consult::contacts_json(&contacts, lang))?;
        s.push('\n');
        s
    } else {
        consult::contacts_text(&contacts, lang)
    };
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn write_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("stdout"),
    }
}

/// The data folder's marks, with any problem reported on stderr.
fn open_marks(opts: &setup::Options) -> std::sync::Arc<crate::marks::MarkStore> {
    let marks = setup::open_marks(opts);
    for w in marks.take_warnings() {
        eprintln!("kizuki: {}", w.message());
    }
    marks
}

/// Samples at the core's interval until `window` has passed.
fn watch(mut core: MonitorCore, window: Duration) -> Result<Snapshot> {
    let start = Instant::now();
    let mut snap = core.tick().context(tr("err.probe"))?;
    loop {
        let next = Instant::now() + core.interval();
        if next.duration_since(start) > window {
            break;
        }
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        snap = core.tick().context(tr("err.probe"))?;
    }
    core.save();
    Ok(snap)
}

fn print_snapshot(snap: &Snapshot, json: bool) -> Result<()> {
    if !snap.complete {
        eprintln!("kizuki: {}", tr("scan.incomplete"));
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let written = if json {
        // Pretty for a person at a terminal; compact for programs (a busy
        // machine's snapshot is megabytes, written as it is made).
        let pretty = std::io::IsTerminal::is_terminal(&std::io::stdout());
        output::write_snapshot_json(snap, &mut out, pretty)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
    } else {
        let mut s = output::snapshot_table(snap);
        s.push_str(&output::capture_note(snap));
        s.push('\n');
        out.write_all(s.as_bytes())
    };
    match written.and_then(|()| out.flush()) {
        // A closed pipe (`kizuki scan | head`) is the reader's choice.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("stdout"),
    }
}
