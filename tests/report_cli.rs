//! `kizuki report` and `kizuki contacts` against real processes, and the
//! evidence copy of a program whose file was deleted while it runs.

// These tests drive real Linux processes, sockets and /proc.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Children, run_kizuki};
use kizuki::identity::sha256_file;
use kizuki::report::{self, ReportOptions};

/// Copies /bin/sleep to `dir/name`, runs it, and returns (pid, hash of the file).
fn run_copy_of_sleep(kids: &mut Children, dir: &Path, name: &str) -> (u32, String) {
    let exe = dir.join(name);
    std::fs::copy("/bin/sleep", &exe).unwrap();
    let hash = sha256_file(&exe).unwrap();
    let child = kids.push(
        Command::new(&exe)
            .arg("120")
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Wait until the kernel shows the new image (exec has happened).
    let pid = child.id();
    for _ in 0..200 {
        if std::fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| p.to_string_lossy().contains(name))
            .unwrap_or(false)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (pid, hash)
}

#[test]
fn evidence_copy_of_a_deleted_running_program_has_the_original_hash() {
    if !Path::new("/proc/self/exe").exists() {
        common::skip("evidence copy test", "needs /proc");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut kids = Children::default();
    let (pid, original) = run_copy_of_sleep(&mut kids, work.path(), "evil tool");
    std::fs::remove_file(work.path().join("evil tool")).unwrap();

    let opts = kizuki::setup::Options {
        data_dir: Some(data.path().to_path_buf()),
        interval: Duration::from_secs(1),
        record: false,
    };
    let mut core = kizuki::setup::native_monitor(&opts).unwrap();
    let snap = core.tick().unwrap();
    let program = report::find_program(&snap, &pid.to_string()).expect("program found by PID");
    assert!(program.exe_deleted, "the file is gone");
    assert_eq!(program.sha256.as_deref(), Some(original.as_str()));

    let mut o = ReportOptions::new(report::default_reports_dir(data.path()), snap.taken_at);
    o.evidence_copy = true;
    o.format = report::Format::Json;
    o.extras.parent_chains = report::parent_chains(&snap, program);
    let files = report::write_report(program, &o).unwrap();

    let copy = files.evidence.clone().expect("evidence copy made");
    assert_eq!(copy.parent(), files.report.parent(), "next to the report");
    assert_eq!(sha256_file(&copy).unwrap(), original);
    let name = copy.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(name, format!("evil_tool.{}.evidence", &original[..12]));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o400, "read-only, never executable");
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files.report).unwrap()).unwrap();
    assert_eq!(v["evidence"]["sha256"], original.as_str());
    assert_eq!(v["evidence"]["matches_program"], true);
    assert_eq!(v["evidence"]["file"], name.as_str());
    assert_eq!(v["program"]["exe_deleted"], true);
    assert_eq!(v["processes"][0]["pid"], pid);
    // Our test process is the parent of the program.
    assert_eq!(v["processes"][0]["parents"][0]["pid"], std::process::id());
    assert!(v["summary"]["ja"].as_str().unwrap().contains(&original));
}

#[test]
fn report_by_pid_writes_a_file_and_prints_its_path() {
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut kids = Children::default();
    let (pid, hash) = run_copy_of_sleep(&mut kids, work.path(), "tool-<x>");
    let out = run_kizuki(
        data.path(),
        &["report", &pid.to_string(), "--format", "html"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "only the path: {stdout}");
    let path = Path::new(stdout.trim());
    assert!(path.starts_with(data.path().join("reports")), "{stdout}");
    assert!(path.extension().is_some_and(|e| e == "html"));
    let html = std::fs::read_to_string(path).unwrap();
    assert!(html.contains(&hash));
    assert!(html.contains(&format!("PID {pid}")));
    assert!(html.contains("tool-&lt;x&gt;"));
    assert!(!html.contains("<x>"));
    // No evidence copy without consent, and no host name.
    assert_eq!(
        std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
        1
    );
    assert!(html.contains("left out at the user"));
}

#[test]
fn report_by_exe_path_and_explicit_out_file() {
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut kids = Children::default();
    let (_pid, hash) = run_copy_of_sleep(&mut kids, work.path(), "by-path");
    let exe = work.path().join("by-path");
    let target = work.path().join("out.md");
    let out = run_kizuki(
        data.path(),
        &[
            "report",
            exe.to_str().unwrap(),
            "--out",
            target.to_str().unwrap(),
            "--include-hostname",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        target.to_str().unwrap()
    );
    let md = std::fs::read_to_string(&target).unwrap();
    assert!(
        md.starts_with("# Suspicious program report: by-path"),
        "{md}"
    );
    assert!(md.contains(&hash));
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        assert!(md.contains(host.trim()), "host name included when allowed");
    }

    // Issue 22: --out does not silently replace a file, nor create folders.
    std::fs::write(&target, "mine").unwrap();
    let report = |out: &Path, force: bool| {
        let mut args = vec![
            "report",
            exe.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        if force {
            args.push("--force");
        }
        run_kizuki(data.path(), &args)
    };
    let refused = report(&target, false);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "mine");
    assert!(report(&target, true).status.success());
    assert_ne!(std::fs::read_to_string(&target).unwrap(), "mine");
    let nested = work.path().join("no-such-folder").join("r.md");
    let refused = report(&nested, false);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!work.path().join("no-such-folder").exists());
    let usage = run_kizuki(data.path(), &["report", exe.to_str().unwrap(), "--force"]);
    assert_eq!(usage.status.code(), Some(2), "--force without --out");
}

#[test]
fn report_for_a_program_that_is_not_running_fails_with_one_line() {
    let data = tempfile::tempdir().unwrap();
    for target in ["4294967295", "/nonexistent/kizuki-test-program"] {
        let out = run_kizuki(data.path(), &["report", target]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("not running"), "{err}");
        assert!(err.contains(target), "{err}");
        assert!(out.stdout.is_empty());
    }
    let out = run_kizuki(data.path(), &["report"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing target is a usage error"
    );
}

#[test]
fn contacts_json_lists_the_ipa_desk_with_its_number_and_date() {
    let data = tempfile::tempdir().unwrap();
    let out = run_kizuki(data.path(), &["contacts", "--json", "--lang", "ja"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["checked_on"], "2026-11-25");
    assert_eq!(v["lang"], "ja");
    assert!(v["fake_call_warning"].as_str().unwrap().contains("詐欺"));
    let ipa = v["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "ipa_anshin")
        .expect("ipa_anshin listed");
    assert_eq!(ipa["phone"], "03-5978-7509");
    assert_eq!(ipa["email"], "anshin@ipa.go.jp");
    for key in [
        "name", "url", "hours", "when", "limits", "verified", "source",
    ] {
        assert!(ipa[key].is_string(), "{key} missing");
    }
    let police = v["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "police_9110")
        .unwrap();
    assert_eq!(police["links"][0]["uri"], "tel:%239110");
}

#[test]
fn contacts_text_shows_the_date_and_the_warning() {
    let data = tempfile::tempdir().unwrap();
    let out = run_kizuki(data.path(), &["contacts"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("2026-11-25"));
    assert!(text.contains("IPA never phones you"));
    assert!(text.contains("03-5978-7509"));
    // A broken override is reported once and the built-in list is used.
    std::fs::write(data.path().join("contacts.toml"), "broken = [").unwrap();
    let out = run_kizuki(data.path(), &["contacts"]);
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("contacts.toml"), "{err}");
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("03-5978-7509")
    );
}
