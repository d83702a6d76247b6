//! The desired firewall state as plain data: which programs are blocked
//! (with their running PIDs and the connections to cut) and whether the
//! panic button is pressed. A plan can be shown, saved, checked and applied;
//! the privileged side only ever applies a plan that [`Plan::validate`]
//! accepts.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::identity::sha256_bytes;
use crate::marks::MarkEntry;
use crate::model::{Protocol, Snapshot};

/// Layout version of a plan file.
pub const PLAN_VERSION: u32 = 1;

/// Limits that no real desktop reaches; a plan beyond them is refused
/// rather than fed to the firewall.
pub const MAX_PROGRAMS: usize = 1_000;
pub const MAX_PIDS: usize = 10_000;
pub const MAX_FLOWS: usize = 10_000;
const MAX_PATH_BYTES: usize = 4096;

/// One connection to cut, seen from the blocked program's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    pub protocol: Protocol,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// A program the user blocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockedProgram {
    #[serde(with = "crate::pathser")]
    pub exe: PathBuf,
    pub sha256: String,
    /// Its processes running now: they are moved where the firewall
    /// catches them.
    #[serde(default)]
    pub pids: Vec<u32>,
    /// Its connections open now: they were opened before the block and are
    /// cut one by one.
    #[serde(default)]
    pub flows: Vec<Flow>,
}

impl BlockedProgram {
    /// A short, stable name for the program in rules and cgroups: derived
    /// from the path, so no byte of the path reaches the firewall.
    pub fn id(&self) -> String {
        program_id(&self.exe)
    }
}

/// First 16 hex digits of the SHA-256 of the path's bytes.
pub fn program_id(exe: &Path) -> String {
    let bytes = crate::platform::osbytes::os_bytes(exe.as_os_str());
    sha256_bytes(&bytes)[..16].to_string()
}

/// What the firewall should enforce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub version: u32,
    /// Stop all traffic except loopback.
    pub panic: bool,
    pub blocked: Vec<BlockedProgram>,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            version: PLAN_VERSION,
            panic: false,
            blocked: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("plan version {0} is not {PLAN_VERSION}")]
    Version(u32),
    #[error("too many entries in the plan ({0})")]
    TooLarge(&'static str),
    #[error("executable path is not absolute or not usable: {0}")]
    BadPath(String),
    #[error("not a SHA-256: {0}")]
    BadHash(String),
    #[error("not a single process id: {0}")]
    BadPid(u32),
    #[error("not a connection that can be cut: {0}")]
    BadFlow(String),
    #[error("the same program is listed twice: {0}")]
    Duplicate(String),
    #[error("not in the order kizuki writes plans: {0}")]
    Order(String),
    #[error("not a plan file: {0}")]
    Parse(String),
    #[error("cgroup path cannot be used in a rule: {0}")]
    BadCgroup(String),
}

fn shown(p: &Path) -> String {
    crate::escape::for_display(&crate::escape::os_lossless(p.as_os_str()))
}

/// A path the firewall may refer to: absolute and in canonical form, no
/// NUL, no control characters, of sane length.
pub fn check_exe(p: &Path) -> Result<(), PlanError> {
    let text = crate::escape::os_lossless(p.as_os_str());
    let ok = p.is_absolute()
        && !text.is_empty()
        && text.len() <= MAX_PATH_BYTES
        && !text.chars().any(char::is_control)
        && crate::platform::osbytes::is_canonical_form(p);
    if ok {
        Ok(())
    } else {
        Err(PlanError::BadPath(shown(p)))
    }
}

fn usable_ip(ip: IpAddr) -> bool {
    !ip.is_unspecified() && !ip.is_multicast() && ip != IpAddr::from([255, 255, 255, 255])
}

/// Both ends of the same family after unmapping `::ffff:a.b.c.d`, real
/// addresses, real ports.
pub fn normalize_flow(f: &Flow) -> Result<Flow, PlanError> {
    let local = SocketAddr::new(f.local.ip().to_canonical(), f.local.port());
    let remote = SocketAddr::new(f.remote.ip().to_canonical(), f.remote.port());
    let same_family = local.is_ipv4() == remote.is_ipv4();
    // Only TCP and UDP flows are cut one by one (the rest are cut with
    // the program).
    let ok = same_family
        && matches!(f.protocol, Protocol::Tcp | Protocol::Udp)
        && local.port() != 0
        && remote.port() != 0
        && usable_ip(local.ip())
        && usable_ip(remote.ip());
    if ok {
        Ok(Flow {
            protocol: f.protocol,
            local,
            remote,
        })
    } else {
        Err(PlanError::BadFlow(format!(
            "{} {} -> {}",
            f.protocol, f.local, f.remote
        )))
    }
}

impl Plan {
    /// Accepts only what [`Plan::build`] can produce.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.version != PLAN_VERSION {
            return Err(PlanError::Version(self.version));
        }
        if self.blocked.len() > MAX_PROGRAMS {
            return Err(PlanError::TooLarge("programs"));
        }
        let pids: usize = self.blocked.iter().map(|b| b.pids.len()).sum();
        let flows: usize = self.blocked.iter().map(|b| b.flows.len()).sum();
        if pids > MAX_PIDS {
            return Err(PlanError::TooLarge("pids"));
        }
        if flows > MAX_FLOWS {
            return Err(PlanError::TooLarge("flows"));
        }
        let mut ids = std::collections::HashSet::new();
        // The builder lists programs by path, PIDs and flows sorted and
        // each once: a plan in any other order was not made by kizuki.
        if let Some(w) = self.blocked.windows(2).find(|w| w[0].exe >= w[1].exe) {
            return Err(PlanError::Order(shown(&w[1].exe)));
        }
        for b in &self.blocked {
            check_exe(&b.exe)?;
            if !crate::marks::is_sha256(&b.sha256) {
                return Err(PlanError::BadHash(crate::escape::for_display(&b.sha256)));
            }
            if !ids.insert(b.id()) {
                return Err(PlanError::Duplicate(shown(&b.exe)));
            }
            if let Some(&pid) = b
                .pids
                .iter()
                .find(|&&p| p <= 1 || i32::try_from(p).is_err())
            {
                return Err(PlanError::BadPid(pid));
            }
            if b.pids.windows(2).any(|w| w[0] >= w[1]) {
                return Err(PlanError::Order(format!("pids of {}", shown(&b.exe))));
            }
            for f in &b.flows {
                if normalize_flow(f)? != *f {
                    return Err(PlanError::BadFlow(format!(
                        "{} {} -> {} (not canonical)",
                        f.protocol, f.local, f.remote
                    )));
                }
            }
            if b.flows.windows(2).any(|w| w[0] >= w[1]) {
                return Err(PlanError::Order(format!("flows of {}", shown(&b.exe))));
            }
        }
        Ok(())
    }

    /// The plan for the user's blocked marks, with what `snapshot` shows
    /// running. A program is blocked by its path: a block whose file has
    /// changed since (a stale mark) still blocks, because letting a changed
    /// blocked program through would be the surprising outcome.
    pub fn build(blocked: &[MarkEntry], snapshot: Option<&Snapshot>, panic: bool) -> Plan {
        let mut by_exe: BTreeMap<PathBuf, BlockedProgram> = BTreeMap::new();
        for m in blocked {
            // The store never holds such entries; one that slipped in must
            // not make the whole plan fail validation.
            if check_exe(&m.exe).is_err() || !crate::marks::is_sha256(&m.sha256) {
                continue;
            }
            by_exe.insert(
                m.exe.clone(),
                BlockedProgram {
                    exe: m.exe.clone(),
                    sha256: m.sha256.clone(),
                    pids: Vec::new(),
                    flows: Vec::new(),
                },
            );
        }
        for p in snapshot.map(|s| s.programs.as_slice()).unwrap_or_default() {
            let Some(b) = p.exe.as_ref().and_then(|e| by_exe.get_mut(e)) else {
                continue;
            };
            b.pids.extend(
                p.processes
                    .iter()
                    .filter(|x| x.alive && x.pid > 1 && i32::try_from(x.pid).is_ok())
                    .map(|x| x.pid),
            );
            for c in p.live_connections() {
                let Some(remote) = c.remote else { continue };
                if let Ok(f) = normalize_flow(&Flow {
                    protocol: c.protocol,
                    local: c.local,
                    remote,
                }) {
                    b.flows.push(f);
                }
            }
        }
        let mut blocked: Vec<BlockedProgram> = by_exe.into_values().collect();
        for b in &mut blocked {
            b.pids.sort_unstable();
            b.pids.dedup();
            b.flows.sort();
            b.flows.dedup();
        }
        Plan {
            version: PLAN_VERSION,
            panic,
            blocked,
        }
    }

    /// Nothing to enforce: no table is needed at all.
    pub fn is_empty(&self) -> bool {
        !self.panic && self.blocked.is_empty()
    }

    /// The plan as a file's bytes (for the privileged side).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Reads and validates a plan file's bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Plan, PlanError> {
        let plan: Plan =
            serde_json::from_slice(bytes).map_err(|e| PlanError::Parse(e.to_string()))?;
        plan.validate()?;
        Ok(plan)
    }
}

// Written with Unix paths.
#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use crate::marks::Until;
    use crate::model::{Connection, ProcessInfo, Program, ProgramKey, SockState};
    use std::time::SystemTime;

    pub(crate) fn prog(exe: &str) -> BlockedProgram {
        BlockedProgram {
            exe: PathBuf::from(exe),
            sha256: "a".repeat(64),
            pids: vec![],
            flows: vec![],
        }
    }

    fn flow(l: &str, r: &str) -> Flow {
        Flow {
            protocol: Protocol::Tcp,
            local: l.parse().unwrap(),
            remote: r.parse().unwrap(),
        }
    }

    #[test]
    fn plan_from_marks_and_snapshot_has_pids_and_live_remote_connections() {
        let t = SystemTime::UNIX_EPOCH;
        let mark = MarkEntry {
            exe: "/tmp/evil".into(),
            sha256: "b".repeat(64),
            mark: crate::model::Mark::Blocked,
            set_at: t,
            until: Until::Always,
        };
        let conn = |remote: Option<&str>, live| Connection {
            bytes_received: None,
            bytes_sent: None,
            pid: Some(42),
            protocol: Protocol::Tcp,
            local: "10.0.0.2:40000".parse().unwrap(),
            remote: remote.map(|r| r.parse().unwrap()),
            state: SockState::Established,
            first_seen: t,
            last_seen: t,
            live,
            uid: None,
            remote_name: None,
        };
        let proc_ = |pid, alive| ProcessInfo {
            alive,
            ..ProcessInfo::fake(pid, "evil")
        };
        let mut snap = Snapshot::empty();
        snap.programs.push(Program {
            key: ProgramKey::Exe("/tmp/evil".into()),
            name: "evil".into(),
            exe: Some("/tmp/evil".into()),
            exe_deleted: false,
            sha256: Some("c".repeat(64)),
            processes: vec![proc_(42, true), proc_(43, false)],
            connections: vec![
                conn(Some("[::ffff:203.0.113.7]:443"), true),
                conn(Some("198.51.100.1:80"), false),
                conn(None, true),
            ],
            findings: vec![],
            mark: None,
            stale_mark: Some(crate::model::Mark::Blocked),
            first_seen: t,
        });
        let plan = Plan::build(&[mark], Some(&snap), false);
        plan.validate().unwrap();
        assert_eq!(plan.blocked.len(), 1);
        let b = &plan.blocked[0];
        assert_eq!(b.pids, vec![42], "only live processes");
        assert_eq!(
            b.flows,
            vec![flow("10.0.0.2:40000", "203.0.113.7:443")],
            "only live connections with a peer, IPv4-mapped unmapped"
        );
        // Round trip through the file the privileged side reads.
        assert_eq!(Plan::from_json(&plan.to_json()).unwrap(), plan);
    }

    #[test]
    fn validation_refuses_what_the_builder_never_makes() {
        let ok = Plan {
            version: PLAN_VERSION,
            panic: false,
            blocked: vec![prog("/usr/bin/a b;c\"d'e")],
        };
        ok.validate().unwrap();
        let cases: Vec<(&str, Plan)> = vec![
            (
                "version",
                Plan {
                    version: 2,
                    ..ok.clone()
                },
            ),
            (
                "relative",
                Plan {
                    blocked: vec![prog("tool")],
                    ..ok.clone()
                },
            ),
            (
                "newline",
                Plan {
                    blocked: vec![prog("/tmp/a\nb")],
                    ..ok.clone()
                },
            ),
            (
                "nul",
                Plan {
                    blocked: vec![prog("/tmp/a\0b")],
                    ..ok.clone()
                },
            ),
            (
                "dup",
                Plan {
                    blocked: vec![prog("/a"), prog("/a")],
                    ..ok.clone()
                },
            ),
            (
                "hash",
                Plan {
                    blocked: vec![BlockedProgram {
                        sha256: "x".into(),
                        ..prog("/a")
                    }],
                    ..ok.clone()
                },
            ),
            (
                "pid0",
                Plan {
                    blocked: vec![BlockedProgram {
                        pids: vec![0],
                        ..prog("/a")
                    }],
                    ..ok.clone()
                },
            ),
            (
                "pid1",
                Plan {
                    blocked: vec![BlockedProgram {
                        pids: vec![1],
                        ..prog("/a")
                    }],
                    ..ok.clone()
                },
            ),
            (
                "pidneg",
                Plan {
                    blocked: vec![BlockedProgram {
                        pids: vec![u32::MAX],
                        ..prog("/a")
                    }],
                    ..ok.clone()
                },
            ),
            (
                "port0",
                Plan {
                    blocked: vec![BlockedProgram {
                        flows: vec![flow("10.0.0.1:0", "10.0.0.2:80")],
                        ..prog("/a")
                    }],
                    ..ok.clone()
                },
            ),
            (
                "any",
                Plan {
                    blocked: vec![BlockedProgram {
                        flows: vec![flow("0.0.0.0:5", "10.0.0.2:80")],
                        ..prog("/a")
                    }],
                    ..ok.clone()
                },
            ),
            (
                "mixed",
                Plan {
                    blocked: vec![BlockedProgram {
                        flows: vec![flow("10.0.0.1:5", "[2001:db8::1]:80")],
                        ..prog("/a")
                    }],
                    ..ok.clone()
                },
            ),
        ];
        for (name, plan) in cases {
            assert!(plan.validate().is_err(), "{name} must be refused");
        }
        assert!(Plan::from_json(b"{\"version\":1,\"panic\":true,\"blocked\":[]}").is_ok());
        assert!(
            Plan::from_json(b"{\"version\":1,\"panic\":true,\"blocked\":[],\"x\":\"; rm -rf /\"}")
                .is_err(),
            "unknown fields are refused"
        );
        assert!(Plan::from_json(b"not json").is_err());
    }
}
