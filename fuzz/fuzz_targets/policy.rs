//! The policy loader (YAML → compiled policy) on arbitrary bytes: never a panic; every
//! error renders with a location inside the text.
#![no_main]

use agent_gate::core::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = Policy::from_yaml(&text, ".github/agent-gate.yml") {
        let _ = e.to_string();
        if let Some((line, column)) = e.location() {
            assert!(line >= 1 && column >= 1);
        }
    }
});
