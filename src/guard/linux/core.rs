//! The guard's state machine: requests change the root-owned state, the
//! kernel is made to match it (one nft transaction, cgroups, exec marks),
//! and the answer is what the kernel is read back to enforce.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::check::{self, Protected, Refused};
use super::exec::Catcher;
use super::log::{Entry, GuardLog};
use super::procs;
use super::state::{self, Block, MAX_BLOCKS, State};
use crate::clock::rfc3339;
use crate::firewall::cgroup::CgroupLayout;
use crate::firewall::nft::{NftBackend, ruleset};
use crate::firewall::plan::MAX_FLOWS;
use crate::firewall::{BlockedProgram, FirewallBackend, Flow, PLAN_VERSION, Plan, program_id};
use crate::guard::api::{
    API_VERSION, Authority, BlockStatus, GuardStatus, Refusal, Reply, Request,
};

pub struct Core {
    dir: PathBuf,
    state: State,
    log: GuardLog,
    nft: NftBackend,
    layout: Option<CgroupLayout>,
    pub catcher: Arc<Catcher>,
    protected: Protected,
    /// What did not work at the last sync (technical words).
    problems: Vec<String>,
    refusals_unlogged: u64,
}

/// Past this size the guard log takes changes only, not refusals.
const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;

/// Who asked, for the log.
#[derive(Debug, Clone, Copy)]
pub struct Asker {
    pub uid: u32,
    pub pid: u32,
}

fn shown(p: &Path) -> String {
    crate::escape::for_display(&crate::escape::os_lossless(p.as_os_str()))
}

impl Core {
    pub fn new(
        dir: PathBuf,
        state: State,
        log: GuardLog,
        layout: Option<CgroupLayout>,
        catcher: Arc<Catcher>,
    ) -> Core {
        Core {
            dir,
            state,
            log,
            nft: NftBackend::with_cgroups(layout.clone()),
            layout,
            catcher,
            protected: Protected::detect(),
            problems: Vec::new(),
            refusals_unlogged: 0,
        }
    }

    /// The root-owned state folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn protected(&self) -> &Protected {
        &self.protected
    }

    /// Writes one line to the guard log; a log that cannot be written is
    /// said on stderr (the journal of systemd) and in the status.
    pub fn record(
        &mut self,
        asker: Option<Asker>,
        request: serde_json::Value,
        authority: Option<Authority>,
        outcome: &str,
        detail: &str,
    ) {
        let entry = Entry {
            time: rfc3339(std::time::SystemTime::now()),
            uid: asker.map(|a| a.uid),
            pid: asker.map(|a| a.pid),
            request,
            authority,
            outcome: outcome.to_string(),
            detail: detail.to_string(),
        };
        super::journal::record_action(
            &self.dir,
            entry.uid,
            &entry.request,
            authority,
            outcome,
            detail,
        );
        // A flood of refused requests must not fill the disk: past the cap
        // only changes are logged.
        if outcome == "refused" && self.log.size() > MAX_LOG_BYTES {
            self.refusals_unlogged += 1;
            return;
        }
        if let Err(e) = self.log.append(entry) {
            let msg = format!("guard log {}: {e}", self.log.path().display());
            eprintln!("kizuki guard: {msg}");
            self.problems.push(msg);
        }
    }

    fn blocks_by_id(&self) -> Vec<(String, PathBuf)> {
        self.state
            .blocks
            .iter()
            .map(|b| (program_id(&b.exe), b.exe.clone()))
            .collect()
    }

    /// Makes the kernel match the state: exec marks first (new starts are
    /// caught from now on), cgroups, one nft transaction (drop rules, cuts
    /// for connections opened before the move, panic), then running
    /// processes are moved and their old connections destroyed; cgroups of
    /// programs no longer blocked give their processes back and go.
    pub fn sync(&mut self) {
        let mut problems = Vec::new();
        if let Some(e) = self.catcher.init_error() {
            problems.push(e.to_string());
        }
        let blocks = self.blocks_by_id();
        if !blocks.is_empty() && self.layout.is_none() {
            problems.push("no cgroup v2 mount: programs cannot be blocked".into());
        }
        // The cgroups exist before any start is caught into them.
        if let Some(layout) = &self.layout {
            for (id, _) in &blocks {
                if let Err(e) = layout.ensure(id) {
                    problems.push(format!("cgroup {}: {e}", layout.dir(id).display()));
                }
            }
        }
        problems.extend(self.catcher.set_targets(&blocks));
        // The processes of blocked programs and their connections, found
        // by the guard itself (never taken from a client).
        let running = self.catcher.running();
        let mut plan = Plan {
            version: PLAN_VERSION,
            panic: self.state.panic,
            blocked: Vec::new(),
        };
        let mut flows_total = 0;
        let mut sorted = self.state.blocks.clone();
        sorted.sort_by(|a, b| a.exe.cmp(&b.exe));
        for b in &sorted {
            let id = program_id(&b.exe);
            let mut flows: Vec<Flow> = running
                .iter()
                .filter(|(_, i)| *i == id)
                .flat_map(|(pid, _)| procs::flows_of(*pid))
                .collect();
            flows.sort();
            flows.dedup();
            flows.truncate(MAX_FLOWS.saturating_sub(flows_total));
            flows_total += flows.len();
            plan.blocked.push(BlockedProgram {
                exe: b.exe.clone(),
                sha256: b.sha256.clone(),
                pids: Vec::new(),
                flows,
            });
        }
        match ruleset(&plan, self.layout.as_ref()) {
            Ok(script) => {
                if let Err(e) = self.nft.load_script(&script) {
                    problems.push(format!("nft: {e}"));
                }
            }
            Err(e) => problems.push(format!("rules: {e}")),
        }
        for (pid, id) in &running {
            if let Err(e) = self.catcher.move_into(id, *pid) {
                problems.push(format!("moving pid {pid}: {e}"));
            }
        }
        for b in &plan.blocked {
            for f in &b.flows {
                // Without kernel support for destroying sockets the cut
                // rule alone holds the connection.
                if let Err(e) = self.nft.cut_flow(f) {
                    eprintln!("kizuki guard: ss -K: {e}");
                }
            }
        }
        if let Some(layout) = self.layout.clone() {
            let keep: BTreeSet<&String> = blocks.iter().map(|(id, _)| id).collect();
            for id in layout.existing() {
                if keep.contains(&id) {
                    continue;
                }
                for pid in layout.pids(&id) {
                    if let Err(e) = self.catcher.send_back(pid) {
                        problems.push(format!("returning pid {pid}: {e}"));
                    }
                }
                if let Err(e) = layout.remove(&id, false) {
                    problems.push(format!("cgroup {id}: {e}"));
                }
            }
            layout.remove_parent_if_empty();
        }
        self.save_origins();
        for p in &problems {
            eprintln!("kizuki guard: {p}");
        }
        self.problems = problems;
    }

    /// Writes where moved processes came from, when that changed.
    pub fn save_origins(&self) {
        save_origins(&self.catcher, &self.dir);
    }

    /// What the kernel enforces now, read back.
    pub fn status(&mut self) -> GuardStatus {
        let mut problems = self.problems.clone();
        if self.refusals_unlogged > 0 {
            problems.push(format!(
                "guard log over {MAX_LOG_BYTES} bytes: {} refusals not logged",
                self.refusals_unlogged
            ));
        }
        let listing = match self.nft.status() {
            Ok(e) => e,
            Err(e) => {
                problems.push(format!("reading the nft table: {e}"));
                Default::default()
            }
        };
        let running = self.catcher.running();
        let mut blocked = Vec::new();
        for b in &self.state.blocks {
            let id = program_id(&b.exe);
            let cgroup = self.layout.as_ref().is_some_and(|l| l.dir(&id).is_dir());
            let pids_blocked = self
                .layout
                .as_ref()
                .map(|l| l.pids(&id))
                .unwrap_or_default();
            let pids_outside: Vec<u32> = running
                .iter()
                .filter(|(pid, i)| *i == id && !pids_blocked.contains(pid))
                .map(|(pid, _)| *pid)
                .collect();
            let rule = listing.blocked_ids.contains(&id);
            let armed = self.catcher.armed(&id);
            if !(rule && cgroup && armed) {
                problems.push(format!(
                    "{}: rule loaded {rule}, cgroup exists {cgroup}, exec caught {armed}",
                    shown(&b.exe)
                ));
            }
            blocked.push(BlockStatus {
                exe: b.exe.clone(),
                sha256: b.sha256.clone(),
                since: b.since.clone(),
                by_uid: b.by_uid,
                authority: b.authority,
                enforced: rule && cgroup && armed,
                pids_blocked,
                pids_outside,
            });
        }
        GuardStatus {
            api_version: API_VERSION,
            panic: listing.panic,
            table: listing.table,
            exec_catch: self.catcher.mode(),
            blocked,
            problems,
        }
    }

    fn save(&mut self, before: State) -> Result<(), String> {
        if let Err(e) = self.state.save(&self.dir) {
            self.state = before;
            return Err(format!("saving the guard state: {e}"));
        }
        Ok(())
    }

    /// Carries out an authorized request. `authority` is who allowed it.
    pub fn handle(&mut self, req: &Request, asker: Asker, authority: Authority) -> Reply {
        let before = self.state.clone();
        match req {
            // Answered by the server without the core (see `journal`).
            Request::Status
            | Request::Subscribe
            | Request::History { .. }
            | Request::HistoryVerify { .. }
            | Request::Sample { .. } => {
                return Reply::Ok {
                    status: self.status(),
                };
            }
            Request::Block { exe } => {
                if self.state.block(exe).is_some() {
                    return self.confirm(req, |s| s.blocks(exe));
                }
                if let Err(r) = check::program(exe, &self.protected) {
                    return self.refuse(r);
                }
                if self.state.blocks.len() >= MAX_BLOCKS {
                    return self.refuse(Refused {
                        reason: Refusal::TooMany,
                        detail: format!("at most {MAX_BLOCKS} programs can be blocked"),
                    });
                }
                let sha256 = match crate::identity::sha256_file(exe) {
                    Ok(h) => h,
                    Err(e) => {
                        return self.refuse(Refused {
                            reason: Refusal::NotAProgram,
                            detail: format!("cannot read {}: {e}", shown(exe)),
                        });
                    }
                };
                self.state.blocks.push(Block {
                    exe: exe.clone(),
                    sha256,
                    since: rfc3339(std::time::SystemTime::now()),
                    by_uid: asker.uid,
                    authority,
                });
                self.state.blocks.sort_by(|a, b| a.exe.cmp(&b.exe));
            }
            Request::Unblock { exe } => {
                if self.state.block(exe).is_none() {
                    return self.refuse(Refused {
                        reason: Refusal::NotBlocked,
                        detail: format!("not blocked: {}", shown(exe)),
                    });
                }
                self.state.blocks.retain(|b| &b.exe != exe);
            }
            Request::Panic => self.state.panic = true,
            Request::Resume => self.state.panic = false,
            Request::Clear => self.state = State::empty(),
        }
        if let Err(detail) = self.save(before) {
            return Reply::Failed {
                detail,
                status: Some(self.status()),
            };
        }
        self.sync();
        match req {
            Request::Block { exe } => self.confirm(req, |s| s.blocks(exe)),
            Request::Unblock { exe } => self.confirm(req, |s| s.block(exe).is_none()),
            Request::Panic => self.confirm(req, |s| s.panic),
            Request::Resume => self.confirm(req, |s| !s.panic),
            Request::Clear => self.confirm(req, |s| !s.table && s.blocked.is_empty()),
            Request::Status
            | Request::Subscribe
            | Request::History { .. }
            | Request::HistoryVerify { .. }
            | Request::Sample { .. } => Reply::Ok {
                status: self.status(),
            },
        }
    }

    /// Ok only when the read-back shows what was asked.
    fn confirm(&mut self, req: &Request, holds: impl Fn(&GuardStatus) -> bool) -> Reply {
        let status = self.status();
        if holds(&status) {
            Reply::Ok { status }
        } else {
            Reply::Failed {
                detail: format!(
                    "asked {}, but the kernel does not show it: {}",
                    serde_json::to_string(req).unwrap_or_default(),
                    status.problems.join("; ")
                ),
                status: Some(status),
            }
        }
    }

    fn refuse(&mut self, r: Refused) -> Reply {
        Reply::Refused {
            reason: r.reason,
            detail: r.detail,
            status: Some(self.status()),
        }
    }

    pub fn blocks(&self) -> usize {
        self.state.blocks.len()
    }

    pub fn panic(&self) -> bool {
        self.state.panic
    }
}

/// Writes the origin book when it changed (called by the core and by the
/// sweeper; the book's lock orders them).
pub fn save_origins(catcher: &Catcher, dir: &Path) {
    // Writers take turns, and each writes the newest book; the book itself
    // is locked only to copy it, so an exec never waits for the disk.
    static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    let origins = {
        let mut book = catcher.book.lock().unwrap_or_else(|e| e.into_inner());
        if !book.dirty {
            return;
        }
        book.dirty = false;
        book.origins.clone()
    };
    if let Err(e) = state::save_origins(dir, &origins) {
        eprintln!("kizuki guard: saving process origins: {e}");
        catcher.book.lock().unwrap_or_else(|e| e.into_inner()).dirty = true;
    }
}
