//! Independent warning signs add up. One medium sign has an innocent
//! explanation often enough; several unrelated ones on the same program
//! rarely do. The rules (documented as a table in docs/FINDINGS.md):
//!
//! | rule | signs | result |
//! |---|---|---|
//! | `dropped-listener` | from a temp/download/cache folder + accepts connections from other computers + new | high |
//! | `dropped-beacon` | from a temp/download/cache folder + regular contacts to the internet + new | high |
//! | `hiding` | any two of: file deleted, disguised name, remote shell, Tor | high |
//!
//! When a rule holds, the program's most serious involved finding becomes
//! high, its sentence says which signs came together, and its evidence
//! names the rule and the signs. Trusted programs are not escalated.

use serde_json::json;

use super::{Detected, title};
use crate::i18n::{tr, tr_args};
use crate::model::{FindingKind, Severity};

/// One sign a finding stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sign {
    Dropped,
    ListensWide,
    New,
    BeaconsOut,
    Deleted,
    Disguised,
    RemoteShell,
    Tor,
}

fn sign_of(d: &Detected) -> Option<Sign> {
    let ev = |k: &str| d.evidence.get(k);
    Some(match d.kind {
        FindingKind::RunsFromTemp => Sign::Dropped,
        FindingKind::Listening if ev("other_computers") == Some(&json!(true)) => Sign::ListensWide,
        FindingKind::NewProgram => Sign::New,
        FindingKind::Beaconing if ev("reach") == Some(&json!("public")) => Sign::BeaconsOut,
        // A package update in a system folder is not a sign.
        FindingKind::ExeDeleted if d.severity >= Severity::Medium => Sign::Deleted,
        FindingKind::Disguised => Sign::Disguised,
        FindingKind::RemoteShell => Sign::RemoteShell,
        FindingKind::Tor if d.severity >= Severity::Medium => Sign::Tor,
        _ => return None,
    })
}

/// A rule: at least `min` of `signs` present.
struct Rule {
    name: &'static str,
    signs: &'static [Sign],
    min: usize,
}

const RULES: &[Rule] = &[
    Rule {
        name: "dropped-listener",
        signs: &[Sign::Dropped, Sign::ListensWide, Sign::New],
        min: 3,
    },
    Rule {
        name: "dropped-beacon",
        signs: &[Sign::Dropped, Sign::BeaconsOut, Sign::New],
        min: 3,
    },
    Rule {
        name: "hiding",
        signs: &[Sign::Deleted, Sign::Disguised, Sign::RemoteShell, Sign::Tor],
        min: 2,
    },
];

/// Applies the rules to everything found about one program (`trusted`:
/// the user's mark). At most one finding is raised to high, the one that
/// was most serious already (then the first kind in the vocabulary).
pub fn escalate(found: &mut [Detected], trusted: bool) {
    if trusted {
        return;
    }
    let signs: Vec<(usize, Sign)> = found
        .iter()
        .enumerate()
        .filter_map(|(i, d)| sign_of(d).map(|s| (i, s)))
        .collect();
    let mut rules: Vec<&'static str> = Vec::new();
    let mut involved: Vec<usize> = Vec::new();
    for rule in RULES {
        let hits: Vec<usize> = signs
            .iter()
            .filter(|(_, s)| rule.signs.contains(s))
            .map(|(i, _)| *i)
            .collect();
        if hits.len() >= rule.min {
            rules.push(rule.name);
            for i in hits {
                if !involved.contains(&i) {
                    involved.push(i);
                }
            }
        }
    }
    if rules.is_empty() {
        return;
    }
    involved.sort_by_key(|i| (std::cmp::Reverse(found[*i].severity), found[*i].kind));
    let Some(&lead) = involved.first() else {
        return;
    };
    let mut kinds: Vec<FindingKind> = involved.iter().map(|i| found[*i].kind).collect();
    kinds.sort();
    let reasons: Vec<String> = kinds.iter().map(|k| title(*k)).collect();
    let d = &mut found[lead];
    d.severity = Severity::High;
    d.summary = format!(
        "{} {}",
        d.summary,
        tr_args(
            "findings.escalated",
            &[("reasons", &reasons.join(&tr("findings.reason_sep")))]
        )
    );
    d.evidence.insert(
        "escalation".into(),
        json!({
            "rules": rules,
            "signs": kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::evidence;

    fn d(kind: FindingKind, severity: Severity, ev: &[(&str, serde_json::Value)]) -> Detected {
        let mut e = evidence([]);
        for (k, v) in ev {
            e.insert(k.to_string(), v.clone());
        }
        Detected {
            kind,
            severity,
            summary: "s.".into(),
            evidence: e,
        }
    }

    fn temp() -> Detected {
        d(FindingKind::RunsFromTemp, Severity::Medium, &[])
    }
    fn wide() -> Detected {
        d(
            FindingKind::Listening,
            Severity::Medium,
            &[("other_computers", json!(true))],
        )
    }
    fn local_listen() -> Detected {
        d(
            FindingKind::Listening,
            Severity::Low,
            &[("other_computers", json!(false))],
        )
    }
    fn new() -> Detected {
        d(FindingKind::NewProgram, Severity::Medium, &[])
    }
    fn deleted() -> Detected {
        d(FindingKind::ExeDeleted, Severity::Medium, &[])
    }
    fn updated() -> Detected {
        d(FindingKind::ExeDeleted, Severity::Low, &[])
    }
    fn disguised() -> Detected {
        d(FindingKind::Disguised, Severity::Medium, &[])
    }
    fn shell() -> Detected {
        d(FindingKind::RemoteShell, Severity::High, &[])
    }
    fn tor() -> Detected {
        d(FindingKind::Tor, Severity::Medium, &[])
    }
    fn beacon_out() -> Detected {
        d(
            FindingKind::Beaconing,
            Severity::Medium,
            &[("reach", json!("public"))],
        )
    }
    fn beacon_local() -> Detected {
        d(
            FindingKind::Beaconing,
            Severity::Low,
            &[("reach", json!("loopback"))],
        )
    }

    #[test]
    fn escalation_table() {
        use FindingKind::*;
        type Case = (
            &'static str,
            Vec<Detected>,
            bool,
            Option<(FindingKind, &'static str)>,
        );
        let cases: Vec<Case> = vec![
            (
                "dropped listener",
                vec![temp(), wide(), new()],
                false,
                Some((NewProgram, "dropped-listener")),
            ),
            (
                "dropped, loopback listener",
                vec![temp(), local_listen(), new()],
                false,
                None,
            ),
            (
                "dropped listener, known program",
                vec![temp(), wide()],
                false,
                None,
            ),
            (
                "dropped beacon",
                vec![temp(), beacon_out(), new()],
                false,
                Some((NewProgram, "dropped-beacon")),
            ),
            (
                "dropped beacon to this PC",
                vec![temp(), beacon_local(), new()],
                false,
                None,
            ),
            (
                "deleted + disguised",
                vec![deleted(), disguised()],
                false,
                Some((ExeDeleted, "hiding")),
            ),
            (
                "disguised + tor",
                vec![disguised(), tor()],
                false,
                Some((Tor, "hiding")),
            ),
            (
                "remote shell + deleted",
                vec![shell(), deleted()],
                false,
                Some((RemoteShell, "hiding")),
            ),
            (
                "package update + disguised",
                vec![updated(), disguised()],
                false,
                None,
            ),
            ("one sign", vec![disguised()], false, None),
            ("trusted", vec![deleted(), disguised()], true, None),
        ];
        for (name, mut found, trusted, want) in cases {
            let before: Vec<Severity> = found.iter().map(|f| f.severity).collect();
            escalate(&mut found, trusted);
            let raised: Vec<&Detected> = found
                .iter()
                .filter(|f| f.evidence.contains_key("escalation"))
                .collect();
            match want {
                None => {
                    assert!(raised.is_empty(), "{name}");
                    let after: Vec<Severity> = found.iter().map(|f| f.severity).collect();
                    assert_eq!(before, after, "{name}");
                }
                Some((kind, rule)) => {
                    assert_eq!(raised.len(), 1, "{name}: one finding carries it");
                    assert_eq!(raised[0].kind, kind, "{name}");
                    assert_eq!(raised[0].severity, Severity::High, "{name}");
                    let ev = &raised[0].evidence["escalation"];
                    assert!(
                        ev["rules"].as_array().unwrap().contains(&json!(rule)),
                        "{name}"
                    );
                    assert!(ev["signs"].as_array().unwrap().len() >= 2, "{name}");
                    assert!(
                        raised[0].summary.len() > 2,
                        "{name}: reasons in the sentence"
                    );
                }
            }
        }
    }
}
