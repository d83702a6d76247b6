//! Windows backend: Windows Defender Firewall through `netsh advfirewall`.
//! Every command is an argument vector built by the pure functions here
//! (tested on Linux as data); only the runner is Windows-only.
//!
//! All of kizuki's rules share two names, so removing them needs no
//! bookkeeping: `kizuki-block` (per-program, both directions) and
//! `kizuki-panic` (everything; Windows never filters loopback).

use std::path::Path;

use super::plan::{Plan, PlanError};

pub const RULE_BLOCK: &str = "kizuki-block";
pub const RULE_PANIC: &str = "kizuki-panic";

/// A path Windows Firewall matches exactly and netsh cannot misread:
/// `X:\…` or `\\server\share\…`, no characters Windows forbids in names,
/// no `%` (netsh expands environment variables in `program=`), no stream
/// suffix, no trailing dot or space (Windows drops them).
pub fn windows_path(exe: &Path) -> Result<String, PlanError> {
    let bad = || {
        PlanError::BadPath(crate::escape::for_display(&crate::escape::os_lossless(
            exe.as_os_str(),
        )))
    };
    let s = exe.to_str().ok_or_else(bad)?;
    let b = s.as_bytes();
    let drive = b.len() > 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\';
    let unc = b.len() > 4 && s.starts_with("\\\\") && b[2] != b'\\' && b[2] != b'?';
    let rest = if drive { &s[2..] } else { s };
    let clean = !s
        .chars()
        .any(|c| c.is_control() || matches!(c, '"' | '<' | '>' | '|' | '*' | '?' | '%' | '/'))
        && !rest.contains(':')
        && !s.ends_with(['.', ' ', '\\'])
        && !s.split('\\').skip(1).any(|c| c == ".." || c == ".")
        && s.len() <= 4096;
    if (drive || unc) && clean {
        Ok(s.to_string())
    } else {
        Err(bad())
    }
}

fn rule(name: &str, dir: &str, extra: &[String]) -> Vec<String> {
    let mut v: Vec<String> = ["advfirewall", "firewall", "add", "rule"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.push(format!("name={name}"));
    v.push(format!("dir={dir}"));
    v.push("action=block".into());
    v.extend(extra.iter().cloned());
    v.push("enable=yes".into());
    v
}

/// Outbound and inbound block rules for one program.
pub fn block_args(exe: &Path) -> Result<Vec<Vec<String>>, PlanError> {
    let program = format!("program={}", windows_path(exe)?);
    Ok(["out", "in"]
        .iter()
        .map(|dir| rule(RULE_BLOCK, dir, std::slice::from_ref(&program)))
        .collect())
}

/// Block everything in both directions (loopback is exempt on Windows).
pub fn panic_args() -> Vec<Vec<String>> {
    ["out", "in"]
        .iter()
        .map(|dir| rule(RULE_PANIC, dir, &["remoteip=any".to_string()]))
        .collect()
}

/// Removes every rule kizuki added (netsh fails harmlessly when none).
pub fn clear_args() -> Vec<Vec<String>> {
    [RULE_BLOCK, RULE_PANIC]
        .iter()
        .map(|name| {
            ["advfirewall", "firewall", "delete", "rule"]
                .iter()
                .map(|s| s.to_string())
                .chain([format!("name={name}")])
                .collect()
        })
        .collect()
}

/// Everything to run for `plan`, in order: clear, then add. Refuses the
/// whole plan if any path is unusable, so nothing half-applies.
pub fn commands(plan: &Plan) -> Result<Vec<Vec<String>>, PlanError> {
    let mut adds = Vec::new();
    for b in &plan.blocked {
        adds.extend(block_args(&b.exe)?);
    }
    if plan.panic {
        adds.extend(panic_args());
    }
    let mut all = clear_args();
    all.extend(adds);
    Ok(all)
}

#[cfg(windows)]
pub use runner::NetshBackend;

#[cfg(windows)]
mod runner {
    use std::process::{Command, Stdio};

    use super::super::{Applied, Enforced, FirewallBackend, FirewallError, Plan};
    use super::{RULE_BLOCK, RULE_PANIC, clear_args, commands};

    /// Applies plans with `netsh` (needs an administrator).
    #[derive(Debug, Default)]
    pub struct NetshBackend;

    fn netsh(args: &[String]) -> Result<(bool, String), FirewallError> {
        let out = Command::new(crate::platform::win::system_tool("netsh.exe"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| FirewallError::Tool {
                tool: "netsh".into(),
                source,
            })?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        Ok((out.status.success(), text))
    }

    /// The rules stop new connections; those already open are reset.
    fn cut_open_connections(plan: &Plan) -> Applied {
        let mut applied = Applied::default();
        let mut uncuttable = 0usize;
        let mut failed = None;
        for flow in plan.blocked.iter().flat_map(|b| &b.flows) {
            match crate::platform::win::tcp::row_for(flow) {
                Some(row) => match crate::platform::win::cut_tcp(&row) {
                    Ok(()) => applied.cut += 1,
                    Err(e) => failed = Some(e.to_string()),
                },
                None => uncuttable += 1,
            }
        }
        if uncuttable > 0 {
            applied.warnings.push(crate::i18n::tr_args(
                "firewall.warn.uncut",
                &[("count", &uncuttable.to_string())],
            ));
        }
        if let Some(e) = failed {
            applied.warnings.push(crate::i18n::tr_args(
                "firewall.warn.cut_failed",
                &[("error", &e)],
            ));
        }
        applied
    }

    impl FirewallBackend for NetshBackend {
        fn apply(&mut self, plan: &Plan) -> Result<Applied, FirewallError> {
            let cmds = commands(plan)?;
            let clears = clear_args().len();
            for (i, c) in cmds.iter().enumerate() {
                let (ok, text) = netsh(c)?;
                // Deleting rules that do not exist fails; that is fine.
                if !ok && i >= clears {
                    return Err(FirewallError::Rejected {
                        tool: "netsh".into(),
                        detail: text.trim().to_string(),
                    });
                }
            }
            Ok(cut_open_connections(plan))
        }

        fn clear(&mut self) -> Result<(), FirewallError> {
            for c in clear_args() {
                netsh(&c)?;
            }
            Ok(())
        }

        fn status(&mut self) -> Result<Enforced, FirewallError> {
            let show = |name: &str| {
                netsh(&[
                    "advfirewall".into(),
                    "firewall".into(),
                    "show".into(),
                    "rule".into(),
                    format!("name={name}"),
                    "verbose".into(),
                ])
            };
            let (blocks, listing) = show(RULE_BLOCK)?;
            let (panic, _) = show(RULE_PANIC)?;
            let mut e = Enforced {
                table: blocks || panic,
                panic,
                ..Enforced::default()
            };
            e.listing = Some(listing);
            Ok(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::plan::{BlockedProgram, PLAN_VERSION};
    use std::path::PathBuf;

    #[test]
    fn good_paths_become_one_argument_each() {
        let cases = [
            r"C:\Program Files\Tool\tool.exe",
            r"C:\Users\太郎\Downloads\free tool (1).exe",
            r"D:\a;b\c'd.exe",
            r"C:\x\a&b^c.exe",
            r"\\server\share\tool.exe",
        ];
        for p in cases {
            let rules = block_args(Path::new(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
            assert_eq!(rules.len(), 2);
            for (r, dir) in rules.iter().zip(["out", "in"]) {
                assert_eq!(
                    r,
                    &vec![
                        "advfirewall".to_string(),
                        "firewall".into(),
                        "add".into(),
                        "rule".into(),
                        "name=kizuki-block".into(),
                        format!("dir={dir}"),
                        "action=block".into(),
                        format!("program={p}"),
                        "enable=yes".into(),
                    ]
                );
            }
        }
    }

    #[test]
    fn hostile_paths_are_refused() {
        let cases = [
            "tool.exe",
            r"\tool.exe",
            r"C:tool.exe",
            "C:\\a\"b.exe",
            "C:\\a\nb.exe",
            "C:\\a\rname=evil.exe",
            r"C:\a|b.exe",
            r"C:\%TEMP%\x.exe",
            r"C:\a\b.exe:stream",
            r"C:\a\b.exe.",
            r"C:\a\b.exe ",
            r"C:\a\..\b.exe",
            r"C:/a/b.exe",
            r"\\?\C:\x.exe",
            "/usr/bin/tool",
            "",
        ];
        for p in cases {
            assert!(block_args(Path::new(p)).is_err(), "{p:?} must be refused");
        }
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_is_refused() {
        use std::os::unix::ffi::OsStrExt;
        let p = Path::new(std::ffi::OsStr::from_bytes(b"C:\\a\xff.exe"));
        assert!(block_args(p).is_err());
    }

    #[test]
    fn plan_commands_clear_first_and_refuse_whole_plan_on_one_bad_path() {
        let prog = |p: &str| BlockedProgram {
            exe: PathBuf::from(p),
            sha256: "a".repeat(64),
            pids: vec![],
            flows: vec![],
        };
        let mut plan = Plan {
            version: PLAN_VERSION,
            panic: true,
            blocked: vec![prog(r"C:\a.exe")],
        };
        let cmds = commands(&plan).unwrap();
        assert_eq!(cmds.len(), 2 + 2 + 2);
        assert_eq!(cmds[0][2], "delete");
        assert!(cmds[4].contains(&"name=kizuki-panic".to_string()));
        assert!(cmds[4].contains(&"remoteip=any".to_string()));
        plan.blocked.push(prog("C:\\b\".exe"));
        assert!(commands(&plan).is_err());
    }
}
