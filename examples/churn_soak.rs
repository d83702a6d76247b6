//! Process churn soak (Linux): the real sampler — `MonitorCore` with the
//! native probe and every stage `kizuki watch` uses — runs while processes
//! start and exit and sockets open and close, and every sample is checked
//! against /proc. Driven by `scripts/soak-churn.sh`.
//!
//! ```text
//! churn_soak churn   --seconds N [--rate 100]         start/exit ~N processes a second
//! churn_soak sampler --seconds N --data-dir DIR [--interval-ms 250] [--checks 40]
//! churn_soak child   PORT HOLD_MS                     (spawned by churn)
//! ```
//!
//! The sampler prints progress lines and one `RESULT key=value …` line; it
//! exits 1 when a tick panicked or a socket was attributed to a process
//! that does not hold it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("churn") => linux::churn(&args[1..]),
        Some("sampler") => linux::sampler(&args[1..]),
        Some("child") => linux::child(&args[1..]),
        _ => {
            eprintln!("usage: churn_soak churn|sampler|child …");
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("churn_soak: Linux only");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::{HashMap, HashSet};
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream, UdpSocket};
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::path::PathBuf;
    use std::process::{Child, Command, ExitCode, Stdio};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant, SystemTime};

    use kizuki::model::{RawSocket, Snapshot};
    use kizuki::monitor::{Stage, TickContext};
    use kizuki::setup;

    fn opt(args: &[String], name: &str) -> Option<String> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    }

    fn num(args: &[String], name: &str, default: u64) -> u64 {
        opt(args, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// A small xorshift: which sockets to check and how long children live.
    struct Rng(u64);
    impl Rng {
        fn seeded() -> Rng {
            let t = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1);
            Rng(t | 1)
        }
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            if n == 0 { 0 } else { self.next() % n }
        }
    }

    // ---- churn -------------------------------------------------------

    /// Starts `rate` children a second for `seconds`; each connects to a
    /// local listener (the accepted end is held here for a moment), opens a
    /// UDP socket, lives 10–300 ms and exits.
    pub fn churn(args: &[String]) -> ExitCode {
        let seconds = num(args, "--seconds", 60);
        let rate = num(args, "--rate", 100).max(1);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accepted connections live a little, then close: socket churn on
        // this side too.
        std::thread::Builder::new()
            .name("churn-accept".into())
            .spawn(move || {
                let mut held: Vec<(Instant, TcpStream)> = Vec::new();
                for s in listener.incoming().flatten() {
                    held.push((Instant::now(), s));
                    held.retain(|(t, _)| t.elapsed() < Duration::from_millis(200));
                }
            })
            .unwrap();
        // Children run as a program of their own (a hard link with another
        // name), so a socket of this process named for a child would show
        // under the wrong program.
        let me = std::env::current_exe().unwrap();
        let dir = opt(args, "--child-dir")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let child_exe = dir.join(format!("churn-child-{}", std::process::id()));
        let _ = std::fs::remove_file(&child_exe);
        if std::fs::hard_link(&me, &child_exe).is_err() {
            std::fs::copy(&me, &child_exe).unwrap();
        }
        let mut rng = Rng::seeded();
        let mut running: Vec<Child> = Vec::new();
        let (mut started, mut failed) = (0u64, 0u64);
        let begin = Instant::now();
        let step = Duration::from_secs_f64(1.0 / rate as f64);
        let mut next = Instant::now();
        while begin.elapsed() < Duration::from_secs(seconds) {
            // Most live 10–300 ms; one in twenty lives 1–3 s, like a
            // helper process that stays around.
            let hold = if rng.below(20) == 0 {
                1000 + rng.below(2000)
            } else {
                10 + rng.below(290)
            };
            match Command::new(&child_exe)
                .args(["child", &port.to_string(), &hold.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                Ok(c) => {
                    running.push(c);
                    started += 1;
                }
                Err(_) => failed += 1,
            }
            running.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
            next += step;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else if now - next > Duration::from_secs(1) {
                next = now; // fell behind: do not burst to catch up
            }
        }
        for mut c in running {
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&child_exe);
        let secs = begin.elapsed().as_secs_f64();
        println!(
            "CHURN started={started} failed={failed} seconds={secs:.0} rate={:.1}",
            started as f64 / secs
        );
        ExitCode::SUCCESS
    }

    pub fn child(args: &[String]) -> ExitCode {
        let port: u16 = args.first().and_then(|p| p.parse().ok()).unwrap_or(0);
        let hold: u64 = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(50);
        let tcp = TcpStream::connect(("127.0.0.1", port));
        let udp = UdpSocket::bind("127.0.0.1:0");
        if let Ok(u) = &udp {
            let _ = u.connect(("127.0.0.1", port));
            let _ = u.send(b"x");
        }
        if let Ok(mut t) = tcp.as_ref() {
            let _ = t.write_all(b"hello");
        }
        std::thread::sleep(Duration::from_millis(hold));
        if let Ok(mut t) = tcp {
            let mut b = [0u8; 1];
            let _ = t.set_nonblocking(true);
            let _ = t.read(&mut b);
        }
        ExitCode::SUCCESS
    }

    // ---- sampler -----------------------------------------------------

    /// Keeps each tick's raw sockets for the check after the tick.
    struct Capture(Arc<Mutex<Vec<RawSocket>>>);

    impl Stage for Capture {
        fn apply(&mut self, ctx: &TickContext<'_>, _snapshot: &mut Snapshot) {
            *self.0.lock().unwrap() = ctx.raw.sockets.clone();
        }
    }

    fn rss_kb() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }

    /// Socket inodes in the kernel's tables right now.
    fn live_inodes() -> HashSet<u64> {
        let mut out = HashSet::new();
        for f in ["tcp", "tcp6", "udp", "udp6"] {
            let Ok(text) = std::fs::read_to_string(format!("/proc/net/{f}")) else {
                continue;
            };
            for line in text.lines().skip(1) {
                if let Some(ino) = line.split_whitespace().nth(9).and_then(|v| v.parse().ok()) {
                    out.insert(ino);
                }
            }
        }
        out
    }

    /// The socket inodes `pid` holds, or `None` when it is gone.
    fn held_by(pid: u32) -> Option<HashSet<u64>> {
        let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
        let mut out = HashSet::new();
        for e in dir.flatten() {
            if let Ok(t) = std::fs::read_link(e.path()) {
                let t = t.to_string_lossy();
                if let Some(ino) = t
                    .strip_prefix("socket:[")
                    .and_then(|r| r.strip_suffix(']'))
                    .and_then(|n| n.parse().ok())
                {
                    out.insert(ino);
                }
            }
        }
        Some(out)
    }

    fn start_marker(pid: u32) -> Option<String> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after = stat.rsplit_once(')')?.1;
        after.split_whitespace().nth(19).map(str::to_string)
    }

    #[derive(Default)]
    struct Tally {
        checked: u64,
        confirmed: u64,
        exited: u64,
        closed: u64,
        /// Not held at check time, still held by nobody else the probe
        /// names, the process still the same: confirmed again next tick.
        suspects: HashMap<(u64, u32), (String, u32)>,
        misattributed: u64,
        /// Suspects the next sample corrected (or whose process exited).
        transient: u64,
        wrong_program: u64,
        examples: Vec<String>,
    }

    /// Checks up to `n` random owned sockets of the sample: each attributed
    /// PID must hold the socket. A PID that exited, or a socket that closed,
    /// in between does not count; a PID that is alive (same process) and
    /// does not hold a socket that still exists is a suspect, and counts
    /// as misattributed when the next sample still names it.
    fn check(sockets: &[RawSocket], snap: &Snapshot, n: usize, rng: &mut Rng, t: &mut Tally) {
        let owned: Vec<&RawSocket> = sockets
            .iter()
            .filter(|s| s.inode != 0 && !s.pids.is_empty())
            .collect();
        // Suspects from the last tick: still named by the probe?
        let named: HashMap<u64, &Vec<u32>> = owned.iter().map(|s| (s.inode, &s.pids)).collect();
        let suspects = std::mem::take(&mut t.suspects);
        let live = if suspects.is_empty() {
            HashSet::new()
        } else {
            live_inodes()
        };
        for ((inode, pid), (marker, strikes)) in suspects {
            let still_named = named.get(&inode).is_some_and(|p| p.contains(&pid));
            let same = start_marker(pid).as_deref() == Some(marker.as_str());
            let holds = held_by(pid).is_some_and(|h| h.contains(&inode));
            if still_named && same && !holds && live.contains(&inode) {
                if strikes >= 1 {
                    t.misattributed += 1;
                    if t.examples.len() < 5 {
                        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
                            .map(|p| p.display().to_string())
                            .unwrap_or_default();
                        t.examples
                            .push(format!("inode {inode} named for pid {pid} ({exe})"));
                    }
                } else {
                    t.suspects.insert((inode, pid), (marker, strikes + 1));
                }
            } else {
                t.transient += 1;
            }
        }
        let by_pid = program_index(snap);
        // Holders of every socket with the same addresses (sockets can
        // share them: SO_REUSEPORT, one per address family).
        let mut holders: Holders = HashMap::new();
        for x in sockets {
            holders
                .entry((x.protocol, x.local, x.remote))
                .or_default()
                .extend(&x.pids);
        }
        for _ in 0..n.min(owned.len()) {
            let s = owned[rng.below(owned.len() as u64) as usize];
            for &pid in &s.pids {
                t.checked += 1;
                let marker = start_marker(pid);
                match held_by(pid) {
                    None => t.exited += 1,
                    Some(h) if h.contains(&s.inode) => {
                        t.confirmed += 1;
                        check_program(s, pid, &by_pid, &holders, snap, t);
                    }
                    Some(_) => {
                        if !live_inodes().contains(&s.inode) {
                            t.closed += 1;
                        } else if let Some(m) = marker {
                            t.suspects.insert((s.inode, pid), (m, 0));
                        } else {
                            t.exited += 1;
                        }
                    }
                }
            }
        }
    }

    type Holders = HashMap<
        (
            kizuki::model::Protocol,
            std::net::SocketAddr,
            Option<std::net::SocketAddr>,
        ),
        Vec<u32>,
    >;

    /// PID → index of the program that lists it.
    fn program_index(snap: &Snapshot) -> HashMap<u32, usize> {
        let mut m = HashMap::new();
        for (i, p) in snap.programs.iter().enumerate() {
            for x in p.processes.iter().filter(|x| x.alive) {
                m.insert(x.pid, i);
            }
        }
        m
    }

    /// The socket's connection is listed under the program that runs `pid`.
    fn check_program(
        s: &RawSocket,
        pid: u32,
        by_pid: &HashMap<u32, usize>,
        holders: &Holders,
        snap: &Snapshot,
        t: &mut Tally,
    ) {
        let Some(&i) = by_pid.get(&pid) else {
            return; // kernel thread or hidden process: no program to check
        };
        let p = &snap.programs[i];
        let same = |c: &kizuki::model::Connection| {
            c.live && c.protocol == s.protocol && c.local == s.local && c.remote == s.remote
        };
        // Under its own program (by any of its processes: a shared socket
        // is listed once per program) …
        let listed = p.connections.iter().any(same);
        // … and under no other program that does not hold it.
        let held = holders.get(&(s.protocol, s.local, s.remote));
        let elsewhere = snap.programs.iter().enumerate().any(|(j, q)| {
            j != i
                && q.connections
                    .iter()
                    .any(|c| same(c) && c.pid.is_none_or(|o| !held.is_some_and(|h| h.contains(&o))))
        });
        if !listed || elsewhere {
            t.wrong_program += 1;
            if t.examples.len() < 5 {
                t.examples.push(format!(
                    "pid {pid} {} {:?} not under its program {}",
                    s.local, s.remote, p.name
                ));
            }
        }
    }

    pub fn sampler(args: &[String]) -> ExitCode {
        let seconds = num(args, "--seconds", 60);
        let interval = Duration::from_millis(num(args, "--interval-ms", 250));
        let checks = num(args, "--checks", 40) as usize;
        let data = opt(args, "--data-dir").map(PathBuf::from);
        // Ended sessions and exited processes are kept for `retain`; the
        // memory must level off once that window is full, so the start
        // figure is taken after two windows.
        let retain = Duration::from_secs((seconds / 5).clamp(10, 60));
        let warmup = retain * 2;

        let panics = Arc::new(AtomicUsize::new(0));
        let default_hook = std::panic::take_hook();
        {
            let panics = panics.clone();
            std::panic::set_hook(Box::new(move |info| {
                panics.fetch_add(1, Ordering::SeqCst);
                default_hook(info);
            }));
        }

        let opts = setup::Options {
            data_dir: data,
            interval,
            // As `kizuki watch`: the journal is part of what is soaked.
            record: true,
        };
        let marks = setup::open_marks(&opts);
        let mut core = setup::native_monitor_with(&opts, marks, Default::default())
            .expect("native probe")
            .with_retention(retain);
        let raw = Arc::new(Mutex::new(Vec::new()));
        core.add_stage(Box::new(Capture(raw.clone())));

        let mut rng = Rng::seeded();
        let mut tally = Tally::default();
        let rss_first = rss_kb();
        let mut rss_start = None;
        let (mut ticks, mut errors, mut max_programs, mut max_tick) = (0u64, 0u64, 0usize, 0u128);
        let begin = Instant::now();
        let mut last_report = Instant::now();
        let mut rss_minutes: Vec<u64> = Vec::new();
        while begin.elapsed() < Duration::from_secs(seconds) {
            let t0 = Instant::now();
            match catch_unwind(AssertUnwindSafe(|| core.tick())) {
                Ok(Ok(snap)) => {
                    max_tick = max_tick.max(t0.elapsed().as_millis());
                    ticks += 1;
                    max_programs = max_programs.max(snap.programs.len());
                    let sockets = std::mem::take(&mut *raw.lock().unwrap());
                    check(&sockets, &snap, checks, &mut rng, &mut tally);
                }
                Ok(Err(e)) => {
                    errors += 1;
                    eprintln!("tick error: {e}");
                }
                Err(_) => {} // counted by the hook
            }
            if rss_start.is_none() && begin.elapsed() >= warmup {
                rss_start = Some(rss_kb());
            }
            if last_report.elapsed() >= Duration::from_secs(60) {
                last_report = Instant::now();
                rss_minutes.push(rss_kb());
                println!(
                    "t={}s ticks={ticks} rss_kb={} checked={} misattributed={} sessions={}",
                    begin.elapsed().as_secs(),
                    rss_kb(),
                    tally.checked,
                    tally.misattributed,
                    core.tracker().session_count()
                );
            }
            std::thread::sleep(interval.saturating_sub(t0.elapsed()));
        }
        core.save();
        let rss_end = rss_kb();
        let rss_start = rss_start.unwrap_or(rss_first);
        let panics = panics.load(Ordering::SeqCst);
        for e in &tally.examples {
            println!("example: {e}");
        }
        let minutes: Vec<String> = rss_minutes.iter().map(u64::to_string).collect();
        println!("RSS_BY_MINUTE_KB {}", minutes.join(" "));
        println!(
            "RESULT seconds={seconds} ticks={ticks} tick_errors={errors} panics={panics} \
             sockets_checked={} confirmed={} skipped_exited={} skipped_closed={} \
             misattributions={} transient_unheld={} wrong_program={} max_programs={max_programs} \
             max_tick_ms={max_tick} rss_first_kb={rss_first} rss_start_kb={rss_start} \
             rss_end_kb={rss_end} retain_s={} warmup_s={}",
            tally.checked,
            tally.confirmed,
            tally.exited,
            tally.closed,
            tally.misattributed,
            tally.transient,
            tally.wrong_program,
            retain.as_secs(),
            warmup.as_secs(),
        );
        if panics == 0 && tally.misattributed == 0 && tally.wrong_program == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }
}
