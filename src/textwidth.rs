//! Text columns for the terminal, measured in display columns: a
//! Japanese character takes two, so padding by characters misaligns every
//! table with a Japanese name or header.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// How many terminal columns `s` takes.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` cut to at most `max` columns, with "…" (one column) where it was cut.
pub fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w + 1 > max {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// `s` cut to `cols` columns and filled with spaces to exactly `cols`.
pub fn pad(s: &str, cols: usize) -> String {
    let shown = truncate(s, cols);
    let n = width(&shown);
    format!("{shown}{}", " ".repeat(cols.saturating_sub(n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japanese_takes_two_columns_and_pads_to_the_same_edge() {
        assert_eq!(width("プログラム"), 10);
        let a = pad("プログラム", 12);
        let b = pad("curl", 12);
        assert_eq!((width(&a), width(&b)), (12, 12));
        // Cut on a wide character: never one column too many.
        let cut = pad("ダウンロードした道具", 9);
        assert_eq!(width(&cut), 9);
        assert!(cut.contains('…'));
    }
}
