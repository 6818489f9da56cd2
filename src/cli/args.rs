//! The command line's shape (DESIGN §4): the clap definitions of every command and flag,
//! each flag also readable from its `INPUT_*` variable (upper-cased, hyphens kept, as the
//! Actions runner passes inputs). It holds no behaviour.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run GitHub Copilot cloud-agent tasks as governed CI jobs.
///
/// Exit codes: 0 passed (or dry-run), 10 checks-failed, 11 scope-violation, 12 agent-failed,
/// 13 timed-out, 14 over-budget, 15 check-error, 130 cancelled, 2 config-error, 3 api-error.
#[derive(Debug, Parser)]
#[command(name = "agent-gate", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The whole flow: start (or attach to) an agent task, poll it to the deadline, gate its
    /// change. The Action's default command.
    Run(Box<RunArgs>),
    /// Gate an existing change (no agent): scope-check base...head and run the policy's checks.
    Check(CheckArgs),
    /// Parse and compile a policy file, print what it allows; exit 0, or 2 with the errors.
    Validate(ValidateArgs),
    /// For each path: in or out of scope, and the rule (text, line) that decided. Exit 0 when
    /// every path is in scope, 11 (scope-violation) when one is not, 2 on a bad policy.
    Explain(ExplainArgs),
    /// List the repository's agent tasks, or show one, with their states.
    Status(StatusArgs),
    /// Serve the simulated agent-tasks API on 127.0.0.1 for local pipelines (offline).
    Sim(SimArgs),
    /// A complete run against the in-process simulator and a temporary repository, offline.
    Demo(DemoArgs),
    /// Merge the audit files of a batch of runs into one fleet report (Markdown, or JSON);
    /// in Actions it is also appended to the step summary.
    Report(FleetReportArgs),
    /// Expand a batch manifest (repositories × instructions) into a GitHub Actions matrix.
    Plan(PlanArgs),
}

/// Arguments of `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The batch manifest (docs/fleet.md).
    pub manifest: PathBuf,
    /// Date the task keys are derived from, YYYY-MM-DD (default: today, UTC).
    #[arg(long)]
    pub date: Option<String>,
    /// Print the matrix (json) or a table of the jobs (text) on stdout; by default the matrix
    /// goes to `GITHUB_OUTPUT` as `matrix` when set, else to stdout.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Also show each repository's review load: its open pull requests from agent-gate's
    /// tasks (the task index on its remote, `refs/agent-gate/tasks/*`, says which) and the
    /// oldest. Reads GitHub with the token in `INPUT_TOKEN` or --token-file (pull requests:
    /// read and contents: read on the repositories); repositories are fetched from
    /// `GITHUB_SERVER_URL` (default `https://github.com`). Also the step output `review-load`.
    #[arg(long)]
    pub review_load: bool,
    /// With --review-load: read the token from this file (first line).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// With --review-load: the REST API base URL.
    #[arg(long, env = "INPUT_API-URL", default_value = crate::adapters::github::DEFAULT_API_URL)]
    pub api_url: String,
}

/// Console report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// A readable terminal report.
    #[default]
    Text,
    /// JSON, in the shape each command documents.
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
    #[arg(long, default_value = crate::core::policy::DEFAULT_POLICY_PATH, env = "INPUT_POLICY")]
    pub policy: String,
    /// Narrow the policy's allow rules (comma- or newline-separated globs; repeatable). Can
    /// never grant a path the policy denies.
    #[arg(long, env = "INPUT_SCOPE")]
    pub scope: Vec<String>,
    #[command(flatten)]
    pub gate: GateArgs,
}

/// The flags `check` and `run` share: how the report is printed, how many checks run at
/// once, where the audit record goes.
#[derive(Debug, Clone, Args)]
pub struct GateArgs {
    /// Report format on stdout (json: one object, described in docs/report.md).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Checks run in parallel at most this many at a time (default: number of CPUs).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Append the JSON-lines audit record here (default in Actions:
    /// `$RUNNER_TEMP/agent-gate/audit-<run id>-<attempt>.jsonl`; none outside Actions).
    #[arg(long)]
    pub audit_file: Option<PathBuf>,
}

/// Arguments of `run`. Every flag is also its Action input (`INPUT_<NAME>`).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// What the agent should do.
    #[arg(long, env = "INPUT_INSTRUCTION", default_value = "")]
    pub instruction: String,
    /// Narrow the policy's allow rules (comma- or newline-separated globs).
    #[arg(long, env = "INPUT_SCOPE")]
    pub scope: Vec<String>,
    /// Policy file path inside the repository, read at the base ref.
    #[arg(long, default_value = crate::core::policy::DEFAULT_POLICY_PATH, env = "INPUT_POLICY")]
    pub policy: String,
    /// User token for the agent-tasks API (installation tokens such as `GITHUB_TOKEN` are
    /// refused by GitHub). Only from the environment (`INPUT_TOKEN`) or `--token-file`: a
    /// token on the command line is readable by every process, checks included
    /// (`/proc/<pid>/cmdline`), so `--token VALUE` is refused.
    #[arg(
        long,
        env = "INPUT_TOKEN",
        hide_env_values = true,
        default_value = "",
        value_name = "REFUSED"
    )]
    pub token: String,
    /// Read the agent-tasks token from this file (its first line).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Token for commit statuses, labels and comments (default: the agent-tasks token). Only
    /// from the environment (`INPUT_GITHUB-TOKEN`) or `--github-token-file`.
    #[arg(
        long,
        env = "INPUT_GITHUB-TOKEN",
        hide_env_values = true,
        value_name = "REFUSED"
    )]
    pub github_token: Option<String>,
    /// Read the token for statuses and comments from this file (its first line).
    #[arg(long, value_name = "FILE")]
    pub github_token_file: Option<PathBuf>,
    /// Base branch of the task and the change (default: the policy's agent.base-ref, else the
    /// remote's default branch, else `main`).
    #[arg(long, env = "INPUT_BASE-REF")]
    pub base_ref: Option<String>,
    /// Deadline of the whole run, e.g. 45m (default: the policy's agent.timeout).
    #[arg(long, env = "INPUT_TIMEOUT")]
    pub timeout: Option<String>,
    /// Attach to this task instead of starting one.
    #[arg(long, env = "INPUT_TASK-ID")]
    pub task_id: Option<String>,
    /// Idempotency key (default: derived from repository, run id, job, step and instruction).
    #[arg(long, env = "INPUT_TASK-KEY")]
    pub task_key: Option<String>,
    /// Everything but starting a task: print the prompt that would be sent.
    #[arg(long, env = "INPUT_DRY-RUN", action = clap::ArgAction::Set, default_value_t = false, default_missing_value = "true", num_args = 0..=1, value_parser = clap::builder::FalseyValueParser::new())]
    pub dry_run: bool,
    /// REST API base URL (GitHub Enterprise Server, or `agent-gate sim`).
    #[arg(long, env = "INPUT_API-URL", default_value = crate::adapters::github::DEFAULT_API_URL)]
    pub api_url: String,
    /// Model for the agent (omit for automatic selection).
    #[arg(long, env = "INPUT_MODEL")]
    pub model: Option<String>,
    /// Custom agent (file name under .github/agents/ without extension).
    #[arg(long, env = "INPUT_CUSTOM-AGENT")]
    pub custom_agent: Option<String>,
    /// high, normal or low: under agent.max-concurrent-tasks a waiting run of higher priority
    /// gets the next free slot first, and only high runs take agent.reserved-for-high slots.
    #[arg(long, env = "INPUT_PRIORITY", default_value = "normal")]
    pub priority: String,
    /// Follow-up tasks that get the gate's findings when the change fails its checks or
    /// leaves the scope (default: the policy's agent.repair-rounds).
    #[arg(long, env = "INPUT_REPAIR-ROUNDS")]
    pub repair_rounds: Option<String>,
    /// Start a new task no earlier than this time (RFC 3339, e.g. 2026-03-10T02:17:40Z):
    /// the pacing `plan` gives each job of a batch with `tasks-per-minute` (its `not-before`).
    /// A run that attaches to its task does not wait. Empty: at once.
    #[arg(long, env = "INPUT_NOT-BEFORE")]
    pub not_before: Option<String>,
    /// Pace this run's writes (task creation, commit statuses, comments, labels) together
    /// with every run that shares the token and the ledger: limits as N/DURATION separated by
    /// commas, e.g. `1/s, 480/h` (GitHub allows one user about 80 content-creating requests a
    /// minute and 500 an hour). Empty: writes go at once.
    #[arg(long, env = "INPUT_WRITE-PACE")]
    pub write_pace: Option<String>,
    /// Where the write-pace ledger is kept (`refs/agent-gate/pace/writes`): `owner/repo` on the
    /// same server, a git URL or a path; every run of a fleet must name the same one.
    /// Default: the workflow's repository (`GITHUB_REPOSITORY`) when it is not the target,
    /// else --remote.
    #[arg(long, env = "INPUT_PACE-LEDGER")]
    pub pace_ledger: Option<String>,
    /// `owner/repo` the task is started on and the change is gated for (default:
    /// `GITHUB_REPOSITORY`, the workflow's own). `--repo` must be a clone of it.
    #[arg(long, env = "INPUT_REPOSITORY")]
    pub repository: Option<String>,
    /// The repository to work in (a clone).
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Remote the base and the agent's branch are fetched from (name, URL or path).
    #[arg(long, default_value = "origin")]
    pub remote: String,
    #[command(flatten)]
    pub gate: GateArgs,
}

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Show this task (default: list the repository's tasks).
    pub task_id: Option<String>,
    /// User token for the agent-tasks API (not needed with --admission). Only from the
    /// environment (`INPUT_TOKEN`) or `--token-file`; `--token VALUE` is refused.
    #[arg(
        long,
        env = "INPUT_TOKEN",
        hide_env_values = true,
        default_value = "",
        value_name = "REFUSED"
    )]
    pub token: String,
    /// Read the agent-tasks token from this file (its first line).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// `owner/repo` (not needed with --admission).
    #[arg(long, env = "GITHUB_REPOSITORY", default_value = "")]
    pub repository: String,
    /// Show the admission lock instead: who holds `refs/agent-gate/admission/lock`, the
    /// leases of admitted runs and the runs waiting, read from the remote with git.
    #[arg(long)]
    pub admission: bool,
    /// With --admission: the clone to read the remote from.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// With --admission: the remote (name, URL or path).
    #[arg(long, default_value = "origin")]
    pub remote: String,
    /// REST API base URL.
    #[arg(long, env = "INPUT_API-URL", default_value = crate::adapters::github::DEFAULT_API_URL)]
    pub api_url: String,
    /// Output format (json: the task objects as GitHub's agent-tasks API returns them).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Arguments of `sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Port on 127.0.0.1 (0 = any free port; the first line printed names it).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The bare repository that plays GitHub's copy (created with one commit on `main` if missing).
    #[arg(long)]
    pub repo: PathBuf,
    /// Serve OWNER/REPO from its own bare repository DIR (created like --repo if missing);
    /// repeat for a fleet. Every other repository is served from --repo.
    #[arg(long, value_name = "OWNER/REPO=DIR")]
    pub serve: Vec<String>,
    /// A scenario file scripting the simulated agent (docs/simulator.md).
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Time runs this many times faster (600 = a 10-minute task in one second).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
}

/// Arguments of `report`.
#[derive(Debug, Args)]
pub struct FleetReportArgs {
    /// Audit files (JSON lines) of the runs, e.g. the downloaded artifacts of a matrix job; a
    /// directory stands for every file under it. One row per task: the runs of a re-run
    /// that attached to the same task (same repository and task key) are merged, the
    /// latest shown. Exit 0 whatever the verdicts; 2 when a file cannot be read.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Output format on stdout: text for a terminal, or json (the runs and totals, described
    /// in docs/fleet.md); the step summary gets Markdown either way.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Run this scenario file instead of the built-in three.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
}

/// Arguments of `validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The policy file to validate.
    #[arg(default_value = crate::core::policy::DEFAULT_POLICY_PATH, env = "INPUT_POLICY")]
    pub policy: PathBuf,
}

/// Arguments of `explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The policy file (read from disk, so a policy can be tried before it is committed).
    #[arg(long, default_value = crate::core::policy::DEFAULT_POLICY_PATH, env = "INPUT_POLICY")]
    pub policy: PathBuf,
    /// Narrow the allow rules as `check --scope` does.
    #[arg(long)]
    pub scope: Vec<String>,
    /// Read the paths to decide from this file, one a line (`-`: standard input), e.g.
    /// `git ls-files | agent-gate explain --paths-from -` to audit a policy against a whole
    /// repository; decisions are printed as the paths come.
    #[arg(long, value_name = "FILE", conflicts_with = "paths")]
    pub paths_from: Option<PathBuf>,
    /// With --paths-from: the paths are separated by NUL bytes, as `git ls-files -z` writes
    /// them (names with newlines or quotes come through as they are).
    #[arg(short = 'z', long, requires = "paths_from")]
    pub null: bool,
    /// text: one line a path; json: one JSON object a line (`path`, `in_scope`, `reason` and
    /// the deciding `rule` with its origin).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Repository-relative paths to decide.
    #[arg(required_unless_present = "paths_from")]
    pub paths: Vec<String>,
}
