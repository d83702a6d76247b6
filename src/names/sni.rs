//! The server name (SNI) a program puts in its TLS ClientHello: the name
//! of the site it meant to reach, sent in the clear before encryption
//! starts. Bounds-checked; hostile bytes give `None`, never a panic.

use super::host::clean_host;

const HANDSHAKE: u8 = 0x16;
const CLIENT_HELLO: u8 = 0x01;
const EXT_SERVER_NAME: u16 = 0;
/// The largest TLS record (2^14 plus room for expansion).
pub const MAX_RECORD: usize = 16_384 + 2048;

/// How a connection's first bytes look to the SNI reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello {
    /// Not a TLS ClientHello.
    No,
    /// A ClientHello that continues in later segments: this many bytes in all.
    Partial(usize),
    /// A complete ClientHello, and its server name if it has a valid one.
    Done(Option<String>),
}

struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.b.len() {
            return None;
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Some(h)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        let b = self.take(3)?;
        Some(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
}

/// Reads a connection's first bytes (possibly several segments joined).
pub fn client_hello(data: &[u8]) -> Hello {
    let mut c = Cursor { b: data };
    let (Some(HANDSHAKE), Some(major), Some(_minor), Some(len)) = (c.u8(), c.u8(), c.u8(), c.u16())
    else {
        return if data.len() < 5 && data.first().is_some_and(|b| *b == HANDSHAKE) {
            Hello::Partial(5)
        } else {
            Hello::No
        };
    };
    let len = usize::from(len);
    if major != 3 || !(4..=MAX_RECORD).contains(&len) {
        return Hello::No;
    }
    if data.len() < 5 + len {
        // The type must already be a ClientHello to be worth waiting for.
        return match c.b.first() {
            Some(&CLIENT_HELLO) | None => Hello::Partial(5 + len),
            Some(_) => Hello::No,
        };
    }
    let Some(record) = c.take(len) else {
        return Hello::No;
    };
    match server_name(record) {
        Some(found) => Hello::Done(found),
        None => Hello::No,
    }
}

/// `None`: not a readable ClientHello. `Some(None)`: one without a valid
/// server name.
fn server_name(record: &[u8]) -> Option<Option<String>> {
    let mut c = Cursor { b: record };
    if c.u8()? != CLIENT_HELLO {
        return None;
    }
    let body_len = c.u24()?;
    // A hello longer than one record is cut here; read what is there.
    let mut h = Cursor {
        b: c.take(body_len.min(c.b.len()))?,
    };
    h.take(2 + 32)?; // version, random
    h.vec8()?; // session id
    h.vec16()?; // cipher suites
    h.vec8()?; // compression methods
    let Some(exts) = h.vec16() else {
        return Some(None);
    };
    let mut e = Cursor { b: exts };
    while !e.b.is_empty() {
        let ty = e.u16()?;
        let data = e.vec16()?;
        if ty != EXT_SERVER_NAME {
            continue;
        }
        let mut s = Cursor { b: data };
        let mut list = Cursor { b: s.vec16()? };
        while !list.b.is_empty() {
            let kind = list.u8()?;
            let name = list.vec16()?;
            if kind == 0 {
                let name = std::str::from_utf8(name).ok();
                return Some(name.and_then(clean_host));
            }
        }
        return Some(None);
    }
    Some(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal TLS 1.2/1.3 ClientHello carrying `name` (after one other
    /// extension, as browsers order them), padded to `pad` extra bytes.
    pub(crate) fn hello(name: &str, pad: usize) -> Vec<u8> {
        let mut exts = Vec::new();
        // supported_groups first
        exts.extend_from_slice(&[0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1d]);
        let n = name.len() as u16;
        exts.extend_from_slice(&[0x00, 0x00]);
        exts.extend_from_slice(&(n + 5).to_be_bytes());
        exts.extend_from_slice(&(n + 3).to_be_bytes());
        exts.push(0);
        exts.extend_from_slice(&n.to_be_bytes());
        exts.extend_from_slice(name.as_bytes());
        // padding extension
        exts.extend_from_slice(&[0x00, 0x15]);
        exts.extend_from_slice(&(pad as u16).to_be_bytes());
        exts.extend(std::iter::repeat_n(0u8, pad));
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7u8; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0x00, 0x02, 0x13, 0x01]); // one cipher suite
        body.extend_from_slice(&[0x01, 0x00]); // null compression
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut hs = vec![CLIENT_HELLO];
        let bl = body.len() as u32;
        hs.extend_from_slice(&bl.to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        let mut rec = vec![HANDSHAKE, 0x03, 0x01];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn reads_the_server_name() {
        assert_eq!(
            client_hello(&hello("Board.Example.jp", 0)),
            Hello::Done(Some("board.example.jp".into()))
        );
    }

    #[test]
    fn a_hello_in_two_segments_waits_for_the_rest() {
        let h = hello("board.example.jp", 1500);
        assert_eq!(client_hello(&h[..1200]), Hello::Partial(h.len()));
        assert_eq!(client_hello(&h[..3]), Hello::Partial(5));
        assert_eq!(
            client_hello(&h),
            Hello::Done(Some("board.example.jp".into()))
        );
    }

    #[test]
    fn other_traffic_and_hostile_names() {
        assert_eq!(client_hello(b"GET / HTTP/1.1\r\n"), Hello::No);
        assert_eq!(client_hello(&[]), Hello::No);
        assert_eq!(client_hello(&hello("evil\u{1b}[2J", 0)), Hello::Done(None));
        assert_eq!(client_hello(&hello("203.0.113.7", 0)), Hello::Done(None));
        let mut server_hello = hello("x.example", 0);
        server_hello[5] = 0x02;
        assert_eq!(client_hello(&server_hello), Hello::No);
        let h = hello("board.example.jp", 0);
        let mut lying = h.clone();
        lying[9] = 0xff; // handshake length beyond the record
        let _ = client_hello(&lying);
    }
}
