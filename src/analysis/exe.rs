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

/// Has the program contacted an address beyond this PC (among the
/// connections shown)?
pub fn contacts_outside(p: &Program) -> bool {
    p.connections
        .iter()
        .filter(|c| c.state != SockState::Listen)
        .filter_map(|c| c.remote)
        .any(|r| reach(r.ip()) != Reach::Loopback)
}

/// Does the program accept connections from other computers (a listener on
/// a non-loopback address)?
fn listens_wide(p: &Program) -> bool {
    p.connections.iter().any(|c| {
        c.remote.is_none() && c.state == SockState::Listen && reach(c.local.ip()) != Reach::Loopback
    })
}

/// `new-program`: recorded after the first run, first seen less than a day
/// ago, the user has not decided about it, and it uses the network.
/// Programs in system folders (put there by the package manager) count
/// less: a trojan cannot drop itself there without administrator rights.
///
/// `contacted_outside` is true when the program contacted an address
/// beyond this PC at any time this run (also when those connections are no
/// longer shown): such a program is never described as staying inside
/// this PC. A program that only listens is said to accept connections,
/// not to talk to other computers.
pub fn new_program(
    p: &Program,
    entry: Option<&BaselineEntry>,
    now: SystemTime,
    style: PathStyle,
    contacted_outside: bool,
) -> Option<Detected> {
    let e = entry?;
    if !e.newcomer || !within(e.first_seen, now) {
        return None;
    }
    if p.mark.is_some() || p.stale_mark.is_some() || p.connections.is_empty() {
        return None;
    }
    let talks = contacted_outside || contacts_outside(p);
    let listens = listens_wide(p);
    let outward = talks || listens;
    let system = is_system_program(p, style);
    Some(Detected {
        kind: FindingKind::NewProgram,
        severity: if outward && !system {
            Severity::Medium
        } else {
            Severity::Low
        },
        summary: tr(if talks {
            "findings.new_program"
        } else if listens {
            "findings.new_program_listening"
        } else {
            "findings.new_program_local"
        }),
        evidence: evidence([
            ("exe", json!(exe_str(p))),
            ("first_seen", json!(rfc3339(e.first_seen))),
            ("outside_this_pc", json!(outward)),
            ("contacted_outside", json!(talks)),
            ("accepts_from_outside", json!(listens)),
        ]),
    })
}

/// Container runtimes that run themselves from memory (`memfd`) on
/// purpose, as a defence: runc clones its own binary before it starts a
/// container.
const MEMFD_RUNTIMES: &[&str] = &[
    "runc",
    "crun",
    "youki",
    "containerd-shim",
    "containerd-shim-runc-v2",
    "conmon",
    "docker-runc",
];

/// The runtime a memfd program is, by its memfd name or process names.
fn memfd_runtime(p: &Program) -> Option<&'static str> {
    let exe = exe_str(p).unwrap_or_default();
    let memfd_name = exe
        .strip_prefix("/memfd:")
        .unwrap_or("")
        .split(['_', ':', ' '])
        .next()
        .unwrap_or("");
    MEMFD_RUNTIMES.iter().copied().find(|r| {
        memfd_name == *r
            || p.processes.iter().any(|x| {
                x.name == *r
                    || x.cmdline
                        .first()
                        .is_some_and(|a| a.rsplit('/').next() == Some(*r))
            })
    })
}

/// `exe-deleted`: the running image is no longer the file at its path.
/// `file_at_path` says whether some file is there now (replaced, as updates
/// do) or nothing is (deleted, as self-hiding malware does).
///
/// A file replaced at the same path counts as an update only in a system
/// folder or for a trusted program, and never in a temporary or download
/// folder (`in_temp`): putting an innocent file back after deleting the
/// running one is a cheap way to look updated.
pub fn exe_deleted(
    p: &Program,
    file_at_path: bool,
    in_temp: bool,
    style: PathStyle,
) -> Option<Detected> {
    if !p.exe_deleted {
        return None;
    }
    let exe = exe_str(p);
    if p.exe.as_deref().is_some_and(is_memfd) {
        // Fileless: only known container runtimes do this on purpose, and
        // only as a system account.
        let runtime = memfd_runtime(p).filter(|_| runs_as_system_account(p));
        return Some(Detected {
            kind: FindingKind::ExeDeleted,
            severity: if runtime.is_some() {
                Severity::Low
            } else if is_trusted(p) {
                Severity::Medium
            } else {
                Severity::High
            },
            summary: match runtime {
                Some(r) => tr_args("findings.exe_deleted.memory_runtime", &[("runtime", r)]),
                None => tr("findings.exe_deleted.memory"),
            },
            evidence: evidence([
                ("exe", json!(exe)),
                ("sha256", json!(p.sha256)),
                ("in_memory", json!(true)),
                ("runtime", json!(runtime)),
            ]),
        });
    }
    let system = exe.as_deref().is_some_and(|e| is_system_location(e, style));
    let severity = if system {
        // Only an administrator or a package update can do this there.
        Severity::Low
    } else if in_temp {
        Severity::High
    } else if is_trusted(p) {
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
            let got = new_program(p, e.as_ref(), now, PathStyle::Unix, false).map(|d| d.severity);
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn new_program_says_what_it_does() {
        use crate::analysis::testkit::listen;
        use crate::i18n::tr;
        let e = Some(entry(true, None));
        let say = |p: &Program, outside: bool| {
            new_program(p, e.as_ref(), t0(), PathStyle::Unix, outside)
                .unwrap()
                .summary
        };
        let listener = program("/home/a/srv", vec![listen("0.0.0.0:8000")]);
        assert_eq!(say(&listener, false), tr("findings.new_program_listening"));
        assert_ne!(say(&listener, false), tr("findings.new_program"));
        let local = program("/home/a/tool", vec![outgoing("127.0.0.1:8080")]);
        assert_eq!(say(&local, false), tr("findings.new_program_local"));
        // It contacted the internet earlier; those connections are no
        // longer shown, but it is not "inside this PC".
        assert_eq!(say(&local, true), tr("findings.new_program"));
        let net = program("/home/a/tool", vec![outgoing("203.0.113.9:443")]);
        assert_eq!(say(&net, false), tr("findings.new_program"));
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
        let mut runc_user = program("/memfd:runc_cloned:/proc/self/exe", vec![]);
        runc_user.exe_deleted = true;
        let mut runc_root = runc_user.clone();
        runc_root.processes[0].uid = Some(0);
        let mut home = program("/home/a/bin/tool", vec![]);
        home.exe_deleted = true;
        let mut home_trusted = home.clone();
        home_trusted.mark = Some(Mark::Trusted);
        let trusted_home_gone = home_trusted.clone();
        let cases: Vec<(&str, &Program, bool, Option<Severity>)> = vec![
            ("deleted itself", &gone, false, Some(Severity::High)),
            (
                "replaced in a temp folder is no update",
                &gone,
                true,
                Some(Severity::High),
            ),
            (
                "replaced in the home folder, not trusted",
                &home,
                true,
                Some(Severity::High),
            ),
            (
                "trusted self-updater in the home folder",
                &home_trusted,
                true,
                Some(Severity::Medium),
            ),
            ("trusted", &trusted_home_gone, false, Some(Severity::Medium)),
            (
                "trusted, replaced in a temp folder",
                &trusted,
                true,
                Some(Severity::High),
            ),
            ("package update", &sys, true, Some(Severity::Low)),
            ("package removed", &sys, false, Some(Severity::Low)),
            ("file still there", &fine, true, None),
            ("fileless, as the user", &memfd, false, Some(Severity::High)),
            (
                "fileless, as root",
                &memfd_root,
                false,
                Some(Severity::High),
            ),
            ("runc, as root", &runc_root, false, Some(Severity::Low)),
            (
                "runc's name, as the user",
                &runc_user,
                false,
                Some(Severity::High),
            ),
        ];
        for (name, p, file, want) in cases {
            let in_temp = exe_str(p).is_some_and(|e| e.starts_with("/tmp/"));
            let got = exe_deleted(p, file, in_temp, PathStyle::Unix).map(|d| d.severity);
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
