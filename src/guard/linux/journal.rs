//! The evidence journal kept by the guard: `journal.sqlite3` in the
//! root-owned state folder (0600, opened without following links), written
//! by the same chain code as a user's journal (`crate::journal`), as the
//! last stage of the guard's monitor. Each record carries the uid of the
//! process it is about. The head is kept outside the database (the `.head`
//! file beside it, root's) and in memory, so a cut tail or a deleted file
//! is found at start and at verify, and recorded as a chained "recovered"
//! record naming the old head. A flood is counted, not dropped.
//!
//! Who sees what: root and members of [`ADMIN_GROUPS`] read every record;
//! anyone else only records about their own uid's processes, their own
//! actions, and what the journal says about itself (drops, recoveries).

use std::ffi::CString;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use nix::libc;
use nix::unistd::{Group, Uid, User, getgrouplist};

use crate::clock::Clock;
use crate::guard::api::{Authority, MAX_LINE, Reply};
use crate::guard::history::{
    HistoryPage, HistoryQuery, HistoryScope, HistoryVerify, MAX_PAGE, WireBad, WireEvent,
};
use crate::journal::chain::Problem;
use crate::journal::page::PageQuery;
use crate::journal::{Journal, JournalError, JournalStage, ProgramRef, UserAction, live_handle};
use crate::model::ProgramKey;
use crate::monitor::Stage;

/// Members of these groups see every user's records (besides root):
/// `kizuki-admin` for a machine that wants to name its auditors, `sudo`
/// (Debian, Ubuntu) and `wheel` (Fedora, Arch) for the people who can
/// become root anyway.
pub const ADMIN_GROUPS: &[&str] = &["kizuki-admin", "sudo", "wheel"];

/// The guard's journal in its state folder.
pub fn path(state_dir: &Path) -> PathBuf {
    crate::journal::path_in(state_dir)
}

/// The journal stage the guard's sampler runs last. Its handle is found
/// by path ([`crate::journal::live_handle`]) for the guard's own actions.
pub fn stage(state_dir: &Path, clock: Arc<dyn Clock>) -> Box<dyn Stage> {
    let p = path(state_dir);
    // Created root's alone from the first byte; SQLite gives the `-wal`
    // and `-shm` files the database's mode.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let stage = JournalStage::open_single_writer(&p, clock);
    nix::sys::stat::umask(old);
    private(&p);
    for w in stage.handle().status().warnings {
        eprintln!("kizuki guard: journal: {}", w.message());
    }
    Box::new(stage)
}

/// 0600 for the database and its companions, whatever an older guard or
/// the umask left (each opened without following a link).
fn private(db: &Path) {
    for suffix in ["", "-wal", "-shm", ".head"] {
        let mut p = db.as_os_str().to_os_string();
        p.push(suffix);
        if let Ok(f) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&p)
            && f.metadata().is_ok_and(|m| m.is_file())
        {
            let _ = f.set_permissions(std::fs::Permissions::from_mode(0o600));
        }
    }
}

/// The guard's own change (block, unblock, panic, …) into the journal,
/// with who asked and on what authority. Refusals stay in the guard log
/// only: a flood of bad requests must not crowd out evidence.
pub fn record_action(
    state_dir: &Path,
    by_uid: Option<u32>,
    request: &serde_json::Value,
    authority: Option<Authority>,
    outcome: &str,
    detail: &str,
) {
    if outcome == "refused" {
        return;
    }
    let Some(h) = live_handle(&path(state_dir)) else {
        return;
    };
    let verb = request["op"].as_str().unwrap_or("start").to_string();
    let program = request["exe"]
        .as_str()
        .map(|e| ProgramRef::of_key(&ProgramKey::Exe(PathBuf::from(e))));
    let authority = authority
        .and_then(|a| serde_json::to_value(a).ok())
        .and_then(|v| v.as_str().map(str::to_owned));
    h.record_action(
        UserAction::Guard {
            program,
            verb,
            ok: outcome == "ok",
            by_uid,
            authority,
            detail: detail.to_string(),
        },
        SystemTime::now(),
    );
}

/// Root, or a member of one of [`ADMIN_GROUPS`] (from the user database).
pub fn is_admin(uid: u32) -> bool {
    if uid == 0 {
        return true;
    }
    let Ok(Some(user)) = User::from_uid(Uid::from_raw(uid)) else {
        return false;
    };
    let Ok(name) = CString::new(user.name) else {
        return false;
    };
    let Ok(groups) = getgrouplist(&name, user.gid) else {
        return false;
    };
    ADMIN_GROUPS
        .iter()
        .any(|g| matches!(Group::from_name(g), Ok(Some(gr)) if groups.contains(&gr.gid)))
}

fn failed(detail: String) -> Reply {
    Reply::Failed {
        detail,
        status: None,
    }
}

/// One page of the journal for the peer `uid`, no larger than a line.
pub fn history(state_dir: &Path, uid: u32, q: &HistoryQuery) -> Reply {
    let (scope, only) = if is_admin(uid) {
        (HistoryScope::All, None)
    } else {
        (HistoryScope::Own { uid }, Some(uid))
    };
    let j = match Journal::open_existing(&path(state_dir)) {
        Ok(j) => j,
        Err(e) => return failed(e.to_string()),
    };
    let mut limit = q.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE) as usize;
    loop {
        let pq = PageQuery {
            exe: q.exe.clone(),
            since: q.since_ms.map(crate::journal::from_millis),
            uid: only,
            after: q.after,
            before: q.before,
            newest_first: q.newest_first,
            limit,
        };
        let (page, head) = match j.page(&pq).and_then(|p| Ok((p, j.head()?))) {
            Ok(x) => x,
            Err(e) => return failed(e.to_string()),
        };
        let reply = Reply::History {
            page: Box::new(HistoryPage {
                scope,
                head: (&head).into(),
                sessions: page.sessions.iter().map(Into::into).collect(),
                events: page.events.iter().map(Into::into).collect(),
                next_after: page.next_after,
                next_before: page.next_before,
            }),
        };
        let size = serde_json::to_vec(&reply).map(|v| v.len()).unwrap_or(0);
        if size < MAX_LINE - 1024 {
            return reply;
        }
        if limit == 1 {
            return failed(format!("a journal record is larger than {MAX_LINE} bytes"));
        }
        limit /= 2;
    }
}

/// The chain recomputed and checked against the head kept outside the
/// database and in memory; the recoveries it records.
pub fn verify(state_dir: &Path) -> Reply {
    let p = path(state_dir);
    // What this guard wrote last (in memory): the file cannot end before it.
    let (in_memory, in_memory_hash) = live_handle(&p)
        .map(|h| {
            let st = h.status();
            (st.head_id, st.head.clone())
        })
        .unwrap_or_default();
    let j = match Journal::open_existing(&p) {
        Ok(j) => j,
        Err(JournalError::Emptied { last, .. }) => return gone(last.max(in_memory.unwrap_or(0))),
        Err(JournalError::Missing(_)) if in_memory.is_some() => {
            return gone(in_memory.unwrap_or(0));
        }
        Err(e) => return failed(e.to_string()),
    };
    let mut report = match j.verify() {
        Ok(r) => r,
        Err(e) => return failed(e.to_string()),
    };
    let recoveries = recoveries(&j).unwrap_or_default();
    // A new chain whose recovery record names the very head in memory
    // already says what was lost (the writer that started it may not have
    // taken over the in-memory head yet). Same id and hash: a tail cut
    // later in the new chain is still found.
    let told = |mem: i64| {
        recoveries.iter().any(|r| {
            r.detail["old_head"]["id"].as_i64() == Some(mem)
                && r.detail["old_head"]["hash"].as_str() == in_memory_hash.as_deref()
        })
    };
    if report.first_bad.is_none()
        && let Some(mem) = in_memory
        && report.head.id.unwrap_or(0) < mem
        && !told(mem)
    {
        report.first_bad = Some(crate::journal::BadRecord {
            id: report.head.id.unwrap_or(0),
            at: report.head.at,
            problem: Problem::TailRemoved { last: mem },
        });
    }
    Reply::HistoryVerify {
        verify: Box::new(HistoryVerify::of(&report, recoveries)),
    }
}

/// The journal file is gone or empty although records up to `last` were
/// written.
fn gone(last: i64) -> Reply {
    Reply::HistoryVerify {
        verify: Box::new(HistoryVerify {
            records: 0,
            first_id: None,
            head: crate::guard::history::WireHead {
                id: None,
                at_ms: None,
                hash: String::new(),
            },
            first_bad: Some(WireBad {
                id: 0,
                at_ms: None,
                problem: Problem::TailRemoved { last },
            }),
            recoveries: Vec::new(),
        }),
    }
}

/// The chained "recovered" records (at most the newest 100).
fn recoveries(j: &Journal) -> Result<Vec<WireEvent>, JournalError> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = j.page(&PageQuery {
            after,
            limit: 1000,
            ..PageQuery::default()
        })?;
        out.extend(
            page.events
                .iter()
                .filter(|e| e.kind == "recovered")
                .map(WireEvent::from),
        );
        if out.len() > 100 {
            out.drain(..out.len() - 100);
        }
        match page.next_after {
            Some(n) => after = n,
            None => return Ok(out),
        }
    }
}
