//! Every colour of the window, for light and dark, in one place.

use egui::Color32;

use crate::app::{Badge, BannerLevel};
use crate::model::Severity;

/// A chip's fill and text colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chip {
    pub fill: Color32,
    pub text: Color32,
}

const fn chip(fill: Color32, text: Color32) -> Chip {
    Chip { fill, text }
}

const WHITE: Color32 = Color32::WHITE;
const INK: Color32 = Color32::from_rgb(0x1f, 0x23, 0x28);

pub fn severity(s: Severity, dark: bool) -> Chip {
    match (s, dark) {
        (Severity::High, false) => chip(Color32::from_rgb(0xc6, 0x28, 0x28), WHITE),
        (Severity::High, true) => chip(Color32::from_rgb(0xe5, 0x53, 0x4b), WHITE),
        (Severity::Medium, false) => chip(Color32::from_rgb(0xe6, 0x7e, 0x00), WHITE),
        (Severity::Medium, true) => chip(Color32::from_rgb(0xf0, 0x9a, 0x2a), INK),
        (Severity::Low, false) => chip(Color32::from_rgb(0xf6, 0xd3, 0x65), INK),
        (Severity::Low, true) => chip(Color32::from_rgb(0xd9, 0xb8, 0x4a), INK),
        (Severity::Info, false) => chip(Color32::from_rgb(0xd6, 0xe4, 0xf0), INK),
        (Severity::Info, true) => chip(Color32::from_rgb(0x3a, 0x4a, 0x5c), WHITE),
    }
}

pub fn badge(b: Badge, dark: bool) -> Chip {
    match (b, dark) {
        (Badge::Trusted, false) => chip(Color32::from_rgb(0x2e, 0x7d, 0x32), WHITE),
        (Badge::Trusted, true) => chip(Color32::from_rgb(0x3f, 0x9a, 0x48), WHITE),
        (Badge::Blocked, false) => chip(Color32::from_rgb(0x37, 0x37, 0x3c), WHITE),
        (Badge::Blocked, true) => chip(
            Color32::from_rgb(0x1a, 0x1a, 0x1e),
            Color32::from_rgb(0xff, 0x8a, 0x80),
        ),
        (Badge::New, false) => chip(Color32::from_rgb(0x15, 0x65, 0xc0), WHITE),
        (Badge::New, true) => chip(Color32::from_rgb(0x42, 0x8b, 0xdf), WHITE),
        (Badge::Changed, false) => chip(Color32::from_rgb(0x8e, 0x24, 0xaa), WHITE),
        (Badge::Changed, true) => chip(Color32::from_rgb(0xaf, 0x5c, 0xc8), WHITE),
        (Badge::Unknown, false) => chip(Color32::from_rgb(0xcf, 0xc4, 0xa8), INK),
        (Badge::Unknown, true) => chip(Color32::from_rgb(0x5c, 0x54, 0x40), WHITE),
        (Badge::Undecided, false) => chip(Color32::from_rgb(0xec, 0xec, 0xec), INK),
        (Badge::Undecided, true) => chip(Color32::from_rgb(0x3c, 0x3c, 0x42), WHITE),
    }
}

pub fn banner(level: BannerLevel, dark: bool) -> Chip {
    match (level, dark) {
        (BannerLevel::Info, false) => chip(Color32::from_rgb(0xe3, 0xf2, 0xfd), INK),
        (BannerLevel::Info, true) => chip(Color32::from_rgb(0x1c, 0x33, 0x4a), WHITE),
        (BannerLevel::Warning, false) => chip(Color32::from_rgb(0xff, 0xf3, 0xcd), INK),
        (BannerLevel::Warning, true) => chip(Color32::from_rgb(0x4d, 0x3b, 0x0c), WHITE),
        (BannerLevel::Error, false) => chip(Color32::from_rgb(0xfd, 0xe2, 0xe1), INK),
        (BannerLevel::Error, true) => chip(Color32::from_rgb(0x5a, 0x1d, 0x1d), WHITE),
    }
}

/// The "all is well" box.
pub fn calm(dark: bool) -> Chip {
    if dark {
        chip(Color32::from_rgb(0x1e, 0x4a, 0x2b), WHITE)
    } else {
        chip(Color32::from_rgb(0xe3, 0xf4, 0xe5), INK)
    }
}

/// The warning box for a deleted or replaced executable.
pub fn danger(dark: bool) -> Chip {
    banner(BannerLevel::Error, dark)
}

/// The initial's circle: a stable colour per name, readable in both themes.
pub fn initial(name: &str, dark: bool) -> Chip {
    const HUES: [(u8, u8, u8); 8] = [
        (0x5c, 0x6b, 0xc0),
        (0x00, 0x89, 0x7b),
        (0xef, 0x6c, 0x00),
        (0x8e, 0x24, 0xaa),
        (0x43, 0xa0, 0x47),
        (0xd8, 0x1b, 0x60),
        (0x1e, 0x88, 0xe5),
        (0x6d, 0x4c, 0x41),
    ];
    // FNV-1a: stable across runs, unlike the std hasher.
    let h = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let (r, g, b) = HUES[(h % HUES.len() as u32) as usize];
    let fill = if dark {
        Color32::from_rgb(r / 4 * 3 + 0x20, g / 4 * 3 + 0x20, b / 4 * 3 + 0x20)
    } else {
        Color32::from_rgb(r, g, b)
    };
    chip(fill, WHITE)
}

/// The word for a suspended or ended program in its row.
pub fn run_state(s: crate::app::RunState, dark: bool) -> Color32 {
    match (s, dark) {
        (crate::app::RunState::Suspended, false) => Color32::from_rgb(0x8a, 0x5a, 0x00),
        (crate::app::RunState::Suspended, true) => Color32::from_rgb(0xf0, 0xb4, 0x4a),
        _ => ended_text(dark),
    }
}

/// A finding of a program that has ended: still there, no longer urgent.
pub fn muted(dark: bool) -> Chip {
    if dark {
        chip(Color32::from_gray(60), Color32::from_gray(170))
    } else {
        chip(Color32::from_gray(225), Color32::from_gray(90))
    }
}

/// Ended connections are shown dimmer than live ones.
pub fn ended_text(dark: bool) -> Color32 {
    if dark {
        Color32::from_gray(130)
    } else {
        Color32::from_gray(120)
    }
}
