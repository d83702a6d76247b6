//! Linux backend: nftables. kizuki owns exactly one table, `inet kizuki`,
//! and replaces it as a whole in one atomic `nft -f -` transaction, fed
//! through stdin; no shell is involved and nobody else's tables are touched.
//!
//! Blocking a program = its processes sit in a cgroup of their own, and a
//! `socket cgroupv2` rule drops every socket they open. Sockets opened before
//! the move are cut one by one (exact addresses and ports), and destroyed
//! with `ss -K` where the kernel allows it.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use super::cgroup::{CgroupLayout, LEVEL};
use super::plan::{Flow, Plan, PlanError, normalize_flow};
use super::{Applied, Enforced, FirewallBackend, FirewallError};
use crate::model::Protocol;

pub const TABLE_FAMILY: &str = "inet";
pub const TABLE_NAME: &str = "kizuki";
/// Runs before the distribution's filter tables, so a drop here is final.
const PRIORITY: &str = "filter - 10";

pub const COMMENT_BLOCK: &str = "kizuki:block:";
pub const COMMENT_CUT: &str = "kizuki:cut:";
pub const COMMENT_PANIC: &str = "kizuki:panic";

/// An nft script that removes kizuki's table (and nothing else); it works
/// whether or not the table exists.
pub fn clear_script() -> String {
    format!("table {TABLE_FAMILY} {TABLE_NAME}\ndelete table {TABLE_FAMILY} {TABLE_NAME}\n")
}

fn flow_match(f: &Flow, outgoing: bool) -> String {
    let (src, dst): (SocketAddr, SocketAddr) = if outgoing {
        (f.local, f.remote)
    } else {
        (f.remote, f.local)
    };
    let fam = if src.is_ipv4() { "ip" } else { "ip6" };
    // normalize_flow lets only TCP and UDP through.
    let proto = f.protocol.as_str();
    format!(
        "meta l4proto {proto} {fam} saddr {} th sport {} {fam} daddr {} th dport {}",
        src.ip(),
        src.port(),
        dst.ip(),
        dst.port()
    )
}

/// The whole table for `plan`, as one transaction: create-if-missing,
/// delete, define. An empty plan gives the script that removes the table.
/// Only data that [`Plan::validate`] accepted reaches the text, and no byte
/// of a program's path does: programs are named by their id.
pub fn ruleset(plan: &Plan, cgroups: Option<&CgroupLayout>) -> Result<String, PlanError> {
    plan.validate()?;
    let mut s = clear_script();
    if plan.is_empty() {
        return Ok(s);
    }
    let mut blocks = Vec::new();
    for b in &plan.blocked {
        let layout = cgroups.ok_or_else(|| PlanError::BadCgroup("no cgroup v2".into()))?;
        let id = b.id();
        blocks.push((id.clone(), layout.nft_path(&id)?, &b.flows));
    }
    let _ = writeln!(s, "table {TABLE_FAMILY} {TABLE_NAME} {{");
    for (chain, hook, outgoing) in [("output", "output", true), ("input", "input", false)] {
        let _ = writeln!(s, "\tchain {chain} {{");
        let _ = writeln!(
            s,
            "\t\ttype filter hook {hook} priority {PRIORITY}; policy accept;"
        );
        for (id, path, flows) in &blocks {
            let _ = writeln!(
                s,
                "\t\tsocket cgroupv2 level {LEVEL} \"{path}\" counter drop comment \"{COMMENT_BLOCK}{id}\""
            );
            for f in flows.iter() {
                let f = normalize_flow(f)?;
                let _ = writeln!(
                    s,
                    "\t\t{} counter drop comment \"{COMMENT_CUT}{id}\"",
                    flow_match(&f, outgoing)
                );
            }
        }
        if plan.panic {
            let dev = if outgoing { "oifname" } else { "iifname" };
            let _ = writeln!(s, "\t\t{dev} \"lo\" accept comment \"{COMMENT_PANIC}\"");
            let _ = writeln!(s, "\t\tcounter drop comment \"{COMMENT_PANIC}\"");
        }
        let _ = writeln!(s, "\t}}");
    }
    if plan.panic {
        let _ = writeln!(s, "\tchain forward {{");
        let _ = writeln!(
            s,
            "\t\ttype filter hook forward priority {PRIORITY}; policy accept;"
        );
        let _ = writeln!(s, "\t\tcounter drop comment \"{COMMENT_PANIC}\"");
        let _ = writeln!(s, "\t}}");
    }
    let _ = writeln!(s, "}}");
    Ok(s)
}

/// `ss -K` arguments that destroy exactly one socket.
pub fn ss_kill_args(f: &Flow) -> Result<Vec<String>, PlanError> {
    let f = normalize_flow(f)?;
    let proto = match f.protocol {
        Protocol::Tcp => "-t",
        Protocol::Udp => "-u",
        other => return Err(PlanError::BadFlow(other.as_str().to_string())),
    };
    let host = |a: SocketAddr| match a {
        SocketAddr::V4(v) => v.ip().to_string(),
        SocketAddr::V6(v) => format!("[{}]", v.ip()),
    };
    Ok(vec![
        "-K".into(),
        "-n".into(),
        proto.into(),
        "src".into(),
        host(f.local),
        "sport".into(),
        "=".into(),
        format!(":{}", f.local.port()),
        "dst".into(),
        host(f.remote),
        "dport".into(),
        "=".into(),
        format!(":{}", f.remote.port()),
    ])
}

/// What a listed table says is enforced.
pub fn parse_listing(listing: &str) -> Enforced {
    let mut blocked = BTreeSet::new();
    for part in listing.split(COMMENT_BLOCK).skip(1) {
        let id: String = part.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        if !id.is_empty() {
            blocked.insert(id);
        }
    }
    Enforced {
        table: true,
        panic: listing.contains(COMMENT_PANIC),
        blocked_ids: blocked,
        listing: None,
    }
}

/// Runs nft and ss, in the current network namespace or (for tests) in the
/// one named at construction.
#[derive(Debug, Clone)]
pub struct NftBackend {
    /// Argument vector prefix that runs a tool: empty, or `nsenter --net=…`.
    prefix: Vec<OsString>,
    cgroups: Option<CgroupLayout>,
}

impl NftBackend {
    /// The host's firewall, with the machine's cgroup v2 mount.
    pub fn new() -> Self {
        NftBackend {
            prefix: Vec::new(),
            cgroups: CgroupLayout::detect(),
        }
    }

    /// The firewall of the network namespace at `netns` (e.g.
    /// `/run/netns/NAME`), entered with `nsenter --net=` so `/sys` (and the
    /// cgroup mount) stays as it is.
    pub fn in_netns(netns: &Path) -> Self {
        let mut arg = OsString::from("--net=");
        arg.push(netns.as_os_str());
        NftBackend {
            prefix: vec!["nsenter".into(), arg],
            cgroups: CgroupLayout::detect(),
        }
    }

    pub fn cgroups(&self) -> Option<&CgroupLayout> {
        self.cgroups.as_ref()
    }

    /// The same firewall with these cgroups (tests name their own parent
    /// cgroup, since cgroups are machine-wide).
    pub fn with_layout(mut self, cgroups: Option<CgroupLayout>) -> Self {
        self.cgroups = cgroups;
        self
    }

    /// The host's firewall with these cgroups (the guard names its own
    /// parent cgroup).
    pub fn with_cgroups(cgroups: Option<CgroupLayout>) -> Self {
        NftBackend {
            prefix: Vec::new(),
            cgroups,
        }
    }

    /// Loads `script` (from [`ruleset`] or [`clear_script`]) in one `nft -f -`
    /// transaction: all of it or nothing.
    pub fn load_script(&self, script: &str) -> Result<(), FirewallError> {
        self.load(script)
    }

    /// Destroys one socket with `ss -K`.
    pub fn cut_flow(&self, f: &Flow) -> Result<(), String> {
        self.cut(f)
    }

    fn command(&self, tool: &str) -> Command {
        match self.prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(tool);
                c
            }
            None => Command::new(tool),
        }
    }

    /// `nft -f -` with `script` on stdin.
    fn load(&self, script: &str) -> Result<(), FirewallError> {
        let mut child = self
            .command("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| FirewallError::Tool {
                tool: "nft".into(),
                source,
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A write error shows up as nft's failure below.
            let _ = stdin.write_all(script.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|source| FirewallError::Tool {
                tool: "nft".into(),
                source,
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(FirewallError::Rejected {
                tool: "nft".into(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    fn cut(&self, f: &Flow) -> Result<(), String> {
        let args = ss_kill_args(f).map_err(|e| e.to_string())?;
        let out = self
            .command("ss")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("ss: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }
}

impl Default for NftBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl FirewallBackend for NftBackend {
    fn apply(&mut self, plan: &Plan) -> Result<Applied, FirewallError> {
        plan.validate()?;
        let mut applied = Applied::default();
        if !plan.blocked.is_empty() {
            let layout = self.cgroups.as_ref().ok_or(FirewallError::NoCgroupV2)?;
            for b in &plan.blocked {
                let id = b.id();
                layout.ensure(&id).map_err(|source| FirewallError::Cgroup {
                    path: layout.dir(&id),
                    source,
                })?;
            }
        }
        self.load(&ruleset(plan, self.cgroups.as_ref())?)?;
        if let Some(layout) = &self.cgroups {
            for b in &plan.blocked {
                let id = b.id();
                for &pid in &b.pids {
                    match layout.move_pid(&id, pid) {
                        Ok(true) => applied.moved.push(pid),
                        Ok(false) => applied.vanished.push(pid),
                        Err(e) => applied.warnings.push(format!("pid {pid}: {e}")),
                    }
                }
            }
            // Cgroups of programs no longer blocked: removed when empty.
            let keep: BTreeSet<String> = plan.blocked.iter().map(|b| b.id()).collect();
            for id in layout.existing() {
                if !keep.contains(&id)
                    && let Err(e) = layout.remove(&id, false)
                {
                    applied.warnings.push(format!("cgroup {id}: {e}"));
                }
            }
            layout.remove_parent_if_empty();
        }
        // After the rules: a connection cut now cannot be reopened.
        for b in &plan.blocked {
            for f in &b.flows {
                match self.cut(f) {
                    Ok(()) => applied.cut += 1,
                    Err(e) => applied.warnings.push(format!("ss -K: {e}")),
                }
            }
        }
        Ok(applied)
    }

    fn clear(&mut self) -> Result<(), FirewallError> {
        self.load(&clear_script())?;
        if let Some(layout) = &self.cgroups {
            for id in layout.existing() {
                layout
                    .remove(&id, true)
                    .map_err(|source| FirewallError::Cgroup {
                        path: layout.dir(&id),
                        source,
                    })?;
            }
            layout.remove_parent_if_empty();
        }
        Ok(())
    }

    fn status(&mut self) -> Result<Enforced, FirewallError> {
        let out = self
            .command("nft")
            .args(["list", "table", TABLE_FAMILY, TABLE_NAME])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| FirewallError::Tool {
                tool: "nft".into(),
                source,
            })?;
        if out.status.success() {
            return Ok(parse_listing(&String::from_utf8_lossy(&out.stdout)));
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No such file or directory") {
            Ok(Enforced::default())
        } else {
            Err(FirewallError::Rejected {
                tool: "nft".into(),
                detail: err.trim().to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::plan::{BlockedProgram, PLAN_VERSION};
    use std::path::{Path, PathBuf};

    fn layout() -> CgroupLayout {
        CgroupLayout::for_mount(Path::new("/sys/fs/cgroup/unified")).unwrap()
    }

    fn prog_path(exe: PathBuf, flows: Vec<Flow>) -> BlockedProgram {
        BlockedProgram {
            exe,
            sha256: "a".repeat(64),
            pids: vec![4242],
            flows,
        }
    }

    fn flow(p: Protocol, l: &str, r: &str) -> Flow {
        Flow {
            protocol: p,
            local: l.parse().unwrap(),
            remote: r.parse().unwrap(),
        }
    }

    fn plan(blocked: Vec<BlockedProgram>, panic: bool) -> Plan {
        Plan {
            version: PLAN_VERSION,
            panic,
            blocked,
        }
    }

    /// Every line of a ruleset is one of the shapes kizuki writes, and
    /// nothing but `inet kizuki` is named.
    fn assert_well_formed(rules: &str) {
        for line in rules.lines() {
            let l = line.trim();
            assert!(
                !l.contains(';') || l.starts_with("type filter hook"),
                "stray ';' in {l:?}"
            );
            assert_eq!(l.matches('"').count() % 2, 0, "unbalanced quote: {l:?}");
            if l.starts_with("table") || l.starts_with("delete table") {
                assert!(l.contains("inet kizuki"), "{l}");
            }
        }
    }

    // Written with Unix paths and tools.
    #[cfg(unix)]
    #[test]
    fn hostile_paths_never_reach_the_rules() {
        #[allow(unused_mut)] // one more, non-UTF-8, path on unix
        let mut hostile: Vec<PathBuf> = [
            "/tmp/free tool.exe",
            "/tmp/a\"; flush ruleset; \"",
            "/tmp/semi;colon",
            "/tmp/it's",
            "/tmp/$(reboot)`id`",
            "/home/太郎/ダウンロード/ツール",
            "/tmp/\u{202E}gnp.exe",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            hostile.push(PathBuf::from(std::ffi::OsString::from_vec(
                b"/tmp/\xff\xfe bad".to_vec(),
            )));
        }
        for exe in hostile {
            let b = prog_path(exe.clone(), vec![]);
            let id = b.id();
            let rules = ruleset(&plan(vec![b], false), Some(&layout())).unwrap();
            assert_well_formed(&rules);
            let expected = format!(
                "socket cgroupv2 level 2 \"unified/kizuki-blocked/{id}\" counter drop comment \"kizuki:block:{id}\""
            );
            assert_eq!(rules.matches(&expected).count(), 2, "out and in: {rules}");
            let text = crate::escape::os_lossless(exe.as_os_str());
            let name = text.rsplit('/').next().unwrap();
            assert!(!rules.contains(name), "path leaked into rules: {rules}");
        }
    }

    #[test]
    fn paths_with_newlines_or_nul_are_refused() {
        for bad in [
            "/tmp/a\nflush ruleset",
            "/tmp/a\0b",
            "relative/x",
            "/tmp/\r",
        ] {
            let p = plan(vec![prog_path(PathBuf::from(bad), vec![])], false);
            assert!(ruleset(&p, Some(&layout())).is_err(), "{bad:?}");
        }
    }

    // Written with Unix paths and tools.
    #[cfg(unix)]
    #[test]
    fn connections_are_cut_exactly_both_ways_v4_and_v6() {
        let flows = vec![
            flow(Protocol::Tcp, "10.231.0.2:40000", "10.231.0.1:8080"),
            flow(Protocol::Udp, "[2001:db8::2]:5353", "[2001:db8::1]:53"),
            flow(
                Protocol::Tcp,
                "[::ffff:192.0.2.1]:1234",
                "[::ffff:198.51.100.9]:443",
            ),
        ];
        // A plan holds flows as the builder makes them: IPv4-mapped
        // addresses unmapped, sorted. Any other form is refused.
        let raw = plan(
            vec![prog_path(PathBuf::from("/usr/bin/x"), flows.clone())],
            false,
        );
        assert!(ruleset(&raw, Some(&layout())).is_err());
        let mut flows: Vec<Flow> = flows.iter().map(|f| normalize_flow(f).unwrap()).collect();
        flows.sort();
        let b = prog_path(PathBuf::from("/usr/bin/x"), flows);
        let id = b.id();
        let rules = ruleset(&plan(vec![b], false), Some(&layout())).unwrap();
        assert_well_formed(&rules);
        for want in [
            "meta l4proto tcp ip saddr 10.231.0.2 th sport 40000 ip daddr 10.231.0.1 th dport 8080",
            "meta l4proto tcp ip saddr 10.231.0.1 th sport 8080 ip daddr 10.231.0.2 th dport 40000",
            "meta l4proto udp ip6 saddr 2001:db8::2 th sport 5353 ip6 daddr 2001:db8::1 th dport 53",
            "meta l4proto udp ip6 saddr 2001:db8::1 th sport 53 ip6 daddr 2001:db8::2 th dport 5353",
            "meta l4proto tcp ip saddr 192.0.2.1 th sport 1234 ip daddr 198.51.100.9 th dport 443",
        ] {
            assert!(
                rules.contains(&format!("{want} counter drop comment \"kizuki:cut:{id}\"")),
                "missing {want}\n{rules}"
            );
        }
        let bad = prog_path(
            PathBuf::from("/usr/bin/x"),
            vec![flow(Protocol::Tcp, "10.0.0.1:1", "[2001:db8::1]:2")],
        );
        assert!(ruleset(&plan(vec![bad], false), Some(&layout())).is_err());
    }

    #[test]
    fn panic_keeps_loopback_only_and_empty_plan_removes_the_table() {
        let rules = ruleset(&plan(vec![], true), None).unwrap();
        assert_well_formed(&rules);
        assert!(rules.contains("oifname \"lo\" accept comment \"kizuki:panic\""));
        assert!(rules.contains("iifname \"lo\" accept comment \"kizuki:panic\""));
        assert_eq!(
            rules
                .matches("counter drop comment \"kizuki:panic\"")
                .count(),
            3
        );
        // Loopback is accepted before everything is dropped.
        let lo = rules.find("oifname \"lo\"").unwrap();
        let drop = rules.find("counter drop comment \"kizuki:panic\"").unwrap();
        assert!(lo < drop);
        assert_eq!(ruleset(&Plan::default(), None).unwrap(), clear_script());
        assert_eq!(
            clear_script(),
            "table inet kizuki\ndelete table inet kizuki\n"
        );
        // Blocking needs a cgroup v2 to name.
        let p = plan(vec![prog_path(PathBuf::from("/a"), vec![])], false);
        assert!(ruleset(&p, None).is_err());
    }

    #[test]
    fn ss_arguments_name_one_socket() {
        let a = ss_kill_args(&flow(Protocol::Tcp, "10.0.0.2:40000", "10.0.0.1:80")).unwrap();
        assert_eq!(
            a.join(" "),
            "-K -n -t src 10.0.0.2 sport = :40000 dst 10.0.0.1 dport = :80"
        );
        let a = ss_kill_args(&flow(Protocol::Udp, "[2001:db8::2]:5", "[2001:db8::1]:6")).unwrap();
        assert_eq!(
            a.join(" "),
            "-K -n -u src [2001:db8::2] sport = :5 dst [2001:db8::1] dport = :6"
        );
        assert!(ss_kill_args(&flow(Protocol::Tcp, "0.0.0.0:1", "10.0.0.1:80")).is_err());
    }

    // Written with Unix paths and tools.
    #[cfg(unix)]
    #[test]
    fn listing_tells_what_is_enforced() {
        let b = prog_path(PathBuf::from("/usr/bin/x"), vec![]);
        let id = b.id();
        let rules = ruleset(&plan(vec![b], true), Some(&layout())).unwrap();
        let e = parse_listing(&rules);
        assert!(e.table && e.panic);
        assert!(e.blocks(Path::new("/usr/bin/x")));
        assert!(!e.blocks(Path::new("/usr/bin/y")));
        assert_eq!(e.blocked_ids.into_iter().collect::<Vec<_>>(), vec![id]);
    }
}
