//! Whom a program talks to, in words: the remote's host name (learnt from
//! what the machine itself resolved or sent — kizuki never looks anything
//! up), where it is (this PC, home network, internet) and, from bundled
//! offline data, its country and network owner (AS).
//!
//! Pure parts: [`scope`], [`geo`], [`dns`], [`sni`], [`http_host`],
//! [`packet`], [`cache`]. The OS part, [`capture`], reads packets (root
//! only) and fills a [`cache::NameCache`]; the tracker asks the cache when
//! a connection opens. The guard can host the same pieces.

pub mod cache;
pub mod capture;
pub mod dns;
pub mod dnscache;
pub mod geo;
pub mod host;
pub mod http_host;
pub mod packet;
pub mod peer;
pub mod scope;
pub mod sni;

use std::net::{IpAddr, SocketAddr};

pub use cache::{NameCache, NameSource, RemoteName};
pub use scope::Scope;

use crate::i18n::{Lang, lang, tr, tr_in};

/// What is known about a remote address without the network.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteInfo {
    pub scope: Option<Scope>,
    pub geo: geo::GeoInfo,
}

/// Scope, country and AS of `ip` (country and AS only for internet
/// addresses: private ranges have no owner).
pub fn describe(ip: IpAddr) -> RemoteInfo {
    let scope = scope::scope(ip);
    let geo = match scope {
        Some(Scope::Internet | Scope::ProviderNetwork) => geo::lookup(ip),
        _ => geo::GeoInfo::default(),
    };
    RemoteInfo { scope, geo }
}

/// A country's name in `l` for common codes, else the code itself.
pub fn country_name_in(l: Lang, code: &str) -> String {
    let key = format!("names.country.{code}");
    let t = tr_in(l, &key);
    if t == key { code.to_owned() } else { t }
}

pub fn country_name(code: &str) -> String {
    country_name_in(lang(), code)
}

/// "AS64500 Example Net", or "AS64500" without an owner's name.
pub fn as_words(info: &geo::GeoInfo) -> Option<String> {
    let n = info.asn?;
    Some(match &info.as_org {
        Some(org) => format!("AS{n} {org}"),
        None => format!("AS{n}"),
    })
}

/// The remote in one phrase for sentences: its name first when known,
/// then in parentheses the address, where it is, country and owner —
/// "board.example.jp (203.0.113.7:443, 日本, AS64500 Example Net)".
pub fn endpoint_words(remote: SocketAddr, name: Option<&str>) -> String {
    endpoint_words_in(lang(), remote, name)
}

pub fn endpoint_words_in(l: Lang, remote: SocketAddr, name: Option<&str>) -> String {
    let info = describe(remote.ip());
    let mut details: Vec<String> = Vec::new();
    let head = match name {
        Some(n) => {
            details.push(remote.to_string());
            n.to_owned()
        }
        None => remote.to_string(),
    };
    match info.scope {
        Some(Scope::Internet) | None => {}
        Some(s) => details.push(tr_in(l, s.words_key())),
    }
    if let Some(c) = &info.geo.country {
        details.push(country_name_in(l, c));
    }
    if let Some(a) = as_words(&info.geo) {
        details.push(a);
    }
    if details.is_empty() {
        head
    } else {
        let sep = tr_in(l, "names.list-separator");
        format!("{head} ({})", details.join(&sep))
    }
}

/// The remote in a table cell: its name (else its address), then where
/// it is — "board.example.jp · 日本", "127.0.0.1:8000 · このPC".
pub fn cell_words_in(l: Lang, remote: SocketAddr, name: Option<&str>) -> String {
    let info = describe(remote.ip());
    let head = name.map_or_else(|| remote.to_string(), str::to_owned);
    let place = match info.scope {
        Some(Scope::Internet) => info.geo.country.map(|c| country_name_in(l, &c)),
        Some(s) => Some(tr_in(l, s.words_key())),
        None => None,
    };
    match place {
        Some(p) => format!("{head} · {p}"),
        None => head,
    }
}

/// Everything about the remote, for a tooltip: the sentence of
/// [`endpoint_words_in`] and how the name was learnt (or that it is not
/// known, and why kizuki does not ask).
pub fn hover_words_in(l: Lang, remote: SocketAddr, name: Option<&RemoteName>) -> String {
    let words = endpoint_words_in(l, remote, name.map(|n| n.name.as_str()));
    let how = match name {
        Some(n) => tr_in(l, &format!("names.source.{}", n.source.as_str())),
        None => tr_in(l, "names.unknown-name"),
    };
    format!("{words}\n{how}")
}

/// Scope in words ("この PC", "internet"), empty when unknown.
pub fn scope_words(ip: IpAddr) -> String {
    scope::scope(ip)
        .map(|s| tr(s.words_key()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_words_name_first() {
        let en = |a: &str, n| endpoint_words_in(Lang::En, a.parse().unwrap(), n);
        let w = en("8.8.8.8:443", Some("dns.google"));
        assert!(
            w.starts_with("dns.google (8.8.8.8:443, United States, AS15169 "),
            "{w}"
        );
        assert_eq!(en("127.0.0.1:8000", None), "127.0.0.1:8000 (this PC)");
        let w = endpoint_words_in(
            Lang::Ja,
            "192.168.1.20:8080".parse().unwrap(),
            Some("nas.lan"),
        );
        assert_eq!(w, "nas.lan (192.168.1.20:8080、家庭内ネットワーク)");
    }

    #[test]
    fn cell_and_hover_words() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            cell_words_in(Lang::Ja, a("127.0.0.1:8000"), None),
            "127.0.0.1:8000 · このPC"
        );
        assert_eq!(
            cell_words_in(Lang::En, a("8.8.8.8:443"), Some("dns.google")),
            "dns.google · United States"
        );
        assert_eq!(
            cell_words_in(Lang::En, a("203.0.113.7:443"), None),
            "203.0.113.7:443"
        );
        let n = RemoteName {
            name: "board.example.jp".into(),
            source: NameSource::Sni,
            seen: std::time::SystemTime::UNIX_EPOCH,
        };
        let h = hover_words_in(Lang::En, a("127.0.0.9:8443"), Some(&n));
        assert_eq!(
            h,
            "board.example.jp (127.0.0.9:8443, this PC)\nname sent at the start of the connection (TLS): what the program itself claimed"
        );
        assert!(
            hover_words_in(Lang::Ja, a("203.0.113.7:443"), None).contains("問い合わせをしません")
        );
    }

    #[test]
    fn unknown_country_codes_show_as_the_code() {
        assert_eq!(country_name_in(Lang::Ja, "JP"), "日本");
        assert_eq!(country_name_in(Lang::En, "JP"), "Japan");
        assert_eq!(country_name_in(Lang::En, "QQ"), "QQ");
    }
}
