//! Time as a dependency: the real clock in the app, a hand-driven one in tests.

use crate::lock::MutexExt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when a test moves it.
#[derive(Debug)]
pub struct FakeClock {
    now: Mutex<SystemTime>,
}

impl FakeClock {
    pub fn new(start: SystemTime) -> Self {
        FakeClock {
            now: Mutex::new(start),
        }
    }

    /// A fixed, readable starting point: 2026-11-25T12:00:00Z.
    pub fn at_noon() -> Self {
        Self::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_608_000))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.locked();
        *now += by;
    }

    pub fn set(&self, to: SystemTime) {
        *self.now.locked() = to;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> SystemTime {
        *self.now.locked()
    }
}

/// RFC 3339 in UTC with second precision, as the contract shows.
/// A moment beyond what a date can show (years outside 0000–9999, which
/// only a damaged or hostile file holds) is shown as the epoch rather than
/// stopping kizuki.
pub fn rfc3339(t: SystemTime) -> String {
    utc(t)
        .and_then(|dt| {
            dt.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

/// Whole seconds in UTC; `None` outside the years RFC 3339 can write.
fn utc(t: SystemTime) -> Option<time::OffsetDateTime> {
    let secs = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).ok()?,
        // Before 1970: round towards the past, like the whole-second cut.
        Err(e) => {
            let d = e.duration();
            let whole = i64::try_from(d.as_secs()).ok()?;
            -whole - i64::from(d.subsec_nanos() > 0)
        }
    };
    let dt = time::OffsetDateTime::from_unix_timestamp(secs).ok()?;
    (0..=9999).contains(&dt.year()).then_some(dt)
}

/// Parses RFC 3339 (`2026-11-25T12:00:00Z`).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let dt = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    // An offset can carry a date past year 9999 in UTC: such a moment could
    // not be written back, so it is not accepted.
    let t = SystemTime::from(dt);
    utc(t).map(|_| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noon_formats_as_contract_example() {
        assert_eq!(rfc3339(FakeClock::at_noon().now()), "2026-11-25T12:00:00Z");
    }

    #[test]
    fn fake_clock_moves_only_when_told() {
        let c = FakeClock::at_noon();
        let a = c.now();
        assert_eq!(c.now(), a);
        c.advance(Duration::from_secs(3));
        assert_eq!(c.now(), a + Duration::from_secs(3));
        assert_eq!(parse_rfc3339(&rfc3339(c.now())), Some(c.now()));
    }

    #[test]
    fn dates_beyond_year_9999_are_refused_not_fatal() {
        // Found while writing the marks-loader fuzz target: the offset
        // moves this past 9999 in UTC, and formatting it again panicked.
        assert_eq!(parse_rfc3339("9999-12-31T23:59:59-01:00"), None);
        assert!(parse_rfc3339("9999-12-31T23:59:59Z").is_some());
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(rfc3339(far), "1970-01-01T00:00:00Z");
        let before = SystemTime::UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(rfc3339(before), "1969-12-31T23:59:58Z");
    }
}
