//! The privileged side's plan reader on arbitrary bytes: it never panics,
//! and a plan it accepts is one the builder makes, survives the file round
//! trip, and becomes nft text that touches only kizuki's table.

#![no_main]

use kizuki::firewall::Plan;
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/hostile/plan.rs"]
mod plan;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Plan::from_json(data)
        && let Err(e) = plan::check_accepted(&p)
    {
        panic!("{e}");
    }
});
