//! What the program list shows, derived from the state: badges, the most
//! important finding, filtering, searching and ordering. Pure functions.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};

use super::state::{AppState, SortKey};
use crate::escape::{for_display, os_lossless};
use crate::model::{Finding, FindingKind, Mark, Program, Severity, Snapshot};

/// The state a program is in, as one word for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Badge {
    Trusted,
    /// The user marked it "unknown" (保留: decide later).
    Unknown,
    /// No decision yet (未判定).
    Undecided,
    Blocked,
    New,
    Changed,
}

impl Badge {
    pub fn as_str(self) -> &'static str {
        match self {
            Badge::Trusted => "trusted",
            Badge::Unknown => "unknown",
            Badge::Undecided => "undecided",
            Badge::Blocked => "blocked",
            Badge::New => "new",
            Badge::Changed => "changed",
        }
    }
}

fn has(p: &Program, kind: FindingKind) -> bool {
    p.findings.iter().any(|f| f.kind == kind)
}

/// The user's decision wins; then "changed" (its old mark no longer
/// applies), then "new".
pub fn badge(mark: Option<Mark>, p: &Program) -> Badge {
    match mark {
        Some(Mark::Blocked) => Badge::Blocked,
        Some(Mark::Trusted) => Badge::Trusted,
        _ if p.stale_mark.is_some() || has(p, FindingKind::ExeChanged) => Badge::Changed,
        _ if has(p, FindingKind::NewProgram) => Badge::New,
        Some(Mark::Unknown) => Badge::Unknown,
        None => Badge::Undecided,
    }
}

/// The finding to show first: the most severe, then the rarer kinds.
pub fn top_finding(p: &Program) -> Option<&Finding> {
    p.findings
        .iter()
        .max_by_key(|f| (f.severity, Reverse(f.kind)))
}

/// How much a program needs the user's eyes: 0 none … 4 high.
pub fn attention(mark: Option<Mark>, p: &Program) -> u8 {
    let from_findings = p
        .findings
        .iter()
        .map(|f| match f.severity {
            Severity::Info => 0,
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
        })
        .max()
        .unwrap_or(0);
    let from_badge = match badge(mark, p) {
        Badge::Changed => 3,
        Badge::New => 2,
        _ => 0,
    };
    from_findings.max(from_badge)
}

/// Whether a program runs, as the OS last reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RunState {
    Running,
    /// Every live process is stopped (一時停止中).
    Suspended,
    /// No process is alive any more (終了済み).
    Ended,
}

impl RunState {
    /// The catalog key of its word.
    pub fn key(self) -> &'static str {
        match self {
            RunState::Running => "gui.state.running",
            RunState::Suspended => "gui.state.suspended",
            RunState::Ended => "gui.state.ended",
        }
    }
}

/// The state of `p` in `snap`: suspended only when the OS reported every
/// live process stopped.
pub fn run_state(snap: &Snapshot, p: &Program) -> RunState {
    let mut alive = p.processes.iter().filter(|x| x.alive).peekable();
    if alive.peek().is_none() {
        return RunState::Ended;
    }
    if alive.all(|x| snap.suspended.contains(&x.pid)) {
        RunState::Suspended
    } else {
        RunState::Running
    }
}

/// One line of the program list.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    pub program: &'a Program,
    pub badge: Badge,
    pub live: usize,
    pub top: Option<&'a Finding>,
    pub attention: u8,
    pub run: RunState,
}

/// The full path as shown (escaped), else the name.
pub fn shown_path(p: &Program) -> String {
    match &p.exe {
        Some(e) => for_display(&os_lossless(e.as_os_str())),
        None => for_display(&p.name),
    }
}

fn matches(p: &Program, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    let hay = |s: &str| s.to_lowercase().contains(needle);
    hay(&p.name)
        || p.exe
            .as_ref()
            .is_some_and(|e| hay(&os_lossless(e.as_os_str())))
        || p.user().is_some_and(|u| hay(&u))
        || p.processes.iter().any(|x| x.pid.to_string() == needle)
}

/// The programs to list, filtered and ordered as the state asks.
pub fn rows(state: &AppState) -> Vec<Row<'_>> {
    let needle = state.search.trim().to_lowercase();
    let mut rows: Vec<Row<'_>> = state
        .snapshot
        .programs
        .iter()
        .filter(|p| matches(p, &needle))
        .map(|p| {
            let mark = state.mark_of(p);
            let run = run_state(&state.snapshot, p);
            Row {
                program: p,
                badge: badge(mark, p),
                live: p.live_connections().count(),
                top: top_finding(p),
                // An ended program needs no action now; its findings stay
                // readable in its details (and reports).
                attention: if run == RunState::Ended {
                    0
                } else {
                    attention(mark, p)
                },
                run,
            }
        })
        .filter(|r| !state.only_network || r.live > 0)
        .filter(|r| !state.only_attention || r.attention > 0)
        .collect();
    // Ended programs after the running ones; ties are broken by name,
    // then by key, so the order never flickers.
    let name = |r: &Row<'_>| r.program.name.to_lowercase();
    let ended = |r: &Row<'_>| r.run == RunState::Ended;
    match state.sort {
        SortKey::Attention => rows.sort_by_cached_key(|r| {
            (
                ended(r),
                Reverse(r.attention),
                Reverse(r.live),
                name(r),
                r.program.key.clone(),
            )
        }),
        SortKey::Name => rows.sort_by_cached_key(|r| (ended(r), name(r), r.program.key.clone())),
        SortKey::Connections => {
            rows.sort_by_cached_key(|r| (ended(r), Reverse(r.live), name(r), r.program.key.clone()))
        }
    }
    rows
}

/// Parents of `pid`, nearest first, as (pid, name), from every process in
/// the snapshot. Stops at an unknown PID or a loop.
pub fn parent_chain(snap: &Snapshot, pid: u32) -> Vec<(u32, String)> {
    let procs: HashMap<u32, (Option<u32>, &str)> = snap
        .programs
        .iter()
        .flat_map(|p| p.processes.iter())
        .filter(|x| x.alive)
        .map(|x| (x.pid, (x.parent, x.name.as_str())))
        .collect();
    let mut chain = Vec::new();
    let mut seen = HashSet::from([pid]);
    let mut cur = procs.get(&pid).and_then(|(parent, _)| *parent);
    while let Some(ppid) = cur {
        if !seen.insert(ppid) || chain.len() >= 16 {
            break;
        }
        match procs.get(&ppid) {
            Some((next, name)) => {
                chain.push((ppid, for_display(name)));
                cur = *next;
            }
            None => {
                chain.push((ppid, String::new()));
                break;
            }
        }
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;
    use crate::model::{ProcessInfo, ProgramKey};
    use std::sync::Arc;
    use std::time::SystemTime;

    fn program(name: &str) -> Program {
        Program {
            key: ProgramKey::Exe(format!("/usr/bin/{name}").into()),
            name: name.into(),
            exe: Some(format!("/usr/bin/{name}").into()),
            exe_deleted: false,
            sha256: None,
            processes: vec![ProcessInfo::fake(100, name)],
            connections: vec![],
            findings: vec![],
            mark: None,
            stale_mark: None,
            first_seen: SystemTime::UNIX_EPOCH,
        }
    }

    fn finding(kind: FindingKind, severity: Severity) -> Finding {
        Finding {
            kind,
            severity,
            summary: kind.as_str().into(),
            evidence: Default::default(),
            first_raised: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn users_decision_wins_over_changed_and_new() {
        let mut p = program("tool");
        p.findings
            .push(finding(FindingKind::NewProgram, Severity::Low));
        assert_eq!(badge(None, &p), Badge::New);
        p.stale_mark = Some(Mark::Trusted);
        assert_eq!(badge(None, &p), Badge::Changed);
        assert_eq!(badge(Some(Mark::Blocked), &p), Badge::Blocked);
        assert_eq!(badge(Some(Mark::Trusted), &p), Badge::Trusted);
        assert_eq!(badge(Some(Mark::Unknown), &p), Badge::Changed);
        assert_eq!(badge(None, &program("x")), Badge::Undecided);
        assert_eq!(badge(Some(Mark::Unknown), &program("x")), Badge::Unknown);
    }

    #[test]
    fn suspicious_first_then_busy_then_by_name() {
        let mut state = AppState::new(Lang::En);
        let a = program("aaa");
        let mut z = program("zzz");
        z.findings.push(finding(FindingKind::Tor, Severity::High));
        let mut m = program("mmm");
        m.findings
            .push(finding(FindingKind::Listening, Severity::Info));
        let mut snap = Snapshot::empty();
        snap.programs = vec![a, m, z];
        state.snapshot = Arc::new(snap);
        let names = |s: &AppState| -> Vec<String> {
            rows(s).iter().map(|r| r.program.name.clone()).collect()
        };
        assert_eq!(names(&state), ["zzz", "aaa", "mmm"]);
        state.only_attention = true;
        assert_eq!(names(&state), ["zzz"]);
        state.only_attention = false;
        state.sort = SortKey::Name;
        assert_eq!(names(&state), ["aaa", "mmm", "zzz"]);
        state.search = "MM".into();
        assert_eq!(names(&state), ["mmm"]);
    }

    #[test]
    fn suspended_and_ended_programs_are_told_apart_and_ended_ones_go_last() {
        let mut state = AppState::new(Lang::Ja);
        let mut gone = program("aaa-gone");
        gone.processes[0].alive = false;
        gone.findings
            .push(finding(FindingKind::Tor, Severity::High));
        let mut frozen = program("frozen");
        frozen.processes = vec![ProcessInfo::fake(7, "frozen")];
        let mut snap = Snapshot::empty();
        snap.programs = vec![gone, frozen, program("zzz")];
        snap.suspended = vec![7];
        state.snapshot = Arc::new(snap);
        let got: Vec<(String, RunState)> = rows(&state)
            .iter()
            .map(|r| (r.program.name.clone(), r.run))
            .collect();
        assert_eq!(
            got,
            vec![
                ("frozen".into(), RunState::Suspended),
                ("zzz".into(), RunState::Running),
                ("aaa-gone".into(), RunState::Ended),
            ]
        );
        state.sort = SortKey::Name;
        assert_eq!(rows(&state).last().unwrap().program.name, "aaa-gone");
    }

    #[test]
    fn parent_chain_follows_parents_and_survives_loops() {
        let proc_ = |pid, parent, name: &str| ProcessInfo {
            parent,
            ..ProcessInfo::fake(pid, name)
        };
        let mut p = program("x");
        p.processes = vec![
            proc_(30, Some(20), "tool"),
            proc_(20, Some(10), "bash\n"),
            proc_(10, Some(30), "loop"),
        ];
        let mut snap = Snapshot::empty();
        snap.programs = vec![p];
        let chain = parent_chain(&snap, 30);
        assert_eq!(chain, vec![(20, "bash\\n".into()), (10, "loop".into())]);
    }
}
