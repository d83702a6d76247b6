//! kizuki (気づき): a desktop firewall companion. See ARCHITECTURE.md in the
//! repository for how the pieces fit: guard and clients; probe → monitor →
//! snapshot → UI.

pub mod analysis;
pub mod app;
pub mod autostart;
pub(crate) mod bounded;
pub mod capture;
pub mod cli;
pub mod clock;
pub mod consult;
pub mod datafile;
pub mod escape;
pub mod firewall;
pub(crate) mod fsutil;
pub mod guard;
pub mod i18n;
pub mod identity;
pub mod journal;
pub(crate) mod logfile;
pub mod marks;
pub mod model;
pub mod monitor;
pub mod names;
pub mod notify;
/// The CLI's table and JSON output (`cli::output`), at its old path.
pub use cli::output;
pub(crate) mod paths;
pub(crate) mod pathser;
pub(crate) mod platform;
pub mod probe;
pub mod procctl;
pub mod provenance;
pub mod report;
pub mod setup;
pub mod textwidth;
pub mod tray;
pub mod ui;
pub mod win;

#[cfg(test)]
mod testing;
