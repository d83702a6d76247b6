//! The polkit policy that lets the GUI ask for administrator rights.
#![allow(clippy::unwrap_used, clippy::expect_used)]

const POLICY: &str = include_str!("../packaging/linux/jp.kizuki.firewall.policy");

/// Every opened element is closed, in order (enough to catch a broken file
/// without an XML library).
fn balanced(xml: &str) -> bool {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').map(|e| start + e).unwrap();
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
            continue;
        }
        let name = tag
            .trim_start_matches('/')
            .split_whitespace()
            .next()
            .unwrap();
        if tag.starts_with('/') {
            if stack.pop().as_deref() != Some(name) {
                return false;
            }
        } else {
            stack.push(name.to_string());
        }
    }
    stack.is_empty()
}

#[test]
fn policy_names_the_action_the_binary_and_asks_an_administrator() {
    assert!(balanced(POLICY), "policy XML is not well nested");
    assert!(POLICY.contains("<action id=\"jp.kizuki.firewall\">"));
    assert!(POLICY.contains(
        "<annotate key=\"org.freedesktop.policykit.exec.path\">/usr/bin/kizuki</annotate>"
    ));
    // Never granted without authentication.
    assert!(!POLICY.contains(">yes<"));
    assert!(POLICY.contains("<allow_active>auth_admin_keep</allow_active>"));
    assert!(POLICY.contains("xml:lang=\"ja\""));
}

#[test]
fn policy_passes_xmllint_when_available() {
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "packaging/linux/jp.kizuki.firewall.policy"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match out {
        Ok(o) => assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr)),
        Err(_) => eprintln!("skipping policy_passes_xmllint_when_available: needs xmllint"),
    }
}
