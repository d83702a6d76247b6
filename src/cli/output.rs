//! Renders snapshots for the command line: the JSON of docs/CLI.md and a
//! human table. Every string from the OS is escaped before it reaches a
//! terminal; JSON is valid whatever the names contain.

use serde::Serialize;
use serde_json::Value;

use crate::clock::rfc3339;
use crate::escape::{for_display, os_lossless};
use crate::i18n::{tr, tr_args};
use crate::model::{Connection, Program, Snapshot};

/// `ip:port`, IPv6 as `[addr]:port` (what `SocketAddr` prints).
fn addr(a: &std::net::SocketAddr) -> String {
    a.to_string()
}

// The JSON of docs/CLI.md, serialized straight from borrowed data: a
// snapshot under load holds ten thousand connections, and building a
// `serde_json::Value` tree first costs more than the sampling itself.

#[derive(Serialize)]
struct ConnectionOut<'a> {
    pid: Option<u32>,
    protocol: &'static str,
    local: Addr,
    remote: Option<Addr>,
    state: &'static str,
    first_seen: Time,
    last_seen: Time,
    live: bool,
    remote_name: Option<&'a str>,
    remote_name_source: Option<&'static str>,
    remote_scope: Option<&'static str>,
    remote_country: Option<String>,
    remote_as: Option<u32>,
    remote_as_org: Option<String>,
    /// `null` when nobody counted (polling).
    bytes_sent: Option<u64>,
    bytes_received: Option<u64>,
    /// A socket no process holds any more (TIME_WAIT): its program ended
    /// or closed it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    owner_exited: bool,
}

impl<'a> ConnectionOut<'a> {
    fn of(c: &'a Connection) -> Self {
        let info = c
            .remote
            .map(|r| crate::names::describe(r.ip()))
            .unwrap_or_default();
        ConnectionOut {
            remote_name: c.remote_name.as_ref().map(|n| n.name.as_str()),
            remote_name_source: c.remote_name.as_ref().map(|n| n.source.as_str()),
            remote_scope: info.scope.map(|s| s.as_json()),
            remote_country: info.geo.country,
            remote_as: info.geo.asn,
            remote_as_org: info.geo.as_org,
            pid: c.pid,
            protocol: c.protocol.as_str(),
            local: Addr(c.local),
            remote: c.remote.map(Addr),
            state: c.state.as_str(),
            first_seen: Time(c.first_seen),
            last_seen: Time(c.last_seen),
            live: c.live,
            bytes_sent: c.bytes_sent,
            bytes_received: c.bytes_received,
            owner_exited: owner_exited(c),
        }
    }
}

/// A list of connections, each turned into its JSON as it is written
/// (ten thousand at once would be megabytes held only to be written).
struct ConnectionsOut<'a>(&'a [Connection]);

impl Serialize for ConnectionsOut<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_seq(self.0.iter().map(ConnectionOut::of))
    }
}

/// An address as [`addr`] writes it, without a `String` of its own.
struct Addr(std::net::SocketAddr);

impl Serialize for Addr {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_str(&self.0)
    }
}

/// A time as [`rfc3339`] writes it. The connections of one snapshot
/// share few distinct seconds: the last one written is kept.
struct Time(std::time::SystemTime);

thread_local! {
    static LAST_TIME: std::cell::RefCell<Option<(std::time::SystemTime, String)>> =
        const { std::cell::RefCell::new(None) };
}

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        LAST_TIME.with(|last| {
            let mut last = last.borrow_mut();
            match &*last {
                Some((t, text)) if *t == self.0 => ser.serialize_str(text),
                _ => {
                    let text = rfc3339(self.0);
                    let r = ser.serialize_str(&text);
                    *last = Some((self.0, text));
                    r
                }
            }
        })
    }
}

/// True for a connection that no process holds: the kernel keeps a
/// closed TCP connection in TIME_WAIT after its program let go of it.
pub fn owner_exited(c: &Connection) -> bool {
    c.pid.is_none() && c.state == crate::model::SockState::TimeWait
}

/// What the capture mode in force can miss, in the current language.
pub fn capture_note(s: &Snapshot) -> String {
    capture_note_in(crate::i18n::lang(), s)
}

/// The same in `l` (the window passes its own language).
pub fn capture_note_in(l: crate::i18n::Lang, s: &Snapshot) -> String {
    use crate::model::CaptureMode;
    let secs = s.interval.as_secs_f64();
    let shown = if secs.fract() == 0.0 {
        format!("{secs:.0}")
    } else {
        format!("{secs:.1}")
    };
    match s.capture_mode {
        CaptureMode::Ebpf => crate::i18n::tr_in(l, "capture.mode.ebpf"),
        CaptureMode::GuardEbpf => crate::i18n::tr_in(l, "live.mode.guard-ebpf"),
        CaptureMode::GuardPolling => crate::i18n::tr_in(l, "live.mode.guard-polling"),
        CaptureMode::Polling => {
            crate::i18n::tr_args_in(l, "capture.mode.polling", &[("interval", &shown)])
        }
    }
}

#[derive(Serialize)]
struct FindingOut<'a> {
    kind: &'static str,
    severity: &'static str,
    summary: &'a str,
    first_raised: String,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    evidence: &'a serde_json::Map<String, Value>,
}

#[derive(Serialize)]
struct ProcessOut<'a> {
    pid: u32,
    parent: Option<u32>,
    name: &'a str,
    cmdline: &'a [String],
    user: Option<&'a str>,
    alive: bool,
}

#[derive(Serialize)]
struct ProgramOut<'a> {
    exe: Option<String>,
    name: &'a str,
    pids: Vec<u32>,
    user: Option<String>,
    sha256: Option<&'a str>,
    exe_deleted: bool,
    /// The script an interpreter runs (then `exe` is the interpreter and
    /// `sha256`, `exe_deleted` speak of the script).
    script: Option<String>,
    mark: Option<&'static str>,
    first_seen: String,
    processes: Vec<ProcessOut<'a>>,
    connections: ConnectionsOut<'a>,
    findings: Vec<FindingOut<'a>>,
}

impl<'a> ProgramOut<'a> {
    fn of(p: &'a Program) -> Self {
        ProgramOut {
            exe: p
                .interpreter()
                .or(p.exe.as_deref())
                .map(|e| os_lossless(e.as_os_str())),
            name: &p.name,
            pids: p.pids(),
            user: p.user(),
            sha256: p.sha256.as_deref(),
            exe_deleted: p.exe_deleted,
            script: p.script().map(|s| os_lossless(s.as_os_str())),
            mark: p.mark.map(|m| m.as_str()),
            first_seen: rfc3339(p.first_seen),
            processes: p
                .processes
                .iter()
                .map(|x| ProcessOut {
                    pid: x.pid,
                    parent: x.parent,
                    name: &x.name,
                    cmdline: &x.cmdline,
                    user: x.user.as_deref(),
                    alive: x.alive,
                })
                .collect(),
            connections: ConnectionsOut(&p.connections),
            findings: p
                .findings
                .iter()
                .map(|f| FindingOut {
                    kind: f.kind.as_str(),
                    severity: f.severity.as_str(),
                    summary: &f.summary,
                    first_raised: rfc3339(f.first_raised),
                    evidence: &f.evidence,
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct SnapshotOut<'a> {
    taken_at: String,
    since: String,
    generation: u64,
    interval_ms: u64,
    complete: bool,
    /// `ebpf` (every connection seen) or `polling` (sampled).
    capture_mode: &'static str,
    /// What that mode can miss, in the user's language.
    capture_note: String,
    programs: Vec<ProgramOut<'a>>,
    unattributed: ConnectionsOut<'a>,
}

/// Writes the snapshot as the contract's JSON (pretty when `pretty`).
pub fn write_snapshot_json(
    s: &Snapshot,
    out: impl std::io::Write,
    pretty: bool,
) -> serde_json::Result<()> {
    let doc = SnapshotOut {
        taken_at: rfc3339(s.taken_at),
        since: rfc3339(s.since),
        generation: s.generation,
        interval_ms: u64::try_from(s.interval.as_millis()).unwrap_or(u64::MAX),
        complete: s.complete,
        capture_mode: s.capture_mode.as_str(),
        capture_note: capture_note(s),
        programs: s.programs.iter().map(ProgramOut::of).collect(),
        unattributed: ConnectionsOut(&s.unattributed),
    };
    if pretty {
        serde_json::to_writer_pretty(out, &doc)
    } else {
        write_compact(&doc, out)
    }
}

/// `serde_json::to_writer(out, doc)`, the same bytes, with the
/// connections written by hand ([`super::json_fast`]).
fn write_compact(doc: &SnapshotOut, out: impl std::io::Write) -> serde_json::Result<()> {
    let mut w = super::json_fast::Compact::new(out);
    w.buf.push(b'{');
    w.key("taken_at");
    w.value(&doc.taken_at)?;
    w.field("since", &doc.since)?;
    w.field("generation", &doc.generation)?;
    w.field("interval_ms", &doc.interval_ms)?;
    w.field("complete", &doc.complete)?;
    w.field("capture_mode", doc.capture_mode)?;
    w.field("capture_note", &doc.capture_note)?;
    w.next_key("programs");
    w.buf.push(b'[');
    for (i, p) in doc.programs.iter().enumerate() {
        if i > 0 {
            w.buf.push(b',');
        }
        write_program_compact(&mut w, p)?;
    }
    w.buf.push(b']');
    w.next_key("unattributed");
    w.connections(doc.unattributed.0)
        .map_err(serde_json::Error::io)?;
    w.buf.push(b'}');
    w.finish().map_err(serde_json::Error::io)
}

/// One [`ProgramOut`], compact, in its fields' order.
fn write_program_compact<W: std::io::Write>(
    w: &mut super::json_fast::Compact<W>,
    p: &ProgramOut,
) -> serde_json::Result<()> {
    w.buf.push(b'{');
    w.key("exe");
    w.value(&p.exe)?;
    w.field("name", p.name)?;
    w.field("pids", &p.pids)?;
    w.field("user", &p.user)?;
    w.field("sha256", &p.sha256)?;
    w.field("exe_deleted", &p.exe_deleted)?;
    w.field("script", &p.script)?;
    w.field("mark", &p.mark)?;
    w.field("first_seen", &p.first_seen)?;
    w.field("processes", &p.processes)?;
    w.next_key("connections");
    w.connections(p.connections.0)
        .map_err(serde_json::Error::io)?;
    w.field("findings", &p.findings)?;
    w.buf.push(b'}');
    w.maybe_flush().map_err(serde_json::Error::io)
}

/// The snapshot as a JSON value (tests and callers that edit it).
pub fn snapshot_json(s: &Snapshot) -> Value {
    let mut buf = Vec::new();
    match write_snapshot_json(s, &mut buf, false) {
        Ok(()) => serde_json::from_slice(&buf).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// Padded by display width: Japanese names and headers line up.
fn pad(s: &str, width: usize) -> String {
    crate::textwidth::pad(s, width)
}

/// A human table: one line per program, its connections indented below.
pub fn snapshot_table(s: &Snapshot) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{} {} {} {} {} {}\n",
        pad(&tr("scan.col.program"), 24),
        pad(&tr("scan.col.pids"), 14),
        pad(&tr("scan.col.user"), 10),
        pad(&tr("scan.col.conns"), 6),
        pad(&tr("scan.col.mark"), 8),
        tr("scan.col.findings"),
    ));
    let mut total = 0usize;
    for p in &s.programs {
        let pids: Vec<String> = p.pids().iter().map(|x| x.to_string()).collect();
        let live = p.live_connections().count();
        total += p.connections.len();
        let mark = p
            .mark
            .map(|m| tr(&format!("mark.{}", m.as_str())))
            .unwrap_or_else(|| tr("mark.none"));
        let findings: Vec<&str> = p.findings.iter().map(|f| f.kind.as_str()).collect();
        out.push_str(&format!(
            "{} {} {} {} {} {}\n",
            pad(&for_display(&p.name), 24),
            pad(&pids.join(","), 14),
            pad(&for_display(&p.user().unwrap_or_default()), 10),
            pad(&live.to_string(), 6),
            pad(&mark, 8),
            findings.join(", "),
        ));
        if let Some(exe) = &p.exe {
            let deleted = if p.exe_deleted {
                format!(" {}", tr("scan.deleted"))
            } else {
                String::new()
            };
            let shown = match p.interpreter() {
                Some(interp) => crate::analysis::script_run_text(interp, exe),
                None => os_lossless(exe.as_os_str()),
            };
            out.push_str(&format!("    {}{}\n", for_display(&shown), deleted));
        }
        for f in &p.findings {
            out.push_str(&format!(
                "    ! [{}] {}\n",
                f.severity.as_str(),
                for_display(&f.summary)
            ));
        }
        for c in &p.connections {
            out.push_str(&format!("    {}\n", connection_line(c)));
        }
    }
    if !s.unattributed.is_empty() {
        out.push_str(&tr_args(
            "scan.unattributed",
            &[("count", &s.unattributed.len().to_string())],
        ));
        out.push('\n');
        let exited = s.unattributed.iter().filter(|c| owner_exited(c)).count();
        if exited > 0 {
            out.push_str(&tr_args(
                "capture.owner_exited_count",
                &[("count", &exited.to_string())],
            ));
            out.push('\n');
        }
    }
    out.push_str(&tr_args(
        "scan.summary",
        &[
            ("programs", &s.programs.len().to_string()),
            ("conns", &total.to_string()),
        ],
    ));
    out.push('\n');
    out
}

fn connection_line(c: &Connection) -> String {
    let remote = c.remote.as_ref().map(addr).unwrap_or_else(|| "*".into());
    let line = format!(
        "{:<4} {:>6} {:<28} -> {:<28} {}",
        c.protocol.as_str(),
        c.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
        addr(&c.local),
        remote,
        c.state.as_str()
    );
    match c.remote {
        // Whom, in words: name, where, country, owner.
        Some(r) => format!(
            "{line}  {}",
            for_display(&crate::names::endpoint_words(
                r,
                c.remote_name.as_ref().map(|n| n.name.as_str())
            ))
        ),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ProcessInfo, ProgramKey};
    use std::time::SystemTime;

    fn hostile_program() -> Program {
        let name = "evil\n\x1b[2J\u{202E}gpj.exe".to_string();
        Program {
            key: ProgramKey::Name(name.clone()),
            name: name.clone(),
            exe: Some("/tmp/evil\nname".into()),
            exe_deleted: true,
            sha256: None,
            processes: vec![ProcessInfo {
                pid: 5,
                parent: None,
                name,
                cmdline: vec!["a\"b".into()],
                user: Some("bob".into()),
                uid: Some(1),
                start_time: 0,
                alive: true,
                exe_deleted: true,
                sha256: None,
            }],
            connections: vec![],
            findings: vec![],
            mark: None,
            stale_mark: None,
            first_seen: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn hostile_names_cannot_break_the_table() {
        let mut s = Snapshot::empty();
        s.programs.push(hostile_program());
        let t = snapshot_table(&s);
        assert!(!t.contains('\x1b'));
        assert!(!t.contains('\u{202E}'));
        // Header, program line, exe line, summary: no extra lines from names.
        assert_eq!(t.lines().count(), 4, "{t}");
    }

    /// A snapshot with everything the compact writer handles by hand:
    /// IPv4 and IPv6, names with quotes and control characters, a public
    /// address (country and AS), bytes, TIME_WAIT leftovers, times with
    /// fractions of a second, findings with evidence.
    fn tricky_snapshot() -> Snapshot {
        use crate::model::{FindingKind, Protocol, Severity, SockState};
        use crate::names::{NameSource, RemoteName};
        use std::sync::Arc;
        use std::time::Duration;
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_558_000_250);
        let conn = |local: &str, remote: Option<&str>, n: u64| Connection {
            pid: (!n.is_multiple_of(3)).then_some(100 + n as u32),
            protocol: if n.is_multiple_of(2) {
                Protocol::Tcp
            } else {
                Protocol::Udp
            },
            local: local.parse().unwrap(),
            remote: remote.map(|r| r.parse().unwrap()),
            state: if n.is_multiple_of(3) {
                SockState::TimeWait
            } else {
                SockState::Established
            },
            first_seen: t0 + Duration::from_millis(n * 377),
            last_seen: t0 + Duration::from_millis(n * 1001),
            live: n % 4 != 1,
            uid: Some(1000),
            remote_name: match n % 5 {
                0 => None,
                1 => Some(Arc::new(RemoteName {
                    name: "board.example.jp".into(),
                    source: NameSource::Dns,
                    seen: t0,
                })),
                _ => Some(Arc::new(RemoteName {
                    name: format!("ev\"il\\{n}\n\u{1}\u{7f}名前.example"),
                    source: NameSource::Sni,
                    seen: t0,
                })),
            },
            bytes_sent: n.is_multiple_of(2).then_some(n * 1_000_003),
            bytes_received: (n % 3 == 1).then_some(u64::MAX - n),
        };
        let remotes = [
            Some("8.8.8.8:53"),
            Some("1.1.1.1:443"),
            Some("203.0.113.7:80"),
            Some("192.168.1.20:8080"),
            Some("[2001:4860:4860::8888]:443"),
            Some("[::1]:631"),
            Some("[fe80::1%2]:22"),
            Some("127.0.0.1:9"),
            None,
        ];
        let conns: Vec<Connection> = (0..40u64)
            .map(|n| {
                let local = if n % 7 == 4 {
                    "[::]:5353".to_string()
                } else {
                    format!("10.0.{}.{}:{}", n, 255 - n, 1024 + n * 997)
                };
                conn(&local, remotes[(n as usize) % remotes.len()], n)
            })
            .collect();
        let mut p = hostile_program();
        p.sha256 = Some("ab".repeat(32));
        p.mark = Some(crate::model::Mark::Trusted);
        p.connections = conns[..30].to_vec();
        p.findings = vec![crate::model::Finding {
            kind: FindingKind::RunsFromTemp,
            severity: Severity::High,
            summary: "a \"quoted\" \u{2028} summary".into(),
            evidence: serde_json::json!({"path": "/tmp/\u{0}x", "n": 3, "f": 0.5})
                .as_object()
                .unwrap()
                .clone(),
            first_raised: t0,
        }];
        let mut q = Program::fake("other \\xFF", &[(FindingKind::NewProgram, Severity::Info)]);
        q.processes = vec![ProcessInfo::fake(7, "o")];
        let mut s = Snapshot::empty();
        s.taken_at = t0;
        s.since = t0;
        s.generation = 3;
        s.programs = vec![p, q];
        s.unattributed = conns[30..].to_vec();
        s
    }

    #[test]
    fn compact_json_is_the_bytes_serde_writes() {
        let s = tricky_snapshot();
        let mut ours = Vec::new();
        write_snapshot_json(&s, &mut ours, false).unwrap();
        let serde = via_serde(&s);
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&serde)
        );
        assert_eq!(ours, serde);
        // It says something: owners gone, countries, names, bytes.
        let text = String::from_utf8(ours).unwrap();
        assert!(text.contains("\"owner_exited\":true"), "{text}");
        assert!(text.contains("\"remote_name\":\"ev\\\"il"), "{text}");
        assert!(
            text.contains("\"bytes_received\":18446744073709551614"),
            "{text}"
        );
    }

    /// The snapshot's compact JSON as serde writes it from the structs.
    fn via_serde(s: &Snapshot) -> Vec<u8> {
        let doc = SnapshotOut {
            taken_at: rfc3339(s.taken_at),
            since: rfc3339(s.since),
            generation: s.generation,
            interval_ms: u64::try_from(s.interval.as_millis()).unwrap(),
            complete: s.complete,
            capture_mode: s.capture_mode.as_str(),
            capture_note: capture_note(s),
            programs: s.programs.iter().map(ProgramOut::of).collect(),
            unattributed: ConnectionsOut(&s.unattributed),
        };
        serde_json::to_vec(&doc).unwrap()
    }

    #[test]
    fn compact_json_of_many_connections_is_the_bytes_serde_writes() {
        // More than one chunk of the writer's buffer.
        let mut s = tricky_snapshot();
        let more: Vec<Connection> = (0..200)
            .flat_map(|_| s.programs[0].connections.clone())
            .collect();
        s.programs[0].connections = more;
        let mut ours = Vec::new();
        write_snapshot_json(&s, &mut ours, false).unwrap();
        let mut theirs = Vec::new();
        write_snapshot_json(&s, &mut theirs, true).unwrap();
        let a: Value = serde_json::from_slice(&ours).unwrap();
        let b: Value = serde_json::from_slice(&theirs).unwrap();
        assert!(ours.len() > 100_000);
        assert_eq!(a, b);
        assert!(ours == via_serde(&s), "compact bytes differ from serde's");
    }

    #[test]
    fn hostile_names_stay_valid_json() {
        let mut s = Snapshot::empty();
        s.programs.push(hostile_program());
        let text = snapshot_json(&s).to_string();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["programs"][0]["name"], "evil\n\x1b[2J\u{202E}gpj.exe");
        assert_eq!(back["programs"][0]["exe_deleted"], true);
        assert_eq!(back["programs"][0]["sha256"], Value::Null);
    }
}
