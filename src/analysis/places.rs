//! Where an executable lives: temporary, download and cache folders, and
//! system folders that only an administrator or a package manager writes.
//!
//! Classification is pure string logic for Unix and Windows paths alike, so
//! the Windows rules (case-insensitive, backslashes) are tested on Linux too.
//! Only [`TempDirs::detect`] looks at the environment and one file.

use std::path::{Path, PathBuf};

use crate::model::Program;

/// How paths are spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStyle {
    /// `/`-separated, case-sensitive.
    Unix,
    /// `\` or `/`, drive letters, case-insensitive.
    Windows,
}

impl PathStyle {
    pub fn native() -> PathStyle {
        if cfg!(windows) {
            PathStyle::Windows
        } else {
            PathStyle::Unix
        }
    }

    /// A path as comparable components.
    fn components(self, path: &str) -> Vec<String> {
        match self {
            PathStyle::Unix => path
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .map(str::to_string)
                .collect(),
            PathStyle::Windows => {
                // `\\?\C:\…` is the same place as `C:\…`.
                let p = path
                    .strip_prefix(r"\\?\")
                    .or_else(|| path.strip_prefix("//?/"))
                    .unwrap_or(path);
                p.split(['\\', '/'])
                    .filter(|c| !c.is_empty() && *c != ".")
                    .map(str::to_lowercase)
                    .collect()
            }
        }
    }
}

/// Which kind of not-for-programs folder an executable is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TempKind {
    /// `/tmp`, `/var/tmp`, `%TEMP%`.
    Temp,
    /// `/dev/shm`: memory, where programs hardly ever run from.
    SharedMemory,
    /// The user's cache folder (`~/.cache`).
    Cache,
    /// The download folder, also under a localized name (`~/ダウンロード`).
    Downloads,
}

impl TempKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TempKind::Temp => "temp",
            TempKind::SharedMemory => "shm",
            TempKind::Cache => "cache",
            TempKind::Downloads => "downloads",
        }
    }
}

/// The temporary, cache and download folders of this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempDirs {
    style: PathStyle,
    /// Absolute folders, as components.
    dirs: Vec<(TempKind, Vec<String>)>,
    /// Folders that hold every user's home (`/home`, `C:\Users`), so other
    /// users' download folders count too when kizuki runs as administrator.
    home_roots: Vec<Vec<String>>,
    /// Folders inside any home (`.cache`, `Downloads`, `ダウンロード`).
    in_home: Vec<(TempKind, Vec<String>)>,
}

/// What [`TempDirs::unix`] needs to know about a Unix session.
#[derive(Debug, Clone, Default)]
pub struct UnixEnv {
    pub home: Option<PathBuf>,
    /// `$XDG_CACHE_HOME`.
    pub xdg_cache_home: Option<PathBuf>,
    /// `$TMPDIR`.
    pub tmpdir: Option<PathBuf>,
    /// Contents of `~/.config/user-dirs.dirs`.
    pub user_dirs: Option<String>,
    /// Every other user's home and the contents of their user-dirs file,
    /// when kizuki runs as administrator and so watches their programs too.
    pub other_users: Vec<(PathBuf, String)>,
}

/// What [`TempDirs::windows`] needs: the usual environment variables and
/// the Downloads known folder.
#[derive(Debug, Clone, Default)]
pub struct WindowsEnv {
    pub temp: Option<String>,
    pub local_app_data: Option<String>,
    pub user_profile: Option<String>,
    pub system_root: Option<String>,
    /// `FOLDERID_Downloads`, which the user may have moved (to `D:\`, say).
    pub downloads: Option<String>,
}

fn path_str(p: &Path) -> String {
    crate::escape::os_lossless(p.as_os_str())
}

impl TempDirs {
    /// The folders of a Unix session.
    pub fn unix(env: &UnixEnv) -> TempDirs {
        let st = PathStyle::Unix;
        let mut t = TempDirs {
            style: st,
            dirs: vec![
                (TempKind::Temp, st.components("/tmp")),
                (TempKind::Temp, st.components("/var/tmp")),
                (TempKind::SharedMemory, st.components("/dev/shm")),
            ],
            home_roots: vec![st.components("/home")],
            in_home: vec![
                (TempKind::Cache, st.components(".cache")),
                (TempKind::Downloads, st.components("Downloads")),
            ],
        };
        if let Some(tmp) = &env.tmpdir {
            t.add(TempKind::Temp, &path_str(tmp));
        }
        if let Some(cache) = &env.xdg_cache_home {
            t.add(TempKind::Cache, &path_str(cache));
        }
        if let Some(home) = &env.home {
            let home_c = st.components(&path_str(home));
            for (kind, rel) in t.in_home.clone() {
                let mut c = home_c.clone();
                c.extend(rel);
                t.dirs.push((kind, c));
            }
            if let Some(text) = env.user_dirs.as_deref() {
                t.add_user_downloads(home, text, true);
            }
        }
        for (home, text) in &env.other_users {
            t.add_user_downloads(home, text, false);
        }
        t
    }

    /// Adds the download folder a user's `user-dirs.dirs` names. For the
    /// session's own user (`own`) a folder inside the home also counts by
    /// its name inside every other home (`~/ダウンロード`), as before.
    fn add_user_downloads(&mut self, home: &Path, text: &str, own: bool) {
        let st = self.style;
        let Some(dl) = download_dir_from_user_dirs(text, home) else {
            return;
        };
        let home_c = st.components(&path_str(home));
        let dl_c = st.components(&path_str(&dl));
        // xdg-user-dirs points a missing folder at $HOME itself; the whole
        // home is not a download folder.
        if dl_c.len() <= home_c.len() && dl_c.starts_with(&home_c) {
            return;
        }
        if own && dl_c.starts_with(&home_c) {
            let rel = dl_c[home_c.len()..].to_vec();
            if !self.in_home.contains(&(TempKind::Downloads, rel.clone())) {
                self.in_home.push((TempKind::Downloads, rel));
            }
        }
        if !self.dirs.iter().any(|(_, d)| *d == dl_c) {
            self.dirs.push((TempKind::Downloads, dl_c));
        }
    }

    /// The folders of a Windows session.
    pub fn windows(env: &WindowsEnv) -> TempDirs {
        let st = PathStyle::Windows;
        let mut t = TempDirs {
            style: st,
            dirs: Vec::new(),
            home_roots: vec![st.components(r"C:\Users")],
            in_home: vec![
                (TempKind::Temp, st.components(r"AppData\Local\Temp")),
                (TempKind::Downloads, st.components("Downloads")),
            ],
        };
        let root = env.system_root.as_deref().unwrap_or(r"C:\Windows");
        t.add(TempKind::Temp, &format!(r"{root}\Temp"));
        if let Some(v) = &env.temp {
            t.add(TempKind::Temp, v);
        }
        if let Some(v) = &env.local_app_data {
            t.add(TempKind::Temp, &format!(r"{v}\Temp"));
        }
        if let Some(v) = &env.downloads {
            t.add(TempKind::Downloads, v);
        }
        if let Some(v) = &env.user_profile {
            t.add(TempKind::Downloads, &format!(r"{v}\Downloads"));
            let profile = st.components(v);
            if let Some((_, parent)) = profile.split_last()
                && !parent.is_empty()
                && !t.home_roots.contains(&parent.to_vec())
            {
                t.home_roots.push(parent.to_vec());
            }
        }
        t
    }

    /// The folders of the session kizuki runs in: environment variables and,
    /// on Unix, the xdg user-dirs file for a localized download folder.
    pub fn detect() -> TempDirs {
        if cfg!(windows) {
            let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
            return TempDirs::windows(&WindowsEnv {
                temp: var("TEMP"),
                local_app_data: var("LOCALAPPDATA"),
                user_profile: var("USERPROFILE"),
                system_root: var("SystemRoot"),
                // On Windows `directories` asks SHGetKnownFolderPath.
                downloads: directories::UserDirs::new()
                    .and_then(|u| u.download_dir().map(path_str)),
            });
        }
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let home = var("HOME").map(PathBuf::from);
        let config = var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".config")));
        // A missing or unreadable file just means the default names.
        let user_dirs = config.and_then(|c| std::fs::read_to_string(c.join("user-dirs.dirs")).ok());
        // As administrator kizuki watches every user's programs, so every
        // user's download folder counts, whatever it is called.
        let other_users = if crate::probe::running_as_admin() {
            std::fs::read_to_string("/etc/passwd")
                .map(|text| user_homes(&text))
                .unwrap_or_default()
                .into_iter()
                .filter(|h| Some(h) != home.as_ref())
                .filter_map(|h| {
                    let text =
                        std::fs::read_to_string(h.join(".config").join("user-dirs.dirs")).ok()?;
                    Some((h, text))
                })
                .collect()
        } else {
            Vec::new()
        };
        TempDirs::unix(&UnixEnv {
            home,
            xdg_cache_home: var("XDG_CACHE_HOME").map(PathBuf::from),
            tmpdir: var("TMPDIR").map(PathBuf::from),
            user_dirs,
            other_users,
        })
    }

    fn add(&mut self, kind: TempKind, dir: &str) {
        let c = self.style.components(dir);
        if !c.is_empty() && !self.dirs.iter().any(|(_, d)| *d == c) {
            self.dirs.push((kind, c));
        }
    }

    pub fn style(&self) -> PathStyle {
        self.style
    }

    /// Which temp-like folder `path` is in; the most specific folder wins.
    pub fn kind_of(&self, path: &str) -> Option<TempKind> {
        let c = self.style.components(path);
        let mut best: Option<(usize, TempKind)> = None;
        let mut consider = |len: usize, kind: TempKind| {
            if best.is_none_or(|(l, _)| len > l) {
                best = Some((len, kind));
            }
        };
        for (kind, dir) in &self.dirs {
            // The folder itself is not "in" the folder: a file must follow.
            if c.len() > dir.len() && c.starts_with(dir) {
                consider(dir.len(), *kind);
            }
        }
        for root in &self.home_roots {
            if c.len() > root.len() + 1 && c.starts_with(root) {
                let rest = &c[root.len() + 1..];
                for (kind, rel) in &self.in_home {
                    if rest.len() > rel.len() && rest.starts_with(rel) {
                        consider(root.len() + 1 + rel.len(), *kind);
                    }
                }
            }
        }
        best.map(|(_, k)| k)
    }
}

/// The temp-like folder an executable is in, if any.
pub fn temp_kind(path: &Path, dirs: &TempDirs) -> Option<TempKind> {
    dirs.kind_of(&path_str(path))
}

/// Home folders of people's accounts (uid 1000 and up, or root) from the
/// text of `/etc/passwd`.
pub fn user_homes(passwd: &str) -> Vec<PathBuf> {
    passwd
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let uid: u32 = f.get(2)?.parse().ok()?;
            let home = f.get(5)?;
            let person = uid == 0 || (1000..65534).contains(&uid);
            (person && home.starts_with('/') && *home != "/").then(|| PathBuf::from(home))
        })
        .collect()
}

/// `XDG_DOWNLOAD_DIR` from the text of `user-dirs.dirs`
/// (`XDG_DOWNLOAD_DIR="$HOME/ダウンロード"`).
pub fn download_dir_from_user_dirs(text: &str, home: &Path) -> Option<PathBuf> {
    text.lines().find_map(|line| {
        let line = line.trim();
        let value = line.strip_prefix("XDG_DOWNLOAD_DIR=")?.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        if let Some(rest) = value
            .strip_prefix("$HOME")
            .or_else(|| value.strip_prefix("${HOME}"))
        {
            let rest = rest.trim_start_matches('/');
            Some(if rest.is_empty() {
                home.to_path_buf()
            } else {
                home.join(rest)
            })
        } else if value.starts_with('/') {
            Some(PathBuf::from(value))
        } else {
            None
        }
    })
}

/// Folders that only an administrator or a package manager can write.
const UNIX_SYSTEM: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/opt",
    "/snap",
    "/nix/store",
    "/var/lib/flatpak",
    "/var/lib/snapd",
    // Inside a Flatpak sandbox the application is mounted read-only here.
    "/app",
];

/// `ProgramData` is missing on purpose: every user can write there.
const WINDOWS_SYSTEM: &[&str] = &[
    r"C:\Windows",
    r"C:\Program Files",
    r"C:\Program Files (x86)",
];

/// True when `path` is in a folder that only an administrator or a package
/// manager writes (`/usr`, `/opt`, `C:\Program Files`, …).
pub fn is_system_location(path: &str, style: PathStyle) -> bool {
    let c = style.components(path);
    let list = match style {
        PathStyle::Unix => UNIX_SYSTEM,
        PathStyle::Windows => WINDOWS_SYSTEM,
    };
    list.iter().any(|dir| {
        let d = style.components(dir);
        c.len() > d.len() && c.starts_with(&d)
    })
}

/// True for an anonymous in-memory image (`memfd_create`): the kernel shows
/// `/memfd:NAME (deleted)`; there never was a file.
pub fn is_memfd(path: &Path) -> bool {
    path_str(path).starts_with("/memfd:")
}

/// True when every process runs as a system account (root and uids below
/// 1000 on Unix).
pub fn runs_as_system_account(p: &Program) -> bool {
    !p.processes.is_empty() && p.processes.iter().all(|x| x.uid.is_some_and(|u| u < 1000))
}

/// True for programs installed by the system: their executable is in a
/// system folder, or (when the path is hidden from a non-administrator)
/// every process runs as a system account (root and uids below 1000).
pub fn is_system_program(p: &Program, style: PathStyle) -> bool {
    match &p.exe {
        Some(exe) => is_system_location(&path_str(exe), style),
        None => style == PathStyle::Unix && runs_as_system_account(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn linux() -> TempDirs {
        TempDirs::unix(&UnixEnv {
            home: Some("/home/hanako".into()),
            xdg_cache_home: None,
            tmpdir: None,
            user_dirs: Some(
                "# written by xdg-user-dirs-update\nXDG_DESKTOP_DIR=\"$HOME/デスクトップ\"\n\
                 XDG_DOWNLOAD_DIR=\"$HOME/ダウンロード\"\n"
                    .into(),
            ),
            other_users: Vec::new(),
        })
    }

    fn windows() -> TempDirs {
        TempDirs::windows(&WindowsEnv {
            temp: Some(r"C:\Users\Hanako\AppData\Local\Temp".into()),
            local_app_data: Some(r"C:\Users\Hanako\AppData\Local".into()),
            user_profile: Some(r"C:\Users\Hanako".into()),
            system_root: Some(r"C:\WINDOWS".into()),
            downloads: Some(r"D:\ダウンロード".into()),
        })
    }

    // Written with Unix paths and tools.
    #[cfg(unix)]
    #[test]
    fn unix_paths_are_classified() {
        let d = linux();
        let cases: &[(&str, Option<TempKind>)] = &[
            ("/tmp/freetool", Some(TempKind::Temp)),
            ("/tmp/a/b/c/tool", Some(TempKind::Temp)),
            ("/var/tmp/x", Some(TempKind::Temp)),
            ("/dev/shm/.x", Some(TempKind::SharedMemory)),
            ("/home/hanako/.cache/thing/bin", Some(TempKind::Cache)),
            ("/home/hanako/Downloads/tool", Some(TempKind::Downloads)),
            (
                "/home/hanako/ダウンロード/無料ツール",
                Some(TempKind::Downloads),
            ),
            // Another user's folders (kizuki running as root).
            ("/home/taro/Downloads/x", Some(TempKind::Downloads)),
            ("/home/taro/ダウンロード/x", Some(TempKind::Downloads)),
            ("/home/taro/.cache/x", Some(TempKind::Cache)),
            // Not temp.
            ("/usr/bin/python3", None),
            ("/tmpfoo/tool", None),
            ("/tmp", None),
            ("/home/hanako/bin/tool", None),
            ("/home/hanako/downloads/tool", None),
            ("/home/hanako/.local/share/app/app", None),
            ("/opt/tmp/x", None),
        ];
        for (p, want) in cases {
            assert_eq!(temp_kind(Path::new(p), &d), *want, "{p}");
        }
    }

    // Written with Unix paths.
    #[cfg(unix)]
    #[test]
    fn as_root_every_users_download_folder_counts() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                      hanako:x:1000:1000::/home/hanako:/bin/bash\n\
                      taro:x:1001:1001::/srv/people/taro:/bin/bash\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(
            user_homes(passwd),
            vec![
                PathBuf::from("/root"),
                PathBuf::from("/home/hanako"),
                PathBuf::from("/srv/people/taro")
            ]
        );
        // kizuki runs as root; hanako and taro have their own names.
        let d = TempDirs::unix(&UnixEnv {
            home: Some("/root".into()),
            other_users: vec![
                (
                    "/home/hanako".into(),
                    "XDG_DOWNLOAD_DIR=\"$HOME/ダウンロード\"\n".into(),
                ),
                (
                    "/srv/people/taro".into(),
                    "XDG_DOWNLOAD_DIR=\"$HOME/受信\"\n".into(),
                ),
                ("/home/jiro".into(), "XDG_DOWNLOAD_DIR=\"$HOME/\"\n".into()),
            ],
            ..UnixEnv::default()
        });
        assert_eq!(
            d.kind_of("/home/hanako/ダウンロード/tool"),
            Some(TempKind::Downloads)
        );
        assert_eq!(
            d.kind_of("/srv/people/taro/受信/x/tool"),
            Some(TempKind::Downloads)
        );
        assert_eq!(d.kind_of("/home/jiro/tool"), None, "home itself is not");
        assert_eq!(d.kind_of("/srv/people/taro/bin/tool"), None);
    }

    #[test]
    fn xdg_cache_and_tmpdir_are_honoured() {
        let d = TempDirs::unix(&UnixEnv {
            home: Some("/home/a".into()),
            xdg_cache_home: Some("/data/cache".into()),
            tmpdir: Some("/scratch".into()),
            user_dirs: None,
            other_users: Vec::new(),
        });
        assert_eq!(d.kind_of("/data/cache/x"), Some(TempKind::Cache));
        assert_eq!(d.kind_of("/scratch/run/x"), Some(TempKind::Temp));
        assert_eq!(d.kind_of("/data/other/x"), None);
    }

    #[test]
    fn download_dir_pointing_at_home_is_ignored() {
        let d = TempDirs::unix(&UnixEnv {
            home: Some("/home/a".into()),
            user_dirs: Some("XDG_DOWNLOAD_DIR=\"$HOME/\"\n".into()),
            ..UnixEnv::default()
        });
        assert_eq!(d.kind_of("/home/a/tool"), None);
        assert_eq!(
            d.kind_of("/home/a/Downloads/tool"),
            Some(TempKind::Downloads)
        );
    }

    #[test]
    fn user_dirs_file_is_parsed() {
        let home = Path::new("/home/a");
        let cases: &[(&str, Option<&str>)] = &[
            (
                "XDG_DOWNLOAD_DIR=\"$HOME/ダウンロード\"",
                Some("/home/a/ダウンロード"),
            ),
            ("XDG_DOWNLOAD_DIR=\"${HOME}/dl\"", Some("/home/a/dl")),
            ("XDG_DOWNLOAD_DIR=\"/srv/dl\"", Some("/srv/dl")),
            ("  XDG_DOWNLOAD_DIR=$HOME/x  ", Some("/home/a/x")),
            ("# XDG_DOWNLOAD_DIR=\"$HOME/no\"", None),
            ("XDG_MUSIC_DIR=\"$HOME/Music\"", None),
            ("XDG_DOWNLOAD_DIR=\"relative\"", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                download_dir_from_user_dirs(text, home),
                want.map(PathBuf::from),
                "{text}"
            );
        }
    }

    #[test]
    fn windows_paths_are_classified_case_insensitively() {
        let d = windows();
        let cases: &[(&str, Option<TempKind>)] = &[
            (
                r"C:\Users\Hanako\AppData\Local\Temp\iesys.exe",
                Some(TempKind::Temp),
            ),
            (
                r"c:\users\hanako\appdata\local\temp\x\y.exe",
                Some(TempKind::Temp),
            ),
            (
                r"\\?\C:\Users\Hanako\AppData\Local\Temp\a.exe",
                Some(TempKind::Temp),
            ),
            (
                "C:/Users/Hanako/Downloads/free.exe",
                Some(TempKind::Downloads),
            ),
            (
                r"C:\Users\Taro\Downloads\free.exe",
                Some(TempKind::Downloads),
            ),
            (
                r"C:\Users\Taro\AppData\Local\Temp\t.exe",
                Some(TempKind::Temp),
            ),
            (r"C:\Windows\Temp\x.exe", Some(TempKind::Temp)),
            // The Downloads folder moved to another drive.
            (
                r"D:\ダウンロード\無料ツール\tool.exe",
                Some(TempKind::Downloads),
            ),
            (r"D:\Games\game.exe", None),
            (r"C:\Program Files\App\app.exe", None),
            (r"C:\Users\Hanako\AppData\Local\Programs\app.exe", None),
            (r"C:\Users\Hanako\Downloads", None),
            (r"D:\Temp\x.exe", None),
        ];
        for (p, want) in cases {
            assert_eq!(d.kind_of(p), *want, "{p}");
        }
    }

    #[test]
    fn system_locations() {
        let cases: &[(&str, PathStyle, bool)] = &[
            ("/usr/sbin/sshd", PathStyle::Unix, true),
            ("/usr/lib/firefox/firefox", PathStyle::Unix, true),
            ("/opt/google/chrome/chrome", PathStyle::Unix, true),
            ("/snap/bin/x", PathStyle::Unix, true),
            ("/tmp/usr/bin/x", PathStyle::Unix, false),
            ("/home/a/.local/bin/x", PathStyle::Unix, false),
            ("/usrlocal/x", PathStyle::Unix, false),
            (
                r"C:\Program Files\Mozilla\firefox.exe",
                PathStyle::Windows,
                true,
            ),
            (r"c:\windows\system32\svchost.exe", PathStyle::Windows, true),
            (r"C:\ProgramData\x.exe", PathStyle::Windows, false),
            (r"C:\Users\a\AppData\Local\x.exe", PathStyle::Windows, false),
        ];
        for (p, st, want) in cases {
            assert_eq!(is_system_location(p, *st), *want, "{p}");
        }
    }
}
