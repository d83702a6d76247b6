//! Times and addresses as the window shows them.

use std::net::SocketAddr;
use std::time::SystemTime;

use time::{OffsetDateTime, UtcOffset};

fn local(t: SystemTime, offset: UtcOffset) -> OffsetDateTime {
    OffsetDateTime::from(t).to_offset(offset)
}

/// `HH:MM:SS` in local time.
pub fn clock(t: SystemTime, offset: UtcOffset) -> String {
    let d = local(t, offset);
    format!("{:02}:{:02}:{:02}", d.hour(), d.minute(), d.second())
}

/// `YYYY-MM-DD HH:MM:SS` in local time.
pub fn date_time(t: SystemTime, offset: UtcOffset) -> String {
    let d = local(t, offset);
    format!(
        "{:04}-{:02}-{:02} {}",
        d.year(),
        u8::from(d.month()),
        d.day(),
        clock(t, offset)
    )
}

/// `ip:port`, IPv6 in brackets (the standard display does that already).
pub fn addr(a: &SocketAddr) -> String {
    a.to_string()
}

/// Seconds as a short number: `1`, `0.5`.
pub fn seconds(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if (s - s.round()).abs() < 1e-9 {
        format!("{}", s.round() as u64)
    } else {
        format!("{s:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn japan_time_is_nine_hours_ahead() {
        let noon_utc = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_608_000);
        let jst = UtcOffset::from_hms(9, 0, 0).unwrap();
        assert_eq!(clock(noon_utc, UtcOffset::UTC), "12:00:00");
        assert_eq!(date_time(noon_utc, jst), "2026-11-25 21:00:00");
        assert_eq!(seconds(Duration::from_millis(500)), "0.5");
        assert_eq!(seconds(Duration::from_secs(1)), "1");
    }
}
