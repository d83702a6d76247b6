//! "Save as…": the file dialog behind a small trait, so tests need no
//! dialog. The real one runs on its own thread (a portal or zenity dialog
//! stays open as long as the user likes; the window keeps drawing).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};

use crate::app::SaveRequest;

/// Asks the user for a file to save to.
pub trait SaveDialog: Send {
    /// Starts asking and returns at once; `repaint` is poked when the
    /// answer is in.
    fn ask(&mut self, req: &SaveRequest, repaint: &egui::Context);
    /// The answer, once: `Some(Some(path))` chosen, `Some(None)`
    /// cancelled, `None` still waiting (or nothing asked).
    fn poll(&mut self) -> Option<Option<PathBuf>>;
    /// True when the last `None` answer came because no dialog could
    /// open at all (not because the user cancelled).
    fn unavailable(&self) -> bool {
        false
    }
}

/// A person cannot cancel a dialog faster than this: a `None` sooner
/// means no dialog appeared (no portal, no zenity).
pub const TOO_FAST: std::time::Duration = std::time::Duration::from_millis(400);

/// No dialog at all: every question is answered "cancelled". The window
/// starts with it until the shell installs a real one.
#[derive(Debug, Default)]
pub struct NoSaveDialog {
    asked: bool,
}

impl SaveDialog for NoSaveDialog {
    fn ask(&mut self, _req: &SaveRequest, _repaint: &egui::Context) {
        self.asked = true;
    }

    fn poll(&mut self) -> Option<Option<PathBuf>> {
        std::mem::take(&mut self.asked).then_some(None)
    }
}

/// The system's dialog through `rfd` (xdg-desktop-portal, else zenity;
/// the native one on Windows and macOS).
#[derive(Debug, Default)]
pub struct RfdSaveDialog {
    pending: Option<Receiver<Option<PathBuf>>>,
    asked_at: Option<std::time::Instant>,
    unavailable: bool,
}

/// The user's documents folder, where a report for a desk is easy to find.
fn documents_dir() -> Option<PathBuf> {
    directories::UserDirs::new().and_then(|u| u.document_dir().map(Path::to_path_buf))
}

impl SaveDialog for RfdSaveDialog {
    fn ask(&mut self, req: &SaveRequest, repaint: &egui::Context) {
        if self.pending.is_some() {
            return;
        }
        let (tx, rx) = mpsc::channel();
        let req = req.clone();
        let ctx = repaint.clone();
        let spawned = std::thread::Builder::new()
            .name("save-dialog".into())
            .spawn(move || {
                let ext = Path::new(&req.file_name)
                    .extension()
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "md".into());
                let mut dialog = rfd::FileDialog::new()
                    .set_title(&req.title)
                    .set_file_name(&req.file_name)
                    .add_filter(ext.to_uppercase(), &[ext.as_str()]);
                if let Some(dir) = documents_dir() {
                    dialog = dialog.set_directory(dir);
                }
                // The window may be gone by now; then nobody listens.
                let _ = tx.send(dialog.save_file());
                ctx.request_repaint();
            });
        self.asked_at = Some(std::time::Instant::now());
        match spawned {
            Ok(_) => self.pending = Some(rx),
            Err(e) => {
                // Without a thread there is no dialog: answer "cancelled".
                let (tx, rx) = mpsc::channel();
                let _ = tx.send(None);
                self.pending = Some(rx);
                log::warn!("could not open the save dialog: {e}");
            }
        }
    }

    fn poll(&mut self) -> Option<Option<PathBuf>> {
        let rx = self.pending.as_ref()?;
        match rx.try_recv() {
            Ok(answer) => {
                self.pending = None;
                self.unavailable =
                    answer.is_none() && self.asked_at.is_some_and(|t| t.elapsed() < TOO_FAST);
                if self.unavailable {
                    log::warn!("the save dialog answered at once: no portal or zenity?");
                }
                Some(answer)
            }
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                self.pending = None;
                self.unavailable = true;
                Some(None)
            }
        }
    }

    fn unavailable(&self) -> bool {
        self.unavailable
    }
}

#[derive(Debug, Default)]
struct FakeInner {
    answers: Vec<Option<PathBuf>>,
    asked: Vec<SaveRequest>,
    waiting: Option<Option<PathBuf>>,
    unavailable: bool,
}

/// Answers with scripted paths, for tests. Clones share the script, so a
/// test keeps one and gives the window another.
#[derive(Debug, Clone, Default)]
pub struct FakeSaveDialog {
    inner: Arc<Mutex<FakeInner>>,
}

impl FakeSaveDialog {
    /// Answers the questions in order; `None` is "cancelled".
    pub fn answering(answers: Vec<Option<PathBuf>>) -> Self {
        let d = FakeSaveDialog::default();
        d.lock().answers = answers;
        d
    }

    /// No dialog can open: every question is answered at once, with nothing.
    pub fn unavailable_dialog() -> Self {
        let d = FakeSaveDialog::default();
        d.lock().unavailable = true;
        d
    }

    /// What the window asked so far.
    pub fn asked(&self) -> Vec<SaveRequest> {
        self.lock().asked.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SaveDialog for FakeSaveDialog {
    fn ask(&mut self, req: &SaveRequest, _repaint: &egui::Context) {
        let mut f = self.lock();
        f.asked.push(req.clone());
        let answer = if f.answers.is_empty() {
            None
        } else {
            f.answers.remove(0)
        };
        f.waiting = Some(answer);
    }

    fn poll(&mut self) -> Option<Option<PathBuf>> {
        self.lock().waiting.take()
    }

    fn unavailable(&self) -> bool {
        self.lock().unavailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> SaveRequest {
        SaveRequest {
            title: "t".into(),
            file_name: "r.md".into(),
        }
    }

    #[test]
    fn fake_answers_in_order_then_cancels() {
        let ctx = egui::Context::default();
        let mut d = FakeSaveDialog::answering(vec![Some("/a.md".into())]);
        assert_eq!(d.poll(), None, "nothing asked yet");
        d.ask(&req(), &ctx);
        assert_eq!(d.poll(), Some(Some(PathBuf::from("/a.md"))));
        assert_eq!(d.poll(), None, "answered once");
        d.ask(&req(), &ctx);
        assert_eq!(d.poll(), Some(None));
        assert_eq!(d.asked().len(), 2);
    }

    #[test]
    fn no_dialog_answers_cancelled_once() {
        let ctx = egui::Context::default();
        let mut d = NoSaveDialog::default();
        d.ask(&req(), &ctx);
        assert_eq!(d.poll(), Some(None));
        assert_eq!(d.poll(), None);
    }
}
