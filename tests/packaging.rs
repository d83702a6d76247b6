//! The polkit policy the guard asks, the guard's systemd unit, the
//! desktop files, the Debian package's contents and maintainer scripts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

const POLICY: &str = include_str!("../packaging/linux/jp.kizuki.policy");
const UNIT: &str = include_str!("../packaging/linux/kizuki-guard.service");

/// Every opened element is closed, in order (enough to catch a broken file
/// without an XML library).
fn balanced(xml: &str) -> bool {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').map(|e| start + e).unwrap();
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
            continue;
        }
        let name = tag
            .trim_start_matches('/')
            .split_whitespace()
            .next()
            .unwrap();
        if tag.starts_with('/') {
            if stack.pop().as_deref() != Some(name) {
                return false;
            }
        } else {
            stack.push(name.to_string());
        }
    }
    stack.is_empty()
}

/// The `<defaults>` block of one action.
fn defaults(action: &str) -> &'static str {
    let start = POLICY
        .find(&format!("<action id=\"{action}\">"))
        .unwrap_or_else(|| panic!("no action {action}"));
    let rest = &POLICY[start..];
    let end = rest.find("</action>").unwrap();
    let block = &rest[..end];
    let d = block.find("<defaults>").unwrap();
    &block[d..]
}

#[test]
fn one_action_per_operation_and_loosening_always_asks() {
    assert!(balanced(POLICY), "policy XML is not well nested");
    // Never granted without authentication; nothing is run by pkexec.
    assert!(!POLICY.contains(">yes<"));
    assert!(!POLICY.contains("exec.path"));
    assert!(!POLICY.contains("jp.kizuki.firewall"));
    for a in ["jp.kizuki.block", "jp.kizuki.panic"] {
        assert!(
            defaults(a).contains("<allow_active>auth_admin_keep</allow_active>"),
            "{a}"
        );
    }
    // A kept authorization never covers lifting a protection.
    for a in ["jp.kizuki.unblock", "jp.kizuki.resume", "jp.kizuki.clear"] {
        let d = defaults(a);
        assert!(!d.contains("keep"), "{a} must always ask: {d}");
        assert!(d.contains("<allow_active>auth_admin</allow_active>"), "{a}");
    }
    // The guard asks for exactly these actions.
    use kizuki::guard::api::Request;
    for r in [
        Request::Block { exe: "/x".into() },
        Request::Unblock { exe: "/x".into() },
        Request::Panic,
        Request::Resume,
        Request::Clear,
    ] {
        let a = r.polkit_action().unwrap();
        assert!(POLICY.contains(&format!("<action id=\"{a}\">")), "{a}");
        assert_eq!(defaults(a).contains("keep"), !r.loosens(), "{a}");
    }
    assert!(POLICY.contains("xml:lang=\"ja\""));
    assert!(
        POLICY.contains("$(program)"),
        "the prompt names the program"
    );
}

#[test]
fn policy_passes_xmllint_when_available() {
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "packaging/linux/jp.kizuki.policy"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match out {
        Ok(o) => assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr)),
        Err(_) => common::skip("policy_passes_xmllint_when_available", "needs xmllint"),
    }
}

/// A `Key=value` line of the unit.
fn unit_key(k: &str) -> Option<&'static str> {
    UNIT.lines()
        .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
}

#[test]
fn the_guard_unit_runs_the_guard_hardened_but_able_to_enforce() {
    assert_eq!(unit_key("ExecStart"), Some("/usr/bin/kizuki guard"));
    assert_eq!(unit_key("Restart"), Some("on-failure"));
    assert_eq!(unit_key("RuntimeDirectory"), Some("kizuki"));
    assert_eq!(unit_key("StateDirectory"), Some("kizuki"));
    assert_eq!(unit_key("StateDirectoryMode"), Some("0700"));
    assert_eq!(unit_key("NoNewPrivileges"), Some("yes"));
    assert_eq!(unit_key("ProtectSystem"), Some("strict"));
    assert_eq!(unit_key("ReadWritePaths"), Some("/sys/fs/cgroup"));
    assert_eq!(unit_key("ProtectHome"), Some("read-only"));
    // Programs in /tmp must be the real /tmp's.
    assert_eq!(unit_key("PrivateTmp"), None);
    // /sys/fs/cgroup must stay writable.
    assert_eq!(unit_key("ProtectControlGroups"), None);
    let caps: Vec<&str> = unit_key("CapabilityBoundingSet")
        .unwrap()
        .split(' ')
        .collect();
    for c in [
        "CAP_NET_ADMIN",
        "CAP_SYS_ADMIN",
        "CAP_DAC_READ_SEARCH",
        "CAP_SYS_PTRACE",
    ] {
        assert!(caps.contains(&c), "{c}");
    }
    let fams: Vec<&str> = unit_key("RestrictAddressFamilies")
        .unwrap()
        .split(' ')
        .collect();
    for f in ["AF_UNIX", "AF_NETLINK"] {
        assert!(fams.contains(&f), "{f}");
    }
    assert_eq!(unit_key("WantedBy"), Some("multi-user.target"));
}

#[test]
fn the_guard_unit_passes_systemd_analyze_verify() {
    let Ok(o) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!(
            "skipping the_guard_unit_passes_systemd_analyze_verify: needs systemd-analyze (package systemd)"
        );
        return;
    };
    assert!(o.status.success());
    // verify checks that ExecStart's binary exists: point it at this build.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("kizuki-guard.service");
    std::fs::write(
        &unit,
        UNIT.replace("/usr/bin/kizuki", env!("CARGO_BIN_EXE_kizuki")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains("kizuki-guard.service:"),
        "warnings about the unit: {err}"
    );
}

// ---- The desktop integration files and the Debian package's contents ----

use std::path::{Path, PathBuf};
use std::process::Command;

const DESKTOP: &str = include_str!("../packaging/linux/jp.kizuki.Kizuki.desktop");
const AUTOSTART: &str = include_str!("../packaging/linux/autostart/jp.kizuki.Kizuki.desktop");
const METAINFO: &str = include_str!("../packaging/linux/jp.kizuki.Kizuki.metainfo.xml");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn key<'a>(entry: &'a str, k: &str) -> Option<&'a str> {
    entry
        .lines()
        .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
}

#[test]
fn menu_entry_starts_kizuki_with_its_icon_in_both_languages() {
    assert_eq!(key(DESKTOP, "Exec"), Some("kizuki"));
    assert_eq!(key(DESKTOP, "Icon"), Some("jp.kizuki.Kizuki"));
    assert_eq!(key(DESKTOP, "Name[ja]"), Some("気づき"));
    assert!(key(DESKTOP, "Comment").is_some_and(|c| !c.is_empty()));
    assert!(key(DESKTOP, "Comment[ja]").is_some_and(|c| !c.is_empty()));
    let cats: Vec<&str> = key(DESKTOP, "Categories").unwrap().split(';').collect();
    for c in ["System", "Security", "Network", "Monitor"] {
        assert!(cats.contains(&c), "Categories lacks {c}");
    }
    // The metainfo names the same desktop id and the same app id.
    assert!(METAINFO.contains("<id>jp.kizuki.Kizuki</id>"));
    assert!(
        METAINFO.contains("<launchable type=\"desktop-id\">jp.kizuki.Kizuki.desktop</launchable>")
    );
    assert!(METAINFO.contains("<summary xml:lang=\"ja\">"));
    assert!(METAINFO.contains("<p xml:lang=\"ja\">"));
}

#[test]
fn autostart_entry_starts_minimized_and_is_ignored_once_uninstalled() {
    assert_eq!(key(AUTOSTART, "Exec"), Some("kizuki --minimized"));
    assert_eq!(key(AUTOSTART, "TryExec"), Some("kizuki"));
    assert_eq!(key(AUTOSTART, "Hidden"), None);
    assert!(key(AUTOSTART, "Name[ja]").is_some());
}

fn validate(tool: &str, args: &[&str], file: &Path) {
    match Command::new(tool).args(args).arg(file).output() {
        Ok(o) => assert!(
            o.status.success(),
            "{tool} rejected {}:\n{}{}",
            file.display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => common::skip(&format!("{tool} check"), &format!("needs {tool}")),
    }
}

#[test]
fn desktop_files_pass_desktop_file_validate_when_available() {
    validate(
        "desktop-file-validate",
        &[],
        &root().join("packaging/linux/jp.kizuki.Kizuki.desktop"),
    );
    validate(
        "desktop-file-validate",
        &[],
        &root().join("packaging/linux/autostart/jp.kizuki.Kizuki.desktop"),
    );
}

// XDG autostart entries; Windows uses the Run key (src/platform/autostart.rs).
#[cfg(unix)]
#[test]
fn an_entry_written_by_kizuki_autostart_passes_desktop_file_validate() {
    let dir = tempfile::tempdir().unwrap();
    let a = kizuki::platform::autostart::Autostart::new(dir.path())
        .with_template(dir.path().join("none"));
    let hostile = Path::new("/opt/my \"tools\"/$HOME/50% off/kizuki");
    validate(
        "desktop-file-validate",
        &[],
        &a.enable(Some(hostile)).unwrap(),
    );
    validate("desktop-file-validate", &[], &a.enable(None).unwrap());
}

#[test]
fn metainfo_passes_appstreamcli_validate_when_available() {
    // --no-net: validation never goes online.
    validate(
        "appstreamcli",
        &["validate", "--no-net"],
        &root().join("packaging/linux/jp.kizuki.Kizuki.metainfo.xml"),
    );
}

fn deb_assets() -> Vec<(String, String)> {
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap()).unwrap();
    manifest["package"]["metadata"]["deb"]["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_array().unwrap();
            (
                a[0].as_str().unwrap().to_string(),
                a[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Width and height from a PNG's header.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}

#[test]
fn the_package_ships_every_piece_and_icons_of_the_size_they_claim() {
    let assets = deb_assets();
    let dest = |d: &str| assets.iter().any(|(_, to)| to == d);
    for d in [
        "usr/bin/",
        "usr/share/applications/",
        "usr/share/metainfo/",
        "usr/share/kizuki/autostart/",
        "usr/share/polkit-1/actions/",
        "usr/lib/systemd/system/",
        "usr/share/icons/hicolor/scalable/apps/",
    ] {
        assert!(dest(d), "nothing installed to {d}");
    }
    // Never forced on: nothing goes to the system-wide autostart folder.
    assert!(
        !assets
            .iter()
            .any(|(_, to)| to.contains("etc/xdg/autostart"))
    );
    for (from, to) in &assets {
        if from.starts_with("target/") || from.contains('*') {
            continue;
        }
        assert!(root().join(from).is_file(), "asset {from} is missing");
        if let Some(rest) = to.strip_prefix("usr/share/icons/hicolor/")
            && from.ends_with(".png")
        {
            let n: u32 = rest.split('x').next().unwrap().parse().unwrap();
            assert_eq!(png_size(&root().join(from)), (n, n), "{from} → {to}");
            assert!(to.ends_with("/apps/jp.kizuki.Kizuki.png"), "{to}");
        }
    }
    for n in [16, 32, 48, 64, 128, 256] {
        assert!(
            dest(&format!(
                "usr/share/icons/hicolor/{n}x{n}/apps/jp.kizuki.Kizuki.png"
            )),
            "no {n}px icon"
        );
    }
    for licence in ["IPA_Font_License_Agreement_v1.0.txt", "README.txt"] {
        assert!(
            assets
                .iter()
                .any(|(from, to)| from == &format!("assets/fonts/{licence}")
                    && to.starts_with("usr/share/doc/kizuki/")),
            "font {licence} not shipped"
        );
    }
}

// ---- Maintainer scripts, run against a fake nft and a fake cgroup tree ----
#[cfg(unix)]
mod maintainer_scripts {
    use super::*;

    struct Fakes {
        dir: tempfile::TempDir,
    }

    impl Fakes {
        /// A fake `nft` that logs its arguments; `list table` succeeds when
        /// `table` (the table exists); `delete` fails when `delete_fails`.
        fn new(table: bool, delete_fails: bool) -> Fakes {
            use std::os::unix::fs::PermissionsExt;
            let dir = tempfile::tempdir().unwrap();
            let bin = dir.path().join("bin");
            std::fs::create_dir(&bin).unwrap();
            let log = dir.path().join("log");
            let script = format!(
                "#!/bin/sh\necho \"nft $*\" >> '{}'\ncase \"$1\" in\n  list) exit {};;\n  delete) exit {};;\nesac\nexit 0\n",
                log.display(),
                if table { 0 } else { 1 },
                if delete_fails { 1 } else { 0 }
            );
            let nft = bin.join("nft");
            std::fs::write(&nft, script).unwrap();
            std::fs::set_permissions(&nft, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::write(dir.path().join("mountinfo"), "").unwrap();
            Fakes { dir }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        /// Runs a maintainer script with `arg`; `with_nft` puts the fake on PATH
        /// (else PATH holds no nft at all). Returns the exit code.
        fn run(&self, script: &str, arg: &str, with_nft: bool) -> i32 {
            let path = if with_nft {
                format!("{}:/usr/bin:/bin", self.path("bin").display())
            } else {
                "/usr/bin:/bin".to_string()
            };
            let out = Command::new("/bin/sh")
                .arg(root().join("packaging/linux/debian").join(script))
                .arg(arg)
                .env_clear()
                .env("PATH", path)
                .env("KIZUKI_PKG_MOUNTINFO", self.path("mountinfo"))
                .env("KIZUKI_PKG_PROC", self.path("no-proc"))
                .env("KIZUKI_PKG_NO_SYSTEMD", "1")
                .env("KIZUKI_PKG_STATE_DIR", self.path("no-state"))
                .env("KIZUKI_PKG_RUN_DIR", self.path("no-run"))
                .output()
                .unwrap();
            out.status.code().unwrap_or(-1)
        }

        fn log(&self) -> String {
            std::fs::read_to_string(self.path("log")).unwrap_or_default()
        }
    }

    fn nft_on_system_path() -> bool {
        ["/usr/bin/nft", "/bin/nft"]
            .iter()
            .any(|p| Path::new(p).exists())
    }

    #[test]
    fn removal_deletes_kizukis_table_and_nothing_else() {
        let f = Fakes::new(true, false);
        assert_eq!(f.run("postrm", "purge", true), 0);
        assert_eq!(
            f.log(),
            "nft list table inet kizuki\nnft delete table inet kizuki\n"
        );
        // No table: nothing is deleted.
        let f = Fakes::new(false, false);
        assert_eq!(f.run("postrm", "remove", true), 0);
        assert_eq!(f.log(), "nft list table inet kizuki\n");
    }

    #[test]
    fn prerm_stops_a_guard_then_removes_the_rules_and_upgrades_keep_them() {
        // A fake /proc with one hand-started guard and one other kizuki.
        let f = Fakes::new(true, false);
        let proc_ = f.path("proc");
        for (pid, args) in [("4242", "kizuki\0guard\0"), ("4343", "kizuki\0scan\0")] {
            let d = proc_.join(pid);
            std::fs::create_dir_all(&d).unwrap();
            std::os::unix::fs::symlink("/usr/bin/kizuki", d.join("exe")).unwrap();
            std::fs::write(d.join("cmdline"), args).unwrap();
        }
        let out = Command::new("/bin/sh")
            .arg(root().join("packaging/linux/debian/prerm"))
            .arg("remove")
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", f.path("bin").display()))
            .env("KIZUKI_PKG_MOUNTINFO", f.path("mountinfo"))
            .env("KIZUKI_PKG_PROC", &proc_)
            .env("KIZUKI_PKG_NO_SYSTEMD", "1")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            f.log(),
            "nft list table inet kizuki\nnft delete table inet kizuki\n"
        );

        let f = Fakes::new(true, false);
        assert_eq!(f.run("prerm", "upgrade", true), 0);
        assert_eq!(f.log(), "", "an upgrade keeps the user's blocks");
    }

    #[test]
    fn purge_removes_the_guards_state_and_socket_folders() {
        let f = Fakes::new(false, false);
        let state = f.path("var-lib-kizuki");
        let run = f.path("run-kizuki");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join("guard-state.json"), "{}").unwrap();
        std::fs::create_dir_all(&run).unwrap();
        let go = |arg: &str| {
            Command::new("/bin/sh")
                .arg(root().join("packaging/linux/debian/postrm"))
                .arg(arg)
                .env_clear()
                .env("PATH", format!("{}:/usr/bin:/bin", f.path("bin").display()))
                .env("KIZUKI_PKG_MOUNTINFO", f.path("mountinfo"))
                .env("KIZUKI_PKG_STATE_DIR", &state)
                .env("KIZUKI_PKG_NO_SYSTEMD", "1")
                .env("KIZUKI_PKG_RUN_DIR", &run)
                .status()
                .unwrap()
        };
        assert!(go("remove").success());
        assert!(
            state.is_dir(),
            "a plain remove keeps the blocks for a reinstall"
        );
        assert!(!run.exists());
        assert!(go("purge").success());
        assert!(!state.exists(), "purge leaves no state");
    }

    #[test]
    fn removal_never_fails_without_nft_or_when_nft_fails() {
        let f = Fakes::new(true, true);
        assert_eq!(f.run("prerm", "remove", true), 0);
        assert_eq!(f.run("postrm", "purge", true), 0);
        assert!(f.log().contains("nft delete table inet kizuki"));
        if nft_on_system_path() {
            eprintln!("skipping the no-nft case: nft is in /usr/bin or /bin");
            return;
        }
        let f = Fakes::new(true, false);
        assert_eq!(f.run("prerm", "remove", false), 0);
        assert_eq!(f.run("postrm", "purge", false), 0);
        assert_eq!(f.log(), "", "no nft: nothing to run");
    }

    #[test]
    fn removal_returns_blocked_processes_and_removes_kizukis_cgroups() {
        let f = Fakes::new(false, false);
        let mount = f.path("cgroup v2");
        let blocked = mount.join("kizuki-blocked");
        std::fs::create_dir_all(blocked.join("0123456789abcdef")).unwrap();
        std::fs::create_dir_all(mount.join("user.slice")).unwrap();
        // mountinfo escapes the space in the mount point.
        let escaped = mount.display().to_string().replace(' ', "\\040");
        std::fs::write(
            f.path("mountinfo"),
            format!("41 31 0:38 / {escaped} rw - cgroup2 cgroup2 rw\n"),
        )
        .unwrap();
        assert_eq!(f.run("postrm", "remove", true), 0);
        // kizuki never uses such a mount (its rules could not name it), so
        // the script leaves it alone rather than guess.
        assert!(blocked.join("0123456789abcdef").is_dir());
        assert!(
            mount.join("user.slice").is_dir(),
            "other cgroups are untouched"
        );

        // A plain path: kizuki's empty cgroups and their parent go.
        let f = Fakes::new(false, false);
        let mount = f.path("cg2");
        std::fs::create_dir_all(mount.join("kizuki-blocked/0123456789abcdef")).unwrap();
        std::fs::create_dir_all(mount.join("kizuki-blocked/fedcba9876543210")).unwrap();
        std::fs::create_dir_all(mount.join("user.slice")).unwrap();
        std::fs::write(
            f.path("mountinfo"),
            format!(
                "30 25 0:26 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n41 31 0:38 / {} rw - cgroup2 cgroup2 rw\n",
                mount.display()
            ),
        )
        .unwrap();
        assert_eq!(f.run("prerm", "remove", true), 0);
        assert!(
            !mount.join("kizuki-blocked").exists(),
            "kizuki's cgroups are left"
        );
        assert!(
            mount.join("user.slice").is_dir(),
            "other cgroups are untouched"
        );

        // A cgroup with a process: the PID goes back to the root cgroup.
        let f = Fakes::new(false, false);
        let mount = f.path("cg2");
        let cg = mount.join("kizuki-blocked/0123456789abcdef");
        std::fs::create_dir_all(&cg).unwrap();
        std::fs::write(cg.join("cgroup.procs"), "4242\n").unwrap();
        std::fs::write(mount.join("cgroup.procs"), "").unwrap();
        std::fs::write(
            f.path("mountinfo"),
            format!("41 31 0:38 / {} rw - cgroup2 cgroup2 rw\n", mount.display()),
        )
        .unwrap();
        assert_eq!(f.run("postrm", "purge", true), 0);
        assert_eq!(
            std::fs::read_to_string(mount.join("cgroup.procs")).unwrap(),
            "4242\n"
        );
    }
}

#[test]
fn packaging_xml_files_are_well_formed_when_xmllint_is_available() {
    for f in [
        "packaging/linux/jp.kizuki.Kizuki.metainfo.xml",
        "packaging/windows/main.wxs",
        "packaging/macos/Info.plist",
        "packaging/linux/icons/jp.kizuki.Kizuki.svg",
    ] {
        validate("xmllint", &["--noout", "--nonet"], &root().join(f));
    }
}

#[test]
fn the_windows_shortcut_carries_the_id_notifications_use() {
    // Toasts from an app whose id Windows does not know are dropped or
    // shown as PowerShell's; the installer's shortcut declares kizuki's.
    let wxs = std::fs::read_to_string(root().join("packaging/windows/main.wxs")).unwrap();
    let expected = format!(
        r#"<ShortcutProperty Key="System.AppUserModel.ID" Value="{}"/>"#,
        kizuki::notify::APP_ID
    );
    assert!(wxs.contains(&expected), "main.wxs lacks {expected}");
}
