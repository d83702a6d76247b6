//! Whom a rhythm is with: contacts are grouped by the remote's name when
//! one is known (a server behind a CDN or a C2 rotating between addresses
//! is one peer), by address otherwise. Used by the beaconing detector.

use std::net::SocketAddr;
use std::str::FromStr;

/// The grouping key of a contact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerKey {
    /// A named remote and port, whatever its address.
    Name(String, u16),
    Addr(SocketAddr),
}

/// The key for a contact with `remote`, named `name` when known.
pub fn peer_key(remote: SocketAddr, name: Option<&str>) -> PeerKey {
    match name {
        Some(n) => PeerKey::Name(n.to_owned(), remote.port()),
        None => PeerKey::Addr(SocketAddr::new(remote.ip().to_canonical(), remote.port())),
    }
}

/// A peer as the detector reports it: its key, the address seen last and
/// how many addresses it used.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Peer {
    pub key: PeerKey,
    pub addr: SocketAddr,
    pub addresses: usize,
}

impl Peer {
    pub fn name(&self) -> Option<&str> {
        match &self.key {
            PeerKey::Name(n, _) => Some(n),
            PeerKey::Addr(_) => None,
        }
    }
}

impl From<SocketAddr> for Peer {
    fn from(a: SocketAddr) -> Self {
        Peer {
            key: peer_key(a, None),
            addr: a,
            addresses: 1,
        }
    }
}

/// Parses an address peer (`ip:port`), for tables and tests.
impl FromStr for Peer {
    type Err = std::net::AddrParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<SocketAddr>().map(Peer::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_contacts_share_a_key_across_addresses() {
        let a = peer_key("203.0.113.7:443".parse().unwrap(), Some("board.example.jp"));
        let b = peer_key(
            "198.51.100.9:443".parse().unwrap(),
            Some("board.example.jp"),
        );
        assert_eq!(a, b);
        let c = peer_key(
            "198.51.100.9:8443".parse().unwrap(),
            Some("board.example.jp"),
        );
        assert_ne!(a, c, "another port is another service");
        let x = peer_key("[::ffff:203.0.113.7]:443".parse().unwrap(), None);
        assert_eq!(x, peer_key("203.0.113.7:443".parse().unwrap(), None));
    }
}
