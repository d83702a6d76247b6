//! Desktop notifications: which findings deserve one ([`alerts`]), how
//! often ([`limiter`]), their words ([`render`]), and the sender that hands
//! them to the desktop ([`desktop`]); the quiet first hours after the
//! baseline is created ([`quiet`]).

pub mod desktop;
pub mod limiter;
pub mod quiet;
pub mod told;

use std::collections::BTreeMap;

pub use limiter::{Outgoing, RateLimiter};

/// The application id kizuki's notifications carry: the Windows
/// AppUserModelID (also set on the Start menu shortcut by the installer)
/// and the desktop-file id on Linux.
pub const APP_ID: &str = "jp.kizuki.Kizuki";

use crate::escape::for_display;
use crate::i18n::{Lang, tr_args_in, tr_in};
use crate::model::{FindingKind, Program, ProgramKey, Severity, Snapshot};

/// What a notification leads with, most serious first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Headline {
    BlockedRunning,
    High,
    NewProgram,
}

/// Something about one program worth a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub key: ProgramKey,
    /// The program's name as the OS gave it (escaped when shown).
    pub name: String,
    /// The finding kinds this alert tells about.
    pub kinds: Vec<FindingKind>,
    pub headline: Headline,
    /// The most serious finding's sentence, already in the user's language.
    pub detail: String,
    /// The executable's SHA-256: a changed program is news again.
    pub version: Option<String>,
}

/// Why `kind` at `severity` deserves a notification, if it does: a new
/// program on the network, a blocked one running again, anything high.
fn headline(kind: FindingKind, severity: Severity) -> Option<Headline> {
    match kind {
        FindingKind::BlockedRunning => Some(Headline::BlockedRunning),
        _ if severity == Severity::High => Some(Headline::High),
        FindingKind::NewProgram => Some(Headline::NewProgram),
        _ => None,
    }
}

/// The alerts for findings of `snap` that were just raised (`raised`),
/// one per program.
pub fn alerts(snap: &Snapshot, raised: &[(ProgramKey, FindingKind)]) -> Vec<Alert> {
    let mut by_program: BTreeMap<&ProgramKey, Vec<FindingKind>> = BTreeMap::new();
    for (key, kind) in raised {
        by_program.entry(key).or_default().push(*kind);
    }
    let mut out = Vec::new();
    for (key, kinds) in by_program {
        let Some(p) = snap.program(key) else {
            continue;
        };
        if let Some(a) = alert_for(p, &kinds) {
            out.push(a);
        }
    }
    out
}

fn alert_for(p: &Program, kinds: &[FindingKind]) -> Option<Alert> {
    let mut told = Vec::new();
    let mut best: Option<(Headline, &str)> = None;
    for f in &p.findings {
        if !kinds.contains(&f.kind) {
            continue;
        }
        let Some(h) = headline(f.kind, f.severity) else {
            continue;
        };
        told.push(f.kind);
        if best.is_none_or(|(b, _)| h < b) {
            best = Some((h, &f.summary));
        }
    }
    let (headline, detail) = best?;
    Some(Alert {
        key: p.key.clone(),
        name: p.name.clone(),
        kinds: told,
        headline,
        detail: detail.to_string(),
        version: p.sha256.clone(),
    })
}

/// A notification in words, ready for the desktop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub summary: String,
    pub body: String,
    /// The program to show when the notification is clicked (`None`: just
    /// open the window).
    pub target: Option<ProgramKey>,
}

pub fn render(o: &Outgoing, lang: Lang) -> Rendered {
    match o {
        Outgoing::One(a) => {
            let key = match a.headline {
                Headline::BlockedRunning => "notify.summary.blocked",
                Headline::High => "notify.summary.high",
                Headline::NewProgram => "notify.summary.new",
            };
            Rendered {
                summary: tr_in(lang, key),
                body: tr_args_in(
                    lang,
                    "notify.body.program",
                    &[("name", &for_display(&a.name)), ("detail", &a.detail)],
                ),
                target: Some(a.key.clone()),
            }
        }
        Outgoing::Batch { programs } => Rendered {
            summary: tr_args_in(
                lang,
                "notify.summary.batch",
                &[("count", &programs.to_string())],
            ),
            body: tr_in(lang, "notify.body.batch"),
            target: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(name: &str, findings: &[(FindingKind, Severity)]) -> Program {
        Program::fake(name, findings)
    }

    #[test]
    fn only_new_blocked_and_high_findings_notify() {
        let mut s = Snapshot::empty();
        s.programs = vec![
            program("listener", &[(FindingKind::Listening, Severity::Medium)]),
            program(
                "freetool",
                &[
                    (FindingKind::NewProgram, Severity::Low),
                    (FindingKind::Tor, Severity::High),
                ],
            ),
        ];
        let raised = vec![
            (s.programs[0].key.clone(), FindingKind::Listening),
            (s.programs[1].key.clone(), FindingKind::NewProgram),
            (s.programs[1].key.clone(), FindingKind::Tor),
        ];
        let out = alerts(&s, &raised);
        assert_eq!(out.len(), 1, "one per program, none for a medium finding");
        assert_eq!(out[0].headline, Headline::High, "the most serious leads");
        assert_eq!(out[0].detail, "tor said");
        assert_eq!(
            out[0].kinds,
            vec![FindingKind::NewProgram, FindingKind::Tor]
        );
    }

    #[test]
    fn words_in_both_languages() {
        let a = Alert {
            key: ProgramKey::Exe("/tmp/freetool".into()),
            name: "free\u{202e}tool".into(),
            kinds: vec![FindingKind::NewProgram],
            headline: Headline::NewProgram,
            detail: "d".into(),
            version: None,
        };
        let ja = render(&Outgoing::One(a.clone()), Lang::Ja);
        assert_eq!(ja.summary, "新しいプログラムが通信しています");
        assert!(
            !ja.body.contains('\u{202e}'),
            "names are escaped: {}",
            ja.body
        );
        assert_eq!(ja.target, Some(a.key.clone()));
        let batch = render(&Outgoing::Batch { programs: 3 }, Lang::Ja);
        assert_eq!(batch.summary, "ほか 3 件のプログラムに注意が必要です");
        assert_eq!(batch.target, None);
        let en = render(&Outgoing::Batch { programs: 3 }, Lang::En);
        assert_eq!(en.summary, "3 more programs need attention");
    }
}
