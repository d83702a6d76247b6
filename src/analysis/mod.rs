//! Findings: pure detectors over the monitor's tracked state, one file per
//! family, and [`AnalysisStage`], which runs them every tick, raises each
//! finding once per program and kind, and keeps it attached to the program
//! while its condition holds. The scoring is documented in docs/FINDINGS.md.

pub mod baseline;
pub mod beacon;
pub mod blocked;
pub mod escalate;
pub mod exe;
pub mod location;
pub mod network;
pub mod places;
pub mod process;
mod stage;
#[cfg(test)]
pub(crate) mod testkit;

pub use baseline::{BASELINE_FILE, Baseline, BaselineEntry, baseline_path};
pub use places::{PathStyle, TempDirs, TempKind, temp_kind};
pub use stage::{AnalysisStage, FileCheck, RealFiles};

use serde_json::{Map, Value};

use crate::model::{Finding, FindingKind, Mark, Program, Severity};

/// What one detector concluded about one program.
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    pub kind: FindingKind,
    pub severity: Severity,
    /// One plain sentence in the current language.
    pub summary: String,
    pub evidence: Map<String, Value>,
}

impl Detected {
    pub fn into_finding(self, first_raised: std::time::SystemTime) -> Finding {
        Finding {
            kind: self.kind,
            severity: self.severity,
            summary: self.summary,
            evidence: self.evidence,
            first_raised,
        }
    }
}

/// An evidence map from key/value pairs.
fn evidence<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn is_trusted(p: &Program) -> bool {
    p.mark == Some(Mark::Trusted)
}

/// "bash running /tmp/update.sh": a script program named with its
/// interpreter, in the current language.
pub fn script_run_text(interpreter: &std::path::Path, script: &std::path::Path) -> String {
    let name = interpreter
        .file_name()
        .map(crate::escape::os_lossless)
        .unwrap_or_else(|| crate::escape::os_lossless(interpreter.as_os_str()));
    crate::i18n::tr_args(
        "findings.script_run",
        &[
            ("interpreter", &name),
            ("script", &crate::escape::os_lossless(script.as_os_str())),
        ],
    )
}

/// The GUI's short label for a kind (`finding.<kind>.title`).
pub fn title(kind: FindingKind) -> String {
    crate::i18n::tr(&format!("finding.{}.title", kind.as_str()))
}

/// One or two sentences on why a kind matters (`finding.<kind>.why`).
pub fn why(kind: FindingKind) -> String {
    crate::i18n::tr(&format!("finding.{}.why", kind.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{Lang, tr_in};

    #[test]
    fn every_kind_has_a_title_and_a_reason_in_both_languages() {
        for kind in FindingKind::ALL {
            for l in [Lang::Ja, Lang::En] {
                for part in ["title", "why"] {
                    let key = format!("finding.{}.{part}", kind.as_str());
                    let text = tr_in(l, &key);
                    assert_ne!(text, key, "missing {key} in {l:?}");
                    assert!(!text.trim().is_empty());
                }
            }
        }
        assert_eq!(
            tr_in(Lang::Ja, "finding.runs-from-temp.title"),
            "一時フォルダーなどから実行"
        );
    }
}
