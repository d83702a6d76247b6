//! Which programs are blocked, as the guard reads it back — shared between
//! whoever asks the guard (the window's `kizuki-guard` thread, the CLI) and
//! the marks stage, so a program shows as blocked only when the guard
//! says so. A `blocked` line in the user's `marks.json` (which any program
//! of the user can write) makes nothing show as blocked.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::api::GuardStatus;

/// Shared, cheap to clone. Empty until the guard has answered.
#[derive(Debug, Clone, Default)]
pub struct GuardBlocks(Arc<RwLock<BTreeSet<PathBuf>>>);

impl GuardBlocks {
    /// Takes the programs the guard blocks from a status it read back.
    pub fn update(&self, status: &GuardStatus) {
        let set = status.blocked.iter().map(|b| b.exe.clone()).collect();
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = set;
    }

    /// No guard (or it stopped answering): nothing is known to be blocked.
    pub fn clear(&self) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Whether the guard holds a block on `exe` (in force or not: the
    /// details pane says which).
    pub fn contains(&self, exe: &Path) -> bool {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(exe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::api::Request;
    use crate::guard::client::{FakeGuard, GuardLink};

    #[test]
    fn only_what_the_guard_reads_back_counts() {
        let blocks = GuardBlocks::default();
        let mut g = FakeGuard::default();
        assert!(!blocks.contains(Path::new("/tmp/x")));
        g.call(&Request::Block {
            exe: "/tmp/x".into(),
        })
        .unwrap();
        blocks.update(&g.status().unwrap());
        assert!(blocks.contains(Path::new("/tmp/x")));
        assert!(!blocks.contains(Path::new("/tmp/y")));
        blocks.clear();
        assert!(!blocks.contains(Path::new("/tmp/x")));
    }
}
