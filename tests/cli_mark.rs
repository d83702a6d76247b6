//! `kizuki mark` through the real binary: by path and by PID, durations,
//! and `scan --json` showing the mark; blocking through a fake guard on a
//! temporary socket. Nothing here touches the real firewall.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn kizuki(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kizuki"))
        .args(["--lang", "en", "--data-dir"])
        .arg(data)
        .args(args)
        // Never the machine's real guard.
        .env("KIZUKI_GUARD_SOCKET", data.with_extension("no-guard.sock"))
        .output()
        .unwrap()
}

fn marks_json(data: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(data.join("marks.json")).unwrap()).unwrap()
}

#[test]
fn mark_by_path_records_path_hash_and_duration() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let exe = dir.path().join("tool");
    std::fs::write(&exe, b"tool v1").unwrap();
    let out = kizuki(
        &data,
        &["mark", exe.to_str().unwrap(), "trusted", "--for", "1h"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("as trusted (for one hour"), "{stdout}");
    let v = marks_json(&data);
    assert_eq!(v["schema"], 1);
    let m = &v["marks"][0];
    assert_eq!(m["mark"], "trusted");
    assert_eq!(m["until"]["kind"], "time");
    assert_eq!(
        m["sha256"],
        kizuki::identity::sha256_bytes(b"tool v1").as_str()
    );
    assert_eq!(
        m["exe"],
        std::fs::canonicalize(&exe).unwrap().to_str().unwrap()
    );
}

#[test]
fn only_trust_takes_a_duration_and_bad_targets_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let exe = dir.path().join("tool");
    std::fs::write(&exe, b"x").unwrap();
    let out = kizuki(
        &data,
        &[
            "mark",
            exe.to_str().unwrap(),
            "blocked",
            "--for",
            "1h",
            "--record-only",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Only \"trusted\""));
    assert!(!data.join("marks.json").exists(), "nothing recorded");

    let out = kizuki(&data, &["mark", "/no/such/program", "trusted"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("No such program file"), "{err}");

    let out = kizuki(&data, &["mark", exe.to_str().unwrap(), "friendly"]);
    assert_eq!(out.status.code(), Some(2));
}

#[cfg(target_os = "linux")]
#[test]
fn mark_by_pid_hashes_the_running_image_and_scan_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let exe = dir.path().join("sleeper");
    std::fs::copy("/bin/sleep", &exe).unwrap();
    let mut child = Command::new(&exe).arg("60").spawn().unwrap();
    let pid = child.id().to_string();
    let out = kizuki(&data, &["mark", &pid, "trusted", "--record-only"]);
    let ok = out.status.success();
    let running_sha = kizuki::identity::sha256_file(&exe).unwrap();
    // The file is replaced on disk; the mark stays with what runs.
    std::fs::remove_file(&exe).unwrap();
    std::fs::write(&exe, b"replaced").unwrap();
    let scan = kizuki(&data, &["scan", "--json"]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "{}", String::from_utf8_lossy(&out.stderr));
    let v = marks_json(&data);
    assert_eq!(v["marks"][0]["sha256"], running_sha.as_str());
    assert_eq!(v["marks"][0]["mark"], "trusted");
    let snap: serde_json::Value = serde_json::from_slice(&scan.stdout).unwrap();
    let canon = std::fs::canonicalize(&exe).unwrap();
    let p = snap["programs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["exe"] == canon.to_str().unwrap())
        .expect("the sleeper is listed");
    assert_eq!(p["mark"], "trusted");
}

#[test]
fn a_corrupt_marks_file_is_reported_on_stderr_and_work_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("marks.json"), b"\x00\x01garbage{{{").unwrap();
    let exe = dir.path().join("tool");
    std::fs::write(&exe, b"x").unwrap();
    let out = kizuki(&data, &["mark", exe.to_str().unwrap(), "unknown"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("marks.json.corrupt-"), "{err}");
    let kept: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(marks_json(&data)["marks"][0]["mark"], "unknown");
}

#[test]
fn a_hostile_plan_file_is_refused_before_anything_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let plan = dir.path().join("plan.json");
    for bad in [
        r#"{"version":1,"panic":false,"blocked":[{"exe":"/tmp/a\nflush ruleset","sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}]}"#,
        r#"{"version":1,"panic":false,"blocked":[{"exe":"/tmp/a","sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","pids":[0]}]}"#,
        r#"{"version":1,"panic":true,"blocked":[],"table":"ip filter"}"#,
        "not a plan",
    ] {
        std::fs::write(&plan, bad).unwrap();
        let out = kizuki(
            &data,
            &["firewall", "apply", "--plan", plan.to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("plan"), "{err}");
    }
}

/// The user's decisions are evidence too: each mark lands in the journal,
/// in a chain that verifies.
#[test]
fn marks_are_written_to_the_evidence_journal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let exe = dir.path().join("tool");
    std::fs::write(&exe, b"tool v1").unwrap();
    let exe_s = exe.to_str().unwrap();
    assert!(kizuki(&data, &["mark", exe_s, "unknown"]).status.success());
    assert!(kizuki(&data, &["mark", exe_s, "trusted"]).status.success());
    let out = kizuki(&data, &["history", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let marks: Vec<_> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "mark")
        .collect();
    assert_eq!(marks.len(), 2);
    assert_eq!(marks[1]["detail"]["mark"], "trusted");
    assert_eq!(marks[1]["detail"]["previous"], "unknown");
    assert_eq!(
        marks[1]["sha256"],
        kizuki::identity::sha256_bytes(b"tool v1")
    );
    assert!(kizuki(&data, &["history", "verify"]).status.success());
}

// ---- The guard: `mark X blocked` and `firewall …` ask it, and trust only
// what it reads back. A tiny fake guard answers on a temporary socket.
#[cfg(unix)]
mod guard {
    use super::*;

    use kizuki::guard::api::{
        API_VERSION, Authority, BlockStatus, ExecCatch, GuardStatus, Refusal, Reply, Request,
    };
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixListener;
    use std::sync::{Arc, Mutex};

    fn guard_status(blocked: &[(&Path, bool)], panic: bool) -> GuardStatus {
        GuardStatus {
            api_version: API_VERSION,
            panic,
            table: true,
            exec_catch: ExecCatch::Fanotify,
            blocked: blocked
                .iter()
                .map(|(exe, enforced)| BlockStatus {
                    exe: exe.to_path_buf(),
                    sha256: "0".repeat(64),
                    since: "2026-11-30T00:00:00Z".into(),
                    by_uid: 4242,
                    authority: Authority::Polkit,
                    enforced: *enforced,
                    pids_blocked: vec![77],
                    pids_outside: vec![],
                })
                .collect(),
            problems: vec![],
        }
    }

    /// Answers each request line with `answer(request)`; returns the socket
    /// path and the requests seen.
    fn fake_guard(
        dir: &Path,
        answer: impl Fn(&Request) -> Reply + Send + 'static,
    ) -> (std::path::PathBuf, Arc<Mutex<Vec<Request>>>) {
        let sock = dir.join("guard.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut line = String::new();
                if BufReader::new(&conn).read_line(&mut line).is_err() {
                    continue;
                }
                let req: Request = serde_json::from_str(line.trim()).unwrap();
                let reply = answer(&req);
                seen2.lock().unwrap().push(req);
                let mut out = serde_json::to_vec(&reply).unwrap();
                out.push(b'\n');
                let _ = conn.write_all(&out);
            }
        });
        (sock, seen)
    }

    fn kizuki_guarded(data: &Path, sock: &Path, lang: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kizuki"))
            .args(["--lang", lang, "--data-dir"])
            .arg(data)
            .args(args)
            .env("KIZUKI_GUARD_SOCKET", sock)
            .output()
            .unwrap()
    }

    fn tool(dir: &Path) -> std::path::PathBuf {
        let exe = dir.join("tool");
        std::fs::write(&exe, b"tool v1").unwrap();
        std::fs::canonicalize(&exe).unwrap()
    }

    #[test]
    fn blocking_without_a_guard_fails_and_says_why_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let exe = tool(dir.path());
        let none = dir.path().join("no-guard.sock");
        for (lang, words) in [("en", "guard service"), ("ja", "見張り役サービス")] {
            let out = kizuki_guarded(
                &data,
                &none,
                lang,
                &["mark", exe.to_str().unwrap(), "blocked"],
            );
            assert_eq!(out.status.code(), Some(1), "{lang}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(words) && err.contains("tool"), "{err}");
            assert!(String::from_utf8_lossy(&out.stdout).is_empty());
        }
        // Nothing user-side claims a block.
        let marks = std::fs::read_to_string(data.join("marks.json")).unwrap_or_default();
        assert!(!marks.contains("blocked"), "{marks}");
        let out = kizuki_guarded(&data, &none, "en", &["firewall", "status"]);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("nothing is blocked"));
        let out = kizuki_guarded(&data, &none, "en", &["firewall", "panic"]);
        assert_eq!(out.status.code(), Some(1));
    }

    #[test]
    fn blocking_succeeds_only_when_the_guard_reads_the_block_back() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let exe = tool(dir.path());
        let e2 = exe.clone();
        let (sock, seen) = fake_guard(dir.path(), move |_| Reply::Ok {
            status: guard_status(&[(&e2, true)], false),
        });
        let out = kizuki_guarded(
            &data,
            &sock,
            "en",
            &["mark", exe.to_str().unwrap(), "blocked"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("Blocked “tool”"));
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            &[Request::Block { exe: exe.clone() }]
        );
        // The journal says who blocked it, as the guard reports it.
        let out = kizuki(&data, &["history", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let fw: Vec<_> = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "firewall")
            .collect();
        assert_eq!(fw.len(), 1, "{v}");
        assert_eq!(fw[0]["detail"]["by_uid"], 4242);
        assert_eq!(fw[0]["detail"]["authority"], "polkit");
        assert_eq!(fw[0]["detail"]["ok"], true);
    }

    #[test]
    fn a_refusal_or_a_block_not_in_force_exits_non_zero_with_the_real_state() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let exe = tool(dir.path());
        let e2 = exe.clone();
        // Accepted, but the read-back shows the block is not in force.
        let (sock, _) = fake_guard(dir.path(), move |_| Reply::Ok {
            status: guard_status(&[(&e2, false)], false),
        });
        let out = kizuki_guarded(
            &data,
            &sock,
            "en",
            &["mark", exe.to_str().unwrap(), "blocked"],
        );
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not in force"), "{err}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("the block is NOT in force"));

        let dir2 = tempfile::tempdir().unwrap();
        let (sock, _) = fake_guard(dir2.path(), |_| Reply::Refused {
            reason: Refusal::NotAuthorized,
            detail: "polkit: dismissed".into(),
            status: Some(guard_status(&[], false)),
        });
        for args in [
            vec!["mark", exe.to_str().unwrap(), "blocked"],
            vec!["firewall", "panic"],
            vec!["firewall", "unpanic"],
            vec!["firewall", "clear"],
        ] {
            let out = kizuki_guarded(&data, &sock, "ja", &args);
            assert_eq!(out.status.code(), Some(1), "{args:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("管理者"), "{err}");
            assert!(String::from_utf8_lossy(&out.stdout).contains("緊急停止：オフ"));
        }
    }

    #[test]
    fn trusting_a_blocked_program_asks_the_guard_to_unblock_it() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let exe = tool(dir.path());
        let e2 = exe.clone();
        let blocked = Arc::new(Mutex::new(true));
        let b2 = blocked.clone();
        let (sock, seen) = fake_guard(dir.path(), move |req| {
            let mut b = b2.lock().unwrap();
            if matches!(req, Request::Unblock { .. }) {
                *b = false;
            }
            let list: Vec<(&Path, bool)> = if *b { vec![(&e2, true)] } else { vec![] };
            Reply::Ok {
                status: guard_status(&list, false),
            }
        });
        let out = kizuki_guarded(
            &data,
            &sock,
            "en",
            &["mark", exe.to_str().unwrap(), "trusted"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            &[Request::Status, Request::Unblock { exe: exe.clone() }]
        );
        assert!(!*blocked.lock().unwrap());
        let out = kizuki_guarded(&data, &sock, "en", &["firewall", "status"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("No program is blocked"), "{text}");
    }
}
