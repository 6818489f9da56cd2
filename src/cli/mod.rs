//! The command line (DESIGN §4): dispatch. Each command's parsed arguments become calls of
//! library functions, one function per command, and their outcomes exit codes; `run`'s
//! flags and the workflow's environment are compiled into
//! [`RunOptions`](crate::flow::RunOptions) first. It holds no logic of its own: the flows
//! are `crate::flow`'s, the rest the modules each command names.

mod args;
mod config;

use std::io::Write;
use std::path::PathBuf;

use crate::adapters::github::ApiUrl;
use crate::core::report::Verdict;
use crate::core::scope::{PatternError, ScopeInput};
use crate::core::secret::Token;
use crate::core::slug::RepoSlug;

pub use args::{
    CheckArgs, Cli, Command, DemoArgs, ExplainArgs, FleetReportArgs, Format, GateArgs, PlanArgs,
    RunArgs, SimArgs, StatusArgs, ValidateArgs,
};

/// Parse the process arguments. A token given on the command line (`--token VALUE`,
/// `--github-token VALUE`) is refused as a usage error (exit 2) before anything runs: every
/// process of the machine, the checks the gate runs included, can read the gate's
/// `/proc/<pid>/cmdline`, and masking cannot catch a re-encoded copy. The error never
/// repeats the value.
pub fn parse() -> Cli {
    try_parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
}

/// [`parse`] on the given arguments (the first is the program name).
pub fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::{CommandFactory, FromArgMatches, parser::ValueSource};
    let mut command = Cli::command();
    let matches = command.try_get_matches_from_mut(args)?;
    if let Some((name, sub)) = matches.subcommand() {
        for id in ["token", "github_token"] {
            let on_the_line = sub.try_get_raw(id).is_ok_and(|v| v.is_some())
                && sub.value_source(id) == Some(ValueSource::CommandLine);
            if on_the_line {
                let flag = id.replace('_', "-");
                let input = format!("INPUT_{}", flag.to_ascii_uppercase());
                return Err(command.error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!(
                        "`{name} --{flag}` is refused: a token on the command line is readable by \
                         every process of the machine (/proc/<pid>/cmdline), the checks the gate \
                         runs included. Set {input} in the environment, or pass --{flag}-file FILE"
                    ),
                ));
            }
        }
    }
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))
}

/// The token of a `*_file` flag or, without one, of its environment variable (`from_env`,
/// what clap read from `INPUT_*`): the file's first line, trimmed. Both given is an error,
/// so a run never uses a token it was not meant to.
fn token(
    from_env: Option<&str>,
    file: Option<&std::path::Path>,
    input: &'static str,
) -> Result<Option<Token>, TokenError> {
    let from_env = from_env.and_then(Token::given);
    match (from_env, file) {
        (Some(_), Some(f)) => Err(TokenError::Both {
            input,
            file: f.to_path_buf(),
        }),
        (Some(t), None) => Ok(Some(t)),
        (None, None) => Ok(None),
        (None, Some(f)) => {
            let text = std::fs::read_to_string(f).map_err(|source| TokenError::Read {
                file: f.to_path_buf(),
                source,
            })?;
            match Token::given(text.lines().next().unwrap_or("")) {
                Some(token) => Ok(Some(token)),
                None => Err(TokenError::Empty {
                    file: f.to_path_buf(),
                }),
            }
        }
    }
}

/// A token given in a way that cannot be used (never its value).
#[derive(Debug, thiserror::Error)]
enum TokenError {
    #[error("both {input} and a token file ({}) are set: give the token one way", file.display())]
    Both { input: &'static str, file: PathBuf },
    #[error("cannot read the token file {}: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the token file {} is empty", file.display())]
    Empty { file: PathBuf },
}

/// The `scope` input (`--scope`): split ([`split_list`]) and compiled, before anything
/// else is read.
fn scope_input(items: &[String]) -> Result<ScopeInput, ScopeInputError> {
    Ok(ScopeInput::new(&split_list(items))?)
}

/// A `scope` input that cannot be compiled: a glob that is not one, or an input over its
/// limits (the message names the glob).
#[derive(Debug, thiserror::Error)]
#[error("scope input: {0}")]
pub(crate) struct ScopeInputError(#[from] PatternError);

/// Say on `err` why a command cannot start or go on (`error: …`); the configuration
/// error's exit code.
fn refuse(err: &mut dyn Write, why: impl std::fmt::Display) -> u8 {
    let _ = writeln!(err, "error: {why}");
    Verdict::ConfigError.exit_code()
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
    init_logging();
    match cli.command {
        Command::Validate(a) => crate::flow::validate(&a.policy, &mut out, &mut err),
        Command::Explain(a) => explain(a, &mut out, &mut err),
        Command::Check(a) => check(a, out, &mut err),
        Command::Run(a) => run(*a, out, &mut err),
        Command::Status(a) => status(&a, &mut out, &mut err),
        Command::Sim(a) => sim(a, &mut err),
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
        Command::Plan(a) => plan(a, &mut out, &mut err),
    }
}

/// Log events go to stderr. Warnings quote what the API answered: each is neutralized on
/// its way (the Actions runner reads stderr for workflow commands too), and so written
/// without colours. Debug lines (the raw git commands behind a failure, each API retry's
/// cause) when the runner's debug logging is on (`RUNNER_DEBUG=1`) or `AGENT_GATE_DEBUG` is
/// set.
fn init_logging() {
    let debug = std::env::var_os("RUNNER_DEBUG").is_some_and(|v| v == "1")
        || std::env::var_os("AGENT_GATE_DEBUG").is_some_and(|v| !v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_writer(|| SafeStderr)
        .with_ansi(false)
        .with_max_level(if debug {
            tracing::Level::DEBUG
        } else {
            tracing::Level::INFO
        })
        .with_target(false)
        .without_time()
        .try_init();
}

/// `agent-gate check`: gate an existing change and publish the report.
fn check(a: CheckArgs, out: std::io::StdoutLock<'static>, err: &mut dyn Write) -> u8 {
    let scope = match scope_input(&a.scope) {
        Ok(s) => s,
        Err(e) => return refuse(err, e),
    };
    let Some(rt) = runtime(err) else {
        return Verdict::ConfigError.exit_code();
    };
    let mut io = crate::flow::publish::actions_io(out, &secrets_from_env());
    let publish = crate::flow::publish::PublishOptions {
        json: a.gate.format == Format::Json,
        audit_file: a.gate.audit_file.clone(),
        policy_path: a.policy.clone(),
        audit: crate::adapters::audit::AuditStream::none(),
    };
    let opts = crate::flow::CheckOptions {
        repo: a.repo,
        base: a.base,
        head: a.head,
        policy_path: a.policy,
        scope,
        jobs: a.gate.jobs,
    };
    let report = rt.block_on(async {
        let shutdown = crate::adapters::shutdown::Shutdown::from_os_signals()
            .unwrap_or_else(|_| crate::adapters::shutdown::Shutdown::never());
        crate::flow::check(opts, shutdown).await
    });
    crate::flow::publish::publish(report, &mut io, &publish, err)
}

/// `agent-gate status`: the admission refs, or the repository's tasks.
fn status(a: &StatusArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    if a.admission {
        return crate::flow::admission_status(
            &a.repo,
            &a.remote,
            a.format == Format::Json,
            out,
            err,
        );
    }
    let (repository, token, api_url) = match status_inputs(a) {
        Ok(inputs) => inputs,
        Err(e) => return refuse(err, e),
    };
    let Some(rt) = runtime(err) else {
        return Verdict::ConfigError.exit_code();
    };
    rt.block_on(crate::flow::status(
        &repository,
        &token,
        &api_url,
        a.task_id.as_deref(),
        a.format == Format::Json,
        out,
        err,
    ))
}

/// Why `status` cannot read a repository's tasks.
#[derive(Debug, thiserror::Error)]
enum StatusInputError {
    #[error("repository {0} (set --repository or GITHUB_REPOSITORY)")]
    Repository(#[from] crate::core::slug::SlugError),
    #[error(
        "a token is required (INPUT_TOKEN or --token-file): a user token with \"Agent tasks\" read"
    )]
    NoToken,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    ApiUrl(#[from] crate::adapters::github::ApiUrlError),
}

/// `status`'s repository, token and API URL, parsed.
fn status_inputs(a: &StatusArgs) -> Result<(RepoSlug, Token, ApiUrl), StatusInputError> {
    let token = token(Some(&a.token), a.token_file.as_deref(), "INPUT_TOKEN")?;
    let repository = RepoSlug::parse(&a.repository)?;
    let api_url = ApiUrl::parse(&a.api_url)?;
    Ok((repository, token.ok_or(StatusInputError::NoToken)?, api_url))
}

/// A `--serve OWNER/REPO=DIR` of `sim` that cannot be used.
#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error("--serve {served}: {source}")]
    Slug {
        served: String,
        #[source]
        source: crate::core::slug::SlugError,
    },
    #[error(
        "--serve {served}: expected OWNER/REPO=DIR, e.g. --serve octo-org/ledger=/tmp/ledger.git"
    )]
    Form { served: String },
}

/// The repositories `sim --serve` names, each `(owner/repo, bare repository)`.
fn served(serve: &[String]) -> Result<Vec<(String, PathBuf)>, ServeError> {
    serve
        .iter()
        .map(|served| {
            let (slug, dir) = served
                .split_once('=')
                .filter(|(_, dir)| !dir.is_empty())
                .ok_or_else(|| ServeError::Form {
                    served: served.clone(),
                })?;
            let slug =
                crate::core::slug::RepoSlug::parse(slug).map_err(|source| ServeError::Slug {
                    served: served.clone(),
                    source,
                })?;
            Ok((slug.to_string(), dir.into()))
        })
        .collect()
}

/// `agent-gate sim`: serve the simulator until interrupted.
fn sim(a: SimArgs, err: &mut dyn Write) -> u8 {
    let Some(rt) = runtime(err) else {
        return Verdict::ConfigError.exit_code();
    };
    let scenario = a
        .scenario
        .as_deref()
        .map(crate::sim::Scenario::load)
        .transpose();
    let (scenario, repositories) = match (scenario, served(&a.serve)) {
        (Ok(s), Ok(r)) => (s, r),
        (Err(e), _) => return refuse(err, e),
        (_, Err(e)) => return refuse(err, e),
    };
    let cfg = crate::sim::SimConfig {
        repo: a.repo,
        repositories,
        scenario,
        time_scale: a.time_scale,
    };
    match rt.block_on(crate::sim::serve_forever(cfg, a.port, std::io::stdout())) {
        Ok(()) => 0,
        Err(e) => refuse(err, e),
    }
}

/// `agent-gate plan`: the night's jobs from the manifest.
fn plan(a: PlanArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    use crate::flow::fleet::{LoadSource, PlanCommand, PlanOutput};
    let review_load = if a.review_load {
        let from_env = std::env::var("INPUT_TOKEN").ok();
        match token(from_env.as_deref(), a.token_file.as_deref(), "INPUT_TOKEN") {
            Ok(Some(token)) => Some(LoadSource {
                api_url: a.api_url.clone(),
                server_url: std::env::var("GITHUB_SERVER_URL")
                    .ok()
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or_else(|| "https://github.com".to_string()),
                token,
            }),
            Ok(None) => {
                return refuse(
                    err,
                    "--review-load reads GitHub: give a token that can read the repositories' pull requests and contents (INPUT_TOKEN or --token-file)",
                );
            }
            Err(e) => return refuse(err, e),
        }
    } else {
        None
    };
    let cmd = PlanCommand {
        manifest: a.manifest,
        date: a.date,
        today: crate::core::manifest::today_utc(),
        now: jiff::Timestamp::now(),
        format: a.format.map(|f| match f {
            Format::Text => PlanOutput::Text,
            Format::Json => PlanOutput::Json,
        }),
        github_output: std::env::var_os("GITHUB_OUTPUT")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        annotate: std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true"),
        review_load,
    };
    crate::flow::fleet::plan_command(&cmd, out, err)
}

/// stderr for log events: each write (tracing formats one event per write) is
/// [`neutralize`](crate::core::report::neutralize)d, so text an API server chose cannot forge a
/// workflow command or a terminal escape.
struct SafeStderr;

impl Write for SafeStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(crate::core::report::neutralize(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// `agent-gate run`: compile the flags and the environment into the run's options, run,
/// and publish the report.
fn run(a: RunArgs, out: std::io::StdoutLock<'static>, err: &mut dyn Write) -> u8 {
    let Some(rt) = runtime(err) else {
        return Verdict::ConfigError.exit_code();
    };
    let gate = a.gate.clone();
    let opts = match config::run_options(a, std::env::vars_os().collect()) {
        Ok(o) => o,
        Err(e) => return refuse(err, e),
    };
    let mut secrets = secrets_from_env();
    secrets.extend(
        opts.token
            .iter()
            .chain(&opts.github_token)
            .map(|t| t.expose().to_string()),
    );
    let mut io = crate::flow::publish::actions_io(out, &secrets);
    io.set_target_repository(&opts.repository);
    // The audit record is written as the run goes (a killed gate leaves its steps).
    let audit = crate::flow::publish::open_audit(&io, gate.audit_file.as_deref(), err);
    let opts = crate::flow::RunOptions {
        audit: audit.clone(),
        ..opts
    };
    let publish = crate::flow::publish::PublishOptions {
        json: gate.format == Format::Json,
        audit_file: gate.audit_file.clone(),
        policy_path: opts.policy_path.clone(),
        audit,
    };
    let report = rt.block_on(async {
        let shutdown = crate::adapters::shutdown::Shutdown::from_os_signals()
            .unwrap_or_else(|_| crate::adapters::shutdown::Shutdown::never());
        let mut progress = crate::adapters::progress::ProgressWriter::stderr();
        crate::flow::run(opts, shutdown, &mut progress).await
    });
    crate::flow::publish::publish(report, &mut io, &publish, err)
}

/// A directory of audit files that cannot be listed.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the directory {}: {source}", dir.display())]
struct DirError {
    dir: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The audit files named: a directory stands for every file under it (the layout
/// `actions/download-artifact` leaves, one folder per artifact), in name order.
fn audit_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, DirError> {
    fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) -> Result<(), DirError> {
        let entries = std::fs::read_dir(dir).map_err(|source| DirError {
            dir: dir.to_path_buf(),
            source,
        })?;
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                walk(&p, out)?;
            } else {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn fleet_report(a: &FleetReportArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let files = match audit_files(&a.files) {
        Ok(f) => f,
        Err(e) => return refuse(err, e),
    };
    let mut texts = Vec::new();
    for f in &files {
        match std::fs::read(f) {
            Ok(bytes) => texts.push((
                f.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            )),
            Err(e) => {
                return refuse(
                    err,
                    format_args!("cannot read the audit file {}: {e}", f.display()),
                );
            }
        }
    }
    let report = crate::flow::fleet::FleetReport::from_audit_texts(
        texts.iter().map(|(n, t)| (n.as_str(), t.as_str())),
    );
    let markdown = report.render_markdown();
    let text = match a.format {
        Format::Text => report.render_text(),
        Format::Json => report.to_json() + "\n",
    };
    let _ = out.write_all(text.as_bytes());
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty())
        && let Err(e) = crate::adapters::actions::write_summary(
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

/// `agent-gate explain`: the paths from the arguments, or streamed from `--paths-from`.
fn explain(a: ExplainArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    use std::io::BufRead;
    let scope = match scope_input(&a.scope) {
        Ok(s) => s,
        Err(e) => return refuse(err, e),
    };
    let json = a.format == Format::Json;
    let Some(file) = a.paths_from else {
        let mut paths = a.paths.into_iter().map(|p| Ok(p.into_bytes()));
        return crate::flow::explain(&a.policy, &scope, &mut paths, json, out, err);
    };
    let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        match std::fs::File::open(&file) {
            Ok(f) => Box::new(std::io::BufReader::new(f)),
            Err(e) => return refuse(err, format_args!("cannot read {}: {e}", file.display())),
        }
    };
    let separator = if a.null { b'\0' } else { b'\n' };
    let mut paths = reader.split(separator).filter_map(move |line| match line {
        Ok(mut p) => {
            if separator == b'\n' && p.last() == Some(&b'\r') {
                p.pop();
            }
            (!p.is_empty()).then_some(Ok(p))
        }
        Err(e) => Some(Err(e)),
    });
    crate::flow::explain(&a.policy, &scope, &mut paths, json, out, err)
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
