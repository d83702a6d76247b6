//! The `Host:` header of a plain HTTP request: the site a program asked
//! for. Only a request's first bytes are read; hostile bytes give `None`.

use super::host::clean_host;

const METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
];
/// Headers further than this into the request are not looked at.
const MAX_SCAN: usize = 8192;

/// The host name a request's first bytes ask for, without a port.
pub fn host(data: &[u8]) -> Option<String> {
    if !METHODS.iter().any(|m| data.starts_with(m)) {
        return None;
    }
    let data = &data[..data.len().min(MAX_SCAN)];
    let mut lines = data.split(|b| *b == b'\n');
    lines.next()?; // request line
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break; // end of headers
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (key, value) = line.split_at(colon);
        if !key.eq_ignore_ascii_case(b"host") {
            continue;
        }
        let value = std::str::from_utf8(&value[1..]).ok()?.trim();
        let name = match value.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
            _ => value,
        };
        return clean_host(name);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_table() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (
                b"GET /x HTTP/1.1\r\nUser-Agent: a\r\nHost: Board.Example.jp\r\n\r\n",
                Some("board.example.jp"),
            ),
            (
                b"POST / HTTP/1.1\r\nhost: board.example.jp:8000\r\n\r\n",
                Some("board.example.jp"),
            ),
            (b"GET / HTTP/1.1\r\nHost: 203.0.113.7\r\n\r\n", None),
            (b"GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n", None),
            (b"GET / HTTP/1.1\r\n\r\nHost: late.example\r\n", None),
            (b"GET / HTTP/1.1\r\nHost: ev\x1bil.example\r\n", None),
            (b"GET / HTTP/1.1\r\nHost: \xff\xfe\r\n", None),
            (b"\x16\x03\x01\x00\x10", None),
            (b"GET / HTTP/1.1\r\nHost", None),
            (b"", None),
        ];
        for (raw, want) in cases {
            assert_eq!(
                host(raw).as_deref(),
                *want,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
