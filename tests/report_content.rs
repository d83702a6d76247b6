//! Report content: Markdown, HTML and JSON of a fixed program compared with
//! stored snapshots (the version is redacted), hostile names, the desk
//! summary, and the consultation links built from it.
//!
//! `UPDATE_SNAPSHOTS=1 cargo test --test report_content` rewrites the
//! snapshots; review the diff before committing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use kizuki::consult::{self, Contacts, LinkKind};
use kizuki::i18n::Lang;
use kizuki::model::{
    Connection, Finding, FindingKind, Mark, ProcessInfo, Program, ProgramKey, Protocol, Severity,
    SockState,
};
use kizuki::report::{
    self, ActionTaken, Extras, Format, MachineInfo, ProcessLink, Report, ReportOptions,
};

const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// 2026-11-25T12:00:00Z.
fn noon() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_608_000)
}

fn at(secs: u64) -> SystemTime {
    noon() + Duration::from_secs(secs)
}

fn conn(local: &str, remote: Option<&str>, state: SockState, from: u64, to: u64) -> Connection {
    Connection {
        bytes_received: None,
        bytes_sent: None,
        pid: Some(4242),
        protocol: Protocol::Tcp,
        local: local.parse().unwrap(),
        remote: remote.map(|r| r.parse().unwrap()),
        state,
        first_seen: at(from),
        last_seen: at(to),
        live: true,
        uid: Some(1000),
        remote_name: None,
    }
}

fn program(name: &str, exe: &str, cmdline: &[&str]) -> Program {
    let mut evidence = serde_json::Map::new();
    evidence.insert("endpoint".into(), "203.0.113.7:443".into());
    evidence.insert("interval_secs".into(), 3.into());
    Program {
        key: ProgramKey::Exe(exe.into()),
        name: name.to_string(),
        exe: Some(exe.into()),
        exe_deleted: true,
        sha256: Some(HASH.into()),
        processes: vec![ProcessInfo {
            pid: 4242,
            parent: Some(100),
            name: name.chars().take(15).collect(),
            cmdline: cmdline.iter().map(|s| s.to_string()).collect(),
            user: Some("alice".into()),
            uid: Some(1000),
            start_time: 1_795_607_940,
            alive: true,
            exe_deleted: true,
            sha256: Some(HASH.into()),
        }],
        connections: vec![
            conn(
                "192.168.1.20:50000",
                Some("203.0.113.7:443"),
                SockState::Established,
                0,
                30,
            ),
            conn("0.0.0.0:4444", None, SockState::Listen, 5, 30),
        ],
        findings: vec![
            Finding {
                kind: FindingKind::Beaconing,
                severity: Severity::Medium,
                summary: "Contacts 203.0.113.7:443 every 3 seconds.".into(),
                evidence,
                first_raised: at(20),
            },
            Finding {
                kind: FindingKind::ExeDeleted,
                severity: Severity::High,
                summary: "Its file was deleted while it runs.".into(),
                evidence: serde_json::Map::new(),
                first_raised: at(1),
            },
        ],
        mark: Some(Mark::Blocked),
        stale_mark: None,
        first_seen: at(0),
    }
}

fn fixture() -> Program {
    program(
        "evil-tool",
        "/home/alice/Downloads/evil-tool",
        &["/home/alice/Downloads/evil-tool", "--silent", "a b"],
    )
}

fn extras() -> Extras {
    let mut chains = BTreeMap::new();
    chains.insert(
        4242,
        vec![
            ProcessLink {
                pid: 100,
                name: Some("bash".into()),
            },
            ProcessLink {
                pid: 1,
                name: Some("systemd".into()),
            },
        ],
    );
    Extras {
        // As Windows records a browser download (the Mark of the Web).
        downloaded_from: Some("https://bbs.example.jp/dl/freetool.zip".into()),
        // The journal remembers a connection from before kizuki's window,
        // and the same HTTPS session starting earlier.
        journal_connections: Some(vec![
            Connection {
                live: false,
                ..conn(
                    "192.168.1.20:49000",
                    Some("198.51.100.5:80"),
                    SockState::TimeWait,
                    0,
                    2,
                )
            },
            Connection {
                live: false,
                ..conn(
                    "192.168.1.20:50000",
                    Some("203.0.113.7:443"),
                    SockState::Established,
                    0,
                    10,
                )
            },
        ]),
        findings: Vec::new(),
        actions: vec![ActionTaken {
            at: at(40),
            action: "mark_blocked".into(),
            detail: None,
        }],
        parent_chains: chains,
        file_size: Some(12_345),
    }
}

fn machine() -> MachineInfo {
    MachineInfo {
        os: "Debian GNU/Linux 12 (bookworm)".into(),
        os_version: Some("12".into()),
        kernel: Some("6.1.0-test".into()),
        arch: "x86_64".into(),
        hostname: None,
    }
}

fn build(p: &Program, lang: Lang) -> Report {
    Report::build(p, &extras(), machine(), at(60), lang)
}

/// Removes what changes between builds: the version.
fn redact(s: &str) -> String {
    s.replace(env!("CARGO_PKG_VERSION"), "<VERSION>")
}

fn check_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    let actual = redact(actual);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing {}: run with UPDATE_SNAPSHOTS=1", path.display()));
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from the snapshot at line {}:\n  expected: {:?}\n  actual:   {:?}\n(UPDATE_SNAPSHOTS=1 to accept)",
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

#[test]
fn markdown_report_matches_snapshot() {
    let r = build(&fixture(), Lang::Ja);
    check_snapshot(
        "report.ja.md",
        &report::render(&r, Format::Markdown).unwrap(),
    );
}

#[test]
fn english_markdown_report_matches_snapshot_and_keeps_the_japanese_summary() {
    let r = build(&fixture(), Lang::En);
    let md = report::render(&r, Format::Markdown).unwrap();
    assert!(md.contains("Summary for the consultation desk"));
    assert!(
        md.contains(&r.summary.ja),
        "the desk summary is in Japanese too"
    );
    check_snapshot("report.en.md", &md);
}

#[test]
fn html_report_matches_snapshot() {
    let r = build(&fixture(), Lang::Ja);
    check_snapshot("report.ja.html", &report::render(&r, Format::Html).unwrap());
}

#[test]
fn json_report_matches_snapshot_and_parses() {
    let r = build(&fixture(), Lang::En);
    let text = report::render(&r, Format::Json).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["schema"], "kizuki-report/1");
    assert_eq!(v["written_at"], "2026-11-25T12:01:00Z");
    assert_eq!(v["program"]["sha256"], HASH);
    assert_eq!(v["program"]["exe_deleted"], true);
    assert_eq!(v["program"]["size"], 12_345);
    assert_eq!(v["processes"][0]["parents"][0]["name"], "bash");
    assert_eq!(v["connections_source"], "journal");
    // The journal's extra connection is merged in; the shared session is
    // listed once, from its earliest to its latest sight.
    let conns = v["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 3, "{conns:?}");
    let https: Vec<_> = conns
        .iter()
        .filter(|c| c["remote"] == "203.0.113.7:443")
        .collect();
    assert_eq!(https.len(), 1);
    assert_eq!(https[0]["first_seen"], "2026-11-25T12:00:00Z");
    assert_eq!(https[0]["last_seen"], "2026-11-25T12:00:30Z");
    assert_eq!(https[0]["live"], true);
    // Most serious first.
    assert_eq!(v["findings"][0]["kind"], "exe-deleted");
    assert_eq!(v["findings"][1]["evidence"]["interval_secs"], 3);
    assert_eq!(v["actions"][0]["action"], "mark_blocked");
    assert_eq!(v["machine"]["hostname"], serde_json::Value::Null);
    assert!(v["summary"]["ja"].as_str().unwrap().contains(HASH));
    check_snapshot("report.json", &text);
}

#[test]
fn the_desk_summary_holds_the_hash_the_connections_and_the_facts() {
    for lang in [Lang::Ja, Lang::En] {
        let r = build(&fixture(), lang);
        for s in [&r.summary.ja, &r.summary.en] {
            assert!(s.contains(HASH), "{s}");
            assert!(s.contains("203.0.113.7:443"), "{s}");
            assert!(s.contains("198.51.100.5:80"), "{s}");
            assert!(s.contains("0.0.0.0:4444"), "{s}");
            assert!(s.contains("/home/alice/Downloads/evil-tool"), "{s}");
            assert!(s.contains("Debian GNU/Linux 12"), "{s}");
            assert!(s.contains("PID 4242"), "{s}");
        }
    }
    let r = build(&fixture(), Lang::Ja);
    assert!(
        r.summary.ja.contains("2026-11-25 21:00:00 (日本時間)"),
        "{}",
        r.summary.ja
    );
    assert!(r.summary.ja.contains("削除"), "{}", r.summary.ja);
    assert!(
        r.summary.en.contains("2026-11-25 12:00:00 UTC"),
        "{}",
        r.summary.en
    );
}

#[test]
fn finding_explanations_fall_back_to_the_summary() {
    let r = build(&fixture(), Lang::En);
    for f in &r.findings {
        let key = format!("finding.{}.why", f.kind.as_str());
        let text = kizuki::i18n::tr_in(Lang::En, &key);
        if text == key {
            assert_eq!(f.explanation, f.summary);
        } else {
            assert_eq!(f.explanation, text);
        }
        assert!(!f.explanation.starts_with("finding."));
    }
}

fn hostile() -> Program {
    program(
        "<script>alert(1)</script>",
        "/tmp/<img src=x onerror=alert(2)>/\"'&`x`\n\u{202E}gpj.exe",
        &[
            "<script>alert(3)</script>",
            "--x=\"><script>alert(4)</script>",
            "`rm -rf ~`",
        ],
    )
}

#[test]
fn html_escapes_hostile_names_paths_and_command_lines() {
    let r = build(&hostile(), Lang::En);
    let html = report::render(&r, Format::Html).unwrap();
    let lower = html.to_lowercase();
    assert!(!lower.contains("<script"), "raw <script in:\n{html}");
    assert!(!lower.contains("<img"), "raw <img in:\n{html}");
    assert!(!html.contains('\u{202E}'));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;"));
    // Self-contained: no external resources, no scripts at all.
    for bad in ["src=\"", "href=", "<link", "@import", "url("] {
        assert!(!lower.contains(bad), "{bad} in:\n{html}");
    }
    assert!(html.contains("Content-Security-Policy"));
}

#[test]
fn markdown_cannot_be_broken_out_of_by_hostile_names() {
    let r = build(&hostile(), Lang::Ja);
    let md = report::render(&r, Format::Markdown).unwrap();
    // Outside code (which Markdown shows literally) no markup survives.
    let prose = outside_code(&md);
    assert!(!prose.contains('<'), "raw < outside code:\n{prose}");
    assert!(md.contains("`<script>alert(1)</script>`"));
    assert!(!md.contains('\u{202E}'));
    // The newline in the path is shown, not obeyed: the path stays on its line.
    let path_line = md.lines().find(|l| l.contains("/tmp/")).unwrap();
    assert!(path_line.contains("gpj.exe"), "{path_line}");
    let json = report::render(&r, Format::Json).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["program"]["name"], "<script>alert(1)</script>");
}

#[test]
fn mailto_link_carries_the_summary_percent_encoded() {
    let r = build(&fixture(), Lang::Ja);
    let contacts = Contacts::builtin();
    let steps = consult::steps(&contacts, Lang::Ja, Some(&r));
    let ipa = steps[3]
        .contacts
        .iter()
        .find(|c| c.id == "ipa_anshin")
        .unwrap();
    let mail = ipa.field("email").unwrap().link.clone().unwrap();
    assert_eq!(mail.kind, LinkKind::Mailto);
    assert!(mail.uri.is_ascii());
    assert!(!mail.uri.contains(' ') && !mail.uri.contains('\n'));
    let body = mail.uri.split("&body=").nth(1).unwrap();
    let decoded = percent_decode(body);
    assert!(decoded.contains(HASH));
    assert!(decoded.contains("203.0.113.7:443"));
    assert!(decoded.contains("気づき"), "Japanese survives: {decoded}");
    assert!(decoded.contains(&r.summary.ja.replace('\n', "\r\n")));
}

#[test]
fn the_ipa_checklist_is_filled_from_the_report() {
    let r = build(&fixture(), Lang::Ja);
    let list = consult::checklist(Lang::Ja, Some(&r));
    let all = list.join("\n");
    assert!(all.contains("Debian GNU/Linux 12"), "{all}");
    assert!(all.contains(HASH), "{all}");
    assert!(all.contains("/home/alice/Downloads/evil-tool"), "{all}");
    assert!(all.contains("203.0.113.7:443"), "{all}");
    assert!(
        all.contains("2026-11-25 20:59:00 (日本時間)"),
        "started: {all}"
    );
    assert!(all.contains("ダウンロード"), "{all}");
}

#[test]
fn write_report_saves_into_the_reports_folder_with_a_safe_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = ReportOptions::new(report::default_reports_dir(dir.path()), at(60));
    opts.machine = Some(machine());
    opts.lang = Lang::Ja;
    opts.format = Format::Html;
    let p = hostile();
    let files = report::write_report(&p, &opts).unwrap();
    assert_eq!(files.report.parent().unwrap(), dir.path().join("reports"));
    let name = files
        .report
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with("kizuki-report-20261125-120100Z-"),
        "{name}"
    );
    assert!(name.ends_with(".html"), "{name}");
    assert!(!name.contains('<') && !name.contains('/'), "{name}");
    // A second report in the same second gets its own file.
    let again = report::write_report(&p, &opts).unwrap();
    assert_ne!(again.report, files.report);
    assert!(files.report.exists() && again.report.exists());
    assert_eq!(files.folder(), dir.path().join("reports"));
    // --out writes exactly there.
    opts.out = Some(dir.path().join("mine.html"));
    let out = report::write_report(&p, &opts).unwrap();
    assert_eq!(out.report, dir.path().join("mine.html"));
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap(),
            );
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The Markdown text with fenced blocks and code spans removed: what a
/// viewer would interpret as markup.
fn outside_code(md: &str) -> String {
    let mut out = String::new();
    let mut fence: Option<String> = None;
    for line in md.lines() {
        let ticks: String = line.chars().take_while(|c| *c == '`').collect();
        if let Some(f) = &fence {
            if ticks.len() >= f.len() && line.trim_start_matches('`').trim().is_empty() {
                fence = None;
            }
            continue;
        }
        if ticks.len() >= 3 {
            fence = Some(ticks);
            continue;
        }
        // Code spans: a run of n backticks up to the next run of exactly n.
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '`' {
                let n = chars[i..].iter().take_while(|c| **c == '`').count();
                let mut j = i + n;
                let mut closed = None;
                while j < chars.len() {
                    if chars[j] == '`' {
                        let m = chars[j..].iter().take_while(|c| **c == '`').count();
                        if m == n {
                            closed = Some(j + m);
                            break;
                        }
                        j += m;
                    } else {
                        j += 1;
                    }
                }
                match closed {
                    Some(end) => i = end,
                    None => {
                        out.push('`');
                        i += 1;
                    }
                }
            } else {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 2;
                    continue;
                }
                out.push(chars[i]);
                i += 1;
            }
        }
        out.push('\n');
    }
    out
}

#[test]
fn summary_text_describes_the_program_for_the_desk() {
    let s = report::summary_text(&fixture(), Lang::Ja);
    assert!(s.contains(HASH), "{s}");
    assert!(s.contains("203.0.113.7:443"), "{s}");
    assert!(s.starts_with("「気づき」"), "{s}");
    let en = report::summary_text(&fixture(), Lang::En);
    assert!(en.contains("Connections (2):"), "{en}");
}

#[test]
fn repeated_contacts_are_one_line_and_first_seen_is_not_after_them() {
    let mut p = fixture();
    // kizuki noticed the program late (after a restart, say)…
    p.first_seen = at(3600);
    // …but its journal holds fifteen earlier contacts with one server.
    p.connections = (0..15)
        .map(|i| {
            let mut c = conn(
                &format!("127.0.0.1:{}", 50000 + i),
                Some("127.0.0.1:8000"),
                SockState::CloseWait,
                i * 60,
                i * 60 + 2,
            );
            c.live = false;
            c
        })
        .collect();
    let r = build(&p, Lang::En);
    let summary = r.summary_in(Lang::En);
    let lines: Vec<&str> = summary
        .lines()
        .filter(|l| l.contains("127.0.0.1:8000"))
        .collect();
    assert_eq!(lines.len(), 1, "{summary}");
    assert!(
        lines[0].contains("15 connections to 127.0.0.1:8000"),
        "{}",
        lines[0]
    );
    assert!(
        !summary.contains("CLOSE_WAIT"),
        "one word for ended: {summary}"
    );
    assert!(
        r.program.first_seen <= at(0),
        "first seen no later than the first connection"
    );
    assert!(r.connections.iter().all(|c| c.state == "ENDED"));
}
