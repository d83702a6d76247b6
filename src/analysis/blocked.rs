//! The user's decision against what runs: `blocked-running`. Marks come
//! from the marks stage, which runs before analysis and fills
//! `Program::mark`; this detector only reads that field.

use serde_json::json;

use super::{Detected, evidence};
use crate::i18n::tr;
use crate::model::{FindingKind, Mark, Program, Severity};

/// `blocked-running`: marked blocked, yet a process is alive; worse when it
/// also has live connections (the block is not holding).
pub fn blocked_running(p: &Program) -> Option<Detected> {
    if p.mark != Some(Mark::Blocked) {
        return None;
    }
    let alive: Vec<u32> = p
        .processes
        .iter()
        .filter(|x| x.alive)
        .map(|x| x.pid)
        .collect();
    if alive.is_empty() {
        return None;
    }
    let live = p.live_connections().count();
    Some(Detected {
        kind: FindingKind::BlockedRunning,
        severity: if live > 0 {
            Severity::High
        } else {
            Severity::Medium
        },
        summary: tr(if live > 0 {
            "findings.blocked_running.net"
        } else {
            "findings.blocked_running.idle"
        }),
        evidence: evidence([("pids", json!(alive)), ("live_connections", json!(live))]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testkit::{outgoing, program};

    type Case = (
        &'static str,
        Option<Mark>,
        bool,
        Vec<crate::model::Connection>,
        Option<Severity>,
    );

    #[test]
    fn blocked_running_table() {
        let mut ended = outgoing("203.0.113.1:443");
        ended.live = false;
        let cases: Vec<Case> = vec![
            (
                "blocked, online",
                Some(Mark::Blocked),
                true,
                vec![outgoing("203.0.113.1:443")],
                Some(Severity::High),
            ),
            (
                "blocked, running quietly",
                Some(Mark::Blocked),
                true,
                vec![],
                Some(Severity::Medium),
            ),
            (
                "blocked, only an ended connection",
                Some(Mark::Blocked),
                true,
                vec![ended],
                Some(Severity::Medium),
            ),
            (
                "blocked and exited",
                Some(Mark::Blocked),
                false,
                vec![],
                None,
            ),
            (
                "trusted",
                Some(Mark::Trusted),
                true,
                vec![outgoing("203.0.113.1:443")],
                None,
            ),
            ("unmarked", None, true, vec![], None),
        ];
        for (name, mark, alive, conns, want) in cases {
            let mut p = program("/home/a/tool", conns);
            p.mark = mark;
            p.processes[0].alive = alive;
            assert_eq!(blocked_running(&p).map(|d| d.severity), want, "{name}");
        }
    }
}
