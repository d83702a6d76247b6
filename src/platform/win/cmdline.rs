//! Windows command lines, as data. A program started through
//! `ShellExecuteExW` (the only way to ask UAC for elevation) gets its
//! arguments as one string that the child's C runtime splits again, so
//! kizuki must quote each argument exactly as that splitter expects — a
//! path with spaces or quotes must arrive as the same single argument.
//! Pure, so the Linux test suite checks it.

/// Why an argument cannot be passed on a Windows command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdlineError {
    #[error("a command-line argument contains a NUL character")]
    Nul,
}

/// Quotes one argument so the Microsoft C runtime (and
/// `CommandLineToArgvW`) reads it back unchanged.
pub fn quote_arg(arg: &str) -> Result<String, CmdlineError> {
    if arg.contains('\0') {
        return Err(CmdlineError::Nul);
    }
    let plain = !arg.is_empty()
        && !arg
            .chars()
            .any(|c| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '"'));
    if plain {
        return Ok(arg.to_string());
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('"');
    let mut backslashes = 0usize;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                // Backslashes before a quote are doubled, and the quote escaped.
                out.extend(std::iter::repeat_n('\\', backslashes * 2 + 1));
                out.push('"');
                backslashes = 0;
            }
            _ => {
                out.extend(std::iter::repeat_n('\\', backslashes));
                out.push(c);
                backslashes = 0;
            }
        }
    }
    // Backslashes before the closing quote are doubled so it stays a quote.
    out.extend(std::iter::repeat_n('\\', backslashes * 2));
    out.push('"');
    Ok(out)
}

/// The parameter string for `args` (everything after the program name).
pub fn join_args<S: AsRef<str>>(args: &[S]) -> Result<String, CmdlineError> {
    let quoted = args
        .iter()
        .map(|a| quote_arg(a.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(quoted.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How the Microsoft C runtime splits the arguments after the program
    /// name (the rules documented for `CommandLineToArgvW` and `argv`).
    fn split(line: &str) -> Vec<String> {
        let chars: Vec<char> = line.chars().collect();
        let mut args = Vec::new();
        let mut cur = String::new();
        let mut started = false;
        let mut quoted = false;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' {
                let mut n = 0;
                while i < chars.len() && chars[i] == '\\' {
                    n += 1;
                    i += 1;
                }
                started = true;
                if i < chars.len() && chars[i] == '"' {
                    cur.extend(std::iter::repeat_n('\\', n / 2));
                    if n % 2 == 1 {
                        cur.push('"');
                        i += 1;
                    }
                } else {
                    cur.extend(std::iter::repeat_n('\\', n));
                }
                continue;
            }
            if c == '"' {
                started = true;
                if quoted && chars.get(i + 1) == Some(&'"') {
                    cur.push('"');
                    i += 2;
                    continue;
                }
                quoted = !quoted;
            } else if (c == ' ' || c == '\t') && !quoted {
                if started {
                    args.push(std::mem::take(&mut cur));
                    started = false;
                }
            } else {
                started = true;
                cur.push(c);
            }
            i += 1;
        }
        if started {
            args.push(cur);
        }
        args
    }

    #[test]
    fn plain_arguments_are_left_alone() {
        assert_eq!(quote_arg("firewall").unwrap(), "firewall");
        assert_eq!(
            quote_arg(r"C:\kizuki\plan.json").unwrap(),
            r"C:\kizuki\plan.json"
        );
    }

    #[test]
    fn a_profile_path_with_spaces_stays_one_argument() {
        let plan = r"C:\Users\Taro Yamada\AppData\Roaming\kizuki\data\firewall-plan.json";
        let line = join_args(&["firewall", "apply", "--plan", plan]).unwrap();
        assert_eq!(
            line,
            r#"firewall apply --plan "C:\Users\Taro Yamada\AppData\Roaming\kizuki\data\firewall-plan.json""#
        );
        assert_eq!(split(&line), vec!["firewall", "apply", "--plan", plan]);
    }

    #[test]
    fn quotes_and_trailing_backslashes_survive() {
        for arg in [
            r#"say "hi""#,
            r"C:\dir with space\",
            r#"\\"\\"#,
            "",
            "タロウ の フォルダ",
            "tab\there",
        ] {
            let q = quote_arg(arg).unwrap();
            assert_eq!(split(&q), vec![arg.to_string()], "{arg:?} quoted as {q}");
        }
    }

    #[test]
    fn nul_cannot_be_passed() {
        assert_eq!(quote_arg("a\0b"), Err(CmdlineError::Nul));
        assert!(join_args(&["ok", "a\0"]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_argument_list_round_trips(
            args in proptest::collection::vec("[ a-z\\\\\"\t\u{3042}-\u{3093}]{0,12}", 0..6)
        ) {
            let line = join_args(&args).unwrap();
            proptest::prop_assert_eq!(split(&line), args);
        }
    }
}
