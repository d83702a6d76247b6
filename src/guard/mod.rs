//! `kizuki guard`: the small privileged service that owns enforcement
//! (the block list, the panic state, nftables and cgroups), and the client
//! side the window, tray and CLI use to ask it. See ARCHITECTURE.md.

pub mod api;
pub mod client;
pub mod local;
pub mod outcome;
