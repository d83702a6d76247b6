//! Thin safe wrappers over the Win32 calls kizuki needs. Every `unsafe`
//! block here passes only buffers it owns and closes every handle it
//! opens (through [`Handle`]).
#![allow(unsafe_code)]

use std::ffi::OsStr;
use std::io;
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ALREADY_EXISTS, ERROR_CANCELLED, ERROR_INVALID_PARAMETER, HANDLE,
    INVALID_HANDLE_VALUE, WAIT_OBJECT_0,
};
use windows_sys::Win32::NetworkManagement::IpHelper::{
    MIB_TCP_STATE_DELETE_TCB, MIB_TCPROW_LH, MIB_TCPROW_LH_0, SetTcpEntry,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, TOKEN_ELEVATION, TOKEN_QUERY, TokenElevation,
};
use windows_sys::Win32::System::Console::{FreeConsole, GetConsoleProcessList};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::SystemInformation::GetSystemDirectoryW;
use windows_sys::Win32::System::Threading::{
    CreateEventW, GetCurrentProcess, GetExitCodeProcess, INFINITE, OpenProcess, OpenProcessToken,
    OpenThread, PROCESS_TERMINATE, ResumeThread, SetEvent, SuspendThread, THREAD_SUSPEND_RESUME,
    TerminateProcess, WaitForSingleObject,
};
use windows_sys::Win32::UI::Shell::{
    SEE_MASK_NOASYNC, SEE_MASK_NOCLOSEPROCESS, SHELLEXECUTEINFOW, ShellExecuteExW,
};
use windows_sys::Win32::UI::WindowsAndMessaging::{
    DispatchMessageW, MSG, MsgWaitForMultipleObjects, PM_REMOVE, PeekMessageW, QS_ALLINPUT,
    SW_HIDE, TranslateMessage,
};

/// An owned kernel handle, closed on drop.
struct Handle(HANDLE);

impl Handle {
    fn open(raw: HANDLE) -> io::Result<Handle> {
        if raw.is_null() || raw == INVALID_HANDLE_VALUE {
            Err(io::Error::last_os_error())
        } else {
            Ok(Handle(raw))
        }
    }
}

// SAFETY: kernel handles may be used and closed from any thread.
unsafe impl Send for Handle {}
// SAFETY: as above; the calls made through a shared handle (SetEvent,
// WaitForSingleObject) are thread-safe.
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle was returned open by the OS and is closed once.
        unsafe { CloseHandle(self.0) };
    }
}

fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().chain(std::iter::once(0)).collect()
}

/// True when this process runs elevated (an administrator past UAC).
pub fn is_elevated() -> bool {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo-handle of the current process needs no closing;
    // `token` receives a new handle that `Handle` closes.
    let opened = unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) };
    if opened == 0 {
        return false;
    }
    let Ok(token) = Handle::open(token) else {
        return false;
    };
    let mut elevation = TOKEN_ELEVATION { TokenIsElevated: 0 };
    let mut len = 0u32;
    // SAFETY: the buffer is a TOKEN_ELEVATION of the size passed.
    let ok = unsafe {
        GetTokenInformation(
            token.0,
            TokenElevation,
            (&mut elevation as *mut TOKEN_ELEVATION).cast(),
            std::mem::size_of::<TOKEN_ELEVATION>() as u32,
            &mut len,
        )
    };
    ok != 0 && elevation.TokenIsElevated != 0
}

/// What happened to a process kizuki acted on.
#[derive(Debug)]
pub enum Acted {
    Done,
    /// The process no longer exists.
    Gone,
}

/// Suspends (or resumes) every thread of `pid`. Windows has no documented
/// "stop this process" call, so each thread is suspended in turn; a
/// thread that ends meanwhile is simply skipped.
pub fn set_threads_suspended(pid: u32, suspended: bool) -> io::Result<Acted> {
    // SAFETY: plain call; the returned handle is owned by `Handle`.
    let snap = Handle::open(unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) })?;
    let mut entry: THREADENTRY32 = THREADENTRY32 {
        dwSize: std::mem::size_of::<THREADENTRY32>() as u32,
        cntUsage: 0,
        th32ThreadID: 0,
        th32OwnerProcessID: 0,
        tpBasePri: 0,
        tpDeltaPri: 0,
        dwFlags: 0,
    };
    let mut seen = 0usize;
    let mut acted = 0usize;
    let mut last_err = None;
    // SAFETY: `entry` is a THREADENTRY32 with dwSize set, as required.
    let mut more = unsafe { Thread32First(snap.0, &mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == pid {
            seen += 1;
            // SAFETY: plain call; the handle is owned by `Handle`.
            match Handle::open(unsafe { OpenThread(THREAD_SUSPEND_RESUME, 0, entry.th32ThreadID) })
            {
                Ok(thread) => {
                    // SAFETY: a thread handle opened with THREAD_SUSPEND_RESUME.
                    let r = unsafe {
                        if suspended {
                            SuspendThread(thread.0)
                        } else {
                            ResumeThread(thread.0)
                        }
                    };
                    if r == u32::MAX {
                        last_err = Some(io::Error::last_os_error());
                    } else {
                        acted += 1;
                    }
                }
                Err(e) => last_err = Some(e),
            }
        }
        // SAFETY: as for Thread32First.
        more = unsafe { Thread32Next(snap.0, &mut entry) } != 0;
    }
    match (seen, acted, last_err) {
        (0, _, _) => Ok(Acted::Gone),
        (_, 0, Some(e)) => Err(e),
        _ => Ok(Acted::Done),
    }
}

/// Ends `pid` at once (exit code 1).
pub fn terminate(pid: u32) -> io::Result<Acted> {
    // SAFETY: plain call; the handle is owned by `Handle`.
    let process = match Handle::open(unsafe { OpenProcess(PROCESS_TERMINATE, 0, pid) }) {
        Ok(h) => h,
        Err(e) if e.raw_os_error() == Some(ERROR_INVALID_PARAMETER as i32) => {
            return Ok(Acted::Gone);
        }
        Err(e) => return Err(e),
    };
    // SAFETY: a process handle opened with PROCESS_TERMINATE.
    if unsafe { TerminateProcess(process.0, 1) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Acted::Done)
}

/// The answer of a UAC elevation request.
#[derive(Debug, PartialEq, Eq)]
pub enum RunAs {
    /// The elevated program ran and exited with this code.
    Exited(u32),
    /// The user said no in the UAC prompt.
    Declined,
}

/// Runs `exe` with `params` (already quoted, see [`super::cmdline`]) as
/// administrator through the UAC prompt, hidden, and waits for it.
pub fn run_as_admin(exe: &Path, params: &str) -> io::Result<RunAs> {
    let verb = wide(OsStr::new("runas"));
    let file = wide(exe.as_os_str());
    let params = wide(OsStr::new(params));
    // SAFETY: SHELLEXECUTEINFOW is a plain C struct; all-zero is its
    // documented empty value.
    let mut info: SHELLEXECUTEINFOW = unsafe { std::mem::zeroed() };
    info.cbSize = std::mem::size_of::<SHELLEXECUTEINFOW>() as u32;
    info.fMask = SEE_MASK_NOCLOSEPROCESS | SEE_MASK_NOASYNC;
    info.lpVerb = verb.as_ptr();
    info.lpFile = file.as_ptr();
    info.lpParameters = params.as_ptr();
    info.nShow = SW_HIDE;
    // SAFETY: the strings outlive the call; `info` is fully initialised.
    if unsafe { ShellExecuteExW(&mut info) } == 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(ERROR_CANCELLED as i32) {
            return Ok(RunAs::Declined);
        }
        return Err(e);
    }
    let process = Handle::open(info.hProcess)?;
    // SAFETY: a process handle we own; waiting and reading its exit code.
    unsafe { WaitForSingleObject(process.0, INFINITE) };
    let mut code = 0u32;
    // SAFETY: as above; `code` is a valid out pointer.
    if unsafe { GetExitCodeProcess(process.0, &mut code) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(RunAs::Exited(code))
}

/// Resets the IPv4 TCP connection `row` (needs administrator rights).
pub fn cut_tcp(row: &super::tcp::TcpRow) -> io::Result<()> {
    let entry = MIB_TCPROW_LH {
        Anonymous: MIB_TCPROW_LH_0 {
            State: MIB_TCP_STATE_DELETE_TCB,
        },
        dwLocalAddr: row.local_addr,
        dwLocalPort: row.local_port,
        dwRemoteAddr: row.remote_addr,
        dwRemotePort: row.remote_port,
    };
    // SAFETY: a fully initialised row passed by pointer for the call only.
    match unsafe { SetTcpEntry(&entry) } {
        0 => Ok(()),
        code => Err(io::Error::from_raw_os_error(code as i32)),
    }
}

/// The full path of a tool in the Windows system folder (`netsh.exe`), so
/// a same-named program in the current folder or on PATH is never run.
pub fn system_tool(name: &str) -> PathBuf {
    let mut buf = vec![0u16; 260];
    // SAFETY: the buffer length passed is the buffer's length.
    let n = unsafe { GetSystemDirectoryW(buf.as_mut_ptr(), buf.len() as u32) } as usize;
    let dir = if n == 0 || n >= buf.len() {
        PathBuf::from(r"C:\Windows\System32")
    } else {
        PathBuf::from(std::ffi::OsString::from_wide(&buf[..n]))
    };
    dir.join(name)
}

/// Runs the window messages of this thread (the tray's hidden window
/// needs them), waiting at most `timeout` for one to arrive.
pub fn pump_messages(timeout: Duration) {
    let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX - 1);
    // SAFETY: no handles passed; waits on this thread's message queue.
    unsafe { MsgWaitForMultipleObjects(0, std::ptr::null(), 0, ms, QS_ALLINPUT) };
    // SAFETY: MSG is a plain C struct that PeekMessageW fills in.
    let mut msg: MSG = unsafe { std::mem::zeroed() };
    // SAFETY: `msg` is valid for PeekMessageW/TranslateMessage/DispatchMessageW.
    while unsafe { PeekMessageW(&mut msg, std::ptr::null_mut(), 0, 0, PM_REMOVE) } != 0 {
        unsafe {
            TranslateMessage(&msg);
            DispatchMessageW(&msg);
        }
    }
}

/// Started from Explorer, a console program gets a console window of its
/// own; the window app lets it go. Started from a terminal, the console
/// is shared and kept.
pub fn detach_own_console() {
    let mut pids = [0u32; 2];
    // SAFETY: the buffer length passed is the buffer's length.
    let n = unsafe { GetConsoleProcessList(pids.as_mut_ptr(), pids.len() as u32) };
    if n == 1 {
        // SAFETY: plain call.
        unsafe { FreeConsole() };
    }
}

/// A named auto-reset event of this login session: how a second kizuki
/// asks the first to show its window.
pub struct NamedEvent(Handle);

impl NamedEvent {
    /// Creates the event `name`, or opens it when another process made it
    /// first (then the flag is true).
    pub fn create(name: &str) -> io::Result<(NamedEvent, bool)> {
        let name = wide(OsStr::new(name));
        // SAFETY: default security, auto-reset, unsignalled; `name` is
        // NUL-terminated and outlives the call.
        let raw = unsafe { CreateEventW(std::ptr::null(), 0, 0, name.as_ptr()) };
        let existed =
            io::Error::last_os_error().raw_os_error() == Some(ERROR_ALREADY_EXISTS as i32);
        Ok((NamedEvent(Handle::open(raw)?), existed))
    }

    pub fn set(&self) -> io::Result<()> {
        // SAFETY: an event handle we own.
        if unsafe { SetEvent(self.0.0) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits until the event is set.
    pub fn wait(&self) -> io::Result<()> {
        // SAFETY: an event handle we own.
        if unsafe { WaitForSingleObject(self.0.0, INFINITE) } != WAIT_OBJECT_0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// These run on Windows (in CI under Wine): they drive the real calls.
#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// A child that waits for input forever: `cmd.exe` with a pipe as stdin.
    fn waiting_child() -> std::process::Child {
        Command::new(system_tool("cmd.exe"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    #[test]
    fn a_real_child_is_suspended_resumed_and_ended_then_gone() {
        let mut child = waiting_child();
        let pid = child.id();
        assert!(matches!(set_threads_suspended(pid, true), Ok(Acted::Done)));
        assert!(matches!(set_threads_suspended(pid, false), Ok(Acted::Done)));
        assert!(matches!(terminate(pid), Ok(Acted::Done)));
        assert_eq!(child.wait().unwrap().code(), Some(1), "ended by kizuki");
        drop(child);
        assert!(matches!(set_threads_suspended(pid, true), Ok(Acted::Gone)));
    }

    #[test]
    fn system_tools_come_from_the_system_folder() {
        let netsh = system_tool("netsh.exe");
        assert!(netsh.is_absolute(), "{}", netsh.display());
        assert!(netsh.exists(), "{}", netsh.display());
        assert!(
            netsh
                .to_string_lossy()
                .to_lowercase()
                .ends_with(r"system32\netsh.exe")
        );
    }

    #[test]
    fn an_elevated_program_reports_its_exit_code() {
        let params = super::super::cmdline::join_args(&["/c", "exit 3"]).unwrap();
        assert_eq!(
            run_as_admin(&system_tool("cmd.exe"), &params).unwrap(),
            RunAs::Exited(3)
        );
    }

    #[test]
    fn a_named_event_is_found_by_the_second_opener() {
        let name = format!(r"Local\kizuki-test-{}", std::process::id());
        let (first, existed) = NamedEvent::create(&name).unwrap();
        assert!(!existed);
        let (second, existed) = NamedEvent::create(&name).unwrap();
        assert!(existed, "the second opener sees the first's event");
        second.set().unwrap();
        first.wait().unwrap();
    }

    #[test]
    fn an_open_connection_is_reset() {
        use std::io::Read;
        use std::net::{TcpListener, TcpStream};
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let (_accepted, _) = server.accept().unwrap();
        let flow = crate::firewall::plan::Flow {
            protocol: crate::model::Protocol::Tcp,
            local: client.local_addr().unwrap(),
            remote: server.local_addr().unwrap(),
        };
        let row = super::super::tcp::row_for(&flow).unwrap();
        match cut_tcp(&row) {
            Ok(()) => {
                client
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut buf = [0u8; 1];
                let read = client.read(&mut buf);
                let still_open = matches!(&read, Err(e) if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ));
                if still_open && crate::testing::under_wine() {
                    eprintln!("skipping the cut check: Wine's SetTcpEntry changes nothing");
                    return;
                }
                assert!(
                    matches!(read, Ok(0)) || (read.is_err() && !still_open),
                    "the connection goes on: {read:?}"
                );
            }
            // Without administrator rights Windows refuses; that is the
            // elevated side's job.
            Err(e) if !is_elevated() => eprintln!("skipping the cut: not elevated ({e})"),
            Err(e) => panic!("an elevated cut failed: {e}"),
        }
    }

    #[test]
    fn pumping_messages_returns_after_the_timeout() {
        // No window, no message: it must come back rather than block.
        pump_messages(Duration::from_millis(1));
    }
}
