//! kizuki (気づき): a desktop firewall companion. See ARCHITECTURE.md in the
//! repository for how the pieces fit: guard and clients; probe → monitor →
//! snapshot → UI.

pub mod analysis;
pub mod app;
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
pub(crate) mod lock;
pub(crate) mod logfile;
pub mod marks;
pub mod model;
pub mod monitor;
pub mod names;
pub mod notify;
pub(crate) mod pathser;
pub mod platform;
pub mod probe;
pub mod report;
pub mod setup;
pub mod textwidth;
pub mod tray;
pub mod ui;

#[cfg(test)]
mod testing;
