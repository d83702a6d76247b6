//! `beaconing`: the same program contacts the same remote endpoint again
//! and again at a steady rhythm, the way remote-control malware asks its
//! server for orders.
//!
//! [`Contacts`] keeps, per program and endpoint, a bounded timeline of the
//! moments a new outgoing connection was first seen. [`rhythm`] judges a
//! timeline. Polling only sees a connection at the first sample after it
//! opened, so every contact time is late by up to one sampling interval;
//! the judgement subtracts that known noise before asking whether the
//! spacing is regular.
//!
//! Contacts are grouped by [`peer_key`]: by the remote's name when one is
//! known (a server behind a CDN, or a C2 rotating between addresses, is one
//! rhythm), by address otherwise.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::network::{Reach, reach};
use super::{Detected, evidence, is_trusted};
use crate::i18n::tr_args;
use crate::model::{FindingKind, Program, ProgramKey, Protocol, Severity, SockState};
use crate::monitor::SessionEvent;
use crate::names::peer::{Peer, PeerKey, peer_key};

/// Contacts older than this are forgotten: a rhythm of up to ~40 minutes
/// still shows four contacts.
pub const HORIZON: Duration = Duration::from_secs(2 * 3600);
/// Contacts kept per endpoint.
pub const MAX_CONTACTS: usize = 24;
/// Endpoints kept per program (a browser reaches many).
const MAX_ENDPOINTS: usize = 1024;
/// Fewer contacts than this are not a rhythm.
pub const MIN_CONTACTS: usize = 4;
/// Largest spread of the spacing, relative to its mean, still "regular".
pub const MAX_VARIATION: f64 = 0.25;
/// Spacing below this (and below 1.5 samples) is a burst, not a rhythm.
pub const MIN_MEAN_INTERVAL_S: f64 = 1.5;

/// Addresses remembered per named peer.
const MAX_ADDRESSES: usize = 16;

/// One peer's contact times, and the addresses it used (latest last).
#[derive(Debug, Default)]
struct Timeline {
    times: Vec<SystemTime>,
    addrs: Vec<SocketAddr>,
}

/// Contact timelines per program and remote peer.
#[derive(Debug, Default)]
pub struct Contacts {
    by_program: HashMap<ProgramKey, HashMap<PeerKey, Timeline>>,
}

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

impl Contacts {
    /// Notes one contact with an unnamed remote; contacts in the same
    /// sample count once.
    pub fn record(&mut self, program: &ProgramKey, remote: SocketAddr, at: SystemTime) {
        self.record_named(program, remote, None, at);
    }

    /// Notes one contact with `remote`, grouped under `name` when known.
    pub fn record_named(
        &mut self,
        program: &ProgramKey,
        remote: SocketAddr,
        name: Option<&str>,
        at: SystemTime,
    ) {
        let endpoints = self.by_program.entry(program.clone()).or_default();
        let remote = canonical(remote);
        let key = peer_key(remote, name);
        if !endpoints.contains_key(&key) && endpoints.len() >= MAX_ENDPOINTS {
            // Make room by forgetting the endpoint heard from least recently.
            if let Some(oldest) = endpoints
                .iter()
                .min_by_key(|(_, t)| t.times.last().copied())
                .map(|(a, _)| a.clone())
            {
                endpoints.remove(&oldest);
            }
        }
        let tl = endpoints.entry(key).or_default();
        tl.addrs.retain(|a| *a != remote);
        tl.addrs.push(remote);
        if tl.addrs.len() > MAX_ADDRESSES {
            tl.addrs.remove(0);
        }
        let times = &mut tl.times;
        if times.last().is_some_and(|t| *t >= at) {
            return;
        }
        times.push(at);
        if times.len() > MAX_CONTACTS {
            times.drain(..times.len() - MAX_CONTACTS);
        }
    }

    /// Notes the outgoing connections that opened this tick. Incoming ones
    /// (accepted on a port the program listens on) are not contacts.
    pub fn record_events(&mut self, events: &[SessionEvent], programs: &[Program]) {
        let listening: HashMap<&ProgramKey, HashSet<u16>> = programs
            .iter()
            .map(|p| {
                let ports = p
                    .connections
                    .iter()
                    .filter(|c| c.state == SockState::Listen)
                    .map(|c| c.local.port())
                    .collect();
                (&p.key, ports)
            })
            .collect();
        for ev in events {
            let SessionEvent::Opened {
                program: Some(key),
                connection: c,
            } = ev
            else {
                continue;
            };
            let Some(remote) = c.remote else { continue };
            if c.protocol != Protocol::Tcp || c.state == SockState::Listen {
                continue;
            }
            if listening
                .get(key)
                .is_some_and(|ports| ports.contains(&c.local.port()))
            {
                continue;
            }
            let name = c.remote_name.as_ref().map(|n| n.name.as_str());
            self.record_named(key, remote, name, c.first_seen);
        }
    }

    /// Forgets contacts older than [`HORIZON`] and programs `keep` rejects.
    pub fn prune(&mut self, now: SystemTime, keep: impl Fn(&ProgramKey) -> bool) {
        let horizon = now.checked_sub(HORIZON).unwrap_or(SystemTime::UNIX_EPOCH);
        self.by_program.retain(|k, endpoints| {
            if !keep(k) {
                return false;
            }
            endpoints.retain(|_, tl| {
                tl.times.retain(|t| *t >= horizon);
                !tl.times.is_empty()
            });
            !endpoints.is_empty()
        });
    }

    /// The timelines of one program, oldest contact first.
    pub fn of(&self, program: &ProgramKey) -> Vec<(Peer, &[SystemTime])> {
        let mut v: Vec<(Peer, &[SystemTime])> = self
            .by_program
            .get(program)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, tl)| {
                        let peer = Peer {
                            key: k.clone(),
                            addr: *tl.addrs.last()?,
                            addresses: tl.addrs.len(),
                        };
                        Some((peer, tl.times.as_slice()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// A regular rhythm found in a timeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rhythm {
    pub contacts: usize,
    pub mean_interval_s: f64,
    /// Standard deviation of the spacing as observed.
    pub jitter_s: f64,
}

/// Judges contact times (oldest first) seen by polling every
/// `sample_interval`: at least [`MIN_CONTACTS`], a mean spacing of at least
/// [`MIN_MEAN_INTERVAL_S`] (and 1.5 samples), and a spread below
/// [`MAX_VARIATION`] of the mean once the polling noise (each time late by
/// up to one interval, variance interval²/6 per spacing) is taken out.
pub fn rhythm(contacts: &[SystemTime], sample_interval: Duration) -> Option<Rhythm> {
    if contacts.len() < MIN_CONTACTS {
        return None;
    }
    let gaps: Vec<f64> = contacts
        .windows(2)
        .map(|w| {
            w[1].duration_since(w[0])
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0)
        })
        .collect();
    let n = gaps.len() as f64;
    let mean = gaps.iter().sum::<f64>() / n;
    let p = sample_interval.as_secs_f64();
    if mean < MIN_MEAN_INTERVAL_S.max(1.5 * p) {
        return None;
    }
    let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n;
    let polling_noise = p * p / 6.0;
    let spread = (var - polling_noise).max(0.0).sqrt();
    if spread / mean >= MAX_VARIATION {
        return None;
    }
    Some(Rhythm {
        contacts: contacts.len(),
        mean_interval_s: mean,
        jitter_s: var.sqrt(),
    })
}

fn severity(trusted: bool, r: Reach) -> Severity {
    match (trusted, r) {
        (false, Reach::Public) => Severity::Medium,
        (false, _) | (true, Reach::Public) => Severity::Low,
        (true, _) => Severity::Info,
    }
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// `beaconing` for one program over its timelines. The endpoint reported is
/// the most worrying one (internet before home network before this PC),
/// then the one with most contacts.
pub fn beaconing<T: AsRef<[SystemTime]>>(
    p: &Program,
    timelines: &[(Peer, T)],
    sample_interval: Duration,
) -> Option<Detected> {
    let trusted = is_trusted(p);
    let regular: Vec<(&Peer, Rhythm, Severity)> = timelines
        .iter()
        .filter_map(|(peer, times)| {
            let r = rhythm(times.as_ref(), sample_interval)?;
            Some((peer, r, severity(trusted, reach(peer.addr.ip()))))
        })
        .collect();
    let (peer, r, sev) = regular
        .iter()
        .max_by(|a, b| {
            (a.2, a.1.contacts, std::cmp::Reverse(a.0)).cmp(&(
                b.2,
                b.1.contacts,
                std::cmp::Reverse(b.0),
            ))
        })
        .copied()?;
    let ep = peer.addr;
    let interval = if r.mean_interval_s >= 10.0 {
        format!("{:.0}", r.mean_interval_s)
    } else {
        format!("{:.1}", r.mean_interval_s)
    };
    Some(Detected {
        kind: FindingKind::Beaconing,
        severity: sev,
        summary: tr_args(
            "findings.beaconing",
            &[
                ("endpoint", &crate::names::endpoint_words(ep, peer.name())),
                ("interval", &interval),
                ("contacts", &r.contacts.to_string()),
            ],
        ),
        evidence: evidence([
            ("endpoint", json!(ep.to_string())),
            ("contacts", json!(r.contacts)),
            ("mean_interval_s", json!(round(r.mean_interval_s, 2))),
            ("jitter_s", json!(round(r.jitter_s, 2))),
            ("reach", json!(reach(ep.ip()).as_str())),
            ("other_endpoints", json!(regular.len() - 1)),
            ("remote_name", json!(peer.name())),
            ("addresses", json!(peer.addresses)),
        ]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testkit::{noon, program};
    use crate::model::Mark;

    fn times(offsets: &[f64]) -> Vec<SystemTime> {
        offsets
            .iter()
            .map(|s| noon() + Duration::from_secs_f64(*s))
            .collect()
    }

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn rhythm_table() {
        let cases: Vec<(&str, Vec<f64>, bool)> = vec![
            ("steady 2 s", vec![0.0, 2.0, 4.0, 6.0, 8.0], true),
            // What 1-s polling makes of a 2-s rhythm: times snap to samples.
            (
                "2 s through 1-s polling",
                vec![0.0, 2.0, 4.0, 5.0, 7.0, 9.0],
                true,
            ),
            ("sampling drift", vec![0.3, 2.4, 4.5, 5.55, 7.65], true),
            (
                "every 3 minutes",
                vec![0.0, 181.0, 360.0, 541.0, 720.0],
                true,
            ),
            ("just four", vec![0.0, 60.0, 120.0, 180.0], true),
            ("three are not enough", vec![0.0, 60.0, 120.0], false),
            ("browsing", vec![0.0, 3.0, 20.0, 25.0, 61.0, 64.0], false),
            ("burst", vec![0.0, 1.0, 2.0, 3.0, 4.0], false),
            ("one long gap", vec![0.0, 10.0, 20.0, 30.0, 90.0], false),
            (
                "alternating 5 and 15 s",
                vec![0.0, 5.0, 20.0, 25.0, 40.0, 45.0],
                false,
            ),
        ];
        for (name, offsets, want) in cases {
            assert_eq!(rhythm(&times(&offsets), SEC).is_some(), want, "{name}");
        }
    }

    #[test]
    fn evidence_says_what_was_seen() {
        let p = program("/tmp/x/freetool", vec![]);
        let tl = vec![(
            "203.0.113.5:80".parse().unwrap(),
            times(&[0.0, 2.0, 4.0, 5.0, 7.0, 9.0]),
        )];
        let d = beaconing(&p, &tl, SEC).unwrap();
        assert_eq!(d.severity, Severity::Medium);
        assert_eq!(d.evidence["endpoint"], json!("203.0.113.5:80"));
        assert_eq!(d.evidence["contacts"], json!(6));
        assert_eq!(d.evidence["mean_interval_s"], json!(1.8));
        assert_eq!(d.evidence["jitter_s"], json!(0.4));
        assert!(d.summary.contains("203.0.113.5:80"), "{}", d.summary);
    }

    #[test]
    fn severity_by_endpoint_and_trust() {
        let steady = times(&[0.0, 60.0, 120.0, 180.0, 240.0]);
        let cases: Vec<(&str, &str, Option<Mark>, Severity)> = vec![
            ("internet", "203.0.113.5:443", None, Severity::Medium),
            ("home network", "192.168.1.20:8080", None, Severity::Low),
            ("this PC", "127.0.0.1:5000", None, Severity::Low),
            (
                "trusted updater",
                "203.0.113.5:443",
                Some(Mark::Trusted),
                Severity::Low,
            ),
            (
                "trusted, local",
                "127.0.0.1:5000",
                Some(Mark::Trusted),
                Severity::Info,
            ),
        ];
        for (name, ep, mark, want) in cases {
            let mut p = program("/home/a/x", vec![]);
            p.mark = mark;
            let d = beaconing(&p, &[(ep.parse().unwrap(), steady.clone())], SEC).unwrap();
            assert_eq!(d.severity, want, "{name}");
        }
    }

    #[test]
    fn public_endpoint_is_reported_before_loopback() {
        let p = program("/home/a/x", vec![]);
        let steady = times(&[0.0, 10.0, 20.0, 30.0, 40.0, 50.0]);
        let tl = vec![
            ("127.0.0.1:5000".parse().unwrap(), steady.clone()),
            ("203.0.113.5:443".parse().unwrap(), steady[..4].to_vec()),
        ];
        let d = beaconing(&p, &tl, SEC).unwrap();
        assert_eq!(d.evidence["endpoint"], json!("203.0.113.5:443"));
        assert_eq!(d.evidence["other_endpoints"], json!(1));
    }

    #[test]
    fn timelines_are_bounded_and_pruned() {
        let key = ProgramKey::Exe("/x".into());
        let ep: SocketAddr = "203.0.113.5:443".parse().unwrap();
        let mut c = Contacts::default();
        for i in 0..100u64 {
            c.record(&key, ep, noon() + Duration::from_secs(i * 10));
        }
        c.record(&key, ep, noon() + Duration::from_secs(990)); // same sample
        assert_eq!(c.of(&key)[0].1.len(), MAX_CONTACTS);
        c.prune(noon() + Duration::from_secs(990) + HORIZON + SEC, |_| true);
        assert!(c.of(&key).is_empty());
        c.record(&key, ep, noon());
        c.prune(noon(), |_| false);
        assert!(c.of(&key).is_empty(), "programs that left are forgotten");
    }

    #[test]
    fn three_rotating_addresses_of_one_name_are_one_rhythm() {
        let key = ProgramKey::Exe("/tmp/x/freetool".into());
        let addrs: [SocketAddr; 3] = [
            "203.0.113.7:443".parse().unwrap(),
            "198.51.100.9:443".parse().unwrap(),
            "192.0.2.33:443".parse().unwrap(),
        ];
        let mut named = Contacts::default();
        let mut bare = Contacts::default();
        for i in 0..9u64 {
            let at = noon() + Duration::from_secs(i * 30);
            let a = addrs[(i % 3) as usize];
            named.record_named(&key, a, Some("board.example.jp"), at);
            bare.record(&key, a, at);
        }
        let p = program("/tmp/x/freetool", vec![]);
        let tl = named.of(&key);
        assert_eq!(tl.len(), 1, "one peer");
        assert_eq!(tl[0].1.len(), 9);
        let d = beaconing(&p, &tl, SEC).expect("one steady 30-s rhythm");
        assert_eq!(d.evidence["remote_name"], json!("board.example.jp"));
        assert_eq!(d.evidence["addresses"], json!(3));
        assert_eq!(d.evidence["mean_interval_s"], json!(30.0));
        assert!(d.summary.starts_with("board.example.jp ("), "{}", d.summary);
        // Without the name, each address alone is a 90-s rhythm of three:
        // too few contacts to tell.
        assert!(beaconing(&p, &bare.of(&key), SEC).is_none());
    }

    #[test]
    fn ipv4_mapped_addresses_are_one_endpoint() {
        let key = ProgramKey::Exe("/x".into());
        let mut c = Contacts::default();
        c.record(&key, "[::ffff:203.0.113.5]:443".parse().unwrap(), noon());
        c.record(&key, "203.0.113.5:443".parse().unwrap(), noon() + SEC);
        assert_eq!(c.of(&key).len(), 1);
    }
}
