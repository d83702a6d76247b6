//! `kizuki mark` through the real binary: by path and by PID, durations,
//! and `scan --json` showing the mark. Nothing here touches the firewall
//! (blocked marks use --record-only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn kizuki(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kizuki"))
        .args(["--lang", "en", "--data-dir"])
        .arg(data)
        .args(args)
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
    let out = kizuki(&data, &["mark", &pid, "blocked", "--record-only"]);
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
    assert_eq!(v["marks"][0]["mark"], "blocked");
    let snap: serde_json::Value = serde_json::from_slice(&scan.stdout).unwrap();
    let canon = std::fs::canonicalize(&exe).unwrap();
    let p = snap["programs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["exe"] == canon.to_str().unwrap())
        .expect("the sleeper is listed");
    assert_eq!(p["mark"], "blocked");
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
