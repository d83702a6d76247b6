//! The evidence journal inside the guard, for real, as root: `kizuki
//! guard` runs in a network namespace this test creates, on a temporary
//! state folder, socket and parent cgroup (as in tests/guard_netns.rs).
//! Programs talk over the namespace's loopback only.
//!
//! - an unprivileged user (nobody, through setpriv) can neither read nor
//!   write the journal file, and `history` through the guard shows them
//!   only their own programs' records; root sees all;
//! - a tail cut with sqlite while the guard is stopped is found when it
//!   starts again, reported, and a chained record names the old head;
//! - a flood (one program opening 1,500 connections at once) becomes
//!   counted, chained records, with nothing silently lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const NOBODY: &str = "65534";

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace, deleted when dropped.
struct Netns(String);

impl Netns {
    fn new(name: String) -> Netns {
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Netns(name)
    }
    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.0))
    }
    /// A command run inside the namespace.
    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path().display()))
            .arg(program)
            .stdin(Stdio::null());
        c
    }
    /// The same as nobody.
    fn cmd_as_nobody(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path().display()))
            .args([
                "setpriv",
                "--reuid",
                NOBODY,
                "--regid",
                NOBODY,
                "--clear-groups",
            ])
            .arg(program)
            .stdin(Stdio::null());
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// Kills a child when the test ends, however it ends.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes the test's (empty) parent cgroup at the end.
struct CgroupCleanup(PathBuf);

impl Drop for CgroupCleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn cgroup_mount() -> PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    kizuki::firewall::cgroup::find_v2_mount(&info).unwrap()
}

struct Guard<'a> {
    ns: &'a Netns,
    state: PathBuf,
    socket: PathBuf,
    parent: String,
    stderr: PathBuf,
    child: Option<Reap>,
}

impl Guard<'_> {
    fn start(&mut self) {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr)
            .unwrap();
        let child = self
            .ns
            .cmd(common::kizuki())
            .args(["--lang", "en", "guard"])
            .env("KIZUKI_STATE_DIR", &self.state)
            .env("KIZUKI_GUARD_SOCKET", &self.socket)
            .env("KIZUKI_CGROUP_PARENT", &self.parent)
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        self.child = Some(Reap(child));
        wait_until("the guard answers", Duration::from_secs(30), || {
            UnixStream::connect(&self.socket).is_ok()
                && self.ask(&json!({"op": "status"}))["reply"] == "ok"
        });
    }

    /// Stops it the hard way (as a crash would).
    fn kill(&mut self) {
        self.child = None;
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn journal(&self) -> PathBuf {
        self.state.join("journal.sqlite3")
    }

    /// One request as root, straight over the socket.
    fn ask(&self, req: &Value) -> Value {
        let mut s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        writeln!(s, "{req}").unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    /// Every page of the guard's journal, as root.
    fn history(&self) -> (Vec<Value>, Vec<Value>) {
        let (mut sessions, mut events) = (Vec::new(), Vec::new());
        let mut after = 0;
        loop {
            let r = self.ask(&json!({"op": "history", "query": {"after": after}}));
            assert_eq!(r["reply"], "history", "{r}");
            let page = &r["page"];
            sessions.extend(page["sessions"].as_array().unwrap().iter().cloned());
            events.extend(page["events"].as_array().unwrap().iter().cloned());
            match page["next_after"].as_i64() {
                Some(n) => after = n,
                None => return (sessions, events),
            }
        }
    }

    /// `kizuki history …` as nobody, through the guard.
    /// One request line as nobody, through a small Python client.
    fn ask_as_nobody(&self, line: &str) -> Value {
        let out = Command::new("setpriv")
            .args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups"])
            .arg(common::python())
            .args([
                "-c",
                "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ns.sendall((sys.argv[2]+'\\n').encode())\nprint(s.makefile().readline().strip())",
            ])
            .arg(&self.socket)
            .arg(line)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn cli_as_nobody(&self, args: &[&str], tmp: &Path) -> Output {
        Command::new("setpriv")
            .args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups"])
            .arg(common::kizuki())
            .arg("--data-dir")
            .arg(tmp.join("nobody-data"))
            .args(["--lang", "en", "history"])
            .args(args)
            .env("KIZUKI_GUARD_SOCKET", &self.socket)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn copy_exe(from: &str, to: &Path) {
    std::fs::copy(from, to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Accepts connections on 127.0.0.1:`port` in the namespace and holds them.
const LISTENER: &str = "
import resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (10000, 10000))
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[1])))
s.listen(4096)
print('ready', flush=True)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
";

/// Opens `n` connections at once, holds them `hold` seconds, closes them.
const FLOOD: &str = "
import resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (10000, 10000))
n, hold = int(sys.argv[2]), float(sys.argv[3])
conns = [socket.create_connection(('127.0.0.1', int(sys.argv[1]))) for _ in range(n)]
time.sleep(hold)
for c in conns:
    c.close()
";

fn exe_of(v: &Value) -> String {
    v["exe"].as_str().unwrap_or("").to_string()
}

#[test]
fn the_journal_in_the_guard_is_root_s_shows_each_user_their_own_and_survives_cuts_and_floods() {
    let name = "the_journal_in_the_guard";
    if !common::privileged(
        name,
        common::lacks_root_or(&["ip", "nsenter", "setpriv", "bash"]),
    ) {
        return;
    }
    let id = std::process::id() % 100_000;
    let parent = format!("kizuki-jtest-{id}");
    let _cg = CgroupCleanup(cgroup_mount().join(&parent));
    let ns = Netns::new(format!("kzj-{id}"));
    let tmp = tempfile::tempdir().unwrap();
    // nobody must reach the socket and run the programs below.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (mine, roots) = (bin.join("nobody-talk"), bin.join("root-talk"));
    let short = bin.join("nobody-short");
    copy_exe("/bin/bash", &mine);
    copy_exe("/bin/bash", &roots);
    copy_exe("/bin/bash", &short);
    let mut guard = Guard {
        ns: &ns,
        state: tmp.path().join("state"),
        socket: tmp.path().join("run/guard.sock"),
        parent,
        stderr: tmp.path().join("guard.stderr"),
        child: None,
    };
    guard.start();

    let mut listener = ns
        .cmd(common::python())
        .args(["-c", LISTENER, "7000"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(listener.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    let _listener = Reap(listener);
    assert_eq!(ready.trim(), "ready");

    // One connection each, held for a while: nobody's and root's.
    let hold = "exec 3<>/dev/tcp/127.0.0.1/7000; read -t 8 -u 3";
    let _n = Reap(ns.cmd_as_nobody(&mine).args(["-c", hold]).spawn().unwrap());
    let _r = Reap(ns.cmd(&roots).args(["-c", hold]).spawn().unwrap());
    wait_until(
        "both connections are journaled",
        Duration::from_secs(30),
        || {
            let (s, _) = guard.history();
            let exes: Vec<String> = s.iter().map(exe_of).collect();
            exes.contains(&mine.display().to_string())
                && exes.contains(&roots.display().to_string())
        },
    );

    // The file is root's, 0600, and out of nobody's reach.
    for suffix in ["", "-wal", "-shm", ".head"] {
        let p = format!("{}{suffix}", guard.journal().display());
        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!(meta.uid(), 0, "{p}");
        assert_eq!(meta.mode() & 0o077, 0, "{p}: mode {:o}", meta.mode());
    }
    for attempt in [
        format!("cat '{}' > /dev/null", guard.journal().display()),
        format!("echo x >> '{}'", guard.journal().display()),
        format!("rm -f '{}'", guard.journal().display()),
        format!(": > '{}.head'", guard.journal().display()),
    ] {
        let out = Command::new("setpriv")
            .args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups"])
            .args(["bash", "-c", &attempt])
            .output()
            .unwrap();
        assert!(!out.status.success(), "nobody could: {attempt}");
    }
    assert!(guard.journal().exists());

    // Through the guard, nobody sees their own program and not root's.
    let out = guard.cli_as_nobody(&["--json"], tmp.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only your own programs"), "{err}");
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["source"], "guard");
    assert_eq!(shown["scope"], json!({"scope": "own", "uid": 65534}));
    let exes: Vec<String> = shown["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(exe_of)
        .collect();
    assert!(exes.contains(&mine.display().to_string()), "{exes:?}");
    // (Other programs of uid 65534 on this machine may show too: they are
    // nobody's own.) Root's talker and root's listener are not shown.
    let root_exe = roots.display().to_string();
    assert!(!exes.contains(&root_exe), "{exes:?}");
    assert!(
        shown["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["local"] != "127.0.0.1:7000"),
        "root's listener's side is not nobody's"
    );
    let events = shown["events"].as_array().unwrap();
    assert!(events.iter().all(|e| exe_of(e) != root_exe), "{events:?}");
    // Root sees everyone's.
    let (all, _) = guard.history();
    assert!(all.iter().any(|s| exe_of(s) == roots.display().to_string()));
    // nobody cannot widen the query.
    let forged = guard.ask_as_nobody(r#"{"op":"history","query":{"uid":0}}"#);
    assert_eq!(forged["reply"], "refused", "{forged}");
    // A short connection of nobody's: it ends in TIME_WAIT, which the
    // kernel reports as root's; it is still nobody's to see.
    let quick = "exec 3<>/dev/tcp/127.0.0.1/7000; exec 3>&-";
    let status = ns
        .cmd_as_nobody(&short)
        .args(["-c", quick])
        .status()
        .unwrap();
    assert!(status.success());
    wait_until(
        "nobody sees their own short connection",
        Duration::from_secs(30),
        || {
            let out = guard.cli_as_nobody(&["--json"], tmp.path());
            let shown: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            shown["sessions"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| exe_of(s) == short.display().to_string()))
        },
    );
    // The window's history tab: nobody's newest session of their program,
    // read newest first, and still nothing of root's.
    for exe in [&mine, &roots] {
        let q = json!({"op": "history", "query": {
            "exe": exe.display().to_string(), "newest_first": true, "limit": 1}});
        let page = guard.ask_as_nobody(&q.to_string());
        assert_eq!(page["reply"], "history", "{page}");
        let got = page["page"]["sessions"].as_array().unwrap();
        if exe == &mine {
            assert_eq!(got.len(), 1, "{page}");
            assert_eq!(exe_of(&got[0]), mine.display().to_string());
        } else {
            assert!(got.is_empty(), "root's program is not nobody's: {page}");
        }
    }

    // A flood: 1,500 connections at once from one program, held 3 s.
    let flood = Reap(
        ns.cmd(common::python())
            .args(["-c", FLOOD, "7000", "1500", "3"])
            .spawn()
            .unwrap(),
    );
    let mut flood = flood;
    let status = flood.0.wait().unwrap();
    assert!(status.success());
    wait_until("the flood is counted", Duration::from_secs(30), || {
        let (_, events) = guard.history();
        let opened: u64 = events
            .iter()
            .filter(|e| e["kind"] == "aggregate")
            .map(|e| e["detail"]["opened"].as_u64().unwrap_or(0))
            .sum();
        opened >= 1000
    });
    let (sessions, events) = guard.history();
    let counted: Vec<&Value> = events.iter().filter(|e| e["kind"] == "aggregate").collect();
    eprintln!(
        "flood: {} aggregate records counting {} sessions; {} session records in all",
        counted.len(),
        counted
            .iter()
            .map(|e| e["detail"]["opened"].as_u64().unwrap_or(0))
            .sum::<u64>(),
        sessions.len()
    );
    for e in events.iter().filter(|e| e["kind"] == "dropped") {
        assert!(
            e["detail"]["count"].as_u64().unwrap() > 0,
            "a drop says how many: {e}"
        );
    }
    let v = guard.ask(&json!({"op": "history-verify"}));
    assert_eq!(v["reply"], "history-verify", "{v}");
    assert!(v["verify"]["first_bad"].is_null(), "{v}");

    // The tail is cut while the guard is stopped.
    guard.kill();
    let last = {
        let c = rusqlite::Connection::open(guard.journal()).unwrap();
        let last: i64 = c
            .query_row("SELECT max(id) FROM records", [], |r| r.get(0))
            .unwrap();
        c.execute("DELETE FROM records WHERE id > ?1", [last - 5])
            .unwrap();
        last
    };
    // Read as the file stands, the cut shows.
    let report = kizuki::journal::Journal::open_existing(&guard.journal())
        .unwrap()
        .verify()
        .unwrap();
    assert!(!report.intact(), "{report:?}");
    guard.start();
    assert!(
        guard.log_text().contains("were removed"),
        "{}",
        guard.log_text()
    );
    let v = guard.ask(&json!({"op": "history-verify"}));
    assert!(v["verify"]["first_bad"].is_null(), "{v}");
    let rec = v["verify"]["recoveries"].as_array().unwrap();
    assert!(
        rec.iter().any(|r| r["detail"]["reason"] == "tail-cut"
            && r["detail"]["old_head"]["id"] == last
            && r["detail"]["found"]["id"] == last - 5),
        "{v}"
    );
    // nobody's `history verify` says so too, through the guard.
    let out = guard.cli_as_nobody(&["verify"], tmp.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("records up to #{last} were removed")),
        "{text}"
    );

    // Deleted under the running guard: a new journal names the old head.
    let before = guard.ask(&json!({"op": "history-verify"}))["verify"]["head"]["id"]
        .as_i64()
        .unwrap();
    std::fs::remove_file(guard.journal()).unwrap();
    wait_until(
        "a new journal names the deleted one",
        Duration::from_secs(30),
        || {
            let v = guard.ask(&json!({"op": "history-verify"}));
            v["reply"] == "history-verify"
                && v["verify"]["recoveries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| {
                        r["detail"]["reason"] == "missing"
                            && r["detail"]["old_head"]["id"].as_i64() >= Some(before)
                    })
        },
    );
    let v = guard.ask(&json!({"op": "history-verify"}));
    assert!(v["verify"]["first_bad"].is_null(), "{v}");
    eprintln!(
        "{}",
        guard
            .log_text()
            .lines()
            .filter(|l| l.contains("journal"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
