//! Who the program is: new to this PC (`new-program`), its file deleted or
//! replaced while it runs (`exe-deleted`), or not the file recorded before
//! (`exe-changed`).

use std::time::SystemTime;

use serde_json::{Value, json};

use super::baseline::{BaselineEntry, NEW_FOR};
use super::network::{Reach, reach};
use super::places::{
    PathStyle, is_memfd, is_system_location, is_system_program, runs_as_system_account,
};
use super::{Detected, evidence, is_trusted};
use crate::clock::rfc3339;
use crate::escape::os_lossless;
use crate::i18n::{tr, tr_args};
use crate::model::{FindingKind, Mark, Program, Severity, SockState};

fn exe_str(p: &Program) -> Option<String> {
    p.exe.as_ref().map(|e| os_lossless(e.as_os_str()))
}

fn within(since: SystemTime, now: SystemTime) -> bool {
    now.duration_since(since)
        .map(|d| d < NEW_FOR)
        .unwrap_or(true)
}

/// Does the program talk beyond this PC (a remote that is not loopback, or
/// a listener on a non-loopback address)?
fn reaches_out(p: &Program) -> bool {
    p.connections.iter().any(|c| match c.remote {
        Some(r) => reach(r.ip()) != Reach::Loopback,
        None => c.state == SockState::Listen && reach(c.local.ip()) != Reach::Loopback,
    })
}

/// `new-program`: recorded after the first run, first seen less than a day
/// ago, the user has not decided about it, and it uses the network.
/// Programs in system folders (put there by the package manager) count
/// less: a trojan cannot drop itself there without administrator rights.
pub fn new_program(
    p: &Program,
    entry: Option<&BaselineEntry>,
    now: SystemTime,
    style: PathStyle,
) -> Option<Detected> {
    let e = entry?;
    if !e.newcomer || !within(e.first_seen, now) {
        return None;
    }
    if p.mark.is_some() || p.stale_mark.is_some() || p.connections.is_empty() {
        return None;
    }
    let outward = reaches_out(p);
    // Only listening, never talked: say that, not "talks to others".
    let talked = p.connections.iter().any(|c| c.remote.is_some());
    let system = is_system_program(p, style);
    Some(Detected {
        kind: FindingKind::NewProgram,
        severity: if outward && !system {
            Severity::Medium
        } else {
            Severity::Low
        },
        summary: tr(if outward && !talked {
            "findings.new_program_listening"
        } else if outward {
            "findings.new_program"
        } else {
            "findings.new_program_local"
        }),
        evidence: evidence([
            ("exe", json!(exe_str(p))),
            ("first_seen", json!(rfc3339(e.first_seen))),
            ("outside_this_pc", json!(outward)),
        ]),
    })
}

/// `exe-deleted`: the running image is no longer the file at its path.
/// `file_at_path` says whether some file is there now (replaced, as updates
/// do) or nothing is (deleted, as self-hiding malware does).
pub fn exe_deleted(p: &Program, file_at_path: bool, style: PathStyle) -> Option<Detected> {
    if !p.exe_deleted {
        return None;
    }
    let exe = exe_str(p);
    if p.exe.as_deref().is_some_and(is_memfd) {
        // Fileless: container runtimes do this as root; malware as the user.
        return Some(Detected {
            kind: FindingKind::ExeDeleted,
            severity: if runs_as_system_account(p) {
                Severity::Low
            } else if is_trusted(p) {
                Severity::Medium
            } else {
                Severity::High
            },
            summary: tr("findings.exe_deleted.memory"),
            evidence: evidence([
                ("exe", json!(exe)),
                ("sha256", json!(p.sha256)),
                ("in_memory", json!(true)),
            ]),
        });
    }
    let system = exe.as_deref().is_some_and(|e| is_system_location(e, style));
    let severity = if system {
        // Only an administrator or a package update can do this there.
        Severity::Low
    } else if file_at_path || is_trusted(p) {
        Severity::Medium
    } else {
        Severity::High
    };
    Some(Detected {
        kind: FindingKind::ExeDeleted,
        severity,
        summary: tr(if file_at_path {
            "findings.exe_deleted.replaced"
        } else {
            "findings.exe_deleted.gone"
        }),
        evidence: evidence([
            ("exe", json!(exe)),
            ("sha256", json!(p.sha256)),
            ("replaced", json!(file_at_path)),
        ]),
    })
}

/// `exe-changed`: the file at a known path has another SHA-256 than the
/// baseline recorded (for a day, until the user marks the new version), or
/// the user's mark belongs to an earlier version (`stale_mark`).
pub fn exe_changed(
    p: &Program,
    entry: Option<&BaselineEntry>,
    now: SystemTime,
    style: PathStyle,
) -> Option<Detected> {
    let exe = exe_str(p);
    let system = exe.as_deref().is_some_and(|e| is_system_location(e, style));
    if let Some(old) = p.stale_mark {
        let severity = match (old, system) {
            // A blocked program came back as another file: the block no
            // longer holds.
            (Mark::Blocked, false) => Severity::High,
            (Mark::Blocked, true) | (_, false) => Severity::Medium,
            (_, true) => Severity::Low,
        };
        return Some(Detected {
            kind: FindingKind::ExeChanged,
            severity,
            summary: tr_args(
                "findings.exe_changed.stale_mark",
                &[("mark", &tr(&format!("mark.{}", old.as_str())))],
            ),
            evidence: evidence([
                ("exe", json!(exe)),
                ("sha256", json!(p.sha256)),
                ("stale_mark", json!(old.as_str())),
            ]),
        });
    }
    let e = entry?;
    let changed_at = e.changed_at?;
    if !within(changed_at, now) || p.mark.is_some() {
        return None;
    }
    Some(Detected {
        kind: FindingKind::ExeChanged,
        severity: if system {
            Severity::Low
        } else {
            Severity::Medium
        },
        summary: tr("findings.exe_changed.hash"),
        evidence: evidence([
            ("exe", json!(exe)),
            ("previous_sha256", json!(e.previous_sha256)),
            ("sha256", json!(e.sha256)),
            ("changed_at", Value::String(rfc3339(changed_at))),
        ]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testkit::{outgoing, program};
    use crate::clock::{Clock, FakeClock};
    use std::time::Duration;

    type Case<'a> = (
        &'a str,
        &'a Program,
        Option<BaselineEntry>,
        SystemTime,
        Option<Severity>,
    );

    fn t0() -> SystemTime {
        FakeClock::at_noon().now()
    }

    fn entry(newcomer: bool, changed: Option<SystemTime>) -> BaselineEntry {
        BaselineEntry {
            sha256: Some("new".into()),
            first_seen: t0(),
            newcomer,
            previous_sha256: changed.map(|_| "old".into()),
            changed_at: changed,
        }
    }

    #[test]
    fn new_program_table() {
        let hour = Duration::from_secs(3600);
        let net = program("/home/a/tool", vec![outgoing("203.0.113.9:443")]);
        let local = program("/home/a/tool", vec![outgoing("127.0.0.1:8080")]);
        let quiet = program("/home/a/tool", vec![]);
        let system = program("/usr/bin/apt", vec![outgoing("151.101.2.132:80")]);
        let mut marked = net.clone();
        marked.mark = Some(Mark::Unknown);
        let cases: Vec<Case> = vec![
            (
                "newcomer online",
                &net,
                Some(entry(true, None)),
                t0() + hour,
                Some(Severity::Medium),
            ),
            (
                "newcomer on loopback",
                &local,
                Some(entry(true, None)),
                t0(),
                Some(Severity::Low),
            ),
            (
                "package-managed newcomer",
                &system,
                Some(entry(true, None)),
                t0(),
                Some(Severity::Low),
            ),
            (
                "known since the first run",
                &net,
                Some(entry(false, None)),
                t0(),
                None,
            ),
            ("no network", &quiet, Some(entry(true, None)), t0(), None),
            ("user decided", &marked, Some(entry(true, None)), t0(), None),
            (
                "a day later",
                &net,
                Some(entry(true, None)),
                t0() + 25 * hour,
                None,
            ),
            ("not in baseline (no path)", &net, None, t0(), None),
        ];
        for (name, p, e, now, want) in cases {
            let got = new_program(p, e.as_ref(), now, PathStyle::Unix).map(|d| d.severity);
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn exe_deleted_table() {
        let mut gone = program("/tmp/x/freetool", vec![]);
        gone.exe_deleted = true;
        let mut sys = program("/usr/lib/firefox/firefox", vec![]);
        sys.exe_deleted = true;
        let mut trusted = gone.clone();
        trusted.mark = Some(Mark::Trusted);
        let fine = program("/tmp/x/freetool", vec![]);
        let mut memfd = program("/memfd:x", vec![]);
        memfd.exe_deleted = true;
        let mut memfd_root = memfd.clone();
        memfd_root.processes[0].uid = Some(0);
        let cases: Vec<(&str, &Program, bool, Option<Severity>)> = vec![
            ("deleted itself", &gone, false, Some(Severity::High)),
            (
                "replaced (self-update)",
                &gone,
                true,
                Some(Severity::Medium),
            ),
            ("trusted", &trusted, false, Some(Severity::Medium)),
            ("package update", &sys, true, Some(Severity::Low)),
            ("package removed", &sys, false, Some(Severity::Low)),
            ("file still there", &fine, true, None),
            ("fileless, as the user", &memfd, false, Some(Severity::High)),
            ("fileless, as root", &memfd_root, false, Some(Severity::Low)),
        ];
        for (name, p, file, want) in cases {
            let got = exe_deleted(p, file, PathStyle::Unix).map(|d| d.severity);
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn exe_changed_table() {
        let hour = Duration::from_secs(3600);
        let user = program("/home/a/bin/tool", vec![]);
        let sys = program("/usr/bin/tool", vec![]);
        let mut stale_blocked = user.clone();
        stale_blocked.stale_mark = Some(Mark::Blocked);
        let mut stale_trusted_sys = sys.clone();
        stale_trusted_sys.stale_mark = Some(Mark::Trusted);
        let mut remarked = user.clone();
        remarked.mark = Some(Mark::Trusted);
        let changed = Some(entry(false, Some(t0())));
        let cases: Vec<Case> = vec![
            (
                "hash differs",
                &user,
                changed.clone(),
                t0() + hour,
                Some(Severity::Medium),
            ),
            (
                "package update",
                &sys,
                changed.clone(),
                t0(),
                Some(Severity::Low),
            ),
            (
                "blocked came back",
                &stale_blocked,
                None,
                t0(),
                Some(Severity::High),
            ),
            (
                "trusted system program updated",
                &stale_trusted_sys,
                None,
                t0(),
                Some(Severity::Low),
            ),
            (
                "user marked the new version",
                &remarked,
                changed.clone(),
                t0(),
                None,
            ),
            ("a day later", &user, changed, t0() + 25 * hour, None),
            ("never changed", &user, Some(entry(false, None)), t0(), None),
        ];
        for (name, p, e, now, want) in cases {
            let got = exe_changed(p, e.as_ref(), now, PathStyle::Unix).map(|d| d.severity);
            assert_eq!(got, want, "{name}");
        }
    }
}
