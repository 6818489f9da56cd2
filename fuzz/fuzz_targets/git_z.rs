//! The parsers of `git diff --raw -z` and `--numstat -z` on arbitrary bytes: never a panic,
//! and whatever parses formats back to the same entries.
#![no_main]

use agent_gate::adapters::git::parse::{format_raw_z, parse_numstat_z, parse_raw_z};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = parse_raw_z(data) {
        let again = format_raw_z(&entries);
        assert_eq!(parse_raw_z(&again).ok(), Some(entries));
    }
    let _ = parse_numstat_z(data);
});
