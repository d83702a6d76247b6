//! The short text for the consultation desk: what a person on the phone or
//! reading an e-mail needs first. Plain text (it goes into `mailto:` bodies
//! and the clipboard); every OS value is made harmless with `for_display`.

use super::data::Report;
use super::fmt;
use crate::escape::for_display;
use crate::i18n::{Lang, tr_args_in, tr_in};

/// How many connections the summary lists before "and N more".
pub const MAX_CONNECTIONS: usize = 15;

fn line(out: &mut String, s: &str) {
    out.push_str(s);
    out.push('\n');
}

/// The desk summary of `r` in `lang`.
pub fn summary(r: &Report, lang: Lang) -> String {
    let t = |k: &str| tr_in(lang, k);
    let a = |k: &str, args: &[(&str, &str)]| tr_args_in(lang, k, args);
    let mut out = String::new();
    line(&mut out, &t("report.summary.head"));
    line(
        &mut out,
        &a(
            "report.summary.written",
            &[("time", &fmt::time(r.written_at, lang))],
        ),
    );
    let mut os = for_display(&r.machine.os);
    if let Some(k) = &r.machine.kernel {
        os.push_str(&format!(" / {}", for_display(k)));
    }
    line(&mut out, &a("report.summary.os", &[("os", &os)]));
    line(
        &mut out,
        &a(
            "report.summary.program",
            &[("name", &for_display(&r.program.name))],
        ),
    );
    let unknown = t("report.unknown");
    let path = r
        .program
        .path
        .as_deref()
        .map(for_display)
        .unwrap_or_else(|| unknown.clone());
    line(&mut out, &a("report.summary.path", &[("path", &path)]));
    if r.program.exe_deleted {
        line(&mut out, &t("report.summary.deleted"));
    }
    if r.program.exe_changed {
        line(&mut out, &t("report.summary.changed"));
    }
    let hash = r.program.sha256.clone().unwrap_or_else(|| unknown.clone());
    line(&mut out, &a("report.summary.sha256", &[("hash", &hash)]));
    if let Some(started) = r.program.started {
        line(
            &mut out,
            &a(
                "report.summary.started",
                &[("time", &fmt::time(started, lang))],
            ),
        );
    }
    line(
        &mut out,
        &a(
            "report.summary.first_seen",
            &[("time", &fmt::time(r.program.first_seen, lang))],
        ),
    );
    let procs: Vec<String> = r
        .processes
        .iter()
        .map(|p| match &p.user {
            Some(u) => a(
                "report.summary.process",
                &[("pid", &p.pid.to_string()), ("user", &for_display(u))],
            ),
            None => format!("PID {}", p.pid),
        })
        .collect();
    if !procs.is_empty() {
        line(
            &mut out,
            &a("report.summary.processes", &[("list", &procs.join(", "))]),
        );
    }
    if !r.findings.is_empty() {
        line(&mut out, &t("report.summary.findings"));
        for f in &r.findings {
            // The finding's own sentence is in the language the app ran in;
            // the other language gets only the kind's label.
            let own = if lang == r.lang {
                format!(": {}", for_display(&f.summary))
            } else {
                String::new()
            };
            line(
                &mut out,
                &format!(
                    "- [{}] {}{own}",
                    t(&format!("report.severity.{}", f.severity.as_str())),
                    t(&format!("report.kind.{}", f.kind.as_str())),
                ),
            );
        }
    }
    if r.connections.is_empty() {
        line(&mut out, &t("report.summary.no_connections"));
    } else {
        line(
            &mut out,
            &a(
                "report.summary.connections",
                &[("count", &r.connections.len().to_string())],
            ),
        );
        // Repeated contacts with one address are one line: a desk reads
        // "15 connections to 127.0.0.1:8000 between 17:00 and 17:15".
        let groups = group_connections(&r.connections);
        let listed: usize = groups.iter().take(MAX_CONNECTIONS).map(|g| g.1).sum();
        for (c, count, first, last) in groups.iter().take(MAX_CONNECTIONS) {
            let (c, count) = (*c, *count);
            let span = fmt::span(*first, *last, lang);
            let state = state_word(c, lang);
            let text = match super::rows::remote_words(c, lang) {
                Some(remote) if count > 1 => a(
                    "report.summary.conn_group",
                    &[
                        ("count", &count.to_string()),
                        ("protocol", &c.protocol),
                        ("remote", &remote),
                        ("span", &span),
                    ],
                ),
                Some(remote) => a(
                    "report.summary.conn",
                    &[
                        ("protocol", &c.protocol),
                        ("remote", &remote),
                        ("state", &state),
                        ("span", &span),
                    ],
                ),
                None => a(
                    "report.summary.listen",
                    &[
                        ("protocol", &c.protocol),
                        ("local", &c.local),
                        ("span", &span),
                    ],
                ),
            };
            line(&mut out, &format!("- {text}"));
        }
        if r.connections.len() > listed {
            line(
                &mut out,
                &a(
                    "report.summary.more",
                    &[("count", &(r.connections.len() - listed).to_string())],
                ),
            );
        }
    }
    if !r.actions.is_empty() {
        line(&mut out, &t("report.summary.actions"));
        for act in &r.actions {
            line(
                &mut out,
                &format!(
                    "- {} {}",
                    fmt::time(act.at, lang),
                    super::action_label(&act.action, lang)
                ),
            );
        }
    }
    if let Some(e) = &r.evidence {
        let key = if e.matches_program {
            "report.summary.evidence"
        } else {
            "report.summary.evidence_mismatch"
        };
        line(&mut out, &a(key, &[("file", &for_display(&e.file))]));
    }
    out.push_str(&a(
        "report.summary.version",
        &[("version", &r.kizuki_version)],
    ));
    out
}

/// One word for a connection's state, the same in every report: ended
/// connections are "ended" whatever the kernel said last.
fn state_word(c: &super::data::ConnectionPart, lang: Lang) -> String {
    let key = if !c.live {
        "report.state.ended"
    } else {
        match c.state.as_str() {
            "ESTABLISHED" => "report.state.established",
            "LISTEN" => "report.state.listen",
            _ => return c.state.clone(),
        }
    };
    crate::i18n::tr_in(lang, key)
}

/// Connections grouped by (protocol, remote): each group's first entry,
/// its size and its time span, in order of first sight. Listeners and
/// lone connections stay groups of one.
fn group_connections(
    conns: &[super::data::ConnectionPart],
) -> Vec<(
    &super::data::ConnectionPart,
    usize,
    std::time::SystemTime,
    std::time::SystemTime,
)> {
    let mut groups: Vec<(
        &super::data::ConnectionPart,
        usize,
        std::time::SystemTime,
        std::time::SystemTime,
    )> = Vec::new();
    let mut index: std::collections::HashMap<(&str, &str), usize> = Default::default();
    for c in conns {
        let key = c.remote.as_deref().map(|r| (c.protocol.as_str(), r));
        match key.and_then(|k| index.get(&k).copied()) {
            Some(i) => {
                let g = &mut groups[i];
                g.1 += 1;
                g.2 = g.2.min(c.first_seen);
                g.3 = g.3.max(c.last_seen);
            }
            None => {
                if let Some(k) = key {
                    index.insert(k, groups.len());
                }
                groups.push((c, 1, c.first_seen, c.last_seen));
            }
        }
    }
    groups
}
