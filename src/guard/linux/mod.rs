//! The guard itself (Linux): root-owned state, the kernel made to match it,
//! exec catching, and the socket its clients ask through.

mod activity;
mod auth;
mod check;
mod core;
mod exec;
mod fsx;
pub mod journal;
mod log;
mod malloc;
mod procs;
pub mod sampler;
mod server;
mod state;
mod viewer;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::firewall::cgroup::CgroupLayout;
use crate::guard::api::{Authority, DEFAULT_STATE_DIR, ExecCatch, STATE_ENV};
use crate::i18n::{tr, tr_args};

pub use auth::{Authorizer, Polkit, Subject, Verdict};
pub use log::verify as verify_log;

/// The state folder named by `KIZUKI_STATE_DIR`, else the installed default.
pub fn state_dir() -> PathBuf {
    std::env::var_os(STATE_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
}

/// Binds the socket: its folder root-owned (0755, nobody else may write),
/// a stale socket replaced, a live guard or anything that is not a socket
/// left alone. The socket is 0666: anyone may connect, every request is
/// authorized on its own.
fn bind(socket: &Path) -> Result<UnixListener> {
    let parent = socket
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .context("the socket path has no folder")?;
    fsx::ensure_private_dir(parent, 0o755).with_context(|| {
        tr_args(
            "guard.err.socket_dir",
            &[("path", &parent.display().to_string())],
        )
    })?;
    match std::fs::symlink_metadata(socket) {
        Ok(m) if m.file_type().is_socket() => {
            if UnixStream::connect(socket).is_ok() {
                bail!(tr_args(
                    "guard.err.running",
                    &[("path", &socket.display().to_string())]
                ));
            }
            std::fs::remove_file(socket).with_context(|| socket.display().to_string())?;
        }
        Ok(_) => bail!(tr_args(
            "guard.err.not_socket",
            &[("path", &socket.display().to_string())]
        )),
        Err(_) => {}
    }
    let listener = UnixListener::bind(socket).with_context(|| socket.display().to_string())?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666))
        .with_context(|| socket.display().to_string())?;
    Ok(listener)
}

/// `kizuki guard`: runs in the foreground until stopped.
pub fn run() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(tr("guard.err.not_root"));
    }
    malloc::ensure();
    let dir = state_dir();
    fsx::ensure_private_dir(&dir, 0o700).with_context(|| {
        tr_args(
            "guard.err.state_dir",
            &[("path", &dir.display().to_string())],
        )
    })?;
    let state = state::State::load(&dir)?;
    let origins = state::load_origins(&dir)?;
    let guard_log = log::GuardLog::open(&dir).with_context(|| dir.display().to_string())?;
    // The evidence journal: one stage, fed by the live view's sampler
    // below; opened first so the guard's start is recorded in it.
    let journal = journal::stage(&dir, Arc::new(crate::clock::SystemClock));
    let layout = CgroupLayout::detect();
    let catcher = exec::Catcher::start(layout.clone(), origins);
    let mut core = core::Core::new(dir.clone(), state, guard_log, layout, catcher.clone());
    // The kernel matches the state before any client can ask anything.
    core.sync();
    let status = core.status();
    core.record(
        None,
        serde_json::json!({"op": "start"}),
        Some(Authority::Restored),
        if status.problems.is_empty() {
            "ok"
        } else {
            "failed"
        },
        &status.problems.join("; "),
    );
    let socket = crate::guard::client::socket_path();
    let listener = bind(&socket)?;
    let catch = match status.exec_catch {
        ExecCatch::Fanotify => "fanotify",
        _ => "polling",
    };
    eprintln!(
        "kizuki guard: {} blocked, panic {}, exec catch {catch}, state {}, listening on {}",
        core.blocks(),
        if core.panic() { "on" } else { "off" },
        dir.display(),
        socket.display()
    );
    // The live view (capture, names) for clients, and the same samples
    // into the evidence journal.
    let live = sampler::start(vec![journal]);
    let shared = Arc::new(server::Shared::new(core, Box::new(Polkit)).with_live(live));
    spawn_sweeper(catcher, dir)?;
    server::serve(listener, shared);
    Ok(())
}

/// Every second (every 100 ms when polling is all there is): new files at
/// blocked paths are marked, and processes of blocked programs still
/// outside their cgroup are moved.
fn spawn_sweeper(catcher: Arc<exec::Catcher>, dir: PathBuf) -> Result<()> {
    let every = match catcher.mode() {
        ExecCatch::Fanotify => Duration::from_secs(1),
        _ => Duration::from_millis(100),
    };
    std::thread::Builder::new()
        .name("guard-sweep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                catcher.rearm();
                for p in catcher.sweep() {
                    eprintln!("kizuki guard: {p}");
                }
                catcher.prune_origins();
                core::save_origins(&catcher, &dir);
            }
        })?;
    Ok(())
}
