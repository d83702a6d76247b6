// These tests drive real Linux processes, sockets and /proc.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real binary under Xvfb: it starts, stays up, and draws a window.
//! Skips (saying so) when Xvfb or ImageMagick is missing.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kizuki");

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Kills the child when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Xvfb on a display number it picks itself (`-displayfd`).
fn start_xvfb() -> (Killed, String) {
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start Xvfb");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("Xvfb reports its display");
    let display = format!(":{}", line.trim());
    assert!(
        line.trim().parse::<u32>().is_ok(),
        "display number: {line:?}"
    );
    (Killed(child), display)
}

fn colours(png: &Path) -> u64 {
    let out = Command::new("convert")
        .arg(png)
        .args(["-format", "%k", "info:"])
        .output()
        .expect("run convert");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn private_dir(parent: &Path, name: &str) -> PathBuf {
    let d = parent.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

#[test]
fn window_starts_stays_up_and_draws() {
    for tool in ["Xvfb", "import", "convert"] {
        if !on_path(tool) {
            common::skip(
                "window_starts_stays_up_and_draws",
                &format!("{tool} is not installed"),
            );
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let runtime = private_dir(tmp.path(), "runtime");
    let data = private_dir(tmp.path(), "data");
    let (_xvfb, display) = start_xvfb();

    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir").arg(&data);
    if kizuki::probe::running_as_admin() {
        cmd.arg("--allow-root");
    }
    let app = cmd
        .env("DISPLAY", &display)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("LANG", "ja_JP.UTF-8")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("LANGUAGE")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kizuki");
    let mut app = Killed(app);

    // A few seconds up, then screenshots until something is drawn.
    std::thread::sleep(Duration::from_secs(3));
    let shot = tmp.path().join("shot.png");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut count = 0;
    while Instant::now() < deadline {
        if let Some(status) = app.0.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = app.0.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("kizuki exited early with {status}: {err}");
        }
        let ok = Command::new("import")
            .args(["-display", &display, "-window", "root"])
            .arg(&shot)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            count = colours(&shot);
            if count > 1 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(count > 1, "the screen stayed one colour: nothing was drawn");
    assert!(
        app.0.try_wait().unwrap().is_none(),
        "kizuki must still be running"
    );
    println!("window drew {count} colours on {display}");
}

#[test]
fn window_refuses_root_without_allow_root() {
    if !kizuki::probe::running_as_admin() {
        common::skip("window_refuses_root_without_allow_root", "needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(tmp.path())
        .args(["--lang", "en"])
        .env_remove("KIZUKI_ALLOW_ROOT")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--allow-root"), "says how: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}
