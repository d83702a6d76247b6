//! `kizuki autostart on|off|status`: the command-line edge of
//! [`crate::platform::autostart`].

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use crate::escape::{for_display, os_lossless};
use crate::i18n::{tr, tr_args};
use crate::platform::autostart;

#[derive(Debug, Subcommand)]
pub enum AutostartCommand {
    /// Start kizuki minimized (in the tray) when you log in.
    On,
    /// Stop starting kizuki when you log in.
    Off,
    /// Say whether kizuki starts when you log in.
    Status,
}

fn shown(p: &std::path::Path) -> String {
    for_display(&os_lossless(p.as_os_str()))
}

/// On: the `Run` key on Windows, the XDG entry elsewhere.
pub(crate) fn autostart(action: &AutostartCommand) -> Result<ExitCode> {
    match action {
        AutostartCommand::On => {
            let path = autostart::enable_at_login(std::env::current_exe())?;
            println!("{}", tr_args("autostart.on", &[("path", &shown(&path))]));
        }
        AutostartCommand::Off => {
            let key = if autostart::disable_at_login()? {
                "autostart.off"
            } else {
                "autostart.already_off"
            };
            println!("{}", tr(key));
        }
        AutostartCommand::Status => match autostart::login_entry()? {
            Some(at) => println!(
                "{}",
                tr_args("autostart.status.on", &[("path", &shown(&at))])
            ),
            None => println!("{}", tr("autostart.status.off")),
        },
    }
    Ok(ExitCode::SUCCESS)
}
