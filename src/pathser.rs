//! One serde representation for OS paths: UTF-8 paths as text, anything
//! else (possible on Unix) as `{"bytes_hex": "…"}`, so no path is ever
//! changed by a round trip.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Repr {
    Text(String),
    Bytes { bytes_hex: String },
}

pub fn serialize<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    // A binary form (the guard's compact live sample) carries the bytes.
    if !s.is_human_readable() {
        return s.serialize_bytes(&path_bytes(p));
    }
    match p.to_str() {
        Some(t) => Repr::Text(t.to_string()).serialize(s),
        None => Repr::Bytes {
            bytes_hex: crate::identity::hex(&path_bytes(p)),
        }
        .serialize(s),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    if !d.is_human_readable() {
        let bytes = d.deserialize_byte_buf(BytesVisitor)?;
        return path_from_bytes(bytes)
            .ok_or_else(|| serde::de::Error::custom("path bytes are not valid here"));
    }
    match Repr::deserialize(d)? {
        Repr::Text(t) => Ok(PathBuf::from(t)),
        Repr::Bytes { bytes_hex } => {
            let bytes = unhex(&bytes_hex)
                .ok_or_else(|| serde::de::Error::custom("bytes_hex is not hexadecimal"))?;
            path_from_bytes(bytes)
                .ok_or_else(|| serde::de::Error::custom("path bytes are not valid here"))
        }
    }
}

/// A path's bytes in a binary form.
struct BytesVisitor;

impl<'de> serde::de::Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a path's bytes")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }
}

/// The OS bytes of a path (UTF-8 text where the OS has no byte paths).
pub fn path_bytes(p: &Path) -> Vec<u8> {
    crate::platform::osbytes::os_bytes(p.as_os_str()).into_owned()
}

pub use crate::platform::osbytes::path_from_bytes;

/// Lower- or upper-case hex to bytes; `None` for odd lengths or non-hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct P(#[serde(with = "super")] std::path::PathBuf);

    #[test]
    fn text_paths_stay_text_and_round_trip() {
        let p = P("/home/太郎/ダウンロード/tool".into());
        let s = serde_json::to_string(&p).unwrap();
        assert_eq!(s, "\"/home/太郎/ダウンロード/tool\"");
        assert_eq!(serde_json::from_str::<P>(&s).unwrap(), p);
        assert!(serde_json::from_str::<P>(r#"{"bytes_hex":"4"}"#).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_paths_round_trip_as_bytes() {
        use std::os::unix::ffi::OsStringExt;
        let p = P(std::ffi::OsString::from_vec(b"/tmp/\xff\xfe x".to_vec()).into());
        let s = serde_json::to_string(&p).unwrap();
        assert!(s.contains("bytes_hex"), "{s}");
        assert_eq!(serde_json::from_str::<P>(&s).unwrap(), p);
    }
}

/// The same for `Option<PathBuf>` (`null` when absent).
pub mod option {
    use std::path::PathBuf;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize)]
    struct Out<'a>(#[serde(with = "super")] &'a std::path::Path);

    #[derive(Deserialize)]
    struct In(#[serde(with = "super")] PathBuf);

    pub fn serialize<S: Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
        p.as_deref().map(Out).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
        Ok(Option::<In>::deserialize(d)?.map(|i| i.0))
    }
}
