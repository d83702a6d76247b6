// These tests drive real Linux processes, sockets and /proc.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The evidence journal from the outside: tampering with plain SQL is
//! caught, a killed writer leaves a journal that verifies, a corrupt file is
//! kept and replaced, pruning keeps the chain verifiable, CSV is safe.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kizuki::clock::{Clock, FakeClock};
use kizuki::journal::{
    Entry, Journal, JournalStage, JournalWarning, Problem, ProgramRef, SessionQuery, UserAction,
    path_in,
};
use kizuki::model::{Connection, Mark, Protocol, SockState};
use kizuki::monitor::Stage;

fn noon() -> SystemTime {
    FakeClock::at_noon().now()
}

fn curl() -> ProgramRef {
    ProgramRef {
        exe: Some("/usr/bin/curl".into()),
        name: "curl".into(),
        sha256: Some("ab".repeat(32)),
    }
}

fn conn(port: u16, at: SystemTime, secs: u64) -> Connection {
    Connection {
        bytes_received: None,
        bytes_sent: None,
        pid: Some(100),
        protocol: Protocol::Tcp,
        local: format!("10.0.0.2:{port}").parse().unwrap(),
        remote: Some("203.0.113.7:443".parse().unwrap()),
        state: SockState::Established,
        first_seen: at,
        last_seen: at + Duration::from_secs(secs),
        live: false,
        uid: None,
        remote_name: None,
    }
}

/// A journal with ten sessions of curl (opened + closed records).
fn honest(dir: &Path) -> PathBuf {
    let path = path_in(dir);
    let (j, _) = Journal::open(&path, noon()).unwrap();
    let mut app = kizuki::journal::Appender::new(j);
    let mut entries = vec![Entry::AppStart {
        at: noon(),
        detail: serde_json::json!({}),
    }];
    for i in 0..10u16 {
        let c = conn(
            40000 + i,
            noon() + Duration::from_secs(u64::from(i) * 60),
            30,
        );
        entries.push(Entry::Opened {
            program: Some(curl()),
            conn: c.clone(),
        });
        entries.push(Entry::Closed {
            program: Some(curl()),
            conn: c,
        });
    }
    app.write_batch(&entries).unwrap();
    path
}

fn sql(path: &Path, statement: &str) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(statement).unwrap();
}

fn first_bad(path: &Path) -> Option<(i64, Problem)> {
    let r = Journal::open_existing(path).unwrap().verify().unwrap();
    r.first_bad.map(|b| (b.id, b.problem))
}

#[test]
fn honest_journal_verifies_and_reads_as_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let path = honest(dir.path());
    let j = Journal::open_existing(&path).unwrap();
    let r = j.verify().unwrap();
    assert!(r.intact(), "{r:?}");
    // app-start, program, 10 × (opened, closed)
    assert_eq!(r.records, 22);
    assert_eq!(r.head.id, Some(22));
    assert_eq!(j.head().unwrap(), r.head);
    let s = j
        .sessions(&SessionQuery {
            exe: Some("/usr/bin/curl".into()),
            since: Some(noon() + Duration::from_secs(5 * 60)),
            limit: None,
        })
        .unwrap();
    assert_eq!(s.len(), 5, "since filters by first sight");
    assert_eq!(
        s[0].last_seen,
        Some(s[0].first_seen + Duration::from_secs(30))
    );
}

/// Every tampering with plain SQL, and where verify must catch it.
#[test]
fn tampering_is_caught_at_the_right_record() {
    type Case = (&'static str, &'static str, Option<(i64, Problem)>);
    let cases: &[Case] = &[
        (
            "update of a record",
            "UPDATE records SET remote = '198.51.100.9:443' WHERE id = 7",
            Some((7, Problem::Changed)),
        ),
        (
            "update of a time",
            "UPDATE records SET ts = ts + 1000 WHERE id = 12",
            Some((12, Problem::Changed)),
        ),
        (
            "update of a pid",
            "UPDATE records SET pid = 4242 WHERE id = 5",
            Some((5, Problem::Changed)),
        ),
        (
            // The first record naming the program is its "program" record.
            "renaming the program",
            "UPDATE programs SET exe = '/usr/bin/innocent'",
            Some((2, Problem::Changed)),
        ),
        (
            "delete of a record",
            "DELETE FROM records WHERE id = 9",
            Some((10, Problem::Missing { from: 9, to: 9 })),
        ),
        (
            "delete of the first records",
            "DELETE FROM records WHERE id <= 3",
            Some((4, Problem::Missing { from: 1, to: 3 })),
        ),
        (
            "delete of the last records",
            "DELETE FROM records WHERE id >= 20",
            Some((19, Problem::TailRemoved { last: 22 })),
        ),
        (
            // Issue 22: sqlite_sequence set back too; the head kept beside
            // the database still knows #22.
            "delete of the last records, sequence adjusted",
            "DELETE FROM records WHERE id >= 20;
             UPDATE sqlite_sequence SET seq = 19 WHERE name = 'records'",
            Some((19, Problem::TailRemoved { last: 22 })),
        ),
        (
            "the last record replaced by a re-chained one is still the head's hash",
            "UPDATE records SET hash = randomblob(32) WHERE id = 22",
            Some((22, Problem::Changed)),
        ),
        (
            "a forged record appended",
            "INSERT INTO records (id, ts, kind, program, pid, protocol, local, remote, state, hash)
             VALUES (23, 1795608000000, 'opened', 1, 100, 'tcp', '10.0.0.2:1', '192.0.2.66:6667',
                     'ESTABLISHED', randomblob(32))",
            Some((23, Problem::Changed)),
        ),
        (
            "one slipped in between, the later ones moved up",
            "UPDATE records SET id = id + 100 WHERE id > 10;
             INSERT INTO records (id, ts, kind, hash) VALUES (11, 1795608000000, 'app-stop', randomblob(32));
             UPDATE records SET id = id - 99 WHERE id > 100;",
            Some((11, Problem::Changed)),
        ),
        ("nothing changed", "SELECT 1", None),
    ];
    for (what, statement, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = honest(dir.path());
        sql(&path, statement);
        assert_eq!(&first_bad(&path), expected, "{what}");
    }
    // The head is kept twice outside the records table: each copy alone
    // still catches the cut.
    let cut = "DELETE FROM records WHERE id >= 20;
               UPDATE sqlite_sequence SET seq = 19 WHERE name = 'records'";
    let tail = Some((19, Problem::TailRemoved { last: 22 }));
    let dir = tempfile::tempdir().unwrap();
    let path = honest(dir.path());
    sql(&path, cut);
    std::fs::remove_file(kizuki::journal::headfile::path_for(&path)).unwrap();
    assert_eq!(first_bad(&path), tail, "side file deleted: the meta copy");
    let dir = tempfile::tempdir().unwrap();
    let path = honest(dir.path());
    sql(
        &path,
        &format!("{cut}; DELETE FROM meta WHERE key = 'head'"),
    );
    assert_eq!(first_bad(&path), tail, "meta copy deleted: the side file");
}

/// A journal emptied or removed where the head says one existed, or a
/// file that is not kizuki's, is an error naming its cause, never
/// "intact"; the foreign file is not touched.
#[test]
fn emptied_missing_or_foreign_journals_are_not_intact() {
    type Setup = fn(&Path, &Path);
    let cases: &[(&str, Setup, &str)] = &[
        (
            "zero length",
            |path, _| std::fs::write(path, b"").unwrap(),
            "empty or missing",
        ),
        (
            "removed",
            |path, _| std::fs::remove_file(path).unwrap(),
            "empty or missing",
        ),
        (
            "another application's database linked in",
            |path, other| {
                std::fs::remove_file(path).unwrap();
                std::os::unix::fs::symlink(other, path).unwrap();
            },
            "link",
        ),
        (
            "another application's database copied in",
            |path, other| {
                std::fs::copy(other, path).unwrap();
            },
            "not kizuki's journal",
        ),
    ];
    kizuki::i18n::set_lang(kizuki::i18n::Lang::En);
    for (what, setup, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = honest(dir.path());
        for side in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{side}", path.display()));
        }
        let other_dir = tempfile::tempdir().unwrap();
        let other = other_dir.path().join("app.db");
        sql(
            &other,
            "CREATE TABLE mail (id INTEGER PRIMARY KEY, body TEXT);",
        );
        let before = std::fs::read(&other).unwrap();
        setup(&path, &other);
        let e = Journal::open_existing(&path).err().expect(what).to_string();
        assert!(e.contains(says), "{what}: {e}");
        // The writer sets it aside and starts anew, leaving the other
        // application's database exactly as it was.
        let (j, w) = Journal::open(&path, noon()).unwrap();
        assert!(j.verify().unwrap().intact(), "{what}");
        assert_eq!(w.len(), 1, "{what}: the user is told");
        if *what == "removed" {
            assert!(w[0].message().contains("#22"), "{}", w[0].message());
        }
        let first = j.events(&SessionQuery::default()).unwrap();
        assert_eq!(first[0].kind, "recovered", "{what}: the old head is named");
        assert_eq!(std::fs::read(&other).unwrap(), before, "{what}");
        assert!(
            std::fs::read_dir(other_dir.path()).unwrap().count() == 1,
            "{what}: no WAL or journal created beside the other database"
        );
    }
}

#[test]
fn pruning_keeps_the_chain_verifiable_and_its_anchor_guarded() {
    let dir = tempfile::tempdir().unwrap();
    let path = honest(dir.path());
    let (mut j, _) = Journal::open(&path, noon()).unwrap();
    // Sessions start at noon + i minutes; keep those from minute 6 on.
    let now = noon() + Duration::from_secs(180 * 86_400);
    let retention = Duration::from_secs(180 * 86_400) - Duration::from_secs(6 * 60);
    let r = j.prune(now, retention, None).unwrap();
    assert!(r.removed >= 12, "{r:?}");
    let report = j.verify().unwrap();
    assert!(report.intact(), "{report:?}");
    assert_eq!(report.first_id, r.keeps_from);
    let left = j.sessions(&SessionQuery::default()).unwrap();
    assert_eq!(left.len(), 4);
    // Pruning again later, and writing in between, still verifies.
    j.write_entries(&[Entry::AppStop { at: now }]).unwrap();
    let r2 = j
        .prune(now + Duration::from_secs(600), retention, None)
        .unwrap();
    assert!(r2.removed > 0);
    assert!(j.verify().unwrap().intact());
    drop(j);
    // Hiding more deletions by moving the anchor is caught.
    sql(
        &path,
        "DELETE FROM records WHERE id = (SELECT min(id) FROM records);
         UPDATE meta SET value = value + 1 WHERE key = 'segment_start';",
    );
    let bad = first_bad(&path).unwrap();
    assert!(
        matches!(bad.1, Problem::Changed | Problem::Anchor),
        "{bad:?}"
    );
}

#[test]
fn corrupt_journal_is_kept_and_a_new_one_started() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(dir.path());
    std::fs::write(&path, b"this is not a database, it is a ransom note").unwrap();
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    std::fs::write(&wal, b"junk wal").unwrap();
    let clock: Arc<dyn Clock> = Arc::new(FakeClock::at_noon());

    // Reading does not move anything: history/verify report the damage.
    assert!(Journal::open_existing(&path).is_err());
    assert!(path.exists());

    let mut stage = JournalStage::open(dir.path(), clock.clone());
    let status = stage.handle().status();
    let moved = match &status.warnings[..] {
        [JournalWarning::Recovered { moved_to }] => moved_to.clone(),
        other => panic!("expected one recovery warning, got {other:?}"),
    };
    assert_eq!(
        std::fs::read(&moved).unwrap(),
        b"this is not a database, it is a ransom note"
    );
    assert!(
        status.warnings[0]
            .message()
            .contains(&moved.file_name().unwrap().to_string_lossy().to_string())
    );
    let kept_wal: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("journal.sqlite3-wal.corrupt-"))
        .collect();
    assert_eq!(kept_wal.len(), 1, "the old WAL is kept aside too");
    stage.finish();
    let j = Journal::open_existing(&path).unwrap();
    assert!(j.verify().unwrap().intact());
    let kinds: Vec<String> = j
        .events(&SessionQuery::default())
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    // The new chain starts by naming what it replaced (issue 22).
    assert_eq!(kinds, vec!["recovered", "app-start", "app-stop"]);
}

#[test]
fn user_actions_are_recorded_directly_and_through_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(FakeClock::at_noon());
    let mut stage = JournalStage::open(dir.path(), clock.clone());
    let h = stage.handle();
    assert!(h.record_action(
        UserAction::Mark {
            program: curl(),
            mark: Some(Mark::Blocked),
            previous: None,
        },
        noon(),
    ));
    assert!(h.flush(Duration::from_secs(30)));
    assert!(h.status().head.is_some());
    stage.finish();
    let (mut j, _) = Journal::open(&path_in(dir.path()), noon()).unwrap();
    let id = j
        .record_action(
            &UserAction::Firewall {
                program: Some(curl()),
                verb: "block".into(),
                ok: true,
                detail: "nft rule added".into(),
            },
            noon() + Duration::from_secs(1),
        )
        .unwrap();
    assert_eq!(j.head().unwrap().id, Some(id));
    let ev = j
        .events(&SessionQuery {
            exe: Some("/usr/bin/curl".into()),
            ..SessionQuery::default()
        })
        .unwrap();
    let kinds: Vec<&str> = ev.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["program", "mark", "firewall"]);
    assert_eq!(ev[1].detail["mark"], "blocked");
    assert!(j.verify().unwrap().intact());
}

fn kizuki(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kizuki"))
        .arg("--data-dir")
        .arg(dir)
        .args(["--lang", "en"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_verify_passes_then_names_the_edited_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = honest(dir.path());
    let ok = kizuki(dir.path(), &["history", "verify"]);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("22 records"));
    sql(
        &path,
        "UPDATE records SET remote = '198.51.100.9:443' WHERE id = 7",
    );
    let bad = kizuki(dir.path(), &["history", "verify"]);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("#7") && err.contains("2026-11-25T12:02:00Z"),
        "{err}"
    );
}

#[test]
fn cli_history_lists_sessions_as_json_and_safe_csv() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(dir.path());
    let (mut j, _) = Journal::open(&path, noon()).unwrap();
    let evil = ProgramRef {
        exe: Some("/tmp/=HYPERLINK(\"http://x\")".into()),
        name: "=HYPERLINK(\"http://x\")".into(),
        sha256: None,
    };
    let c = conn(5000, noon(), 10);
    j.write_entries(&[
        Entry::Opened {
            program: Some(evil.clone()),
            conn: c.clone(),
        },
        Entry::Opened {
            program: Some(curl()),
            conn: conn(5001, noon(), 10),
        },
    ])
    .unwrap();
    drop(j);
    let out = kizuki(dir.path(), &["history", "--json", "--exe", "/usr/bin/curl"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = v["sessions"].as_array().unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0]["exe"], "/usr/bin/curl");
    assert_eq!(s[0]["sha256"], "ab".repeat(32));
    assert_eq!(s[0]["remote"], "203.0.113.7:443");
    assert_eq!(s[0]["first_seen"], "2026-11-25T12:00:00Z");
    assert_eq!(
        s[0]["last_seen"],
        serde_json::Value::Null,
        "its end was not seen"
    );
    let csv = kizuki(dir.path(), &["history", "--csv"]);
    let text = String::from_utf8(csv.stdout).unwrap();
    for line in text.lines().skip(1) {
        for cell in line.split(',') {
            let c = cell.trim_start_matches('"');
            assert!(
                !c.starts_with(['=', '+', '-', '@']),
                "cell {cell:?} of {line:?} would run as a formula"
            );
        }
    }
    assert!(text.contains("'=HYPERLINK"));
    let bad = kizuki(dir.path(), &["history", "--since", "someday"]);
    assert_eq!(bad.status.code(), Some(2), "a bad time is a usage error");
}

/// Kills a process writing as fast as it can, again and again; the journal
/// must open and verify every time, and keep growing.
#[test]
fn killing_a_busy_writer_never_breaks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(dir.path());
    let mut last = 0i64;
    for round in 0..8u64 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kizuki"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(["history", "stress"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until it has written something this round, then a little
        // more so the kill lands mid-transaction at a varying moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let head = Journal::open_existing(&path)
                .ok()
                .and_then(|j| j.head().ok())
                .and_then(|h| h.id)
                .unwrap_or(0);
            if head > last + 500 || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(37 * round + 11));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let out = kizuki(dir.path(), &["history", "verify"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let head = Journal::open_existing(&path)
            .unwrap()
            .head()
            .unwrap()
            .id
            .unwrap();
        assert!(
            head > last,
            "round {round}: the journal grew ({last} -> {head})"
        );
        last = head;
    }
    let j = Journal::open_existing(&path).unwrap();
    let events = j.events(&SessionQuery::default()).unwrap();
    let starts = events.iter().filter(|e| e.kind == "app-start").count();
    let kinds: Vec<(i64, &str)> = events
        .iter()
        .filter(|e| e.kind != "dropped")
        .map(|e| (e.id, e.kind.as_str()))
        .collect();
    assert_eq!(starts, 8, "each run left its start record: {kinds:?}");
    assert!(j.sessions(&SessionQuery::default()).unwrap().len() > 1000);
}

#[test]
fn watch_fills_the_journal_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let out = kizuki(
        dir.path(),
        &["watch", "--seconds", "1", "--interval-ms", "300"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let j = Journal::open_existing(&path_in(dir.path())).unwrap();
    assert!(j.verify().unwrap().intact());
    let kinds: Vec<String> = j
        .events(&SessionQuery::default())
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("app-start"));
    assert_eq!(kinds.last().map(String::as_str), Some("app-stop"));
    assert!(
        kinds.iter().any(|k| k == "program"),
        "programs were recorded: {kinds:?}"
    );
    // Every session seen has an end: closed, or closed when kizuki stopped.
    for s in j.sessions(&SessionQuery::default()).unwrap() {
        assert!(s.last_seen.is_some(), "{s:?}");
    }
}

#[test]
fn the_remote_name_is_journalled_chained_and_read_back_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(dir.path());
    let (j, _) = Journal::open(&path, noon()).unwrap();
    let mut app = kizuki::journal::Appender::new(j);
    let mut named = conn(40000, noon(), 30);
    named.remote_name = Some(std::sync::Arc::new(kizuki::names::RemoteName {
        name: "board.example.jp".into(),
        source: kizuki::names::NameSource::Dns,
        seen: noon(),
    }));
    let bare = conn(40001, noon() + Duration::from_secs(60), 30);
    let mut entries = Vec::new();
    for c in [named, bare] {
        entries.push(Entry::Opened {
            program: Some(curl()),
            conn: c.clone(),
        });
        entries.push(Entry::Closed {
            program: Some(curl()),
            conn: c,
        });
    }
    app.write_batch(&entries).unwrap();
    let j = Journal::open_existing(&path).unwrap();
    let q = SessionQuery {
        exe: Some("/usr/bin/curl".into()),
        since: None,
        limit: None,
    };
    let s = j.sessions(&q).unwrap();
    assert_eq!(s[0].remote_name.as_deref(), Some("board.example.jp"));
    assert_eq!(s[0].remote_name_source.as_deref(), Some("dns"));
    assert_eq!(s[1].remote_name, None);
    let csv = kizuki::journal::render::sessions_csv(&s);
    assert!(
        csv.lines().nth(1).unwrap().ends_with(",board.example.jp"),
        "{csv}"
    );
    assert!(j.verify().unwrap().intact());
    drop(j);
    // The name is part of the chain: changing it is caught.
    sql(
        &path,
        "UPDATE records SET detail = '{\"remote_name\":\"bank.example.jp\",\"remote_name_source\":\"dns\"}' WHERE detail LIKE '%board%'",
    );
    assert!(first_bad(&path).is_some());
    // A hostile name written into the file is not shown.
    sql(
        &path,
        "UPDATE records SET detail = '{\"remote_name\":\"evil\\u001b[2J\",\"remote_name_source\":\"dns\"}' WHERE detail LIKE '%bank%'",
    );
    let j = Journal::open_existing(&path).unwrap();
    assert_eq!(j.sessions(&q).unwrap()[0].remote_name, None);
}

/// Issue 22: `history verify` works on read-only media (a journal handed
/// over on a write-protected stick). A private mount namespace holds a
/// read-only tmpfs, so nothing outside the test sees it.
#[test]
fn verify_works_on_read_only_media() {
    let privileged = nix::unistd::geteuid().is_root()
        && Command::new("unshare").arg("--version").output().is_ok();
    if !privileged {
        assert!(
            std::env::var_os("KIZUKI_REQUIRE_PRIVILEGED").is_none(),
            "needs root and unshare"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = honest(dir.path());
    let mnt = tempfile::tempdir().unwrap();
    let script = format!(
        "mount -t tmpfs tmpfs '{m}' && cp -a '{d}'/. '{m}'/ && mount -o remount,ro '{m}' \
         && exec '{k}' --data-dir '{m}' --lang en history verify",
        m = mnt.path().display(),
        d = path.parent().unwrap().display(),
        k = env!("CARGO_BIN_EXE_kizuki"),
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("intact: 22 records"), "{stdout}");
}

/// SQLite opens `-wal` and `-shm` by name and would follow a planted link:
/// the writer moves such a link aside first, and its target stays as it was.
#[test]
fn a_planted_wal_link_is_moved_aside_not_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let path = honest(dir.path());
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, b"the user's own file").unwrap();
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let _ = std::fs::remove_file(&wal);
    std::os::unix::fs::symlink(&victim, &wal).unwrap();
    let (j, w) = Journal::open(&path, noon()).unwrap();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].message().contains("-wal"), "{}", w[0].message());
    let mut app = kizuki::journal::Appender::new(j);
    app.write_batch(&[Entry::AppStop { at: noon() }]).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"the user's own file");
    assert!(app.journal().verify().unwrap().intact());
}
