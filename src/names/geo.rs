//! Country and network owner (AS) of an address, from data bundled in the
//! binary: nothing is looked up on the network.
//!
//! The data (`assets/geo/kizuki-geo.bin`) is made by
//! `scripts/refresh-geo.sh` from IPtoASN's country data (public domain,
//! PDDL 1.0) and the AS data of RouteViews, the NRO and DB-IP (CC BY 4.0);
//! see docs/geo-data.md. The file is zlib-compressed sorted ranges (format
//! in `scripts/geo_convert.py`); it is decoded once, on first use.

use std::net::IpAddr;
use std::sync::OnceLock;

use thiserror::Error;

static BUNDLED: &[u8] = include_bytes!("../../assets/geo/kizuki-geo.bin");
/// The decoded size the reader accepts (the real data is ~10 MB).
const MAX_DECODED: usize = 64 << 20;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum GeoError {
    #[error("the bundled address data could not be unpacked")]
    Inflate,
    #[error("the bundled address data is not in kizuki's format")]
    Format,
}

/// What the bundled data says about one address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GeoInfo {
    /// ISO 3166-1 alpha-2, upper case.
    pub country: Option<String>,
    pub asn: Option<u32>,
    pub as_org: Option<String>,
}

/// Sorted segment starts with a value each (0 = unknown); a segment runs
/// up to the next start.
#[derive(Debug, Default)]
struct Table<T> {
    starts: Vec<T>,
    values: Vec<u32>,
}

impl<T: Ord + Copy> Table<T> {
    fn get(&self, key: T) -> u32 {
        match self.starts.partition_point(|s| *s <= key) {
            0 => 0,
            i => self.values.get(i - 1).copied().unwrap_or(0),
        }
    }
}

#[derive(Debug, Default)]
pub struct GeoDb {
    date: String,
    countries: Vec<[u8; 2]>,
    orgs: Vec<String>,
    /// Sorted AS numbers and their organisation index (+1; 0 = none).
    as_numbers: Vec<u32>,
    as_orgs: Vec<u32>,
    country_v4: Table<u32>,
    country_v6: Table<u128>,
    as_v4: Table<u32>,
    as_v6: Table<u128>,
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn varint(&mut self) -> Result<u128, GeoError> {
        let mut v: u128 = 0;
        for shift in (0..133).step_by(7) {
            let (&b, rest) = self.buf.split_first().ok_or(GeoError::Format)?;
            self.buf = rest;
            // The last group holds only the two top bits of a u128.
            if shift == 126 && (b & 0x7f) > 0x03 {
                return Err(GeoError::Format);
            }
            v |= u128::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(GeoError::Format)
    }

    fn small(&mut self) -> Result<u32, GeoError> {
        u32::try_from(self.varint()?).map_err(|_| GeoError::Format)
    }

    fn count(&mut self, unit: usize) -> Result<usize, GeoError> {
        let n = usize::try_from(self.varint()?).map_err(|_| GeoError::Format)?;
        // A count cannot promise more entries than bytes remain.
        if n.saturating_mul(unit) > self.buf.len() {
            return Err(GeoError::Format);
        }
        Ok(n)
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8], GeoError> {
        if n > self.buf.len() {
            return Err(GeoError::Format);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn text(&mut self) -> Result<String, GeoError> {
        let n = self.count(1)?;
        let raw = self.bytes(n)?;
        Ok(String::from_utf8_lossy(raw).into_owned())
    }

    fn table<T: Ord + Copy>(
        &mut self,
        convert: impl Fn(u128) -> Option<T>,
    ) -> Result<Table<T>, GeoError> {
        let n = self.count(2)?;
        let mut t = Table {
            starts: Vec::with_capacity(n),
            values: Vec::with_capacity(n),
        };
        let mut pos: u128 = 0;
        for i in 0..n {
            let delta = self.varint()?;
            if i > 0 && delta == 0 {
                return Err(GeoError::Format);
            }
            pos = pos.checked_add(delta).ok_or(GeoError::Format)?;
            t.starts.push(convert(pos).ok_or(GeoError::Format)?);
            t.values.push(self.small()?);
        }
        Ok(t)
    }
}

impl GeoDb {
    /// Decodes kizuki's compressed format; hostile input gives an error,
    /// never a panic.
    pub fn parse(packed: &[u8]) -> Result<GeoDb, GeoError> {
        let raw = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(packed, MAX_DECODED)
            .map_err(|_| GeoError::Inflate)?;
        let mut r = Reader { buf: &raw };
        if r.bytes(7)? != b"KZGEO1\n" {
            return Err(GeoError::Format);
        }
        let date = r.text()?;
        let n = r.count(2)?;
        let mut countries = Vec::with_capacity(n);
        for _ in 0..n {
            let c = r.bytes(2)?;
            if !c.iter().all(u8::is_ascii_uppercase) {
                return Err(GeoError::Format);
            }
            countries.push([c[0], c[1]]);
        }
        let n = r.count(1)?;
        let mut orgs = Vec::with_capacity(n);
        for _ in 0..n {
            orgs.push(r.text()?);
        }
        let n = r.count(2)?;
        let (mut as_numbers, mut as_orgs) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let mut asn: u32 = 0;
        for _ in 0..n {
            asn = asn.checked_add(r.small()?).ok_or(GeoError::Format)?;
            as_numbers.push(asn);
            as_orgs.push(r.small()?);
        }
        let v4 = |x: u128| u32::try_from(x).ok();
        let v6 = Some;
        Ok(GeoDb {
            date,
            countries,
            orgs,
            as_numbers,
            as_orgs,
            country_v4: r.table(v4)?,
            country_v6: r.table(v6)?,
            as_v4: r.table(v4)?,
            as_v6: r.table(v6)?,
        })
    }

    /// The data bundled in this build; `None` (and no answers) when it
    /// cannot be read.
    pub fn bundled() -> Option<&'static GeoDb> {
        static DB: OnceLock<Option<GeoDb>> = OnceLock::new();
        DB.get_or_init(|| GeoDb::parse(BUNDLED).ok()).as_ref()
    }

    /// The date of the data (YYYY-MM-DD).
    pub fn date(&self) -> &str {
        &self.date
    }

    pub fn lookup(&self, ip: IpAddr) -> GeoInfo {
        let (country, asn) = match ip.to_canonical() {
            IpAddr::V4(a) => {
                let k = u32::from(a);
                (self.country_v4.get(k), self.as_v4.get(k))
            }
            IpAddr::V6(a) => {
                let k = u128::from(a);
                (self.country_v6.get(k), self.as_v6.get(k))
            }
        };
        let country = country
            .checked_sub(1)
            .and_then(|i| self.countries.get(i as usize))
            .map(|c| String::from_utf8_lossy(c).into_owned());
        let asn = (asn != 0).then_some(asn);
        let as_org = asn.and_then(|n| {
            let i = self.as_numbers.binary_search(&n).ok()?;
            let o = self.as_orgs.get(i)?.checked_sub(1)?;
            self.orgs.get(o as usize).cloned()
        });
        GeoInfo {
            country,
            asn,
            as_org,
        }
    }
}

/// Country and AS of `ip` from the bundled data (empty when unreadable).
pub fn lookup(ip: IpAddr) -> GeoInfo {
    GeoDb::bundled().map(|db| db.lookup(ip)).unwrap_or_default()
}

/// The bundled data's date, for the window and the report.
pub fn data_date() -> Option<&'static str> {
    GeoDb::bundled().map(GeoDb::date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ip: &str) -> GeoInfo {
        lookup(ip.parse().unwrap())
    }

    #[test]
    #[ignore = "timing, run by hand"]
    fn timing() {
        let t = std::time::Instant::now();
        let db = GeoDb::parse(BUNDLED).unwrap();
        let load = t.elapsed();
        let t = std::time::Instant::now();
        let mut n = 0u32;
        for i in 0..100_000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(i.wrapping_mul(2_654_435_761)));
            n += u32::from(db.lookup(ip).asn.is_some());
        }
        eprintln!(
            "load {load:?}, 100k lookups {:?} ({n} with AS)",
            t.elapsed()
        );
    }

    #[test]
    fn bundled_data_reads_and_has_a_date() {
        let db = GeoDb::bundled().expect("bundled data");
        let d = db.date();
        assert_eq!(d.len(), 10, "{d}");
        assert!(d.starts_with("20"), "{d}");
    }

    #[test]
    fn fixed_addresses() {
        // Well-known, long-stable allocations.
        let google = at("8.8.8.8");
        assert_eq!(google.country.as_deref(), Some("US"));
        assert_eq!(google.asn, Some(15169));
        assert!(google.as_org.as_deref().unwrap_or("").contains("Google"));

        let cf = at("1.1.1.1");
        assert_eq!(cf.asn, Some(13335));
        assert!(cf.as_org.as_deref().unwrap_or("").contains("Cloudflare"));

        // WIDE Project (Japan), IPv4 and IPv6.
        let wide = at("2001:200::1");
        assert_eq!(wide.country.as_deref(), Some("JP"));
        assert_eq!(wide.asn, Some(2500));
        assert_eq!(at("133.11.0.1").country.as_deref(), Some("JP"));

        // A v4-mapped address is the v4 address.
        assert_eq!(at("::ffff:8.8.8.8"), google);
    }

    #[test]
    fn special_ranges_have_no_owner() {
        for ip in [
            "127.0.0.1",
            "192.168.1.1",
            "10.0.0.1",
            "203.0.113.7",
            "::1",
            "fe80::1",
        ] {
            let g = at(ip);
            assert_eq!(g.country, None, "{ip}");
            assert_eq!(g.asn, None, "{ip}");
        }
    }

    #[test]
    fn hostile_data_is_an_error_not_a_panic() {
        assert_eq!(GeoDb::parse(b"").err(), Some(GeoError::Inflate));
        assert!(GeoDb::parse(&BUNDLED[..BUNDLED.len() / 2]).is_err());
        let junk =
            miniz_oxide::deflate::compress_to_vec_zlib(b"KZGEO1\n\xff\xff\xff\xff\xff\xff", 6);
        assert_eq!(GeoDb::parse(&junk).err(), Some(GeoError::Format));
        let huge_count = miniz_oxide::deflate::compress_to_vec_zlib(b"KZGEO1\n\x00\xff\xff\x03", 6);
        assert_eq!(GeoDb::parse(&huge_count).err(), Some(GeoError::Format));
    }
}
