//! Property tests: any string a program chooses as its name, path (any
//! bytes), command line or user comes out of every output escaped and
//! valid — scan JSON parses and keeps it exactly, the terminal table and
//! the reports carry no raw control or bidi characters, the HTML report
//! gains no markup and the Markdown report no structure (no HTML, no
//! links, no extra rows or headings).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "hostile/check.rs"]
mod check;

use check::Hostile;
use proptest::prelude::*;

/// Pieces that have broken renderers elsewhere, mixed with any character.
const NASTY: &[&str] = &[
    "\n",
    "\r\n",
    "\t",
    "\x1b[2J",
    "\x1b]8;;http://x\x07",
    "\u{202E}",
    "\u{2066}",
    "\u{200B}",
    "\u{FEFF}",
    "\u{85}",
    "\0",
    "\x7f",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "\"'><",
    "&amp;",
    "`",
    "```",
    "|",
    "# ",
    "- ",
    "> ",
    "***",
    "[x](javascript:alert(1))",
    "![i](http://e/i.png)",
    "<!--",
    "=cmd|' /C calc'!A0",
    "{name}",
    "{file}",
    "\\",
    "___",
    "~~",
    "<http://e.test>",
    "| --- |",
];

fn hostile_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => any::<char>().prop_map(String::from),
            2 => prop::sample::select(NASTY).prop_map(str::to_string),
            1 => "[a-z/._ -]{1,6}",
        ],
        0..10,
    )
    .prop_map(|parts| parts.concat())
}

fn hostile_path() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        prop::collection::vec(
            prop_oneof![
                2 => any::<u8>().prop_map(|b| vec![b]),
                2 => prop::sample::select(NASTY).prop_map(|s| s.as_bytes().to_vec()),
                1 => Just(b"/".to_vec()),
            ],
            0..10,
        ),
    )
        .prop_map(|(absolute, parts)| {
            let mut p = if absolute { b"/".to_vec() } else { Vec::new() };
            p.extend(parts.concat());
            p
        })
}

fn hostile() -> impl Strategy<Value = Hostile> {
    (
        hostile_text(),
        prop::option::of(hostile_path()),
        prop::collection::vec(hostile_text(), 0..4),
        prop::option::of(hostile_text()),
        hostile_text(),
        hostile_text(),
        prop::option::of(hostile_text()),
        hostile_text(),
        hostile_text(),
    )
        .prop_map(
            |(name, exe, cmdline, user, finding_summary, evidence, action_detail, os, parent)| {
                Hostile {
                    name,
                    exe,
                    cmdline,
                    user,
                    finding_summary,
                    evidence,
                    action_detail,
                    os,
                    parent_name: parent,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn any_program_data_comes_out_escaped_and_valid(h in hostile()) {
        if let Err(e) = check::check_all(&h) {
            prop_assert!(false, "{}", e);
        }
    }

    #[test]
    fn any_string_shown_is_terminal_safe(s in hostile_text()) {
        let shown = kizuki::escape::for_display(&s);
        prop_assert!(check::terminal_safe("for_display", &shown).is_ok());
        prop_assert!(!shown.contains('\n'));
    }
}

/// The cases that broke a renderer once stay tested by name.
#[test]
fn known_hostile_programs_come_out_clean() {
    let cases = [
        Hostile {
            name: "invoice\u{202E}fdp.exe".into(),
            exe: Some(b"/tmp/<b>x</b>\n| a | b |\xff".to_vec()),
            cmdline: vec!["--x=`id`".into(), "\x1b[31mred".into(), "".into()],
            user: Some("=HYPERLINK(\"http://e\")".into()),
            finding_summary: "[click](javascript:alert(1)) <script>".into(),
            evidence: "```\n# title".into(),
            action_detail: Some("<!-- x".into()),
            os: "Debian\r\n## injected".into(),
            parent_name: "bash\u{2066}".into(),
        },
        // A lone tab at the start: table cells and code spans.
        Hostile {
            name: "\t".into(),
            exe: Some(b"/\t".to_vec()),
            cmdline: vec!["\t".into()],
            user: None,
            finding_summary: "|".into(),
            evidence: "`".into(),
            action_detail: None,
            os: "-".into(),
            parent_name: "".into(),
        },
    ];
    for h in cases {
        check::check_all(&h).unwrap_or_else(|e| panic!("{e}"));
    }
}
