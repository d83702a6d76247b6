//! The help desks a worried user can turn to, loaded from
//! `assets/contacts.toml` (researched facts, each with its source and how
//! sure we are). The compiled-in copy is the default; a copy in the data
//! folder can override it, and a broken one is reported, never fatal.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::i18n::Lang;

/// The contacts file shipped with the app.
pub const BUILTIN: &str = include_str!("../../assets/contacts.toml");

/// Name of an optional override in the data folder.
pub const OVERRIDE_FILE: &str = "contacts.toml";

#[derive(Debug, thiserror::Error)]
pub enum ContactsError {
    #[error("could not read the contacts file: {source}: {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the contacts file is not valid ({message}): {path}")]
    Parse { path: PathBuf, message: String },
    /// Not read at all: a link, a pipe, another user's file, too large.
    #[error("{}", .0.message())]
    Refused(crate::datafile::Refused),
}

/// The warning about fake "IPA" phone calls, shown with the contacts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub text_ja: String,
    pub text_en: String,
    #[serde(default)]
    pub source: Option<String>,
}

impl Warning {
    pub fn text(&self, lang: Lang) -> &str {
        pick(lang, &self.text_ja, &self.text_en)
    }
}

/// One help desk. Every field but the id and names is optional: a desk may
/// have only a web form, or only a phone number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: String,
    pub name_ja: String,
    pub name_en: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub hours_ja: Option<String>,
    #[serde(default)]
    pub hours_en: Option<String>,
    #[serde(default)]
    pub when_ja: Option<String>,
    #[serde(default)]
    pub when_en: Option<String>,
    #[serde(default)]
    pub limits_ja: Option<String>,
    #[serde(default)]
    pub limits_en: Option<String>,
    /// Where the facts were seen.
    #[serde(default)]
    pub source: Option<String>,
    /// How sure the research is, in words ("yes", "partial", "no (…)").
    #[serde(default)]
    pub verified: Option<String>,
    /// Fields the `verified` note does not confirm ("phone", "email",
    /// "url", "hours"): shown with an "unconfirmed" mark.
    #[serde(default)]
    pub unverified: Vec<String>,
    /// The walk-through step (1–6) this contact belongs to.
    #[serde(default)]
    pub step: Option<u8>,
}

fn pick<'a>(lang: Lang, ja: &'a str, en: &'a str) -> &'a str {
    match lang {
        Lang::Ja if !ja.is_empty() => ja,
        Lang::En if !en.is_empty() => en,
        _ if !ja.is_empty() => ja,
        _ => en,
    }
}

fn pick_opt<'a>(lang: Lang, ja: &'a Option<String>, en: &'a Option<String>) -> Option<&'a str> {
    let (first, second) = match lang {
        Lang::Ja => (ja, en),
        Lang::En => (en, ja),
    };
    first.as_deref().or(second.as_deref())
}

/// How much of a contact's details are confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verification {
    Yes,
    Partial,
    No,
}

impl Contact {
    pub fn name(&self, lang: Lang) -> &str {
        pick(lang, &self.name_ja, &self.name_en)
    }
    pub fn hours(&self, lang: Lang) -> Option<&str> {
        pick_opt(lang, &self.hours_ja, &self.hours_en)
    }
    pub fn when(&self, lang: Lang) -> Option<&str> {
        pick_opt(lang, &self.when_ja, &self.when_en)
    }
    pub fn limits(&self, lang: Lang) -> Option<&str> {
        pick_opt(lang, &self.limits_ja, &self.limits_en)
    }

    /// True when `field` ("phone", "email", "url", "hours") is not confirmed.
    pub fn is_unverified(&self, field: &str) -> bool {
        self.verification() == Verification::No || self.unverified.iter().any(|f| f == field)
    }

    /// Summarises the `verified` note: a note that starts with "no" or is
    /// missing is unconfirmed; listed unconfirmed fields make it partial.
    pub fn verification(&self) -> Verification {
        let note = self.verified.as_deref().unwrap_or("").trim().to_lowercase();
        if note.is_empty() || note.starts_with("no") {
            Verification::No
        } else if note.starts_with("partial") || !self.unverified.is_empty() {
            Verification::Partial
        } else {
            Verification::Yes
        }
    }
}

/// Every contact, the date the facts were checked, and the fake-call warning.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contacts {
    /// `YYYY-MM-DD`: shown so the user knows how old a number is.
    pub checked_on: String,
    #[serde(default)]
    pub fake_call_warning: Warning,
    #[serde(default, rename = "contact")]
    pub contacts: Vec<Contact>,
}

impl Contacts {
    /// Parses contacts text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Contacts, ContactsError> {
        let c: Contacts = toml::from_str(text).map_err(|e| ContactsError::Parse {
            path: origin.to_path_buf(),
            message: e.message().to_string(),
        })?;
        if c.checked_on.trim().is_empty() {
            return Err(ContactsError::Parse {
                path: origin.to_path_buf(),
                message: "checked_on is empty".into(),
            });
        }
        Ok(c)
    }

    /// The compiled-in contacts. A test parses them, so this never falls
    /// back to the empty list in a released build.
    pub fn builtin() -> Contacts {
        Self::parse(BUILTIN, Path::new("assets/contacts.toml")).unwrap_or_default()
    }

    /// The override in `data_dir` when there is one, else the built-in
    /// contacts. A broken override falls back to the built-in copy and the
    /// error is returned for the caller to show once. The override is a
    /// data file: a link, pipe, another user's file or an oversized one is
    /// moved aside unread (see [`crate::datafile`]).
    pub fn load_or_builtin(data_dir: Option<&Path>) -> (Contacts, Option<ContactsError>) {
        let Some(path) = data_dir.map(|d| d.join(OVERRIDE_FILE)) else {
            return (Self::builtin(), None);
        };
        let now = std::time::SystemTime::now();
        let bytes = match crate::datafile::read(&path, crate::datafile::Kind::Contacts, now) {
            Ok(Some(b)) => b,
            Ok(None) => return (Self::builtin(), None),
            Err(r) => return (Self::builtin(), Some(ContactsError::Refused(r))),
        };
        let text = String::from_utf8_lossy(&bytes);
        match Self::parse(&text, &path) {
            Ok(c) if c.contacts.len() > crate::datafile::MAX_CONTACTS => {
                let reason = crate::datafile::Reason::TooMany {
                    count: c.contacts.len(),
                    cap: crate::datafile::MAX_CONTACTS,
                };
                let r = crate::datafile::refuse(&path, reason, now);
                (Self::builtin(), Some(ContactsError::Refused(r)))
            }
            Ok(c) => (c, None),
            Err(e) => (Self::builtin(), Some(e)),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.id == id)
    }

    /// The contacts of one walk-through step, in file order.
    pub fn for_step(&self, step: u8) -> Vec<&Contact> {
        self.contacts
            .iter()
            .filter(|c| c.step == Some(step))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_contacts_parse_with_every_researched_field() {
        let c = Contacts::parse(BUILTIN, Path::new("builtin")).unwrap();
        assert_eq!(c.checked_on, "2026-11-25");
        let ipa = c.get("ipa_anshin").unwrap();
        assert_eq!(ipa.phone.as_deref(), Some("03-5978-7509"));
        assert_eq!(ipa.email.as_deref(), Some("anshin@ipa.go.jp"));
        assert!(ipa.source.as_deref().unwrap().contains("ipa.go.jp"));
        assert_eq!(ipa.step, Some(4));
        assert!(ipa.is_unverified("hours"));
        assert!(!ipa.is_unverified("phone"));
        assert!(c.fake_call_warning.text(Lang::Ja).contains("詐欺"));
        assert!(c.fake_call_warning.text(Lang::En).contains("scam"));
        // Every contact belongs to a step and has a way to reach it.
        for x in &c.contacts {
            assert!(matches!(x.step, Some(1..=6)), "{} has no step", x.id);
            assert!(x.phone.is_some() || x.email.is_some() || x.url.is_some());
        }
    }

    #[test]
    fn unconfirmed_notes_are_recognised() {
        let c = Contacts::builtin();
        assert_eq!(
            c.get("ipa_virus_report").unwrap().verification(),
            Verification::No
        );
        assert!(c.get("ipa_virus_report").unwrap().is_unverified("phone"));
        assert_eq!(
            c.get("jpcert").unwrap().verification(),
            Verification::Partial
        );
        assert_eq!(
            c.get("police_110").unwrap().verification(),
            Verification::Yes
        );
        assert_eq!(
            c.get("ipa_anshin").unwrap().verification(),
            Verification::Partial
        );
    }

    #[test]
    fn broken_override_falls_back_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(OVERRIDE_FILE), "checked_on = [oops").unwrap();
        let (c, err) = Contacts::load_or_builtin(Some(dir.path()));
        assert_eq!(c, Contacts::builtin());
        let msg = err.unwrap().to_string();
        assert!(msg.contains("not valid"), "{msg}");
        assert!(msg.contains(OVERRIDE_FILE), "{msg}");
    }

    #[test]
    fn a_valid_override_replaces_the_builtin_list() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(OVERRIDE_FILE),
            "checked_on = \"2027-01-01\"\n[[contact]]\nid = \"x\"\nname_ja = \"エックス\"\nname_en = \"X\"\nphone = \"110\"\nverified = \"yes\"\nstep = 5\n",
        )
        .unwrap();
        let (c, err) = Contacts::load_or_builtin(Some(dir.path()));
        assert!(err.is_none());
        assert_eq!(c.checked_on, "2027-01-01");
        assert_eq!(c.for_step(5)[0].name(Lang::En), "X");
        // A missing English text falls back to Japanese rather than blank.
        assert_eq!(c.contacts[0].hours(Lang::En), None);
    }

    #[test]
    fn missing_override_uses_builtin_silently() {
        let dir = tempfile::tempdir().unwrap();
        let (c, err) = Contacts::load_or_builtin(Some(dir.path()));
        assert!(err.is_none());
        assert!(c.get("ipa_anshin").is_some());
    }
}
