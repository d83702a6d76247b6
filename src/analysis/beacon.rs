//! `beaconing`: the same program contacts the same remote endpoint again
//! and again at a steady rhythm, the way remote-control malware asks its
//! server for orders.
//!
//! [`ContactTimelines`] keeps, per program and endpoint, a bounded timeline of the
//! moments a new outgoing connection was first seen (and, where the capture
//! reports them, small transfers inside a connection that stays open, with
//! their sizes), for a day. [`score`] judges a timeline with robust
//! statistics, after the ideas of RITA's beacon analysis (our own code):
//!
//! - **interval skew**: Bowley's quartile skewness of the gaps between
//!   contacts; a beacon's gaps are symmetric around their median, so
//!   `1 - |skew|` is near 1;
//! - **interval spread**: the median absolute deviation (MAD) of the gaps
//!   relative to their median, `1 - MAD/median`; jitter of ±55 % still
//!   leaves a clear majority of gaps near the median, human activity does
//!   not;
//! - **near share**: the share of gaps within 60 % of the median gap;
//!   a jittered timer keeps nearly all its gaps there, people do not;
//! - **size regularity** (only when byte counts are known): the same two
//!   measures over the transfer sizes;
//! - **coverage**: the share of the hours between first and last contact
//!   that have a contact, so a rhythm that keeps going counts more than a
//!   burst of activity.
//!
//! Polling sees a connection only at the first sample after it opened, so
//! every time is late by up to one sampling interval; half an interval is
//! taken off the MAD before it is judged.
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

/// Maps hashed for every contact of a sample (thousands): a fast hasher,
/// still seeded per process, instead of SipHash over paths.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// Contacts older than this are forgotten: slow beacons (one an hour) show
/// a full day.
pub const HORIZON: Duration = Duration::from_secs(25 * 3600);
/// Contacts kept per endpoint (the newest).
pub const MAX_CONTACTS: usize = 256;
/// Endpoints kept per program (a browser reaches many).
const MAX_ENDPOINTS: usize = 1024;
/// Fewer contacts than this are not a rhythm.
pub const MIN_CONTACTS: usize = 4;
/// Spacing below this (and below 1.5 samples) is a burst, not a rhythm.
pub const MIN_MEAN_INTERVAL_S: f64 = 1.5;
/// The timing must be at least this regular on its own…
pub const MIN_TIMING_SCORE: f64 = 0.8;
/// …and the whole score at least this high.
pub const MIN_SCORE: f64 = 0.75;
/// A gap "near the median" is within this share of it.
pub const NEAR: f64 = 0.6;
/// A score from which an untrusted program's beacon to the internet is
/// medium rather than low.
pub const MEDIUM_SCORE: f64 = 0.8;

/// One contact: when, and how many bytes moved (when the capture knows).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contact {
    pub at: SystemTime,
    pub bytes: Option<u64>,
}

/// Addresses remembered per named peer.
const MAX_ADDRESSES: usize = 16;

/// One peer's contact times, and the addresses it used (latest last).
#[derive(Debug, Default)]
struct Timeline {
    times: Vec<Contact>,
    addrs: Vec<SocketAddr>,
}

/// Contact timelines per program and remote peer.
#[derive(Debug, Default)]
pub struct ContactTimelines {
    by_program: FastMap<ProgramKey, FastMap<PeerKey, Timeline>>,
}

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

impl ContactTimelines {
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
        self.push(program, remote, name, Contact { at, bytes: None });
    }

    /// Notes a transfer of `bytes` inside a connection that stays open (a
    /// keep-alive poll), from the capture's byte counts: a beacon that
    /// never reconnects is seen through its periodic small transfers.
    pub fn record_transfer(
        &mut self,
        program: &ProgramKey,
        remote: SocketAddr,
        at: SystemTime,
        bytes: u64,
    ) {
        self.push(
            program,
            remote,
            None,
            Contact {
                at,
                bytes: Some(bytes),
            },
        );
    }

    fn push(&mut self, program: &ProgramKey, remote: SocketAddr, name: Option<&str>, c: Contact) {
        // Looked up before inserting: a sample records thousands of
        // contacts of the same few programs (no key copied for each).
        let endpoints = match self.by_program.get_mut(program) {
            Some(e) => e,
            None => self.by_program.entry(program.clone()).or_default(),
        };
        let remote = canonical(remote);
        let key = peer_key(remote, name);
        if !endpoints.contains_key(&key) && endpoints.len() >= MAX_ENDPOINTS {
            // Make room by forgetting the endpoint heard from least recently.
            if let Some(oldest) = endpoints
                .iter()
                .min_by_key(|(_, t)| t.times.last().map(|c| c.at))
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
        if times.last().is_some_and(|t| t.at >= c.at) {
            return;
        }
        times.push(c);
        if times.len() > MAX_CONTACTS {
            times.drain(..times.len() - MAX_CONTACTS);
        }
    }

    /// Notes the outgoing connections that opened this tick. Incoming ones
    /// (accepted on a port the program listens on) are not contacts. A
    /// connection of a tool that a script started (`curl` in a loop of
    /// `/tmp/update.sh`) is also a contact of the script: the script is the
    /// program that keeps calling.
    pub fn record_events(&mut self, events: &[SessionEvent], programs: &[Program]) {
        let by_pid: FastMap<u32, (&ProgramKey, Option<u32>)> = programs
            .iter()
            .flat_map(|p| p.processes.iter().map(move |x| (x.pid, (&p.key, x.parent))))
            .collect();
        let script_parent = |pid: Option<u32>, own: &ProgramKey| {
            let (_, parent) = by_pid.get(&pid?)?;
            let (pkey, _) = by_pid.get(&(*parent)?)?;
            (matches!(pkey, ProgramKey::Script { .. }) && *pkey != own).then(|| (*pkey).clone())
        };
        let listening: FastMap<&ProgramKey, FastSet<u16>> = programs
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
        let mut last_ports: Option<(&ProgramKey, Option<&FastSet<u16>>)> = None;
        for ev in events {
            let SessionEvent::Opened {
                program: Some(key),
                connection: c,
            } = ev
            else {
                continue;
            };
            let key: &ProgramKey = key;
            let Some(remote) = c.remote else { continue };
            if c.protocol != Protocol::Tcp || c.state == SockState::Listen {
                continue;
            }
            // Events of one program come in runs: its ports are kept at
            // hand instead of hashing its path again.
            let ports = match last_ports {
                Some((k, ports)) if std::ptr::eq(k, key) || k == key => ports,
                _ => {
                    let ports = listening.get(key);
                    last_ports = Some((key, ports));
                    ports
                }
            };
            if ports.is_some_and(|ports| ports.contains(&c.local.port())) {
                continue;
            }
            let name = c.remote_name.as_ref().map(|n| n.name.as_str());
            self.record_named(key, remote, name, c.first_seen);
            if let Some(script) = script_parent(c.pid, key) {
                self.record_named(&script, remote, name, c.first_seen);
            }
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
                tl.times.retain(|t| t.at >= horizon);
                !tl.times.is_empty()
            });
            !endpoints.is_empty()
        });
    }

    /// The timelines of one program, oldest contact first.
    pub fn of(&self, program: &ProgramKey) -> Vec<(Peer, &[Contact])> {
        let mut v: Vec<(Peer, &[Contact])> = self
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

/// A beacon score and its parts, each from 0 (not at all) to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub contacts: usize,
    pub mean_interval_s: f64,
    pub median_interval_s: f64,
    /// Standard deviation of the gaps as observed.
    pub jitter_s: f64,
    /// That deviation less the polling noise, relative to the mean.
    pub small_variation: f64,
    pub interval_skew: f64,
    pub interval_spread: f64,
    /// Share of gaps within [`NEAR`] of the median gap.
    pub interval_near: f64,
    /// Size regularity, when byte counts are known.
    pub size: Option<f64>,
    /// Share of hours with a contact; only for timelines over two hours.
    pub coverage: Option<f64>,
    /// Timing alone: skew, spread and near share weighted 1 : 2 : 3.
    pub timing: f64,
    /// The whole: the mean of timing, size (if known) and coverage.
    pub total: f64,
}

/// Below this many contacts quartiles say little: the gaps must then also
/// keep within [`MAX_SMALL_VARIATION`] of their mean.
pub const ROBUST_FROM: usize = 8;
/// Largest spread of the gaps (standard deviation after polling noise,
/// relative to the mean) for a short timeline.
pub const MAX_SMALL_VARIATION: f64 = 0.25;
/// Coverage over hours only speaks for timelines this long.
const COVERAGE_FROM: Duration = Duration::from_secs(2 * 3600);

impl Score {
    pub fn is_beacon(&self) -> bool {
        self.timing >= MIN_TIMING_SCORE
            && self.total >= MIN_SCORE
            && (self.contacts >= ROBUST_FROM || self.small_variation < MAX_SMALL_VARIATION)
    }
}

/// Quantile `q` of sorted values, interpolated.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// `(1 - |Bowley skew|, 1 - MAD/median)` of `values`; `noise` is taken off
/// the MAD first (what sampling adds).
fn regularity(values: &[f64], noise: f64) -> (f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let (q1, q2, q3) = (quantile(&v, 0.25), quantile(&v, 0.5), quantile(&v, 0.75));
    let skew = if q3 - q1 <= f64::EPSILON || q3 - q1 <= noise {
        0.0
    } else {
        (q3 + q1 - 2.0 * q2) / (q3 - q1)
    };
    let mut dev: Vec<f64> = v.iter().map(|x| (x - q2).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let mad = (quantile(&dev, 0.5) - noise).max(0.0);
    let spread = if q2 <= 0.0 {
        0.0
    } else {
        1.0 - (mad / q2).min(1.0)
    };
    (1.0 - skew.abs().min(1.0), spread)
}

/// Share of the hours from the first to the last contact that hold one.
fn coverage(contacts: &[Contact]) -> f64 {
    let (Some(first), Some(last)) = (contacts.first(), contacts.last()) else {
        return 0.0;
    };
    let hour = 3600.0;
    let since = |c: &Contact| {
        c.at.duration_since(first.at)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    };
    let buckets = (since(last) / hour).floor() as usize + 1;
    let mut seen = vec![false; buckets];
    for c in contacts {
        let b = ((since(c) / hour).floor() as usize).min(buckets - 1);
        seen[b] = true;
    }
    seen.iter().filter(|s| **s).count() as f64 / buckets as f64
}

/// Scores contacts (oldest first) seen by polling every `sample_interval`;
/// `None` for fewer than [`MIN_CONTACTS`] or gaps shorter than
/// [`MIN_MEAN_INTERVAL_S`] (and 1.5 samples): a burst is not a rhythm.
pub fn score(contacts: &[Contact], sample_interval: Duration) -> Option<Score> {
    if contacts.len() < MIN_CONTACTS {
        return None;
    }
    let gaps: Vec<f64> = contacts
        .windows(2)
        .map(|w| {
            w[1].at
                .duration_since(w[0].at)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0)
        })
        .collect();
    let n = gaps.len() as f64;
    let mean = gaps.iter().sum::<f64>() / n;
    let p = sample_interval.as_secs_f64();
    let mut sorted = gaps.clone();
    sorted.sort_by(f64::total_cmp);
    let median = quantile(&sorted, 0.5);
    if median < MIN_MEAN_INTERVAL_S.max(1.5 * p) {
        return None;
    }
    let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n;
    let (interval_skew, interval_spread) = regularity(&gaps, p / 2.0);
    let sizes: Vec<f64> = contacts
        .iter()
        .filter_map(|c| c.bytes.map(|b| b as f64))
        .collect();
    let size = (sizes.len() >= MIN_CONTACTS).then(|| {
        let (sk, sp) = regularity(&sizes, 0.0);
        (sk + sp) / 2.0
    });
    let span = contacts[contacts.len() - 1]
        .at
        .duration_since(contacts[0].at)
        .unwrap_or_default();
    let coverage = (span >= COVERAGE_FROM).then(|| coverage(contacts));
    let near_band = median * NEAR + p / 2.0;
    let interval_near = gaps
        .iter()
        .filter(|g| (*g - median).abs() <= near_band)
        .count() as f64
        / n;
    // Skew is the noisiest of the three on short timelines; the near share
    // separates a jittered timer from people best (see docs/FINDINGS.md).
    let timing = (interval_skew + 2.0 * interval_spread + 3.0 * interval_near) / 6.0;
    let small_variation = (var - p * p / 6.0).max(0.0).sqrt() / mean;
    let parts: Vec<f64> = [Some(timing), size, coverage]
        .into_iter()
        .flatten()
        .collect();
    let total = parts.iter().sum::<f64>() / parts.len() as f64;
    Some(Score {
        contacts: contacts.len(),
        mean_interval_s: mean,
        median_interval_s: median,
        jitter_s: var.sqrt(),
        small_variation,
        interval_skew,
        interval_spread,
        interval_near,
        size,
        coverage,
        timing,
        total,
    })
}

fn severity(trusted: bool, r: Reach, total: f64) -> Severity {
    match (trusted, r) {
        (false, Reach::Public) if total >= MEDIUM_SCORE => Severity::Medium,
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
/// then the one with the highest score, then most contacts.
pub fn beaconing<T: AsRef<[Contact]>>(
    p: &Program,
    timelines: &[(Peer, T)],
    sample_interval: Duration,
) -> Option<Detected> {
    let trusted = is_trusted(p);
    let regular: Vec<(&Peer, Score, Severity)> = timelines
        .iter()
        .filter_map(|(peer, times)| {
            let s = score(times.as_ref(), sample_interval).filter(Score::is_beacon)?;
            Some((peer, s, severity(trusted, reach(peer.addr.ip()), s.total)))
        })
        .collect();
    let (peer, r, sev) = regular
        .iter()
        .max_by(|a, b| {
            a.2.cmp(&b.2)
                .then(a.1.total.total_cmp(&b.1.total))
                .then(a.1.contacts.cmp(&b.1.contacts))
                .then(b.0.cmp(a.0))
        })
        .copied()?;
    let ep = peer.addr;
    let summary = if r.median_interval_s >= 120.0 {
        tr_args(
            "findings.beaconing_minutes",
            &[
                ("endpoint", &crate::names::endpoint_words(ep, peer.name())),
                ("interval", &format!("{:.0}", r.median_interval_s / 60.0)),
                ("contacts", &r.contacts.to_string()),
            ],
        )
    } else {
        let interval = if r.median_interval_s >= 10.0 {
            format!("{:.0}", r.median_interval_s)
        } else {
            format!("{:.1}", r.median_interval_s)
        };
        tr_args(
            "findings.beaconing",
            &[
                ("endpoint", &crate::names::endpoint_words(ep, peer.name())),
                ("interval", &interval),
                ("contacts", &r.contacts.to_string()),
            ],
        )
    };
    Some(Detected {
        kind: FindingKind::Beaconing,
        severity: sev,
        summary,
        evidence: evidence([
            ("endpoint", json!(ep.to_string())),
            ("contacts", json!(r.contacts)),
            ("mean_interval_s", json!(round(r.mean_interval_s, 2))),
            ("median_interval_s", json!(round(r.median_interval_s, 2))),
            ("jitter_s", json!(round(r.jitter_s, 2))),
            ("score", json!(round(r.total, 3))),
            (
                "score_parts",
                json!({
                    "interval_skew": round(r.interval_skew, 3),
                    "interval_spread": round(r.interval_spread, 3),
                    "interval_near_median": round(r.interval_near, 3),
                    "size": r.size.map(|x| round(x, 3)),
                    "coverage": r.coverage.map(|x| round(x, 3)),
                }),
            ),
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

    fn times(offsets: &[f64]) -> Vec<Contact> {
        offsets
            .iter()
            .map(|s| Contact {
                at: noon() + Duration::from_secs_f64(*s),
                bytes: None,
            })
            .collect()
    }

    fn is_beacon(c: &[Contact]) -> bool {
        score(c, SEC).is_some_and(|s| s.is_beacon())
    }

    /// A small deterministic generator (uniform in [0, 1)).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// `n` contacts `period` seconds apart, each gap off by up to
    /// ±`jitter` of the period, seen by 1-s polling (times snap up to the
    /// next whole second).
    fn jittered(n: usize, period: f64, jitter: f64, seed: u64) -> Vec<Contact> {
        let mut rng = Lcg(seed);
        let mut t: f64 = 0.0;
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(t.ceil());
            t += period * (1.0 + jitter * (2.0 * rng.next() - 1.0));
        }
        times(&v)
    }

    /// Human activity: gaps drawn from an exponential distribution (a
    /// Poisson process), mean `mean` seconds.
    fn random_browsing(n: usize, mean: f64, seed: u64) -> Vec<Contact> {
        let mut rng = Lcg(seed);
        let mut t: f64 = 0.0;
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(t.ceil());
            t += 1.0 - mean * (1.0 - rng.next()).ln();
        }
        times(&v)
    }

    #[test]
    fn beacon_score_table() {
        let keep_alive: Vec<Contact> = (0..40u64)
            .map(|i| Contact {
                at: noon() + Duration::from_secs(i * 7),
                bytes: Some(310 + (i % 3) * 4),
            })
            .collect();
        let noisy_sizes: Vec<Contact> = random_browsing(40, 30.0, 9)
            .into_iter()
            .enumerate()
            .map(|(i, c)| Contact {
                bytes: Some(200 + (i as u64 * 7919) % 90_000),
                ..c
            })
            .collect();
        let cases: Vec<(&str, Vec<Contact>, bool)> = vec![
            ("regular, every minute", jittered(30, 60.0, 0.0, 1), true),
            ("±30 % jitter", jittered(30, 60.0, 0.30, 2), true),
            ("±55 % jitter", jittered(30, 60.0, 0.55, 3), true),
            (
                "±55 % jitter, other seed",
                jittered(40, 300.0, 0.55, 4),
                true,
            ),
            (
                "every 45 minutes for a day",
                jittered(32, 2700.0, 0.1, 5),
                true,
            ),
            ("random browsing", random_browsing(40, 30.0, 6), false),
            (
                "random browsing, other seed",
                random_browsing(60, 120.0, 7),
                false,
            ),
            (
                "random browsing over a day",
                random_browsing(60, 1400.0, 8),
                false,
            ),
            ("keep-alive poll every 7 s", keep_alive, true),
            ("random times, random sizes", noisy_sizes, false),
        ];
        for (name, c, want) in cases {
            let s = score(&c, SEC);
            assert_eq!(s.is_some_and(|s| s.is_beacon()), want, "{name}: {s:?}");
        }
    }

    #[test]
    fn slow_beacons_stay_within_the_horizon() {
        let key = ProgramKey::Exe("/x".into());
        let ep: SocketAddr = "203.0.113.5:443".parse().unwrap();
        let mut c = ContactTimelines::default();
        let period = Duration::from_secs(45 * 60);
        for i in 0..32u32 {
            c.record(&key, ep, noon() + period * i);
        }
        let now = noon() + period * 31;
        c.prune(now, |_| true);
        let tl = c.of(&key);
        assert_eq!(tl[0].1.len(), 32, "a day of 45-minute contacts is kept");
        let p = program("/home/a/x", vec![]);
        let d = beaconing(&p, &tl, SEC).expect("a 45-minute beacon");
        assert_eq!(d.severity, Severity::Medium);
        assert!(d.summary.contains("45"), "{}", d.summary);
        let parts = &d.evidence["score_parts"];
        assert_eq!(parts["coverage"], json!(1.0));
        assert_eq!(parts["size"], json!(null));
        assert!(d.evidence["score"].as_f64().unwrap() > 0.9);
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
            assert_eq!(is_beacon(&times(&offsets)), want, "{name}");
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
        let mut c = ContactTimelines::default();
        for i in 0..300u64 {
            c.record(&key, ep, noon() + Duration::from_secs(i * 10));
        }
        c.record(&key, ep, noon() + Duration::from_secs(2990)); // same sample
        assert_eq!(c.of(&key)[0].1.len(), MAX_CONTACTS);
        c.prune(noon() + Duration::from_secs(2990) + HORIZON + SEC, |_| true);
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
        let mut named = ContactTimelines::default();
        let mut bare = ContactTimelines::default();
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
    fn a_tools_contacts_count_for_the_script_that_started_it() {
        use crate::analysis::testkit::outgoing;
        let script_key = ProgramKey::Script {
            script: "/tmp/poll.sh".into(),
            interpreter: "/usr/bin/bash".into(),
        };
        let mut script = program("/tmp/poll.sh", vec![]);
        script.key = script_key.clone();
        script.processes[0].pid = 10;
        let mut curl = program("/usr/bin/curl", vec![]);
        curl.processes[0].pid = 11;
        curl.processes[0].parent = Some(10);
        let mut other = program("/usr/bin/curl", vec![]);
        other.processes[0].pid = 12;
        other.processes[0].parent = Some(1);
        let mut c = outgoing("203.0.113.5:443");
        c.pid = Some(11);
        let opened = |c: &crate::model::Connection| SessionEvent::Opened {
            program: Some(std::sync::Arc::new(ProgramKey::Exe("/usr/bin/curl".into()))),
            connection: c.clone(),
        };
        let mut contacts = ContactTimelines::default();
        contacts.record_events(
            &[opened(&c)],
            &[script.clone(), curl.clone(), other.clone()],
        );
        assert_eq!(contacts.of(&script_key).len(), 1, "the script's contact");
        assert_eq!(
            contacts.of(&ProgramKey::Exe("/usr/bin/curl".into())).len(),
            1
        );
        // curl started by something else: nothing for the script.
        let mut contacts = ContactTimelines::default();
        c.pid = Some(12);
        contacts.record_events(&[opened(&c)], &[script, curl, other]);
        assert!(contacts.of(&script_key).is_empty());
    }

    #[test]
    fn ipv4_mapped_addresses_are_one_endpoint() {
        let key = ProgramKey::Exe("/x".into());
        let mut c = ContactTimelines::default();
        c.record(&key, "[::ffff:203.0.113.5]:443".parse().unwrap(), noon());
        c.record(&key, "203.0.113.5:443".parse().unwrap(), noon() + SEC);
        assert_eq!(c.of(&key).len(), 1);
    }
}
