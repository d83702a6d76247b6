//! Command-line parsing and the subcommands of CONTRACT.md. Logic lives in
//! the library; this file turns arguments into calls and results into text.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::i18n::{self, Lang, tr};
use crate::model::Snapshot;
use crate::monitor::{DEFAULT_INTERVAL, MonitorCore};
use crate::{output, paths, setup};

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
    #[arg(long, global = true, value_name = "LANG", value_parser = ["ja", "en"])]
    pub lang: Option<String>,

    /// Start hidden in the tray (for autostart).
    #[arg(long)]
    pub minimized: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One snapshot: programs, their connections, marks and findings.
    Scan {
        /// Print JSON (see CONTRACT.md) instead of a table.
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
    /// Connection history from the evidence journal; `history verify`
    /// checks that it was not altered.
    History(crate::journal::command::HistoryArgs),
}

/// Parses arguments and runs; the binary's `main` is only this.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    i18n::set_lang(
        cli.lang
            .as_deref()
            .and_then(Lang::parse)
            .unwrap_or_else(i18n::detect_lang),
    );
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
    let data = data_dir(&cli);
    match &cli.command {
        None => {
            crate::ui::run(crate::ui::Launch {
                data_dir: data,
                minimized: cli.minimized,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Scan { json }) => {
            let opts = setup::Options {
                data_dir: data,
                interval: DEFAULT_INTERVAL,
            };
            let mut core = setup::native_monitor(&opts).context(tr("err.probe"))?;
            let snap = core.tick().context(tr("err.probe"))?;
            core.save();
            crate::journal::command::report_warnings(opts.data_dir.as_deref());
            print_snapshot(&snap, *json)?;
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
            };
            let core = setup::native_monitor(&opts)
                .context(tr("err.probe"))?
                // Keep every connection of the window, however short.
                .with_retention(window + Duration::from_secs(3600));
            let snap = watch(core, window)?;
            crate::journal::command::report_warnings(opts.data_dir.as_deref());
            print_snapshot(&snap, *json)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::History(args)) => crate::journal::command::run(args, data.as_deref()),
    }
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
    let mut out = std::io::stdout().lock();
    let text = if json {
        let mut s = serde_json::to_string_pretty(&output::snapshot_json(snap))?;
        s.push('\n');
        s
    } else {
        let mut s = output::snapshot_table(snap);
        s.push_str(&tr("scan.polling_note"));
        s.push('\n');
        s
    };
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        // A closed pipe (`kizuki scan | head`) is the reader's choice.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("stdout"),
    }
}
