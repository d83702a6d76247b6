//! The guard's API: every request a client can make, every reply and event
//! the guard sends, in one typed, versioned module, so the guard and its
//! clients (window, tray, CLI) cannot drift and a fake guard for tests is
//! one struct.
//!
//! Wire format: newline-delimited JSON over a Unix socket, one [`Request`]
//! per line, one [`Reply`] per line. After [`Request::Subscribe`] the guard
//! keeps the connection and sends one [`Event`] line per state change.
//! A line longer than [`MAX_LINE`] bytes is refused.
//!
//! The API is deliberately narrow: no request names a file for the guard to
//! write, a subcommand to run or a PID to act on. The guard finds the
//! processes of a blocked program itself and checks each one.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::history::{HistoryPage, HistoryQuery, HistoryVerify};

/// Bumped when a request or reply changes shape.
pub const API_VERSION: u32 = 1;
/// Longest request or reply line, newline included.
pub const MAX_LINE: usize = 256 * 1024;

/// Environment variable naming the guard's socket.
pub const SOCKET_ENV: &str = "KIZUKI_GUARD_SOCKET";
/// Where the installed guard listens.
pub const DEFAULT_SOCKET: &str = "/run/kizuki/guard.sock";
/// Environment variable naming the guard's root-owned state folder.
pub const STATE_ENV: &str = "KIZUKI_STATE_DIR";
/// The installed guard's state folder.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/kizuki";

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// What the kernel enforces now, read back.
    Status,
    /// Block the program at `exe` (an absolute path). The guard hashes the
    /// file itself and finds its processes itself.
    Block {
        #[serde(with = "crate::pathser")]
        exe: PathBuf,
    },
    /// Lift the block on `exe`; its processes return to the cgroups they
    /// came from. Always asks for authorization.
    Unblock {
        #[serde(with = "crate::pathser")]
        exe: PathBuf,
    },
    /// Stop all traffic except loopback.
    Panic,
    /// Undo [`Request::Panic`]. Always asks for authorization.
    Resume,
    /// Remove everything kizuki enforces. Always asks for authorization.
    Clear,
    /// Keep the connection: the guard sends an [`Event`] per state change.
    Subscribe,
    /// A page of the guard's evidence journal (`kizuki history`): every
    /// user's records for root and the admin group, else only the asking
    /// user's own.
    History {
        #[serde(default)]
        query: HistoryQuery,
    },
    /// Recompute the guard's journal chain (`kizuki history verify`). A
    /// struct variant, so a field added to it is refused.
    HistoryVerify {},
    /// The guard's live view of processes and connections (its capture
    /// and names), with every socket that ended after the cursor `since`
    /// (from an earlier reply; `None` the first time). What another
    /// user's processes did is withheld from a non-admin client.
    /// `compact`: answer in the binary form of
    /// [`crate::guard::live::CompactHeader`] (a guard that does not know
    /// the field refuses the request; ask again without it).
    Sample {
        since: Option<u64>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        compact: bool,
    },
}

impl Request {
    /// Whether the request changes enforcement (and so needs root or
    /// polkit).
    pub fn changes_enforcement(&self) -> bool {
        !matches!(
            self,
            Request::Status
                | Request::Subscribe
                | Request::History { .. }
                | Request::HistoryVerify { .. }
                | Request::Sample { .. }
        )
    }

    /// Whether the request lifts a protection: never covered by a kept
    /// authorization.
    pub fn loosens(&self) -> bool {
        matches!(
            self,
            Request::Unblock { .. } | Request::Resume | Request::Clear
        )
    }

    /// The polkit action that authorizes it.
    pub fn polkit_action(&self) -> Option<&'static str> {
        match self {
            Request::Block { .. } => Some("jp.kizuki.block"),
            Request::Unblock { .. } => Some("jp.kizuki.unblock"),
            Request::Panic => Some("jp.kizuki.panic"),
            Request::Resume => Some("jp.kizuki.resume"),
            Request::Clear => Some("jp.kizuki.clear"),
            Request::Status
            | Request::Subscribe
            | Request::History { .. }
            | Request::HistoryVerify { .. }
            | Request::Sample { .. } => None,
        }
    }
}

/// The guard's answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Reply {
    /// Done (or nothing to do); the state as read back afterwards.
    Ok { status: GuardStatus },
    /// Not done, on purpose: nothing changed.
    Refused {
        reason: Refusal,
        /// Technical detail for the log and the "details" fold, never the
        /// user's headline (the client words that from `reason`).
        detail: String,
        status: Option<GuardStatus>,
    },
    /// Tried and failed part way; `status` says what really holds now.
    Failed {
        detail: String,
        status: Option<GuardStatus>,
    },
    /// The answer to [`Request::History`].
    History { page: Box<HistoryPage> },
    /// The answer to [`Request::HistoryVerify`].
    HistoryVerify { verify: Box<HistoryVerify> },
    /// The answer to [`Request::Sample`].
    Sample {
        live: Box<crate::guard::live::LiveSample>,
    },
}

impl Reply {
    /// The state the reply carries, if any.
    pub fn status(&self) -> Option<&GuardStatus> {
        match self {
            Reply::Ok { status } => Some(status),
            Reply::Refused { status, .. } | Reply::Failed { status, .. } => status.as_ref(),
            Reply::History { .. } | Reply::HistoryVerify { .. } | Reply::Sample { .. } => None,
        }
    }
}

/// Why a request was refused. Clients turn each into a localized sentence
/// with a next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    /// polkit said no (or the user cancelled the password prompt).
    NotAuthorized,
    /// A non-root client, and no polkit to ask.
    NoAuthority,
    /// The request was malformed, too long or of another API version.
    BadRequest,
    /// The path is not an executable regular file the guard can block.
    NotAProgram,
    /// kizuki itself, the init process and the guard's own tools cannot be
    /// blocked.
    Protected,
    /// Unblock of a program that is not blocked.
    NotBlocked,
    /// Too many blocked programs.
    TooMany,
    /// A script (`#!`): it runs as its interpreter's process, which the
    /// guard cannot tell apart by its file yet, so a block would not hold.
    Script,
}

/// How a new start of a blocked program is caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecCatch {
    /// fanotify `FAN_OPEN_EXEC_PERM`: before its first instruction.
    Fanotify,
    /// Exec events (eBPF or the proc connector): right after exec.
    ExecEvents,
    /// Polling `/proc`: within one interval.
    Polling,
    /// Nothing catches new starts.
    None,
    /// The firewall's rules name the program's path, so new starts are
    /// covered by the rule itself (Windows Defender Firewall).
    PathRules,
}

/// Who authorized a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Authority {
    /// The client ran as root.
    Root,
    /// polkit authorized a non-root client.
    Polkit,
    /// Restored by the guard at start from its own state.
    Restored,
}

/// One blocked program, as the kernel enforces it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockStatus {
    #[serde(with = "crate::pathser")]
    pub exe: PathBuf,
    /// SHA-256 of the file when it was blocked (hex).
    pub sha256: String,
    /// RFC 3339, UTC.
    pub since: String,
    /// The uid of the client that asked.
    pub by_uid: u32,
    pub authority: Authority,
    /// The drop rule for its cgroup is loaded and the cgroup exists (read
    /// back from the kernel), and new starts are caught.
    pub enforced: bool,
    /// Its processes in the blocked cgroup now.
    pub pids_blocked: Vec<u32>,
    /// Processes running it that are NOT in the blocked cgroup (should be
    /// empty; anything here is a failure the client shows).
    pub pids_outside: Vec<u32>,
}

/// What the guard enforces, read back from the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardStatus {
    pub api_version: u32,
    /// The panic rules are loaded (read back).
    pub panic: bool,
    /// kizuki's nft table exists.
    pub table: bool,
    pub exec_catch: ExecCatch,
    pub blocked: Vec<BlockStatus>,
    /// Things that do not hold as they should, in technical words (for the
    /// log and the details fold).
    #[serde(default)]
    pub problems: Vec<String>,
}

impl GuardStatus {
    /// The block on `exe`, if the guard holds one.
    pub fn block(&self, exe: &std::path::Path) -> Option<&BlockStatus> {
        self.blocked.iter().find(|b| b.exe == exe)
    }

    /// Whether `exe` is really blocked now.
    pub fn blocks(&self, exe: &std::path::Path) -> bool {
        self.block(exe)
            .is_some_and(|b| b.enforced && b.pids_outside.is_empty())
    }
}

/// Sent to subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Event {
    /// The state changed (or was re-read); here it is.
    Status { status: GuardStatus },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_unknown_ops_are_refused() {
        let reqs = [
            Request::Status,
            Request::Block {
                exe: PathBuf::from("/home/a/ダウンロード/tool"),
            },
            Request::Unblock {
                exe: PathBuf::from("/tmp/x"),
            },
            Request::Panic,
            Request::Resume,
            Request::Clear,
            Request::Subscribe,
            Request::History {
                query: HistoryQuery::default(),
            },
            Request::HistoryVerify {},
            Request::Sample {
                since: None,
                compact: false,
            },
            Request::Sample {
                since: Some(42),
                compact: true,
            },
        ];
        for r in reqs {
            let line = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r, "{line}");
        }
        for bad in [
            r#"{"op":"run","cmd":"sh"}"#,
            r#"{"op":"block","exe":"/x","out":"/etc/ld.so.preload"}"#,
            r#"{"op":"unblock","exe":"/x","pid":1}"#,
            r#"{"op":"history","query":{"uid":0}}"#,
            r#"{"op":"history-verify","path":"/etc/shadow"}"#,
            r#"{"op":"sample","since":1,"uid":0}"#,
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loosening_requests_are_known() {
        assert!(Request::Resume.loosens());
        assert!(Request::Clear.loosens());
        assert!(
            !Request::Block {
                exe: PathBuf::from("/x")
            }
            .loosens()
        );
        assert!(!Request::Status.changes_enforcement());
        assert_eq!(Request::Panic.polkit_action(), Some("jp.kizuki.panic"));
    }
}
