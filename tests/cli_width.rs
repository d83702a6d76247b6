#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CLI tables line up by display width: a Japanese name or header (two
//! columns a character) does not push the columns after it.

use kizuki::i18n::{self, Lang};
use kizuki::model::{ProcessInfo, Program, Snapshot};
use kizuki::textwidth::width;

#[test]
fn japanese_names_and_headers_keep_the_columns_aligned() {
    i18n::set_lang(Lang::Ja);
    let mut s = Snapshot::empty();
    for (name, pid) in [("curl", 4101), ("ダウンロード道具", 4102), ("メール", 4103)] {
        let mut p = Program::fake(name, &[]);
        p.processes = vec![ProcessInfo::fake(pid, name)];
        s.programs.push(p);
    }
    let table = kizuki::cli::output::snapshot_table(&s);
    let lines: Vec<&str> = table.lines().collect();
    // Where the PID column starts, in display columns, on each line that
    // has one: the header and the three program lines.
    let pid_col = |line: &str| -> Option<usize> {
        let at = line.find("410").or_else(|| line.find("PID"))?;
        Some(width(&line[..at]))
    };
    let header = pid_col(lines[0]).expect("header has PID");
    let rows: Vec<usize> = lines
        .iter()
        .filter(|l| !l.starts_with(' ') && l.contains("410"))
        .map(|l| pid_col(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(
        rows.iter().all(|&c| c == header),
        "{header} vs {rows:?}\n{table}"
    );
}
