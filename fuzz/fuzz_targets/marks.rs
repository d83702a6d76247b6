//! The marks loader on arbitrary bytes: it never panics, and whatever it
//! takes over can be saved and read back unchanged.

#![no_main]

use kizuki::marks::{parse_file, render_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (entries, _problem) = parse_file(data);
    let saved = render_file(&entries);
    let (again, problem) = parse_file(&saved);
    assert_eq!(problem, None, "a file kizuki wrote must read back cleanly");
    assert_eq!(again.len(), entries.len(), "entries lost in a save");
    assert_eq!(render_file(&again), saved, "a second save changed the file");
});
