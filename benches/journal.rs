#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Journal benchmark (not a test): `cargo bench --bench journal`.
//!
//! 1. One million connection sessions over 300 programs: insert throughput,
//!    file size, per-program query time (target < 50 ms), full verify.
//! 2. A simulated idle desktop day through the real monitor stage
//!    (20 programs, a few new sessions a minute): MB per day (target < 5).
//!
//! `KIZUKI_BENCH_SESSIONS` changes the size of part 1.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kizuki::clock::{Clock, FakeClock};
use kizuki::identity::FakeHasher;
use kizuki::journal::{Appender, Entry, Journal, JournalStage, ProgramRef, SessionQuery};
use kizuki::model::{Connection, Protocol, RawProcess, RawSample, RawSocket, SockState};
use kizuki::monitor::MonitorCore;
use kizuki::probe::FakeProbe;

fn used_bytes(j: &Journal) -> u64 {
    let c = j.connection();
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let q = |p: &str| -> i64 { c.pragma_query_value(None, p, |r| r.get(0)).unwrap() };
    ((q("page_count") - q("freelist_count")) * q("page_size")) as u64
}

fn program(i: usize) -> ProgramRef {
    ProgramRef {
        exe: Some(format!("/usr/lib/app-{i:03}/bin/program-{i:03}")),
        name: format!("program-{i:03}"),
        sha256: Some(format!("{i:064x}")),
    }
}

/// A cheap deterministic generator (no extra crates).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn million(sessions: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite3");
    let t0 = FakeClock::at_noon().now();
    let (j, _) = Journal::open(&path, t0).unwrap();
    let mut app = Appender::new(j);
    let programs: Vec<ProgramRef> = (0..300).map(program).collect();
    let mut rng = Lcg(7);
    // Sessions spread over 180 days, in time order.
    let span_ms = 180u64 * 86_400_000;
    let started = Instant::now();
    let batch_sessions = 1000;
    let mut batch = Vec::with_capacity(2 * batch_sessions);
    for n in 0..sessions {
        // Skewed: a few programs talk a lot, most a little.
        let r = rng.next() as usize;
        let p = &programs[(r % 300 * (r / 300 % 300)) / 300];
        let at = t0 + Duration::from_millis(span_ms * n as u64 / sessions as u64);
        let c = Connection {
            bytes_sent: None,
            bytes_received: None,
            pid: Some(1000 + (r % 5000) as u32),
            protocol: if r.is_multiple_of(10) {
                Protocol::Udp
            } else {
                Protocol::Tcp
            },
            local: format!("192.168.1.10:{}", 32768 + n % 28000)
                .parse()
                .unwrap(),
            remote: Some(
                format!("203.0.{}.{}:443", r % 256, (r >> 8) % 256)
                    .parse()
                    .unwrap(),
            ),
            state: SockState::Established,
            first_seen: at,
            last_seen: at + Duration::from_secs(1 + (r % 300) as u64),
            live: false,
            uid: None,
            remote_name: None,
        };
        batch.push(Entry::Opened {
            program: Some(p.clone()),
            conn: c.clone(),
        });
        batch.push(Entry::Closed {
            program: Some(p.clone()),
            conn: c,
        });
        if batch.len() >= 2 * batch_sessions {
            app.write_batch(&batch).unwrap();
            batch.clear();
        }
    }
    app.write_batch(&batch).unwrap();
    let took = started.elapsed();
    let j = app.journal();
    let bytes = used_bytes(j);
    println!("== {sessions} sessions over 300 programs ==");
    println!(
        "insert: {:.1} s, {:.0} sessions/s ({:.0} records/s) in batches of {batch_sessions}",
        took.as_secs_f64(),
        sessions as f64 / took.as_secs_f64(),
        2.0 * sessions as f64 / took.as_secs_f64()
    );
    println!(
        "file: {:.1} MB ({:.0} bytes/session)",
        bytes as f64 / 1e6,
        bytes as f64 / sessions as f64
    );
    // Per-program queries: the busiest, a middle one and a quiet one.
    let mut counts: Vec<(u64, String)> = j
        .programs(None)
        .unwrap()
        .into_iter()
        .map(|p| (p.sessions, p.exe.unwrap()))
        .collect();
    counts.sort();
    let picks = [
        counts.last().unwrap().clone(),
        counts[counts.len() / 2].clone(),
        counts[0].clone(),
    ];
    for (n, exe) in picks {
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..5 {
            let s = Instant::now();
            rows = j
                .sessions(&SessionQuery {
                    exe: Some(exe.clone()),
                    since: None,
                    limit: None,
                })
                .unwrap()
                .len();
            times.push(s.elapsed());
        }
        times.sort();
        let s = Instant::now();
        let recent = j
            .sessions(&SessionQuery {
                exe: Some(exe.clone()),
                since: Some(t0 + Duration::from_secs(179 * 86_400)),
                limit: None,
            })
            .unwrap()
            .len();
        let recent_t = s.elapsed();
        println!(
            "query --exe ({n} sessions): median {:.1} ms, max {:.1} ms, {rows} rows; \
             last day only: {:.2} ms, {recent} rows",
            times[2].as_secs_f64() * 1e3,
            times[4].as_secs_f64() * 1e3,
            recent_t.as_secs_f64() * 1e3
        );
    }
    let s = Instant::now();
    let p = j.programs(Some(&counts[0].1)).unwrap();
    println!(
        "program summary (first/last seen, count): {:.2} ms ({} sessions)",
        s.elapsed().as_secs_f64() * 1e3,
        p[0].sessions
    );
    let s = Instant::now();
    let r = j.verify().unwrap();
    println!(
        "verify: {:.1} s for {} records, intact = {}",
        s.elapsed().as_secs_f64(),
        r.records,
        r.intact()
    );
}

/// An idle desktop: 20 programs, each with a long-lived connection, and
/// a new short session every 15 s (4 a minute), for a day of 1 s ticks.
fn idle_day() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite3");
    let clock = Arc::new(FakeClock::at_noon());
    let (j, _) = Journal::open(&path, clock.now()).unwrap();
    let empty = used_bytes(&j);
    drop(j);
    let probe = FakeProbe::new(Vec::new());
    let mut core = MonitorCore::new(
        Box::new(probe.clone()),
        Box::new(FakeHasher::default()),
        clock.clone(),
        Duration::from_secs(1),
    );
    let stage = JournalStage::open_path(&path, clock.clone());
    let handle = stage.handle();
    core.add_stage(Box::new(stage));
    let procs: Vec<RawProcess> = (0..20)
        .map(|i| RawProcess::fake(2000 + i, &format!("/usr/bin/desktop-app-{i}")))
        .collect();
    let mut rng = Lcg(11);
    let mut short: Vec<(u32, String, u64)> = Vec::new(); // pid, local, ends at
    let mut port = 40000u32;
    let day = 86_400u64;
    let started = Instant::now();
    for t in 0..day {
        if t.is_multiple_of(15) {
            port = if port > 60000 { 40000 } else { port + 1 };
            let pid = 2000 + (rng.next() % 20) as u32;
            short.push((pid, format!("192.168.1.10:{port}"), t + 5 + rng.next() % 60));
        }
        short.retain(|(_, _, end)| *end > t);
        let mut sockets: Vec<RawSocket> = (0..20u32)
            .map(|i| {
                RawSocket::tcp(
                    2000 + i,
                    &format!("192.168.1.10:{}", 30000 + i),
                    "198.51.100.1:443",
                )
            })
            .collect();
        sockets.extend(
            short
                .iter()
                .map(|(pid, local, _)| RawSocket::tcp(*pid, local, "203.0.113.50:443")),
        );
        probe.push(RawSample::of(procs.clone(), sockets));
        core.tick().unwrap();
        if t.is_multiple_of(600) {
            handle.flush(Duration::from_secs(60));
        }
        clock.advance(Duration::from_secs(1));
    }
    core.save();
    let st = handle.status();
    let (j, _) = Journal::open(&path, clock.now()).unwrap();
    let bytes = used_bytes(&j) - empty;
    let sessions = j.sessions(&SessionQuery::default()).unwrap().len();
    println!("== idle desktop day (20 programs, 4 new sessions/min, 1 s ticks) ==");
    println!(
        "{sessions} sessions, {} records written, {} dropped: {:.2} MB/day (simulated in {:.1} s)",
        st.written,
        st.dropped,
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; other arguments are ignored.
    let sessions = std::env::var("KIZUKI_BENCH_SESSIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    million(sessions);
    idle_day();
}
