//! Executable identity: the SHA-256 of the image a process runs.
//!
//! The hash is read through the running image (`/proc/PID/exe` on Linux), so
//! it still works after the file was deleted. Results are cached in memory
//! by (device, inode, size, mtime, ctime) for the life of the process: a
//! monitor never re-hashes an unchanged file. Nothing is taken from disk:
//! `hash-cache.json` in the data folder could be written by any program of
//! the user (a replaced program would keep its old hash and trust mark), so
//! every hash that marks, the baseline and reports use is computed in this
//! run. An old `hash-cache.json` is neither read nor written any more.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use sha2::{Digest, Sha256};

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

    fn from_metadata(m: &std::fs::Metadata) -> FileStamp {
        let (dev, ino) = crate::platform::fs::dev_ino(m);
        FileStamp {
            dev,
            ino,
            size: m.len(),
            mtime_ns: crate::platform::fs::mtime_ns(m),
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
    /// Hashes `files` ahead of the [`ExeHasher::hash`] calls that will ask
    /// for them (many at once can be read in parallel); a no-op where
    /// nothing is cached.
    fn prefetch(&mut self, files: &[PathBuf]) {
        let _ = files;
    }
}

/// What the in-memory cache is keyed by: the stamp plus the change time,
/// which no program can set back (`touch` can forge an mtime, not a ctime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct CacheKey {
    stamp: FileStamp,
    ctime_ns: i128,
}

impl CacheKey {
    fn of(m: &std::fs::Metadata) -> CacheKey {
        CacheKey {
            stamp: FileStamp::from_metadata(m),
            ctime_ns: crate::platform::fs::ctime_ns(m),
        }
    }
}

/// Hashes real files, remembering results in memory for this run only.
#[derive(Debug, Default)]
pub struct NativeHasher {
    cache: HashMap<CacheKey, String>,
    /// A file being hashed on its own thread since start (kizuki's own
    /// image, which every sample lists), taken in at the next ask.
    ahead: Option<std::thread::JoinHandle<Option<(CacheKey, String)>>>,
}

/// Hashes the file at `path`, tied to the stamp of exactly the bytes read.
fn hash_stamped(path: &Path) -> Option<(CacheKey, String)> {
    let mut f = File::open(path).ok()?;
    let key = CacheKey::of(&f.metadata().ok()?);
    let h = sha256_reader(&mut f).ok()?;
    (f.metadata().ok().map(|m| CacheKey::of(&m)) == Some(key)).then_some((key, h))
}

const CACHE_LIMIT: usize = 4096;

impl NativeHasher {
    /// A hasher with an empty in-memory cache. `_store` (the old
    /// `hash-cache.json`) is not read: a hash from disk is never trusted.
    pub fn new(_store: Option<PathBuf>) -> Self {
        NativeHasher::default()
    }

    /// Starts hashing kizuki's own running image on a thread now, while
    /// the first sample reads the process and socket tables: every sample
    /// lists kizuki itself, and its image is one of the largest files a
    /// sample hashes.
    pub fn with_own_image_ahead(mut self) -> Self {
        let Ok(exe) = std::env::current_exe() else {
            return self;
        };
        let image = image_path(std::process::id(), &exe);
        self.ahead = std::thread::Builder::new()
            .name("kizuki-hash".into())
            .spawn(move || hash_stamped(&image))
            .ok();
        self
    }

    /// Takes in the hash started ahead, waiting for it if it still runs.
    fn take_ahead(&mut self) {
        if let Some((key, h)) = self.ahead.take().and_then(|j| j.join().ok()).flatten() {
            self.cache.insert(key, h);
        }
    }

    /// Hash of the file at `path` (following links), cached for this run.
    /// The stamp is taken from the open file before and after reading, so
    /// the cached hash belongs to exactly the bytes read.
    pub fn hash_path(&mut self, path: &Path) -> Option<String> {
        self.take_ahead();
        let mut f = File::open(path).ok()?;
        let key = CacheKey::of(&f.metadata().ok()?);
        if let Some(h) = self.cache.get(&key) {
            return Some(h.clone());
        }
        let h = sha256_reader(&mut f).ok()?;
        // Did the file change while we read it? Then the hash is not tied
        // to the stamp we took; do not cache it.
        if f.metadata().ok().map(|m| CacheKey::of(&m)) == Some(key) {
            if self.cache.len() >= CACHE_LIMIT {
                self.cache.clear();
            }
            self.cache.insert(key, h.clone());
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

    /// Hashes the files not yet cached on up to [`PREFETCH_THREADS`]
    /// threads, largest first, each file once however many processes run
    /// it. Results enter the cache under the same rule as
    /// [`NativeHasher::hash_path`]: only when the file did not change
    /// while it was read.
    fn prefetch(&mut self, files: &[PathBuf]) {
        self.take_ahead();
        let mut todo: HashMap<CacheKey, (&Path, u64)> = HashMap::new();
        for path in files {
            let Ok(m) = std::fs::metadata(path) else {
                continue;
            };
            let key = CacheKey::of(&m);
            if !self.cache.contains_key(&key) {
                todo.entry(key).or_insert((path.as_path(), m.len()));
            }
        }
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(PREFETCH_THREADS)
            .min(todo.len());
        if threads < 2 {
            return; // Nothing gained: the hash calls read them in turn.
        }
        let mut jobs: Vec<(CacheKey, &Path, u64)> =
            todo.into_iter().map(|(k, (p, n))| (k, p, n)).collect();
        jobs.sort_by_key(|(_, _, n)| std::cmp::Reverse(*n));
        // Largest first onto the least loaded thread.
        let mut shares: Vec<(u64, Vec<(CacheKey, &Path)>)> =
            (0..threads).map(|_| (0, Vec::new())).collect();
        for (key, path, n) in jobs {
            if let Some(s) = shares.iter_mut().min_by_key(|(load, _)| *load) {
                s.0 += n;
                s.1.push((key, path));
            }
        }
        let done: Vec<(CacheKey, String)> = std::thread::scope(|scope| {
            let handles: Vec<_> = shares
                .into_iter()
                .map(|(_, share)| {
                    scope.spawn(move || {
                        share
                            .into_iter()
                            .filter_map(|(key, path)| {
                                // The same file as stamped, before and after reading.
                                let mut f = File::open(path).ok()?;
                                let stamp = |f: &File| f.metadata().ok().map(|m| CacheKey::of(&m));
                                if stamp(&f) != Some(key) {
                                    return None;
                                }
                                let h = sha256_reader(&mut f).ok()?;
                                (stamp(&f) == Some(key)).then_some((key, h))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().ok())
                .flatten()
                .collect()
        });
        for (key, h) in done {
            if self.cache.len() >= CACHE_LIMIT {
                self.cache.clear();
            }
            self.cache.insert(key, h);
        }
    }
}

/// At most this many threads hash ahead (a first scan of a desktop).
const PREFETCH_THREADS: usize = 4;

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

    /// Hashing ahead on several threads gives the same hashes as reading
    /// each file in turn, once per file however often it is named.
    #[test]
    fn prefetched_hashes_match_and_fill_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = (0..5)
            .map(|i| {
                let p = dir.path().join(format!("f{i}"));
                std::fs::write(&p, vec![i as u8; 1000 * (i + 1)]).unwrap();
                p
            })
            .collect();
        let mut named = files.clone();
        named.push(files[0].clone());
        named.push(dir.path().join("missing"));
        let mut h = NativeHasher::new(None);
        h.prefetch(&named);
        if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
            assert_eq!(h.cache.len(), files.len());
        }
        for f in &files {
            assert_eq!(h.hash_file(f), Some(sha256_file(f).unwrap()));
        }
        assert_eq!(h.cache.len(), files.len());
    }

    #[test]
    fn cache_is_used_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tool");
        std::fs::write(&f, b"abc").unwrap();
        let mut h = NativeHasher::new(None);
        let first = h.hash_path(&f).unwrap();
        assert_eq!(first, sha256_bytes(b"abc"));
        // Poison the in-memory entry to prove the file is not read again
        // while its stamp is unchanged.
        let key = *h.cache.keys().next().unwrap();
        h.cache.insert(key, "cached".into());
        assert_eq!(h.hash_path(&f).unwrap(), "cached");
        // Rewriting the file changes size: hashed anew.
        std::fs::write(&f, b"abcd").unwrap();
        assert_eq!(h.hash_path(&f).unwrap(), sha256_bytes(b"abcd"));
    }

    /// The reproduction of issue 22: a replaced program with a forged
    /// cache line kept its old hash. The file on disk is never read now.
    #[test]
    fn a_poisoned_cache_file_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tool");
        std::fs::write(&f, b"evil").unwrap();
        let stamp = FileStamp::of(&f).unwrap();
        let store = dir.path().join("hash-cache.json");
        let forged = serde_json::json!({"version": 1, "entries": [[stamp, sha256_bytes(b"good")]]});
        std::fs::write(&store, forged.to_string()).unwrap();
        let mut h = NativeHasher::new(Some(store.clone()));
        assert_eq!(h.hash_path(&f).unwrap(), sha256_bytes(b"evil"));
        h.save();
        assert_eq!(
            std::fs::read_to_string(&store).unwrap(),
            forged.to_string(),
            "the old file is left alone"
        );
    }

    /// Same size and a forged mtime (`touch -d`): the ctime still differs.
    #[cfg(unix)]
    #[test]
    fn a_same_size_rewrite_with_a_forged_mtime_is_hashed_anew() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tool");
        std::fs::write(&f, b"good").unwrap();
        let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
        let mut h = NativeHasher::new(None);
        assert_eq!(h.hash_path(&f).unwrap(), sha256_bytes(b"good"));
        // ctime has nanosecond resolution here but may not tick between
        // two writes on a coarse clock: wait for it to move.
        let before = std::fs::metadata(&f).unwrap();
        loop {
            std::fs::write(&f, b"evil").unwrap();
            std::fs::File::options()
                .write(true)
                .open(&f)
                .unwrap()
                .set_modified(mtime)
                .unwrap();
            if crate::platform::fs::ctime_ns(&std::fs::metadata(&f).unwrap())
                != crate::platform::fs::ctime_ns(&before)
            {
                break;
            }
        }
        assert_eq!(FileStamp::of(&f).unwrap().size, 4);
        assert_eq!(h.hash_path(&f).unwrap(), sha256_bytes(b"evil"));
    }
}
