//! IP → names, learnt from what the machine itself resolved or sent: DNS
//! answers, TLS server names and HTTP Host headers seen on the wire.
//!
//! Every name keeps how it was learnt, when, and (for DNS) which process
//! asked where that is known. [`NameCache::best`] picks, for one
//! connection: the name its own process looked up, else the name that
//! very connection sent (SNI/Host), else the latest DNS answer anyone got
//! for the address, else a name another connection to it sent. It never
//! invents one.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// How a name was learnt (`remote_name_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NameSource {
    Dns,
    Sni,
    Http,
}

impl NameSource {
    pub fn as_str(self) -> &'static str {
        match self {
            NameSource::Dns => "dns",
            NameSource::Sni => "sni",
            NameSource::Http => "http",
        }
    }

    pub fn parse(s: &str) -> Option<NameSource> {
        match s {
            "dns" => Some(NameSource::Dns),
            "sni" => Some(NameSource::Sni),
            "http" => Some(NameSource::Http),
            _ => None,
        }
    }
}

/// The name given to a connection's remote address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteName {
    pub name: String,
    pub source: NameSource,
    /// When the name was seen on the wire.
    pub seen: SystemTime,
}

/// Names older than this are forgotten.
pub const MAX_AGE: Duration = Duration::from_secs(6 * 3600);
const MAX_IPS: usize = 16_384;
const NAMES_PER_IP: usize = 8;
const MAX_FLOWS: usize = 4096;

#[derive(Debug, Clone)]
struct Entry {
    name: RemoteName,
    asker: Option<u32>,
}

#[derive(Debug, Default)]
struct Inner {
    by_ip: HashMap<IpAddr, Vec<Entry>>,
    by_flow: HashMap<(SocketAddr, SocketAddr), RemoteName>,
}

/// Shared between the packet reader (writes) and the tracker (reads).
#[derive(Debug, Default)]
pub struct NameCache {
    inner: Mutex<Inner>,
}

fn canon(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// Drops the oldest eighth of a full map (amortised: rarely runs).
fn make_room<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    max: usize,
    seen: impl Fn(&V) -> SystemTime,
) {
    if map.len() < max {
        return;
    }
    let mut ages: Vec<(SystemTime, K)> = map.iter().map(|(k, v)| (seen(v), k.clone())).collect();
    ages.sort_by_key(|(t, _)| *t);
    for (_, k) in ages.into_iter().take(max / 8 + 1) {
        map.remove(&k);
    }
}

fn newest(v: &[Entry]) -> SystemTime {
    v.iter()
        .map(|e| e.name.seen)
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

impl NameCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_empty(&self) -> bool {
        let g = self.lock();
        g.by_ip.is_empty() && g.by_flow.is_empty()
    }

    fn add_ip(g: &mut Inner, ip: IpAddr, name: RemoteName, asker: Option<u32>) {
        let ip = ip.to_canonical();
        if !g.by_ip.contains_key(&ip) {
            make_room(&mut g.by_ip, MAX_IPS, |v| newest(v));
        }
        let list = g.by_ip.entry(ip).or_default();
        if let Some(e) = list
            .iter_mut()
            .find(|e| e.name.name == name.name && e.name.source == name.source && e.asker == asker)
        {
            e.name.seen = e.name.seen.max(name.seen);
            return;
        }
        list.push(Entry { name, asker });
        if list.len() > NAMES_PER_IP {
            list.sort_by_key(|e| std::cmp::Reverse(e.name.seen));
            list.truncate(NAMES_PER_IP);
        }
    }

    /// A DNS answer gave `ip` to `name`; `asker` is the process that
    /// asked, when known.
    pub fn record_dns(&self, ip: IpAddr, name: &str, asker: Option<u32>, at: SystemTime) {
        let mut g = self.lock();
        let name = RemoteName {
            name: name.to_owned(),
            source: NameSource::Dns,
            seen: at,
        };
        Self::add_ip(&mut g, ip, name, asker);
    }

    /// The connection `local` → `remote` sent `name` (TLS SNI or HTTP Host).
    pub fn record_flow(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        name: &str,
        source: NameSource,
        at: SystemTime,
    ) {
        let mut g = self.lock();
        let name = RemoteName {
            name: name.to_owned(),
            source,
            seen: at,
        };
        let key = (canon(local), canon(remote));
        if !g.by_flow.contains_key(&key) {
            make_room(&mut g.by_flow, MAX_FLOWS, |n| n.seen);
        }
        g.by_flow.insert(key, name.clone());
        Self::add_ip(&mut g, remote.ip(), name, None);
    }

    /// The name for the connection `local` → `remote` held by `pid`, by
    /// the order in the module comment; names older than [`MAX_AGE`] at
    /// `now` do not count.
    pub fn best(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        pid: Option<u32>,
        now: SystemTime,
    ) -> Option<RemoteName> {
        let horizon = now.checked_sub(MAX_AGE).unwrap_or(SystemTime::UNIX_EPOCH);
        let g = self.lock();
        let fresh = |n: &RemoteName| n.seen >= horizon;
        let entries = g.by_ip.get(&remote.ip().to_canonical());
        let latest = |pred: &dyn Fn(&Entry) -> bool| {
            entries?
                .iter()
                .filter(|e| fresh(&e.name) && pred(e))
                .max_by_key(|e| e.name.seen)
                .map(|e| e.name.clone())
        };
        if let Some(p) = pid
            && let Some(n) = latest(&|e| e.name.source == NameSource::Dns && e.asker == Some(p))
        {
            return Some(n);
        }
        if let Some(n) = g.by_flow.get(&(canon(local), canon(remote)))
            && fresh(n)
        {
            return Some(n.clone());
        }
        latest(&|e| e.name.source == NameSource::Dns).or_else(|| latest(&|_| true))
    }

    /// Forgets names older than [`MAX_AGE`].
    pub fn prune(&self, now: SystemTime) {
        let horizon = now.checked_sub(MAX_AGE).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut g = self.lock();
        g.by_ip.retain(|_, v| {
            v.retain(|e| e.name.seen >= horizon);
            !v.is_empty()
        });
        g.by_flow.retain(|_, n| n.seen >= horizon);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }
    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_connecting_programs_own_lookup_wins() {
        let c = NameCache::new();
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let (local, remote) = (sa("10.0.0.2:40000"), sa("203.0.113.7:443"));
        c.record_dns(ip, "cdn.example.net", Some(10), t(1));
        c.record_dns(ip, "board.example.jp", Some(20), t(2));
        c.record_dns(ip, "other.example.org", Some(30), t(3));
        let best = c.best(local, remote, Some(20), t(4)).unwrap();
        assert_eq!(
            (best.name.as_str(), best.source),
            ("board.example.jp", NameSource::Dns)
        );
        // Another program: the latest answer anyone got.
        assert_eq!(
            c.best(local, remote, Some(99), t(4)).unwrap().name,
            "other.example.org"
        );
    }

    #[test]
    fn the_connections_own_sni_beats_other_peoples_dns() {
        let c = NameCache::new();
        let (local, remote) = (sa("10.0.0.2:40000"), sa("203.0.113.7:443"));
        c.record_dns(remote.ip(), "other.example.org", Some(30), t(1));
        c.record_flow(local, remote, "board.example.jp", NameSource::Sni, t(2));
        let best = c.best(local, remote, Some(20), t(3)).unwrap();
        assert_eq!(
            (best.name.as_str(), best.source),
            ("board.example.jp", NameSource::Sni)
        );
        // Another connection to the same address: DNS first.
        let other = c
            .best(sa("10.0.0.2:40001"), remote, Some(20), t(3))
            .unwrap();
        assert_eq!(other.source, NameSource::Dns);
    }

    #[test]
    fn sni_alone_names_the_address_for_other_connections_too() {
        let c = NameCache::new();
        let remote = sa("[::ffff:127.0.0.9]:8443");
        c.record_flow(
            sa("127.0.0.1:5555"),
            remote,
            "board.example.jp",
            NameSource::Sni,
            t(1),
        );
        let n = c
            .best(sa("127.0.0.1:5556"), sa("127.0.0.9:8443"), None, t(2))
            .unwrap();
        assert_eq!(n.source, NameSource::Sni);
    }

    #[test]
    fn unknown_and_old_names_are_absent() {
        let c = NameCache::new();
        let remote = sa("203.0.113.7:443");
        assert_eq!(c.best(sa("10.0.0.2:1"), remote, None, t(0)), None);
        c.record_dns(remote.ip(), "board.example.jp", None, t(0));
        assert!(c.best(sa("10.0.0.2:1"), remote, None, t(10)).is_some());
        let later = t(0) + MAX_AGE + Duration::from_secs(1);
        assert_eq!(c.best(sa("10.0.0.2:1"), remote, None, later), None);
        c.prune(later);
        assert!(c.is_empty());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let c = NameCache::new();
        for i in 0..(MAX_IPS as u32 + 100) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            c.record_dns(ip, "x.example", None, t(u64::from(i)));
        }
        for i in 0..20 {
            c.record_dns(
                "203.0.113.7".parse().unwrap(),
                &format!("n{i}.example"),
                None,
                t(i),
            );
        }
        let g = c.lock();
        assert!(g.by_ip.len() <= MAX_IPS);
        assert!(g.by_ip.values().all(|v| v.len() <= NAMES_PER_IP));
    }
}
