//! "The validator accepts only what the builder can produce", made
//! checkable: from an accepted plan, the marks and snapshot that make the
//! builder produce it. Shared by tests/hostile_plan.rs and
//! fuzz/fuzz_targets/plan_validate.rs.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::SystemTime;

use kizuki::firewall::cgroup::CgroupLayout;
use kizuki::firewall::{Plan, nft};
use kizuki::marks::{MarkEntry, Until};
use kizuki::model::{Connection, Mark, ProcessInfo, Program, ProgramKey, Snapshot, SockState};

/// The blocked marks and the running processes/connections behind `plan`.
pub fn builder_inputs(plan: &Plan) -> (Vec<MarkEntry>, Snapshot) {
    let t = SystemTime::UNIX_EPOCH;
    let marks = plan
        .blocked
        .iter()
        .map(|b| MarkEntry {
            exe: b.exe.clone(),
            sha256: b.sha256.clone(),
            mark: Mark::Blocked,
            set_at: t,
            until: Until::Always,
        })
        .collect();
    let mut snap = Snapshot::empty();
    for b in &plan.blocked {
        snap.programs.push(Program {
            key: ProgramKey::Exe(b.exe.clone()),
            name: "p".into(),
            exe: Some(b.exe.clone()),
            exe_deleted: false,
            sha256: Some(b.sha256.clone()),
            processes: b
                .pids
                .iter()
                .map(|&pid| ProcessInfo::fake(pid, "p"))
                .collect(),
            connections: b
                .flows
                .iter()
                .map(|f| Connection {
                    bytes_received: None,
                    bytes_sent: None,
                    pid: b.pids.first().copied(),
                    protocol: f.protocol,
                    local: f.local,
                    remote: Some(f.remote),
                    state: SockState::Established,
                    first_seen: t,
                    last_seen: t,
                    live: true,
                    uid: None,
                    remote_name: None,
                })
                .collect(),
            findings: vec![],
            mark: None,
            stale_mark: None,
            first_seen: t,
        });
    }
    (marks, snap)
}

/// For a plan the validator accepted: the builder makes exactly this plan,
/// it survives the file round trip, and the nft text it becomes touches
/// only kizuki's own table.
pub fn check_accepted(plan: &Plan) -> Result<(), String> {
    let (marks, snap) = builder_inputs(plan);
    let rebuilt = Plan::build(&marks, Some(&snap), plan.panic);
    if &rebuilt != plan {
        return Err(format!(
            "validator accepted a plan the builder cannot make:\n{plan:?}\nbuilder makes\n{rebuilt:?}"
        ));
    }
    let again = Plan::from_json(&plan.to_json()).map_err(|e| format!("round trip: {e}"))?;
    if &again != plan {
        return Err("plan changed in the file round trip".into());
    }
    let layout = CgroupLayout::for_mount(Path::new("/sys/fs/cgroup/unified")).unwrap();
    let rules = nft::ruleset(plan, Some(&layout)).map_err(|e| format!("ruleset: {e}"))?;
    check_ruleset(&rules)
}

/// Every table the script names is `inet kizuki`, and nothing in it can
/// end a statement early or start another command.
pub fn check_ruleset(rules: &str) -> Result<(), String> {
    for line in rules.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(i) = words.iter().position(|w| *w == "table") {
            let named = (words.get(i + 1), words.get(i + 2));
            if named != (Some(&"inet"), Some(&"kizuki"))
                && named != (Some(&"inet"), Some(&"kizuki{"))
            {
                return Err(format!("script names another table: {line}"));
            }
        }
        if line.contains(';') && !line.contains("policy accept;") {
            return Err(format!("statement separator in a rule: {line}"));
        }
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(format!("control character in the script: {line:?}"));
        }
    }
    Ok(())
}
