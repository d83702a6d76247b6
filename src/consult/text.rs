//! `kizuki contacts`: the walk-through's contacts as text for a terminal,
//! or as JSON for scripts.

use serde_json::{Value, json};

use super::contacts::Contacts;
use super::steps::steps;
use crate::escape::for_display;
use crate::i18n::{Lang, tr_args_in, tr_in};

/// The contacts as JSON: every contact with its facts and how sure they
/// are, the date they were checked, and the fake-call warning.
pub fn contacts_json(c: &Contacts, lang: Lang) -> Value {
    let subject = super::steps::mail_subject(lang, None);
    let body = super::steps::mail_body(lang, None);
    let contacts: Vec<Value> = c
        .contacts
        .iter()
        .map(|x| {
            json!({
                "id": x.id,
                "name": x.name(lang),
                "phone": x.phone,
                "email": x.email,
                "url": x.url,
                "hours": x.hours(lang),
                "when": x.when(lang),
                "limits": x.limits(lang),
                "verified": x.verified,
                "verification": x.verification(),
                "unverified": x.unverified,
                "source": x.source,
                "step": x.step,
                "links": super::links::contact_links(x, &subject, &body),
            })
        })
        .collect();
    json!({
        "lang": lang.code(),
        "checked_on": c.checked_on,
        "fake_call_warning": c.fake_call_warning.text(lang),
        "fake_call_warning_source": c.fake_call_warning.source,
        "contacts": contacts,
    })
}

/// The walk-through with its contacts, for a terminal. Contact facts come
/// from a file someone may edit: escaped before printing.
pub fn contacts_text(c: &Contacts, lang: Lang) -> String {
    let t = |k: &str| tr_in(lang, k);
    let mut out = String::new();
    out.push_str(&format!("{}\n", t("consult.cli.title")));
    out.push_str(&format!(
        "{}\n\n",
        tr_args_in(
            lang,
            "consult.checked_on",
            &[("date", &for_display(&c.checked_on))]
        )
    ));
    for s in steps(c, lang, None) {
        out.push_str(&format!("{}. {}\n", s.number, s.title));
        if let Some(w) = &s.warning {
            out.push_str(&format!("   ⚠ {}\n", for_display(w)));
        }
        for v in &s.contacts {
            out.push_str(&format!("   ■ {}\n", for_display(&v.name)));
            for f in &v.fields {
                let mark = if f.unverified {
                    format!(" {}", t("consult.unverified"))
                } else {
                    String::new()
                };
                out.push_str(&format!(
                    "     {}: {}{mark}\n",
                    f.label,
                    for_display(&f.value)
                ));
            }
        }
        if !s.contacts.is_empty() {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lists_ipa_with_phone_date_and_warning() {
        let v = contacts_json(&Contacts::builtin(), Lang::Ja);
        assert_eq!(v["checked_on"], "2026-11-25");
        assert!(v["fake_call_warning"].as_str().unwrap().contains("詐欺"));
        let ipa = v["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "ipa_anshin")
            .unwrap();
        assert_eq!(ipa["phone"], "03-5978-7509");
        assert_eq!(ipa["name"], "IPA 情報セキュリティ安心相談窓口");
        assert_eq!(ipa["links"][0]["uri"], "tel:0359787509");
    }

    #[test]
    fn text_marks_unconfirmed_details_and_shows_the_date() {
        let s = contacts_text(&Contacts::builtin(), Lang::En);
        assert!(s.contains("2026-11-25"), "{s}");
        assert!(s.contains("IPA never phones you"), "{s}");
        let hours = s
            .lines()
            .find(|l| l.contains("Weekdays 10:00-12:00"))
            .unwrap();
        assert!(
            hours.contains(&tr_in(Lang::En, "consult.unverified")),
            "{hours}"
        );
        let phone = s.lines().find(|l| l.contains("03-5978-7509")).unwrap();
        assert!(!phone.contains(&tr_in(Lang::En, "consult.unverified")));
    }
}
