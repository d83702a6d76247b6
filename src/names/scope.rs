//! Where an address is, in plain words: this PC, the home network, or the
//! internet.
//!
//! Carrier-grade NAT space (100.64.0.0/10, RFC 6598) belongs to the
//! internet provider, not to the home: traffic to it leaves the house. It
//! is [`Scope::ProviderNetwork`] in the window's words and `internet` in the
//! JSON (the contract's three values), so nobody is told a provider's
//! machine sits in their home.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How far away an address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Loopback: the PC talks to itself.
    ThisPc,
    /// Private, link-local, unique-local and local multicast ranges.
    HomeNetwork,
    /// The provider's shared address space (CGNAT).
    ProviderNetwork,
    Internet,
}

impl Scope {
    /// The contract's JSON value (`remote_scope`).
    pub fn as_json(self) -> &'static str {
        match self {
            Scope::ThisPc => "this-pc",
            Scope::HomeNetwork => "home-network",
            Scope::ProviderNetwork | Scope::Internet => "internet",
        }
    }

    /// The i18n key of its words.
    pub fn words_key(self) -> &'static str {
        match self {
            Scope::ThisPc => "names.scope.this-pc",
            Scope::HomeNetwork => "names.scope.home-network",
            Scope::ProviderNetwork => "names.scope.provider-network",
            Scope::Internet => "names.scope.internet",
        }
    }
}

/// The scope of `ip`; `None` for the unspecified address (no peer).
pub fn scope(ip: IpAddr) -> Option<Scope> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => scope_v4(v4),
        IpAddr::V6(v6) => scope_v6(v6),
    }
}

fn scope_v4(a: Ipv4Addr) -> Option<Scope> {
    let o = a.octets();
    if a.is_unspecified() {
        None
    } else if a.is_loopback() {
        Some(Scope::ThisPc)
    } else if a.is_private() || a.is_link_local() || a.is_broadcast() || a.is_multicast() {
        Some(Scope::HomeNetwork)
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some(Scope::ProviderNetwork)
    } else {
        Some(Scope::Internet)
    }
}

fn scope_v6(a: Ipv6Addr) -> Option<Scope> {
    let first = a.segments()[0];
    if a.is_unspecified() {
        None
    } else if a.is_loopback() {
        Some(Scope::ThisPc)
    } else if (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (a.is_multicast() && (first & 0x000f) <= 5)
    // interface-, link-, realm-, admin- and site-local multicast
    {
        Some(Scope::HomeNetwork)
    } else {
        Some(Scope::Internet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_table() {
        let cases: &[(&str, Option<Scope>)] = &[
            ("127.0.0.1", Some(Scope::ThisPc)),
            ("127.0.0.53", Some(Scope::ThisPc)),
            ("::1", Some(Scope::ThisPc)),
            ("::ffff:127.0.0.1", Some(Scope::ThisPc)),
            ("10.1.2.3", Some(Scope::HomeNetwork)),
            ("172.16.0.1", Some(Scope::HomeNetwork)),
            ("172.31.255.255", Some(Scope::HomeNetwork)),
            ("172.32.0.1", Some(Scope::Internet)),
            ("192.168.1.20", Some(Scope::HomeNetwork)),
            ("::ffff:192.168.1.20", Some(Scope::HomeNetwork)),
            ("169.254.10.1", Some(Scope::HomeNetwork)),
            ("fe80::1", Some(Scope::HomeNetwork)),
            ("fd12:3456::1", Some(Scope::HomeNetwork)),
            ("fc00::1", Some(Scope::HomeNetwork)),
            ("224.0.0.251", Some(Scope::HomeNetwork)),
            ("ff02::fb", Some(Scope::HomeNetwork)),
            ("100.64.0.1", Some(Scope::ProviderNetwork)),
            ("100.127.255.254", Some(Scope::ProviderNetwork)),
            ("100.128.0.1", Some(Scope::Internet)),
            ("100.63.255.255", Some(Scope::Internet)),
            ("203.0.113.7", Some(Scope::Internet)),
            ("8.8.8.8", Some(Scope::Internet)),
            ("2001:db8::1", Some(Scope::Internet)),
            ("2606:4700::1111", Some(Scope::Internet)),
            ("ff0e::1", Some(Scope::Internet)),
            ("0.0.0.0", None),
            ("::", None),
        ];
        for (ip, want) in cases {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(scope(ip), *want, "{ip}");
        }
    }

    #[test]
    fn json_keeps_the_contracts_three_values() {
        assert_eq!(Scope::ThisPc.as_json(), "this-pc");
        assert_eq!(Scope::HomeNetwork.as_json(), "home-network");
        assert_eq!(Scope::ProviderNetwork.as_json(), "internet");
        assert_eq!(Scope::Internet.as_json(), "internet");
    }
}
