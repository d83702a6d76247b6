//! Property tests of the journal's outputs with hostile rows. Every field
//! may be hostile: names and paths come from programs, and the journal file
//! itself may have been edited by whoever (or whatever) runs as the user.
//! `kizuki history` (the table) shows no raw control or bidi character and
//! keeps one line per fact; `--csv` stays valid RFC 4180, keeps every value
//! exactly and never lets a cell start a formula; `--json` parses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "hostile/check.rs"]
mod check;

use std::time::{Duration, SystemTime};

use kizuki::escape::needs_escape;
use kizuki::journal::Head;
use kizuki::journal::query::{EventRow, SessionRow};
use kizuki::journal::render::{history_json, history_table, sessions_csv};
use proptest::prelude::*;

const NASTY: &[&str] = &[
    "=",
    "+",
    "-",
    "@",
    "\t",
    "\r",
    "\n",
    "\r\n",
    " ",
    "\u{3000}",
    "\u{FF1D}",
    "\u{FF0B}",
    "\u{202E}",
    "\u{200B}",
    "\u{FEFF}",
    "\x1b[2J",
    "\"",
    ",",
    "'",
    "=HYPERLINK(\"http://e\")",
    "=cmd|' /C calc'!A0",
    "mark.",
    "{count}",
];

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            2 => any::<char>().prop_map(String::from),
            3 => prop::sample::select(NASTY).prop_map(str::to_string),
            1 => "[a-z/.]{1,4}",
        ],
        0..6,
    )
    .prop_map(|p| p.concat())
}

fn time() -> impl Strategy<Value = SystemTime> {
    (0u64..4_000_000_000).prop_map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
}

fn session() -> impl Strategy<Value = SessionRow> {
    (
        (
            prop::option::of(text()),
            prop::option::of(text()),
            prop::option::of(text()),
            prop::option::of(any::<u32>()),
        ),
        (text(), text(), prop::option::of(text()), text()),
        (time(), prop::option::of(time())),
    )
        .prop_map(
            |((exe, name, sha256, pid), (protocol, local, remote, state), (first, last))| {
                SessionRow {
                    id: 1,
                    exe,
                    name,
                    sha256,
                    pid,
                    protocol,
                    local,
                    remote,
                    state,
                    first_seen: first,
                    last_seen: last,
                    remote_name: None,
                    remote_name_source: None,
                }
            },
        )
}

fn event() -> impl Strategy<Value = EventRow> {
    (
        prop::sample::select(vec![
            "finding",
            "mark",
            "firewall",
            "app-start",
            "dropped",
            "pruned",
            "other",
        ]),
        text(),
        prop::option::of(text()),
        prop::option::of(text()),
        (text(), text(), text(), text()),
        time(),
    )
        .prop_map(|(kind, odd_kind, exe, name, (a, b, c, d), at)| EventRow {
            id: 1,
            at,
            kind: if kind == "other" {
                odd_kind
            } else {
                kind.into()
            },
            exe,
            name,
            sha256: None,
            detail: serde_json::json!({
                "severity": a, "kind": b, "summary": c, "mark": d,
                "verb": a, "ok": true, "count": 3, "removed": 2,
            }),
        })
}

/// A harmless twin with the same shape.
fn tame_session(s: &SessionRow) -> SessionRow {
    let t = |x: &str| {
        if x.is_empty() {
            String::new()
        } else {
            "x".into()
        }
    };
    SessionRow {
        exe: s.exe.as_deref().map(t),
        name: s.name.as_deref().map(t),
        sha256: s.sha256.as_deref().map(t),
        protocol: t(&s.protocol),
        local: t(&s.local),
        remote: s.remote.as_deref().map(t),
        state: t(&s.state),
        ..s.clone()
    }
}

/// RFC 4180: cells of each record (CRLF-ended), quotes doubled.
fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cell.push('"');
                } else {
                    quoted = false;
                }
            } else {
                cell.push(c);
            }
            continue;
        }
        match c {
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            '"' => return Err(format!("stray quote in {cell:?}")),
            ',' => {
                row.push(std::mem::take(&mut cell));
                at_start = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {
                chars.next();
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
                at_start = true;
            }
            '\r' | '\n' => return Err("bare line break outside quotes".into()),
            c => {
                cell.push(c);
                at_start = false;
            }
        }
    }
    if quoted || !cell.is_empty() || !row.is_empty() {
        return Err("unterminated record".into());
    }
    Ok(rows)
}

/// What a spreadsheet could take for a formula: the first character
/// after anything blank or invisible.
fn formula_start(cell: &str) -> bool {
    cell.trim_start_matches(|c: char| c.is_whitespace() || needs_escape(c))
        .starts_with([
            '=', '+', '-', '@', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
        ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn history_csv_is_valid_exact_and_formula_free(
        sessions in prop::collection::vec(session(), 0..4),
    ) {
        let csv = sessions_csv(&sessions);
        let rows = parse_csv(&csv).map_err(|e| TestCaseError::fail(format!("{e}\n{csv:?}")))?;
        prop_assert_eq!(rows.len(), sessions.len() + 1, "one record per session");
        for (row, s) in rows[1..].iter().zip(&sessions) {
            prop_assert_eq!(row.len(), kizuki::journal::render::CSV_HEADER.len());
            for cell in row {
                prop_assert!(
                    !formula_start(cell) || cell.starts_with('\''),
                    "cell could run as a formula: {:?}", cell
                );
            }
            // Values are kept: only the guarding quote mark is added.
            let unguard = |c: &str, orig: &str| {
                if c.len() == orig.len() + 1 { c[1..].to_string() } else { c.to_string() }
            };
            prop_assert_eq!(unguard(&row[0], s.exe.as_deref().unwrap_or("")), s.exe.clone().unwrap_or_default());
            prop_assert_eq!(unguard(&row[1], s.name.as_deref().unwrap_or("")), s.name.clone().unwrap_or_default());
        }
    }

    #[test]
    fn history_table_is_terminal_safe(
        sessions in prop::collection::vec(session(), 0..4),
        events in prop::collection::vec(event(), 0..4),
    ) {
        kizuki::i18n::set_lang(kizuki::i18n::Lang::En);
        let table = history_table(&sessions, &events);
        if let Err(e) = check::terminal_safe("history table", &table) {
            prop_assert!(false, "{}\n{}", e, table);
        }
        let tame: Vec<SessionRow> = sessions.iter().map(tame_session).collect();
        let tame_table = history_table(&tame, &events);
        prop_assert_eq!(table.lines().count(), tame_table.lines().count(), "{}", table);
        let head = Head { id: None, at: None, hash: String::new() };
        let json = history_json(&sessions, &events, &head).to_string();
        prop_assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
    }
}
