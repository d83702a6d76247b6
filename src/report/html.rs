//! The report as one self-contained HTML page: inline style only, no
//! scripts, no external resources (a content security policy forbids them
//! too), and every value escaped.

use super::data::Report;
use super::fmt::{self, html};
use super::rows::Row;
use crate::i18n::{Lang, tr_args_in, tr_in};

const STYLE: &str = "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;line-height:1.5;color:#222}\
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:2em}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}dt{font-weight:bold}dd{margin:0;overflow-wrap:anywhere}\
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}\
pre{background:#f5f5f5;padding:1em;white-space:pre-wrap;overflow-wrap:anywhere}\
.high{color:#a00;font-weight:bold}.medium{color:#a60}.note{color:#555}";

fn dl(out: &mut String, rows: &[Row]) {
    out.push_str("<dl>\n");
    for r in rows {
        out.push_str(&format!(
            "<dt>{}</dt><dd>{}</dd>\n",
            html(&r.label),
            r.html()
        ));
    }
    out.push_str("</dl>\n");
}

fn h2(out: &mut String, text: &str) {
    out.push_str(&format!("<h2>{}</h2>\n", html(text)));
}

fn p(out: &mut String, text: &str) {
    out.push_str(&format!("<p>{}</p>\n", html(text)));
}

pub fn render(r: &Report) -> String {
    let lang = r.lang;
    let t = |k: &str| tr_in(lang, k);
    let mut out = String::new();
    out.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        lang.code(),
        html(&t("report.title")),
        html(&r.program.name)
    ));
    out.push_str(&format!(
        "<h1>{}: <code>{}</code></h1>\n",
        html(&t("report.title")),
        html(&r.program.name)
    ));
    p(&mut out, &t("report.intro"));
    dl(
        &mut out,
        &[
            Row {
                label: t("report.field.written_at"),
                value: super::rows::Value::Text(fmt::time(r.written_at, lang)),
            },
            Row {
                label: t("report.field.kizuki_version"),
                value: super::rows::Value::Code(r.kizuki_version.clone()),
            },
        ],
    );

    h2(&mut out, &t("report.section.summary"));
    out.push_str(&format!(
        "<pre>{}</pre>\n",
        html_multiline(r.summary_in(lang))
    ));
    if lang != Lang::Ja {
        p(&mut out, &t("report.summary_ja_note"));
        out.push_str(&format!(
            "<pre lang=\"ja\">{}</pre>\n",
            html_multiline(&r.summary.ja)
        ));
    }

    h2(&mut out, &t("report.section.machine"));
    dl(&mut out, &super::rows::machine(r, lang));
    h2(&mut out, &t("report.section.program"));
    dl(&mut out, &super::rows::program(r, lang));

    h2(&mut out, &t("report.section.processes"));
    if r.processes.is_empty() {
        p(&mut out, &t("report.processes.none"));
    }
    for proc in &r.processes {
        out.push_str(&format!("<h3>PID {}</h3>\n", proc.pid));
        dl(&mut out, &super::rows::process(proc, lang));
    }

    h2(&mut out, &t("report.section.connections"));
    out.push_str(&format!(
        "<p class=\"note\">{}</p>\n",
        html(&t(&format!(
            "report.conn.source.{}",
            super::rows::source_id(r)
        )))
    ));
    if let Some(note) = super::rows::geo_note(lang) {
        out.push_str(&format!("<p class=\"note\">{}</p>\n", html(&note)));
    }
    if r.connections.is_empty() {
        p(&mut out, &t("report.conn.none"));
    } else {
        out.push_str("<table>\n<tr>");
        for h in super::rows::connection_header(lang) {
            out.push_str(&format!("<th>{}</th>", html(&h)));
        }
        out.push_str("</tr>\n");
        for c in &r.connections {
            out.push_str("<tr>");
            for cell in super::rows::connection_cells(c, lang) {
                out.push_str(&format!("<td>{}</td>", html(&cell)));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }

    h2(&mut out, &t("report.section.findings"));
    if r.findings.is_empty() {
        p(&mut out, &t("report.findings.none"));
    } else {
        out.push_str("<ul>\n");
        for f in &r.findings {
            out.push_str(&format!(
                "<li><span class=\"{}\">[{}]</span> {} (<code>{}</code>)<br>{}: {}",
                f.severity.as_str(),
                html(&t(&format!("report.severity.{}", f.severity.as_str()))),
                html(&f.summary),
                html(f.kind.as_str()),
                html(&t("report.finding.why")),
                html(&f.explanation)
            ));
            if !f.evidence.is_empty() {
                let ev = serde_json::Value::Object(f.evidence.clone()).to_string();
                out.push_str(&format!(
                    "<br>{}: <code>{}</code>",
                    html(&t("report.finding.evidence")),
                    html(&ev)
                ));
            }
            out.push_str("</li>\n");
        }
        out.push_str("</ul>\n");
    }

    h2(&mut out, &t("report.section.actions"));
    dl(&mut out, &super::rows::marks(r, lang));
    if r.actions.is_empty() {
        p(&mut out, &t("report.actions.none"));
    } else {
        out.push_str("<ul>\n");
        for a in &r.actions {
            let detail = a
                .detail
                .as_deref()
                .map(|d| format!(" ({})", html(d)))
                .unwrap_or_default();
            out.push_str(&format!(
                "<li>{}: {}{detail}</li>\n",
                html(&fmt::time(a.at, lang)),
                html(&super::action_label(&a.action, lang))
            ));
        }
        out.push_str("</ul>\n");
    }

    if r.evidence.is_some() || r.evidence_error.is_some() {
        h2(&mut out, &t("report.section.evidence"));
        if let Some(e) = &r.evidence {
            dl(&mut out, &super::rows::evidence(e, lang));
            p(&mut out, &t("report.evidence.note"));
        }
        if let Some(err) = &r.evidence_error {
            p(
                &mut out,
                &tr_args_in(lang, "report.evidence.failed", &[("error", err)]),
            );
        }
    }
    out.push_str(&format!(
        "<hr>\n<p class=\"note\">{}</p>\n</body>\n</html>\n",
        html(&tr_args_in(
            lang,
            "report.footer",
            &[("version", &r.kizuki_version)]
        ))
    ));
    out
}

/// Escapes each line, keeping the line breaks of a plain-text block.
fn html_multiline(s: &str) -> String {
    s.lines().map(html).collect::<Vec<_>>().join("\n")
}
