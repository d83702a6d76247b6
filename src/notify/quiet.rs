//! Quiet first hours: right after kizuki first records the baseline,
//! every program is news, and a stream of "new program" notifications
//! teaches the user to ignore kizuki. For [`QUIET_FOR`] after the baseline
//! was created only high findings are notified (everything still shows in
//! the window and the JSON); then one summary says how many programs were
//! learnt and how many need a look. Pure: the time comes from the caller.

use std::time::{Duration, SystemTime};

use super::{Headline, Rendered};
use crate::i18n::{Lang, tr_args_in, tr_in};
use crate::model::{Severity, Snapshot};

/// How long after the baseline's creation notifications below high are
/// held back.
pub const QUIET_FOR: Duration = Duration::from_secs(6 * 3600);

/// A summary not sent by this age of the baseline (kizuki was not running
/// in between, or the baseline predates this feature) is no longer news:
/// it is skipped.
pub const SUMMARY_UNTIL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The told ledger's id for "the summary was sent" (not a hex digest, so it
/// cannot collide with a finding's id).
pub const SUMMARY_ID: &str = "quiet-summary";

/// Where the learning period stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Learning: only high findings are notified.
    Learning,
    /// The period is over and the summary is still to be sent.
    SummaryDue,
    /// Over: notifications as usual.
    Done,
}

/// The learning period of one baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quiet {
    /// When the baseline was created.
    pub since: SystemTime,
    /// The summary was sent (now or by an earlier run).
    pub summary_sent: bool,
}

impl Quiet {
    pub fn phase(&self, now: SystemTime) -> Phase {
        if self.summary_sent {
            return Phase::Done;
        }
        match now.duration_since(self.since) {
            // A clock set before the baseline's creation: still learning.
            Err(_) => Phase::Learning,
            Ok(age) if age < QUIET_FOR => Phase::Learning,
            Ok(age) if age < SUMMARY_UNTIL => Phase::SummaryDue,
            Ok(_) => Phase::Done,
        }
    }

    /// Whether a notification with this headline is held back now: a new
    /// program below high is (the baseline learns it silently); a high
    /// finding or a blocked program running again never is.
    pub fn holds(&self, headline: Headline, now: SystemTime) -> bool {
        headline == Headline::NewProgram && self.phase(now) == Phase::Learning
    }
}

/// Programs of `snap` with a medium or higher finding: the ones that need
/// a look.
pub fn attention(snap: &Snapshot) -> usize {
    snap.programs
        .iter()
        .filter(|p| p.findings.iter().any(|f| f.severity >= Severity::Medium))
        .count()
}

/// The summary notification; clicking it opens the window.
pub fn summary(learnt: usize, attention: usize, lang: Lang) -> Rendered {
    Rendered {
        summary: tr_in(lang, "quiet.summary.title"),
        body: tr_args_in(
            lang,
            "quiet.summary.body",
            &[
                ("count", &learnt.to_string()),
                ("attention", &attention.to_string()),
            ],
        ),
        target: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, FakeClock};

    #[test]
    fn learning_then_summary_then_done() {
        let clock = FakeClock::at_noon();
        let mut q = Quiet {
            since: clock.now(),
            summary_sent: false,
        };
        assert!(q.holds(Headline::NewProgram, clock.now()));
        assert!(!q.holds(Headline::High, clock.now()), "high is never held");
        assert!(!q.holds(Headline::BlockedRunning, clock.now()));
        clock.advance(QUIET_FOR - Duration::from_secs(1));
        assert_eq!(q.phase(clock.now()), Phase::Learning);
        clock.advance(Duration::from_secs(1));
        assert_eq!(q.phase(clock.now()), Phase::SummaryDue);
        assert!(!q.holds(Headline::NewProgram, clock.now()));
        q.summary_sent = true;
        assert_eq!(q.phase(clock.now()), Phase::Done);
        let old = Quiet {
            since: clock.now() - SUMMARY_UNTIL,
            summary_sent: false,
        };
        assert_eq!(old.phase(clock.now()), Phase::Done, "a stale summary");
    }

    #[test]
    fn summary_words_in_both_languages() {
        let ja = summary(37, 2, Lang::Ja);
        assert!(
            ja.body.contains("37") && ja.body.contains('2'),
            "{}",
            ja.body
        );
        assert_eq!(ja.target, None);
        let en = summary(37, 2, Lang::En);
        assert_eq!(en.body, "kizuki learnt 37 programs; 2 need a look.");
    }
}
