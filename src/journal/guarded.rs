//! `kizuki history` through the guard: when the guard answers, its
//! root-owned journal is shown (every user's records for root and the
//! admin group, else the asking user's own), read a page at a time; when
//! it does not, the caller falls back to the user's own journal. Either
//! way the user is told which one is shown.

use crate::guard::api::{Reply, Request};
use crate::guard::client::{GuardLink, LinkError, SocketLink};
use crate::guard::history::{HistoryPage, HistoryQuery, HistoryScope, HistoryVerify};
use crate::i18n::{tr, tr_args};
use crate::journal::{EventRow, Head, SessionRow};

/// Most rows `kizuki history` reads from the guard in one run.
pub const MAX_ROWS: usize = 100_000;

/// What the guard showed.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardHistory {
    pub scope: HistoryScope,
    pub head: Head,
    pub sessions: Vec<SessionRow>,
    pub events: Vec<EventRow>,
    /// More rows than [`MAX_ROWS`] were there.
    pub truncated: bool,
}

/// Why the guard's journal is not shown.
#[derive(Debug)]
pub enum NotShown {
    /// No guard answers: use the user's own journal.
    NoGuard,
    /// A guard answered but could not show its journal (an older guard, no
    /// journal yet, a damaged file): said, then the user's own is used.
    Failed(String),
}

fn ask(link: &mut dyn GuardLink, req: &Request) -> Result<Reply, NotShown> {
    match link.call(req) {
        Ok(r) => Ok(r),
        Err(LinkError::NotRunning { .. }) => Err(NotShown::NoGuard),
        Err(e) => Err(NotShown::Failed(e.to_string())),
    }
}

fn unexpected(r: Reply) -> NotShown {
    NotShown::Failed(match r {
        Reply::Refused { detail, .. } | Reply::Failed { detail, .. } => detail,
        other => format!("{other:?}"),
    })
}

/// One page of the guard's journal.
fn one_page(link: &mut dyn GuardLink, query: &HistoryQuery) -> Result<HistoryPage, NotShown> {
    match ask(
        link,
        &Request::History {
            query: query.clone(),
        },
    )? {
        Reply::History { page } => Ok(*page),
        other => Err(unexpected(other)),
    }
}

impl GuardHistory {
    /// Empty, with the scope and head of the first page.
    fn of(page: &HistoryPage) -> GuardHistory {
        GuardHistory {
            scope: page.scope,
            head: page.head.head(),
            sessions: Vec::new(),
            events: Vec::new(),
            truncated: false,
        }
    }
}

/// Every page of the guard's journal for these filters, until about
/// `max_rows` rows (at most [`MAX_ROWS`]) were read.
pub fn history(
    link: &mut dyn GuardLink,
    exe: Option<String>,
    since_ms: Option<i64>,
    max_rows: usize,
) -> Result<GuardHistory, NotShown> {
    let max_rows = max_rows.min(MAX_ROWS);
    let mut query = HistoryQuery {
        exe,
        since_ms,
        ..HistoryQuery::default()
    };
    let mut out: Option<GuardHistory> = None;
    loop {
        let page = one_page(link, &query)?;
        let acc = out.get_or_insert_with(|| GuardHistory::of(&page));
        acc.sessions.extend(page.sessions.iter().map(|s| s.row()));
        acc.events.extend(page.events.iter().map(|e| e.row()));
        match page.next_after {
            // A guard that does not move on would loop forever.
            Some(next) if next > query.after => {
                if acc.sessions.len() + acc.events.len() >= max_rows {
                    acc.truncated = true;
                    break;
                }
                query.after = next;
            }
            _ => break,
        }
    }
    let mut h = out.ok_or(NotShown::NoGuard)?;
    h.sessions.sort_by_key(|s| (s.first_seen, s.id));
    h.events.sort_by_key(|e| (e.at, e.id));
    Ok(h)
}

/// The newest sessions (at most `max_sessions`, newest first) of the
/// program at `exe` in the guard's journal: the window's history tab.
pub fn recent(
    link: &mut dyn GuardLink,
    exe: String,
    max_sessions: usize,
) -> Result<GuardHistory, NotShown> {
    let max_sessions = max_sessions.min(MAX_ROWS);
    let mut query = HistoryQuery {
        exe: Some(exe),
        newest_first: true,
        ..HistoryQuery::default()
    };
    let mut out: Option<GuardHistory> = None;
    loop {
        let page = one_page(link, &query)?;
        let acc = out.get_or_insert_with(|| GuardHistory::of(&page));
        acc.sessions.extend(page.sessions.iter().map(|s| s.row()));
        if acc.sessions.len() >= max_sessions {
            acc.truncated = page.next_before.is_some() || acc.sessions.len() > max_sessions;
            acc.sessions.truncate(max_sessions);
            break;
        }
        match page.next_before {
            // A guard that does not move back would loop forever.
            Some(next) if query.before.is_none_or(|b| next < b) => query.before = Some(next),
            _ => break,
        }
    }
    out.ok_or(NotShown::NoGuard)
}

/// The guard's verify.
pub fn verify(link: &mut dyn GuardLink) -> Result<HistoryVerify, NotShown> {
    match ask(link, &Request::HistoryVerify {})? {
        Reply::HistoryVerify { verify } => Ok(*verify),
        other => Err(unexpected(other)),
    }
}

/// The guard named by the environment, if the user did not ask for their
/// own journal.
pub fn link() -> SocketLink {
    SocketLink::from_env()
}

/// The sentence saying whose journal is shown.
pub fn source_note(scope: HistoryScope) -> String {
    match scope {
        HistoryScope::All => tr("gjournal.source.guard"),
        HistoryScope::Own { .. } => tr("gjournal.source.guard_own"),
    }
}

/// One line per recovery the chain records (each names the old head).
pub fn recovery_lines(v: &HistoryVerify) -> Vec<String> {
    v.recoveries
        .iter()
        .map(|e| {
            let d = &e.detail;
            let num = |v: &serde_json::Value| v.as_i64().map(|n| n.to_string());
            tr_args(
                "gjournal.recovery",
                &[
                    ("id", &e.id.to_string()),
                    (
                        "at",
                        &crate::clock::rfc3339(crate::journal::from_millis(e.at_ms)),
                    ),
                    (
                        "old",
                        &num(&d["old_head"]["id"]).unwrap_or_else(|| "?".into()),
                    ),
                    (
                        "found",
                        &num(&d["found"]["id"]).unwrap_or_else(|| "0".into()),
                    ),
                ],
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::history::{WireEvent, WireHead, WireSession};

    /// A guard that answers pages from a script.
    struct Pages(Vec<Reply>, Vec<Request>);

    impl GuardLink for Pages {
        fn call(&mut self, req: &Request) -> Result<Reply, LinkError> {
            self.1.push(req.clone());
            if self.0.is_empty() {
                return Err(LinkError::NotRunning {
                    socket: "/x".into(),
                });
            }
            Ok(self.0.remove(0))
        }
    }

    fn page(ids: std::ops::Range<i64>, next: Option<i64>) -> Reply {
        Reply::History {
            page: Box::new(HistoryPage {
                scope: HistoryScope::Own { uid: 1000 },
                head: WireHead {
                    id: Some(99),
                    at_ms: Some(0),
                    hash: "ab".into(),
                },
                sessions: ids
                    .clone()
                    .map(|id| WireSession {
                        id,
                        exe: None,
                        name: None,
                        sha256: None,
                        pid: Some(1),
                        protocol: "tcp".into(),
                        local: "127.0.0.1:1".into(),
                        remote: None,
                        state: "ESTABLISHED".into(),
                        first_seen_ms: id,
                        last_seen_ms: None,
                        remote_name: None,
                        remote_name_source: None,
                    })
                    .collect(),
                events: vec![WireEvent {
                    id: ids.end,
                    at_ms: ids.end,
                    kind: "dropped".into(),
                    exe: None,
                    name: None,
                    sha256: None,
                    detail: serde_json::json!({"count": 1}),
                }],
                next_after: next,
                next_before: None,
            }),
        }
    }

    /// A newest-first page: sessions `ids` in falling order.
    fn back_page(ids: std::ops::Range<i64>, next_before: Option<i64>) -> Reply {
        let mut r = page(ids, None);
        if let Reply::History { page } = &mut r {
            page.sessions.reverse();
            page.events.clear();
            page.next_before = next_before;
        }
        r
    }

    #[test]
    fn the_window_reads_the_newest_sessions_back_to_its_limit() {
        let mut g = Pages(
            vec![back_page(8..11, Some(8)), back_page(5..8, Some(5))],
            Vec::new(),
        );
        let h = recent(&mut g, "/usr/bin/curl".into(), 5).unwrap();
        let ids: Vec<i64> = h.sessions.iter().map(|s| s.id).collect();
        assert_eq!(ids, [10, 9, 8, 7, 6]);
        assert!(h.truncated);
        assert!(matches!(
            &g.1[0],
            Request::History { query } if query.newest_first
                && query.exe.as_deref() == Some("/usr/bin/curl")
                && query.before.is_none()
        ));
        assert!(matches!(
            &g.1[1],
            Request::History { query } if query.before == Some(8)
        ));
        // A guard that does not move back is not followed forever.
        let mut stuck = Pages(
            vec![back_page(8..11, Some(8)), back_page(8..11, Some(8))],
            Vec::new(),
        );
        assert_eq!(
            recent(&mut stuck, "/x".into(), 100).unwrap().sessions.len(),
            6
        );
        let mut none = Pages(Vec::new(), Vec::new());
        assert!(matches!(
            recent(&mut none, "/x".into(), 100),
            Err(NotShown::NoGuard)
        ));
    }

    #[test]
    fn pages_are_read_until_the_guard_says_that_was_all() {
        let mut g = Pages(vec![page(1..3, Some(3)), page(4..6, None)], Vec::new());
        let h = history(&mut g, None, None, MAX_ROWS).unwrap();
        assert_eq!(h.sessions.len(), 4);
        assert_eq!(h.events.len(), 2);
        assert_eq!(h.scope, HistoryScope::Own { uid: 1000 });
        assert!(matches!(
            &g.1[1],
            Request::History { query } if query.after == 3
        ));
    }

    #[test]
    fn no_guard_and_a_refusing_guard_are_told_apart() {
        let mut none = Pages(Vec::new(), Vec::new());
        assert!(matches!(
            history(&mut none, None, None, MAX_ROWS),
            Err(NotShown::NoGuard)
        ));
        let mut old = Pages(
            vec![Reply::Failed {
                detail: "no journal".into(),
                status: None,
            }],
            Vec::new(),
        );
        assert!(matches!(
            history(&mut old, None, None, MAX_ROWS),
            Err(NotShown::Failed(d)) if d == "no journal"
        ));
        // A guard that repeats the same cursor is not followed forever.
        let mut stuck = Pages(vec![page(1..3, Some(0))], Vec::new());
        assert_eq!(
            history(&mut stuck, None, None, MAX_ROWS)
                .unwrap()
                .sessions
                .len(),
            2
        );
    }
}
