//! A tiny logger behind the `log` facade: technical detail (OS errors,
//! command output) goes to `kizuki.log` in the data folder, where a
//! helper can read it, instead of to a terminal a home user never sees.
//! The file is cut to its newest half when it passes [`MAX_BYTES`].

use crate::lock::MutexExt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The log's file name in the data folder.
pub const FILE_NAME: &str = "kizuki.log";
/// Above this size the older half of the log is dropped at start.
pub const MAX_BYTES: u64 = 1024 * 1024;

struct FileLogger {
    file: Mutex<File>,
}

impl log::Log for FileLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info && m.target().starts_with("kizuki")
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = time::OffsetDateTime::now_utc();
        let stamp = now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        // One line per record: detail that holds newlines stays one entry.
        let text = record.args().to_string().replace(['\n', '\r'], " ⏎ ");
        let mut f = self.file.locked();
        let _ = writeln!(f, "{stamp} {} {}: {text}", record.level(), record.target());
    }

    fn flush(&self) {
        let _ = self.file.locked().flush();
    }
}

/// The log file's path in `data`.
pub fn path_in(data: &Path) -> PathBuf {
    data.join(FILE_NAME)
}

/// Starts logging to `data/kizuki.log`. Fails (and nothing is logged)
/// when the folder cannot be written; a second call keeps the first
/// logger.
pub fn init(data: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(data)?;
    let path = path_in(data);
    trim(&path);
    let file = OpenOptions::new().create(true).append(true).open(&path)?;
    let logger = Box::new(FileLogger {
        file: Mutex::new(file),
    });
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    Ok(path)
}

/// The command line's logger: warnings and errors on stderr as
/// `kizuki: …`, the way the CLI says everything else. The window uses
/// [`init`] instead (a second logger is never installed).
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn && m.target().starts_with("kizuki")
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("kizuki: {}", record.args());
        }
    }

    fn flush(&self) {}
}

/// Sends warnings to stderr (the subcommands; not the window).
pub fn init_stderr() {
    if log::set_logger(&StderrLogger).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}

/// Keeps the newest half of a log that grew past [`MAX_BYTES`].
fn trim(path: &Path) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.len() <= MAX_BYTES {
        return;
    }
    if let Ok(bytes) = std::fs::read(path) {
        let half = &bytes[bytes.len() / 2..];
        let start = half.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
        let _ = std::fs::write(path, &half[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_big_log_keeps_its_newest_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_in(dir.path());
        let line = "x".repeat(99) + "\n";
        let mut text = line.repeat((MAX_BYTES / 100) as usize + 10);
        text.push_str("newest\n");
        std::fs::write(&p, &text).unwrap();
        trim(&p);
        let left = std::fs::read_to_string(&p).unwrap();
        assert!(left.len() < text.len() / 2 + 200);
        assert!(left.ends_with("newest\n"));
        assert!(left.starts_with('x'), "starts at a whole line");
    }
}
