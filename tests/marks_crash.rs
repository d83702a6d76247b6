//! A save interrupted by killing the process leaves either the old or the
//! new marks file, never a broken one: the real binary is started again and
//! again and killed with SIGKILL at moments spread over its whole run.

// These tests drive real Linux processes, sockets and /proc.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(unix)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use kizuki::clock::SystemClock;
use kizuki::identity::sha256_bytes;
use kizuki::marks::{MarkFor, MarkStore};
use kizuki::model::Mark;

#[test]
fn killed_saves_leave_old_or_new_marks() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Many marks, so a save takes long enough to be interrupted.
    let store = MarkStore::open(&data, Arc::new(SystemClock));
    for i in 0..400 {
        let exe = PathBuf::from(format!("/opt/filler/program-{i:04}-with-a-long-name"));
        store
            .set(
                &exe,
                &sha256_bytes(&i.to_string().into_bytes()),
                Mark::Trusted,
                MarkFor::Always,
            )
            .unwrap();
    }
    let target = dir.path().join("tool");
    std::fs::write(&target, b"#!/bin/sh\n").unwrap();
    let target = std::fs::canonicalize(&target).unwrap();
    let sha = kizuki::identity::sha256_file(&target).unwrap();
    store
        .set(&target, &sha, Mark::Unknown, MarkFor::Always)
        .unwrap();
    drop(store);

    // How long one uninterrupted run takes, to spread the kills over it.
    let run = |mark: &str| {
        Command::new(env!("CARGO_BIN_EXE_kizuki"))
            .args(["--lang", "en", "--data-dir"])
            .arg(&data)
            .arg("mark")
            .arg(&target)
            .arg(mark)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let t = Instant::now();
    assert!(run("trusted").wait().unwrap().success());
    let full = t.elapsed();
    let mut known = Mark::Trusted;

    let rounds = 60u32;
    let (mut old_seen, mut new_seen) = (0, 0);
    for i in 0..rounds {
        let next = if known == Mark::Trusted {
            Mark::Unknown
        } else {
            Mark::Trusted
        };
        let mut child = run(next.as_str());
        // From 0 to 1.2× a full run, in even steps.
        std::thread::sleep(full.mul_f64(1.2 * f64::from(i) / f64::from(rounds)));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();

        let s = MarkStore::open(&data, Arc::new(SystemClock));
        let warnings = s.take_warnings();
        assert!(warnings.is_empty(), "round {i}: file damaged: {warnings:?}");
        assert_eq!(s.list().len(), 401, "round {i}: marks lost");
        let now = s.lookup(&target, Some(&sha)).mark.unwrap();
        assert!(now == known || now == next, "round {i}: {now:?}");
        if now == known {
            old_seen += 1;
        } else {
            new_seen += 1;
        }
        known = now;
        let temps = std::fs::read_dir(&data)
            .unwrap()
            .flatten()
            // The journal's head file (written by the same command) has
            // its own temps, removed at its next write.
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".marks.json.tmp-")
            })
            .count();
        assert_eq!(
            temps, 0,
            "round {i}: temp files of killed saves are cleaned up"
        );
    }
    eprintln!(
        "marks_crash: one run {full:?}; after {rounds} kills: old kept {old_seen}, new saved {new_seen}"
    );
    assert!(new_seen > 0, "some runs must have finished their save");
    assert!(old_seen > 0, "some kills must have landed before the save");
}
