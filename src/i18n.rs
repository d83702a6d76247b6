//! Every user-visible string, in Japanese and English.
//!
//! Catalogs live in `assets/i18n/{ja,en}/<area>.toml` (flat
//! `key = "text"`, one file per area of the app), are compiled in, and a test
//! checks that both languages hold the same keys. `{name}` placeholders are
//! filled by [`tr_args`].

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "ja" => Some(Lang::Ja),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

static CURRENT: AtomicU8 = AtomicU8::new(0);

pub fn set_lang(l: Lang) {
    CURRENT.store(
        match l {
            Lang::Ja => 0,
            Lang::En => 1,
        },
        Ordering::Relaxed,
    );
}

pub fn lang() -> Lang {
    match CURRENT.load(Ordering::Relaxed) {
        0 => Lang::Ja,
        _ => Lang::En,
    }
}

/// Japanese when the locale says Japanese, else English.
pub fn detect_lang() -> Lang {
    for var in ["LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            return if v.starts_with("ja") {
                Lang::Ja
            } else {
                Lang::En
            };
        }
    }
    Lang::En
}

/// Catalog files per area: (area, Japanese, English). Add a line per area.
const SOURCES: &[(&str, &str, &str)] = &[
    (
        "gjournal",
        include_str!("../assets/i18n/ja/gjournal.toml"),
        include_str!("../assets/i18n/en/gjournal.toml"),
    ),
    (
        "core",
        include_str!("../assets/i18n/ja/core.toml"),
        include_str!("../assets/i18n/en/core.toml"),
    ),
    (
        "capture",
        include_str!("../assets/i18n/ja/capture.toml"),
        include_str!("../assets/i18n/en/capture.toml"),
    ),
    (
        "marks",
        include_str!("../assets/i18n/ja/marks.toml"),
        include_str!("../assets/i18n/en/marks.toml"),
    ),
    (
        "firewall",
        include_str!("../assets/i18n/ja/firewall.toml"),
        include_str!("../assets/i18n/en/firewall.toml"),
    ),
    (
        "findings",
        include_str!("../assets/i18n/ja/findings.toml"),
        include_str!("../assets/i18n/en/findings.toml"),
    ),
    (
        "consult",
        include_str!("../assets/i18n/ja/consult.toml"),
        include_str!("../assets/i18n/en/consult.toml"),
    ),
    (
        "report",
        include_str!("../assets/i18n/ja/report.toml"),
        include_str!("../assets/i18n/en/report.toml"),
    ),
    (
        "gui",
        include_str!("../assets/i18n/ja/gui.toml"),
        include_str!("../assets/i18n/en/gui.toml"),
    ),
    (
        "journal",
        include_str!("../assets/i18n/ja/journal.toml"),
        include_str!("../assets/i18n/en/journal.toml"),
    ),
    (
        "wizard",
        include_str!("../assets/i18n/ja/wizard.toml"),
        include_str!("../assets/i18n/en/wizard.toml"),
    ),
    (
        "autostart",
        include_str!("../assets/i18n/ja/autostart.toml"),
        include_str!("../assets/i18n/en/autostart.toml"),
    ),
    (
        "tray",
        include_str!("../assets/i18n/ja/tray.toml"),
        include_str!("../assets/i18n/en/tray.toml"),
    ),
    (
        "window",
        include_str!("../assets/i18n/ja/window.toml"),
        include_str!("../assets/i18n/en/window.toml"),
    ),
    (
        "hardening",
        include_str!("../assets/i18n/ja/hardening.toml"),
        include_str!("../assets/i18n/en/hardening.toml"),
    ),
    (
        "names",
        include_str!("../assets/i18n/ja/names.toml"),
        include_str!("../assets/i18n/en/names.toml"),
    ),
    (
        "guard",
        include_str!("../assets/i18n/ja/guard.toml"),
        include_str!("../assets/i18n/en/guard.toml"),
    ),
    (
        "datafile",
        include_str!("../assets/i18n/ja/datafile.toml"),
        include_str!("../assets/i18n/en/datafile.toml"),
    ),
    (
        "reportfile",
        include_str!("../assets/i18n/ja/reportfile.toml"),
        include_str!("../assets/i18n/en/reportfile.toml"),
    ),
    (
        "quiet",
        include_str!("../assets/i18n/ja/quiet.toml"),
        include_str!("../assets/i18n/en/quiet.toml"),
    ),
    (
        "live",
        include_str!("../assets/i18n/ja/live.toml"),
        include_str!("../assets/i18n/en/live.toml"),
    ),
    (
        "traffic",
        include_str!("../assets/i18n/ja/traffic.toml"),
        include_str!("../assets/i18n/en/traffic.toml"),
    ),
];

type Catalog = HashMap<String, String>;

fn parse(l: Lang) -> Catalog {
    let mut all = Catalog::new();
    for (_, ja, en) in SOURCES {
        let src = match l {
            Lang::Ja => ja,
            Lang::En => en,
        };
        // The catalogs are compiled in and a test parses each one, so a
        // broken file is caught before release; here it just adds nothing.
        all.extend(toml::from_str::<Catalog>(src).unwrap_or_default());
    }
    all
}

fn catalog(l: Lang) -> &'static Catalog {
    static JA: OnceLock<Catalog> = OnceLock::new();
    static EN: OnceLock<Catalog> = OnceLock::new();
    match l {
        Lang::Ja => JA.get_or_init(|| parse(Lang::Ja)),
        Lang::En => EN.get_or_init(|| parse(Lang::En)),
    }
}

/// The text for `key` in the current language.
pub fn tr(key: &str) -> String {
    tr_in(lang(), key)
}

/// The text for `key` in `l`; an unknown key shows itself, so a mistake
/// is visible rather than blank.
pub fn tr_in(l: Lang, key: &str) -> String {
    catalog(l)
        .get(key)
        .cloned()
        .unwrap_or_else(|| key.to_string())
}

/// Like [`tr`], replacing each `{name}` with its value.
pub fn tr_args(key: &str, args: &[(&str, &str)]) -> String {
    tr_args_in(lang(), key, args)
}

pub fn tr_args_in(l: Lang, key: &str, args: &[(&str, &str)]) -> String {
    let mut s = tr_in(l, key);
    for (name, value) in args {
        s = s.replace(&format!("{{{name}}}"), value);
    }
    s
}

/// All keys of one catalog, for completeness checks.
pub fn keys(l: Lang) -> Vec<&'static str> {
    let mut k: Vec<&str> = catalog(l).keys().map(|s| s.as_str()).collect();
    k.sort_unstable();
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_file_parses_and_no_key_is_defined_twice() {
        let mut seen = std::collections::HashSet::new();
        for (area, ja, en) in SOURCES {
            let ja: Catalog = toml::from_str(ja).unwrap_or_else(|e| panic!("ja/{area}: {e}"));
            let en: Catalog = toml::from_str(en).unwrap_or_else(|e| panic!("en/{area}: {e}"));
            assert_eq!(ja.len(), en.len(), "{area}: ja and en differ in size");
            for k in ja.keys() {
                assert!(seen.insert(k.clone()), "key {k} defined in two areas");
            }
        }
    }

    #[test]
    fn catalogs_parse_and_hold_the_same_keys() {
        let ja = keys(Lang::Ja);
        let en = keys(Lang::En);
        assert!(!ja.is_empty(), "ja catalog must parse");
        let missing_en: Vec<_> = ja.iter().filter(|k| !en.contains(k)).collect();
        let missing_ja: Vec<_> = en.iter().filter(|k| !ja.contains(k)).collect();
        assert!(missing_en.is_empty(), "missing in en: {missing_en:?}");
        assert!(missing_ja.is_empty(), "missing in ja: {missing_ja:?}");
    }

    #[test]
    fn placeholders_match_between_languages() {
        for k in keys(Lang::Ja) {
            let holes = |s: String| {
                let mut v: Vec<String> = s
                    .split('{')
                    .skip(1)
                    .filter_map(|p| p.split_once('}').map(|(h, _)| h.to_string()))
                    .collect();
                v.sort();
                v
            };
            assert_eq!(
                holes(tr_in(Lang::Ja, k)),
                holes(tr_in(Lang::En, k)),
                "placeholders differ for {k}"
            );
        }
    }

    /// Words that are the same in Japanese text: names, protocols, file
    /// and command names a user may need to type or look for.
    const ASCII_ALLOWED: &[&str] = &[
        "kizuki",
        "Tor",
        "PID",
        "PIDs",
        "TCP",
        "UDP",
        "IPA",
        "OS",
        "Windows",
        "Linux",
        "ClamAV",
        "clamscan",
        "Microsoft",
        "Defender",
        "nftables",
        "nft",
        "pkexec",
        "polkit",
        "cgroup",
        "iproute",
        "apt",
        "get",
        "install",
        "Debian",
        "netsh",
        "SHA",
        "JSON",
        "HTML",
        "URL",
        "LAN",
        "Wi",
        "Fi",
        "Web",
        "ID",
        "USB",
        "UAC",
        "log",
        "json",
        "md",
        "html",
        "shm",
        "dev",
        "root",
        "allow",
        "data",
        "dir",
        "for",
        "record",
        "only",
        "lang",
        "ja",
        "en",
        "kizuki",
        "exe",
        "SOCKS",
        "DNS",
        "IP",
        "IPv",
        "Run",
        "HKCU",
        "Software",
        "CurrentVersion",
        "Explorer",
        "Downloads",
        "AppData",
        "Local",
        "Temp",
        "tmp",
        "var",
        "home",
        "desktop",
        "autostart",
        "config",
        "systemd",
        "xdg",
        "portal",
        "zenity",
        "gio",
        "open",
        "tel",
        "mailto",
        "https",
        "http",
        "www",
        "go",
        "jp",
        "npa",
        "ipa",
        "police",
        "com",
        "verify",
        "history",
        "mark",
        "trusted",
        "unknown",
        "blocked",
        "help",
        "report",
        "scan",
        "watch",
        "firewall",
        "status",
        "apply",
        "clear",
        "panic",
        "unpanic",
        "contacts",
        "Escape",
        "Esc",
        "Enter",
        "Ctrl",
        "Shift",
        "Alt",
        "Tab",
        "Store",
        "App",
        "Security",
        "SmartScreen",
        "HOME",
        "XDG",
        "CONFIG",
        "on",
        "off",
        "macOS",
        "SMS",
        "sys",
        "fs",
        "sudo",
        "CPU",
        "evidence",
        // Names of programs, commands, protocols and data sources.
        "guard",
        "fanotify",
        "plan",
        "force",
        "KIZUKI",
        "GUARD",
        "SOCKET",
        "raw",
        "packet",
        "ping",
        "DHCP",
        "PC",
        "HTTP",
        "TLS",
        "IPtoASN",
        "RouteViews",
        "NRO",
        "DB",
        "CC",
        "BY",
        "bash",
        "python",
    ];

    #[test]
    fn no_english_leaks_into_the_japanese_catalog() {
        let mut leaks = Vec::new();
        for k in keys(Lang::Ja) {
            let text = tr_in(Lang::Ja, k);
            // Placeholders are filled in later; they are not words shown.
            let mut shown = String::new();
            let mut depth = 0;
            for c in text.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ if depth == 0 => shown.push(c),
                    _ => {}
                }
            }
            for word in shown
                .split(|c: char| !c.is_ascii_alphabetic())
                .filter(|w| w.len() >= 2)
            {
                if !ASCII_ALLOWED.contains(&word) {
                    leaks.push(format!("{k}: {word}"));
                }
            }
            let ascii = shown.chars().filter(|c| c.is_ascii_alphabetic()).count();
            let total = shown.chars().filter(|c| !c.is_whitespace()).count();
            // A whole English sentence left untranslated.
            if total > 12 && ascii * 10 > total * 7 {
                leaks.push(format!("{k}: mostly English: {shown}"));
            }
        }
        assert!(
            leaks.is_empty(),
            "English in the Japanese catalog: {leaks:#?}"
        );
    }

    #[test]
    fn japanese_is_japanese() {
        assert_eq!(tr_in(Lang::Ja, "app.name"), "気づき");
        assert_eq!(tr_in(Lang::En, "app.name"), "kizuki");
        assert_eq!(
            tr_args_in(Lang::En, "scan.incomplete", &[]),
            tr_in(Lang::En, "scan.incomplete")
        );
    }
}
