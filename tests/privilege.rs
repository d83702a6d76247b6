//! Privilege hygiene, through the real binary: the window refuses to run
//! as root unless the user insists; the plan-file entry point (`kizuki
//! firewall apply --plan FILE`, what the Windows UAC route runs) refuses
//! every plan kizuki would not write, before touching anything, and on
//! Linux refuses every plan at all (the guard enforces; no root entry point
//! reads a file from a user's folder); and kizuki opens no network
//! connection of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[cfg(unix)]
use kizuki::i18n::{Lang, tr_in};

fn is_root() -> bool {
    kizuki::probe::running_as_admin()
}

/// The window, started as root with no display at all: it must refuse
/// with its message and exit 1 before it tries to open anything.
// Root, DISPLAY and WAYLAND_DISPLAY are Unix ideas; on Windows the same
// refusal reads the elevated token (`kizuki::platform::win::is_elevated`).
#[cfg(unix)]
#[test]
fn gui_refuses_root_without_the_override() {
    if !is_root() {
        common::skip("gui_refuses_root_without_the_override", "needs root");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let run = |extra: &[&str], allow_env: Option<&str>| {
        let mut c = Command::new(common::kizuki());
        c.arg("--data-dir")
            .arg(data.path())
            .args(["--lang", "en"])
            .args(extra)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("KIZUKI_ALLOW_ROOT")
            .stdin(Stdio::null());
        if let Some(v) = allow_env {
            c.env("KIZUKI_ALLOW_ROOT", v);
        }
        c.output().unwrap()
    };
    let refusal = tr_in(Lang::En, "gui.err.root");

    let out = run(&[], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&refusal), "the refusal says why: {err}");
    assert_eq!(err.lines().count(), 1, "one line, nothing opened: {err}");

    // KIZUKI_ALLOW_ROOT=0 is not an override.
    let out = run(&[], Some("0"));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&refusal));

    // With the override it gets past the refusal (and then fails only for
    // want of a display here; the window itself shows a warning banner).
    for (args, env) in [(&["--allow-root"][..], None), (&[][..], Some("1"))] {
        let out = run(args, env);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains(&refusal), "override {args:?} {env:?}: {err}");
        assert!(!out.status.success(), "no display, no window: {err}");
    }
}

const SHA: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// Plans a hostile or careless caller could hand the privileged side,
/// each of which must be refused.
fn bad_plans() -> Vec<(&'static str, String)> {
    let prog = |exe: &str| format!(r#"{{"exe": {exe}, "sha256": "{SHA}"}}"#);
    let plan =
        |blocked: &str| format!(r#"{{"version": 1, "panic": false, "blocked": [{blocked}]}}"#);
    vec![
        (
            "another table named",
            r#"{"version": 1, "panic": false, "blocked": [], "table": "ip filter"}"#.into(),
        ),
        (
            "another family",
            r#"{"version": 1, "panic": true, "blocked": [], "family": "bridge"}"#.into(),
        ),
        (
            "a rule smuggled into a program",
            plan(&format!(
                r#"{{"exe": "/usr/bin/x", "sha256": "{SHA}", "rule": "flush ruleset"}}"#
            )),
        ),
        ("relative path", plan(&prog(r#""bin/x""#))),
        (
            "parent directory",
            plan(&prog(r#""/usr/bin/../../etc/shadow""#)),
        ),
        ("dot directory", plan(&prog(r#""/usr/./bin/x""#))),
        ("doubled slash", plan(&prog(r#""//usr/bin/x""#))),
        ("trailing slash", plan(&prog(r#""/usr/bin/""#))),
        ("the root", plan(&prog(r#""/""#))),
        ("newline in path", plan(&prog(r#""/tmp/a\nflush ruleset""#))),
        ("NUL in path", plan(&prog(r#""/tmp/a\u0000b""#))),
        ("escape in path", plan(&prog(r#""/tmp/\u001b[2J""#))),
        ("bad hex path", plan(&prog(r#"{"bytes_hex": "2f7g"}"#))),
        (
            "shell in the hash",
            plan(r#"{"exe": "/usr/bin/x", "sha256": "$(reboot)"}"#),
        ),
        (
            "quote in the hash",
            plan(&format!(
                r#"{{"exe": "/usr/bin/x", "sha256": "{}\"; flush ruleset"}}"#,
                &SHA[..40]
            )),
        ),
        (
            "pid 1",
            plan(&format!(
                r#"{{"exe": "/usr/bin/x", "sha256": "{SHA}", "pids": [1]}}"#
            )),
        ),
        (
            "pid as text",
            plan(&format!(
                r#"{{"exe": "/usr/bin/x", "sha256": "{SHA}", "pids": ["1; id"]}}"#
            )),
        ),
        (
            "address with shell text",
            plan(&format!(
                r#"{{"exe": "/usr/bin/x", "sha256": "{SHA}", "flows": [{{"protocol": "tcp", "local": "10.0.0.1:5; id", "remote": "10.0.0.2:80"}}]}}"#
            )),
        ),
        (
            "flow to everyone",
            plan(&format!(
                r#"{{"exe": "/usr/bin/x", "sha256": "{SHA}", "flows": [{{"protocol": "tcp", "local": "10.0.0.1:5", "remote": "0.0.0.0:80"}}]}}"#
            )),
        ),
        (
            "unsorted programs",
            plan(&format!(
                "{},{}",
                prog(r#""/usr/bin/b""#),
                prog(r#""/usr/bin/a""#)
            )),
        ),
        (
            "version 2",
            r#"{"version": 2, "panic": false, "blocked": []}"#.into(),
        ),
        ("not JSON", "version=1\npanic=true\n".into()),
        ("empty", String::new()),
    ]
}

/// Whether `nft` can see kizuki's table (None: no nft or not root).
fn kizuki_table_exists() -> Option<bool> {
    if !is_root() {
        return None;
    }
    let out = Command::new("nft")
        .args(["list", "table", "inet", "kizuki"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    Some(out.success())
}

#[test]
fn privileged_apply_refuses_plans_kizuki_would_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let table_before = kizuki_table_exists();
    for (name, text) in bad_plans() {
        let file = dir.path().join("plan.json");
        std::fs::write(&file, &text).unwrap();
        let out = common::run_kizuki(
            dir.path(),
            &["firewall", "apply", "--plan", file.to_str().unwrap()],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name} must be refused: {err}");
        assert!(
            err.starts_with("kizuki: "),
            "{name}: a message says why: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: one line: {err}");
        assert!(
            !err.contains('\x1b') && !err.contains('\0'),
            "{name}: the message shows hostile bytes escaped: {err:?}"
        );
        assert!(out.stdout.is_empty(), "{name}: nothing was applied");
    }
    // Nothing was touched: kizuki's table is as it was (absent on a test
    // machine), and no other table was created by the refused plans.
    assert_eq!(kizuki_table_exists(), table_before);
}

/// On Linux even a well-formed plan is refused: `firewall apply --plan`
/// is no way to change the firewall as root (the pkexec route is gone; the
/// guard owns enforcement), and nothing is touched.
#[cfg(target_os = "linux")]
#[test]
fn linux_has_no_plan_file_root_entry_point() {
    let dir = tempfile::tempdir().unwrap();
    let table_before = kizuki_table_exists();
    let file = dir.path().join("plan.json");
    std::fs::write(
        &file,
        format!(r#"{{"version": 1, "panic": true, "blocked": [{{"exe": "/usr/bin/x", "sha256": "{SHA}"}}]}}"#),
    )
    .unwrap();
    let out = common::run_kizuki(
        dir.path(),
        &["firewall", "apply", "--plan", file.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("guard"), "says the guard enforces: {err}");
    assert!(out.stdout.is_empty());
    assert_eq!(kizuki_table_exists(), table_before, "nothing applied");
    // No polkit action runs kizuki itself any more.
    let policy = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/linux/jp.kizuki.policy"),
    )
    .unwrap();
    assert!(!policy.contains("exec.path"), "{policy}");
}

/// A path with shell syntax is a legal file name and must stay blockable;
/// it is safe because no byte of it reaches the firewall: rules name the
/// program by a hash of its path.
#[cfg(target_os = "linux")]
#[test]
fn shell_syntax_in_a_path_never_reaches_the_firewall() {
    use kizuki::firewall::cgroup::CgroupLayout;
    use kizuki::firewall::{BlockedProgram, PLAN_VERSION, Plan, nft};
    let exe = "/tmp/a b;nft flush ruleset`id`$(reboot)\"'";
    let plan = Plan {
        version: PLAN_VERSION,
        panic: false,
        blocked: vec![BlockedProgram {
            exe: exe.into(),
            sha256: SHA.into(),
            pids: vec![],
            flows: vec![],
        }],
    };
    plan.validate().unwrap();
    let layout = CgroupLayout::for_mount(std::path::Path::new("/sys/fs/cgroup/unified")).unwrap();
    let rules = nft::ruleset(&plan, Some(&layout)).unwrap();
    for piece in ["flush", "reboot", "`", "$(", "a b", "'"] {
        assert!(
            !rules.contains(piece),
            "{piece:?} reached the rules:\n{rules}"
        );
    }
    assert!(rules.contains(&plan.blocked[0].id()));
}

/// Socket inodes of kizuki's own inet sockets (TCP/UDP/raw, v4/v6).
fn own_inet_sockets(pid: u32) -> Vec<String> {
    let mut inet = HashSet::new();
    for f in [
        "tcp", "tcp6", "udp", "udp6", "raw", "raw6", "udplite", "udplite6",
    ] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{f}")) {
            for line in text.lines().skip(1) {
                if let Some(ino) = line.split_whitespace().nth(9) {
                    inet.insert(format!("socket:[{ino}]"));
                }
            }
        }
    }
    let mut found = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(t) = std::fs::read_link(e.path()) {
            let t = t.to_string_lossy().into_owned();
            if inet.contains(&t) {
                found.push(t);
            }
        }
    }
    found
}

#[test]
fn kizuki_opens_no_network_connection_of_its_own() {
    let data = tempfile::tempdir().unwrap();
    // Output to a file: a full pipe would stall kizuki before it exits.
    let out_path = data.path().join("watch.json");
    let mut child = Command::new(common::kizuki())
        .arg("--data-dir")
        .arg(data.path())
        .args(["--lang", "en", "watch", "--seconds", "3", "--json"])
        .args(["--interval-ms", "200"])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = Instant::now();
    let mut looks = 0;
    // Until it exits (its 3 s window plus start-up), bounded.
    while start.elapsed() < Duration::from_secs(60) {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        // Netlink sockets (how the socket table is read) are fine.
        let inet = own_inet_sockets(pid);
        assert!(inet.is_empty(), "kizuki holds inet sockets: {inet:?}");
        looks += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().unwrap();
    assert!(status.success());
    assert!(looks >= 5, "looked at the running process {looks} times");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap();
    assert!(v["programs"].as_array().is_some_and(|p| !p.is_empty()));
}
