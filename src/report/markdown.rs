//! The report as Markdown (the default: readable as plain text, and any
//! Markdown viewer shows it tidily). Values are code spans or escaped text,
//! so a hostile name can add neither markup nor HTML.

use super::data::Report;
use super::fmt::{self, md_block, md_code, md_text};
use crate::i18n::{Lang, tr_args_in, tr_in};

fn item(out: &mut String, label: &str, value: &str) {
    out.push_str(&format!("- **{label}:** {value}\n"));
}

pub fn render(r: &Report) -> String {
    let lang = r.lang;
    let t = |k: &str| tr_in(lang, k);
    let mut out = String::new();
    out.push_str(&format!(
        "# {}: {}\n\n",
        t("report.title"),
        md_text(&r.program.name)
    ));
    out.push_str(&format!("{}\n\n", t("report.intro")));
    item(
        &mut out,
        &t("report.field.written_at"),
        &fmt::time(r.written_at, lang),
    );
    item(
        &mut out,
        &t("report.field.kizuki_version"),
        &md_code(&r.kizuki_version),
    );

    out.push_str(&format!("\n## {}\n\n", t("report.section.summary")));
    out.push_str(&md_block(r.summary_in(lang)));
    if lang != Lang::Ja {
        out.push_str(&format!("\n{}\n\n", t("report.summary_ja_note")));
        out.push_str(&md_block(&r.summary.ja));
    }

    out.push_str(&format!("\n## {}\n\n", t("report.section.machine")));
    for row in super::rows::machine(r, lang) {
        item(&mut out, &row.label, &row.md());
    }

    out.push_str(&format!("\n## {}\n\n", t("report.section.program")));
    for row in super::rows::program(r, lang) {
        item(&mut out, &row.label, &row.md());
    }

    out.push_str(&format!("\n## {}\n\n", t("report.section.processes")));
    if r.processes.is_empty() {
        out.push_str(&format!("{}\n", t("report.processes.none")));
    }
    for p in &r.processes {
        out.push_str(&format!("### PID {}\n\n", p.pid));
        for row in super::rows::process(p, lang) {
            item(&mut out, &row.label, &row.md());
        }
        out.push('\n');
    }

    out.push_str(&format!("\n## {}\n\n", t("report.section.connections")));
    out.push_str(&format!(
        "{}\n\n",
        t(&format!("report.conn.source.{}", super::rows::source_id(r)))
    ));
    if let Some(note) = super::rows::geo_note(lang) {
        out.push_str(&format!("{}\n\n", md_text(&note)));
    }
    if r.connections.is_empty() {
        out.push_str(&format!("{}\n", t("report.conn.none")));
    } else {
        let head = super::rows::connection_header(lang);
        out.push_str(&format!("| {} |\n", head.join(" | ")));
        out.push_str(&format!("|{}\n", "---|".repeat(head.len())));
        for c in &r.connections {
            let cells: Vec<String> = super::rows::connection_cells(c, lang)
                .iter()
                .map(|x| md_text(x))
                .collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
    }

    out.push_str(&format!("\n## {}\n\n", t("report.section.findings")));
    if r.findings.is_empty() {
        out.push_str(&format!("{}\n", t("report.findings.none")));
    }
    for f in &r.findings {
        out.push_str(&format!(
            "- **[{}]** {} ({})\n  - {}: {}\n",
            t(&format!("report.severity.{}", f.severity.as_str())),
            md_text(&f.summary),
            md_code(f.kind.as_str()),
            t("report.finding.why"),
            md_text(&f.explanation)
        ));
        if !f.evidence.is_empty() {
            let ev = serde_json::Value::Object(f.evidence.clone()).to_string();
            out.push_str(&format!(
                "  - {}: {}\n",
                t("report.finding.evidence"),
                md_code(&ev)
            ));
        }
    }

    out.push_str(&format!("\n## {}\n\n", t("report.section.actions")));
    let marks = super::rows::marks(r, lang);
    for row in &marks {
        item(&mut out, &row.label, &row.md());
    }
    out.push('\n');
    if r.actions.is_empty() {
        out.push_str(&format!("{}\n", t("report.actions.none")));
    }
    for a in &r.actions {
        let detail = a
            .detail
            .as_deref()
            .map(|d| format!(" ({})", md_text(d)))
            .unwrap_or_default();
        out.push_str(&format!(
            "- {}: {}{detail}\n",
            fmt::time(a.at, lang),
            md_text(&super::action_label(&a.action, lang))
        ));
    }

    if r.evidence.is_some() || r.evidence_error.is_some() {
        out.push_str(&format!("\n## {}\n\n", t("report.section.evidence")));
        if let Some(e) = &r.evidence {
            for row in super::rows::evidence(e, lang) {
                item(&mut out, &row.label, &row.md());
            }
            out.push_str(&format!("\n{}\n", t("report.evidence.note")));
        }
        if let Some(err) = &r.evidence_error {
            out.push_str(&format!(
                "{}\n",
                md_text(&tr_args_in(
                    lang,
                    "report.evidence.failed",
                    &[("error", err)]
                ))
            ));
        }
    }
    out.push_str(&format!(
        "\n---\n{}\n",
        md_text(&tr_args_in(
            lang,
            "report.footer",
            &[("version", &r.kizuki_version)]
        ))
    ));
    out
}
