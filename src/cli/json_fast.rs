//! The compact JSON of a snapshot written by hand: the same bytes as
//! `serde_json::to_writer` of `output`'s borrowed structs (the tests below
//! and in `output` compare them), without serde's per-field machinery for
//! the ten thousand connection objects of a busy machine. Everything but
//! the connections is still written by serde, one value at a time.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

use crate::clock::rfc3339;
use crate::model::Connection;

/// Distinct seconds remembered by [`Compact::time`].
const TIMES: usize = 4;

/// Bytes gathered before they are handed to the writer.
const CHUNK: usize = 64 * 1024;

/// A buffer in front of `out`, with the state the connections share
/// (the last time written).
pub(super) struct Compact<W: Write> {
    out: W,
    pub(super) buf: Vec<u8>,
    /// Whole seconds since 1970 and their RFC 3339 text, the latest few:
    /// the connections of one snapshot share few distinct seconds (each
    /// writes two times, when it was first and last seen).
    times: [Option<(u64, String)>; TIMES],
    /// The slot the next new time goes into.
    next_time: usize,
}

impl<W: Write> Compact<W> {
    pub(super) fn new(out: W) -> Self {
        Compact {
            out,
            buf: Vec::with_capacity(CHUNK + 4096),
            times: Default::default(),
            next_time: 0,
        }
    }

    /// Hands what is gathered to the writer once there is enough.
    pub(super) fn maybe_flush(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= CHUNK {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    pub(super) fn finish(mut self) -> std::io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.out.flush()
    }

    /// `value` as serde_json writes it, compact.
    pub(super) fn value<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> serde_json::Result<()> {
        serde_json::to_writer(&mut self.buf, value)
    }

    /// `"name":` (names are the contract's: plain ASCII, no escaping).
    pub(super) fn key(&mut self, name: &str) {
        self.buf.push(b'"');
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    /// `,"name":` — a field after the first of its object.
    pub(super) fn next_key(&mut self, name: &str) {
        self.buf.push(b',');
        self.key(name);
    }

    /// `,"name":value`, the value as serde_json writes it.
    pub(super) fn field<T: serde::Serialize + ?Sized>(
        &mut self,
        name: &str,
        value: &T,
    ) -> serde_json::Result<()> {
        self.next_key(name);
        self.value(value)
    }

    /// A list of connections, `[{…},{…}]`.
    pub(super) fn connections(&mut self, conns: &[Connection]) -> std::io::Result<()> {
        self.buf.push(b'[');
        for (i, c) in conns.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.connection(c);
            self.maybe_flush()?;
        }
        self.buf.push(b']');
        Ok(())
    }

    /// One connection, field by field in `output::ConnectionOut`'s order.
    fn connection(&mut self, c: &Connection) {
        let info = c
            .remote
            .map(|r| crate::names::describe(r.ip()))
            .unwrap_or_default();
        let b = &mut self.buf;
        b.extend_from_slice(b"{\"pid\":");
        opt_u64(b, c.pid.map(u64::from));
        b.extend_from_slice(b",\"protocol\":");
        string(b, c.protocol.as_str());
        b.extend_from_slice(b",\"local\":");
        addr(b, &c.local);
        b.extend_from_slice(b",\"remote\":");
        match &c.remote {
            Some(r) => addr(b, r),
            None => null(b),
        }
        b.extend_from_slice(b",\"state\":");
        string(b, c.state.as_str());
        b.extend_from_slice(b",\"first_seen\":");
        self.time(c.first_seen);
        let b = &mut self.buf;
        b.extend_from_slice(b",\"last_seen\":");
        self.time(c.last_seen);
        let b = &mut self.buf;
        b.extend_from_slice(if c.live {
            b",\"live\":true"
        } else {
            b",\"live\":false"
        });
        b.extend_from_slice(b",\"remote_name\":");
        opt_string(b, c.remote_name.as_ref().map(|n| n.name.as_str()));
        b.extend_from_slice(b",\"remote_name_source\":");
        opt_string(b, c.remote_name.as_ref().map(|n| n.source.as_str()));
        b.extend_from_slice(b",\"remote_scope\":");
        opt_string(b, info.scope.map(|s| s.as_json()));
        b.extend_from_slice(b",\"remote_country\":");
        opt_string(b, info.geo.country.as_deref());
        b.extend_from_slice(b",\"remote_as\":");
        opt_u64(b, info.geo.asn.map(u64::from));
        b.extend_from_slice(b",\"remote_as_org\":");
        opt_string(b, info.geo.as_org.as_deref());
        b.extend_from_slice(b",\"bytes_sent\":");
        opt_u64(b, c.bytes_sent);
        b.extend_from_slice(b",\"bytes_received\":");
        opt_u64(b, c.bytes_received);
        if super::output::owner_exited(c) {
            b.extend_from_slice(b",\"owner_exited\":true");
        }
        b.push(b'}');
    }

    /// A time as `rfc3339` writes it (whole seconds).
    fn time(&mut self, t: SystemTime) {
        // Before 1970 (never, in practice) is left to `rfc3339` itself.
        let Ok(secs) = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
        else {
            string(&mut self.buf, &rfc3339(t));
            return;
        };
        if let Some((_, text)) = self.times.iter().flatten().find(|(s, _)| *s == secs) {
            string(&mut self.buf, text);
            return;
        }
        let text = rfc3339(t);
        string(&mut self.buf, &text);
        self.times[self.next_time] = Some((secs, text));
        self.next_time = (self.next_time + 1) % TIMES;
    }
}

fn null(b: &mut Vec<u8>) {
    b.extend_from_slice(b"null");
}

fn opt_u64(b: &mut Vec<u8>, n: Option<u64>) {
    match n {
        Some(n) => u64_dec(b, n),
        None => null(b),
    }
}

fn opt_string(b: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(b, s),
        None => null(b),
    }
}

/// A JSON string; anything serde_json would escape goes through serde_json.
fn string(b: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|c| c < 0x20 || c == b'"' || c == b'\\') {
        // Writing into a Vec cannot fail, nor can serializing a str.
        let _ = serde_json::to_writer(&mut *b, s);
        return;
    }
    b.push(b'"');
    b.extend_from_slice(s.as_bytes());
    b.push(b'"');
}

/// `n` in decimal (digits pushed one by one: most numbers here are a
/// few digits long, where a copy call costs more than the digits).
fn u64_dec(b: &mut Vec<u8>, mut n: u64) {
    let start = b.len();
    loop {
        b.push(b'0' + (n % 10) as u8);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    b[start..].reverse();
}

/// `"ip:port"` as `SocketAddr`'s `Display` writes it: IPv4 by hand,
/// IPv6 (rarer, with its shortening rules) through `Display`.
fn addr(b: &mut Vec<u8>, a: &SocketAddr) {
    b.push(b'"');
    match a.ip() {
        IpAddr::V4(ip) => {
            let [o1, o2, o3, o4] = ip.octets();
            u64_dec(b, u64::from(o1));
            b.push(b'.');
            u64_dec(b, u64::from(o2));
            b.push(b'.');
            u64_dec(b, u64::from(o3));
            b.push(b'.');
            u64_dec(b, u64::from(o4));
            b.push(b':');
            u64_dec(b, u64::from(a.port()));
        }
        IpAddr::V6(_) => {
            // Writing into a Vec cannot fail.
            let _ = write!(b, "{a}");
        }
    }
    b.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via_serde<T: serde::Serialize + ?Sized>(v: &T) -> Vec<u8> {
        serde_json::to_vec(v).unwrap()
    }

    #[test]
    fn strings_match_serde_json() {
        let tricky = [
            "",
            "plain",
            "a\"b",
            "back\\slash",
            "\n\r\t\u{8}\u{c}",
            "\u{0}\u{1}\u{1f}\u{7f}",
            "evil\n\x1b[2J\u{202E}gpj.exe",
            "日本語\u{2028}\u{2029}",
            // How `escape::os_lossless` writes a non-UTF-8 path.
            &crate::escape::bytes_lossless(b"/tmp/\xff\xfe\x80name"),
            "/tmp/x\\xFFy",
        ];
        for s in tricky {
            let mut b = Vec::new();
            string(&mut b, s);
            assert_eq!(b, via_serde(s), "{s:?}");
        }
    }

    #[test]
    fn numbers_match_serde_json() {
        for n in [0u64, 1, 9, 10, 99, 100, 65535, 4_294_967_295, u64::MAX] {
            let mut b = Vec::new();
            u64_dec(&mut b, n);
            assert_eq!(b, via_serde(&n));
        }
    }

    #[test]
    fn addresses_match_display() {
        let addrs = [
            "0.0.0.0:0",
            "127.0.0.1:8080",
            "255.255.255.255:65535",
            "10.20.30.40:1",
            "[::]:0",
            "[::1]:443",
            "[fe80::1%2]:22",
            "[2001:db8::ff00:42:8329]:53",
            "[::ffff:192.0.2.1]:80",
        ];
        for a in addrs {
            let a: SocketAddr = a.parse().unwrap();
            let mut b = Vec::new();
            addr(&mut b, &a);
            assert_eq!(b, via_serde(&a.to_string()), "{a}");
        }
    }
}
