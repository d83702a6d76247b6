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
        // The date comes from a file someone may have edited.
        &[("date", &for_display(&contacts.checked_on))],
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
                    .map(|n| {
                        // A paragraph may have its own words per OS
                        // (`….body.N.linux`): advice must fit this computer.
                        let os = format!("consult.step.{id}.body.{n}.{}", std::env::consts::OS);
                        let own = tr_in(lang, &os);
                        if own == os {
                            tr_in(lang, &format!("consult.step.{id}.body.{n}"))
                        } else {
                            own
                        }
                    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn all_text(s: &Step) -> String {
        let mut parts = vec![s.title.clone()];
        parts.extend(s.body.iter().cloned());
        parts.extend(s.checklist.iter().cloned());
        parts.extend(s.warning.iter().cloned());
        parts.extend(s.checked_on.iter().cloned());
        parts.extend(s.actions.iter().map(|a| a.label.clone()));
        for c in &s.contacts {
            parts.extend(c.fields.iter().map(|f| f.label.clone()));
        }
        parts.join("\n")
    }

    #[test]
    fn six_steps_in_order_with_their_actions() {
        let c = Contacts::builtin();
        let steps = steps(&c, Lang::Ja, None);
        let ids: Vec<&str> = steps.iter().map(|s| s.id).collect();
        assert_eq!(ids, STEP_IDS);
        assert_eq!(
            steps.iter().map(|s| s.number).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6]
        );
        let ids_of = |n: usize| steps[n].actions.iter().map(|a| a.id).collect::<Vec<_>>();
        assert_eq!(ids_of(0), [ActionId::Panic, ActionId::Suspend]);
        assert_eq!(ids_of(1), [ActionId::SaveReport, ActionId::EvidenceCopy]);
        assert!(ids_of(3).contains(&ActionId::Tel));
        assert!(ids_of(3).contains(&ActionId::Mailto));
        assert!(ids_of(3).contains(&ActionId::OpenUrl));
        // Without a report there is no summary to copy.
        assert!(!ids_of(3).contains(&ActionId::CopySummary));
    }

    #[test]
    fn every_text_is_translated_in_both_languages() {
        let c = Contacts::builtin();
        for lang in [Lang::Ja, Lang::En] {
            for s in steps(&c, lang, None) {
                let text = all_text(&s);
                for word in text.split_whitespace() {
                    assert!(
                        !word.starts_with("consult.") && !word.starts_with("report."),
                        "untranslated key {word} in step {} ({lang:?})",
                        s.id
                    );
                }
                assert!(!s.body.is_empty());
            }
        }
    }

    #[test]
    fn step_one_says_do_not_power_off_and_how_to_disconnect() {
        let s = &steps(&Contacts::builtin(), Lang::Ja, None)[0];
        let text = all_text(s);
        assert!(text.contains("電源は切らないで"), "{text}");
        assert!(text.contains("LAN ケーブル"), "{text}");
        assert!(text.contains("Wi-Fi"), "{text}");
    }

    #[test]
    fn ipa_step_shows_the_desk_the_fake_call_warning_and_the_date() {
        for lang in [Lang::Ja, Lang::En] {
            let s = &steps(&Contacts::builtin(), lang, None)[3];
            let ipa = &s.contacts[0];
            assert_eq!(ipa.id, "ipa_anshin", "the IPA desk comes first");
            let phone = ipa.field("phone").unwrap();
            assert_eq!(phone.value, "03-5978-7509");
            assert!(!phone.unverified);
            assert_eq!(phone.link.as_ref().unwrap().uri, "tel:0359787509");
            assert!(ipa.field("hours").unwrap().unverified);
            assert!(ipa.field("limits").is_some(), "what the desk does not do");
            assert!(ipa.field("when").is_some(), "what the desk does");
            let w = s.warning.as_deref().unwrap();
            assert!(w.contains("IPA"));
            assert!(s.checked_on.as_deref().unwrap().contains("2026-11-25"));
            assert_eq!(s.checklist.len(), 6, "what to have ready");
        }
    }

    #[test]
    fn police_step_links_9110_110_and_188() {
        let s = &steps(&Contacts::builtin(), Lang::En, None)[4];
        let tels: Vec<&str> = s
            .actions
            .iter()
            .filter(|a| a.id == ActionId::Tel)
            .map(|a| a.link.as_ref().unwrap().uri.as_str())
            .collect();
        assert_eq!(tels, ["tel:%239110", "tel:110", "tel:188"]);
        assert!(
            s.actions
                .iter()
                .any(|a| a.contact.as_deref() == Some("npa_cyber_online"))
        );
    }

    #[test]
    fn mail_without_a_report_offers_a_template() {
        let body = mail_body(Lang::Ja, None);
        assert!(body.contains("OS"));
        assert_eq!(
            mail_subject(Lang::En, None),
            tr_in(Lang::En, "consult.mail.subject")
        );
    }
}
