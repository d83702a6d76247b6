//! The journal as the guard runs it (one writer, every user's records):
//! uids, a flood counted without loss, a cut tail found and chained.

use std::sync::Arc;
use std::time::Duration;

use super::page::PageQuery;
use super::*;
use crate::clock::{Clock, FakeClock};
use crate::identity::FakeHasher;
use crate::model::{RawProcess, RawSample, RawSocket};
use crate::monitor::MonitorCore;
use crate::probe::FakeProbe;

fn core(samples: Vec<RawSample>, clock: Arc<FakeClock>) -> MonitorCore {
    MonitorCore::new(
        Box::new(FakeProbe::new(samples)),
        Box::new(FakeHasher::default()),
        clock,
        Duration::from_secs(1),
    )
}

/// `n` connections of curl (uid 1000) and two of bob's ssh (uid 1001).
fn flood(n: u16) -> RawSample {
    let mut bob = RawProcess::fake(200, "/usr/bin/ssh");
    bob.uid = Some(1001);
    let mut sockets: Vec<RawSocket> = (0..n)
        .map(|i| {
            RawSocket::tcp(
                100,
                &format!("10.0.0.2:{}", 10000 + u32::from(i)),
                "203.0.113.7:443",
            )
        })
        .collect();
    for port in [50001, 50002] {
        let mut s = RawSocket::tcp(200, &format!("10.0.0.2:{port}"), "198.51.100.1:22");
        s.uid = Some(1001);
        sockets.push(s);
    }
    RawSample::of(vec![RawProcess::fake(100, "/usr/bin/curl"), bob], sockets)
}

fn all(j: &Journal, uid: Option<u32>) -> page::Page {
    j.page(&PageQuery {
        uid,
        limit: 1_000_000,
        ..PageQuery::default()
    })
    .unwrap()
}

/// Runs samples one second apart through a single-writer stage, then stops.
fn run(path: &std::path::Path, clock: &Arc<FakeClock>, samples: Vec<RawSample>) {
    let n = samples.len();
    let mut m = core(samples, clock.clone());
    m.add_stage(Box::new(JournalStage::open_single_writer(
        path,
        clock.clone(),
    )));
    for _ in 0..n {
        m.tick().unwrap();
        clock.advance(Duration::from_secs(1));
    }
    m.save();
}

#[test]
fn a_flood_is_counted_in_chained_records_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let clock = Arc::new(FakeClock::at_noon());
    // 3,000 connections in one second, held three, then all gone.
    run(
        &path,
        &clock,
        vec![
            flood(3000),
            flood(3000),
            flood(3000),
            RawSample::of(Vec::new(), Vec::new()),
        ],
    );
    let j = Journal::open_existing(&path).unwrap();
    assert!(j.verify().unwrap().intact(), "{:?}", j.verify());
    let p = all(&j, Some(1000));
    let single = p
        .sessions
        .iter()
        .filter(|s| s.name.as_deref() == Some("curl"))
        .count();
    assert_eq!(
        single,
        flood::DEFAULT_LIMIT as usize,
        "the first ones one by one"
    );
    let counted: Vec<&EventRow> = p.events.iter().filter(|e| e.kind == "aggregate").collect();
    assert!(!counted.is_empty());
    let sum = |k: &str| -> u64 { counted.iter().map(|e| e.detail[k].as_u64().unwrap()).sum() };
    assert_eq!(
        sum("opened") + single as u64,
        3000,
        "every session is a record or counted in one"
    );
    assert_eq!(sum("closed"), sum("opened"), "their ends are counted too");
    assert!(counted.iter().all(|e| e.name.as_deref() == Some("curl")));
    assert!(
        p.events.iter().all(|e| e.kind != "dropped"),
        "nothing had to be dropped"
    );
    let stored: i64 = j
        .connection()
        .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
        .unwrap();
    assert!(stored < 200, "{stored} records for 3,000 sessions");
}

#[test]
fn each_user_sees_only_records_about_their_own_processes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let clock = Arc::new(FakeClock::at_noon());
    run(&path, &clock, vec![flood(3)]);
    let j = Journal::open_existing(&path).unwrap();
    let bob = all(&j, Some(1001));
    assert_eq!(bob.sessions.len(), 2);
    assert!(
        bob.sessions
            .iter()
            .all(|s| s.name.as_deref() == Some("ssh"))
    );
    assert!(
        bob.events
            .iter()
            .all(|e| e.exe.as_deref() != Some("/usr/bin/curl")),
        "{:?}",
        bob.events
    );
    let admin = all(&j, None);
    assert_eq!(admin.sessions.len(), 5);
    let stranger = all(&j, Some(4242));
    assert!(stranger.sessions.is_empty());
    assert!(
        stranger
            .events
            .iter()
            .all(|e| page::SHARED_KINDS.contains(&e.kind.as_str())),
        "{:?}",
        stranger.events
    );
    // Pages end at the same record in both lists: nothing repeats or is
    // skipped.
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let p = j
            .page(&PageQuery {
                after,
                limit: 2,
                ..PageQuery::default()
            })
            .unwrap();
        seen.extend(p.sessions.iter().map(|s| s.id));
        seen.extend(p.events.iter().map(|e| e.id));
        match p.next_after {
            Some(n) => after = n,
            None => break,
        }
    }
    let whole: Vec<i64> = admin
        .sessions
        .iter()
        .map(|s| s.id)
        .chain(admin.events.iter().map(|e| e.id))
        .collect();
    seen.sort_unstable();
    let mut whole = whole;
    whole.sort_unstable();
    assert_eq!(seen, whole);
}

#[test]
fn newest_first_pages_walk_back_through_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let clock = Arc::new(FakeClock::at_noon());
    run(&path, &clock, vec![flood(9)]);
    let j = Journal::open_existing(&path).unwrap();
    let admin = all(&j, None);
    let mut before = None;
    let mut sessions = Vec::new();
    let mut events = Vec::new();
    loop {
        let p = j
            .page(&PageQuery {
                before,
                newest_first: true,
                limit: 3,
                ..PageQuery::default()
            })
            .unwrap();
        assert_eq!(p.next_after, None);
        sessions.extend(p.sessions.iter().map(|s| s.id));
        events.extend(p.events.iter().map(|e| e.id));
        match p.next_before {
            Some(n) => {
                assert!(before.is_none_or(|b| n < b), "the walk moves back");
                before = Some(n);
            }
            None => break,
        }
    }
    // Newest first, each record once, the same as the oldest-first read.
    let mut want: Vec<i64> = admin.sessions.iter().map(|s| s.id).collect();
    want.reverse();
    assert_eq!(sessions, want);
    let mut want: Vec<i64> = admin.events.iter().map(|e| e.id).collect();
    want.reverse();
    assert_eq!(events, want);
    // The first page holds the newest session.
    let first = j
        .page(&PageQuery {
            exe: Some("/usr/bin/curl".into()),
            newest_first: true,
            limit: 1,
            ..PageQuery::default()
        })
        .unwrap();
    assert_eq!(
        first.sessions.first().map(|s| s.id),
        admin
            .sessions
            .iter()
            .filter(|s| s.exe.as_deref() == Some("/usr/bin/curl"))
            .map(|s| s.id)
            .max()
    );
}

fn cut_tail(path: &std::path::Path, rows: i64, reset_sequence: bool) -> i64 {
    let c = rusqlite::Connection::open(path).unwrap();
    let last: i64 = c
        .query_row("SELECT max(id) FROM records", [], |r| r.get(0))
        .unwrap();
    c.execute("DELETE FROM records WHERE id > ?1", [last - rows])
        .unwrap();
    if reset_sequence {
        c.execute(
            "UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'records'",
            [last - rows],
        )
        .unwrap();
    }
    last
}

#[test]
fn a_cut_tail_is_found_at_start_and_a_chained_record_names_the_old_head() {
    for reset_sequence in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let clock = Arc::new(FakeClock::at_noon());
        run(&path, &clock, vec![flood(3)]);
        let last = cut_tail(&path, 4, reset_sequence);
        let report = Journal::open_existing(&path).unwrap().verify().unwrap();
        assert!(
            !report.intact(),
            "the cut is seen before anything is written"
        );
        // The guard starts again.
        let stage = JournalStage::open_single_writer(&path, clock.clone());
        let warnings = stage.handle().status().warnings;
        assert!(
            warnings.contains(&JournalWarning::TailCut { last }),
            "{warnings:?}"
        );
        drop(stage);
        let j = Journal::open_existing(&path).unwrap();
        let report = j.verify().unwrap();
        assert!(report.intact(), "{reset_sequence}: {report:?}");
        let rec: Vec<EventRow> = all(&j, None)
            .events
            .into_iter()
            .filter(|e| e.kind == "recovered")
            .collect();
        assert_eq!(rec.len(), 1);
        assert_eq!(rec[0].detail["reason"], "tail-cut");
        assert_eq!(rec[0].detail["old_head"]["id"], last);
        assert_eq!(rec[0].detail["found"]["id"], last - 4);
    }
}

#[test]
fn a_tail_cut_behind_a_running_writer_is_recorded_before_its_next_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let clock = FakeClock::at_noon();
    let (j, _) = Journal::open(&path, clock.now()).unwrap();
    let mut app = Appender::new(j);
    app.watch_tail().unwrap();
    let start = |n: u64| Entry::AppStart {
        at: clock.now(),
        detail: serde_json::json!({ "n": n }),
    };
    app.write_batch(&[start(1), start(2), start(3)]).unwrap();
    app.journal()
        .connection()
        .execute("DELETE FROM records WHERE id = 3", [])
        .unwrap();
    app.write_batch(&[start(4)]).unwrap();
    let j = app.journal();
    let report = j.verify().unwrap();
    assert!(report.intact(), "{report:?}");
    let rec: Vec<EventRow> = all(j, None)
        .events
        .into_iter()
        .filter(|e| e.kind == "recovered")
        .collect();
    assert_eq!(rec.len(), 1, "one record says what was lost");
    assert_eq!(rec[0].detail["old_head"]["id"], 3);
    assert_eq!(rec[0].detail["found"]["id"], 2);
}

#[test]
fn a_gap_without_a_recovery_record_is_still_a_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let clock = Arc::new(FakeClock::at_noon());
    run(&path, &clock, vec![flood(3)]);
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute("DELETE FROM records WHERE id = 3", []).unwrap();
    drop(c);
    let report = Journal::open_existing(&path).unwrap().verify().unwrap();
    assert!(matches!(
        report.first_bad.map(|b| b.problem),
        Some(chain::Problem::Missing { from: 3, to: 3 })
    ));
}

#[test]
fn the_uid_is_part_of_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let clock = Arc::new(FakeClock::at_noon());
    run(&path, &clock, vec![flood(3)]);
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute(
        "UPDATE records SET uid = 1001 WHERE id = (SELECT min(id) FROM records WHERE uid = 1000)",
        [],
    )
    .unwrap();
    drop(c);
    let report = Journal::open_existing(&path).unwrap().verify().unwrap();
    assert!(matches!(
        report.first_bad.map(|b| b.problem),
        Some(chain::Problem::Changed)
    ));
}

#[test]
fn past_its_size_cap_the_oldest_records_go_and_the_chain_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let clock = FakeClock::at_noon();
    let (mut j, _) = Journal::open(&path, clock.now()).unwrap();
    let pad = "x".repeat(400);
    for batch in 0..20 {
        let entries: Vec<Entry> = (0..100)
            .map(|i| Entry::AppStart {
                at: clock.now(),
                detail: serde_json::json!({ "n": batch * 100 + i, "pad": pad }),
            })
            .collect();
        j.write_entries(&entries).unwrap();
    }
    let before = j.used_bytes().unwrap();
    let cap = before / 2;
    let r = j.prune_to_size(clock.now(), cap, None).unwrap();
    assert!(r.removed > 1000, "{r:?}");
    assert!(
        j.used_bytes().unwrap() <= cap,
        "{} > {cap}",
        j.used_bytes().unwrap()
    );
    assert!(j.verify().unwrap().intact());
    let pruned: Vec<EventRow> = all(&j, None)
        .events
        .into_iter()
        .filter(|e| e.kind == "pruned")
        .collect();
    assert_eq!(pruned.len(), 1);
    assert_eq!(pruned[0].detail["over_bytes"], cap);
    // Under the cap nothing more goes.
    assert_eq!(j.prune_to_size(clock.now(), cap, None).unwrap().removed, 0);
}

// Unix lets a file be removed while it is open; Windows refuses, so the
// case does not arise there.
#[cfg(all(unix, test))]
#[test]
fn a_journal_deleted_under_its_only_writer_is_started_anew_naming_the_old_head() {
    for with_head_file in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let clock = Arc::new(FakeClock::at_noon());
        let mut m = core(vec![flood(3), flood(3), flood(3)], clock.clone());
        let stage = JournalStage::open_single_writer(&path, clock.clone());
        let handle = stage.handle();
        m.add_stage(Box::new(stage));
        m.tick().unwrap();
        assert!(handle.flush(Duration::from_secs(30)));
        let old = handle.status().head_id.unwrap();
        let mut gone = vec!["", "-wal", "-shm"];
        if !with_head_file {
            gone.push(".head");
        }
        for suffix in gone {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        clock.advance(Duration::from_secs(1));
        m.tick().unwrap();
        m.save();
        let j = Journal::open_existing(&path).unwrap();
        assert!(j.verify().unwrap().intact());
        let rec: Vec<EventRow> = all(&j, None)
            .events
            .into_iter()
            .filter(|e| e.kind == "recovered")
            .collect();
        assert_eq!(rec.len(), 1, "{with_head_file}: {rec:?}");
        assert_eq!(rec[0].detail["reason"], "missing");
        assert!(
            rec[0].detail["old_head"]["id"].as_i64().unwrap() >= old,
            "{with_head_file}: {:?} < {old}",
            rec[0].detail
        );
    }
}
