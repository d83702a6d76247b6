//! The seam between kizuki and the operating system. Only this module (and
//! its children) talks to sysinfo and netstat2; everything above works on the
//! plain [`RawSample`] it returns, so it can be driven by [`FakeProbe`].

mod fake;
#[cfg(target_os = "linux")]
mod linux;
mod native;
pub mod script;
#[cfg(target_os = "linux")]
mod tcpinfo;

pub use fake::FakeProbe;
pub use native::NativeProbe;

use crate::model::{CaptureMode, RawSample};

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("could not read the socket table: {0}")]
    Sockets(String),
    #[error("could not list processes: {0}")]
    Processes(String),
}

/// How socket owners are found (Linux; elsewhere the OS reports owners).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Attribution {
    /// Read every process's descriptors on every sample (what `ss -p` does).
    Full,
    /// Remember inode → PID and read descriptors only of new processes, and
    /// of the others only when a socket appears whose owner is unknown.
    #[default]
    Incremental,
}

/// Something that can take one picture of processes and sockets.
pub trait Probe: Send {
    fn sample(&mut self) -> Result<RawSample, ProbeError>;

    /// How this probe sees connections (event capture overrides it).
    fn capture_mode(&self) -> CaptureMode {
        CaptureMode::Polling
    }

    /// Called by event capture before each sample: the processes it saw
    /// open a socket or start a program since the last one. A probe may
    /// then look at the others' descriptors less often (nothing new was
    /// seen of them); without this call it looks at every one each time.
    fn note_active(&mut self, _pids: std::collections::HashSet<u32>) {}
}

impl Probe for Box<dyn Probe> {
    fn sample(&mut self) -> Result<RawSample, ProbeError> {
        (**self).sample()
    }

    fn capture_mode(&self) -> CaptureMode {
        (**self).capture_mode()
    }

    fn note_active(&mut self, pids: std::collections::HashSet<u32>) {
        (**self).note_active(pids)
    }
}

/// The executable a running process runs (without the kernel's
/// " (deleted)" suffix) and whether that file is gone; `None` when the
/// process does not exist or cannot be seen.
pub fn exe_of_pid(pid: u32) -> Option<(std::path::PathBuf, bool)> {
    #[cfg(target_os = "linux")]
    {
        let (exe, deleted) = linux::exe_of(pid);
        exe.map(|e| (e, deleted))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let sample = NativeProbe::new().ok()?.sample().ok()?;
        let p = sample.processes.into_iter().find(|p| p.pid == pid)?;
        p.exe.map(|e| (e, p.exe_deleted))
    }
}

/// (device, inode) of the file `path` leads to, following links; `None`
/// where the OS gives no inode (Windows) or the file cannot be read.
pub fn file_stamp(path: &std::path::Path) -> Option<(u64, u64)> {
    #[cfg(target_os = "linux")]
    {
        linux::stamp_of(path)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        None
    }
}

/// The script a running interpreter process runs, when it runs one: for a
/// PID, that script is the program (marks, reports).
pub fn script_of_pid(pid: u32) -> Option<crate::model::ScriptRun> {
    #[cfg(target_os = "linux")]
    {
        let (exe, _) = linux::exe_of(pid);
        linux::script_of(pid, &exe?, &linux::cmdline_of(pid)?)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// When the machine booted, in seconds since the Unix epoch (what process
/// start times count from); `None` where unknown.
pub fn boot_time() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        linux::boot_time()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// True when kizuki runs with administrator rights (root on Unix) and so
/// can see every process's details.
pub fn running_as_admin() -> bool {
    #[cfg(target_os = "linux")]
    {
        linux::effective_uid() == Some(0)
    }
    #[cfg(windows)]
    {
        crate::platform::win::is_elevated()
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        false
    }
}
