//! Journal output for people and programs: a table, JSON, and CSV that a
//! spreadsheet opens as text (no formula runs from a hostile name).

use serde_json::{Value, json};

use super::chain::{BadRecord, Head, Problem, VerifyReport};
use super::query::{EventRow, SessionRow};
use crate::clock::rfc3339;
use crate::escape::for_display;
use crate::i18n::{tr, tr_args};

pub fn session_json(s: &SessionRow) -> Value {
    let info = s
        .remote
        .as_deref()
        .and_then(|r| r.parse::<std::net::SocketAddr>().ok())
        .map(|r| crate::names::describe(r.ip()))
        .unwrap_or_default();
    json!({
        "remote_scope": info.scope.map(|x| x.as_json()),
        "remote_country": info.geo.country,
        "remote_as": info.geo.asn,
        "remote_as_org": info.geo.as_org,
        "exe": s.exe,
        "name": s.name,
        "sha256": s.sha256,
        "pid": s.pid,
        "protocol": s.protocol,
        "local": s.local,
        "remote": s.remote,
        "state": s.state,
        "first_seen": rfc3339(s.first_seen),
        "last_seen": s.last_seen.map(rfc3339),
        "remote_name": s.remote_name,
        "remote_name_source": s.remote_name_source,
    })
}

pub fn event_json(e: &EventRow) -> Value {
    json!({
        "id": e.id,
        "at": rfc3339(e.at),
        "kind": e.kind,
        "exe": e.exe,
        "name": e.name,
        "sha256": e.sha256,
        "detail": e.detail,
    })
}

pub fn head_json(h: &Head) -> Value {
    json!({"id": h.id, "at": h.at.map(rfc3339), "hash": h.hash})
}

/// `kizuki history --json`.
pub fn history_json(sessions: &[SessionRow], events: &[EventRow], head: &Head) -> Value {
    json!({
        "head": head_json(head),
        "sessions": sessions.iter().map(session_json).collect::<Vec<_>>(),
        "events": events.iter().map(event_json).collect::<Vec<_>>(),
    })
}

/// Characters that make a spreadsheet treat a cell as a formula (the
/// full-width forms too: Japanese input methods produce them), also after
/// blank or invisible characters a spreadsheet may skip (line breaks,
/// ideographic spaces, zero-width and bidi marks).
fn starts_formula(s: &str) -> bool {
    let rest = s.trim_start_matches(|c: char| c.is_whitespace() || crate::escape::needs_escape(c));
    s.starts_with(['\t', '\r'])
        || rest.starts_with([
            '=', '+', '-', '@', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
        ])
}

/// One CSV cell: formula starters get a leading `'` so the cell stays
/// text; quotes, commas and line breaks are quoted per RFC 4180.
pub fn csv_cell(s: &str) -> String {
    let s = if starts_formula(s) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub const CSV_HEADER: [&str; 11] = [
    "exe",
    "name",
    "sha256",
    "pid",
    "protocol",
    "local",
    "remote",
    "state",
    "first_seen",
    "last_seen",
    "remote_name",
];

/// `kizuki history --csv`: one line per session, CRLF line ends.
pub fn sessions_csv(sessions: &[SessionRow]) -> String {
    let mut out = CSV_HEADER.join(",");
    out.push_str("\r\n");
    for s in sessions {
        let cells = [
            s.exe.clone().unwrap_or_default(),
            s.name.clone().unwrap_or_default(),
            s.sha256.clone().unwrap_or_default(),
            s.pid.map(|p| p.to_string()).unwrap_or_default(),
            s.protocol.clone(),
            s.local.clone(),
            s.remote.clone().unwrap_or_default(),
            s.state.clone(),
            rfc3339(s.first_seen),
            s.last_seen.map(rfc3339).unwrap_or_default(),
            s.remote_name.clone().unwrap_or_default(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// Padded by display width: Japanese names and headers line up.
fn pad(s: &str, width: usize) -> String {
    crate::textwidth::pad(s, width)
}

/// A time for the table: the user's zone in Japanese mode (JST, like the
/// reports; the header says so), UTC in English.
fn shown_time(t: std::time::SystemTime) -> String {
    let lang = crate::i18n::lang();
    let s = crate::report::fmt::time(t, lang);
    // The zone is in the column header.
    s.rsplit_once(' ').map(|(t, _)| t.to_string()).unwrap_or(s)
}

fn program_label(exe: Option<&str>, name: Option<&str>) -> String {
    match (name, exe) {
        (Some(n), _) => for_display(n),
        (None, Some(e)) => for_display(e),
        (None, None) => tr("journal.unknown_program"),
    }
}

/// One sentence for an event.
pub fn event_text(e: &EventRow) -> String {
    let d = &e.detail;
    let s = |k: &str| d[k].as_str().unwrap_or("").to_string();
    match e.kind.as_str() {
        // A journal someone edited can hold anything: every field shown
        // is escaped.
        "finding" => format!(
            "[{}] {} {}",
            for_display(&s("severity")),
            for_display(&s("kind")),
            for_display(&s("summary"))
        ),
        "mark" => tr_args(
            "journal.event.mark",
            &[(
                "mark",
                &d["mark"]
                    .as_str()
                    .map(|m| for_display(&tr(&format!("mark.{m}"))))
                    .unwrap_or_else(|| tr("mark.none")),
            )],
        ),
        "firewall" => tr_args(
            "journal.event.firewall",
            &[
                ("verb", &for_display(&s("verb"))),
                (
                    "result",
                    &tr(if d["ok"].as_bool() == Some(true) {
                        "journal.event.ok"
                    } else {
                        "journal.event.failed"
                    }),
                ),
            ],
        ),
        "app-start" => tr("journal.event.app_start"),
        "app-stop" => tr("journal.event.app_stop"),
        "program" => tr("journal.event.program"),
        "dropped" => tr_args(
            "journal.event.dropped",
            &[("count", &d["count"].as_u64().unwrap_or(0).to_string())],
        ),
        "pruned" => tr_args(
            "journal.event.pruned",
            &[("count", &d["removed"].as_u64().unwrap_or(0).to_string())],
        ),
        "aggregate" => tr_args(
            "gjournal.event.aggregate",
            &[
                ("opened", &d["opened"].as_u64().unwrap_or(0).to_string()),
                ("closed", &d["closed"].as_u64().unwrap_or(0).to_string()),
                ("first", &for_display(&s("first"))),
                ("last", &for_display(&s("last"))),
            ],
        ),
        "recovered" => tr_args(
            "gjournal.event.recovered",
            &[(
                "old",
                &d["old_head"]["id"]
                    .as_i64()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "?".into()),
            )],
        ),
        other => for_display(other),
    }
}

/// `kizuki history`: sessions as a table, then events.
pub fn history_table(sessions: &[SessionRow], events: &[EventRow]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{} {} {} {} {} {} {}\n",
        pad(&tr("journal.col.first_seen"), 20),
        pad(&tr("journal.col.last_seen"), 20),
        pad(&tr("journal.col.program"), 18),
        pad(&tr("journal.col.pid"), 7),
        pad(&tr("journal.col.proto"), 5),
        pad(&tr("journal.col.endpoints"), 50),
        tr("journal.col.state"),
    ));
    for s in sessions {
        let remote = match (&s.remote, &s.remote_name) {
            (Some(r), Some(n)) => format!("{n} ({r})"),
            (Some(r), None) => r.clone(),
            (None, _) => "*".into(),
        };
        out.push_str(&format!(
            "{} {} {} {} {} {} {}\n",
            pad(&shown_time(s.first_seen), 20),
            pad(
                &s.last_seen
                    .map(shown_time)
                    .unwrap_or_else(|| tr("journal.not_ended")),
                20
            ),
            pad(&program_label(s.exe.as_deref(), s.name.as_deref()), 18),
            pad(
                &s.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
                7
            ),
            pad(&for_display(&s.protocol), 5),
            pad(&for_display(&format!("{} -> {}", s.local, remote)), 50),
            for_display(&s.state),
        ));
        if let Some(exe) = &s.exe {
            let sha = for_display(s.sha256.as_deref().unwrap_or("-"));
            out.push_str(&format!("    {}  sha256:{}\n", for_display(exe), sha));
        }
    }
    if !events.is_empty() {
        out.push('\n');
        out.push_str(&tr("journal.events"));
        out.push('\n');
        for e in events {
            let who = if e.exe.is_none() && e.name.is_none() {
                "-".to_string()
            } else {
                program_label(e.exe.as_deref(), e.name.as_deref())
            };
            out.push_str(&format!(
                "{} {} {}\n",
                pad(&shown_time(e.at), 20),
                pad(&who, 18),
                event_text(e),
            ));
        }
    }
    out.push_str(&tr_args(
        "journal.summary",
        &[
            ("sessions", &sessions.len().to_string()),
            ("events", &events.len().to_string()),
        ],
    ));
    out.push('\n');
    out
}

pub fn problem_text(p: &Problem) -> String {
    match p {
        Problem::Changed => tr("journal.problem.changed"),
        Problem::Missing { from, to } => tr_args(
            "journal.problem.missing",
            &[("from", &from.to_string()), ("to", &to.to_string())],
        ),
        Problem::UnknownProgram { program } => tr_args(
            "journal.problem.unknown_program",
            &[("program", &program.to_string())],
        ),
        Problem::Anchor => tr("journal.problem.anchor"),
        Problem::TailRemoved { last } => tr_args(
            "journal.problem.tail_removed",
            &[("last", &last.to_string())],
        ),
        Problem::Count { expected, found } => tr_args(
            "journal.problem.count",
            &[
                ("expected", &expected.to_string()),
                ("found", &found.to_string()),
            ],
        ),
    }
}

pub fn bad_record_text(b: &BadRecord) -> String {
    tr_args(
        "journal.verify.bad",
        &[
            ("id", &b.id.to_string()),
            (
                "time",
                &b.at.map(rfc3339).unwrap_or_else(|| "?".to_string()),
            ),
            ("problem", &problem_text(&b.problem)),
        ],
    )
}

pub fn verify_json(r: &VerifyReport) -> Value {
    json!({
        "intact": r.intact(),
        "records": r.records,
        "first_id": r.first_id,
        "head": head_json(&r.head),
        "first_bad": r.first_bad.as_ref().map(|b| json!({
            "id": b.id,
            "at": b.at.map(rfc3339),
            "problem": problem_text(&b.problem),
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn formula_starters_become_text() {
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-2+3"), "'-2+3");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("\r=1"), "\"'\r=1\"");
        assert_eq!(csv_cell("  =1"), "'  =1");
        assert_eq!(csv_cell("＝1+1"), "'＝1+1");
        assert_eq!(csv_cell("/usr/bin/curl"), "/usr/bin/curl");
        assert_eq!(csv_cell("[::1]:443"), "[::1]:443");
        // Found by the hostile-journal property test: a formula behind a
        // line break, an ideographic space or a bidi mark.
        assert_eq!(csv_cell("\n=1"), "\"'\n=1\"");
        assert_eq!(csv_cell("\u{3000}=1"), "'\u{3000}=1");
        assert_eq!(csv_cell("\u{202E}+1"), "'\u{202E}+1");
    }

    #[test]
    fn hostile_exe_name_cannot_inject_into_csv() {
        let s = SessionRow {
            id: 1,
            exe: Some("=cmd|'/C calc'!A0".into()),
            name: Some("a,b\nc".into()),
            sha256: None,
            pid: Some(1),
            protocol: "tcp".into(),
            local: "10.0.0.2:1".into(),
            remote: Some("-1+1".into()),
            state: "ESTABLISHED".into(),
            first_seen: SystemTime::UNIX_EPOCH,
            last_seen: None,
            remote_name: None,
            remote_name_source: None,
        };
        let csv = sessions_csv(&[s]);
        let row = csv.split("\r\n").nth(1).unwrap();
        assert!(row.starts_with("'=cmd"), "{row}");
        assert!(row.contains("\"a,b\nc\""), "{row}");
        assert!(row.contains(",'-1+1,"), "{row}");
        // Every cell of the data row starts with a harmless character.
        assert_eq!(csv.split("\r\n").count(), 3, "header, row, empty tail");
    }
}
