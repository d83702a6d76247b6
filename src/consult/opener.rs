//! Opening links and folders with the desktop's handler. Behind a trait so
//! tests (and the wizard's tests) never launch a browser or mail client.

use crate::lock::MutexExt;
use std::ffi::{OsStr, OsString};
use std::sync::Mutex;

use super::links::Link;

/// Something that hands a link or a path to the desktop.
pub trait Opener: Send + Sync {
    fn open(&self, target: &OsStr) -> std::io::Result<()>;

    /// Opens a contact link (`tel:`, `mailto:`, `https:`).
    fn open_link(&self, link: &Link) -> std::io::Result<()> {
        self.open(OsStr::new(&link.uri))
    }
}

/// A shared opener opens like the one it shares (a test keeps one handle
/// to read what was opened and gives the backend another).
impl<T: Opener + ?Sized> Opener for std::sync::Arc<T> {
    fn open(&self, target: &OsStr) -> std::io::Result<()> {
        (**self).open(target)
    }
}

/// The real thing: the `open` crate (xdg-open, `start`, `open`), detached
/// so a slow handler never blocks the UI.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemOpener;

impl Opener for SystemOpener {
    fn open(&self, target: &OsStr) -> std::io::Result<()> {
        open::that_detached(target)
    }
}

/// Records what would have been opened, for tests.
#[derive(Debug, Default)]
pub struct RecordingOpener {
    opened: Mutex<Vec<OsString>>,
}

impl RecordingOpener {
    pub fn opened(&self) -> Vec<OsString> {
        self.opened.locked().clone()
    }
}

impl Opener for RecordingOpener {
    fn open(&self, target: &OsStr) -> std::io::Result<()> {
        self.opened.locked().push(target.to_os_string());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consult::links::LinkKind;

    #[test]
    fn links_are_opened_by_their_uri_not_their_label() {
        let o = RecordingOpener::default();
        let link = Link {
            kind: LinkKind::Tel,
            label: "#9110".into(),
            uri: "tel:%239110".into(),
        };
        let dyn_o: &dyn Opener = &o;
        dyn_o.open_link(&link).unwrap();
        assert_eq!(o.opened(), vec![OsString::from("tel:%239110")]);
    }
}
