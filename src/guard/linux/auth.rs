//! Who may change enforcement. A root client may; a non-root client may
//! when polkit, asked by the guard itself, says so for that client's
//! process (`CheckAuthorization` on the system bus, with the action of the
//! request and the program's path in the prompt). Loosening requests have
//! their own actions whose defaults never keep an authorization
//! (`auth_admin`), so one typed password for "block" never unblocks.
//! Without polkit, non-root changes are refused.

use std::collections::HashMap;

use crate::guard::api::{Authority, Refusal, Request};

use super::check::Refused;

/// The client, from `SO_PEERCRED` and /proc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject {
    pub pid: u32,
    pub uid: u32,
    /// Start time of the client's process (clock ticks after boot), so a
    /// reused PID is not the same subject.
    pub start_time: u64,
}

/// What an authorizer answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Asked, and the answer was no (or the prompt was cancelled).
    Denied(String),
    /// Nobody to ask (no system bus, no polkitd).
    Unavailable(String),
}

/// Asks whether a non-root subject may do `action`.
pub trait Authorizer: Send + Sync {
    fn check(&self, subject: &Subject, action: &str, details: &[(&str, String)]) -> Verdict;
}

/// Whether `req` from `subject` may go ahead, and on whose authority.
pub fn decide(
    req: &Request,
    subject: &Subject,
    authz: &dyn Authorizer,
) -> Result<Authority, Refused> {
    if subject.uid == 0 {
        return Ok(Authority::Root);
    }
    let Some(action) = req.polkit_action() else {
        return Ok(Authority::Root);
    };
    let mut details = Vec::new();
    if let Request::Block { exe } | Request::Unblock { exe } = req {
        details.push((
            "program",
            crate::escape::for_display(&crate::escape::os_lossless(exe.as_os_str())),
        ));
    }
    match authz.check(subject, action, &details) {
        Verdict::Allowed => Ok(Authority::Polkit),
        Verdict::Denied(d) => Err(Refused {
            reason: Refusal::NotAuthorized,
            detail: format!("polkit did not authorize {action}: {d}"),
        }),
        Verdict::Unavailable(d) => Err(Refused {
            reason: Refusal::NoAuthority,
            detail: format!(
                "not root, and no polkit to ask ({d}): run as root or install and start polkitd"
            ),
        }),
    }
}

/// The real polkit, over the system bus.
pub struct Polkit;

impl Authorizer for Polkit {
    fn check(&self, subject: &Subject, action: &str, details: &[(&str, String)]) -> Verdict {
        futures_lite::future::block_on(check_polkit(subject, action, details))
    }
}

async fn check_polkit(subject: &Subject, action: &str, details: &[(&str, String)]) -> Verdict {
    use zbus::zvariant::Value;
    let conn = match zbus::Connection::system().await {
        Ok(c) => c,
        Err(e) => return Verdict::Unavailable(format!("no system bus: {e}")),
    };
    let proxy = match zbus::Proxy::new(
        &conn,
        "org.freedesktop.PolicyKit1",
        "/org/freedesktop/PolicyKit1/Authority",
        "org.freedesktop.PolicyKit1.Authority",
    )
    .await
    {
        Ok(p) => p,
        Err(e) => return Verdict::Unavailable(format!("polkit: {e}")),
    };
    let mut subj: HashMap<&str, Value<'_>> = HashMap::new();
    subj.insert("pid", Value::U32(subject.pid));
    subj.insert("start-time", Value::U64(subject.start_time));
    subj.insert("uid", Value::I32(i32::try_from(subject.uid).unwrap_or(-1)));
    let details: HashMap<&str, &str> = details.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // 1 = AllowUserInteraction: polkit may show its password prompt.
    let flags: u32 = 1;
    let reply = proxy
        .call_method(
            "CheckAuthorization",
            &(("unix-process", subj), action, details, flags, ""),
        )
        .await;
    let msg = match reply {
        Ok(m) => m,
        Err(zbus::Error::MethodError(name, text, _))
            if name.as_str() == "org.freedesktop.DBus.Error.ServiceUnknown"
                || name.as_str() == "org.freedesktop.DBus.Error.NameHasNoOwner" =>
        {
            return Verdict::Unavailable(format!(
                "polkitd is not running: {}",
                text.unwrap_or_default()
            ));
        }
        Err(e) => return Verdict::Denied(format!("polkit: {e}")),
    };
    match msg
        .body()
        .deserialize::<(bool, bool, HashMap<String, String>)>()
    {
        Ok((true, _, _)) => Verdict::Allowed,
        Ok((false, challenge, _)) => Verdict::Denied(if challenge {
            "authentication needed and not given".into()
        } else {
            "not authorized".into()
        }),
        Err(e) => Verdict::Denied(format!("polkit's answer was not understood: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::Mutex;

    /// An action and its details, as asked.
    type Asked = (String, Vec<(String, String)>);

    /// Answers from a script and remembers what it was asked.
    struct Fake {
        verdict: Verdict,
        asked: Mutex<Vec<Asked>>,
    }

    impl Authorizer for Fake {
        fn check(&self, _s: &Subject, action: &str, details: &[(&str, String)]) -> Verdict {
            self.asked.lock().unwrap().push((
                action.to_string(),
                details
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            ));
            self.verdict.clone()
        }
    }

    fn fake(v: Verdict) -> Fake {
        Fake {
            verdict: v,
            asked: Mutex::new(Vec::new()),
        }
    }

    const USER: Subject = Subject {
        pid: 4242,
        uid: 1000,
        start_time: 99,
    };

    #[test]
    fn root_is_allowed_without_asking() {
        let f = fake(Verdict::Denied("no".into()));
        let root = Subject { uid: 0, ..USER };
        assert_eq!(decide(&Request::Clear, &root, &f), Ok(Authority::Root));
        assert!(f.asked.lock().unwrap().is_empty());
    }

    #[test]
    fn a_user_is_asked_per_action_with_the_program_in_the_prompt() {
        let f = fake(Verdict::Allowed);
        let exe = PathBuf::from("/home/a/ダウンロード/tool");
        assert_eq!(
            decide(&Request::Block { exe: exe.clone() }, &USER, &f),
            Ok(Authority::Polkit)
        );
        decide(&Request::Unblock { exe }, &USER, &f).unwrap();
        decide(&Request::Resume, &USER, &f).unwrap();
        let asked = f.asked.lock().unwrap();
        assert_eq!(asked[0].0, "jp.kizuki.block");
        assert_eq!(asked[0].1[0].1, "/home/a/ダウンロード/tool");
        assert_eq!(asked[1].0, "jp.kizuki.unblock");
        assert_eq!(asked[2].0, "jp.kizuki.resume");
    }

    #[test]
    fn no_polkit_or_a_no_refuses_with_a_reason() {
        for (v, want) in [
            (Verdict::Denied("no".into()), Refusal::NotAuthorized),
            (Verdict::Unavailable("no bus".into()), Refusal::NoAuthority),
        ] {
            let f = fake(v);
            for req in [Request::Clear, Request::Resume, Request::Panic] {
                let r = decide(&req, &USER, &f).unwrap_err();
                assert_eq!(r.reason, want);
                assert!(!r.detail.is_empty());
            }
        }
    }

    #[test]
    fn without_a_system_bus_the_real_polkit_is_unavailable() {
        // This machine (and CI) runs no system bus; where one runs, the
        // answer for an unknown action is a no, never a yes.
        let v = Polkit.check(&USER, "jp.kizuki.test-unknown-action", &[]);
        assert_ne!(v, Verdict::Allowed);
    }
}
