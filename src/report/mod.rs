//! The one-click suspicious-program report: what a consultation desk needs
//! about one program, saved as Markdown (default), HTML or JSON in the
//! reports folder, optionally with an evidence copy of the program file.
//!
//! [`Report::build`] gathers (pure), the renderers format, and
//! [`write_report`] does the I/O: machine info, file size, evidence copy,
//! atomic write.

mod data;
pub mod evidence;
pub mod fmt;
mod html;
pub mod machine;
mod markdown;
mod rows;
mod summary;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use data::{
    ActionTaken, ConnectionPart, ConnectionSource, EvidencePart, Extras, FindingPart, ProcessLink,
    ProcessPart, ProgramPart, Report, SCHEMA, Summaries, explanation,
};
pub use evidence::{EvidenceCopy, EvidenceError, sanitize_name};
pub use machine::MachineInfo;

use crate::fsutil;
use crate::i18n::{Lang, tr_in};
use crate::model::{Program, Snapshot};

/// Folder name for reports inside the data folder.
pub const REPORTS_DIR: &str = "reports";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("could not write the report ({}): {}", crate::fsutil::describe_io(.source), .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not format the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// `--out` names an existing file and `--force` was not given.
    #[error("{}", crate::i18n::tr_args("reportfile.out_exists", &[("path", &crate::escape::os_lossless(.0.as_os_str()))]))]
    Exists(PathBuf),
    /// `--out` names a file in a folder that does not exist.
    #[error("{}", crate::i18n::tr_args("reportfile.out_no_folder", &[("path", &crate::escape::os_lossless(.0.as_os_str()))]))]
    NoFolder(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Markdown,
    Html,
    Json,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Markdown => "md",
            Format::Html => "html",
            Format::Json => "json",
        }
    }
}

/// The default reports folder inside the data folder.
pub fn default_reports_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(REPORTS_DIR)
}

/// What to put in a report and where to save it.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub format: Format,
    pub lang: Lang,
    /// When the report is written (from the app's clock).
    pub now: SystemTime,
    /// Where reports go when `out` is not given.
    pub reports_dir: PathBuf,
    /// An exact file to write ("save as…").
    pub out: Option<PathBuf>,
    /// Replace an existing `out` file (`--force`; a save dialog that
    /// already asked the user). Without it an existing file is refused.
    pub force: bool,
    /// The user allowed the computer's name in the report.
    pub include_hostname: bool,
    /// The user agreed to an evidence copy of the program file.
    pub evidence_copy: bool,
    pub extras: Extras,
    /// Machine info to use instead of reading this machine's (tests).
    pub machine: Option<MachineInfo>,
}

impl ReportOptions {
    /// Markdown in the current language into `reports_dir`, nothing extra.
    pub fn new(reports_dir: PathBuf, now: SystemTime) -> Self {
        ReportOptions {
            format: Format::Markdown,
            lang: crate::i18n::lang(),
            now,
            reports_dir,
            out: None,
            force: false,
            include_hostname: false,
            evidence_copy: false,
            extras: Extras::default(),
            machine: None,
        }
    }
}

/// What [`write_report`] made.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    pub report: PathBuf,
    pub evidence: Option<PathBuf>,
    /// The content, for "copy summary" and the consultation steps.
    pub content: Report,
}

impl ReportFiles {
    /// The folder holding the report (for "open folder").
    pub fn folder(&self) -> PathBuf {
        self.report
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

/// The label of a user action id (`mark_blocked`, `suspend`, …); an
/// unknown id shows itself.
pub fn action_label(action: &str, lang: Lang) -> String {
    let key = format!("report.action.{action}");
    let text = tr_in(lang, &key);
    if text == key {
        action.to_string()
    } else {
        text
    }
}

/// Formats a report.
pub fn render(report: &Report, format: Format) -> Result<String, ReportError> {
    Ok(match format {
        Format::Markdown => markdown::render(report),
        Format::Html => html::render(report),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(report)?;
            s.push('\n');
            s
        }
    })
}

/// `kizuki-report-<UTC time>-<program>.<ext>`, unique in `dir`.
pub fn report_path(dir: &Path, program: &Program, now: SystemTime, format: Format) -> PathBuf {
    let base = format!(
        "kizuki-report-{}-{}",
        fmt::file_stamp(now),
        sanitize_name(&program.name, 40)
    );
    let ext = format.extension();
    let mut path = dir.join(format!("{base}.{ext}"));
    let mut n = 2;
    while path.exists() {
        path = dir.join(format!("{base}-{n}.{ext}"));
        n += 1;
    }
    path
}

/// The size of the program's file: through the running image when there
/// is one (works after deletion), else the path.
fn file_size(program: &Program) -> Option<u64> {
    let exe = program.exe.as_ref()?;
    program
        .processes
        .iter()
        .filter(|p| p.alive)
        .map(|p| crate::identity::image_path(p.pid, exe))
        .chain(std::iter::once(exe.clone()))
        .find_map(|p| std::fs::metadata(p).ok().map(|m| m.len()))
}

/// Copies the running image next to the report and records it.
fn add_evidence(report: &mut Report, program: &Program, dir: &Path) -> Option<PathBuf> {
    let result = program
        .processes
        .iter()
        .find(|p| p.alive)
        .zip(program.exe.as_ref())
        .ok_or(EvidenceError::NotRunning)
        .and_then(|(p, exe)| {
            evidence::copy_image(&crate::identity::image_path(p.pid, exe), &program.name, dir)
        });
    match result {
        Ok(copy) => {
            report.evidence = Some(EvidencePart {
                file: copy
                    .path
                    .file_name()
                    .map(crate::escape::os_lossless)
                    .unwrap_or_default(),
                matches_program: program.sha256.as_deref() == Some(copy.sha256.as_str()),
                sha256: copy.sha256,
                size: copy.size,
            });
            Some(copy.path)
        }
        Err(e) => {
            report.evidence_error = Some(e.to_string());
            None
        }
    }
}

/// Gathers, renders and saves a report about `program`. An evidence copy
/// that fails does not stop the report: the reason is written into it.
pub fn write_report(
    program: &Program,
    options: &ReportOptions,
) -> Result<ReportFiles, ReportError> {
    let machine = options
        .machine
        .clone()
        .unwrap_or_else(|| machine::detect(options.include_hostname));
    let mut extras = options.extras.clone();
    if extras.file_size.is_none() {
        extras.file_size = file_size(program);
    }
    if extras.downloaded_from.is_none() {
        extras.downloaded_from = program
            .exe
            .as_deref()
            .and_then(crate::platform::provenance::of_file)
            .and_then(|p| p.host_url.or(p.referrer_url));
    }
    let mut report = Report::build(program, &extras, machine, options.now, options.lang);
    if !options.include_hostname {
        report.machine.hostname = None;
    }
    let path = match &options.out {
        Some(p) => p.clone(),
        None => report_path(&options.reports_dir, program, options.now, options.format),
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    // A path the user gave is checked before anything is written: an
    // existing file is not replaced without --force, no folder is created.
    if options.out.is_some() {
        if !dir.is_dir() {
            return Err(ReportError::NoFolder(path));
        }
        if path.symlink_metadata().is_ok() && !options.force {
            return Err(ReportError::Exists(path));
        }
    }
    let evidence = if options.evidence_copy {
        let e = add_evidence(&mut report, program, &dir);
        report.refresh_summary();
        e
    } else {
        None
    };
    let text = render(&report, options.format)?;
    let written = if options.out.is_some() {
        fsutil::write_atomic_in_existing(&path, text.as_bytes())
    } else {
        fsutil::write_atomic(&path, text.as_bytes())
    };
    written.map_err(|source| ReportError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(ReportFiles {
        report: path,
        evidence,
        content: report,
    })
}

/// The desk summary of `program` in `lang`, with this machine's OS and the
/// current time: what "copy summary" and `mailto:` bodies hold before a
/// report was saved.
pub fn summary_text(program: &Program, lang: Lang) -> String {
    let report = Report::build(
        program,
        &Extras::default(),
        machine::detect(false),
        SystemTime::now(),
        lang,
    );
    report.summary_in(lang).to_string()
}

/// Each process's ancestry, from the processes of every program in
/// `snapshot` (parents are usually other programs: a shell, a browser).
pub fn parent_chains(snapshot: &Snapshot, program: &Program) -> BTreeMap<u32, Vec<ProcessLink>> {
    let mut procs: BTreeMap<u32, (Option<u32>, &str)> = BTreeMap::new();
    for p in &snapshot.programs {
        for x in p.processes.iter().filter(|x| x.alive) {
            procs.insert(x.pid, (x.parent, x.name.as_str()));
        }
    }
    let mut chains = BTreeMap::new();
    for p in &program.processes {
        let mut chain = Vec::new();
        let mut next = p.parent;
        while let Some(pid) = next {
            // Loops cannot happen in a consistent snapshot; cap it anyway.
            if chain.len() >= 32 || pid == 0 || chain.iter().any(|l: &ProcessLink| l.pid == pid) {
                break;
            }
            let entry = procs.get(&pid);
            chain.push(ProcessLink {
                pid,
                name: entry.map(|(_, n)| n.to_string()),
            });
            next = entry.and_then(|(parent, _)| *parent);
        }
        chains.insert(p.pid, chain);
    }
    chains
}

/// The program `target` names: a PID of one of its processes, or its
/// executable's path (as given, or after resolving links).
pub fn find_program<'a>(snapshot: &'a Snapshot, target: &str) -> Option<&'a Program> {
    if let Ok(pid) = target.parse::<u32>()
        && let Some(p) = snapshot
            .programs
            .iter()
            .find(|p| p.processes.iter().any(|x| x.pid == pid && x.alive))
    {
        return Some(p);
    }
    let given = PathBuf::from(target);
    let resolved = std::fs::canonicalize(&given).ok();
    let matches = |p: &&Program| {
        p.exe.as_ref().is_some_and(|e| {
            *e == given
                || resolved.as_ref() == Some(e)
                || (resolved.is_some() && std::fs::canonicalize(e).ok() == resolved)
        })
    };
    // A running program first; an exited one is still reportable.
    snapshot
        .programs
        .iter()
        .filter(matches)
        .find(|p| p.processes.iter().any(|x| x.alive))
        .or_else(|| snapshot.programs.iter().find(matches))
}
