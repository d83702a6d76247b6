//! The content of a suspicious-program report, gathered once and then
//! rendered as Markdown, HTML or JSON. Building it is pure: everything that
//! comes from the machine (OS, file size, parents, journal) is passed in.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

use super::machine::MachineInfo;
use crate::clock::rfc3339;
use crate::escape::os_lossless;
use crate::i18n::{Lang, tr_in};
use crate::model::{Connection, Finding, FindingKind, Mark, Program, Severity};

/// Version tag of the JSON shape.
pub const SCHEMA: &str = "kizuki-report/1";

fn ser_time<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

fn ser_opt_time<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// One process in another process's ancestry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessLink {
    pub pid: u32,
    /// `None` when the parent is not in the snapshot (another user's, or gone).
    pub name: Option<String>,
}

/// Something the user did about the program (a mark, suspending it,
/// cutting the network). `action` is an id (`mark_blocked`, `suspend`,
/// `panic`, …) shown through the `report.action.<id>` text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionTaken {
    #[serde(serialize_with = "ser_time")]
    pub at: SystemTime,
    pub action: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgramPart {
    pub name: String,
    pub path: Option<String>,
    pub sha256: Option<String>,
    pub size: Option<u64>,
    pub exe_deleted: bool,
    /// The file at this path is not the one that was marked or recorded.
    pub exe_changed: bool,
    #[serde(serialize_with = "ser_time")]
    pub first_seen: SystemTime,
    /// When its earliest process started.
    #[serde(serialize_with = "ser_opt_time")]
    pub started: Option<SystemTime>,
    pub mark: Option<Mark>,
    pub stale_mark: Option<Mark>,
    /// Where the file was downloaded from, when the system recorded it
    /// (Windows' Mark of the Web).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downloaded_from: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessPart {
    pub pid: u32,
    pub name: String,
    pub user: Option<String>,
    /// Parent first, then its parent, up to the first process kizuki knows.
    pub parents: Vec<ProcessLink>,
    pub cmdline: Vec<String>,
    #[serde(serialize_with = "ser_opt_time")]
    pub started: Option<SystemTime>,
    pub alive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionPart {
    pub pid: Option<u32>,
    pub protocol: String,
    pub local: String,
    pub remote: Option<String>,
    pub state: String,
    #[serde(serialize_with = "ser_time")]
    pub first_seen: SystemTime,
    #[serde(serialize_with = "ser_time")]
    pub last_seen: SystemTime,
    pub live: bool,
    /// Whom, as `scan --json` says it (docs/CLI.md).
    pub remote_name: Option<String>,
    pub remote_name_source: Option<&'static str>,
    pub remote_scope: Option<&'static str>,
    pub remote_country: Option<String>,
    pub remote_as: Option<u32>,
    pub remote_as_org: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingPart {
    pub kind: FindingKind,
    pub severity: Severity,
    pub summary: String,
    /// Why this matters, in the report's language.
    pub explanation: String,
    #[serde(serialize_with = "ser_time")]
    pub first_raised: SystemTime,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub evidence: serde_json::Map<String, serde_json::Value>,
}

/// The evidence copy of the program file, when the user agreed to one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvidencePart {
    /// File name of the copy, next to the report.
    pub file: String,
    pub sha256: String,
    pub size: u64,
    /// The copy's hash equals the program's recorded hash.
    pub matches_program: bool,
}

/// Where the connection list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionSource {
    /// What kizuki saw while it was running (this session only).
    Snapshot,
    /// The evidence journal together with the live picture.
    Journal,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summaries {
    pub ja: String,
    pub en: String,
}

/// Everything in a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub kizuki_version: String,
    pub lang: Lang,
    #[serde(serialize_with = "ser_time")]
    pub written_at: SystemTime,
    pub machine: MachineInfo,
    pub program: ProgramPart,
    pub processes: Vec<ProcessPart>,
    pub connections_source: ConnectionSource,
    pub connections: Vec<ConnectionPart>,
    pub findings: Vec<FindingPart>,
    pub actions: Vec<ActionTaken>,
    pub evidence: Option<EvidencePart>,
    /// Why an agreed evidence copy could not be made.
    pub evidence_error: Option<String>,
    /// For the consultation desk: Japanese always, English as well.
    pub summary: Summaries,
}

/// What the caller adds to the program itself.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// Connections from the evidence journal; merged with the program's.
    pub journal_connections: Option<Vec<Connection>>,
    /// Findings not (yet) on the program, e.g. from a longer analysis.
    pub findings: Vec<Finding>,
    pub actions: Vec<ActionTaken>,
    /// PID → ancestry (see [`super::parent_chains`]).
    pub parent_chains: BTreeMap<u32, Vec<ProcessLink>>,
    /// Size of the program file, when it could be read.
    pub file_size: Option<u64>,
    /// Where the file came from (see [`crate::platform::provenance`]).
    pub downloaded_from: Option<String>,
}

/// The explanation of a finding: `finding.<kind>.why` when the catalog
/// has it, else the finding's own sentence.
pub fn explanation(f: &Finding, lang: Lang) -> String {
    let key = format!("finding.{}.why", f.kind.as_str());
    let text = tr_in(lang, &key);
    if text == key { f.summary.clone() } else { text }
}

fn connection_part(c: &Connection) -> ConnectionPart {
    let info = c
        .remote
        .map(|r| crate::names::describe(r.ip()))
        .unwrap_or_default();
    ConnectionPart {
        remote_name: c.remote_name.as_ref().map(|n| n.name.clone()),
        remote_name_source: c.remote_name.as_ref().map(|n| n.source.as_str()),
        remote_scope: info.scope.map(|s| s.as_json()),
        remote_country: info.geo.country,
        remote_as: info.geo.asn,
        remote_as_org: info.geo.as_org,
        pid: c.pid,
        protocol: c.protocol.as_str().to_string(),
        local: c.local.to_string(),
        remote: c.remote.map(|r| r.to_string()),
        // One word for a connection that is over, whichever source saw it
        // last (the kernel's CLOSE_WAIT, the journal's UNKNOWN).
        state: if c.live {
            c.state.as_str().to_string()
        } else {
            "ENDED".to_string()
        },
        first_seen: c.first_seen,
        last_seen: c.last_seen,
        live: c.live,
    }
}

/// Live connections and journal rows describe the same sessions: one entry
/// per (pid, protocol, local, remote), spanning the earliest to latest sight.
fn merge_connections(live: &[Connection], journal: &[Connection]) -> Vec<ConnectionPart> {
    let mut by_key: BTreeMap<_, ConnectionPart> = BTreeMap::new();
    for c in journal.iter().chain(live) {
        let key = (c.pid, c.protocol, c.local, c.remote);
        let part = connection_part(c);
        by_key
            .entry(key)
            .and_modify(|e| {
                if part.first_seen < e.first_seen {
                    e.first_seen = part.first_seen;
                }
                if part.last_seen >= e.last_seen {
                    e.last_seen = part.last_seen;
                    e.state = part.state.clone();
                }
                // What the kernel says now wins over a record of the past.
                if part.live {
                    e.state = part.state.clone();
                }
                e.live |= part.live;
                if e.remote_name.is_none() {
                    e.remote_name = part.remote_name.clone();
                    e.remote_name_source = part.remote_name_source;
                }
            })
            .or_insert(part);
    }
    let mut v: Vec<ConnectionPart> = by_key.into_values().collect();
    v.sort_by(|a, b| {
        (a.first_seen, &a.remote, &a.local, a.pid).cmp(&(b.first_seen, &b.remote, &b.local, b.pid))
    });
    v
}

fn secs_to_time(secs: u64) -> Option<SystemTime> {
    (secs > 0).then(|| SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

impl Report {
    /// Gathers a report about `program`. `machine` and `extras` carry what
    /// was read from the system; `evidence` is filled in by the caller.
    pub fn build(
        program: &Program,
        extras: &Extras,
        machine: MachineInfo,
        now: SystemTime,
        lang: Lang,
    ) -> Report {
        let mut findings: Vec<&Finding> = program.findings.iter().collect();
        for f in &extras.findings {
            if !findings.iter().any(|g| g.kind == f.kind) {
                findings.push(f);
            }
        }
        findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.kind.cmp(&b.kind)));
        let exe_changed = program.stale_mark.is_some()
            || findings.iter().any(|f| f.kind == FindingKind::ExeChanged);
        let processes: Vec<ProcessPart> = program
            .processes
            .iter()
            .map(|p| ProcessPart {
                pid: p.pid,
                name: p.name.clone(),
                user: p.user.clone(),
                parents: extras
                    .parent_chains
                    .get(&p.pid)
                    .cloned()
                    .unwrap_or_else(|| {
                        p.parent
                            .map(|pid| vec![ProcessLink { pid, name: None }])
                            .unwrap_or_default()
                    }),
                cmdline: p.cmdline.clone(),
                started: secs_to_time(p.start_time),
                alive: p.alive,
            })
            .collect();
        let (connections_source, connections) = match &extras.journal_connections {
            Some(j) => (
                ConnectionSource::Journal,
                merge_connections(&program.connections, j),
            ),
            None => (
                ConnectionSource::Snapshot,
                merge_connections(&program.connections, &[]),
            ),
        };
        // kizuki saw the program no later than its first connection.
        let first_seen = connections
            .iter()
            .map(|c| c.first_seen)
            .chain(std::iter::once(program.first_seen))
            .min()
            .unwrap_or(program.first_seen);
        let mut report = Report {
            schema: SCHEMA,
            kizuki_version: env!("CARGO_PKG_VERSION").to_string(),
            lang,
            written_at: now,
            machine,
            program: ProgramPart {
                name: program.name.clone(),
                path: program.exe.as_ref().map(|e| os_lossless(e.as_os_str())),
                sha256: program.sha256.clone(),
                size: extras.file_size,
                exe_deleted: program.exe_deleted,
                exe_changed,
                first_seen,
                started: processes.iter().filter_map(|p| p.started).min(),
                mark: program.mark,
                stale_mark: program.stale_mark,
                downloaded_from: extras.downloaded_from.clone(),
            },
            processes,
            connections_source,
            connections,
            findings: findings
                .into_iter()
                .map(|f| FindingPart {
                    kind: f.kind,
                    severity: f.severity,
                    summary: f.summary.clone(),
                    explanation: explanation(f, lang),
                    first_raised: f.first_raised,
                    evidence: f.evidence.clone(),
                })
                .collect(),
            actions: extras.actions.clone(),
            evidence: None,
            evidence_error: None,
            summary: Summaries {
                ja: String::new(),
                en: String::new(),
            },
        };
        report.refresh_summary();
        report
    }

    /// Rewrites the desk summaries from the current content (after the
    /// evidence copy was added, for instance).
    pub fn refresh_summary(&mut self) {
        self.summary = Summaries {
            ja: super::summary::summary(self, Lang::Ja),
            en: super::summary::summary(self, Lang::En),
        };
    }

    /// The summary in `lang`.
    pub fn summary_in(&self, lang: Lang) -> &str {
        match lang {
            Lang::Ja => &self.summary.ja,
            Lang::En => &self.summary.en,
        }
    }

    /// Remote endpoints, each once, in order of first sight.
    pub fn remote_endpoints(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for c in &self.connections {
            if let Some(r) = c.remote.as_deref()
                && !seen.contains(&r)
            {
                seen.push(r);
            }
        }
        seen
    }
}
