//! `agent-gate demo`: a complete run against the in-process simulator and a temporary
//! repository, offline (to be written).

use std::io::Write;
use std::path::Path;

/// Run the demo; exit 0 when every scenario reached its expected verdict.
pub async fn run(scenario: Option<&Path>, out: &mut dyn Write) -> u8 {
    let _ = (
        scenario,
        writeln!(out, "agent-gate demo: coming in a later release"),
    );
    2
}
