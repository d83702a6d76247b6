//! Cutting a program's open TCP connections on Windows. A new firewall
//! rule stops new connections only; a trojan already talking to its
//! server would go on. `SetTcpEntry` with the "delete TCB" state resets a
//! connection (IPv4 only: Windows has no such call for IPv6). The row's
//! fields are in network byte order, built here as data and tested on
//! Linux; only the call is Windows-only.

use std::net::SocketAddr;

use crate::firewall::plan::Flow;
use crate::model::Protocol;

/// The address and port fields of a `MIB_TCPROW`, in network byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRow {
    pub local_addr: u32,
    pub local_port: u32,
    pub remote_addr: u32,
    pub remote_port: u32,
}

/// The row for `flow`, or `None` when Windows cannot cut it (UDP has no
/// connection; IPv6 has no call).
pub fn row_for(flow: &Flow) -> Option<TcpRow> {
    if flow.protocol != Protocol::Tcp {
        return None;
    }
    let (SocketAddr::V4(local), SocketAddr::V4(remote)) = (flow.local, flow.remote) else {
        return None;
    };
    // The bytes in memory must be the address's own bytes, in order.
    Some(TcpRow {
        local_addr: u32::from_ne_bytes(local.ip().octets()),
        local_port: u32::from(local.port().to_be()),
        remote_addr: u32::from_ne_bytes(remote.ip().octets()),
        remote_port: u32::from(remote.port().to_be()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(protocol: Protocol, local: &str, remote: &str) -> Flow {
        Flow {
            protocol,
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
        }
    }

    #[test]
    fn fields_hold_the_address_and_port_bytes_in_network_order() {
        let row = row_for(&flow(
            Protocol::Tcp,
            "192.168.1.20:50000",
            "203.0.113.7:8080",
        ))
        .unwrap();
        assert_eq!(row.local_addr.to_ne_bytes(), [192, 168, 1, 20]);
        assert_eq!(row.remote_addr.to_ne_bytes(), [203, 0, 113, 7]);
        // 8080 = 0x1F90: high byte first in memory, then zero padding.
        assert_eq!(row.remote_port.to_ne_bytes()[..2], [0x1F, 0x90]);
        assert_eq!(row.local_port.to_ne_bytes()[..2], 50000u16.to_be_bytes());
        assert_eq!(row.remote_port.to_ne_bytes()[2..], [0, 0]);
    }

    #[test]
    fn udp_and_ipv6_cannot_be_cut_this_way() {
        assert_eq!(
            row_for(&flow(Protocol::Udp, "10.0.0.2:5353", "10.0.0.1:53")),
            None
        );
        assert_eq!(
            row_for(&flow(
                Protocol::Tcp,
                "[2001:db8::2]:50000",
                "[2001:db8::1]:443"
            )),
            None
        );
    }
}
