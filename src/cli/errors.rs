//! clap's messages for the common mistakes, in the user's language: an
//! invalid value (`kizuki mark x good`), an unknown subcommand or option,
//! a missing argument. Others keep clap's own text.

use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::i18n::{Lang, tr_args_in, tr_in};

/// The language asked for on the command line (`--lang ja`, `--lang=en`)
/// before clap has parsed it, else the locale's.
pub fn lang_of_args(args: &[String]) -> Lang {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let value = match a.strip_prefix("--lang=") {
            Some(v) => Some(v.to_string()),
            None if a == "--lang" => it.next().cloned(),
            None => None,
        };
        if let Some(l) = value.as_deref().and_then(Lang::parse) {
            return l;
        }
    }
    crate::i18n::detect_lang()
}

fn context(e: &clap::Error, kind: ContextKind) -> String {
    match e.get(kind) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(", "),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// The message to print for `e` in `lang`; `None` keeps clap's (help,
/// version, and mistakes with no translation).
pub fn localized(e: &clap::Error, lang: Lang) -> Option<String> {
    if lang != Lang::Ja {
        return None;
    }
    let invalid = match e.kind() {
        ErrorKind::InvalidSubcommand => context(e, ContextKind::InvalidSubcommand),
        _ => context(e, ContextKind::InvalidValue),
    };
    let arg = context(e, ContextKind::InvalidArg);
    let key = match e.kind() {
        ErrorKind::InvalidValue => "cli.err.invalid_value",
        ErrorKind::InvalidSubcommand => "cli.err.unknown_command",
        ErrorKind::UnknownArgument => "cli.err.unknown_option",
        ErrorKind::MissingRequiredArgument => "cli.err.missing",
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            "cli.err.missing_command"
        }
        _ => return None,
    };
    let valid = context(e, ContextKind::ValidValue);
    let mut text = tr_args_in(
        lang,
        key,
        &[
            ("value", &invalid),
            ("arg", &arg.replace(['<', '>'], "")),
            ("valid", &valid),
        ],
    );
    if e.kind() == ErrorKind::InvalidValue && !valid.is_empty() {
        text.push('\n');
        text.push_str(&tr_args_in(lang, "cli.err.valid", &[("valid", &valid)]));
    }
    text.push('\n');
    text.push_str(&tr_in(lang, "cli.err.help"));
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn err(args: &[&str]) -> clap::Error {
        match crate::cli::Cli::try_parse_from(args) {
            Err(e) => e,
            Ok(_) => panic!("{args:?} should not parse"),
        }
    }

    #[test]
    fn common_mistakes_are_said_in_japanese() {
        let e = err(&["kizuki", "mark", "/usr/bin/x", "good"]);
        let t = localized(&e, Lang::Ja).unwrap();
        assert!(t.contains("good") && t.contains("trusted"), "{t}");
        assert!(!t.contains("invalid value"), "{t}");
        let t = localized(&err(&["kizuki", "scna"]), Lang::Ja).unwrap();
        assert!(t.contains("scna") && t.contains("kizuki --help"), "{t}");
        assert!(localized(&err(&["kizuki", "scna"]), Lang::En).is_none());
    }

    #[test]
    fn the_language_is_read_before_parsing() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(lang_of_args(&a(&["kizuki", "--lang", "ja", "x"])), Lang::Ja);
        assert_eq!(lang_of_args(&a(&["kizuki", "x", "--lang=en"])), Lang::En);
    }
}
