//! The evidence copy: the running program's image, copied (only with the
//! user's consent) next to the report. Read through `/proc/PID/exe` on
//! Linux, so it works after the file was deleted. The copy is read-only,
//! has no execute bits and ends in `.evidence`, so a double-click cannot
//! run it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
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
    /// Larger than [`MAX_EVIDENCE_BYTES`]: no copy, but the hash of the
    /// whole image was still taken.
    #[error("{}", crate::i18n::tr_args("reportfile.evidence_too_big", &[
        ("size", &.size.to_string()), ("cap", &.cap.to_string()), ("sha256", .sha256)]))]
    TooBig { size: u64, cap: u64, sha256: String },
}

/// The largest program image copied as evidence (512 MiB, documented in
/// README.md and SECURITY.md). Larger ones are hashed, not copied.
pub const MAX_EVIDENCE_BYTES: u64 = 512 * 1024 * 1024;

/// Copy unit; an all-zero block is skipped with a seek, so holes stay holes.
const BLOCK: usize = 64 * 1024;

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
    let len = src.metadata().map_err(read_err)?.len();
    if len > MAX_EVIDENCE_BYTES {
        let sha256 = crate::identity::sha256_reader(&mut src).map_err(read_err)?;
        return Err(EvidenceError::TooBig {
            size: len,
            cap: MAX_EVIDENCE_BYTES,
            sha256,
        });
    }
    fs::create_dir_all(dir).map_err(|source| EvidenceError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let (tmp, mut dst) = create_temp(dir).map_err(|source| EvidenceError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let write_err = |source| EvidenceError::Write {
        path: tmp.clone(),
        source,
    };
    let result = (|| -> Result<(String, u64), EvidenceError> {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; BLOCK];
        let mut size = 0u64;
        loop {
            let n = read_block(&mut src, &mut buf).map_err(read_err)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            if buf[..n].iter().all(|b| *b == 0) {
                dst.seek(SeekFrom::Current(n as i64)).map_err(write_err)?;
            } else {
                dst.write_all(&buf[..n]).map_err(write_err)?;
            }
            size += n as u64;
            if size > MAX_EVIDENCE_BYTES {
                // Grew while copying: stop writing, finish the hash.
                loop {
                    let n = read_block(&mut src, &mut buf).map_err(read_err)?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                    size += n as u64;
                }
                return Err(EvidenceError::TooBig {
                    size,
                    cap: MAX_EVIDENCE_BYTES,
                    sha256: hex(&h.finalize()),
                });
            }
        }
        // A trailing hole: the length comes from set_len, not a write.
        dst.set_len(size).map_err(write_err)?;
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
        crate::platform::fs::owner_read_only(&mut perms);
        fs::set_permissions(&tmp, perms)?;
        fs::rename(&tmp, &path)
    };
    if let Err(source) = finish() {
        let _ = fs::remove_file(&tmp);
        return Err(EvidenceError::Write { path, source });
    }
    Ok(EvidenceCopy { path, sha256, size })
}

/// Reads until `buf` is full or the end, so blocks stay aligned and an
/// all-zero block is recognised whole.
fn read_block(src: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match src.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// `.evidence.tmp-<pid>[-n]`, created new (never through a planted link).
fn create_temp(dir: &Path) -> io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    let mut n = 0u32;
    loop {
        let tmp = dir.join(format!(".evidence.tmp-{pid}-{n}"));
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        crate::platform::fs::private_no_follow(&mut opts);
        match opts.open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 64 => n += 1,
            Err(e) => return Err(e),
        }
    }
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

    /// Issue 22: a 2 GB sparse program cost 2 GB. Now the holes stay holes
    /// (allocated blocks stay small) and the hash covers every byte.
    #[cfg(unix)]
    #[test]
    fn a_sparse_image_is_copied_sparse() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("sparse");
        let f = File::create(&src).unwrap();
        f.set_len(64 * 1024 * 1024).unwrap();
        (&f).write_all(b"MZ head").unwrap();
        drop(f);
        let c = copy_image(&src, "sparse", &dir.path().join("out")).unwrap();
        assert_eq!(c.size, 64 * 1024 * 1024);
        assert_eq!(c.sha256, crate::identity::sha256_file(&src).unwrap());
        let m = fs::metadata(&c.path).unwrap();
        assert_eq!(m.len(), 64 * 1024 * 1024);
        // st_blocks counts 512-byte units: far below the 131072 of a dense copy.
        assert!(m.blocks() < 1024, "copy is dense: {} blocks", m.blocks());
    }

    #[test]
    fn an_image_above_the_cap_is_hashed_not_copied() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("huge");
        File::create(&src)
            .unwrap()
            .set_len(MAX_EVIDENCE_BYTES + 1)
            .unwrap();
        let out = dir.path().join("out");
        let e = copy_image(&src, "huge", &out).unwrap_err();
        let EvidenceError::TooBig { sha256, size, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(*size, MAX_EVIDENCE_BYTES + 1);
        assert_eq!(sha256, &crate::identity::sha256_file(&src).unwrap());
        assert!(!out.exists(), "nothing written");
        crate::i18n::set_lang(crate::i18n::Lang::En);
        assert!(e.to_string().contains(sha256.as_str()), "{e}");
    }
}
