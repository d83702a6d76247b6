//! What the program does on the network: accepts incoming connections
//! (`listening`) or uses Tor (`tor`).

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};

use serde_json::json;

use super::places::{PathStyle, is_system_program};
use super::{Detected, evidence, is_trusted};
use crate::i18n::{tr, tr_args};
use crate::model::{FindingKind, Program, Protocol, Severity, SockState};

/// How far away an address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    /// This PC.
    Loopback,
    /// The home or office network (private and link-local ranges).
    Private,
    /// The internet.
    Public,
}

impl Reach {
    pub fn as_str(self) -> &'static str {
        match self {
            Reach::Loopback => "loopback",
            Reach::Private => "private",
            Reach::Public => "public",
        }
    }
}

pub fn reach(ip: IpAddr) -> Reach {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            if v4.is_loopback() {
                Reach::Loopback
            } else if v4.is_private() || v4.is_link_local() || v4.is_unspecified() {
                Reach::Private
            } else {
                Reach::Public
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Reach::Loopback
            } else if v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80
            // link-local fe80::/10
            {
                Reach::Private
            } else {
                Reach::Public
            }
        }
    }
}

/// `listening`: a program not marked trusted has a TCP listening socket.
/// UDP is left out: browsers (QUIC), DNS and mDNS bind UDP on every
/// interface all day, so it would cry wolf.
pub fn listening(p: &Program, style: PathStyle) -> Option<Detected> {
    if is_trusted(p) {
        return None;
    }
    let listeners: BTreeSet<SocketAddr> = p
        .connections
        .iter()
        .filter(|c| c.protocol == Protocol::Tcp && c.state == SockState::Listen)
        .map(|c| c.local)
        .collect();
    if listeners.is_empty() {
        return None;
    }
    let wide = listeners.iter().any(|a| reach(a.ip()) != Reach::Loopback);
    let all = listeners.iter().any(|a| a.ip().is_unspecified());
    let system = is_system_program(p, style);
    let severity = match (wide, system) {
        (true, false) => Severity::Medium,
        (true, true) | (false, false) => Severity::Low,
        (false, true) => Severity::Info,
    };
    let ports: BTreeSet<u16> = listeners.iter().map(|a| a.port()).collect();
    let ports: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
    Some(Detected {
        kind: FindingKind::Listening,
        severity,
        summary: tr_args(
            if wide {
                "findings.listening.wide"
            } else {
                "findings.listening.local"
            },
            &[("ports", &ports.join(", "))],
        ),
        evidence: evidence([
            (
                "addresses",
                json!(listeners.iter().map(|a| a.to_string()).collect::<Vec<_>>()),
            ),
            ("all_interfaces", json!(all)),
            ("other_computers", json!(wide)),
        ]),
    })
}

/// Tor's local SOCKS ports (Tor daemon, Tor Browser).
pub const TOR_SOCKS_PORTS: [u16; 2] = [9050, 9150];
/// Tor's usual relay (ORPort) and directory ports.
pub const TOR_RELAY_PORTS: [u16; 2] = [9001, 9030];

fn is_tor_name(name: &str) -> bool {
    let n = name.to_lowercase();
    n == "tor" || n == "tor.exe"
}

/// A program named `tor` (its file or one of its processes).
pub fn is_tor_program(p: &Program) -> bool {
    is_tor_name(&p.name)
        || p.exe
            .as_ref()
            .and_then(|e| e.file_name())
            .is_some_and(|n| is_tor_name(&n.to_string_lossy()))
        || p.processes.iter().any(|x| is_tor_name(&x.name))
}

/// `tor`: connects to Tor's SOCKS ports or to a loopback listener of a
/// Tor-like program (`tor_socks`: port → owner; it sends its traffic
/// through Tor), is itself Tor (by name, or by keeping Tor's data files:
/// `tor_data`), or reaches Tor's relay ports.
pub fn tor(p: &Program, tor_data: bool, tor_socks: &HashMap<u16, String>) -> Option<Detected> {
    let remote_on = |ports: &[u16]| {
        p.connections
            .iter()
            .filter_map(|c| c.remote)
            .find(|r| ports.contains(&r.port()))
    };
    let named = is_tor_program(p);
    let socks = remote_on(&TOR_SOCKS_PORTS).filter(|_| !named && !tor_data);
    // A client of a Tor-like program's local listener, whatever its port.
    let via = p
        .connections
        .iter()
        .filter(|c| c.state != SockState::Listen)
        .filter_map(|c| c.remote)
        .filter(|r| reach(r.ip()) == Reach::Loopback)
        .find_map(|r| tor_socks.get(&r.port()).map(|owner| (r, owner)))
        .filter(|(_, owner)| **owner != p.name);
    let relay = remote_on(&TOR_RELAY_PORTS);
    let (reason, endpoint, severity, summary) = if let Some(ep) = socks {
        (
            "socks",
            Some(ep),
            Severity::High,
            tr_args("findings.tor.socks", &[("port", &ep.port().to_string())]),
        )
    } else if let Some((ep, owner)) = via {
        (
            "socks",
            Some(ep),
            Severity::High,
            tr_args(
                "findings.tor.via_tor_program",
                &[("owner", owner), ("port", &ep.port().to_string())],
            ),
        )
    } else if tor_data && !named {
        (
            "data-dir",
            relay,
            Severity::Medium,
            tr("findings.tor.data_dir"),
        )
    } else if named || tor_data {
        ("client", relay, Severity::Medium, tr("findings.tor.client"))
    } else if let Some(ep) = relay {
        (
            "relay",
            Some(ep),
            Severity::Medium,
            tr_args("findings.tor.relay", &[("port", &ep.port().to_string())]),
        )
    } else {
        return None;
    };
    Some(Detected {
        kind: FindingKind::Tor,
        severity: if is_trusted(p) {
            Severity::Low
        } else {
            severity
        },
        summary,
        evidence: evidence([
            ("reason", json!(reason)),
            ("endpoint", json!(endpoint.map(|e| e.to_string()))),
        ]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testkit::{listen, outgoing, program};
    use crate::model::{Connection, Mark};

    type Case = (&'static str, Program, Option<(Severity, &'static str)>);

    #[test]
    fn reach_table() {
        let cases = [
            ("127.0.0.1", Reach::Loopback),
            ("::1", Reach::Loopback),
            ("::ffff:127.0.0.1", Reach::Loopback),
            ("192.168.1.10", Reach::Private),
            ("10.1.2.3", Reach::Private),
            ("172.20.0.1", Reach::Private),
            ("169.254.1.1", Reach::Private),
            ("fe80::1", Reach::Private),
            ("fd00::1", Reach::Private),
            ("203.0.113.7", Reach::Public),
            ("2001:db8::1", Reach::Public),
            ("::ffff:8.8.8.8", Reach::Public),
        ];
        for (ip, want) in cases {
            assert_eq!(reach(ip.parse().unwrap()), want, "{ip}");
        }
    }

    fn with(exe: &str, conns: Vec<Connection>, mark: Option<Mark>) -> Program {
        let mut p = program(exe, conns);
        p.mark = mark;
        p
    }

    #[test]
    fn listening_table() {
        let mut hidden_root = program("/x", vec![listen("0.0.0.0:22")]);
        hidden_root.exe = None;
        hidden_root.processes[0].uid = Some(0);
        let mut udp = listen("0.0.0.0:5353");
        udp.protocol = Protocol::Udp;
        udp.state = SockState::Unconn;
        let cases: Vec<(&str, Program, Option<Severity>)> = vec![
            (
                "backdoor on all interfaces",
                with("/home/a/tool", vec![listen("0.0.0.0:4444")], None),
                Some(Severity::Medium),
            ),
            (
                "IPv6 any",
                with("/home/a/tool", vec![listen("[::]:4444")], None),
                Some(Severity::Medium),
            ),
            (
                "LAN address",
                with("/home/a/tool", vec![listen("192.168.1.5:80")], None),
                Some(Severity::Medium),
            ),
            (
                "loopback only",
                with("/tmp/x/tool", vec![listen("127.0.0.1:8000")], None),
                Some(Severity::Low),
            ),
            (
                "sshd from /usr/sbin",
                with("/usr/sbin/sshd", vec![listen("0.0.0.0:22")], None),
                Some(Severity::Low),
            ),
            ("sshd seen without root", hidden_root, Some(Severity::Low)),
            (
                "cups on loopback",
                with("/usr/sbin/cupsd", vec![listen("127.0.0.1:631")], None),
                Some(Severity::Info),
            ),
            (
                "trusted",
                with(
                    "/home/a/tool",
                    vec![listen("0.0.0.0:4444")],
                    Some(Mark::Trusted),
                ),
                None,
            ),
            (
                "client only",
                with("/home/a/tool", vec![outgoing("203.0.113.1:443")], None),
                None,
            ),
            ("udp bound", with("/home/a/tool", vec![udp], None), None),
        ];
        for (name, p, want) in cases {
            let got = listening(&p, PathStyle::Unix).map(|d| d.severity);
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn listening_evidence_names_addresses() {
        let p = program(
            "/home/a/tool",
            vec![listen("0.0.0.0:4444"), listen("127.0.0.1:5000")],
        );
        let d = listening(&p, PathStyle::Unix).unwrap();
        assert_eq!(
            d.evidence["addresses"],
            json!(["0.0.0.0:4444", "127.0.0.1:5000"])
        );
        assert_eq!(d.evidence["all_interfaces"], json!(true));
    }

    #[test]
    fn tor_table() {
        let mut tor_client = program("/usr/bin/tor", vec![outgoing("198.51.100.4:9001")]);
        tor_client.name = "tor".into();
        let cases: Vec<Case> = vec![
            (
                "uses the local SOCKS port",
                with("/tmp/x/tool", vec![outgoing("127.0.0.1:9050")], None),
                Some((Severity::High, "socks")),
            ),
            (
                "Tor Browser's port",
                with("/home/a/tool", vec![outgoing("127.0.0.1:9150")], None),
                Some((Severity::High, "socks")),
            ),
            ("tor client", tor_client, Some((Severity::Medium, "client"))),
            (
                "relay port",
                with("/home/a/tool", vec![outgoing("198.51.100.4:9030")], None),
                Some((Severity::Medium, "relay")),
            ),
            (
                "trusted Tor Browser",
                with(
                    "/home/a/tor-browser/firefox",
                    vec![outgoing("127.0.0.1:9150")],
                    Some(Mark::Trusted),
                ),
                Some((Severity::Low, "socks")),
            ),
            (
                "https",
                with("/usr/bin/firefox", vec![outgoing("198.51.100.4:443")], None),
                None,
            ),
            (
                "listens on 9050 itself but not tor",
                with("/home/a/tool", vec![listen("127.0.0.1:9050")], None),
                None,
            ),
            (
                "name contains tor",
                with("/usr/bin/editor", vec![], None),
                None,
            ),
        ];
        for (name, p, want) in cases {
            let got = tor(&p, false, &HashMap::new()).map(|d| {
                let r = d.evidence["reason"].as_str().unwrap().to_string();
                (d.severity, r)
            });
            assert_eq!(got, want.map(|(s, r)| (s, r.to_string())), "{name}");
        }
    }
}
