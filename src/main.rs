//! The `agent-gate` binary: parse the command line, build the runtime, run, exit.
//! Everything else lives in the library so tests can call it directly.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = agent_gate::cli::parse();
    let code = agent_gate::cli::main(cli);
    ExitCode::from(code)
}
