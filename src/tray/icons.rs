//! The tray icons: PNGs drawn by `assets/tray/make_icons.py` (SVG sources
//! beside them), compiled in and decoded once into the ARGB32 pixmaps the
//! StatusNotifierItem protocol carries.

use std::io::Cursor;
use std::sync::OnceLock;

use super::Level;

/// One decoded size of one icon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixmap {
    pub width: i32,
    pub height: i32,
    /// ARGB32, network byte order (A, R, G, B per pixel).
    pub argb: Vec<u8>,
}

const GREEN: [&[u8]; 3] = [
    include_bytes!("../../assets/tray/kizuki-green-22.png"),
    include_bytes!("../../assets/tray/kizuki-green-32.png"),
    include_bytes!("../../assets/tray/kizuki-green-64.png"),
];
const AMBER: [&[u8]; 3] = [
    include_bytes!("../../assets/tray/kizuki-amber-22.png"),
    include_bytes!("../../assets/tray/kizuki-amber-32.png"),
    include_bytes!("../../assets/tray/kizuki-amber-64.png"),
];
const RED: [&[u8]; 3] = [
    include_bytes!("../../assets/tray/kizuki-red-22.png"),
    include_bytes!("../../assets/tray/kizuki-red-32.png"),
    include_bytes!("../../assets/tray/kizuki-red-64.png"),
];

/// The pixmaps for `level`, smallest first. A file that fails to decode
/// is left out (a test decodes every one).
pub fn pixmaps(level: Level) -> &'static [Pixmap] {
    static ALL: OnceLock<[Vec<Pixmap>; 3]> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        let decode_all = |files: &[&[u8]; 3]| files.iter().filter_map(|f| decode(f).ok()).collect();
        [decode_all(&GREEN), decode_all(&AMBER), decode_all(&RED)]
    });
    match level {
        Level::Green => &all[0],
        Level::Amber => &all[1],
        Level::Red => &all[2],
    }
}

/// Decodes an 8-bit RGBA PNG into ARGB32.
pub fn decode(bytes: &[u8]) -> Result<Pixmap, png::DecodingError> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::ALPHA);
    let mut reader = decoder.read_info()?;
    let size = reader
        .output_buffer_size()
        .ok_or(png::DecodingError::LimitsExceeded)?;
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf)?;
    buf.truncate(info.buffer_size());
    let channels = info.color_type.samples();
    let mut argb = Vec::with_capacity((info.width * info.height * 4) as usize);
    for px in buf.chunks_exact(channels) {
        let (r, g, b, a) = match px {
            [r, g, b, a] => (*r, *g, *b, *a),
            [r, g, b] => (*r, *g, *b, 255),
            [l, a] => (*l, *l, *l, *a),
            [l] => (*l, *l, *l, 255),
            _ => (0, 0, 0, 0),
        };
        argb.extend_from_slice(&[a, r, g, b]);
    }
    Ok(Pixmap {
        width: info.width as i32,
        height: info.height as i32,
        argb,
    })
}

impl Pixmap {
    /// The same pixels as RGBA (what Windows icon APIs take).
    pub fn rgba(&self) -> Vec<u8> {
        self.argb
            .chunks_exact(4)
            .flat_map(|p| [p[1], p[2], p[3], p[0]])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel(p: &Pixmap, x: i32, y: i32) -> [u8; 4] {
        let i = ((y * p.width + x) * 4) as usize;
        [p.argb[i], p.argb[i + 1], p.argb[i + 2], p.argb[i + 3]]
    }

    #[test]
    fn every_icon_decodes_at_three_sizes() {
        for level in [Level::Green, Level::Amber, Level::Red] {
            let sizes: Vec<i32> = pixmaps(level).iter().map(|p| p.width).collect();
            assert_eq!(sizes, vec![22, 32, 64], "{level:?}");
            for p in pixmaps(level) {
                assert_eq!(p.argb.len(), (p.width * p.height * 4) as usize);
                assert_eq!(pixel(p, 0, 0)[0], 0, "corners are transparent");
            }
        }
    }

    #[test]
    fn rgba_keeps_every_pixel_and_moves_alpha_last() {
        let p = &pixmaps(Level::Red)[1];
        let rgba = p.rgba();
        assert_eq!(rgba.len(), p.argb.len());
        let [a, r, g, b] = pixel(p, 14, 20);
        let i = ((20 * p.width + 14) * 4) as usize;
        assert_eq!(&rgba[i..i + 4], &[r, g, b, a]);
    }

    #[test]
    fn the_three_icons_differ_in_colour() {
        // Sample inside the shape, away from the mark: the fill colour.
        let fill = |level| {
            let p = &pixmaps(level)[2];
            pixel(p, 14, 40)
        };
        let [a, r, g, _] = fill(Level::Green);
        assert_eq!(a, 255);
        assert!(g > r, "green is green: {:?}", fill(Level::Green));
        let [_, r, g, b] = fill(Level::Red);
        assert!(r > g && r > b, "red is red");
        let [_, r, g, b] = fill(Level::Amber);
        assert!(r > b && g > b, "amber is yellowish");
    }
}
