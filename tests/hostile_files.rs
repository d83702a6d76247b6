//! Property tests of what kizuki reads back from files someone else may
//! have written: the marks file round-trips exactly and survives any
//! damage, and the firewall plan validator accepts only what the plan
//! builder can produce.

// Paths are generated as arbitrary bytes, which only Unix paths are.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "hostile/plan.rs"]
mod plan_check;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use kizuki::firewall::{BlockedProgram, Flow, PLAN_VERSION, Plan};
use kizuki::marks::{MarkEntry, Until, parse_file, render_file};
use kizuki::model::{Mark, Protocol};
use proptest::prelude::*;

#[cfg(unix)]
fn path_of(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

fn abs_path() -> impl Strategy<Value = PathBuf> {
    prop::collection::vec(any::<u8>(), 0..24).prop_map(|mut b| {
        b.insert(0, b'/');
        path_of(b)
    })
}

fn sha() -> impl Strategy<Value = String> {
    "[0-9a-f]{64}"
}

fn mark() -> impl Strategy<Value = Mark> {
    prop::sample::select(vec![Mark::Trusted, Mark::Unknown, Mark::Blocked])
}

/// Whole seconds inside what an RFC 3339 date can hold.
fn time() -> impl Strategy<Value = SystemTime> {
    (0u64..253_402_300_799).prop_map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
}

fn until() -> impl Strategy<Value = Until> {
    prop_oneof![
        Just(Until::Always),
        time().prop_map(Until::Time),
        any::<String>().prop_map(Until::Boot),
        any::<String>().prop_map(Until::Session),
    ]
}

fn entry() -> impl Strategy<Value = MarkEntry> {
    (abs_path(), sha(), mark(), time(), until()).prop_map(|(exe, sha256, mark, set_at, until)| {
        MarkEntry {
            exe,
            sha256,
            mark,
            set_at,
            until,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn marks_round_trip_exactly(entries in prop::collection::vec(entry(), 0..6)) {
        let (back, problem) = parse_file(&render_file(&entries));
        prop_assert_eq!(problem, None);
        prop_assert_eq!(back, entries);
    }

    /// A file cut anywhere (a crash, a full disk) keeps every entry that
    /// was complete before the cut, in order, and nothing invented.
    #[test]
    fn a_cut_marks_file_keeps_a_prefix(
        entries in prop::collection::vec(entry(), 1..5),
        cut in any::<prop::sample::Index>(),
    ) {
        let full = render_file(&entries);
        let at = cut.index(full.len());
        let (back, _) = parse_file(&full[..at]);
        prop_assert!(back.len() <= entries.len());
        prop_assert_eq!(&back[..], &entries[..back.len()]);
    }

    /// Garbage spliced into a good file never panics and never yields an
    /// entry that cannot be saved again.
    #[test]
    fn damaged_marks_files_load_and_save_again(
        entries in prop::collection::vec(entry(), 0..4),
        junk in prop::collection::vec(any::<u8>(), 0..16),
        at in any::<prop::sample::Index>(),
    ) {
        let mut bytes = render_file(&entries);
        let i = at.index(bytes.len() + 1);
        bytes.splice(i..i, junk);
        let (loaded, _) = parse_file(&bytes);
        let saved = render_file(&loaded);
        let (again, problem) = parse_file(&saved);
        prop_assert_eq!(problem, None);
        prop_assert_eq!(again, loaded);
    }
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        // Mapped IPv4, loopback, unspecified, multicast: the edge cases.
        any::<u32>().prop_map(|v| IpAddr::V6(Ipv4Addr::from(v).to_ipv6_mapped())),
        prop::sample::select(vec![
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from([0, 0, 0, 0]),
            IpAddr::from([255, 255, 255, 255]),
            IpAddr::from([224, 0, 0, 1]),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        ]),
    ]
}

fn port() -> impl Strategy<Value = u16> {
    prop_oneof![Just(0u16), Just(443u16), any::<u16>()]
}

fn flow() -> impl Strategy<Value = Flow> {
    (any::<bool>(), ip(), port(), ip(), port()).prop_map(|(udp, li, lp, ri, rp)| Flow {
        protocol: if udp { Protocol::Udp } else { Protocol::Tcp },
        local: SocketAddr::new(li, lp),
        remote: SocketAddr::new(ri, rp),
    })
}

/// Paths a hand-written plan might hold: good ones, relative ones, ones
/// with `..`, doubled or trailing slashes, control characters, quotes and
/// shell syntax.
fn plan_path() -> impl Strategy<Value = PathBuf> {
    prop_oneof![
        3 => "(/[a-z]{1,3}){1,3}".prop_map(PathBuf::from),
        1 => prop::sample::select(vec![
            "tool", "./tool", "/usr/../etc/x", "/usr/./bin/x", "//usr/bin/x",
            "/usr/bin/x/", "/tmp/a\nb", "/tmp/a\0b", "/tmp/a;rm -rf ~",
            "/tmp/$(id)", "/tmp/`id`", "/tmp/a\"b", "/", "",
        ]).prop_map(PathBuf::from),
        1 => abs_path(),
    ]
}

fn blocked_program() -> impl Strategy<Value = BlockedProgram> {
    (
        plan_path(),
        prop_oneof![3 => sha(), 1 => any::<String>()],
        prop::collection::vec(prop_oneof![0u32..4, 100u32..110, any::<u32>()], 0..4),
        prop::collection::vec(flow(), 0..3),
    )
        .prop_map(|(exe, sha256, pids, flows)| BlockedProgram {
            exe,
            sha256,
            pids,
            flows,
        })
}

fn any_plan() -> impl Strategy<Value = Plan> {
    (
        prop_oneof![9 => Just(PLAN_VERSION), 1 => any::<u32>()],
        any::<bool>(),
        prop::collection::vec(blocked_program(), 0..4),
    )
        .prop_map(|(version, panic, blocked)| Plan {
            version,
            panic,
            blocked,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever a plan file holds, the validator lets through only plans
    /// the builder makes, and those only touch kizuki's own table.
    #[test]
    fn validator_accepts_only_what_the_builder_makes(plan in any_plan()) {
        if plan.validate().is_ok()
            && let Err(e) = plan_check::check_accepted(&plan)
        {
            prop_assert!(false, "{}", e);
        }
    }

    /// And the other way round: everything the builder makes passes.
    #[test]
    fn builder_output_always_validates(plan in any_plan()) {
        let (marks, snap) = plan_check::builder_inputs(&plan);
        let built = Plan::build(&marks, Some(&snap), plan.panic);
        prop_assert!(built.validate().is_ok(), "{:?}", built.validate());
        let checked = plan_check::check_accepted(&built);
        prop_assert!(checked.is_ok(), "{:?}", checked);
    }
}

#[path = "hostile/check.rs"]
mod check;

use kizuki::consult::{Contact, Contacts, Warning, contacts_json, contacts_text};
use kizuki::i18n::Lang;

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::sample::select(vec![
            "\x1b[2J",
            "\u{202E}evil",
            "line\nbreak",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "https://ok.example/",
            "03-1234-5678",
            "a@b.example",
        ])
        .prop_map(str::to_string),
    ]
}

fn contacts() -> impl Strategy<Value = Contacts> {
    let contact = (field(), field(), field(), field(), field(), field(), 1u8..7).prop_map(
        |(name, phone, email, url, hours, verified, step)| Contact {
            id: "x".into(),
            name_ja: name.clone(),
            name_en: name,
            phone: Some(phone),
            email: Some(email),
            url: Some(url),
            hours_ja: Some(hours.clone()),
            hours_en: Some(hours),
            verified: Some(verified),
            unverified: vec!["hours".into()],
            step: Some(step),
            ..Contact::default()
        },
    );
    (field(), field(), prop::collection::vec(contact, 0..3)).prop_map(|(date, warn, cs)| Contacts {
        checked_on: date,
        fake_call_warning: Warning {
            text_ja: warn.clone(),
            text_en: warn,
            source: None,
        },
        contacts: cs,
    })
}

/// What `kizuki contacts` prints for an edited contacts file.
fn check_contacts(c: &Contacts) -> Result<(), String> {
    for lang in [Lang::Ja, Lang::En] {
        check::terminal_safe("contacts text", &contacts_text(c, lang))?;
        let v = contacts_json(c, lang);
        for contact in v["contacts"].as_array().into_iter().flatten() {
            for l in contact["links"].as_array().into_iter().flatten() {
                let uri = l["uri"].as_str().unwrap_or_default().to_ascii_lowercase();
                if !["tel:", "mailto:", "https://", "http://"]
                    .iter()
                    .any(|p| uri.starts_with(p))
                {
                    return Err(format!("link with another scheme: {uri}"));
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// An edited contacts file cannot drive the terminal or slip a
    /// `file:` or `javascript:` link into what the user may click.
    #[test]
    fn edited_contacts_are_shown_escaped_with_safe_links(c in contacts()) {
        let text = toml::to_string(&c).unwrap();
        let loaded = Contacts::parse(&text, std::path::Path::new("contacts.toml"));
        // An empty date is refused by the loader; the rest must load.
        if c.checked_on.trim().is_empty() {
            prop_assert!(loaded.is_err());
        } else {
            let loaded = loaded.unwrap();
            prop_assert_eq!(&loaded, &c);
            if let Err(e) = check_contacts(&loaded) {
                prop_assert!(false, "{}", e);
            }
        }
    }
}

/// Found by the property test above: the date line printed the file's
/// `checked_on` unescaped.
#[test]
fn contacts_date_cannot_drive_the_terminal() {
    let mut c = Contacts::builtin();
    c.checked_on = "2026-11-25\x1b[2J\u{202E}".into();
    check_contacts(&c).unwrap();
}
