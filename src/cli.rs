//! The command line (DESIGN §4): clap definitions and dispatch. Every flag is also readable
//! from the matching `INPUT_*` variable (upper-cased, hyphens kept, as the Actions runner
//! passes inputs), so the same binary is the Action's entrypoint. This module turns
//! arguments into calls of library functions and outcomes into exit codes; it holds no logic
//! of its own.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::report::Verdict;

/// Run GitHub Copilot cloud-agent tasks as governed CI jobs.
///
/// Exit codes: 0 passed, 10 checks-failed, 11 scope-violation, 12 agent-failed,
/// 13 timed-out, 14 over-budget, 130 cancelled, 2 config-error, 3 api-error.
#[derive(Debug, Parser)]
#[command(name = "agent-gate", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Gate an existing change (no agent): scope-check base...head and run the policy's checks.
    Check(CheckArgs),
    /// Parse and compile a policy file, print what it allows; exit 0, or 2 with the errors.
    Validate(ValidateArgs),
    /// For each path: in or out of scope, and the rule (text, line) that decided.
    Explain(ExplainArgs),
}

/// Console report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// A readable terminal report.
    #[default]
    Text,
    /// One JSON object (schema: docs/report.md).
    Json,
}

/// Arguments of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The base ref; the change is computed from the merge base of base and head. The policy
    /// is read from this ref, never from the working tree or the head.
    #[arg(long, env = "INPUT_BASE-REF")]
    pub base: String,
    /// The head ref (the change to gate).
    #[arg(long, default_value = "HEAD")]
    pub head: String,
    /// The repository to work in.
    #[arg(long, default_value = ".", env = "INPUT_REPO")]
    pub repo: PathBuf,
    /// Policy file path inside the repository, read at the base ref.
    #[arg(long, default_value = crate::policy::DEFAULT_POLICY_PATH, env = "INPUT_POLICY")]
    pub policy: String,
    /// Narrow the policy's allow rules (comma- or newline-separated globs; repeatable). Can
    /// never grant a path the policy denies.
    #[arg(long, env = "INPUT_SCOPE", value_delimiter = ',')]
    pub scope: Vec<String>,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Checks run in parallel at most this many at a time (default: number of CPUs).
    #[arg(long)]
    pub jobs: Option<usize>,
}

/// Arguments of `validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The policy file to validate.
    #[arg(default_value = crate::policy::DEFAULT_POLICY_PATH, env = "INPUT_POLICY")]
    pub policy: PathBuf,
}

/// Arguments of `explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The policy file (read from disk, so a policy can be tried before it is committed).
    #[arg(long, default_value = crate::policy::DEFAULT_POLICY_PATH, env = "INPUT_POLICY")]
    pub policy: PathBuf,
    /// Narrow the allow rules as `check --scope` does.
    #[arg(long, value_delimiter = ',')]
    pub scope: Vec<String>,
    /// Repository-relative paths to decide.
    #[arg(required = true)]
    pub paths: Vec<String>,
}

/// Parse the process arguments.
pub fn parse() -> Cli {
    Cli::parse()
}

/// Run a parsed command line and return the process exit code.
pub fn main(cli: Cli) -> u8 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    match cli.command {
        Command::Validate(a) => crate::flow::validate(&a.policy, &mut out, &mut err),
        Command::Explain(a) => crate::flow::explain(&a.policy, &a.scope, &a.paths, &mut out, &mut err),
        Command::Check(a) => {
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => {
                    let _ = writeln!(err, "error: cannot start the async runtime: {e}");
                    return Verdict::ConfigError.exit_code();
                }
            };
            let opts = crate::flow::CheckOptions {
                repo: a.repo,
                base: a.base,
                head: a.head,
                policy_path: a.policy,
                scope: split_list(&a.scope),
                jobs: a.jobs,
            };
            let report = runtime.block_on(crate::flow::check(opts));
            let text = match a.format {
                Format::Text => report.render_text(),
                Format::Json => report.to_json() + "\n",
            };
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            report.exit_code
        }
    }
}

/// Split list inputs that may arrive comma- or newline-separated (Action inputs are one
/// string); trims entries and drops empty ones.
pub fn split_list(items: &[String]) -> Vec<String> {
    items.iter().flat_map(|s| s.split(['\n', ','])).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}
