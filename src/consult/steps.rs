//! The "something looks wrong" walk-through as data: six steps, each with
//! a title, body paragraphs, the contacts it points to and the actions it
//! offers. The GUI wizard and `kizuki contacts` are thin views over this.
//! All text comes from the `consult` catalog; contact facts from
//! `contacts.toml`.

use serde::Serialize;

use super::contacts::{Contact, Contacts, Verification};
use super::links::{Link, LinkKind, contact_links};
use crate::escape::for_display;
use crate::i18n::{Lang, tr_args_in, tr_in};
use crate::model::FindingKind;
use crate::report::Report;

/// What a button in a step does. The wizard maps each to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionId {
    /// Cut the network (kizuki's panic button).
    Panic,
    /// Suspend the suspicious program.
    Suspend,
    /// Save the report.
    SaveReport,
    /// Save an evidence copy of the program file (asks for consent).
    EvidenceCopy,
    /// Copy the desk summary to the clipboard.
    CopySummary,
    OpenUrl,
    Mailto,
    Tel,
}

impl ActionId {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionId::Panic => "panic",
            ActionId::Suspend => "suspend",
            ActionId::SaveReport => "save_report",
            ActionId::EvidenceCopy => "evidence_copy",
            ActionId::CopySummary => "copy_summary",
            ActionId::OpenUrl => "open_url",
            ActionId::Mailto => "mailto",
            ActionId::Tel => "tel",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    pub id: ActionId,
    pub label: String,
    /// The contact a link action reaches.
    pub contact: Option<String>,
    /// The link to open (`tel:`, `mailto:`, `https:`).
    pub link: Option<Link>,
}

impl Action {
    fn plain(id: ActionId, lang: Lang) -> Action {
        Action {
            id,
            label: tr_in(lang, &format!("consult.action.{}", id.as_str())),
            contact: None,
            link: None,
        }
    }
}

/// One detail of a contact as shown: label, value, whether it is confirmed,
/// and the link it opens when clicked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactField {
    /// `phone`, `email`, `url`, `hours`, `when`, `limits`.
    pub kind: &'static str,
    pub label: String,
    pub value: String,
    pub unverified: bool,
    pub link: Option<Link>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactView {
    pub id: String,
    pub name: String,
    pub fields: Vec<ContactField>,
    pub verification: Verification,
    /// The research note, e.g. "phone and email: yes (2024); hours: not confirmed".
    pub verified_note: Option<String>,
    pub source: Option<String>,
}

impl ContactView {
    pub fn field(&self, kind: &str) -> Option<&ContactField> {
        self.fields.iter().find(|f| f.kind == kind)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// 1 to 6.
    pub number: u8,
    /// `stop`, `report`, `scan`, `ipa`, `police`, `afterwards`.
    pub id: &'static str,
    pub title: String,
    pub body: Vec<String>,
    /// What to have ready when calling (step 4), filled from the report.
    pub checklist: Vec<String>,
    /// A warning shown prominently (step 4: fake IPA calls).
    pub warning: Option<String>,
    pub contacts: Vec<ContactView>,
    pub actions: Vec<Action>,
    /// "Contact details as of …": shown wherever contacts are.
    pub checked_on: Option<String>,
}

/// Step ids in order; step n is `STEP_IDS[n - 1]`.
pub const STEP_IDS: [&str; 6] = ["stop", "report", "scan", "ipa", "police", "afterwards"];

/// Number of body paragraphs per step in the catalog
/// (`consult.step.<id>.body.1` …).
const BODY_PARAGRAPHS: [usize; 6] = [4, 3, 3, 3, 3, 3];

/// The subject line of a consultation e-mail.
pub fn mail_subject(lang: Lang, report: Option<&Report>) -> String {
    match report {
        Some(r) => tr_args_in(
            lang,
            "consult.mail.subject_program",
            &[("name", &for_display(&r.program.name))],
        ),
        None => tr_in(lang, "consult.mail.subject"),
    }
}

/// The body of a consultation e-mail: the desk summary (Japanese, as the
/// desks work in Japanese) under a short greeting, or a template to fill.
pub fn mail_body(lang: Lang, report: Option<&Report>) -> String {
    match report {
        Some(r) => format!(
            "{}\n\n{}\n",
            tr_in(lang, "consult.mail.greeting"),
            r.summary_in(Lang::Ja)
        ),
        None => tr_in(lang, "consult.mail.template"),
    }
}

fn contact_view(c: &Contact, lang: Lang, subject: &str, body: &str) -> ContactView {
    let links = contact_links(c, subject, body);
    let link = |k: LinkKind| links.iter().find(|l| l.kind == k).cloned();
    let mut fields = Vec::new();
    let mut push = |kind: &'static str, value: Option<&str>, link: Option<Link>| {
        if let Some(v) = value {
            fields.push(ContactField {
                kind,
                label: tr_in(lang, &format!("consult.field.{kind}")),
                value: v.to_string(),
                unverified: c.is_unverified(kind),
                link,
            });
        }
    };
    push("phone", c.phone.as_deref(), link(LinkKind::Tel));
    push("email", c.email.as_deref(), link(LinkKind::Mailto));
    push("url", c.url.as_deref(), link(LinkKind::Web));
    push("hours", c.hours(lang), None);
    push("when", c.when(lang), None);
    push("limits", c.limits(lang), None);
    ContactView {
        id: c.id.clone(),
        name: c.name(lang).to_string(),
        fields,
        verification: c.verification(),
        verified_note: c.verified.clone(),
        source: c.source.clone(),
    }
}

/// What to have ready for the desk: filled from the report when there is
/// one, else the questions to answer.
pub fn checklist(lang: Lang, report: Option<&Report>) -> Vec<String> {
    let t = |k: &str| tr_in(lang, k);
    let a = |k: &str, v: &str| tr_args_in(lang, k, &[("value", v)]);
    let Some(r) = report else {
        return [
            "consult.ready.os",
            "consult.ready.when",
            "consult.ready.download",
            "consult.ready.program",
            "consult.ready.connections",
            "consult.ready.screen",
        ]
        .iter()
        .map(|k| t(k))
        .collect();
    };
    let mut items = Vec::new();
    items.push(a("consult.ready.os_value", &for_display(&r.machine.os)));
    let since = r.program.started.unwrap_or(r.program.first_seen);
    items.push(a(
        "consult.ready.when_value",
        &crate::report::fmt::time(since, lang),
    ));
    items.push(t("consult.ready.download"));
    if r.findings
        .iter()
        .any(|f| f.kind == FindingKind::RunsFromTemp)
        && let Some(p) = &r.program.path
    {
        items.push(a("consult.ready.download_hint", &for_display(p)));
    }
    let unknown = t("report.unknown");
    items.push(a(
        "consult.ready.path_value",
        &r.program
            .path
            .as_deref()
            .map(for_display)
            .unwrap_or(unknown.clone()),
    ));
    items.push(a(
        "consult.ready.hash_value",
        r.program.sha256.as_deref().unwrap_or(&unknown),
    ));
    let remotes = r.remote_endpoints();
    if remotes.is_empty() {
        items.push(t("consult.ready.no_connections"));
    } else {
        let mut shown: Vec<&str> = remotes.iter().take(5).copied().collect();
        let more;
        if remotes.len() > 5 {
            more = tr_args_in(
                lang,
                "consult.ready.more",
                &[("count", &(remotes.len() - 5).to_string())],
            );
            shown.push(&more);
        }
        items.push(a("consult.ready.connections_value", &shown.join(", ")));
    }
    items.push(t("consult.ready.screen"));
    items
}

/// The six steps in `lang`. With a report, links carry its summary and the
/// checklist holds its facts.
pub fn steps(contacts: &Contacts, lang: Lang, report: Option<&Report>) -> Vec<Step> {
    let subject = mail_subject(lang, report);
    let body = mail_body(lang, report);
    let checked = tr_args_in(
        lang,
        "consult.checked_on",
        &[("date", &contacts.checked_on)],
    );
    STEP_IDS
        .iter()
        .zip(BODY_PARAGRAPHS)
        .enumerate()
        .map(|(i, (&id, paragraphs))| {
            let number = u8::try_from(i + 1).unwrap_or(u8::MAX);
            let views: Vec<ContactView> = contacts
                .for_step(number)
                .into_iter()
                .map(|c| contact_view(c, lang, &subject, &body))
                .collect();
            let mut actions: Vec<Action> = match id {
                "stop" => vec![
                    Action::plain(ActionId::Panic, lang),
                    Action::plain(ActionId::Suspend, lang),
                ],
                "report" => vec![
                    Action::plain(ActionId::SaveReport, lang),
                    Action::plain(ActionId::EvidenceCopy, lang),
                ],
                "ipa" if report.is_some() => vec![Action::plain(ActionId::CopySummary, lang)],
                _ => Vec::new(),
            };
            for v in &views {
                for f in &v.fields {
                    let Some(link) = &f.link else { continue };
                    let aid = match link.kind {
                        LinkKind::Tel => ActionId::Tel,
                        LinkKind::Mailto => ActionId::Mailto,
                        LinkKind::Web => ActionId::OpenUrl,
                    };
                    actions.push(Action {
                        id: aid,
                        label: tr_args_in(
                            lang,
                            &format!("consult.action.{}", aid.as_str()),
                            &[("name", &v.name), ("value", &link.label)],
                        ),
                        contact: Some(v.id.clone()),
                        link: Some(link.clone()),
                    });
                }
            }
            Step {
                number,
                id,
                title: tr_in(lang, &format!("consult.step.{id}.title")),
                body: (1..=paragraphs)
                    .map(|n| tr_in(lang, &format!("consult.step.{id}.body.{n}")))
                    .collect(),
                checklist: if id == "ipa" {
                    checklist(lang, report)
                } else {
                    Vec::new()
                },
                warning: (id == "ipa")
                    .then(|| contacts.fake_call_warning.text(lang).to_string())
                    .filter(|w| !w.is_empty()),
                checked_on: (!views.is_empty()).then(|| checked.clone()),
                contacts: views,
                actions,
            }
        })
        .collect()
}
