//! The evidence copy: the running program's image, copied (only with the
//! user's consent) next to the report. Read through `/proc/PID/exe` on
//! Linux, so it works after the file was deleted. The copy is read-only,
//! has no execute bits and ends in `.evidence`, so a double-click cannot
//! run it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::identity::hex;

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("the program has no running process to copy from")]
    NotRunning,
    #[error("could not read the program's image ({source}): {path}")]
    Read { path: PathBuf, source: io::Error },
    #[error("could not write the evidence copy ({source}): {path}")]
    Write { path: PathBuf, source: io::Error },
}

/// A finished copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceCopy {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

/// A file name made safe for any file system: letters and digits of any
/// script, `-`, `_` and `.`; everything else becomes `_`; no leading dot;
/// at most `max` characters; never empty.
pub fn sanitize_name(name: &str, max: usize) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect();
    while s.starts_with('.') {
        s.remove(0);
    }
    if s.trim_matches('_').is_empty() {
        s = "program".into();
    }
    s
}

/// Copies `image` into `dir` as `<name>.<first 12 hex of its hash>.evidence`,
/// mode 0400, hashing as it copies. An identical copy already there is
/// reused.
pub fn copy_image(image: &Path, name: &str, dir: &Path) -> Result<EvidenceCopy, EvidenceError> {
    let read_err = |source| EvidenceError::Read {
        path: image.to_path_buf(),
        source,
    };
    let mut src = File::open(image).map_err(read_err)?;
    fs::create_dir_all(dir).map_err(|source| EvidenceError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let tmp = dir.join(format!(".evidence.tmp-{}", std::process::id()));
    let write_err = |source| EvidenceError::Write {
        path: tmp.clone(),
        source,
    };
    let _ = fs::remove_file(&tmp);
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut dst = opts.open(&tmp).map_err(write_err)?;
    let result = (|| -> Result<(String, u64), EvidenceError> {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = src.read(&mut buf).map_err(read_err)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            dst.write_all(&buf[..n]).map_err(write_err)?;
            size += n as u64;
        }
        dst.sync_all().map_err(write_err)?;
        Ok((hex(&h.finalize()), size))
    })();
    drop(dst);
    let (sha256, size) = match result {
        Ok(x) => x,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let prefix: String = sha256.chars().take(12).collect();
    let base = format!("{}.{prefix}", sanitize_name(name, 60));
    let mut path = dir.join(format!("{base}.evidence"));
    let mut n = 1;
    while path.exists() {
        if crate::identity::sha256_file(&path).ok().as_deref() == Some(sha256.as_str()) {
            let _ = fs::remove_file(&tmp);
            return Ok(EvidenceCopy { path, sha256, size });
        }
        path = dir.join(format!("{base}-{n}.evidence"));
        n += 1;
    }
    let finish = || -> io::Result<()> {
        let mut perms = fs::metadata(&tmp)?.permissions();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            perms.set_mode(0o400);
        }
        #[cfg(not(unix))]
        perms.set_readonly(true);
        fs::set_permissions(&tmp, perms)?;
        fs::rename(&tmp, &path)
    };
    if let Err(source) = finish() {
        let _ = fs::remove_file(&tmp);
        return Err(EvidenceError::Write { path, source });
    }
    Ok(EvidenceCopy { path, sha256, size })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe() {
        assert_eq!(sanitize_name("evil tool.exe", 40), "evil_tool.exe");
        assert_eq!(sanitize_name("../../etc/passwd", 40), "_.._etc_passwd");
        assert_eq!(sanitize_name(".hidden", 40), "hidden");
        assert_eq!(sanitize_name("<script>", 40), "_script_");
        assert_eq!(sanitize_name("\u{202E}", 40), "program");
        assert_eq!(sanitize_name("ツール", 40), "ツール");
        assert_eq!(sanitize_name("abcdef", 3), "abc");
    }

    #[cfg(unix)]
    #[test]
    fn copy_is_read_only_not_executable_and_hashed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("tool");
        fs::write(&src, b"#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o755)).unwrap();
        let out = dir.path().join("reports");
        let c = copy_image(&src, "tool", &out).unwrap();
        assert_eq!(c.sha256, crate::identity::sha256_file(&src).unwrap());
        assert_eq!(c.size, 18);
        let name = c.path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(name, format!("tool.{}.evidence", &c.sha256[..12]));
        let mode = fs::metadata(&c.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o400);
        // A second copy of the same image is the same file, not a duplicate.
        let again = copy_image(&src, "tool", &out).unwrap();
        assert_eq!(again.path, c.path);
        assert_eq!(fs::read_dir(&out).unwrap().count(), 1);
    }
}
