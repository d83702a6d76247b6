//! Which script an interpreter runs, read from its command line. Pure
//! string logic for every platform's interpreters, so the Windows rules are
//! tested on Linux too; the OS modules add what only the OS knows (the
//! working folder, the descriptor the script is read through).

/// A family of interpreters that share a command-line syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpreter {
    Shell,
    Python,
    Perl,
    Ruby,
    Node,
    Php,
    PowerShell,
    WindowsScriptHost,
    Mshta,
}

/// `python3.11` → `python`: the name without a version suffix.
fn base_name(file_name: &str) -> String {
    let lower = file_name.to_lowercase();
    let lower = lower.strip_suffix(".exe").unwrap_or(&lower).to_string();
    lower
        .trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-')
        .to_string()
}

/// The interpreter family of an executable, by its file name (never by the
/// process name, which any program can set).
pub fn interpreter_of(exe_file_name: &str) -> Option<Interpreter> {
    use Interpreter::*;
    Some(match base_name(exe_file_name).as_str() {
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "mksh" | "ash" | "busybox" => Shell,
        "python" | "pypy" => Python,
        "perl" => Perl,
        "ruby" => Ruby,
        "node" | "nodejs" => Node,
        "php" | "php-cli" => Php,
        "powershell" | "pwsh" => PowerShell,
        "wscript" | "cscript" => WindowsScriptHost,
        "mshta" => Mshta,
        _ => return None,
    })
}

/// True for shells and interpreters (a `remote-shell` is one of these with a
/// socket on its standard input or output).
pub fn is_interpreter(exe_file_name: &str) -> bool {
    interpreter_of(exe_file_name).is_some()
}

/// Options of each family that take the next argument as their value.
fn takes_value(kind: Interpreter, opt: &str) -> bool {
    use Interpreter::*;
    match kind {
        Shell => matches!(opt, "-o" | "+o" | "-O" | "+O" | "--rcfile" | "--init-file"),
        Python => matches!(opt, "-W" | "-X" | "-Q"),
        Perl => matches!(opt, "-I" | "-M" | "-m"),
        Ruby => matches!(opt, "-I" | "-r" | "-C" | "-E" | "--encoding"),
        Node => matches!(
            opt,
            "-r" | "--require" | "--import" | "--loader" | "--experimental-loader" | "--conditions"
        ),
        Php => matches!(opt, "-c" | "-d" | "-z"),
        PowerShell => matches!(
            opt,
            "-executionpolicy"
                | "-ep"
                | "-windowstyle"
                | "-w"
                | "-version"
                | "-v"
                | "-configurationname"
                | "-workingdirectory"
                | "-wd"
                | "-settingsfile"
                | "-inputformat"
                | "-outputformat"
                | "-of"
                | "-if"
        ),
        WindowsScriptHost | Mshta => false,
    }
}

/// Options after which there is no script: the code is inline or read from
/// standard input.
fn is_inline(kind: Interpreter, opt: &str) -> bool {
    use Interpreter::*;
    match kind {
        Shell => {
            opt == "-c"
                || opt == "-s"
                || (opt.starts_with('-') && !opt.starts_with("--") && opt.contains('c'))
        }
        Python => opt == "-c" || opt == "-m" || opt == "-",
        Perl => opt.starts_with("-e") || opt.starts_with("-E") || opt == "-",
        Ruby => opt == "-e" || opt == "-",
        Node => matches!(opt, "-e" | "--eval" | "-p" | "--print" | "-"),
        Php => opt == "-r" || opt == "-a",
        PowerShell => matches!(
            opt,
            "-command" | "-c" | "-encodedcommand" | "-enc" | "-e" | "-ec" | "-"
        ),
        WindowsScriptHost | Mshta => false,
    }
}

/// The script an interpreter of `kind` runs, from its arguments (`argv[0]`
/// included), as written there (maybe relative). `None` for an interactive
/// shell, inline code (`-c`, `-e`), a script read from standard input or
/// from a pipe (`bash <(…)` gives `/dev/fd/63`): no file is the program.
pub fn script_arg(kind: Interpreter, argv: &[String]) -> Option<String> {
    script_arg_raw(kind, argv).filter(|a| !is_descriptor_path(a))
}

/// `/dev/fd/N`, `/dev/stdin`, `/proc/self/fd/N`, `/proc/PID/fd/N`.
fn is_descriptor_path(a: &str) -> bool {
    a.starts_with("/dev/fd/")
        || a == "/dev/stdin"
        || (a.starts_with("/proc/") && a.contains("/fd/"))
}

fn script_arg_raw(kind: Interpreter, argv: &[String]) -> Option<String> {
    use Interpreter::*;
    let mut args = argv.iter().skip(1);
    while let Some(a) = args.next() {
        let opt = if kind == PowerShell {
            a.to_lowercase().replacen('/', "-", 1)
        } else {
            a.clone()
        };
        match kind {
            WindowsScriptHost => {
                if a.starts_with("//") {
                    continue;
                }
                return Some(a.clone());
            }
            Mshta => {
                // A URL or inline `javascript:` is not a file.
                return (!a.contains(':') || looks_like_windows_path(a)).then(|| a.clone());
            }
            PowerShell if opt == "-file" || opt == "-f" => return args.next().cloned(),
            Php if opt == "-f" => return args.next().cloned(),
            _ => {}
        }
        if opt == "--" {
            return args.next().cloned();
        }
        if is_inline(kind, &opt) {
            return None;
        }
        if takes_value(kind, &opt) {
            args.next();
            continue;
        }
        if opt.starts_with('-') || (kind == Shell && opt.starts_with('+')) {
            continue;
        }
        // powershell.exe treats a bare argument as a command; pwsh as a file.
        if kind == PowerShell && !a.to_lowercase().ends_with(".ps1") {
            return None;
        }
        return Some(a.clone());
    }
    None
}

fn looks_like_windows_path(a: &str) -> bool {
    let b = a.as_bytes();
    b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn interpreters_are_known_by_file_name() {
        for (name, want) in [
            ("bash", Some(Interpreter::Shell)),
            ("dash", Some(Interpreter::Shell)),
            ("python3.11", Some(Interpreter::Python)),
            ("python3", Some(Interpreter::Python)),
            ("perl5.36.0", Some(Interpreter::Perl)),
            ("node", Some(Interpreter::Node)),
            ("php8.2", Some(Interpreter::Php)),
            ("ruby3.1", Some(Interpreter::Ruby)),
            ("powershell.exe", Some(Interpreter::PowerShell)),
            ("PWSH.EXE", Some(Interpreter::PowerShell)),
            ("wscript.exe", Some(Interpreter::WindowsScriptHost)),
            ("mshta.exe", Some(Interpreter::Mshta)),
            ("firefox", None),
            ("bashful", None),
            ("freetool", None),
        ] {
            assert_eq!(interpreter_of(name), want, "{name}");
        }
    }

    #[test]
    fn script_is_read_from_the_command_line() {
        use Interpreter::*;
        let cases: &[(Interpreter, &str, Option<&str>)] = &[
            (Shell, "bash /tmp/update.sh", Some("/tmp/update.sh")),
            (Shell, "/bin/sh -e ./run.sh arg", Some("./run.sh")),
            (Shell, "bash -o pipefail x.sh", Some("x.sh")),
            (Shell, "bash --norc -- /tmp/a.sh", Some("/tmp/a.sh")),
            (Shell, "bash -c sleep 5", None),
            (Shell, "bash -ec true", None),
            (Shell, "bash -i", None),
            (Shell, "-bash", None),
            (Shell, "sh -s", None),
            (Shell, "bash /dev/fd/63", None),
            (Python, "python3 /proc/self/fd/3", None),
            (
                Python,
                "python3 -u /dev/shm/poll.py 5",
                Some("/dev/shm/poll.py"),
            ),
            (Python, "python3 -W ignore x.py", Some("x.py")),
            (Python, "python3 -c print(1)", None),
            (Python, "python3 -m http.server 8000", None),
            (Perl, "perl -w /tmp/k.pl", Some("/tmp/k.pl")),
            (Perl, "perl -e $0", None),
            (Ruby, "ruby -r socket /tmp/r.rb", Some("/tmp/r.rb")),
            (Node, "node --require x /tmp/a.js", Some("/tmp/a.js")),
            (Node, "node -e 1", None),
            (Php, "php -f /tmp/a.php", Some("/tmp/a.php")),
            (Php, "php -r 1", None),
            (
                PowerShell,
                r"powershell.exe -NoProfile -ExecutionPolicy Bypass -File C:\Users\a\AppData\Local\Temp\x.ps1",
                Some(r"C:\Users\a\AppData\Local\Temp\x.ps1"),
            ),
            (PowerShell, "powershell -enc AAAA", None),
            (PowerShell, r"pwsh C:\s\run.ps1", Some(r"C:\s\run.ps1")),
            (PowerShell, "powershell Get-Process", None),
            (
                WindowsScriptHost,
                r"wscript.exe //B //Nologo C:\Users\a\Downloads\invoice.js",
                Some(r"C:\Users\a\Downloads\invoice.js"),
            ),
            (Mshta, r"mshta.exe C:\t\a.hta", Some(r"C:\t\a.hta")),
            (Mshta, "mshta.exe http://x/a.hta", None),
        ];
        for (kind, cmd, want) in cases {
            assert_eq!(script_arg(*kind, &argv(cmd)).as_deref(), *want, "{cmd}");
        }
    }
}
