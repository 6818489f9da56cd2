//! The command line (DESIGN §4): clap definitions, every flag also readable from the
//! matching `INPUT_*` variable so the same binary is the Action's entrypoint.

use clap::Parser;

/// Run GitHub Copilot cloud-agent tasks as governed CI jobs.
#[derive(Debug, Parser)]
#[command(name = "agent-gate", version)]
pub struct Cli {}

/// Parse the process arguments.
pub fn parse() -> Cli {
    Cli::parse()
}

/// Run a parsed command line and return the process exit code.
pub fn main(_cli: Cli) -> u8 {
    0
}
