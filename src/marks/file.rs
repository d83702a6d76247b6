//! The layout of `marks.json` and a forgiving reader that takes over every
//! entry it can read, even from a damaged file.

use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{MarkEntry, SCHEMA_VERSION, Until};
use crate::clock::{parse_rfc3339, rfc3339};
use crate::model::Mark;

#[derive(Debug, Serialize, Deserialize)]
struct FileRepr {
    schema: u32,
    marks: Vec<EntryRepr>,
}

#[derive(Debug, Serialize, Deserialize)]
struct EntryRepr {
    exe: PathRepr,
    sha256: String,
    mark: Mark,
    set_at: String,
    until: UntilRepr,
}

/// Paths are text when they are UTF-8; other bytes (possible on Unix) are
/// kept exactly, as hex.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum PathRepr {
    Text(String),
    Bytes { bytes_hex: String },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum UntilRepr {
    Always,
    Time { at: String },
    Boot { boot_id: String },
    Session { session: String },
}

/// What was wrong with a file (none of it stops kizuki).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileProblem {
    Empty,
    /// Not JSON at all, or cut short.
    NotJson,
    /// JSON, but not a marks file of this version.
    WrongSchema(Option<u64>),
    /// A marks file with this many entries that could not be read.
    BadEntries(usize),
    /// The file could not be read at all (permissions, I/O error).
    Unreadable(String),
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub entries: Vec<MarkEntry>,
    pub problem: Option<FileProblem>,
}

pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn path_to_repr(p: &std::path::Path) -> PathRepr {
    match p.to_str() {
        Some(s) => PathRepr::Text(s.to_string()),
        None => PathRepr::Bytes {
            bytes_hex: crate::identity::hex(&crate::platform::osbytes::os_bytes(p.as_os_str())),
        },
    }
}

use crate::pathser::unhex;

fn repr_to_path(r: PathRepr) -> Option<PathBuf> {
    match r {
        PathRepr::Text(s) => Some(PathBuf::from(s)),
        PathRepr::Bytes { bytes_hex } => {
            crate::platform::osbytes::path_from_bytes(unhex(&bytes_hex)?)
        }
    }
}

fn to_repr(e: &MarkEntry) -> EntryRepr {
    EntryRepr {
        exe: path_to_repr(&e.exe),
        sha256: e.sha256.clone(),
        mark: e.mark,
        set_at: rfc3339(e.set_at),
        until: match &e.until {
            Until::Always => UntilRepr::Always,
            Until::Time(t) => UntilRepr::Time { at: rfc3339(*t) },
            Until::Boot(b) => UntilRepr::Boot { boot_id: b.clone() },
            Until::Session(s) => UntilRepr::Session { session: s.clone() },
        },
    }
}

fn from_repr(r: EntryRepr) -> Option<MarkEntry> {
    let exe = repr_to_path(r.exe)?;
    if !exe.is_absolute() || !is_sha256(&r.sha256) {
        return None;
    }
    let until = match r.until {
        UntilRepr::Always => Until::Always,
        UntilRepr::Time { at } => Until::Time(parse_rfc3339(&at)?),
        UntilRepr::Boot { boot_id } => Until::Boot(boot_id),
        UntilRepr::Session { session } => Until::Session(session),
    };
    Some(MarkEntry {
        exe,
        sha256: r.sha256,
        mark: r.mark,
        set_at: parse_rfc3339(&r.set_at).unwrap_or(SystemTime::UNIX_EPOCH),
        until,
    })
}

/// The file's bytes for `entries`.
pub fn render(entries: &[MarkEntry]) -> Vec<u8> {
    let f = FileRepr {
        schema: SCHEMA_VERSION,
        marks: entries.iter().map(to_repr).collect(),
    };
    // Plain strings and numbers only: serializing cannot fail.
    let mut out = serde_json::to_vec_pretty(&f).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Reads a marks file, taking over every readable entry whatever else is
/// wrong with it.
pub fn parse(bytes: &[u8]) -> Parsed {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Parsed {
            entries: Vec::new(),
            problem: Some(FileProblem::Empty),
        };
    }
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return Parsed {
            entries: salvage(bytes),
            problem: Some(FileProblem::NotJson),
        };
    };
    let schema = v.get("schema").and_then(Value::as_u64);
    let items = v.get("marks").and_then(Value::as_array);
    let mut entries = Vec::new();
    let mut bad = 0;
    for item in items.into_iter().flatten() {
        match serde_json::from_value::<EntryRepr>(item.clone())
            .ok()
            .and_then(from_repr)
        {
            Some(e) => entries.push(e),
            None => bad += 1,
        }
    }
    let problem = if schema != Some(u64::from(SCHEMA_VERSION)) || items.is_none() {
        Some(FileProblem::WrongSchema(schema))
    } else if bad > 0 {
        Some(FileProblem::BadEntries(bad))
    } else {
        None
    };
    Parsed { entries, problem }
}

/// Entries from a file that is not JSON any more (cut short, overwritten
/// in part): reads the `marks` list one entry at a time until it breaks.
fn salvage(bytes: &[u8]) -> Vec<MarkEntry> {
    let mut out = Vec::new();
    let Some(key) = find(bytes, b"\"marks\"") else {
        return out;
    };
    let Some(open) = bytes[key..].iter().position(|&b| b == b'[') else {
        return out;
    };
    let mut pos = key + open + 1;
    loop {
        while pos < bytes.len() && (bytes[pos].is_ascii_whitespace() || bytes[pos] == b',') {
            pos += 1;
        }
        if pos >= bytes.len() || bytes[pos] != b'{' {
            break;
        }
        let mut stream = serde_json::Deserializer::from_slice(&bytes[pos..]).into_iter::<Value>();
        let Some(Ok(v)) = stream.next() else { break };
        pos += stream.byte_offset();
        if let Some(e) = serde_json::from_value::<EntryRepr>(v)
            .ok()
            .and_then(from_repr)
        {
            out.push(e);
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn entry(exe: &str, mark: Mark) -> MarkEntry {
        MarkEntry {
            exe: PathBuf::from(exe),
            sha256: "a".repeat(64),
            mark,
            set_at: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_608_000),
            until: Until::Always,
        }
    }

    // Written with Unix paths and tools.
    #[cfg(unix)]
    #[test]
    fn render_then_parse_is_identity() {
        let es = vec![
            entry("/usr/bin/a", Mark::Trusted),
            MarkEntry {
                until: Until::Boot("b-1".into()),
                ..entry("/opt/気づき/b b", Mark::Blocked)
            },
            MarkEntry {
                until: Until::Time(SystemTime::UNIX_EPOCH),
                ..entry("/tmp/x\"y", Mark::Unknown)
            },
        ];
        let p = parse(&render(&es));
        assert_eq!(p.problem, None);
        assert_eq!(p.entries, es);
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_paths_survive_exactly() {
        use std::os::unix::ffi::OsStringExt;
        let raw = b"/tmp/ok\xff\xfe".to_vec();
        let mut e = entry("/x", Mark::Blocked);
        e.exe = PathBuf::from(std::ffi::OsString::from_vec(raw));
        let p = parse(&render(std::slice::from_ref(&e)));
        assert_eq!(p.entries, vec![e]);
    }

    // Written with Unix paths and tools.
    #[cfg(unix)]
    #[test]
    fn truncated_file_keeps_the_entries_before_the_cut() {
        let es: Vec<_> = (0..5)
            .map(|i| entry(&format!("/usr/bin/p{i}"), Mark::Trusted))
            .collect();
        let full = render(&es);
        // Cut inside the fourth entry.
        let cut = find(&full, b"/usr/bin/p3").unwrap();
        let p = parse(&full[..cut]);
        assert_eq!(p.problem, Some(FileProblem::NotJson));
        assert_eq!(p.entries, es[..3].to_vec());
    }

    // Written with Unix paths and tools.
    #[cfg(unix)]
    #[test]
    fn entries_with_bad_fields_are_counted_not_fatal() {
        let mut v: Value = serde_json::from_slice(&render(&[entry("/a", Mark::Trusted)])).unwrap();
        v["marks"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"exe": "relative", "sha256": "zz"}));
        let p = parse(&serde_json::to_vec(&v).unwrap());
        assert_eq!(p.problem, Some(FileProblem::BadEntries(1)));
        assert_eq!(p.entries.len(), 1);
    }

    #[test]
    fn other_schema_is_reported_with_its_version() {
        let p = parse(br#"{"schema": 7, "marks": []}"#);
        assert_eq!(p.problem, Some(FileProblem::WrongSchema(Some(7))));
        let p = parse(br#"[1, 2, 3]"#);
        assert_eq!(p.problem, Some(FileProblem::WrongSchema(None)));
        assert_eq!(parse(b"  \n").problem, Some(FileProblem::Empty));
    }
}
