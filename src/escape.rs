//! Making hostile strings harmless to show. A program can name itself
//! anything: newlines, terminal escapes, right-to-left overrides that reverse
//! what follows, or bytes that are not UTF-8. Every place that shows such a
//! string to a person goes through here.

use std::ffi::OsStr;

/// Converts OS bytes to text without hiding anything: valid UTF-8 passes
/// through, each invalid byte becomes a visible `\xNN`.
pub fn os_lossless(s: &OsStr) -> String {
    bytes_lossless(&crate::platform::osbytes::os_bytes(s))
}

/// Valid UTF-8 passes through; each invalid byte becomes `\xNN`.
pub fn bytes_lossless(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

/// Characters that change how surrounding text is laid out or read:
/// bidirectional overrides and isolates, zero-width joiners, BOM.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}'
        | '\u{FEFF}'
        | '\u{061C}')
}

/// True when `c` must not reach a terminal or a label raw.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || is_invisible_format(c)
}

/// Shows control and layout-changing characters as visible escapes
/// (`\n`, `\t`, `\u{202E}`), so a name can neither break a table line,
/// drive the terminal, nor reverse the text after it.
pub fn for_display(s: &str) -> String {
    if !s.chars().any(needs_escape) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:X}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Shortens to at most `max` characters, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newline_and_escape_sequences_become_visible() {
        assert_eq!(for_display("a\nb\x1b[31m"), "a\\nb\\u{1B}[31m");
    }

    #[test]
    fn rtl_override_is_shown_not_obeyed() {
        let evil = "invoice\u{202E}fdp.exe";
        let shown = for_display(evil);
        assert!(!shown.contains('\u{202E}'));
        assert!(shown.contains("\\u{202E}"));
    }

    #[test]
    fn invalid_utf8_bytes_are_kept_visible() {
        assert_eq!(bytes_lossless(b"ok\xff\xfe!"), "ok\\xFF\\xFE!");
        assert_eq!(bytes_lossless("気づき".as_bytes()), "気づき");
    }

    #[test]
    fn plain_japanese_is_untouched() {
        assert_eq!(for_display("ダウンロード/ツール"), "ダウンロード/ツール");
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
