//! DNS answers as they pass on the wire: which addresses a name was given.
//!
//! Only responses are read, only A and AAAA records count, and the name
//! reported is the one that was asked (the question), not a CDN's CNAME
//! target: that is the name the program meant. Everything is bounds-checked;
//! hostile packets give `None` or fewer answers, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::host::clean_host;

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
/// Compression pointers followed per name before giving up (loops).
const MAX_JUMPS: usize = 16;
/// Answers read from one message.
const MAX_ANSWERS: usize = 64;

/// One address given for a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsAnswer {
    pub name: String,
    pub addr: IpAddr,
    pub ttl: u32,
}

fn u16_at(m: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*m.get(i)?, *m.get(i + 1)?]))
}

fn u32_at(m: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *m.get(i)?,
        *m.get(i + 1)?,
        *m.get(i + 2)?,
        *m.get(i + 3)?,
    ]))
}

/// Reads the name at `start`; returns it (dotted, as raw text) and the
/// offset just after it in the message.
fn read_name(m: &[u8], start: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut pos = start;
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *m.get(pos)?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Some((out, end.unwrap_or(pos + 1)));
                }
                let label = m.get(pos + 1..pos + 1 + usize::from(len))?;
                if !out.is_empty() {
                    out.push('.');
                }
                // Non-ASCII bytes make the name invalid later; keep them
                // visible here as replacement characters.
                out.push_str(&String::from_utf8_lossy(label));
                if out.len() > 255 {
                    return None;
                }
                pos += 1 + usize::from(len);
            }
            0xc0 => {
                let target = usize::from(u16_at(m, pos)? & 0x3fff);
                end.get_or_insert(pos + 2);
                jumps += 1;
                if jumps > MAX_JUMPS || target >= m.len() {
                    return None;
                }
                pos = target;
            }
            _ => return None,
        }
    }
}

/// The A/AAAA answers of a DNS response message (UDP payload, or a TCP
/// message without its two-byte length). `None` when it is not a
/// successful response or cannot be read.
pub fn parse_response(m: &[u8]) -> Option<Vec<DnsAnswer>> {
    let flags = u16_at(m, 2)?;
    let is_response = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0x0f;
    let rcode = flags & 0x000f;
    if !is_response || opcode != 0 || rcode != 0 {
        return None;
    }
    let qd = u16_at(m, 4)?;
    let an = u16_at(m, 6)?;
    if qd != 1 || an == 0 {
        return None;
    }
    let (qname, mut pos) = read_name(m, 12)?;
    let qname = clean_host(&qname)?;
    pos = pos.checked_add(4)?; // qtype, qclass
    if pos > m.len() {
        return None;
    }
    let mut out = Vec::new();
    for _ in 0..usize::from(an).min(MAX_ANSWERS) {
        let (_owner, p) = read_name(m, pos)?;
        let rtype = u16_at(m, p)?;
        let class = u16_at(m, p + 2)?;
        let ttl = u32_at(m, p + 4)?;
        let rdlen = usize::from(u16_at(m, p + 8)?);
        let rdata = m.get(p + 10..p + 10 + rdlen)?;
        pos = p + 10 + rdlen;
        if class != CLASS_IN {
            continue;
        }
        let addr = match (rtype, rdata.len()) {
            (TYPE_A, 4) => IpAddr::V4(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])),
            (TYPE_AAAA, 16) => {
                let mut b = [0u8; 16];
                b.copy_from_slice(rdata);
                IpAddr::V6(Ipv6Addr::from(b))
            }
            _ => continue,
        };
        out.push(DnsAnswer {
            name: qname.clone(),
            addr,
            ttl,
        });
    }
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A response for `name` with the given A/AAAA addresses, the first
    /// answer through a CNAME, as a resolver sends it.
    pub(crate) fn response(name: &str, addrs: &[IpAddr]) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
        let an = u16::try_from(addrs.len() + 1).unwrap().to_be_bytes();
        m[6] = an[0];
        m[7] = an[1];
        for label in name.split('.') {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&[0, 1, 0, 1]);
        // CNAME: name -> cdn.<name>
        m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60]);
        let cname_at = m.len() + 2;
        m.extend_from_slice(&[0, 6, 3, b'c', b'd', b'n', 0xc0, 12]);
        for a in addrs {
            m.extend_from_slice(&[0xc0, cname_at as u8]);
            match a {
                IpAddr::V4(v4) => {
                    m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 1, 0, 0, 4]);
                    m.extend_from_slice(&v4.octets());
                }
                IpAddr::V6(v6) => {
                    m.extend_from_slice(&[0, 28, 0, 1, 0, 0, 1, 0, 0, 16]);
                    m.extend_from_slice(&v6.octets());
                }
            }
        }
        m
    }

    #[test]
    fn reads_a_and_aaaa_under_the_asked_name() {
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let b: IpAddr = "2001:db8::7".parse().unwrap();
        let got = parse_response(&response("Board.Example.jp", &[a, b])).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name, "board.example.jp");
        assert_eq!(got[0].addr, a);
        assert_eq!(got[0].ttl, 256);
        assert_eq!(got[1].addr, b);
    }

    #[test]
    fn queries_errors_and_junk_give_nothing() {
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let good = response("board.example.jp", &[a]);
        let mut query = good.clone();
        query[2] = 0x01; // QR clear
        assert_eq!(parse_response(&query), None);
        let mut nxdomain = good.clone();
        nxdomain[3] = 0x83;
        assert_eq!(parse_response(&nxdomain), None);
        assert_eq!(parse_response(&[]), None);
        assert_eq!(parse_response(&good[..11]), None);
        for cut in 12..good.len() {
            // Truncated: no panic, and never an address that was cut.
            if let Some(v) = parse_response(&good[..cut]) {
                assert!(v.is_empty(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn compression_loops_and_bad_names_are_refused() {
        let mut m = vec![0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 12]); // points at itself
        m.extend_from_slice(&[0, 1, 0, 1]);
        assert_eq!(parse_response(&m), None);
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        for bad in [
            "evil\u{1b}[2J.example",
            "a b.example",
            "nul\u{0}byte.example",
        ] {
            let mut r = response("placeholder.example", &[a]);
            // Rebuild with a hostile label.
            r.truncate(12);
            for label in bad.split('.') {
                r.push(label.len() as u8);
                r.extend_from_slice(label.as_bytes());
            }
            r.extend_from_slice(&[0, 0, 1, 0, 1]);
            assert_eq!(parse_response(&r), None, "{bad:?}");
        }
    }
}
