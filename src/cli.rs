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
    /// The whole flow: start (or attach to) an agent task, poll it to the deadline, gate its
    /// change. The Action's default command.
    Run(Box<RunArgs>),
    /// Gate an existing change (no agent): scope-check base...head and run the policy's checks.
    Check(CheckArgs),
    /// Parse and compile a policy file, print what it allows; exit 0, or 2 with the errors.
    Validate(ValidateArgs),
    /// For each path: in or out of scope, and the rule (text, line) that decided.
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
    #[arg(long, env = "INPUT_SCOPE")]
    pub scope: Vec<String>,
    /// Report format on stdout.
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
    #[arg(long, default_value = crate::policy::DEFAULT_POLICY_PATH, env = "INPUT_POLICY")]
    pub policy: String,
    /// User token for the agent-tasks API (installation tokens such as `GITHUB_TOKEN` are refused by GitHub).
    #[arg(long, env = "INPUT_TOKEN", hide_env_values = true, default_value = "")]
    pub token: String,
    /// Token for commit statuses, labels and comments (default: --token).
    #[arg(long, env = "INPUT_GITHUB-TOKEN", hide_env_values = true)]
    pub github_token: Option<String>,
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
    #[arg(long, env = "INPUT_API-URL", default_value = crate::github::DEFAULT_API_URL)]
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
    /// `owner/repo` on GitHub.
    #[arg(long, env = "GITHUB_REPOSITORY")]
    pub repository: Option<String>,
    /// The repository to work in (a clone).
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Remote the base and the agent's branch are fetched from (name, URL or path).
    #[arg(long, default_value = "origin")]
    pub remote: String,
    /// Report format on stdout.
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

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Show this task (default: list the repository's tasks).
    pub task_id: Option<String>,
    /// User token for the agent-tasks API (not needed with --admission).
    #[arg(long, env = "INPUT_TOKEN", hide_env_values = true, default_value = "")]
    pub token: String,
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
    #[arg(long, env = "INPUT_API-URL", default_value = crate::github::DEFAULT_API_URL)]
    pub api_url: String,
    /// Output format.
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
    /// Audit files (JSON lines) of the runs, e.g. the downloaded artifacts of a matrix job.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Output format on stdout.
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
    #[arg(long)]
    pub scope: Vec<String>,
    /// Repository-relative paths to decide.
    #[arg(required = true)]
    pub paths: Vec<String>,
}

/// Parse the process arguments.
pub fn parse() -> Cli {
    Cli::parse()
}

fn runtime(err: &mut dyn Write) -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => Some(r),
        Err(e) => {
            let _ = writeln!(err, "error: cannot start the async runtime: {e}");
            None
        }
    }
}

/// Run a parsed command line and return the process exit code.
pub fn main(cli: Cli) -> u8 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
    match cli.command {
        Command::Validate(a) => crate::flow::validate(&a.policy, &mut out, &mut err),
        Command::Explain(a) => {
            crate::flow::explain(&a.policy, &a.scope, &a.paths, &mut out, &mut err)
        }
        Command::Check(a) => {
            let Some(rt) = runtime(&mut err) else {
                return Verdict::ConfigError.exit_code();
            };
            let mut io = crate::flow::actions_io(out, &secrets_from_env());
            let publish = crate::flow::PublishOptions {
                json: a.format == Format::Json,
                audit_file: a.audit_file.clone(),
                policy_path: a.policy.clone(),
                audit: crate::audit::AuditStream::none(),
            };
            let opts = crate::flow::CheckOptions {
                repo: a.repo,
                base: a.base,
                head: a.head,
                policy_path: a.policy,
                scope: split_list(&a.scope),
                jobs: a.jobs,
            };
            let report = rt.block_on(async {
                let shutdown = crate::shutdown::Shutdown::from_os_signals()
                    .unwrap_or_else(|_| crate::shutdown::Shutdown::never());
                crate::flow::check(opts, shutdown).await
            });
            crate::flow::publish(report, &mut io, &publish, &mut err)
        }
        Command::Run(a) => {
            let Some(rt) = runtime(&mut err) else {
                return Verdict::ConfigError.exit_code();
            };
            let timeout = match a
                .timeout
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                None => None,
                Some(t) => {
                    let Some(d) = crate::policy::parse_duration(t) else {
                        let _ = writeln!(
                            err,
                            "error: timeout `{t}` is not a duration like 30s, 45m or 2h"
                        );
                        return Verdict::ConfigError.exit_code();
                    };
                    Some(d)
                }
            };
            let priority = if a.priority.trim().is_empty() {
                crate::manifest::Priority::default()
            } else if let Some(p) = crate::manifest::Priority::parse(&a.priority) {
                p
            } else {
                let _ = writeln!(
                    err,
                    "error: priority `{}` must be high, normal or low",
                    a.priority
                );
                return Verdict::ConfigError.exit_code();
            };
            let repair_rounds = match a
                .repair_rounds
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
            {
                None => None,
                Some(r) => {
                    let Ok(n) = r.parse::<u32>() else {
                        let _ = writeln!(
                            err,
                            "error: repair-rounds `{r}` is not a whole number of rounds like 0, 1 or 2"
                        );
                        return Verdict::ConfigError.exit_code();
                    };
                    Some(n)
                }
            };
            let env: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os().collect();
            let var = |k: &str| std::env::var(k).unwrap_or_default();
            let nonempty = |s: Option<String>| s.filter(|v| !v.trim().is_empty());
            let opts = crate::flow::RunOptions {
                remote: a.remote,
                instruction: a.instruction,
                scope: split_list(&a.scope),
                policy_path: a.policy,
                github_token: nonempty(a.github_token),
                base_ref: nonempty(a.base_ref),
                timeout,
                task_id: nonempty(a.task_id),
                task_key: nonempty(a.task_key),
                dry_run: a.dry_run,
                model: nonempty(a.model),
                custom_agent: nonempty(a.custom_agent),
                jobs: a.jobs,
                key_inputs: crate::prompt::KeyInputs {
                    repository: var("GITHUB_REPOSITORY"),
                    run_id: var("GITHUB_RUN_ID"),
                    job: var("GITHUB_JOB"),
                    step: var("GITHUB_ACTION"),
                    instruction: String::new(),
                },
                gate_env: env,
                priority,
                repair_rounds,
                ..crate::flow::RunOptions::new(
                    a.repo,
                    a.repository.unwrap_or_default(),
                    a.api_url,
                    a.token.trim(),
                )
            };
            let mut secrets = secrets_from_env();
            secrets.push(opts.token.clone());
            secrets.extend(opts.github_token.clone());
            let mut io = crate::flow::actions_io(out, &secrets);
            // The audit record is written as the run goes (a killed gate leaves its steps).
            let audit = crate::flow::open_audit(&io, a.audit_file.as_deref(), &mut err);
            let opts = crate::flow::RunOptions {
                audit: audit.clone(),
                ..opts
            };
            let publish = crate::flow::PublishOptions {
                json: a.format == Format::Json,
                audit_file: a.audit_file.clone(),
                policy_path: opts.policy_path.clone(),
                audit,
            };
            let report = rt.block_on(async {
                let shutdown = crate::shutdown::Shutdown::from_os_signals()
                    .unwrap_or_else(|_| crate::shutdown::Shutdown::never());
                let mut progress = crate::progress::ProgressWriter::stderr();
                crate::flow::run(opts, shutdown, &mut progress).await
            });
            crate::flow::publish(report, &mut io, &publish, &mut err)
        }
        Command::Status(a) => {
            if a.admission {
                return crate::flow::admission_status(
                    &a.repo,
                    &a.remote,
                    a.format == Format::Json,
                    &mut out,
                    &mut err,
                );
            }
            let Some(rt) = runtime(&mut err) else {
                return Verdict::ConfigError.exit_code();
            };
            rt.block_on(crate::flow::status(
                &a.repository,
                &a.token,
                &a.api_url,
                a.task_id.as_deref(),
                a.format == Format::Json,
                &mut out,
                &mut err,
            ))
        }
        Command::Sim(a) => {
            let Some(rt) = runtime(&mut err) else {
                return Verdict::ConfigError.exit_code();
            };
            let scenario = match a
                .scenario
                .as_deref()
                .map(crate::sim::Scenario::load)
                .transpose()
            {
                Ok(s) => s,
                Err(e) => {
                    let _ = writeln!(err, "error: {e}");
                    return Verdict::ConfigError.exit_code();
                }
            };
            let cfg = crate::sim::SimConfig {
                repo: a.repo,
                scenario,
                time_scale: a.time_scale,
            };
            match rt.block_on(crate::sim::serve_forever(cfg, a.port, std::io::stdout())) {
                Ok(()) => 0,
                Err(e) => {
                    let _ = writeln!(err, "error: {e}");
                    Verdict::ConfigError.exit_code()
                }
            }
        }
        Command::Report(a) => fleet_report(&a, &mut out, &mut err),
        Command::Demo(a) => {
            let Some(rt) = runtime(&mut err) else {
                return Verdict::ConfigError.exit_code();
            };
            // Progress is written while the gate runs, from a `Send` handle (the lock
            // `out` holds is re-entrant on this thread).
            rt.block_on(crate::demo::run(
                a.scenario.as_deref(),
                &mut std::io::stdout(),
            ))
        }
        Command::Plan(a) => {
            use crate::manifest::{PlanCommand, PlanOutput};
            let cmd = PlanCommand {
                manifest: a.manifest,
                date: a.date,
                today: crate::manifest::today_utc(),
                format: a.format.map(|f| match f {
                    Format::Text => PlanOutput::Text,
                    Format::Json => PlanOutput::Json,
                }),
                github_output: std::env::var_os("GITHUB_OUTPUT")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from),
                annotate: std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true"),
            };
            crate::manifest::plan_command(&cmd, &mut out, &mut err)
        }
    }
}

fn fleet_report(a: &FleetReportArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let mut texts = Vec::new();
    for f in &a.files {
        match std::fs::read(f) {
            Ok(bytes) => texts.push((
                f.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            )),
            Err(e) => {
                let _ = writeln!(
                    err,
                    "error: cannot read the audit file {}: {e}",
                    f.display()
                );
                return Verdict::ConfigError.exit_code();
            }
        }
    }
    let report = crate::fleet::FleetReport::from_audit_texts(
        texts.iter().map(|(n, t)| (n.as_str(), t.as_str())),
    );
    let markdown = report.render_markdown();
    let text = match a.format {
        Format::Text => markdown.clone(),
        Format::Json => report.to_json() + "\n",
    };
    let _ = out.write_all(text.as_bytes());
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty())
        && let Err(e) = crate::actions::write_summary(
            std::path::Path::new(&summary),
            &markdown,
            "the audit artifacts",
        )
    {
        let _ = writeln!(err, "error: cannot write the step summary: {e}");
    }
    0
}

/// Values of environment variables that hold secrets (names with TOKEN, SECRET, PASSWORD
/// or KEY), to be masked in everything the gate prints or writes.
fn secrets_from_env() -> Vec<String> {
    std::env::vars()
        .filter(|(k, v)| {
            let k = k.to_ascii_uppercase();
            v.len() >= 4
                && ["TOKEN", "SECRET", "PASSWORD", "_KEY"]
                    .iter()
                    .any(|w| k.contains(w))
                && !k.ends_with("TASK-KEY")
        })
        .map(|(_, v)| v)
        .collect()
}

/// Split list inputs that may arrive comma- or newline-separated (Action inputs are one
/// string); commas inside `{a,b}` alternations do not split. Trims entries and drops
/// empty ones.
pub fn split_list(items: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for item in items {
        let mut depth = 0usize;
        let mut current = String::new();
        for ch in item.chars() {
            match ch {
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            if ch == '\n' || (ch == ',' && depth == 0) {
                out.push(std::mem::take(&mut current));
            } else {
                current.push(ch);
            }
        }
        out.push(current);
    }
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}
