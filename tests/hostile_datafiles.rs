// FIFOs, symlinks and chown are Unix; the CLI runs on the real machine.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 22, "every file is hostile": each data file kind × each way a
//! program of the user can booby-trap it. kizuki must start (no hang on a
//! pipe, no endless read of /dev/zero), say what it refused, and keep the
//! original aside exactly as it was.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use common::kizuki;

/// How a data file is planted.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Trap {
    Fifo,
    LinkToDevZero,
    LinkElsewhere,
    Oversized,
    Directory,
    OtherOwner,
}

const TRAPS: &[Trap] = &[
    Trap::Fifo,
    Trap::LinkToDevZero,
    Trap::LinkElsewhere,
    Trap::Oversized,
    Trap::Directory,
    Trap::OtherOwner,
];

/// How kizuki is made to read the file.
#[derive(Debug, Clone, Copy)]
enum Reader {
    /// A CLI command (args after `--data-dir D --lang en`).
    Cli(&'static [&'static str]),
    /// A library loader (the window's), run on a thread with a deadline.
    Lib(fn(&Path)),
}

struct Kind {
    file: &'static str,
    /// Bytes above the cap for this kind.
    cap: u64,
    reader: Reader,
    /// The file is moved aside (stores); false: only refused (verify reads).
    moved: bool,
}

fn kinds() -> Vec<Kind> {
    use kizuki::datafile::Kind as K;
    vec![
        Kind {
            file: "marks.json",
            cap: K::Marks.max_bytes(),
            reader: Reader::Cli(&["scan", "--json"]),
            moved: true,
        },
        Kind {
            file: "baseline.json",
            cap: K::Baseline.max_bytes(),
            reader: Reader::Cli(&["scan", "--json"]),
            moved: true,
        },
        Kind {
            file: "contacts.toml",
            cap: K::Contacts.max_bytes(),
            reader: Reader::Cli(&["contacts", "--json"]),
            moved: true,
        },
        Kind {
            file: "settings.toml",
            cap: K::Settings.max_bytes(),
            reader: Reader::Lib(|d| {
                let (_, w) = kizuki::tray::settings::Settings::load(Some(d), SystemTime::now());
                eprintln!("{}", w.unwrap_or_default());
            }),
            moved: true,
        },
        Kind {
            file: "notified.json",
            cap: K::Notified.max_bytes(),
            reader: Reader::Lib(|d| {
                let (_, w) = kizuki::notify::told::ToldLedger::load(Some(d), SystemTime::now());
                eprintln!("{}", w.join("\n"));
            }),
            moved: true,
        },
        Kind {
            file: "firewall.json",
            cap: K::FirewallState.max_bytes(),
            reader: Reader::Lib(|d| {
                let (_, w) = kizuki::firewall::DesiredState::load(Some(d), SystemTime::now());
                eprintln!("{}", w.unwrap_or_default());
            }),
            moved: true,
        },
        Kind {
            file: "journal.sqlite3",
            cap: 0,
            reader: Reader::Cli(&["history", "verify"]),
            moved: false,
        },
    ]
}

/// Plants `trap` at `path`; returns false when it cannot be planted here
/// (another owner needs root).
fn plant(trap: Trap, path: &Path, cap: u64, elsewhere: &Path) -> bool {
    match trap {
        Trap::Fifo => nix::unistd::mkfifo(path, nix::sys::stat::Mode::S_IRWXU).unwrap(),
        Trap::LinkToDevZero => std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
        Trap::LinkElsewhere => {
            std::fs::write(elsewhere, b"{}").unwrap();
            std::os::unix::fs::symlink(elsewhere, path).unwrap();
        }
        Trap::Oversized => {
            // A sparse file: its size is what counts, not its blocks.
            let f = std::fs::File::create(path).unwrap();
            f.set_len(cap.max(1) + 1).unwrap();
            if cap == 0 {
                // The journal has no size cap; a huge zero file is "not a
                // database", refused as such.
                f.set_len(1 << 30).unwrap();
            }
        }
        Trap::Directory => std::fs::create_dir(path).unwrap(),
        Trap::OtherOwner => {
            if !nix::unistd::geteuid().is_root() {
                assert!(
                    std::env::var_os("KIZUKI_REQUIRE_PRIVILEGED").is_none(),
                    "another owner needs root (chown)"
                );
                return false;
            }
            std::fs::write(path, b"{}").unwrap();
            nix::unistd::chown(path, Some(65534.into()), Some(65534.into())).unwrap();
        }
    }
    true
}

/// What the planted thing is, to compare after.
fn fingerprint(path: &Path) -> String {
    let m = std::fs::symlink_metadata(path).unwrap();
    let t = m.file_type();
    if t.is_symlink() {
        format!("link -> {}", std::fs::read_link(path).unwrap().display())
    } else if t.is_fifo() {
        "fifo".into()
    } else if t.is_dir() {
        "dir".into()
    } else {
        format!("file {} bytes uid {}", m.len(), m.uid())
    }
}

fn run_cli(data: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(kizuki())
        .arg("--data-dir")
        .arg(data)
        .args(["--lang", "en"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code(), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kizuki {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run_lib(data: &Path, f: fn(&Path)) {
    let (tx, rx) = mpsc::channel();
    let d = data.to_path_buf();
    std::thread::spawn(move || {
        f(&d);
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the loader hung");
}

/// What the directory holds besides the planted name: `name.refused-*`.
fn kept_aside(dir: &Path, name: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{name}.refused-"))
        })
}

#[test]
fn every_data_file_kind_survives_every_trap() {
    let mut failures = Vec::new();
    for kind in kinds() {
        for &trap in TRAPS {
            let data = tempfile::tempdir().unwrap();
            let other = tempfile::tempdir().unwrap();
            let path = data.path().join(kind.file);
            if !plant(trap, &path, kind.cap, &other.path().join("elsewhere")) {
                continue;
            }
            let before = fingerprint(&path);
            let case = format!("{} × {trap:?}", kind.file);
            match kind.reader {
                Reader::Cli(args) => {
                    let (code, err) = run_cli(data.path(), args);
                    let expect_ok = args[0] != "history";
                    if expect_ok != (code == Some(0)) {
                        failures.push(format!("{case}: exit {code:?}: {err}"));
                        continue;
                    }
                    if !err.contains(kind.file) {
                        failures.push(format!("{case}: does not say what it refused: {err}"));
                        continue;
                    }
                    // Each cause said once: no part of a message repeats.
                    for line in err.lines() {
                        let parts: Vec<&str> = line.split(": ").collect();
                        let mut unique = parts.clone();
                        unique.sort_unstable();
                        unique.dedup();
                        if unique.len() != parts.len() {
                            failures.push(format!("{case}: repeats itself: {line}"));
                        }
                    }
                }
                Reader::Lib(f) => run_lib(data.path(), f),
            }
            if kind.moved {
                match kept_aside(data.path(), kind.file) {
                    Some(p) if fingerprint(&p) == before => {}
                    Some(p) => failures.push(format!(
                        "{case}: kept aside changed: {} vs {before}",
                        fingerprint(&p)
                    )),
                    None => failures.push(format!("{case}: not kept aside")),
                }
            } else if fingerprint(&path) != before {
                failures.push(format!("{case}: changed in place"));
            }
            if trap == Trap::LinkElsewhere {
                let target = std::fs::read(other.path().join("elsewhere")).unwrap();
                if target != b"{}" {
                    failures.push(format!("{case}: the link's target was written"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The hash cache is no longer read at all: whatever is planted there,
/// a scan starts and leaves it alone.
#[test]
fn a_trapped_hash_cache_is_never_read() {
    for &trap in TRAPS {
        let data = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let path = data.path().join("hash-cache.json");
        if !plant(trap, &path, 1 << 20, &other.path().join("elsewhere")) {
            continue;
        }
        let before = fingerprint(&path);
        let (code, err) = run_cli(data.path(), &["scan", "--json"]);
        assert_eq!(code, Some(0), "{trap:?}: {err}");
        assert_eq!(fingerprint(&path), before, "{trap:?}");
    }
}

fn start(kids: &mut common::Children, exe: &Path) -> u32 {
    let child = kids.push(
        Command::new(exe)
            .arg("120")
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = child.id();
    for _ in 0..200 {
        if std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    pid
}

fn program<'a>(scan: &'a serde_json::Value, exe: &Path) -> &'a serde_json::Value {
    scan["programs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["exe"] == exe.to_str().unwrap())
        .unwrap_or_else(|| panic!("{} not in the scan", exe.display()))
}

/// Issue 22's reproduction: a trusted program is replaced and one line is
/// added to `hash-cache.json` giving the new file the old hash. The scan
/// must see the real hash: `exe-changed`, no trust mark, and the report
/// prints the real hash.
#[test]
fn a_poisoned_hash_cache_does_not_hide_a_replaced_program() {
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let exe = work.path().join("helper");
    std::fs::copy("/bin/sleep", &exe).unwrap();
    let good = kizuki::identity::sha256_file(&exe).unwrap();
    let mut kids = common::Children::default();
    let pid = start(&mut kids, &exe);
    // First sight (baseline), then the user trusts it.
    let first = common::scan_json(data.path());
    assert_eq!(program(&first, &exe)["sha256"], good.as_str());
    let out = common::run_kizuki(data.path(), &["mark", exe.to_str().unwrap(), "trusted"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    // The replacement: another program under the same name.
    std::fs::remove_file(&exe).unwrap();
    let mut evil = std::fs::read("/bin/sleep").unwrap();
    evil.extend_from_slice(b"\0evil payload");
    std::fs::write(&exe, &evil).unwrap();
    std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let bad = kizuki::identity::sha256_file(&exe).unwrap();
    assert_ne!(bad, good);
    // The forged line: the new file's stamp with the old hash.
    let stamp = kizuki::identity::FileStamp::of(&exe).unwrap();
    let forged = serde_json::json!({"version": 1, "entries": [[stamp, good]]});
    std::fs::write(data.path().join("hash-cache.json"), forged.to_string()).unwrap();
    let pid = start(&mut kids, &exe);
    let scan = common::scan_json(data.path());
    let p = program(&scan, &exe);
    assert_eq!(p["sha256"], bad.as_str(), "the real hash");
    assert_ne!(p["mark"], "trusted", "trust was for the old file");
    let kinds: Vec<&str> = p["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"exe-changed"), "{kinds:?}");
    let out = common::run_kizuki(
        data.path(),
        &["report", &pid.to_string(), "--format", "json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert!(report.contains(&bad), "the report prints the real hash");
    assert!(!report.contains(&good), "and not the forged one");
}
