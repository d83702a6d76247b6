//! The bytes of an OS string: Unix paths are bytes and may not be UTF-8;
//! elsewhere a path is text, and its UTF-8 (lossy) is used.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::path::PathBuf;

/// The OS bytes of `s` (its lossy UTF-8 where the OS has no byte strings).
pub fn os_bytes(s: &OsStr) -> Cow<'_, [u8]> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Cow::Borrowed(s.as_bytes())
    }
    #[cfg(not(unix))]
    {
        match s.to_string_lossy() {
            Cow::Borrowed(t) => Cow::Borrowed(t.as_bytes()),
            Cow::Owned(t) => Cow::Owned(t.into_bytes()),
        }
    }
}

/// The path with these OS bytes; `None` where the OS cannot hold them.
pub fn path_from_bytes(bytes: Vec<u8>) -> Option<PathBuf> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        Some(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
    }
    #[cfg(not(unix))]
    {
        String::from_utf8(bytes).ok().map(PathBuf::from)
    }
}

/// True when `p` is written the one way the OS reports an executable:
/// no `.` or `..`, no doubled or trailing separator, not the root alone.
/// Programs are known by their resolved paths, so any other spelling (in a
/// firewall plan) did not come from kizuki.
#[cfg(unix)]
pub fn is_canonical_form(p: &std::path::Path) -> bool {
    use std::path::Component;
    let mut rebuilt = std::path::PathBuf::new();
    let mut names = 0;
    for c in p.components() {
        match c {
            Component::RootDir => rebuilt.push(c),
            Component::Normal(n) => {
                names += 1;
                rebuilt.push(n);
            }
            Component::Prefix(_) | Component::CurDir | Component::ParentDir => return false,
        }
    }
    names > 0 && rebuilt.as_os_str() == p.as_os_str()
}

/// Windows paths are checked by the netsh backend, which knows their rules.
#[cfg(not(unix))]
pub fn is_canonical_form(_p: &std::path::Path) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_round_trips() {
        let p = PathBuf::from("/usr/bin/データ");
        let b = os_bytes(p.as_os_str()).into_owned();
        assert_eq!(path_from_bytes(b), Some(p));
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_bytes_are_kept() {
        let b = vec![b'/', b't', 0xff, b'x'];
        let p = path_from_bytes(b.clone()).unwrap();
        assert_eq!(os_bytes(p.as_os_str()).as_ref(), b.as_slice());
    }
}
