//! Keeping remembered tables bounded: files kizuki keeps for years
//! (baseline, notifications told) drop their oldest entries first.

use std::collections::BTreeMap;
use std::time::SystemTime;

/// Removes the oldest entries of `map` (by `at`) until at most `max` are left.
pub fn keep_newest<K: Ord + Clone, V>(
    map: &mut BTreeMap<K, V>,
    max: usize,
    at: impl Fn(&V) -> SystemTime,
) {
    if map.len() <= max {
        return;
    }
    let mut by_age: Vec<(SystemTime, K)> = map.iter().map(|(k, v)| (at(v), k.clone())).collect();
    by_age.sort();
    let excess = map.len() - max;
    for (_, k) in by_age.into_iter().take(excess) {
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_oldest_go_first() {
        let t = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let mut m: BTreeMap<&str, SystemTime> =
            [("new", t(30)), ("old", t(10)), ("mid", t(20))].into();
        keep_newest(&mut m, 3, |v| *v);
        assert_eq!(m.len(), 3, "within the bound nothing goes");
        keep_newest(&mut m, 2, |v| *v);
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), vec!["mid", "new"]);
    }
}
