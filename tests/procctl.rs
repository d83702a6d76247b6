//! Process actions on real processes (Linux).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_os = "linux")]

use kizuki::platform::procctl::{resume, suspend, terminate};
use std::process::{Child, Command};

/// The state letter of /proc/PID/stat (R, S, T, Z…).
fn state(pid: u32) -> char {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = s.rsplit_once(") ").unwrap().1;
    after.chars().next().unwrap()
}

struct Reap(Child);
impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn suspend_resume_terminate_a_real_process() {
    let mut c = Reap(Command::new("sleep").arg("600").spawn().unwrap());
    let pid = c.0.id();
    let o = suspend(&[pid]).unwrap();
    assert_eq!(o.done, vec![pid]);
    // SIGSTOP is delivered asynchronously; poll /proc briefly.
    let stopped = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(5));
        state(pid) == 'T'
    });
    assert!(stopped, "process must be stopped");
    resume(&[pid]).unwrap();
    let running = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(5));
        state(pid) != 'T'
    });
    assert!(running, "process must run again");
    assert_eq!(terminate(&[pid]).unwrap().done, vec![pid]);
    let status = c.0.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(15));
}

#[test]
fn vanished_pids_are_normal_and_dangerous_ones_refused() {
    let mut c = Command::new("true").spawn().unwrap();
    let gone = c.id();
    c.wait().unwrap();
    let o = terminate(&[gone, 0, 1, u32::MAX, std::process::id()]).unwrap();
    assert_eq!(o.vanished, vec![gone]);
    assert!(o.done.is_empty());
    let refused: Vec<u32> = o.failed.iter().map(|f| f.0).collect();
    assert_eq!(refused, vec![0, 1, u32::MAX, std::process::id()]);
}
