//! Hostile program data and the checks every output must pass, shared by
//! the property tests (tests/hostile_output.rs) and the fuzz targets
//! (fuzz/fuzz_targets/report.rs): a name, path or command line chosen by
//! a malicious program must come out of every output escaped and valid,
//! and must not change the output's structure.
//!
//! The structure checks compare the output for the hostile data with the
//! output for a "tame" twin (same shape, every string replaced by plain
//! text): what an attacker controls may change text, never markup.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use kizuki::escape::needs_escape;
use kizuki::i18n::Lang;
use kizuki::model::{
    Connection, Finding, FindingKind, ProcessInfo, Program, ProgramKey, Protocol, Severity,
    Snapshot, SockState,
};
use kizuki::report::{self, ActionTaken, Extras, Format, MachineInfo, ProcessLink, Report};

/// Everything about one program that the program itself (or whoever wrote
/// it) controls.
#[derive(Debug, Clone)]
pub struct Hostile {
    pub name: String,
    /// The executable path's raw bytes (need not be UTF-8).
    pub exe: Option<Vec<u8>>,
    pub cmdline: Vec<String>,
    pub user: Option<String>,
    pub finding_summary: String,
    pub evidence: String,
    pub action_detail: Option<String>,
    pub os: String,
    pub parent_name: String,
}

fn tame_text(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        "x".into()
    }
}

impl Hostile {
    /// The same shape with harmless text.
    pub fn tame(&self) -> Hostile {
        Hostile {
            name: tame_text(&self.name),
            exe: self.exe.as_ref().map(|e| {
                if e.is_empty() {
                    Vec::new()
                } else {
                    b"/x".to_vec()
                }
            }),
            cmdline: self.cmdline.iter().map(|a| tame_text(a)).collect(),
            user: self.user.as_deref().map(tame_text),
            finding_summary: tame_text(&self.finding_summary),
            evidence: tame_text(&self.evidence),
            action_detail: self.action_detail.as_deref().map(tame_text),
            os: tame_text(&self.os),
            parent_name: tame_text(&self.parent_name),
        }
    }
}

#[cfg(unix)]
fn path_of(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes.to_vec()))
}

#[cfg(not(unix))]
fn path_of(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_608_000)
}

/// The program as the monitor would list it.
pub fn program(h: &Hostile) -> Program {
    let exe = h.exe.as_deref().map(path_of);
    let mut evidence = serde_json::Map::new();
    evidence.insert("endpoint".into(), h.evidence.clone().into());
    Program {
        key: match &exe {
            Some(e) => ProgramKey::Exe(e.clone()),
            None => ProgramKey::Name(h.name.clone()),
        },
        name: h.name.clone(),
        exe,
        exe_deleted: true,
        sha256: Some("a".repeat(64)),
        processes: vec![ProcessInfo {
            pid: 4242,
            parent: Some(7),
            name: h.name.clone(),
            cmdline: h.cmdline.clone(),
            user: h.user.clone(),
            uid: Some(1000),
            start_time: 1_795_607_000,
            alive: true,
            exe_deleted: true,
            sha256: None,
        }],
        connections: vec![Connection {
            bytes_received: None,
            bytes_sent: None,
            pid: Some(4242),
            protocol: Protocol::Tcp,
            local: "10.0.0.2:40000".parse().unwrap(),
            remote: Some("203.0.113.7:443".parse().unwrap()),
            state: SockState::Established,
            first_seen: t0(),
            last_seen: t0() + Duration::from_secs(30),
            live: true,
            uid: Some(1000),
            remote_name: None,
        }],
        findings: vec![Finding {
            kind: FindingKind::RunsFromTemp,
            severity: Severity::High,
            summary: h.finding_summary.clone(),
            evidence,
            first_raised: t0(),
        }],
        mark: None,
        stale_mark: None,
        first_seen: t0(),
    }
}

pub fn report_of(h: &Hostile, lang: Lang) -> Report {
    let p = program(h);
    let mut extras = Extras::default();
    extras.actions.push(ActionTaken {
        at: t0(),
        action: "mark_blocked".into(),
        detail: h.action_detail.clone(),
    });
    let mut chains = BTreeMap::new();
    chains.insert(
        4242,
        vec![ProcessLink {
            pid: 7,
            name: Some(h.parent_name.clone()),
        }],
    );
    extras.parent_chains = chains;
    extras.file_size = Some(1234);
    let machine = MachineInfo {
        os: h.os.clone(),
        os_version: Some(h.os.clone()),
        kernel: Some(h.os.clone()),
        arch: "x86_64".into(),
        hostname: Some(h.name.clone()),
    };
    Report::build(&p, &extras, machine, t0(), lang)
}

pub fn snapshot_of(h: &Hostile) -> Snapshot {
    let mut s = Snapshot::empty();
    s.programs.push(program(h));
    s
}

/// Text for a terminal: only line breaks, no other control character and
/// nothing that reorders or hides text (bidi overrides, zero-width).
pub fn terminal_safe(what: &str, s: &str) -> Result<(), String> {
    match s.chars().find(|&c| c != '\n' && needs_escape(c)) {
        Some(c) => Err(format!("{what}: raw U+{:04X} in output", c as u32)),
        None => Ok(()),
    }
}

/// What Markdown makes of a document: the parts that carry structure, and
/// anything an attacker must never produce (HTML, links, images).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MdShape {
    pub headings: usize,
    pub items: usize,
    pub table_rows: usize,
    pub table_cells: usize,
    pub code_blocks: usize,
    pub emphasis: usize,
    pub html: usize,
    pub links: usize,
    pub rules: usize,
}

pub fn md_shape(s: &str) -> MdShape {
    use pulldown_cmark::{Event, Options, Parser, Tag};
    let mut shape = MdShape::default();
    for ev in Parser::new_ext(s, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH) {
        match ev {
            Event::Start(Tag::Heading { .. }) => shape.headings += 1,
            Event::Start(Tag::Item) => shape.items += 1,
            Event::Start(Tag::TableRow) | Event::Start(Tag::TableHead) => shape.table_rows += 1,
            Event::Start(Tag::TableCell) => shape.table_cells += 1,
            Event::Start(Tag::CodeBlock(_)) => shape.code_blocks += 1,
            Event::Start(Tag::Emphasis)
            | Event::Start(Tag::Strong)
            | Event::Start(Tag::Strikethrough) => shape.emphasis += 1,
            Event::Html(_) | Event::InlineHtml(_) | Event::Start(Tag::HtmlBlock) => shape.html += 1,
            Event::Start(Tag::Link { .. }) | Event::Start(Tag::Image { .. }) => shape.links += 1,
            Event::Rule => shape.rules += 1,
            _ => {}
        }
    }
    shape
}

/// The characters that make HTML markup; escaped text has none of them.
pub fn html_markup(s: &str) -> [usize; 4] {
    ['<', '>', '"', '\''].map(|c| s.matches(c).count())
}

fn render(h: &Hostile, lang: Lang, f: Format) -> String {
    report::render(&report_of(h, lang), f).unwrap()
}

/// Every output about the hostile program, checked against its tame twin.
pub fn check_all(h: &Hostile) -> Result<(), String> {
    let tame = h.tame();
    for lang in [Lang::Ja, Lang::En] {
        // Report, Markdown.
        let md = render(h, lang, Format::Markdown);
        let md_tame = render(&tame, lang, Format::Markdown);
        terminal_safe("markdown report", &md)?;
        let (shape, tame_shape) = (md_shape(&md), md_shape(&md_tame));
        if shape != tame_shape {
            return Err(format!(
                "markdown structure changed by hostile text:\n{shape:?}\nvs tame\n{tame_shape:?}\n{md}"
            ));
        }
        if md.lines().count() != md_tame.lines().count() {
            return Err(format!("markdown line count changed:\n{md}"));
        }

        // Report, HTML.
        let html = render(h, lang, Format::Html);
        let html_tame = render(&tame, lang, Format::Html);
        terminal_safe("html report", &html)?;
        if html_markup(&html) != html_markup(&html_tame) {
            return Err(format!(
                "html markup changed by hostile text: {:?} vs {:?}\n{html}",
                html_markup(&html),
                html_markup(&html_tame)
            ));
        }

        // Report, JSON: parses, and keeps the name exactly.
        let json = render(h, lang, Format::Json);
        let v: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| format!("report JSON invalid: {e}"))?;
        if v["program"]["name"] != serde_json::Value::String(h.name.clone()) {
            return Err(format!(
                "report JSON lost the name: {}",
                v["program"]["name"]
            ));
        }
    }

    // Scan JSON: parses and keeps name and command line exactly.
    let snap = snapshot_of(h);
    let text = kizuki::cli::output::snapshot_json(&snap).to_string();
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("scan JSON invalid: {e}"))?;
    let p = &v["programs"][0];
    if p["name"] != serde_json::Value::String(h.name.clone()) {
        return Err("scan JSON lost the name".into());
    }
    let cmd: Vec<String> = p["processes"][0]["cmdline"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if cmd != h.cmdline {
        return Err("scan JSON changed the command line".into());
    }

    // Terminal table: no raw control characters, one line per fact.
    kizuki::i18n::set_lang(Lang::En);
    let table = kizuki::cli::output::snapshot_table(&snap);
    let table_tame = kizuki::cli::output::snapshot_table(&snapshot_of(&tame));
    terminal_safe("scan table", &table)?;
    if table.lines().count() != table_tame.lines().count() {
        return Err(format!("scan table line count changed:\n{table}"));
    }
    Ok(())
}
