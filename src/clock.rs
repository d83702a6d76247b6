//! Time as a dependency: the real clock in the app, a hand-driven one in tests.

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
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    pub fn set(&self, to: SystemTime) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// RFC 3339 in UTC with second precision, as the contract shows.
pub fn rfc3339(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    let dt = dt.replace_nanosecond(0).unwrap_or(dt);
    dt.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// Local wall-clock time `HH:MM:SS` for compact displays.
pub fn hms(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    format!("{:02}:{:02}:{:02}", dt.hour(), dt.minute(), dt.second())
}

/// Parses RFC 3339 (`2026-11-25T12:00:00Z`).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(SystemTime::from)
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
}
