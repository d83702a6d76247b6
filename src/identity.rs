//! Executable identity: the SHA-256 of the image a process runs.
//!
//! The hash is read through the running image (`/proc/PID/exe` on Linux), so
//! it still works after the file was deleted. Results are cached by
//! (device, inode, size, mtime): a scan never re-hashes an unchanged file,
//! and the cache is kept in the data folder between runs.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fsutil;

/// What identifies one version of a file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileStamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
}

impl FileStamp {
    pub fn of(path: &Path) -> io::Result<FileStamp> {
        let m = std::fs::metadata(path)?;
        Ok(Self::from_metadata(&m))
    }

    #[cfg(unix)]
    fn from_metadata(m: &std::fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        }
    }

    #[cfg(not(unix))]
    fn from_metadata(m: &std::fs::Metadata) -> FileStamp {
        let mtime_ns = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        FileStamp {
            dev: 0,
            ino: 0,
            size: m.len(),
            mtime_ns,
        }
    }
}

/// Lowercase hex SHA-256 of everything `r` yields.
pub fn sha256_reader(mut r: impl Read) -> io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

pub fn sha256_file(path: &Path) -> io::Result<String> {
    sha256_reader(File::open(path)?)
}

pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Where to read the image of a running process from.
pub fn image_path(pid: u32, exe: &Path) -> PathBuf {
    if cfg!(target_os = "linux") {
        PathBuf::from(format!("/proc/{pid}/exe"))
    } else {
        let _ = pid;
        exe.to_path_buf()
    }
}

/// Gives the hash of a running process's executable.
pub trait ExeHasher: Send {
    /// `None` when the image cannot be read (another user's process).
    fn hash(&mut self, pid: u32, exe: &Path) -> Option<String>;
    /// SHA-256 of a file that is not a process image (a script an
    /// interpreter runs); `None` where it cannot be read.
    fn hash_file(&mut self, path: &Path) -> Option<String> {
        let _ = path;
        None
    }
    /// Persists what was learned; a no-op where nothing is kept.
    fn save(&mut self) {}
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    entries: Vec<(FileStamp, String)>,
}

/// Hashes real files, remembering results by [`FileStamp`].
#[derive(Debug, Default)]
pub struct NativeHasher {
    cache: HashMap<FileStamp, String>,
    store: Option<PathBuf>,
    dirty: bool,
}

const CACHE_VERSION: u32 = 1;
const CACHE_LIMIT: usize = 4096;

impl NativeHasher {
    /// A cache kept in memory and, when `store` is given, in that file.
    /// An unreadable cache file is simply rebuilt: it holds nothing the
    /// user made.
    pub fn new(store: Option<PathBuf>) -> Self {
        let mut cache = HashMap::new();
        if let Some(p) = &store
            && let Ok(bytes) = std::fs::read(p)
            && let Ok(f) = serde_json::from_slice::<CacheFile>(&bytes)
            && f.version == CACHE_VERSION
        {
            cache.extend(f.entries);
        }
        NativeHasher {
            cache,
            store,
            dirty: false,
        }
    }

    /// Hash of the file at `path` (following links), cached.
    pub fn hash_path(&mut self, path: &Path) -> Option<String> {
        let stamp = FileStamp::of(path).ok()?;
        if let Some(h) = self.cache.get(&stamp) {
            return Some(h.clone());
        }
        let h = sha256_file(path).ok()?;
        // Did the file change while we read it? Then the hash is not tied
        // to the stamp we took; do not cache it.
        if FileStamp::of(path).ok() == Some(stamp) {
            if self.cache.len() >= CACHE_LIMIT {
                self.cache.clear();
            }
            self.cache.insert(stamp, h.clone());
            self.dirty = true;
        }
        Some(h)
    }
}

impl ExeHasher for NativeHasher {
    fn hash(&mut self, pid: u32, exe: &Path) -> Option<String> {
        self.hash_path(&image_path(pid, exe))
    }

    fn hash_file(&mut self, path: &Path) -> Option<String> {
        self.hash_path(path)
    }

    fn save(&mut self) {
        let Some(p) = &self.store else { return };
        if !self.dirty {
            return;
        }
        let f = CacheFile {
            version: CACHE_VERSION,
            entries: self.cache.iter().map(|(k, v)| (*k, v.clone())).collect(),
        };
        if let Ok(bytes) = serde_json::to_vec(&f)
            && fsutil::write_atomic(p, &bytes).is_ok()
        {
            self.dirty = false;
        }
    }
}

/// Hashes from a table, for tests above the OS seam.
#[derive(Debug, Default, Clone)]
pub struct FakeHasher {
    pub by_exe: HashMap<PathBuf, String>,
}

impl FakeHasher {
    pub fn with(pairs: &[(&str, &str)]) -> Self {
        FakeHasher {
            by_exe: pairs
                .iter()
                .map(|(p, h)| (PathBuf::from(p), h.to_string()))
                .collect(),
        }
    }
}

impl ExeHasher for FakeHasher {
    fn hash(&mut self, _pid: u32, exe: &Path) -> Option<String> {
        self.by_exe
            .get(exe)
            .cloned()
            .or_else(|| Some(sha256_bytes(exe.to_string_lossy().as_bytes())))
    }

    fn hash_file(&mut self, path: &Path) -> Option<String> {
        self.hash(0, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        assert_eq!(
            sha256_bytes(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn cache_is_used_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tool");
        std::fs::write(&f, b"abc").unwrap();
        let store = dir.path().join("hash-cache.json");
        let mut h = NativeHasher::new(Some(store.clone()));
        let first = h.hash_path(&f).unwrap();
        assert_eq!(first, sha256_bytes(b"abc"));
        h.save();
        // A fresh hasher reads the stored cache: poison the entry to prove
        // the file is not read again while its stamp is unchanged.
        let mut h2 = NativeHasher::new(Some(store));
        let stamp = FileStamp::of(&f).unwrap();
        h2.cache.insert(stamp, "cached".into());
        assert_eq!(h2.hash_path(&f).unwrap(), "cached");
        // Rewriting the file changes size: hashed anew.
        std::fs::write(&f, b"abcd").unwrap();
        assert_eq!(h2.hash_path(&f).unwrap(), sha256_bytes(b"abcd"));
    }

    #[test]
    fn corrupt_cache_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("hash-cache.json");
        std::fs::write(&store, b"{not json").unwrap();
        let h = NativeHasher::new(Some(store));
        assert!(h.cache.is_empty());
    }
}
