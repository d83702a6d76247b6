//! `kizuki history …`: the command-line edge of the journal (anyhow here,
//! the library below returns [`crate::journal::JournalError`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use crate::clock::{Clock, SystemClock};
use crate::escape::os_lossless;
use crate::i18n::{tr, tr_args};
use crate::journal::render;
use crate::journal::{Journal, JournalError, SessionQuery, live_handle, parse_since, path_in};

#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub action: Option<HistoryAction>,

    /// Only this executable (its path as `scan` shows it).
    #[arg(long, value_name = "PATH")]
    pub exe: Option<PathBuf>,

    /// Only what began at or after TIME: RFC 3339 (2026-11-25T12:00:00Z),
    /// a date (2026-11-25, UTC), or an age: 90m, 2h, 3d, 1w.
    #[arg(long, value_name = "TIME", value_parser = since_arg)]
    pub since: Option<SystemTime>,

    /// Print JSON: {"head", "sessions": [...], "events": [...]}.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,

    /// Print sessions as CSV (safe to open in a spreadsheet).
    #[arg(long)]
    pub csv: bool,

    /// Show your own journal (in your data folder) even when the guard
    /// answers.
    #[arg(long, global = true)]
    pub local: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum HistoryAction {
    /// Check that no record was changed, inserted or deleted; exit 1 if so.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Print the head hash (write it down, or keep it elsewhere).
    Head {
        #[arg(long)]
        json: bool,
    },
    /// Delete records older than the retention period (default 180 days).
    Prune {
        /// Set the retention period (kept for later runs) before pruning.
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..))]
        retention_days: Option<u32>,
    },
    /// Write synthetic sessions as fast as possible (crash tests).
    #[command(hide = true)]
    Stress {
        #[arg(long, value_name = "N")]
        seconds: Option<u64>,
    },
}

/// Bad `--since` values are usage errors (exit 2), caught by clap.
fn since_arg(s: &str) -> std::result::Result<SystemTime, String> {
    parse_since(s, SystemClock.now()).ok_or_else(|| tr_args("journal.err.since", &[("value", s)]))
}

fn out(text: &str) -> Result<()> {
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|_| o.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("stdout"),
    }
}

fn open(path: &Path) -> Result<Journal> {
    Journal::open_existing(path).map_err(|e| match e {
        JournalError::Missing(_) => anyhow::anyhow!(tr_args(
            "journal.err.missing",
            &[("path", &os_lossless(path.as_os_str()))]
        )),
        // These sentences name the file and the cause already.
        e @ (JournalError::NotKizuki(_) | JournalError::Emptied { .. }) => {
            anyhow::anyhow!(e.to_string())
        }
        e => anyhow::Error::new(e).context(tr_args(
            "journal.err.open",
            &[("path", &os_lossless(path.as_os_str()))],
        )),
    })
}

/// Runs `kizuki history`: the guard's journal when the guard answers
/// (and `--local` was not given), else the journal in `data_dir`.
pub fn run(args: &HistoryArgs, data_dir: Option<&Path>) -> Result<ExitCode> {
    let asks_guard = matches!(
        args.action,
        None | Some(HistoryAction::Verify { .. } | HistoryAction::Head { .. })
    );
    if asks_guard && !args.local {
        match from_guard(args, &mut crate::journal::guarded::link())? {
            Ok(code) => return Ok(code),
            Err(crate::journal::guarded::NotShown::NoGuard) => {}
            Err(crate::journal::guarded::NotShown::Failed(detail)) => {
                eprintln!(
                    "kizuki: {}",
                    tr_args("gjournal.err.guard", &[("detail", &detail)])
                );
            }
        }
    }
    let Some(dir) = data_dir else {
        bail!(tr("err.data_dir"));
    };
    let path = path_in(dir);
    if asks_guard && !args.local {
        eprintln!(
            "kizuki: {}",
            tr_args(
                "gjournal.source.user",
                &[("path", &os_lossless(path.as_os_str()))]
            )
        );
    }
    let clock = SystemClock;
    match &args.action {
        Some(HistoryAction::Verify { json }) => {
            let report = open(&path)?.verify().context(tr("journal.err.verify"))?;
            if *json {
                let mut s = serde_json::to_string_pretty(&render::verify_json(&report))?;
                s.push('\n');
                out(&s)?;
            }
            match &report.first_bad {
                None => {
                    if !*json {
                        out(&format!(
                            "{}\n",
                            tr_args(
                                "journal.verify.ok",
                                &[
                                    ("records", &report.records.to_string()),
                                    (
                                        "id",
                                        &report.head.id.map(|i| i.to_string()).unwrap_or_default()
                                    ),
                                    ("hash", &report.head.hash),
                                ],
                            )
                        ))?;
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Some(bad) => {
                    eprintln!("kizuki: {}", render::bad_record_text(bad));
                    Ok(ExitCode::from(1))
                }
            }
        }
        Some(HistoryAction::Head { json }) => {
            let head = open(&path)?.head()?;
            print_head(&head, *json)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(HistoryAction::Prune { retention_days }) => {
            let (mut j, warnings) = Journal::open(&path, clock.now())?;
            print_warnings(&warnings);
            if let Some(d) = retention_days {
                j.set_retention_days(*d)?;
            }
            let days = j.retention_days()?;
            let r = j.prune(
                clock.now(),
                Duration::from_secs(u64::from(days) * 86_400),
                None,
            )?;
            out(&format!(
                "{}\n",
                tr_args(
                    "journal.pruned",
                    &[
                        ("count", &r.removed.to_string()),
                        ("days", &days.to_string())
                    ]
                )
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Some(HistoryAction::Stress { seconds }) => {
            stress(dir, seconds.map(Duration::from_secs))?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            if !path.exists() {
                eprintln!(
                    "kizuki: {}",
                    tr_args(
                        "journal.err.missing",
                        &[("path", &os_lossless(path.as_os_str()))]
                    )
                );
            }
            let since = args.since;
            let q = SessionQuery {
                exe: args.exe.as_ref().map(|e| os_lossless(e.as_os_str())),
                since,
                limit: None,
            };
            let (sessions, events, head) = if path.exists() {
                let j = open(&path)?;
                (j.sessions(&q)?, j.events(&q)?, j.head()?)
            } else {
                (
                    Vec::new(),
                    Vec::new(),
                    crate::journal::Head {
                        id: None,
                        at: None,
                        hash: crate::identity::hex(&crate::journal::chain::GENESIS),
                    },
                )
            };
            let text = if args.json {
                let mut s =
                    serde_json::to_string_pretty(&render::history_json(&sessions, &events, &head))?;
                s.push('\n');
                s
            } else if args.csv {
                render::sessions_csv(&sessions)
            } else {
                render::history_table(&sessions, &events)
            };
            out(&text)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `history`, `history verify` and `history head` answered by the guard.
fn from_guard(
    args: &HistoryArgs,
    link: &mut dyn crate::guard::client::GuardLink,
) -> Result<std::result::Result<ExitCode, crate::journal::guarded::NotShown>> {
    use crate::journal::guarded;
    match &args.action {
        Some(HistoryAction::Verify { json }) => {
            let v = match guarded::verify(link) {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            eprintln!("kizuki: {}", tr("gjournal.source.guard"));
            let report = v.report();
            if *json {
                let mut j = render::verify_json(&report);
                j["source"] = serde_json::json!("guard");
                j["recoveries"] = serde_json::to_value(&v.recoveries)?;
                out(&format!("{}\n", serde_json::to_string_pretty(&j)?))?;
            } else if report.intact() {
                out(&format!(
                    "{}\n",
                    tr_args(
                        "journal.verify.ok",
                        &[
                            ("records", &report.records.to_string()),
                            (
                                "id",
                                &report.head.id.map(|i| i.to_string()).unwrap_or_default()
                            ),
                            ("hash", &report.head.hash),
                        ],
                    )
                ))?;
            }
            if !*json {
                for line in guarded::recovery_lines(&v) {
                    out(&format!("{line}\n"))?;
                }
            }
            Ok(Ok(match &report.first_bad {
                None => ExitCode::SUCCESS,
                Some(bad) => {
                    eprintln!("kizuki: {}", render::bad_record_text(bad));
                    ExitCode::from(1)
                }
            }))
        }
        Some(HistoryAction::Head { json }) => {
            let reply = link.call(&crate::guard::api::Request::History {
                query: crate::guard::history::HistoryQuery {
                    limit: Some(1),
                    ..Default::default()
                },
            });
            let head = match reply {
                Ok(crate::guard::api::Reply::History { page }) => page.head.head(),
                Err(crate::guard::client::LinkError::NotRunning { .. }) => {
                    return Ok(Err(guarded::NotShown::NoGuard));
                }
                Ok(other) => return Ok(Err(guarded::NotShown::Failed(format!("{other:?}")))),
                Err(e) => return Ok(Err(guarded::NotShown::Failed(e.to_string()))),
            };
            eprintln!("kizuki: {}", tr("gjournal.source.guard"));
            print_head(&head, *json)?;
            Ok(Ok(ExitCode::SUCCESS))
        }
        _ => {
            let h = match guarded::history(
                link,
                args.exe.as_ref().map(|e| os_lossless(e.as_os_str())),
                args.since.map(crate::journal::to_millis),
                guarded::MAX_ROWS,
            ) {
                Ok(h) => h,
                Err(e) => return Ok(Err(e)),
            };
            eprintln!("kizuki: {}", guarded::source_note(h.scope));
            if h.truncated {
                eprintln!(
                    "kizuki: {}",
                    tr_args(
                        "gjournal.more",
                        &[("count", &guarded::MAX_ROWS.to_string())]
                    )
                );
            }
            let text = if args.json {
                let mut j = render::history_json(&h.sessions, &h.events, &h.head);
                j["source"] = serde_json::json!("guard");
                j["scope"] = serde_json::to_value(h.scope)?;
                let mut s = serde_json::to_string_pretty(&j)?;
                s.push('\n');
                s
            } else if args.csv {
                render::sessions_csv(&h.sessions)
            } else {
                render::history_table(&h.sessions, &h.events)
            };
            out(&text)?;
            Ok(Ok(ExitCode::SUCCESS))
        }
    }
}

fn print_head(head: &crate::journal::Head, json: bool) -> Result<()> {
    if json {
        out(&format!("{}\n", render::head_json(head)))
    } else {
        out(&format!(
            "{} #{} {}\n",
            head.hash,
            head.id.map(|i| i.to_string()).unwrap_or_default(),
            head.at.map(crate::clock::rfc3339).unwrap_or_default()
        ))
    }
}

fn print_warnings(w: &[crate::journal::JournalWarning]) {
    for w in w {
        eprintln!("kizuki: {}", w.message());
    }
}

/// After `scan` or `watch`: tells the user what went wrong with the
/// journal (moved aside, disk full, drops), on stderr.
pub fn report_warnings(data_dir: Option<&Path>) {
    if let Some(h) = data_dir.and_then(|d| live_handle(&path_in(d))) {
        print_warnings(&h.status().all_warnings());
    }
}

/// The hidden `history stress`: a monitor over a fake machine whose
/// connections all change every tick, journaled as fast as the writer
/// takes them, until killed or `limit` passes.
fn stress(dir: &Path, limit: Option<Duration>) -> Result<()> {
    use crate::identity::FakeHasher;
    use crate::model::{RawProcess, RawSample, RawSocket};
    use crate::monitor::MonitorCore;
    use crate::probe::FakeProbe;

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let probe = FakeProbe::new(Vec::new());
    let mut core = MonitorCore::new(
        Box::new(probe.clone()),
        Box::new(FakeHasher::default()),
        clock.clone(),
        Duration::from_millis(1),
    )
    .with_retention(Duration::from_secs(5));
    core.add_stage(Box::new(crate::journal::JournalStage::open(
        dir,
        clock.clone(),
    )));
    let started = std::time::Instant::now();
    let procs: Vec<RawProcess> = (0..40)
        .map(|i| RawProcess::fake(1000 + i, &format!("/usr/bin/stress-{i}")))
        .collect();
    let mut port: u32 = 0;
    while limit.is_none_or(|l| started.elapsed() < l) {
        let sockets: Vec<RawSocket> = (0..200u32)
            .map(|i| {
                port = (port + 1) % 60_000;
                RawSocket::tcp(
                    1000 + i % 40,
                    &format!("10.0.0.2:{}", 1024 + port),
                    "203.0.113.7:443",
                )
            })
            .collect();
        probe.push(RawSample::of(procs.clone(), sockets));
        core.tick().context("stress tick")?;
        std::thread::sleep(Duration::from_millis(2));
    }
    core.save();
    Ok(())
}
