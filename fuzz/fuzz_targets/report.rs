//! Every output about a program (report in Markdown, HTML and JSON, scan
//! JSON, the terminal table) fed arbitrary names, paths and command lines:
//! escaped, valid, and with the structure a tame program gets.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/hostile/check.rs"]
mod check;

#[derive(Debug, Arbitrary)]
struct Input {
    name: String,
    exe: Option<Vec<u8>>,
    cmdline: Vec<String>,
    user: Option<String>,
    finding_summary: String,
    evidence: String,
    action_detail: Option<String>,
    os: String,
    parent_name: String,
}

fuzz_target!(|i: Input| {
    let h = check::Hostile {
        name: i.name,
        exe: i.exe,
        cmdline: i.cmdline,
        user: i.user,
        finding_summary: i.finding_summary,
        evidence: i.evidence,
        action_detail: i.action_detail,
        os: i.os,
        parent_name: i.parent_name,
    };
    if let Err(e) = check::check_all(&h) {
        panic!("{e}\ninput: {h:?}");
    }
});
