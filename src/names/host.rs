//! Which host names kizuki accepts from the wire. A name is shown to a
//! frightened user and written to the journal, so anything that is not a
//! plain host name (control characters, spaces, an address posing as a
//! name) is refused rather than cleaned up.

use std::net::IpAddr;

/// The longest name DNS allows.
const MAX_NAME: usize = 253;
const MAX_LABEL: usize = 63;

/// `raw` as a lower-case host name without a trailing dot, or `None` when
/// it is not one: letters, digits, `-` and `_` in dot-separated labels of
/// 1–63 characters, at most 253 in all, and not an IP address.
pub fn clean_host(raw: &str) -> Option<String> {
    let name = raw.strip_suffix('.').unwrap_or(raw);
    if name.is_empty() || name.len() > MAX_NAME || name.parse::<IpAddr>().is_ok() {
        return None;
    }
    for label in name.split('.') {
        if label.is_empty()
            || label.len() > MAX_LABEL
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
    }
    // All-digit labels only: an address in some other notation.
    if name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    Some(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("board.example.jp", Some("board.example.jp")),
            ("Board.EXAMPLE.jp.", Some("board.example.jp")),
            ("xn--eckwd4c7c.xn--zckzah", Some("xn--eckwd4c7c.xn--zckzah")),
            ("_dmarc.example.com", Some("_dmarc.example.com")),
            ("printer", Some("printer")),
            ("", None),
            (".", None),
            ("a..b", None),
            ("203.0.113.7", None),
            ("2001:db8::1", None),
            ("1.2.3", None),
            ("evil\u{1b}[2J.example", None),
            ("a b.example", None),
            ("例え.jp", None),
            ("host:443", None),
        ];
        for (raw, want) in cases {
            assert_eq!(clean_host(raw).as_deref(), *want, "{raw:?}");
        }
        assert_eq!(clean_host(&"a".repeat(64)), None);
        assert_eq!(clean_host(&["a"; 128].join(".")), None);
    }
}
