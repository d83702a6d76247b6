//! Property tests: any bytes on the wire — random, or a valid DNS answer,
//! TLS ClientHello or HTTP request cut short or with bytes flipped — go
//! through the name readers without a panic, and every name that comes out
//! is a plain host name (no control characters, spaces or markup that
//! could reach the window, the journal or a report).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use kizuki::names::packet::{Observation, PacketReader};
use kizuki::names::{dns, host::clean_host, http_host, sni};
use proptest::prelude::*;

fn plain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        && clean_host(name).as_deref() == Some(name)
}

fn dns_answer() -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
    for l in ["board", "example", "jp"] {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 9]);
    m
}

fn client_hello() -> Vec<u8> {
    let name = b"board.example.jp";
    let n = name.len() as u16;
    let mut ext = vec![0, 0];
    ext.extend_from_slice(&(n + 5).to_be_bytes());
    ext.extend_from_slice(&(n + 3).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&n.to_be_bytes());
    ext.extend_from_slice(name);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[1; 32]);
    body.extend_from_slice(&[0, 0, 2, 0x13, 1, 1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

fn ipv4_tcp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(data);
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&((20 + t.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 9]);
    p.extend_from_slice(&t);
    p
}

/// A valid input with some bytes replaced and cut at some length.
fn mangled(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    (prop::collection::vec((0..len, any::<u8>()), 0..6), 0..=len).prop_map(move |(flips, cut)| {
        let mut v = base.clone();
        for (i, b) in flips {
            v[i] = b;
        }
        v.truncate(cut);
        v
    })
}

fn check_observation(o: Option<Observation>) {
    match o {
        Some(Observation::Dns { answers, .. }) => {
            for a in answers {
                assert!(plain(&a.name), "{:?}", a.name);
            }
        }
        Some(Observation::Flow { name, .. }) => assert!(plain(&name), "{name:?}"),
        None => {}
    }
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Some(v) = dns::parse_response(&b) {
            for a in v { prop_assert!(plain(&a.name)); }
        }
        if let sni::Hello::Done(Some(n)) = sni::client_hello(&b) { prop_assert!(plain(&n)); }
        if let Some(n) = http_host::host(&b) { prop_assert!(plain(&n)); }
        let mut r = PacketReader::new();
        check_observation(r.read(&b, now()));
    }

    #[test]
    fn mangled_dns_answers(b in mangled(dns_answer())) {
        if let Some(v) = dns::parse_response(&b) {
            for a in v { prop_assert!(plain(&a.name)); }
        }
    }

    #[test]
    fn mangled_client_hellos(b in mangled(client_hello())) {
        if let sni::Hello::Done(Some(n)) = sni::client_hello(&b) { prop_assert!(plain(&n)); }
        let mut r = PacketReader::new();
        check_observation(r.read(&ipv4_tcp(40000, 443, &b), now()));
    }

    #[test]
    fn mangled_packets(b in mangled(ipv4_tcp(40000, 443, &client_hello()))) {
        let mut r = PacketReader::new();
        check_observation(r.read(&b, now()));
        check_observation(r.read(&b, now()));
    }

    #[test]
    fn hostile_geo_data_is_an_error_not_a_panic(b in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut body = b"KZGEO1\n".to_vec();
        body.extend_from_slice(&b);
        let packed = miniz_oxide::deflate::compress_to_vec_zlib(&body, 1);
        if let Ok(db) = kizuki::names::geo::GeoDb::parse(&packed) {
            let _ = db.lookup("203.0.113.7".parse().unwrap());
            let _ = db.lookup("2001:db8::1".parse().unwrap());
        }
        let _ = kizuki::names::geo::GeoDb::parse(&b);
    }

    #[test]
    fn any_host_header(value in "\\PC{0,80}") {
        let req = format!("GET / HTTP/1.1\r\nHost: {value}\r\n\r\n");
        if let Some(n) = http_host::host(req.as_bytes()) { prop_assert!(plain(&n)); }
    }
}

#[test]
fn the_valid_inputs_are_read() {
    assert_eq!(
        dns::parse_response(&dns_answer()).unwrap()[0].name,
        "board.example.jp"
    );
    assert_eq!(
        sni::client_hello(&client_hello()),
        sni::Hello::Done(Some("board.example.jp".into()))
    );
}
