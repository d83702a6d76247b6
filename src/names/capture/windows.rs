//! Windows: names from the DNS client cache, which Windows keeps for every
//! program and lets an ordinary user list (`Get-DnsClientCache`). Reading
//! it sends nothing to the network. PowerShell is started by its full path
//! in the system folder, with a fixed command and no user data, once a
//! minute: it costs a few hundred milliseconds of CPU each time.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::CaptureError;
use crate::clock::Clock;
use crate::names::cache::NameCache;

const EVERY: Duration = Duration::from_secs(60);
const STEP: Duration = Duration::from_millis(500);
const SCRIPT: &str = "Get-DnsClientCache | Select-Object Entry,Name,Type,Status,Data \
                      | ConvertTo-Json -Compress";
/// Keeps PowerShell from flashing a console window.
const CREATE_NO_WINDOW: u32 = 0x0800_0000;
/// A listing longer than this is cut (and then fails to parse: skipped).
const MAX_OUTPUT: u64 = 16 << 20;

pub struct Capture {
    stop: Arc<AtomicBool>,
    _thread: JoinHandle<()>,
}

impl Capture {
    pub fn start(cache: Arc<NameCache>, clock: Arc<dyn Clock>) -> Result<Capture, CaptureError> {
        let shell = powershell();
        if !shell.is_file() {
            return Err(CaptureError::Unsupported);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kizuki-names".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    match list(&shell) {
                        Ok(out) => {
                            let now = clock.now();
                            for (ip, name) in crate::names::dnscache::parse(&out) {
                                cache.record_dns(ip, &name, None, now);
                            }
                            cache.prune(now);
                        }
                        Err(e) => log::info!("DNS cache not read: {e}"),
                    }
                    let until = Instant::now() + EVERY;
                    while Instant::now() < until && !flag.load(Ordering::Relaxed) {
                        std::thread::sleep(STEP);
                    }
                }
            })?;
        Ok(Capture {
            stop,
            _thread: thread,
        })
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// `%SystemRoot%\System32\WindowsPowerShell\v1.0\powershell.exe`, never
/// looked up on PATH.
fn powershell() -> PathBuf {
    let root = std::env::var_os("SystemRoot").unwrap_or_else(|| "C:\\Windows".into());
    PathBuf::from(root)
        .join("System32")
        .join("WindowsPowerShell")
        .join("v1.0")
        .join("powershell.exe")
}

fn list(shell: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::windows::process::CommandExt;
    let mut child = Command::new(shell)
        .args(["-NoProfile", "-NonInteractive", "-Command", SCRIPT])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .creation_flags(CREATE_NO_WINDOW)
        .spawn()?;
    let mut out = Vec::new();
    if let Some(o) = child.stdout.take() {
        o.take(MAX_OUTPUT).read_to_end(&mut out)?;
    }
    // Done, or cut at the cap (it would block writing the rest).
    let _ = child.kill();
    let _ = child.wait();
    Ok(out)
}
