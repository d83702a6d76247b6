//! What a program's processes are doing beyond their sockets: a shell whose
//! input and output are a network connection (`remote-shell`), a raw or
//! packet socket (`raw-socket`), a name that imitates the kernel or another
//! program (`disguised`).
//!
//! [`HostFacts`] gathers, once per tick, what the probe saw per PID (the
//! sockets on descriptors 0–2, raw sockets, Tor's data files) so the
//! detectors stay pure functions of a program and these facts.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use serde_json::json;

use super::network::{Reach, reach};
use super::places::{PathStyle, is_system_location};
use super::{Detected, evidence, is_trusted};
use crate::escape::os_lossless;
use crate::i18n::tr_args;
use crate::model::{FindingKind, Program, RawSample, Severity, SockState};
use crate::probe::script::is_interpreter;

/// A network socket on a standard stream of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StdioSocket {
    pub local: SocketAddr,
    pub remote: Option<SocketAddr>,
}

/// What the probe saw about one PID beyond the process list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PidFacts {
    /// Network sockets on descriptors 0, 1 or 2.
    pub stdio_sockets: Vec<StdioSocket>,
    /// Families (`raw`, `raw6`, `packet`) of raw sockets it holds.
    pub special: Vec<&'static str>,
    /// It holds or works in Tor's data directory.
    pub tor_data: bool,
}

/// Per-PID facts of one sample.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    pub by_pid: HashMap<u32, PidFacts>,
    /// Processes of network relay tools (`ncat`, `socat`, …) that hold a
    /// connection: a shell they started gets its commands from it
    /// (`ncat -e /bin/sh`, `socat … EXEC:sh` pass them through pipes).
    pub relays: HashMap<u32, StdioSocket>,
}

/// Tools that pass a connection through to a program they start.
const RELAY_TOOLS: &[&str] = &[
    "ncat",
    "nc",
    "netcat",
    "nc.openbsd",
    "nc.traditional",
    "socat",
    "busybox",
];

impl HostFacts {
    pub fn from_sample(raw: &RawSample) -> HostFacts {
        // Only the sockets some process has on its standard streams (few,
        // among thousands).
        let wanted: HashSet<u64> = raw
            .processes
            .iter()
            .flat_map(|p| p.std_sockets.iter().copied())
            .collect();
        let by_inode: HashMap<u64, StdioSocket> = raw
            .sockets
            .iter()
            .filter(|s| s.inode != 0 && wanted.contains(&s.inode))
            .map(|s| {
                (
                    s.inode,
                    StdioSocket {
                        local: s.local,
                        remote: s.remote,
                    },
                )
            })
            .collect();
        let mut by_pid: HashMap<u32, PidFacts> = HashMap::new();
        for p in &raw.processes {
            let stdio: Vec<StdioSocket> = p
                .std_sockets
                .iter()
                .filter_map(|i| by_inode.get(i).cloned())
                .collect();
            if !stdio.is_empty() || p.tor_data {
                let f = by_pid.entry(p.pid).or_default();
                f.stdio_sockets = stdio;
                f.tor_data = p.tor_data;
            }
        }
        for s in &raw.special_sockets {
            for pid in &s.pids {
                let f = by_pid.entry(*pid).or_default();
                if !f.special.contains(&s.family) {
                    f.special.push(s.family);
                }
            }
        }
        let relay_pids: HashSet<u32> = raw
            .processes
            .iter()
            .filter(|p| {
                p.exe
                    .as_ref()
                    .and_then(|e| e.file_name())
                    .is_some_and(|n| RELAY_TOOLS.contains(&n.to_string_lossy().as_ref()))
            })
            .map(|p| p.pid)
            .collect();
        let mut relays = HashMap::new();
        let relay_sockets = raw.sockets.iter().filter(|_| !relay_pids.is_empty());
        for s in relay_sockets {
            if s.remote.is_none() || s.state == SockState::Listen {
                continue;
            }
            for pid in s.pids.iter().filter(|p| relay_pids.contains(p)) {
                relays.entry(*pid).or_insert(StdioSocket {
                    local: s.local,
                    remote: s.remote,
                });
            }
        }
        HostFacts { by_pid, relays }
    }

    pub fn of(&self, pid: u32) -> Option<&PidFacts> {
        self.by_pid.get(&pid)
    }

    /// True when a live process of `p` holds Tor's data files.
    pub fn keeps_tor_data(&self, p: &Program) -> bool {
        p.processes
            .iter()
            .filter(|x| x.alive)
            .any(|x| self.of(x.pid).is_some_and(|f| f.tor_data))
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// The file names a program really has: its executable, and for a script
/// program the interpreter and the script.
fn own_names(p: &Program) -> Vec<String> {
    [p.exe.as_deref(), p.interpreter()]
        .into_iter()
        .flatten()
        .map(|path| file_name(&os_lossless(path.as_os_str())).to_string())
        .collect()
}

/// True when the program is a shell or script interpreter (by its file,
/// its interpreter, or what its processes are called).
fn is_shell_like(p: &Program) -> bool {
    own_names(p).iter().any(|n| is_interpreter(n))
        || p.processes.iter().any(|x| {
            is_interpreter(&x.name)
                || x.cmdline
                    .first()
                    .is_some_and(|a| is_interpreter(file_name(a.trim_start_matches('-'))))
        })
}

/// `remote-shell`: a shell or interpreter whose standard input, output or
/// error is a network socket — someone elsewhere types its commands.
pub fn remote_shell(p: &Program, facts: &HostFacts) -> Option<Detected> {
    if !is_shell_like(p) {
        return None;
    }
    let (pid, sock) = p.processes.iter().filter(|x| x.alive).find_map(|x| {
        let direct = facts
            .of(x.pid)
            .and_then(|f| f.stdio_sockets.first().cloned());
        let relayed = || x.parent.and_then(|pp| facts.relays.get(&pp).cloned());
        direct.or_else(relayed).map(|s| (x.pid, s))
    })?;
    let endpoint = sock.remote.unwrap_or(sock.local).to_string();
    let shell = p
        .interpreter()
        .or(p.exe.as_deref())
        .and_then(|e| e.file_name())
        .map(os_lossless)
        .unwrap_or_else(|| p.name.clone());
    Some(Detected {
        kind: FindingKind::RemoteShell,
        severity: if is_trusted(p) {
            Severity::Medium
        } else {
            Severity::High
        },
        summary: tr_args(
            "findings.remote_shell",
            &[("shell", &shell), ("endpoint", &endpoint)],
        ),
        evidence: evidence([
            ("pid", json!(pid)),
            ("local", json!(sock.local.to_string())),
            ("remote", json!(sock.remote.map(|r| r.to_string()))),
        ]),
    })
}

/// Network tools that need raw or packet sockets for their work; they count
/// only where the package manager put them.
const NETWORK_TOOLS: &[&str] = &[
    "ping",
    "ping4",
    "ping6",
    "arping",
    "traceroute",
    "traceroute6",
    "tracepath",
    "mtr-packet",
    "fping",
    "tcpdump",
    "dumpcap",
    "tshark",
    "wireshark",
    "nmap",
    "dhclient",
    "dhcpcd",
    "udhcpc",
    "NetworkManager",
    "nm-dhcp-helper",
    "wpa_supplicant",
    "hostapd",
    "systemd-networkd",
    "dnsmasq",
    "iftop",
    "nethogs",
    "lldpd",
    "keepalived",
    "arpwatch",
    "suricata",
    "snort",
    "zeek",
    "kizuki",
];

/// `raw-socket`: the program holds a raw or packet socket and is not a
/// known network tool installed in a system folder.
pub fn raw_socket(p: &Program, facts: &HostFacts, style: PathStyle) -> Option<Detected> {
    let families: HashSet<&'static str> = p
        .processes
        .iter()
        .filter(|x| x.alive)
        .filter_map(|x| facts.of(x.pid))
        .flat_map(|f| f.special.iter().copied())
        .collect();
    if families.is_empty() {
        return None;
    }
    let exe = p.exe.as_ref().map(|e| os_lossless(e.as_os_str()));
    let system = exe.as_deref().is_some_and(|e| is_system_location(e, style));
    let tool = p.interpreter().is_none()
        && exe
            .as_deref()
            .is_some_and(|e| NETWORK_TOOLS.contains(&file_name(e)));
    if system && tool {
        return None;
    }
    let mut families: Vec<&str> = families.into_iter().collect();
    families.sort_unstable();
    Some(Detected {
        kind: FindingKind::RawSocket,
        severity: if is_trusted(p) {
            Severity::Low
        } else {
            Severity::Medium
        },
        summary: tr_args("findings.raw_socket", &[("family", &families.join(", "))]),
        evidence: evidence([("families", json!(families)), ("exe", json!(exe))]),
    })
}

/// Prefixes of kernel thread names (`kworker/1:2`, `ksoftirqd/0`, …).
const KERNEL_THREADS: &[&str] = &[
    "kworker",
    "ksoftirqd",
    "kthreadd",
    "migration/",
    "rcu_",
    "watchdog/",
    "kswapd",
    "jbd2/",
    "kauditd",
    "khungtaskd",
    "kcompactd",
    "kblockd",
    "irq/",
    "cpuhp/",
    "kdevtmpfs",
    "oom_reaper",
    "writeback",
];

/// Well-known programs whose names malware likes to borrow.
const WELL_KNOWN: &[&str] = &[
    "sshd",
    "cron",
    "crond",
    "dbus-daemon",
    "systemd-journald",
    "systemd-logind",
    "systemd-resolved",
    "NetworkManager",
    "gnome-shell",
    "pulseaudio",
    "pipewire",
    "Xorg",
    "firefox",
    "chrome",
    "svchost.exe",
    "explorer.exe",
    "lsass.exe",
    "csrss.exe",
    "winlogon.exe",
    "services.exe",
    "smss.exe",
];

/// Names that all run a shell: `sh` is often `dash` or `busybox`.
const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "busybox"];

fn looks_like_kernel_thread(shown: &str) -> bool {
    let inner = shown
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .map(|s| (s, true))
        .unwrap_or((shown, false));
    inner.1 || KERNEL_THREADS.iter().any(|k| inner.0.starts_with(k))
}

/// Is `shown` (maybe cut at 15 bytes, as the kernel cuts names) the name
/// `full`?
fn same_name(shown: &str, full: &str) -> bool {
    shown == full || (shown.len() == 15 && full.starts_with(shown))
}

/// `disguised`: a process shows a name (the kernel's process name or its
/// `argv[0]`) that imitates a kernel thread, or that is another well-known
/// program than the file it runs.
pub fn disguised(p: &Program) -> Option<Detected> {
    let own = own_names(p);
    if own.is_empty() {
        return None;
    }
    let exe = p.exe.as_ref().map(|e| os_lossless(e.as_os_str()))?;
    for x in p.processes.iter().filter(|x| x.alive) {
        let argv0 = x.cmdline.first().map(String::as_str).unwrap_or("");
        for shown in [x.name.as_str(), argv0] {
            let shown = shown.trim();
            if shown.is_empty() {
                continue;
            }
            let (kind, key) = if looks_like_kernel_thread(shown) {
                ("kernel", "findings.disguised.kernel")
            } else {
                let base = file_name(shown.trim_start_matches('-'));
                let borrowed = WELL_KNOWN.iter().find(|w| same_name(base, w));
                let Some(w) = borrowed else { continue };
                // `firefox` for `firefox-esr`, `sshd` for `sshd-session`:
                // a program's own name with a suffix is still its own.
                let mine = own.iter().any(|n| {
                    same_name(base, n)
                        || n.starts_with(*w)
                        || (n.len() >= 4 && w.starts_with(n.as_str()))
                }) || (SHELLS.contains(w)
                    && own.iter().any(|n| SHELLS.contains(&n.as_str())));
                if mine {
                    continue;
                }
                ("other", "findings.disguised.other")
            };
            return Some(Detected {
                kind: FindingKind::Disguised,
                severity: if is_trusted(p) {
                    Severity::Low
                } else {
                    Severity::Medium
                },
                summary: tr_args(key, &[("shown", shown), ("exe", &exe)]),
                evidence: evidence([
                    ("pid", json!(x.pid)),
                    ("shown_name", json!(shown)),
                    ("imitates", json!(kind)),
                    ("exe", json!(exe)),
                ]),
            });
        }
    }
    None
}

/// Loopback (or all-interface) TCP listeners of Tor-like programs, by
/// port, with the owner's name: whoever connects there sends its traffic
/// through Tor, whatever the port number.
pub fn tor_listeners(programs: &[Program], facts: &HostFacts) -> HashMap<u16, String> {
    let mut out = HashMap::new();
    for p in programs {
        if !(super::network::is_tor_program(p) || facts.keeps_tor_data(p)) {
            continue;
        }
        for c in p.live_connections() {
            if c.state == SockState::Listen
                && (reach(c.local.ip()) == Reach::Loopback || c.local.ip().is_unspecified())
            {
                out.insert(c.local.port(), p.name.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testkit::program;
    use crate::model::{Mark, RawProcess, RawSocket, RawSpecialSocket};

    fn facts_with(pid: u32, f: PidFacts) -> HostFacts {
        HostFacts {
            by_pid: [(pid, f)].into_iter().collect(),
            ..HostFacts::default()
        }
    }

    fn stdio(remote: Option<&str>) -> PidFacts {
        PidFacts {
            stdio_sockets: vec![StdioSocket {
                local: "127.0.0.1:4444".parse().unwrap(),
                remote: remote.map(|r| r.parse().unwrap()),
            }],
            ..PidFacts::default()
        }
    }

    #[test]
    fn facts_map_standard_streams_to_the_socket_table() {
        let mut sh = RawProcess::fake(7, "/usr/bin/dash");
        sh.std_sockets = vec![42, 42, 42];
        let mut sock = RawSocket::tcp(6, "127.0.0.1:4444", "127.0.0.1:50000");
        sock.inode = 42;
        let mut sample = RawSample::of(vec![sh], vec![sock]);
        sample.special_sockets.push(RawSpecialSocket {
            family: "packet",
            inode: 9,
            pids: vec![7],
        });
        let f = HostFacts::from_sample(&sample);
        let pf = f.of(7).unwrap();
        assert_eq!(pf.stdio_sockets.len(), 3);
        assert_eq!(pf.special, vec!["packet"]);
    }

    #[test]
    fn remote_shell_table() {
        let sh = program("/usr/bin/dash", vec![]);
        let mut script = program("/tmp/x.sh", vec![]);
        script.key = crate::model::ProgramKey::Script {
            script: "/tmp/x.sh".into(),
            interpreter: "/usr/bin/bash".into(),
        };
        let ncat = program("/usr/bin/ncat", vec![]);
        let mut trusted = sh.clone();
        trusted.mark = Some(Mark::Trusted);
        let cases: Vec<(&str, &Program, PidFacts, Option<Severity>)> = vec![
            (
                "bind shell",
                &sh,
                stdio(Some("127.0.0.1:50000")),
                Some(Severity::High),
            ),
            (
                "reverse shell script",
                &script,
                stdio(Some("203.0.113.9:443")),
                Some(Severity::High),
            ),
            ("shell on a pipe", &sh, PidFacts::default(), None),
            (
                "ncat itself is not a shell",
                &ncat,
                stdio(Some("127.0.0.1:5")),
                None,
            ),
            ("trusted", &trusted, stdio(None), Some(Severity::Medium)),
        ];
        for (name, p, f, want) in cases {
            let got = remote_shell(p, &facts_with(1, f)).map(|d| d.severity);
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn a_shell_started_by_a_relay_tool_with_a_connection_is_remote() {
        let mut ncat = RawProcess::fake(10, "/usr/bin/ncat");
        ncat.parent = Some(1);
        let mut sh = RawProcess::fake(11, "/usr/bin/dash");
        sh.parent = Some(10);
        let mut bash_of_sshd = RawProcess::fake(21, "/usr/bin/bash");
        bash_of_sshd.parent = Some(20);
        let sample = RawSample::of(
            vec![
                ncat,
                sh,
                RawProcess::fake(20, "/usr/sbin/sshd"),
                bash_of_sshd,
            ],
            vec![
                RawSocket::tcp(10, "127.0.0.1:4444", "127.0.0.1:50000"),
                RawSocket::tcp(20, "10.0.0.2:22", "10.0.0.9:50001"),
            ],
        );
        let facts = HostFacts::from_sample(&sample);
        let mut shell = program("/usr/bin/dash", vec![]);
        shell.processes[0].pid = 11;
        shell.processes[0].parent = Some(10);
        let d = remote_shell(&shell, &facts).expect("ncat -e sh");
        assert_eq!(d.severity, Severity::High);
        assert_eq!(d.evidence["remote"], json!("127.0.0.1:50000"));
        let mut ssh_cmd = program("/usr/bin/bash", vec![]);
        ssh_cmd.processes[0].pid = 21;
        ssh_cmd.processes[0].parent = Some(20);
        assert!(remote_shell(&ssh_cmd, &facts).is_none(), "ssh host cmd");
    }

    #[test]
    fn raw_socket_table() {
        let raw = PidFacts {
            special: vec!["raw"],
            ..PidFacts::default()
        };
        let cases: Vec<(&str, &str, Option<Severity>)> = vec![
            ("ping", "/usr/bin/ping", None),
            ("dhclient", "/usr/sbin/dhclient", None),
            (
                "sniffer in home",
                "/home/a/.local/bin/sniff",
                Some(Severity::Medium),
            ),
            ("ping copied to /tmp", "/tmp/ping", Some(Severity::Medium)),
            ("python", "/usr/bin/python3", Some(Severity::Medium)),
        ];
        for (name, exe, want) in cases {
            let p = program(exe, vec![]);
            let got =
                raw_socket(&p, &facts_with(1, raw.clone()), PathStyle::Unix).map(|d| d.severity);
            assert_eq!(got, want, "{name}");
        }
        let p = program("/tmp/x", vec![]);
        assert!(raw_socket(&p, &HostFacts::default(), PathStyle::Unix).is_none());
    }

    #[test]
    fn disguised_table() {
        let with = |exe: &str, comm: &str, argv0: &str| {
            let mut p = program(exe, vec![]);
            p.processes[0].name = comm.into();
            p.processes[0].cmdline = vec![argv0.into(), "x".into()];
            p
        };
        let cases: Vec<(&str, Program, bool)> = vec![
            (
                "perl as a kernel worker",
                with("/usr/bin/perl", "[kworker/1:2]", "[kworker/1:2]"),
                true,
            ),
            (
                "kernel name without brackets",
                with("/tmp/x/a", "kworker/0:1", "./a"),
                true,
            ),
            (
                "python calling itself sshd",
                with("/usr/bin/python3.11", "sshd", "sshd"),
                true,
            ),
            (
                "svchost from Temp",
                with(
                    r"C:\Users\a\AppData\Local\Temp\svchost.exe",
                    "svchost.exe",
                    "svchost.exe",
                ),
                false,
            ),
            (
                "real sshd",
                with("/usr/sbin/sshd", "sshd", "sshd: alice [priv]"),
                false,
            ),
            ("login shell", with("/usr/bin/bash", "bash", "-bash"), false),
            ("sh is dash", with("/usr/bin/dash", "sh", "/bin/sh"), false),
            (
                "journald cut at 15",
                with(
                    "/usr/lib/systemd/systemd-journald",
                    "systemd-journal",
                    "/usr/lib/systemd/systemd-journald",
                ),
                false,
            ),
            (
                "firefox content",
                with(
                    "/usr/lib/firefox-esr/firefox-esr",
                    "Isolated Web Co",
                    "/usr/lib/firefox-esr/firefox-esr",
                ),
                false,
            ),
            ("ordinary", with("/usr/bin/curl", "curl", "curl"), false),
            (
                "firefox started through its link",
                with(
                    "/usr/lib/firefox-esr/firefox-esr",
                    "firefox-esr",
                    "/usr/bin/firefox",
                ),
                false,
            ),
            (
                "OpenSSH's session process",
                with("/usr/lib/openssh/sshd-session", "sshd-session", "sshd"),
                false,
            ),
        ];
        for (name, p, want) in cases {
            assert_eq!(disguised(&p).is_some(), want, "{name}");
        }
    }
}
