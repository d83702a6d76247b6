//! kizuki (気づき): a desktop firewall companion. See DESIGN.md in the
//! shared folder for how the pieces fit: probe → monitor → snapshot → UI.

pub mod cli;
pub mod clock;
pub mod escape;
pub mod fsutil;
pub mod i18n;
pub mod identity;
pub mod journal;
pub mod model;
pub mod monitor;
pub mod output;
pub mod paths;
pub mod probe;
pub mod setup;
pub mod ui;
