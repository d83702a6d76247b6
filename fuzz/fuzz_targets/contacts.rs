//! The contacts loader on arbitrary text (an edited override file): it
//! never panics, what it shows in a terminal is escaped, the JSON is valid
//! and every link it would open is a phone, mail or web link.

#![no_main]

use std::path::Path;

use kizuki::consult::{Contacts, contact_links, contacts_json, contacts_text, steps};
use kizuki::i18n::Lang;
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/hostile/check.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(c) = Contacts::parse(text, Path::new("contacts.toml")) else {
        return;
    };
    for lang in [Lang::Ja, Lang::En] {
        let shown = contacts_text(&c, lang);
        if let Err(e) = check::terminal_safe("contacts text", &shown) {
            panic!("{e}\n{shown}");
        }
        let json = contacts_json(&c, lang).to_string();
        serde_json::from_str::<serde_json::Value>(&json).expect("contacts JSON parses");
        let mut links = Vec::new();
        for s in steps(&c, lang, None) {
            for v in s.contacts {
                links.extend(v.fields.into_iter().filter_map(|f| f.link));
            }
        }
        for contact in &c.contacts {
            links.extend(contact_links(contact, "subject", "body\nline"));
        }
        for l in links {
            let ok = ["tel:", "mailto:", "https://", "http://"]
                .iter()
                .any(|p| l.uri.to_ascii_lowercase().starts_with(p));
            assert!(ok, "link with another scheme: {}", l.uri);
            assert!(
                !l.uri.chars().any(|c| c.is_whitespace() || c.is_control()),
                "link with spaces or control characters: {:?}",
                l.uri
            );
        }
    }
});
