//! Windows-only pieces. [`cmdline`] is pure and compiled everywhere so
//! the Linux suite tests it; the Win32 calls that no safe crate wraps
//! (elevation, UAC, thread suspension, the tray's message loop, the
//! console) live in `sys`, the one place kizuki allows `unsafe`.

pub mod cmdline;
pub mod tcp;

#[cfg(windows)]
mod sys;

#[cfg(windows)]
pub use sys::{
    Acted, NamedEvent, RunAs, cut_tcp, detach_own_console, is_elevated, pump_messages,
    run_as_admin, set_threads_suspended, system_tool, terminate,
};
