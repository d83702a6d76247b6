//! `kizuki autostart on|off|status`: the command-line edge of
//! [`crate::platform::autostart`].

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use crate::escape::{for_display, os_lossless};
use crate::i18n::{tr, tr_args};
#[cfg(not(windows))]
use crate::platform::autostart::{Autostart, needs_full_path};

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

/// Windows: a value under the user's `Run` key starting this kizuki.exe.
#[cfg(windows)]
pub(crate) fn autostart(action: &AutostartCommand) -> Result<ExitCode> {
    use crate::platform::autostart::windows_run;
    match action {
        AutostartCommand::On => {
            let exe = std::env::current_exe()?;
            let path = windows_run::enable(&exe)?;
            println!("{}", tr_args("autostart.on", &[("path", &shown(&path))]));
        }
        AutostartCommand::Off => {
            let key = if windows_run::disable()? {
                "autostart.off"
            } else {
                "autostart.already_off"
            };
            println!("{}", tr(key));
        }
        AutostartCommand::Status => {
            if windows_run::is_enabled() {
                let at = shown(&windows_run::location());
                println!("{}", tr_args("autostart.status.on", &[("path", &at)]));
            } else {
                println!("{}", tr("autostart.status.off"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(windows))]
pub(crate) fn autostart(action: &AutostartCommand) -> Result<ExitCode> {
    let a = Autostart::for_user()?;
    match action {
        AutostartCommand::On => {
            // A kizuki that is not the one on PATH (a build folder) is
            // started by its full path.
            let exe = std::env::current_exe()
                .ok()
                .filter(|e| needs_full_path(e, std::env::var_os("PATH").as_deref()));
            let path = a.enable(exe.as_deref())?;
            println!("{}", tr_args("autostart.on", &[("path", &shown(&path))]));
        }
        AutostartCommand::Off => {
            let key = if a.disable()? {
                "autostart.off"
            } else {
                "autostart.already_off"
            };
            println!("{}", tr(key));
        }
        AutostartCommand::Status => {
            if a.is_enabled() {
                println!(
                    "{}",
                    tr_args("autostart.status.on", &[("path", &shown(&a.entry_path()))])
                );
            } else {
                println!("{}", tr("autostart.status.off"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
