//! Small formatting helpers shared by the renderers: times for people, and
//! escaping for Markdown and HTML. Every value from the OS passes
//! [`crate::escape::for_display`] first, so no control or direction
//! character survives into a report.

use std::time::SystemTime;

use crate::escape::for_display;
use crate::i18n::Lang;

/// Japan has no daylight saving time: Japanese reports show JST (+09:00),
/// English ones UTC. JSON always carries RFC 3339 UTC.
pub fn time(t: SystemTime, lang: Lang) -> String {
    let utc = time::OffsetDateTime::from(t);
    let (dt, zone) = match lang {
        Lang::Ja => (utc.to_offset(time::macros::offset!(+9)), "(日本時間)"),
        Lang::En => (utc, "UTC"),
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {zone}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// `from – to`, the second without its date when it is the same day:
/// `2026-11-25 21:00:00 – 21:00:30 (日本時間)`.
pub fn span(from: SystemTime, to: SystemTime, lang: Lang) -> String {
    let a = time(from, lang);
    let b = time(to, lang);
    match (a.split_once(' '), b.split_once(' ')) {
        (Some((day_a, rest_a)), Some((day_b, rest_b))) if day_a == day_b => {
            let (clock_a, zone) = rest_a.split_once(' ').unwrap_or((rest_a, ""));
            let clock_b = rest_b.split_once(' ').map(|x| x.0).unwrap_or(rest_b);
            format!("{day_a} {clock_a} – {clock_b} {zone}")
        }
        _ => format!("{a} – {b}"),
    }
}

/// `YYYYMMDD-HHMMSSZ` for file names (UTC, sorts by time).
pub fn file_stamp(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// A Markdown code span that shows `s` literally, whatever backticks it
/// holds: the fence is one longer than its longest run of backticks.
pub fn md_code(s: &str) -> String {
    let s = for_display(s);
    let longest = longest_backtick_run(&s);
    let fence = "`".repeat(longest + 1);
    // A space keeps a leading or trailing backtick apart from the fence.
    if s.starts_with('`') || s.ends_with('`') || s.is_empty() {
        format!("{fence} {s} {fence}")
    } else {
        format!("{fence}{s}{fence}")
    }
}

/// Plain text in Markdown: punctuation that could start markup (links,
/// HTML, emphasis, tables) is backslash-escaped. Parentheses stay: with
/// brackets escaped they cannot form a link.
pub fn md_text(s: &str) -> String {
    let s = for_display(s);
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        // `_` inside a word (x86_64, TIME_WAIT) never starts emphasis.
        let inside_word = c == '_'
            && i > 0
            && chars[i - 1].is_alphanumeric()
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        if "\\`*_{}[]<>#+!|~&".contains(c) && !inside_word {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The longest run of backticks in `s`: a Markdown fence must be longer.
fn longest_backtick_run(s: &str) -> usize {
    let (mut longest, mut run) = (0, 0);
    for c in s.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// A fenced block that holds `s` (several lines) literally.
pub fn md_block(s: &str) -> String {
    let longest = longest_backtick_run(s);
    let fence = "`".repeat((longest + 1).max(3));
    format!("{fence}text\n{s}\n{fence}\n")
}

/// HTML text and attribute values: `& < > " '` become entities.
pub fn html(s: &str) -> String {
    let s = for_display(s);
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A command line as one string, each argument quoted when needed so
/// arguments with spaces stay visibly separate.
pub fn cmdline(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && !a
                    .chars()
                    .any(|c| c.is_whitespace() || c == '"' || c == '\'')
            {
                a.clone()
            } else {
                format!("\"{}\"", a.replace('\\', "\\\\").replace('"', "\\\""))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, FakeClock};

    #[test]
    fn times_are_jst_in_japanese_and_utc_in_english() {
        let t = FakeClock::at_noon().now();
        assert_eq!(time(t, Lang::Ja), "2026-11-25 21:00:00 (日本時間)");
        assert_eq!(time(t, Lang::En), "2026-11-25 12:00:00 UTC");
        assert_eq!(file_stamp(t), "20261125-120000Z");
        let later = t + std::time::Duration::from_secs(30);
        assert_eq!(
            span(t, later, Lang::Ja),
            "2026-11-25 21:00:00 – 21:00:30 (日本時間)"
        );
        let next_day = t + std::time::Duration::from_secs(86_400);
        assert_eq!(
            span(t, next_day, Lang::En),
            "2026-11-25 12:00:00 UTC – 2026-11-26 12:00:00 UTC"
        );
    }

    #[test]
    fn markdown_code_spans_survive_backticks() {
        assert_eq!(md_code("/usr/bin/ls"), "`/usr/bin/ls`");
        assert_eq!(md_code("a`b"), "``a`b``");
        assert_eq!(md_code("`x"), "`` `x ``");
        assert_eq!(md_code("a\nb"), "`a\\nb`");
    }

    #[test]
    fn markdown_text_cannot_open_html_or_links() {
        assert_eq!(md_text("<script>"), "\\<script\\>");
        assert_eq!(md_text("x86_64 _em_"), "x86_64 \\_em\\_");
        assert_eq!(md_text("[x](http://e)"), "\\[x\\](http://e)");
    }

    #[test]
    fn html_escapes_markup_and_quotes() {
        assert_eq!(
            html("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(html("a\u{202E}b"), "a\\u{202E}b");
    }

    #[test]
    fn cmdline_quotes_arguments_with_spaces() {
        let args = vec!["/tmp/x".to_string(), "a b".into(), "".into(), "q\"".into()];
        assert_eq!(cmdline(&args), "/tmp/x \"a b\" \"\" \"q\\\"\"");
    }
}
