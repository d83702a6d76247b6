//! How the connections table is ordered: by a column the user clicked,
//! newest first by default. Pure, so it is tested without a window.

use std::cmp::Ordering;

use crate::model::Connection;

/// A column of the connections table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConnColumn {
    Protocol,
    Local,
    Remote,
    State,
    /// When kizuki first saw it (the default).
    #[default]
    First,
    Last,
}

impl ConnColumn {
    pub const ALL: [ConnColumn; 6] = [
        ConnColumn::Protocol,
        ConnColumn::Local,
        ConnColumn::Remote,
        ConnColumn::State,
        ConnColumn::First,
        ConnColumn::Last,
    ];

    /// The header's catalog key.
    pub fn key(self) -> &'static str {
        match self {
            ConnColumn::Protocol => "gui.conn.protocol",
            ConnColumn::Local => "gui.conn.local",
            ConnColumn::Remote => "gui.conn.remote",
            ConnColumn::State => "gui.conn.state",
            ConnColumn::First => "gui.conn.first",
            ConnColumn::Last => "gui.conn.last",
        }
    }

    /// Times start newest first; the rest A to Z.
    fn descending_first(self) -> bool {
        matches!(self, ConnColumn::First | ConnColumn::Last)
    }
}

/// The order of the connections table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnSort {
    pub column: ConnColumn,
    pub descending: bool,
}

impl Default for ConnSort {
    /// Newest first.
    fn default() -> Self {
        ConnSort {
            column: ConnColumn::First,
            descending: true,
        }
    }
}

impl ConnSort {
    /// A click on `column`'s header: the same column turns around, another
    /// starts in its natural direction.
    pub fn clicked(self, column: ConnColumn) -> ConnSort {
        if self.column == column {
            ConnSort {
                column,
                descending: !self.descending,
            }
        } else {
            ConnSort {
                column,
                descending: column.descending_first(),
            }
        }
    }
}

fn compare(a: &Connection, b: &Connection, column: ConnColumn) -> Ordering {
    match column {
        ConnColumn::Protocol => a.protocol.cmp(&b.protocol),
        ConnColumn::Local => a.local.cmp(&b.local),
        ConnColumn::Remote => a.remote.cmp(&b.remote),
        // Live ones before ended ones, then by the kernel's state.
        ConnColumn::State => (!a.live, a.state).cmp(&(!b.live, b.state)),
        ConnColumn::First => a.first_seen.cmp(&b.first_seen),
        ConnColumn::Last => a.last_seen.cmp(&b.last_seen),
    }
}

/// Indices of `conns` in the order `sort` asks; ties keep a fixed order
/// (newest first, then the addresses) so rows never swap places between
/// frames.
pub fn order(conns: &[Connection], sort: ConnSort) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..conns.len()).collect();
    idx.sort_by(|&i, &j| {
        let (a, b) = (&conns[i], &conns[j]);
        let primary = compare(a, b, sort.column);
        let primary = if sort.descending {
            primary.reverse()
        } else {
            primary
        };
        primary
            .then_with(|| b.first_seen.cmp(&a.first_seen))
            .then_with(|| (a.protocol, a.local, a.remote).cmp(&(b.protocol, b.local, b.remote)))
    });
    idx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Protocol, SockState};
    use std::time::{Duration, SystemTime};

    fn conn(port: u16, first: u64) -> Connection {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(first);
        Connection {
            pid: Some(1),
            protocol: Protocol::Tcp,
            local: format!("10.0.0.2:{port}").parse().unwrap(),
            remote: Some("203.0.113.7:443".parse().unwrap()),
            state: SockState::Established,
            first_seen: t,
            last_seen: t + Duration::from_secs(5),
            live: true,
            uid: None,
            remote_name: None,
            bytes_sent: None,
            bytes_received: None,
        }
    }

    #[test]
    fn newest_first_by_default_not_by_port() {
        // Ports ascending, times not: the table must follow the times.
        let conns = vec![conn(40000, 67), conn(40001, 118), conn(40002, 16)];
        assert_eq!(order(&conns, ConnSort::default()), vec![1, 0, 2]);
        let oldest = ConnSort::default().clicked(ConnColumn::First);
        assert_eq!(order(&conns, oldest), vec![2, 0, 1]);
        let by_local = oldest.clicked(ConnColumn::Local);
        assert!(!by_local.descending);
        assert_eq!(order(&conns, by_local), vec![0, 1, 2]);
    }
}
