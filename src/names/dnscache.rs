//! Windows' DNS client cache as `Get-DnsClientCache | ConvertTo-Json`
//! prints it: the names this PC looked up and the addresses they gave.
//! Parsing only (it runs everywhere, so it is tested everywhere); reading
//! the cache is in `names/capture/windows.rs`.

use std::net::IpAddr;

use serde_json::Value;

use super::host::clean_host;

/// Record types in the cache: an address for a name.
const TYPE_A: u64 = 1;
const TYPE_AAAA: u64 = 28;
/// Entries read from one listing, at most.
const MAX_ENTRIES: usize = 20_000;

/// The (address, name) pairs of a cache listing: the name is the one
/// looked up (`Entry`), not the end of a CNAME chain (`Name`), since that
/// is the name the user would recognise. Anything malformed is skipped.
pub fn parse(json: &[u8]) -> Vec<(IpAddr, String)> {
    let Ok(v) = serde_json::from_slice::<Value>(json) else {
        return Vec::new();
    };
    // One entry is printed as an object, several as an array.
    let list = match v {
        Value::Array(a) => a,
        o @ Value::Object(_) => vec![o],
        _ => return Vec::new(),
    };
    list.iter()
        .take(MAX_ENTRIES)
        .filter_map(|e| {
            let kind = e["Type"].as_u64()?;
            if kind != TYPE_A && kind != TYPE_AAAA {
                return None;
            }
            // Status 0: a real answer (not a cached "no such name").
            if e["Status"].as_u64().is_some_and(|s| s != 0) {
                return None;
            }
            let ip: IpAddr = e["Data"].as_str()?.trim().parse().ok()?;
            if (kind == TYPE_A) != ip.is_ipv4() {
                return None;
            }
            let name = e["Entry"]
                .as_str()
                .and_then(clean_host)
                .or_else(|| e["Name"].as_str().and_then(clean_host))?;
            Some((ip, name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_carry_the_name_looked_up() {
        let listing = br#"[
          {"Entry":"board.example.jp","Name":"cdn.example.net","Type":5,"Status":0,"Data":"cdn.example.net"},
          {"Entry":"board.example.jp","Name":"cdn.example.net","Type":1,"Status":0,"Data":"203.0.113.7"},
          {"Entry":"Board.Example.JP","Name":"cdn.example.net","Type":28,"Status":0,"Data":"2001:db8::7"},
          {"Entry":"gone.example.jp","Name":"gone.example.jp","Type":1,"Status":9003,"Data":""}
        ]"#;
        assert_eq!(
            parse(listing),
            vec![
                ("203.0.113.7".parse().unwrap(), "board.example.jp".into()),
                ("2001:db8::7".parse().unwrap(), "board.example.jp".into()),
            ]
        );
    }

    #[test]
    fn one_entry_is_an_object() {
        let one =
            br#"{"Entry":"a.example","Name":"a.example","Type":1,"Status":0,"Data":"192.0.2.1"}"#;
        assert_eq!(parse(one).len(), 1);
    }

    #[test]
    fn junk_and_hostile_entries_give_nothing() {
        for bad in [
            &b"not json"[..],
            br#""a string""#,
            br#"[{"Entry":"evil\u001b[2J.jp","Type":1,"Status":0,"Data":"192.0.2.1"}]"#,
            br#"[{"Entry":"a.example","Type":1,"Status":0,"Data":"2001:db8::1"}]"#,
            br#"[{"Entry":"a.example","Type":1,"Status":0,"Data":"not an address"}]"#,
            br#"[{"Entry":"192.0.2.9","Type":1,"Status":0,"Data":"192.0.2.9"}]"#,
        ] {
            assert!(parse(bad).is_empty(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
