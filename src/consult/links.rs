//! Clickable links for a contact: `tel:` (RFC 3966), `mailto:` with a
//! prefilled subject and body (RFC 6068), and web pages. Pure functions;
//! opening them goes through [`crate::consult::Opener`].

use serde::Serialize;

use super::contacts::Contact;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    Tel,
    Mailto,
    Web,
}

/// A link as the user sees it (`label`, copyable) and as it is opened (`uri`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub kind: LinkKind,
    pub label: String,
    pub uri: String,
}

/// Bytes outside RFC 3986's "unreserved" set are percent-encoded. RFC 6068
/// allows more characters raw, but encoding more is always valid and
/// every mail client decodes it.
fn pct_encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `tel:` for a phone number as written (`03-5978-7509`, `#9110`, `110`):
/// visual separators are dropped, `#` becomes `%23` (it would start a
/// fragment otherwise). `None` when there is no digit to dial.
pub fn tel_uri(number: &str) -> Option<String> {
    let mut out = String::from("tel:");
    let mut digits = 0;
    for (i, c) in number.trim().chars().enumerate() {
        match c {
            '0'..='9' => {
                digits += 1;
                out.push(c);
            }
            '+' if i == 0 => out.push('+'),
            '#' => out.push_str("%23"),
            '*' => out.push('*'),
            ' ' | '-' | '.' | '(' | ')' | '\u{3000}' | 'ー' | '－' => {}
            _ => return None,
        }
    }
    (digits > 0).then_some(out)
}

/// True for something that looks like one plain e-mail address.
fn plausible_email(addr: &str) -> bool {
    let mut parts = addr.split('@');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(l), Some(d), None) if !l.is_empty() && d.contains('.')
    ) && !addr
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "<>\"(),;:[]\\".contains(c))
}

/// `mailto:` with `subject` and `body` (RFC 6068): UTF-8, percent-encoded,
/// line breaks as `%0D%0A`. `None` for an address that is not plausible.
pub fn mailto_uri(addr: &str, subject: &str, body: &str) -> Option<String> {
    let addr = addr.trim();
    if !plausible_email(addr) {
        return None;
    }
    let body = body.replace("\r\n", "\n").replace('\n', "\r\n");
    let mut uri = format!("mailto:{}", pct_encode(addr, b"@"));
    let mut sep = '?';
    for (name, value) in [("subject", subject), ("body", body.as_str())] {
        if !value.is_empty() {
            uri.push(sep);
            uri.push_str(name);
            uri.push('=');
            uri.push_str(&pct_encode(value, &[]));
            sep = '&';
        }
    }
    Some(uri)
}

/// A web page: only `https://` and `http://` (never `file:` or
/// `javascript:` from a contacts file someone edited).
pub fn web_uri(url: &str) -> Option<String> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let ok = (lower.starts_with("https://") || lower.starts_with("http://"))
        && url.len() > "https://".len()
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then(|| url.to_string())
}

/// Every link of `contact`: phone, mail (with the subject and the report
/// summary as body), web page. Details that cannot be made into a link
/// are left out (they are still shown as text).
pub fn contact_links(contact: &Contact, subject: &str, summary: &str) -> Vec<Link> {
    let mut links = Vec::new();
    if let Some(phone) = &contact.phone
        && let Some(uri) = tel_uri(phone)
    {
        links.push(Link {
            kind: LinkKind::Tel,
            label: phone.clone(),
            uri,
        });
    }
    if let Some(email) = &contact.email
        && let Some(uri) = mailto_uri(email, subject, summary)
    {
        links.push(Link {
            kind: LinkKind::Mailto,
            label: email.clone(),
            uri,
        });
    }
    if let Some(url) = &contact.url
        && let Some(uri) = web_uri(url)
    {
        links.push(Link {
            kind: LinkKind::Web,
            label: url.clone(),
            uri,
        });
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `%XX` sequences, for round-trip checks.
    fn pct_decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(h, 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn tel_links_drop_separators_and_encode_the_hash() {
        let cases = [
            ("03-5978-7509", Some("tel:0359787509")),
            (" 03 5978 7509 ", Some("tel:0359787509")),
            ("#9110", Some("tel:%239110")),
            ("110", Some("tel:110")),
            ("188", Some("tel:188")),
            ("+81-3-5978-7509", Some("tel:+81359787509")),
            ("(03) 5978.7509", Some("tel:0359787509")),
            ("", None),
            ("call us", None),
            ("110;evil", None),
        ];
        for (input, want) in cases {
            assert_eq!(tel_uri(input).as_deref(), want, "{input:?}");
        }
    }

    #[test]
    fn mailto_encodes_japanese_spaces_and_line_breaks() {
        let uri = mailto_uri(
            "anshin@ipa.go.jp",
            "不審なプログラムの相談",
            "ハッシュ: ab12\n通信先 203.0.113.7:443 & more?",
        )
        .unwrap();
        // 不 is U+4E0D = E4 B8 8D in UTF-8.
        assert!(
            uri.starts_with("mailto:anshin@ipa.go.jp?subject=%E4%B8%8D"),
            "{uri}"
        );
        assert!(uri.contains("&body="));
        assert!(uri.contains("%0D%0A"), "line breaks are CRLF: {uri}");
        assert!(uri.contains("%20"), "spaces are %20, never +: {uri}");
        assert!(
            uri.contains("%26%20more%3F"),
            "& and ? inside a value: {uri}"
        );
        assert!(uri.is_ascii());
        for ch in [' ', '\n', '\r', '+', '#'] {
            assert!(!uri.contains(ch), "raw {ch:?} in {uri}");
        }
        let body = uri.split("&body=").nth(1).unwrap();
        assert_eq!(
            pct_decode(body),
            "ハッシュ: ab12\r\n通信先 203.0.113.7:443 & more?"
        );
        let subject = uri
            .split("?subject=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        assert_eq!(pct_decode(subject), "不審なプログラムの相談");
    }

    #[test]
    fn mailto_rejects_addresses_that_could_inject_headers() {
        assert!(mailto_uri("a?cc=b@y.jp", "s", "b").is_some_and(|u| u.contains("%3F")));
        assert_eq!(mailto_uri("not an address", "s", "b"), None);
        assert_eq!(mailto_uri("a@b@c.jp", "s", "b"), None);
        assert_eq!(mailto_uri("a@localhost", "s", "b"), None);
        assert_eq!(
            mailto_uri("a@b.jp", "", "").as_deref(),
            Some("mailto:a@b.jp")
        );
    }

    #[test]
    fn only_web_pages_are_opened_as_urls() {
        assert!(web_uri("https://www.ipa.go.jp/security/anshin/about.html").is_some());
        assert!(web_uri("http://www.ipa.go.jp/").is_some());
        assert_eq!(web_uri("javascript:alert(1)"), None);
        assert_eq!(web_uri("file:///etc/passwd"), None);
        assert_eq!(web_uri("https://a b"), None);
    }

    #[test]
    fn ipa_contact_has_all_three_links() {
        let c = crate::consult::Contacts::builtin();
        let links = contact_links(c.get("ipa_anshin").unwrap(), "件名", "本文");
        let kinds: Vec<LinkKind> = links.iter().map(|l| l.kind).collect();
        assert_eq!(kinds, [LinkKind::Tel, LinkKind::Mailto, LinkKind::Web]);
        assert_eq!(links[0].uri, "tel:0359787509");
        assert_eq!(links[0].label, "03-5978-7509");
        let police = contact_links(c.get("police_9110").unwrap(), "", "");
        assert_eq!(police[0].uri, "tel:%239110");
    }
}
