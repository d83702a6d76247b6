//! A full disk: the data folder on a 512 KiB tmpfs that is then filled.
//! kizuki keeps running (watch still samples and prints), tells the user
//! what happened in plain words, and loses nothing it had saved: the marks
//! file stays intact, and marking works again once space is freed.

#![cfg(target_os = "linux")] // tmpfs and mount(8)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "kizuki-test",
            ])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Writes zeros until the disk refuses more.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).and_then(|_| f.sync_all()).is_ok() {}
    // Small writes too, down to the last free byte.
    while f.write_all(&block[..64]).and_then(|_| f.sync_all()).is_ok() {}
    path
}

fn marks_in(data: &Path) -> Vec<(String, String)> {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("marks.json")).unwrap()).unwrap();
    v["marks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["exe"].as_str().unwrap().to_string(),
                m["mark"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_full_disk_loses_nothing_and_is_reported() {
    if !kizuki::probe::running_as_admin() {
        common::skip("a_full_disk_loses_nothing_and_is_reported", "needs root");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let Some(_mount) = Tmpfs::mount(&data, "512k") else {
        common::skip(
            "a_full_disk_loses_nothing_and_is_reported",
            "cannot mount tmpfs",
        );
        return;
    };
    // Programs to mark live outside the small disk.
    let progs = root.path().join("progs");
    std::fs::create_dir(&progs).unwrap();
    let prog = |n: &str| {
        let p = progs.join(n);
        std::fs::write(&p, format!("#!/bin/sh\n# {n}\n")).unwrap();
        std::fs::canonicalize(p).unwrap()
    };
    let (a, b) = (prog("first"), prog("second"));

    let out = common::run_kizuki(&data, &["mark", a.to_str().unwrap(), "trusted"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = std::fs::read(data.join("marks.json")).unwrap();

    let filler = fill(&data);

    // Marking now fails, says why in plain words, and leaves the file as it was.
    let out = common::run_kizuki(
        &data,
        &["mark", b.to_str().unwrap(), "unknown", "--record-only"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the disk is full"), "the user is told: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_eq!(std::fs::read(data.join("marks.json")).unwrap(), before);
    let temps: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(
        temps.is_empty(),
        "no half-written temp files stay: {temps:?}"
    );

    // In Japanese too.
    let out = Command::new(common::kizuki())
        .arg("--data-dir")
        .arg(&data)
        .args([
            "--lang",
            "ja",
            "mark",
            b.to_str().unwrap(),
            "unknown",
            "--record-only",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ディスクがいっぱいです"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Sampling goes on: watch prints its result; what it could not save is
    // said on stderr.
    let out = common::run_kizuki(&data, &["watch", "--seconds", "1", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "watch keeps running on a full disk: {err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["programs"].as_array().is_some_and(|p| !p.is_empty()));
    assert!(err.contains("the disk is full"), "the user is told: {err}");
    assert!(
        err.contains("journal"),
        "the paused journal is mentioned: {err}"
    );

    // A report cannot be written: a clear error, not a crash.
    let me = std::process::id().to_string();
    let out = common::run_kizuki(&data, &["report", &me]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the disk is full"), "{err}");

    // Nothing saved before was lost; with space again, marking works.
    assert_eq!(
        marks_in(&data),
        vec![(a.display().to_string(), "trusted".into())]
    );
    std::fs::remove_file(filler).unwrap();
    let out = common::run_kizuki(
        &data,
        &["mark", b.to_str().unwrap(), "unknown", "--record-only"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The journal kept everything it had written: its chain verifies.
    let out = common::run_kizuki(&data, &["history", "verify"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut now = marks_in(&data);
    now.sort();
    assert_eq!(
        now,
        vec![
            (a.display().to_string(), "trusted".into()),
            (b.display().to_string(), "unknown".into()),
        ]
    );
}
