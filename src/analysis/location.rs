//! Where the program runs from: `runs-from-temp`.

use serde_json::json;

use super::places::{TempDirs, TempKind, temp_kind};
use super::{Detected, evidence, is_trusted};
use crate::escape::os_lossless;
use crate::i18n::tr;
use crate::model::{FindingKind, Program, Severity};

/// `runs-from-temp`: the executable is in a temporary, download or cache
/// folder, where programs are dropped and started rather than installed.
pub fn runs_from_temp(p: &Program, dirs: &TempDirs) -> Option<Detected> {
    let exe = p.exe.as_ref()?;
    let kind = temp_kind(exe, dirs)?;
    let severity = if is_trusted(p) {
        Severity::Low
    } else if kind == TempKind::SharedMemory {
        // Memory-backed and hidden: a favourite of fileless malware.
        Severity::High
    } else {
        Severity::Medium
    };
    Some(Detected {
        kind: FindingKind::RunsFromTemp,
        severity,
        summary: tr(&format!("findings.runs_from_temp.{}", kind.as_str())),
        evidence: evidence([
            ("exe", json!(os_lossless(exe.as_os_str()))),
            ("folder", json!(kind.as_str())),
        ]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::places::{UnixEnv, WindowsEnv};
    use crate::analysis::testkit::program;
    use crate::model::Mark;

    type Case<'a> = (
        &'a str,
        &'a TempDirs,
        Option<Mark>,
        Option<(Severity, &'a str)>,
    );

    #[test]
    fn runs_from_temp_table() {
        let unix = TempDirs::unix(&UnixEnv {
            home: Some("/home/hanako".into()),
            user_dirs: Some("XDG_DOWNLOAD_DIR=\"$HOME/ダウンロード\"".into()),
            ..UnixEnv::default()
        });
        let win = TempDirs::windows(&WindowsEnv {
            user_profile: Some(r"C:\Users\Hanako".into()),
            ..WindowsEnv::default()
        });
        let cases: Vec<Case> = vec![
            (
                "/tmp/x/freetool",
                &unix,
                None,
                Some((Severity::Medium, "temp")),
            ),
            (
                "/home/hanako/ダウンロード/tool",
                &unix,
                None,
                Some((Severity::Medium, "downloads")),
            ),
            (
                "/home/hanako/.cache/x/bin",
                &unix,
                None,
                Some((Severity::Medium, "cache")),
            ),
            ("/dev/shm/x", &unix, None, Some((Severity::High, "shm"))),
            (
                "/tmp/x/freetool",
                &unix,
                Some(Mark::Trusted),
                Some((Severity::Low, "temp")),
            ),
            ("/usr/bin/python3", &unix, None, None),
            ("/home/hanako/bin/tool", &unix, None, None),
            (
                r"C:\Users\Hanako\AppData\Local\Temp\iesys.exe",
                &win,
                None,
                Some((Severity::Medium, "temp")),
            ),
            (
                r"C:\Users\Hanako\Downloads\free.exe",
                &win,
                None,
                Some((Severity::Medium, "downloads")),
            ),
            (r"C:\Program Files\App\app.exe", &win, None, None),
        ];
        for (exe, dirs, mark, want) in cases {
            // Unix paths mean nothing to Windows' path rules, and back.
            if cfg!(windows) != std::ptr::eq(dirs, &win) {
                continue;
            }
            let mut p = program(exe, vec![]);
            p.mark = mark;
            let got = runs_from_temp(&p, dirs).map(|d| {
                (
                    d.severity,
                    d.evidence["folder"].as_str().unwrap().to_string(),
                )
            });
            assert_eq!(got, want.map(|(s, f)| (s, f.to_string())), "{exe}");
        }
    }

    #[test]
    fn program_without_a_path_is_not_judged() {
        let mut p = program("/tmp/x", vec![]);
        p.exe = None;
        assert!(runs_from_temp(&p, &TempDirs::unix(&UnixEnv::default())).is_none());
    }
}
