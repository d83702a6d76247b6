//! The tracker names connections from the name cache: each program gets
//! the name it looked up itself, a name learnt after the connection opened
//! (a TLS server name) is attached on the next sample, and a connection
//! nobody named stays null in the JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use kizuki::cli::output::snapshot_json;
use kizuki::clock::{Clock, FakeClock};
use kizuki::identity::FakeHasher;
use kizuki::model::{RawProcess, RawSample, RawSocket};
use kizuki::monitor::MonitorCore;
use kizuki::names::{NameCache, NameSource};
use kizuki::probe::FakeProbe;

fn conn<'a>(v: &'a serde_json::Value, pid: u64, remote: &str) -> &'a serde_json::Value {
    v["programs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["connections"].as_array().unwrap())
        .find(|c| c["pid"] == pid && c["remote"] == remote)
        .unwrap_or_else(|| panic!("no {pid} → {remote} in {v:#}"))
}

#[test]
fn connections_get_their_own_programs_name_and_later_names() {
    let clock = Arc::new(FakeClock::at_noon());
    let probe = FakeProbe::new(vec![RawSample::of(
        vec![
            RawProcess::fake(200, "/usr/bin/firefox"),
            RawProcess::fake(300, "/usr/bin/curl"),
        ],
        vec![
            RawSocket::tcp(200, "10.0.0.2:40001", "8.8.8.8:443"),
            RawSocket::tcp(300, "10.0.0.2:40002", "8.8.8.8:443"),
            RawSocket::tcp(300, "10.0.0.2:40003", "198.51.100.1:443"),
            RawSocket::tcp(300, "10.0.0.2:40004", "127.0.0.1:8000"),
        ],
    )]);
    let mut core = MonitorCore::new(
        Box::new(probe),
        Box::new(FakeHasher::with(&[])),
        clock.clone(),
        Duration::from_secs(1),
    );
    let cache = Arc::new(NameCache::new());
    let ip = "8.8.8.8".parse().unwrap();
    let before = clock.now() - Duration::from_secs(1);
    cache.record_dns(ip, "firefox-asked.example", Some(200), before);
    cache.record_dns(ip, "curl-asked.example", Some(300), before);
    core.set_names(cache.clone(), None);

    let v = snapshot_json(&core.tick().unwrap());
    let ff = conn(&v, 200, "8.8.8.8:443");
    assert_eq!(ff["remote_name"], "firefox-asked.example");
    assert_eq!(ff["remote_name_source"], "dns");
    assert_eq!(ff["remote_scope"], "internet");
    assert_eq!(ff["remote_country"], "US");
    assert_eq!(ff["remote_as"], 15169);
    assert!(ff["remote_as_org"].as_str().unwrap().contains("Google"));
    assert_eq!(
        conn(&v, 300, "8.8.8.8:443")["remote_name"],
        "curl-asked.example"
    );
    let bare = conn(&v, 300, "198.51.100.1:443");
    assert_eq!(
        bare["remote_name"],
        serde_json::Value::Null,
        "never guessed"
    );
    assert_eq!(bare["remote_name_source"], serde_json::Value::Null);
    let local = conn(&v, 300, "127.0.0.1:8000");
    assert_eq!(local["remote_scope"], "this-pc");
    assert_eq!(local["remote_country"], serde_json::Value::Null);
    assert_eq!(local["remote_as"], serde_json::Value::Null);

    // The ClientHello is read after the sample saw the connection open.
    clock.advance(Duration::from_secs(1));
    cache.record_flow(
        "10.0.0.2:40003".parse().unwrap(),
        "198.51.100.1:443".parse().unwrap(),
        "late.example",
        NameSource::Sni,
        clock.now(),
    );
    let v = snapshot_json(&core.tick().unwrap());
    let late = conn(&v, 300, "198.51.100.1:443");
    assert_eq!(late["remote_name"], "late.example");
    assert_eq!(late["remote_name_source"], "sni");
    // A name once given stays with the session.
    assert_eq!(
        conn(&v, 200, "8.8.8.8:443")["remote_name"],
        "firefox-asked.example"
    );
}

/// A tool contacting one name every 10 s, the name's three addresses in
/// turn (each address alone: every 30 s, three times — too few to tell).
fn rotating_beacon(named: bool) -> kizuki::model::Snapshot {
    use kizuki::analysis::{AnalysisStage, Baseline, TempDirs, places::UnixEnv};
    let clock = Arc::new(FakeClock::at_noon());
    let probe = FakeProbe::new(vec![]);
    let feed = probe.clone();
    let mut core = MonitorCore::new(
        Box::new(probe),
        Box::new(FakeHasher::with(&[])),
        clock.clone(),
        Duration::from_secs(1),
    );
    core.add_stage(Box::new(AnalysisStage::new(
        TempDirs::unix(&UnixEnv::default()),
        Baseline::in_memory(),
    )));
    let addrs = ["203.0.113.7", "198.51.100.9", "192.0.2.33"];
    let cache = Arc::new(NameCache::new());
    if named {
        for a in addrs {
            cache.record_dns(a.parse().unwrap(), "board.example.jp", None, clock.now());
        }
    }
    core.set_names(cache, None);
    let exe = "/home/alice/bin/tool";
    let mut snap = None;
    for t in 0..92u16 {
        let mut socks = Vec::new();
        if t % 10 == 0 && t < 90 {
            let remote = format!("{}:443", addrs[usize::from(t / 10) % 3]);
            socks.push(RawSocket::tcp(
                10,
                &format!("10.0.0.2:{}", 40000 + t),
                &remote,
            ));
        }
        feed.push(RawSample::of(vec![RawProcess::fake(10, exe)], socks));
        snap = Some(core.tick().unwrap());
        clock.advance(Duration::from_secs(1));
    }
    snap.unwrap()
}

#[test]
fn a_beacon_rotating_between_three_addresses_of_one_name_is_one_rhythm() {
    use kizuki::model::FindingKind;
    let beacon = |s: &kizuki::model::Snapshot| {
        s.programs
            .iter()
            .flat_map(|p| &p.findings)
            .find(|f| f.kind == FindingKind::Beaconing)
            .cloned()
    };
    let f = beacon(&rotating_beacon(true)).expect("one rhythm by name");
    assert_eq!(f.evidence["remote_name"], "board.example.jp");
    assert_eq!(f.evidence["addresses"], 3);
    assert_eq!(f.evidence["contacts"], 9);
    assert!(f.summary.starts_with("board.example.jp ("), "{}", f.summary);
    assert!(
        beacon(&rotating_beacon(false)).is_none(),
        "by address: no rhythm"
    );
}
