// The tray is a D-Bus StatusNotifierItem: Linux only.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The tray and notifications over a private D-Bus session: the real
//! `kizuki --minimized` under Xvfb registers its item with a watcher
//! stand-in, shows the expected menu, obeys a menu click, notifies a
//! notification-server stand-in about a new program, hands a second launch
//! over to itself, and quits from the menu with status 0.
//! Skips (saying so) when dbus-daemon, Xvfb, xdotool or Python's dbus/gi
//! modules are missing.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kizuki");
const PYTHON: &str = "/usr/bin/python3";
const MENU: [&str; 5] = [
    "開く",
    "通知を1時間止める",
    "通信を全部止める",
    "相談する",
    "終了",
];

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

fn missing_tool() -> Option<String> {
    for tool in ["Xvfb", "dbus-daemon", "xdotool"] {
        if !on_path(tool) {
            return Some(format!("{tool} is not installed"));
        }
    }
    let ok = Command::new(PYTHON)
        .args([
            "-c",
            "import dbus, dbus.service; from gi.repository import GLib",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!ok).then(|| "python3-dbus or python3-gi is not installed".to_string())
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/dbus")
        .join(name)
}

/// Kills the child when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Each stdout line of `child`, as it comes.
fn lines(child: &mut Child) -> Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line matching `want`; returns it with every line seen.
fn wait_line(
    rx: &Receiver<String>,
    timeout: Duration,
    want: impl Fn(&str) -> bool,
) -> (Option<String>, Vec<String>) {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) => {
                if want(&l) {
                    return (Some(l), seen);
                }
                seen.push(l);
            }
            Err(_) => break,
        }
    }
    (None, seen)
}

fn wait_until(timeout: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// True when `ok` holds at every look during all of `period` (a first
/// look alone proves nothing: the window may simply not be mapped yet).
fn holds_for(period: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + period;
    while Instant::now() < deadline {
        if !ok() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    ok()
}

fn private_dir(parent: &Path, name: &str) -> PathBuf {
    let d = parent.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

struct Desktop {
    display: String,
    bus: String,
    _procs: Vec<Killed>,
}

impl Desktop {
    /// Xvfb, a private session bus, and the two stand-ins.
    fn start(tmp: &Path) -> (Desktop, Receiver<String>, Receiver<String>) {
        let mut xvfb = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1280x800x24"])
            .args(["-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let mut n = String::new();
        BufReader::new(xvfb.stdout.take().unwrap())
            .read_line(&mut n)
            .unwrap();
        let display = format!(":{}", n.trim());
        let xvfb = Killed(xvfb);

        let socket = tmp.join("bus");
        let mut daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address"])
            .arg(format!("--address=unix:path={}", socket.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let mut bus = String::new();
        BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut bus)
            .unwrap();
        let bus = bus.trim().to_string();
        assert!(bus.starts_with("unix:"), "bus address: {bus:?}");
        let daemon = Killed(daemon);

        let stand_in = |name: &str| {
            let mut c = Command::new(PYTHON)
                .arg(script(name))
                .env("DBUS_SESSION_BUS_ADDRESS", &bus)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start a stand-in");
            let rx = lines(&mut c);
            let (ready, seen) = wait_line(&rx, Duration::from_secs(20), |l| l == "ready");
            assert!(ready.is_some(), "{name} did not start: {seen:?}");
            (Killed(c), rx)
        };
        let (watcher, registered) = stand_in("watcher.py");
        let (notifyd, notified) = stand_in("notifyd.py");
        (
            Desktop {
                display,
                bus,
                _procs: vec![watcher, notifyd, daemon, xvfb],
            },
            registered,
            notified,
        )
    }

    fn kizuki(&self, runtime: &Path, data: &Path) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--data-dir").arg(data);
        if kizuki::probe::running_as_admin() {
            cmd.arg("--allow-root");
        }
        cmd.env("DISPLAY", &self.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env("XDG_RUNTIME_DIR", runtime)
            .env("LANG", "ja_JP.UTF-8")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("LANGUAGE")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env_remove("KIZUKI_DATA_DIR");
        cmd
    }

    fn sni(&self, args: &[&str]) -> String {
        let out = Command::new(PYTHON)
            .arg(script("sni.py"))
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sni.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn window_visible(&self) -> bool {
        Command::new("xdotool")
            .args(["search", "--onlyvisible", "--class", "kizuki"])
            .env("DISPLAY", &self.display)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

#[test]
fn tray_menu_notifications_and_second_launch_over_dbus() {
    if let Some(why) = missing_tool() {
        common::skip("tray_menu_notifications_and_second_launch_over_dbus", &why);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let runtime = private_dir(tmp.path(), "runtime");
    let data = private_dir(tmp.path(), "data");
    // The quiet first hours are over (their summary was sent), so a new
    // program is notified at once (notify::quiet).
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::fs::write(
        data.join("notified.json"),
        format!(r#"{{"version":1,"told":{{"quiet-summary":{{"sha256":null,"at":{secs}}}}}}}"#),
    )
    .unwrap();
    let (desktop, registered, notified) = Desktop::start(tmp.path());

    let mut app = desktop.kizuki(&runtime, &data);
    app.arg("--minimized")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut app = Killed(app.spawn().expect("start kizuki"));
    let stderr_of = |app: &mut Killed| {
        let mut err = String::new();
        if let Some(mut e) = app.0.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    };

    // The item registers with the watcher.
    let (line, _) = wait_line(&registered, Duration::from_secs(60), |l| {
        l.starts_with("registered ")
    });
    let Some(line) = line else {
        let _ = app.0.kill();
        panic!("no tray item registered: {}", stderr_of(&mut app));
    };
    let item = line["registered ".len()..].to_string();

    // Its menu, read as a panel reads it.
    let labels: Vec<String> = serde_json::from_str(&desktop.sni(&["labels", &item])).unwrap();
    assert_eq!(labels, MENU);

    // Started in the tray: the window is never shown, not even briefly,
    // while the app runs (its tray item is registered, so it is up).
    assert!(
        holds_for(Duration::from_secs(5), || !desktop.window_visible()),
        "the window must stay hidden with --minimized"
    );

    // A program the baseline has not seen connects: one notification.
    assert!(
        wait_until(Duration::from_secs(60), || data
            .join("baseline.json")
            .exists()),
        "the first sample records the baseline"
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    // Outside temporary folders, so "new program" is all there is to say.
    let tool_dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tray-dbus-{}", std::process::id()));
    std::fs::create_dir_all(&tool_dir).unwrap();
    let tool = tool_dir.join("freetool");
    std::fs::copy(PYTHON, &tool).unwrap();
    // Its own bytes (ELF ignores a tail): a copy of a Python that is
    // running (this test's desktop helpers) would be "a known program
    // under another name", which is another notification.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&tool)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"\0kizuki tray test"))
        .unwrap();
    let freetool = Command::new(&tool)
        .args([
            "-c",
            "import socket,sys,time; c=socket.create_connection(('127.0.0.1', int(sys.argv[1]))); time.sleep(60)",
            &port,
        ])
        .spawn()
        .unwrap();
    let _freetool = Killed(freetool);
    let _conn = listener.accept().unwrap();
    let (note, others) = wait_line(&notified, Duration::from_secs(60), |l| {
        l.contains("\"body\": \"freetool:")
    });
    let Some(note) = note else {
        panic!("no notification about freetool; got {others:?}");
    };
    let note: serde_json::Value = serde_json::from_str(&note).unwrap();
    assert_eq!(note["summary"], "新しいプログラムが通信しています");
    assert_eq!(note["app"], "kizuki");
    assert_eq!(note["actions"][0], "default", "a click opens the program");

    // The tray says there is something to look at.
    let tip: serde_json::Value = serde_json::from_str(&desktop.sni(&["tooltip", &item])).unwrap();
    assert_ne!(tip["title"], "気づき — 注意が必要なことはありません");
    assert!(
        tip["text"]
            .as_str()
            .unwrap()
            .contains("新規・保留中のプログラムの通信"),
        "{tip}"
    );

    // 開く shows the window.
    desktop.sni(&["click", &item, "開く"]);
    assert!(
        wait_until(Duration::from_secs(20), || desktop.window_visible()),
        "開く should show the window"
    );

    // A second launch hands over to the running one and ends at once.
    let second = desktop
        .kizuki(&runtime, &data)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("すでに動いています"),
        "{second:?}"
    );

    // 終了 ends kizuki with status 0.
    desktop.sni(&["click", &item, "終了"]);
    let mut status = None;
    wait_until(Duration::from_secs(30), || {
        status = app.0.try_wait().unwrap();
        status.is_some()
    });
    let Some(status) = status else {
        panic!("kizuki did not quit from the menu");
    };
    assert!(status.success(), "{status}: {}", stderr_of(&mut app));
    let _ = std::fs::remove_dir_all(&tool_dir);
}
