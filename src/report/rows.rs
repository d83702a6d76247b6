//! The labelled fields of each report section, shared by the Markdown and
//! HTML renderers so both always show the same facts.

use super::data::{ConnectionPart, ConnectionSource, EvidencePart, ProcessPart, Report};
use super::fmt;
use crate::i18n::{Lang, tr_args_in, tr_in};

/// A value is either prose (escaped as text) or a literal (path, hash,
/// command line: shown as code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Code(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub label: String,
    pub value: Value,
}

impl Row {
    fn text(label: String, v: impl Into<String>) -> Row {
        Row {
            label,
            value: Value::Text(v.into()),
        }
    }
    fn code(label: String, v: impl Into<String>) -> Row {
        Row {
            label,
            value: Value::Code(v.into()),
        }
    }
    pub fn md(&self) -> String {
        match &self.value {
            Value::Text(s) => fmt::md_text(s),
            Value::Code(s) => fmt::md_code(s),
        }
    }
    pub fn html(&self) -> String {
        match &self.value {
            Value::Text(s) => fmt::html(s),
            Value::Code(s) => format!("<code>{}</code>", fmt::html(s)),
        }
    }
}

pub fn machine(r: &Report, lang: Lang) -> Vec<Row> {
    let t = |k: &str| tr_in(lang, k);
    let m = &r.machine;
    let mut rows = vec![Row::text(t("report.field.os"), m.os.clone())];
    if let Some(v) = &m.os_version {
        rows.push(Row::text(t("report.field.os_version"), v.clone()));
    }
    if let Some(k) = &m.kernel {
        rows.push(Row::text(t("report.field.kernel"), k.clone()));
    }
    rows.push(Row::text(t("report.field.arch"), m.arch.clone()));
    rows.push(match &m.hostname {
        Some(h) => Row::code(t("report.field.hostname"), h.clone()),
        None => Row::text(
            t("report.field.hostname"),
            t("report.field.hostname_omitted"),
        ),
    });
    rows
}

pub fn program(r: &Report, lang: Lang) -> Vec<Row> {
    let t = |k: &str| tr_in(lang, k);
    let p = &r.program;
    let unknown = t("report.unknown");
    let mut status = Vec::new();
    if p.exe_deleted {
        status.push(t("report.status.deleted"));
    }
    if p.exe_changed {
        status.push(t("report.status.changed"));
    }
    if status.is_empty() {
        status.push(t("report.status.normal"));
    }
    let mut rows = vec![
        Row::code(t("report.field.name"), p.name.clone()),
        match &p.path {
            Some(path) => Row::code(t("report.field.path"), path.clone()),
            None => Row::text(t("report.field.path"), unknown.clone()),
        },
        match &p.sha256 {
            Some(h) => Row::code(t("report.field.sha256"), h.clone()),
            None => Row::text(t("report.field.sha256"), unknown.clone()),
        },
        Row::text(
            t("report.field.size"),
            p.size
                .map(|b| {
                    tr_args_in(
                        lang,
                        "report.field.size_bytes",
                        &[("bytes", &b.to_string())],
                    )
                })
                .unwrap_or_else(|| unknown.clone()),
        ),
        Row::text(t("report.field.status"), status.join(" / ")),
    ];
    if let Some(url) = &p.downloaded_from {
        rows.push(Row::code(t("report.field.downloaded_from"), url.clone()));
    }
    if let Some(s) = p.started {
        rows.push(Row::text(t("report.field.started"), fmt::time(s, lang)));
    }
    rows.push(Row::text(
        t("report.field.first_seen"),
        fmt::time(p.first_seen, lang),
    ));
    rows
}

pub fn process(p: &ProcessPart, lang: Lang) -> Vec<Row> {
    let t = |k: &str| tr_in(lang, k);
    let parents = if p.parents.is_empty() {
        t("report.none")
    } else {
        p.parents
            .iter()
            .map(|l| match &l.name {
                Some(n) => format!("{} ({})", l.pid, n),
                None => l.pid.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ← ")
    };
    let mut rows = vec![
        Row::code(t("report.field.process_name"), p.name.clone()),
        Row::text(
            t("report.field.user"),
            p.user.clone().unwrap_or_else(|| t("report.unknown")),
        ),
        Row::code(t("report.field.parents"), parents),
        Row::code(t("report.field.cmdline"), fmt::cmdline(&p.cmdline)),
    ];
    if let Some(s) = p.started {
        rows.push(Row::text(t("report.field.started"), fmt::time(s, lang)));
    }
    rows.push(Row::text(
        t("report.field.alive"),
        t(if p.alive {
            "report.proc.alive"
        } else {
            "report.proc.ended"
        }),
    ));
    rows
}

pub fn source_id(r: &Report) -> &'static str {
    match r.connections_source {
        ConnectionSource::Snapshot => "snapshot",
        ConnectionSource::Journal => "journal",
    }
}

pub fn connection_header(lang: Lang) -> Vec<String> {
    [
        "pid", "protocol", "local", "remote", "state", "first", "last",
    ]
    .iter()
    .map(|c| tr_in(lang, &format!("report.conn.col.{c}")))
    .collect()
}

pub fn connection_cells(c: &ConnectionPart, lang: Lang) -> Vec<String> {
    vec![
        c.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
        c.protocol.clone(),
        c.local.clone(),
        remote_words(c, lang).unwrap_or_else(|| "*".into()),
        c.state.clone(),
        fmt::time(c.first_seen, lang),
        fmt::time(c.last_seen, lang),
    ]
}

/// The remote in words: name first, then address, where it is, country
/// and network owner.
pub fn remote_words(c: &ConnectionPart, lang: Lang) -> Option<String> {
    let remote = c.remote.as_deref()?;
    Some(match remote.parse::<std::net::SocketAddr>() {
        Ok(a) => crate::names::endpoint_words_in(lang, a, c.remote_name.as_deref()),
        Err(_) => remote.to_owned(),
    })
}

/// Where the country and owner data comes from, its date and licence.
pub fn geo_note(lang: Lang) -> Option<String> {
    let date = crate::names::geo::data_date()?;
    Some(crate::i18n::tr_args_in(
        lang,
        "names.data-date",
        &[("date", date)],
    ))
}

pub fn marks(r: &Report, lang: Lang) -> Vec<Row> {
    let t = |k: &str| tr_in(lang, k);
    let mark = |m: Option<crate::model::Mark>| match m {
        Some(m) => t(&format!("mark.{}", m.as_str())),
        None => t("report.mark.none"),
    };
    let mut rows = vec![Row::text(t("report.field.mark"), mark(r.program.mark))];
    if r.program.stale_mark.is_some() {
        rows.push(Row::text(
            t("report.field.stale_mark"),
            mark(r.program.stale_mark),
        ));
    }
    rows
}

pub fn evidence(e: &EvidencePart, lang: Lang) -> Vec<Row> {
    let t = |k: &str| tr_in(lang, k);
    vec![
        Row::code(t("report.evidence.file"), e.file.clone()),
        Row::code(t("report.field.sha256"), e.sha256.clone()),
        Row::text(
            t("report.field.size"),
            tr_args_in(
                lang,
                "report.field.size_bytes",
                &[("bytes", &e.size.to_string())],
            ),
        ),
        Row::text(
            t("report.evidence.check"),
            t(if e.matches_program {
                "report.evidence.matches"
            } else {
                "report.evidence.mismatch"
            }),
        ),
    ]
}
