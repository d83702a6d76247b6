//! Starting kizuki with the desktop session (XDG autostart). The package
//! ships the entry in `/usr/share/kizuki/autostart/` — not in
//! `/etc/xdg/autostart`, so nothing starts unless the user asks — and
//! turning it on copies the entry into the user's `~/.config/autostart/`.
//! On Windows the same switch is a value under the user's `Run` key
//! ([`windows_run`]).

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use crate::escape::{for_display, os_lossless};
use crate::i18n::{tr, tr_args};

/// File name of the entry, the same as the menu entry's desktop id.
pub const ENTRY_NAME: &str = "jp.kizuki.Kizuki.desktop";
/// Where the package installs the entry to copy.
pub const SYSTEM_TEMPLATE: &str = "/usr/share/kizuki/autostart/jp.kizuki.Kizuki.desktop";
/// The same entry, compiled in, for when kizuki was not installed from the
/// package.
const BUILTIN_ENTRY: &str =
    include_str!("../../packaging/linux/autostart/jp.kizuki.Kizuki.desktop");

fn shown(p: &Path) -> String {
    for_display(&os_lossless(p.as_os_str()))
}

#[derive(Debug, thiserror::Error)]
pub enum AutostartError {
    #[error("{}", tr("autostart.err.no_config_dir"))]
    NoConfigDir,
    #[error("{}", tr("autostart.err.unsupported"))]
    Unsupported,
    #[error("{}", tr_args("autostart.err.bad_exe", &[("path", &shown(.0))]))]
    BadExe(PathBuf),
    #[error("{}", tr_args("autostart.err.io", &[("error", &source.to_string()), ("path", &shown(path))]))]
    Io { path: PathBuf, source: io::Error },
}

/// The user's autostart entry for kizuki.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Autostart {
    /// The user's configuration folder (`$XDG_CONFIG_HOME`, `~/.config`).
    config_dir: PathBuf,
    /// The installed entry to copy; the built-in one when it is missing.
    template: PathBuf,
}

impl Autostart {
    /// Autostart under `config_dir`, copying the packaged entry.
    pub fn new(config_dir: impl Into<PathBuf>) -> Autostart {
        Autostart {
            config_dir: config_dir.into(),
            template: PathBuf::from(SYSTEM_TEMPLATE),
        }
    }

    /// Copies `template` instead of the packaged entry (tests, other layouts).
    pub fn with_template(mut self, template: impl Into<PathBuf>) -> Autostart {
        self.template = template.into();
        self
    }

    /// The current user's autostart, where desktops follow XDG autostart.
    pub fn for_user() -> Result<Autostart, AutostartError> {
        if cfg!(any(windows, target_os = "macos")) {
            return Err(AutostartError::Unsupported);
        }
        let dirs = directories::BaseDirs::new().ok_or(AutostartError::NoConfigDir)?;
        Ok(Autostart::new(dirs.config_dir()))
    }

    /// `~/.config/autostart/jp.kizuki.Kizuki.desktop`.
    pub fn entry_path(&self) -> PathBuf {
        self.config_dir.join("autostart").join(ENTRY_NAME)
    }

    /// Whether the session will start kizuki: the entry exists and is not
    /// switched off inside (`Hidden=true`, as the spec says, or
    /// `X-GNOME-Autostart-enabled=false`, which desktop settings tools write).
    pub fn is_enabled(&self) -> bool {
        match std::fs::read_to_string(self.entry_path()) {
            Ok(text) => !switched_off(&text),
            Err(_) => false,
        }
    }

    /// Writes the entry. With `exe`, it starts that program (for a kizuki
    /// that is not the one on `PATH`); else it starts `kizuki` from `PATH`.
    /// Returns the entry's path.
    pub fn enable(&self, exe: Option<&Path>) -> Result<PathBuf, AutostartError> {
        let template = std::fs::read_to_string(&self.template)
            .ok()
            .filter(|t| t.contains("[Desktop Entry]"))
            .unwrap_or_else(|| BUILTIN_ENTRY.to_string());
        let text = match exe {
            Some(exe) => with_exec(&template, exe)?,
            None => template,
        };
        let path = self.entry_path();
        crate::fsutil::write_atomic(&path, text.as_bytes()).map_err(|source| {
            AutostartError::Io {
                path: path.clone(),
                source,
            }
        })?;
        Ok(path)
    }

    /// Removes the entry. `Ok(false)`: there was none.
    pub fn disable(&self) -> Result<bool, AutostartError> {
        let path = self.entry_path();
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(AutostartError::Io { path, source }),
        }
    }
}

fn switched_off(entry: &str) -> bool {
    entry.lines().any(|l| {
        let l: String = l.chars().filter(|c| !c.is_whitespace()).collect();
        l.eq_ignore_ascii_case("Hidden=true")
            || l.eq_ignore_ascii_case("X-GNOME-Autostart-enabled=false")
    })
}

/// Whether an entry must name `current` by its full path: true unless the
/// `kizuki` found on `path_var` (the `PATH` value) is that same file.
pub fn needs_full_path(current: &Path, path_var: Option<&OsStr>) -> bool {
    let Some(path_var) = path_var else {
        return true;
    };
    let Ok(current) = std::fs::canonicalize(current) else {
        return true;
    };
    std::env::split_paths(path_var)
        .map(|d| d.join("kizuki"))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
        .is_none_or(|found| found != current)
}

/// `exe` as one argument of a desktop entry's `Exec` key: quoted, with the
/// characters the spec reserves escaped, then escaped again as a string
/// value. Refused when it cannot be written (not UTF-8, control bytes).
pub fn exec_argument(exe: &Path) -> Result<String, AutostartError> {
    let bad = || AutostartError::BadExe(exe.to_path_buf());
    let text = exe.to_str().ok_or_else(bad)?;
    if !exe.is_absolute() || text.chars().any(char::is_control) {
        return Err(bad());
    }
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' | '`' | '$' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            '%' => quoted.push_str("%%"),
            _ => quoted.push(c),
        }
    }
    quoted.push('"');
    // The value of a string key: every backslash is written twice.
    Ok(quoted.replace('\\', "\\\\"))
}

/// The entry with its `Exec` line starting `exe` minimized, and `TryExec`
/// naming the same file (so the session skips the entry once it is gone).
fn with_exec(entry: &str, exe: &Path) -> Result<String, AutostartError> {
    let exec = format!("Exec={} --minimized", exec_argument(exe)?);
    // exec_argument refused anything but UTF-8 without control characters.
    let try_exec = format!("TryExec={}", exe.to_string_lossy().replace('\\', "\\\\"));
    let mut out = String::with_capacity(entry.len() + exec.len() + try_exec.len());
    for line in entry.lines() {
        let key = line.trim_start();
        if key.starts_with("Exec=") {
            out.push_str(&exec);
        } else if key.starts_with("TryExec=") {
            out.push_str(&try_exec);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    Ok(out)
}

/// The value of kizuki's entry under the Windows `Run` key: the program
/// in quotes (a path with spaces stays one), started in the tray. Refused
/// for paths Windows cannot start that way, by the same check the
/// firewall rules use (drive or UNC, no quotes or control characters).
pub fn windows_run_command(exe: &Path) -> Result<String, AutostartError> {
    let text = crate::firewall::netsh::windows_path(exe)
        .map_err(|_| AutostartError::BadExe(exe.to_path_buf()))?;
    Ok(format!("\"{text}\" --minimized"))
}

/// Starting at login the way this OS does it — the `Run` key on Windows,
/// the XDG entry elsewhere — for `kizuki autostart`. `current_exe` is this
/// kizuki; the XDG entry names it by full path only when it is not the
/// one on `PATH` (a build folder).
pub fn enable_at_login(current_exe: std::io::Result<PathBuf>) -> Result<PathBuf, AutostartError> {
    #[cfg(windows)]
    {
        let exe = current_exe.map_err(|source| AutostartError::Io {
            path: windows_run::location(),
            source,
        })?;
        windows_run::enable(&exe)
    }
    #[cfg(not(windows))]
    {
        let exe = current_exe
            .ok()
            .filter(|e| needs_full_path(e, std::env::var_os("PATH").as_deref()));
        Autostart::for_user()?.enable(exe.as_deref())
    }
}

/// Turns starting at login off; `Ok(false)`: it was off.
pub fn disable_at_login() -> Result<bool, AutostartError> {
    #[cfg(windows)]
    {
        windows_run::disable()
    }
    #[cfg(not(windows))]
    {
        Autostart::for_user()?.disable()
    }
}

/// Where the login entry is, when there is one.
pub fn login_entry() -> Result<Option<PathBuf>, AutostartError> {
    #[cfg(windows)]
    {
        Ok(windows_run::is_enabled().then(windows_run::location))
    }
    #[cfg(not(windows))]
    {
        let a = Autostart::for_user()?;
        Ok(a.is_enabled().then(|| a.entry_path()))
    }
}

/// kizuki's value under `HKCU\Software\Microsoft\Windows\CurrentVersion\Run`.
#[cfg(windows)]
pub mod windows_run {
    use std::path::{Path, PathBuf};

    use super::{AutostartError, windows_run_command};

    const RUN_KEY: &str = r"Software\Microsoft\Windows\CurrentVersion\Run";
    const VALUE: &str = "kizuki";

    /// Where the entry lives, as the user would find it in regedit.
    pub fn location() -> PathBuf {
        PathBuf::from(format!(r"HKEY_CURRENT_USER\{RUN_KEY}\{VALUE}"))
    }

    fn io(e: impl Into<std::io::Error>) -> AutostartError {
        AutostartError::Io {
            path: location(),
            source: e.into(),
        }
    }

    pub fn enable(exe: &Path) -> Result<PathBuf, AutostartError> {
        let command = windows_run_command(exe)?;
        let key = windows_registry::CURRENT_USER.create(RUN_KEY).map_err(io)?;
        key.set_string(VALUE, command).map_err(io)?;
        Ok(location())
    }

    /// `Ok(false)`: there was no entry.
    pub fn disable() -> Result<bool, AutostartError> {
        let Ok(key) = windows_registry::CURRENT_USER.create(RUN_KEY) else {
            return Ok(false);
        };
        if key.get_string(VALUE).is_err() {
            return Ok(false);
        }
        key.remove_value(VALUE).map_err(io)?;
        Ok(true)
    }

    pub fn is_enabled() -> bool {
        windows_registry::CURRENT_USER
            .open(RUN_KEY)
            .and_then(|k| k.get_string(VALUE))
            .is_ok()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// Runs on Windows (under Wine in CI), on the real registry.
        #[test]
        fn on_off_and_status_use_the_run_key() {
            let exe = std::env::current_exe().unwrap();
            let was = is_enabled();
            enable(&exe).unwrap();
            assert!(is_enabled());
            let value = windows_registry::CURRENT_USER
                .open(RUN_KEY)
                .unwrap()
                .get_string(VALUE)
                .unwrap();
            assert_eq!(value, windows_run_command(&exe).unwrap());
            assert!(disable().unwrap());
            assert!(!is_enabled());
            assert!(!disable().unwrap(), "already off");
            if was {
                enable(&exe).unwrap();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_windows_run_entry_quotes_the_program_and_starts_minimized() {
        let exe = Path::new(r"C:\Users\Taro Yamada\AppData\Local\kizuki\kizuki.exe");
        assert_eq!(
            windows_run_command(exe).unwrap(),
            r#""C:\Users\Taro Yamada\AppData\Local\kizuki\kizuki.exe" --minimized"#
        );
        assert!(windows_run_command(Path::new(r"\\server\share\kizuki.exe")).is_ok());
        for bad in [
            "kizuki.exe",
            "C:\\a\\\"b.exe",
            "C:\\a\nb.exe",
            "/usr/bin/kizuki",
            "1:\\x.exe",
        ] {
            assert!(
                matches!(
                    windows_run_command(Path::new(bad)),
                    Err(AutostartError::BadExe(_))
                ),
                "{bad:?}"
            );
        }
    }

    fn exec_line(text: &str) -> &str {
        text.lines().find(|l| l.starts_with("Exec=")).unwrap()
    }

    #[test]
    fn off_until_the_user_turns_it_on_then_off_again() {
        let home = tempfile::tempdir().unwrap();
        let a = Autostart::new(home.path().join(".config")).with_template(home.path().join("none"));
        assert!(!a.is_enabled(), "nothing starts unless asked");
        assert!(!a.disable().unwrap(), "turning off when off is fine");

        let path = a.enable(None).unwrap();
        assert_eq!(
            path,
            home.path()
                .join(".config/autostart/jp.kizuki.Kizuki.desktop")
        );
        assert!(a.is_enabled());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(exec_line(&text), "Exec=kizuki --minimized");
        // Once kizuki is uninstalled the session skips the entry.
        assert!(text.contains("\nTryExec=kizuki\n"));
        assert!(text.starts_with("[Desktop Entry]"));

        assert!(a.disable().unwrap());
        assert!(!path.exists());
        assert!(!a.is_enabled());
    }

    #[test]
    fn the_installed_entry_is_copied_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let template = dir.path().join("template.desktop");
        let custom =
            "[Desktop Entry]\nType=Application\nName=kizuki\nExec=kizuki --minimized --lang ja\n";
        std::fs::write(&template, custom).unwrap();
        let a = Autostart::new(dir.path().join("cfg")).with_template(&template);
        let path = a.enable(None).unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), custom);

        // A template that is not a desktop entry is not copied.
        std::fs::write(&template, "garbage").unwrap();
        let text = std::fs::read_to_string(a.enable(None).unwrap()).unwrap();
        assert_eq!(text, BUILTIN_ENTRY);
    }

    #[test]
    fn an_entry_switched_off_by_desktop_settings_counts_as_off() {
        let dir = tempfile::tempdir().unwrap();
        let a = Autostart::new(dir.path()).with_template(dir.path().join("none"));
        let path = a.enable(None).unwrap();
        for off in [
            "Hidden=true",
            "X-GNOME-Autostart-enabled=false",
            "Hidden = True",
        ] {
            std::fs::write(&path, format!("{BUILTIN_ENTRY}{off}\n")).unwrap();
            assert!(!a.is_enabled(), "{off}");
        }
        // Turning it on again replaces the switched-off entry.
        a.enable(None).unwrap();
        assert!(a.is_enabled());
    }

    // Written with Unix paths and tools.
    #[cfg(unix)]
    #[test]
    fn a_kizuki_outside_path_is_started_by_its_full_path() {
        let dir = tempfile::tempdir().unwrap();
        let a = Autostart::new(dir.path()).with_template(dir.path().join("none"));
        let exe = Path::new("/home/a b/$x/\"k\"/100%/kizuki");
        let text = std::fs::read_to_string(a.enable(Some(exe)).unwrap()).unwrap();
        assert_eq!(
            exec_line(&text),
            r#"Exec="/home/a b/\\$x/\\"k\\"/100%%/kizuki" --minimized"#
        );
        assert_eq!(text.matches("\nExec=").count(), 1);
        assert!(
            text.contains("\nTryExec=/home/a b/$x/\"k\"/100%/kizuki\n"),
            "{text}"
        );
        assert!(text.contains("Name[ja]=気づき"), "the rest is kept");

        for bad in ["relative/kizuki", "/tmp/new\nline"] {
            assert!(matches!(
                a.enable(Some(Path::new(bad))),
                Err(AutostartError::BadExe(_))
            ));
        }
    }

    #[test]
    fn full_path_only_when_path_finds_another_kizuki() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let on_path = bin.join("kizuki");
        std::fs::write(&on_path, "x").unwrap();
        let elsewhere = dir.path().join("kizuki");
        std::fs::write(&elsewhere, "x").unwrap();
        let path_var = std::env::join_paths([&bin]).unwrap();
        assert!(!needs_full_path(&on_path, Some(&path_var)));
        assert!(needs_full_path(&elsewhere, Some(&path_var)));
        assert!(needs_full_path(&on_path, None));
        let empty = std::env::join_paths([dir.path().join("nothing")]).unwrap();
        assert!(needs_full_path(&on_path, Some(&empty)));
    }
}
