//! systemd-resolved's query monitor. A program that resolves through
//! resolved (glibc's nss-resolve on Ubuntu, D-Bus, varlink) sends no DNS
//! packet kizuki's packet reader could see, so resolved is asked instead:
//! as root, kizuki subscribes to its `io.systemd.Resolve.Monitor` varlink
//! socket and reads every answered query. It only reads: the one message
//! it writes is the subscription, and nothing goes to the network.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::clock::Clock;
use crate::names::cache::NameCache;
use crate::names::host::clean_host;

/// Where resolved listens for monitors (root only).
pub const SOCKET: &str = "/run/systemd/resolve/io.systemd.Resolve.Monitor";
/// A message longer than this is not an answer kizuki wants: dropped.
const MAX_MESSAGE: usize = 1 << 20;
/// Addresses kept from one answer.
const MAX_ADDRESSES: usize = 64;
const READ_TIMEOUT: Duration = Duration::from_millis(250);
/// How long to wait before connecting again when resolved is not running
/// (or restarted).
const RETRY: Duration = Duration::from_secs(30);
const SUBSCRIBE: &[u8] =
    b"{\"method\":\"io.systemd.Resolve.Monitor.SubscribeQueryResults\",\"more\":true}\0";

const TYPE_A: u64 = 1;
const TYPE_AAAA: u64 = 28;

/// The addresses one monitor message gave, each with the name the program
/// asked for (the question, not the end of a CNAME chain: that is the name
/// the user would recognise). Anything else, or anything malformed, gives
/// nothing.
pub fn answers(message: &[u8]) -> Vec<(IpAddr, String)> {
    let Ok(v) = serde_json::from_slice::<Value>(message) else {
        return Vec::new();
    };
    let p = &v["parameters"];
    if p["state"].as_str() != Some("success") {
        return Vec::new();
    }
    let asked = p["question"]
        .as_array()
        .and_then(|q| q.first())
        .and_then(|k| k["name"].as_str())
        .and_then(clean_host);
    let Some(list) = p["answer"].as_array() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for a in list.iter().take(MAX_ADDRESSES) {
        let rr = &a["rr"];
        let Some(ip) = address(rr) else { continue };
        let name = asked
            .clone()
            .or_else(|| rr["key"]["name"].as_str().and_then(clean_host));
        if let Some(name) = name {
            out.push((ip, name));
        }
    }
    out
}

/// An A or AAAA record's address (resolved gives it as an array of bytes).
fn address(rr: &Value) -> Option<IpAddr> {
    let kind = rr["key"]["type"].as_u64()?;
    let bytes: Vec<u8> = rr["address"]
        .as_array()?
        .iter()
        .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
        .collect::<Option<_>>()?;
    match (kind, bytes.len()) {
        (TYPE_A, 4) => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        (TYPE_AAAA, 16) => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&bytes);
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// Reads resolved's answers into the cache on a named thread until
/// dropped; reconnects when resolved restarts.
pub struct Monitor {
    stop: Arc<AtomicBool>,
    _thread: JoinHandle<()>,
}

impl Monitor {
    pub fn start(
        socket: PathBuf,
        cache: Arc<NameCache>,
        clock: Arc<dyn Clock>,
    ) -> std::io::Result<Monitor> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kizuki-resolved".into())
            .spawn(move || {
                let mut said = false;
                while !flag.load(Ordering::Relaxed) {
                    match follow(&socket, &cache, clock.as_ref(), &flag) {
                        Ok(()) => {}
                        Err(e) if !said => {
                            log::info!("systemd-resolved's monitor not read: {e}");
                            said = true;
                        }
                        Err(_) => {}
                    }
                    let until = Instant::now() + RETRY;
                    while Instant::now() < until && !flag.load(Ordering::Relaxed) {
                        std::thread::sleep(READ_TIMEOUT);
                    }
                }
            })?;
        Ok(Monitor {
            stop,
            _thread: thread,
        })
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One connection: subscribe, then read NUL-ended messages until resolved
/// goes away or kizuki stops.
fn follow(
    socket: &std::path::Path,
    cache: &NameCache,
    clock: &dyn Clock,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(READ_TIMEOUT))?;
    s.write_all(SUBSCRIBE)?;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 65_536];
    let mut skipping = false;
    while !stop.load(Ordering::Relaxed) {
        let n = match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if super::read_again(&e) => {
                continue;
            }
            Err(e) => return Err(e),
        };
        for chunk in buf[..n].split_inclusive(|b| *b == 0) {
            let end = chunk.last() == Some(&0);
            let body = chunk.strip_suffix(&[0]).unwrap_or(chunk);
            if !skipping {
                pending.extend_from_slice(body);
                if pending.len() > MAX_MESSAGE {
                    // Too long to be an answer: drop it up to its end.
                    pending.clear();
                    skipping = true;
                }
            }
            if end {
                if !skipping {
                    let now = clock.now();
                    for (ip, name) in answers(&pending) {
                        cache.record_dns(ip, &name, None, now);
                    }
                }
                pending.clear();
                skipping = false;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;
    use crate::clock::FakeClock;

    const ANSWER: &str = r#"{"parameters":{"state":"success","rcode":0,
        "question":[{"class":1,"type":1,"name":"Board.Example.JP"}],
        "answer":[
          {"rr":{"key":{"class":1,"type":5,"name":"board.example.jp"},"name":"cdn.example.net"},"raw":""},
          {"rr":{"key":{"class":1,"type":1,"name":"cdn.example.net"},"address":[203,0,113,7]},"raw":"","ifindex":2},
          {"rr":{"key":{"class":1,"type":28,"name":"cdn.example.net"},
                 "address":[32,1,13,184,0,0,0,0,0,0,0,0,0,0,0,1]},"raw":""}]}}"#;

    #[test]
    fn answers_carry_the_name_the_program_asked_for() {
        let got = answers(ANSWER.as_bytes());
        assert_eq!(
            got,
            vec![
                (
                    "203.0.113.7".parse().unwrap(),
                    "board.example.jp".to_owned()
                ),
                (
                    "2001:db8::1".parse().unwrap(),
                    "board.example.jp".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn failures_junk_and_hostile_names_give_nothing() {
        for bad in [
            r#"{"parameters":{"state":"errno","question":[{"name":"a.jp","type":1,"class":1}]}}"#,
            r#"{"parameters":{"ready":true}}"#,
            "not json",
            r#"{"parameters":{"state":"success","answer":[{"rr":{"key":{"type":1,"name":"a.jp"},"address":[1,2,3]}}]}}"#,
            r#"{"parameters":{"state":"success","answer":[{"rr":{"key":{"type":1,"name":"a.jp"},"address":[1,2,3,999]}}]}}"#,
            r#"{"parameters":{"state":"success","answer":[{"rr":{"key":{"type":1,"name":"evil\u001b[31m.jp"},"address":[1,2,3,4]}}]}}"#,
        ] {
            assert!(answers(bad.as_bytes()).is_empty(), "{bad}");
        }
    }

    /// A stand-in for resolved on a socket in a temporary folder: the
    /// monitor subscribes, and the answer it sends lands in the cache.
    #[test]
    fn a_subscribed_monitor_fills_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("monitor");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut b = [0u8; 1];
            while c.read(&mut b).unwrap() == 1 && b[0] != 0 {
                got.push(b[0]);
            }
            c.write_all(b"{\"parameters\":{\"ready\":true}}\0").unwrap();
            // One answer split across writes, as a stream may deliver it.
            let (a, z) = ANSWER.as_bytes().split_at(40);
            c.write_all(a).unwrap();
            c.write_all(z).unwrap();
            c.write_all(b"\0").unwrap();
            String::from_utf8(got).unwrap()
        });
        let cache = Arc::new(NameCache::new());
        let clock = Arc::new(FakeClock::at_noon());
        let now = clock.now();
        let _m = Monitor::start(path, cache.clone(), clock).unwrap();
        let asked = server.join().unwrap();
        assert!(asked.contains("SubscribeQueryResults"), "{asked}");
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while cache.is_empty() && Instant::now() < deadline {
            std::thread::yield_now();
        }
        let local = "10.0.0.2:40000".parse().unwrap();
        let best = cache.best(local, std::net::SocketAddr::new(ip, 443), None, now);
        assert_eq!(best.map(|n| n.name).as_deref(), Some("board.example.jp"));
    }
}
