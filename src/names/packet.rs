//! What one IP packet tells about names: a DNS answer (UDP or TCP from
//! port 53), or the first bytes of a TCP connection carrying a TLS server
//! name or an HTTP Host. Pure parsing over bytes handed in by the OS part
//! (`capture`), so it is tested on fixed and hostile byte vectors.
//!
//! A ClientHello split over several segments (large post-quantum hellos
//! are) is joined for a few seconds, in order, within fixed bounds.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use super::cache::NameSource;
use super::dns::{DnsAnswer, parse_response};
use super::http_host::host;
use super::sni::{Hello, MAX_RECORD, client_hello};

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const DNS_PORT: u16 = 53;
/// Connections whose ClientHello is being joined.
const MAX_PENDING: usize = 256;
const PENDING_FOR: Duration = Duration::from_secs(10);

/// A fact about names seen in one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// A DNS server answered `client` (the asking socket).
    Dns {
        client: SocketAddr,
        answers: Vec<DnsAnswer>,
    },
    /// The connection `local` → `remote` sent a name.
    Flow {
        local: SocketAddr,
        remote: SocketAddr,
        name: String,
        source: NameSource,
    },
}

struct Ip<'a> {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload: &'a [u8],
}

fn ip_packet(p: &[u8]) -> Option<Ip<'_>> {
    match p.first()? >> 4 {
        4 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([*p.get(2)?, *p.get(3)?]));
            let frag = u16::from_be_bytes([*p.get(6)?, *p.get(7)?]);
            // Later fragments carry no transport header; a first fragment
            // (more-fragments set) is read for what it holds.
            if frag & 0x1fff != 0 || ihl < 20 || total < ihl {
                return None;
            }
            let src: [u8; 4] = p.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = p.get(16..20)?.try_into().ok()?;
            Some(Ip {
                src: IpAddr::V4(Ipv4Addr::from(src)),
                dst: IpAddr::V4(Ipv4Addr::from(dst)),
                proto: *p.get(9)?,
                payload: p.get(ihl..total.min(p.len()))?,
            })
        }
        6 => {
            let len = usize::from(u16::from_be_bytes([*p.get(4)?, *p.get(5)?]));
            let src: [u8; 16] = p.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = p.get(24..40)?.try_into().ok()?;
            Some(Ip {
                src: IpAddr::V6(Ipv6Addr::from(src)),
                dst: IpAddr::V6(Ipv6Addr::from(dst)),
                // Extension headers are not walked: DNS, TLS and HTTP
                // packets do not carry them in practice.
                proto: *p.get(6)?,
                payload: p.get(40..(40 + len).min(p.len()))?,
            })
        }
        _ => None,
    }
}

fn port_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

#[derive(Debug)]
struct Pending {
    data: Vec<u8>,
    first_seq: u32,
    next_seq: u32,
    want: usize,
    since: SystemTime,
}

/// Reads packets one by one, keeping the few half-seen ClientHellos.
#[derive(Debug, Default)]
pub struct PacketReader {
    pending: HashMap<(SocketAddr, SocketAddr), Pending>,
}

impl PacketReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// What `packet` (starting at its IP header) tells, seen at `now`.
    pub fn read(&mut self, packet: &[u8], now: SystemTime) -> Option<Observation> {
        let ip = ip_packet(packet)?;
        match ip.proto {
            PROTO_UDP => {
                let (sp, dp) = (port_at(ip.payload, 0)?, port_at(ip.payload, 2)?);
                if sp != DNS_PORT {
                    return None;
                }
                let answers = parse_response(ip.payload.get(8..)?)?;
                (!answers.is_empty()).then(|| Observation::Dns {
                    client: SocketAddr::new(ip.dst, dp),
                    answers,
                })
            }
            PROTO_TCP => self.tcp(&ip, now),
            _ => None,
        }
    }

    fn tcp(&mut self, ip: &Ip<'_>, now: SystemTime) -> Option<Observation> {
        let t = ip.payload;
        let (sp, dp) = (port_at(t, 0)?, port_at(t, 2)?);
        let seq = u32::from_be_bytes(t.get(4..8)?.try_into().ok()?);
        let off = usize::from(t.get(12)? >> 4) * 4;
        if off < 20 {
            return None;
        }
        let data = t.get(off..)?;
        if data.is_empty() {
            return None;
        }
        let local = SocketAddr::new(ip.src, sp);
        let remote = SocketAddr::new(ip.dst, dp);
        if sp == DNS_PORT {
            // One whole message in one segment; longer answers are let go.
            let len = usize::from(port_at(data, 0)?);
            let answers = parse_response(data.get(2..2 + len)?)?;
            return (!answers.is_empty()).then_some(Observation::Dns {
                client: remote,
                answers,
            });
        }
        if dp == DNS_PORT {
            return None;
        }
        let key = (local, remote);
        if let Some(p) = self.pending.get_mut(&key) {
            if seq == p.first_seq || seq != p.next_seq {
                return None; // a repeat (loopback shows each packet twice) or out of order
            }
            p.data.extend_from_slice(data);
            p.next_seq = seq.wrapping_add(data.len() as u32);
            if p.data.len() < p.want && p.data.len() < MAX_RECORD + 5 {
                return None;
            }
            let joined = self.pending.remove(&key)?.data;
            return sni_of(&joined, local, remote);
        }
        match client_hello(data) {
            Hello::Done(_) => sni_of(data, local, remote),
            Hello::Partial(want) => {
                self.pending
                    .retain(|_, p| now.duration_since(p.since).unwrap_or_default() < PENDING_FOR);
                if self.pending.len() < MAX_PENDING {
                    self.pending.insert(
                        key,
                        Pending {
                            data: data.to_vec(),
                            first_seq: seq,
                            next_seq: seq.wrapping_add(data.len() as u32),
                            want,
                            since: now,
                        },
                    );
                }
                None
            }
            Hello::No => host(data).map(|name| Observation::Flow {
                local,
                remote,
                name,
                source: NameSource::Http,
            }),
        }
    }
}

fn sni_of(data: &[u8], local: SocketAddr, remote: SocketAddr) -> Option<Observation> {
    match client_hello(data) {
        Hello::Done(Some(name)) => Some(Observation::Flow {
            local,
            remote,
            name,
            source: NameSource::Sni,
        }),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::names::dns::tests::response;
    use crate::names::sni::tests::hello;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn v4(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
        let total = (20 + l4.len()) as u16;
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(l4);
        p
    }

    fn v6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        p.extend_from_slice(&[proto, 64]);
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(l4);
        p
    }

    fn udp(sp: u16, dp: u16, data: &[u8]) -> Vec<u8> {
        let mut u = Vec::new();
        u.extend_from_slice(&sp.to_be_bytes());
        u.extend_from_slice(&dp.to_be_bytes());
        u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(data);
        u
    }

    pub(crate) fn tcp(sp: u16, dp: u16, seq: u32, data: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(&sp.to_be_bytes());
        t.extend_from_slice(&dp.to_be_bytes());
        t.extend_from_slice(&seq.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        t.extend_from_slice(data);
        t
    }

    #[test]
    fn a_udp_dns_answer_names_the_address_for_the_asker() {
        let ans: IpAddr = "127.0.0.9".parse().unwrap();
        let pkt = v4(
            [127, 0, 0, 53],
            [127, 0, 0, 1],
            PROTO_UDP,
            &udp(53, 41000, &response("board.example.jp", &[ans])),
        );
        let Some(Observation::Dns { client, answers }) = PacketReader::new().read(&pkt, now())
        else {
            panic!("no answer read");
        };
        assert_eq!(client, "127.0.0.1:41000".parse().unwrap());
        assert_eq!(answers[0].name, "board.example.jp");
        assert_eq!(answers[0].addr, ans);
    }

    #[test]
    fn a_tcp_dns_answer_over_ipv6() {
        let ans: IpAddr = "2001:db8::7".parse().unwrap();
        let msg = response("board.example.jp", &[ans]);
        let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&msg);
        let pkt = v6(
            Ipv6Addr::LOCALHOST,
            Ipv6Addr::LOCALHOST,
            PROTO_TCP,
            &tcp(53, 41001, 1, &framed),
        );
        let obs = PacketReader::new().read(&pkt, now());
        assert!(
            matches!(obs, Some(Observation::Dns { ref answers, .. }) if answers[0].addr == ans)
        );
    }

    #[test]
    fn sni_in_one_or_two_segments_and_http_host() {
        let mut r = PacketReader::new();
        let one = v4(
            [10, 0, 0, 2],
            [203, 0, 113, 7],
            PROTO_TCP,
            &tcp(40000, 443, 100, &hello("board.example.jp", 0)),
        );
        assert_eq!(
            r.read(&one, now()),
            Some(Observation::Flow {
                local: "10.0.0.2:40000".parse().unwrap(),
                remote: "203.0.113.7:443".parse().unwrap(),
                name: "board.example.jp".into(),
                source: NameSource::Sni,
            })
        );
        let big = hello("big.example.jp", 2000);
        let (a, b) = big.split_at(1400);
        let p1 = v4(
            [10, 0, 0, 2],
            [203, 0, 113, 7],
            PROTO_TCP,
            &tcp(40001, 443, 5, a),
        );
        let p2 = v4(
            [10, 0, 0, 2],
            [203, 0, 113, 7],
            PROTO_TCP,
            &tcp(40001, 443, 1405, b),
        );
        assert_eq!(r.read(&p1, now()), None);
        assert_eq!(r.read(&p1, now()), None, "loopback repeat");
        let got = r.read(&p2, now());
        assert!(
            matches!(got, Some(Observation::Flow { ref name, .. }) if name == "big.example.jp"),
            "{got:?}"
        );

        let get = v4(
            [10, 0, 0, 2],
            [203, 0, 113, 8],
            PROTO_TCP,
            &tcp(
                40002,
                80,
                9,
                b"GET / HTTP/1.1\r\nHost: web.example.jp\r\n\r\n",
            ),
        );
        assert!(matches!(
            r.read(&get, now()),
            Some(Observation::Flow {
                source: NameSource::Http,
                ..
            })
        ));
    }

    #[test]
    fn queries_and_other_traffic_are_ignored() {
        let mut r = PacketReader::new();
        let q = v4(
            [127, 0, 0, 1],
            [127, 0, 0, 53],
            PROTO_UDP,
            &udp(41000, 53, b"\x12\x34\x01\x00"),
        );
        assert_eq!(r.read(&q, now()), None);
        let ssh = v4(
            [10, 0, 0, 2],
            [10, 0, 0, 3],
            PROTO_TCP,
            &tcp(40000, 22, 1, b"SSH-2.0-OpenSSH\r\n"),
        );
        assert_eq!(r.read(&ssh, now()), None);
        let icmp = v4([10, 0, 0, 2], [10, 0, 0, 3], 1, &[8, 0, 0, 0]);
        assert_eq!(r.read(&icmp, now()), None);
        assert_eq!(r.read(&[], now()), None);
        assert_eq!(r.read(&[0x45], now()), None);
    }

    #[test]
    fn half_hellos_stay_bounded() {
        let mut r = PacketReader::new();
        let big = hello("big.example.jp", 3000);
        for port in 0..(MAX_PENDING as u16 * 2) {
            let p = v4(
                [10, 0, 0, 2],
                [203, 0, 113, 7],
                PROTO_TCP,
                &tcp(port, 443, 1, &big[..100]),
            );
            r.read(&p, now());
        }
        assert!(r.pending.len() <= MAX_PENDING);
    }
}
