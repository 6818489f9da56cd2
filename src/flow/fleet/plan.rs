//! `agent-gate plan`: the thin I/O shell around [`Manifest::from_yaml`] and [`plan`] — read
//! the manifest file, write the matrix to `GITHUB_OUTPUT` (as `matrix`, with `jobs`, the
//! count) when the runner gave one, else to stdout, a short summary on stderr, and errors as
//! `::error file=…,line=…,col=…::` annotations inside Actions. The environment is injected
//! (the `GITHUB_OUTPUT` path, whether to annotate); nothing here reads it.

use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::civil::Date;

use super::load::{LoadError, LoadSource, RepoLoad, review_load};
use crate::adapters::actions::{Annotation, set_output};
use crate::core::manifest::{Manifest, ManifestError, parse_date, plan};
use crate::core::report::Verdict;

/// What `plan` prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanOutput {
    /// The matrix JSON, on one line.
    Json,
    /// A table of the jobs.
    Text,
}

/// Inputs of [`plan_command`].
#[derive(Debug, Clone)]
pub struct PlanCommand {
    pub manifest: PathBuf,
    /// `--date` as given (`YYYY-MM-DD`); `None`: `today`.
    pub date: Option<String>,
    /// Today in UTC, injected.
    pub today: Date,
    /// Now, injected: the start of the batch's pacing (`tasks-per-minute`).
    pub now: jiff::Timestamp,
    /// `--format`; `None`: the matrix JSON on stdout unless it went to `GITHUB_OUTPUT`.
    pub format: Option<PlanOutput>,
    /// `GITHUB_OUTPUT`, when set and non-empty.
    pub github_output: Option<PathBuf>,
    /// Inside Actions (`GITHUB_ACTIONS=true`): errors also as `::error` annotations.
    pub annotate: bool,
    /// `--review-load`: also count each repository's open pull requests from agent-gate's
    /// tasks, read from GitHub with this source.
    pub review_load: Option<LoadSource>,
}

fn fail(e: &ManifestError, annotate: bool, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let _ = writeln!(err, "error: {e}");
    if annotate {
        let (line, column) = e.location();
        let mut message = e.message();
        if let Some(hint) = e.hint() {
            message.push_str("\nhint: ");
            message.push_str(&hint);
        }
        let a = Annotation::new(message)
            .title("agent-gate plan")
            .file(e.path())
            .line(u32::try_from(line).unwrap_or(0))
            .columns(
                u32::try_from(column).unwrap_or(0),
                u32::try_from(column).unwrap_or(0),
            );
        let _ = writeln!(out, "{}", crate::adapters::actions::error(&a));
    }
    Verdict::ConfigError.exit_code()
}

/// The manifest file cannot be read as text.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("{}: cannot read the manifest: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: the manifest is not UTF-8", path.display())]
    NotUtf8 { path: PathBuf },
}

fn read(path: &Path) -> Result<String, ReadError> {
    let bytes = std::fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8 {
        path: path.to_path_buf(),
    })
}

/// The review load of the plan's repositories, each once, in plan order.
fn count_review_load(
    jobs: &[crate::core::manifest::Job],
    source: &LoadSource,
) -> Result<Vec<RepoLoad>, LoadError> {
    let mut repositories: Vec<String> = Vec::new();
    for j in jobs {
        if !repositories
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&j.repository))
        {
            repositories.push(j.repository.clone());
        }
    }
    let scratch = tempfile::tempdir().map_err(LoadError::Setup)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LoadError::Setup)?;
    Ok(rt.block_on(review_load(&repositories, source, scratch.path())))
}

/// Run `agent-gate plan`; returns the exit code (0, or 2 for any error).
pub fn plan_command(cmd: &PlanCommand, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let config_error = Verdict::ConfigError.exit_code();
    let date = match cmd.date.as_deref().map(parse_date).transpose() {
        Ok(d) => d.unwrap_or(cmd.today),
        Err(e) => {
            let _ = writeln!(err, "error: --date: {e}");
            return config_error;
        }
    };
    let text = match read(&cmd.manifest) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return config_error;
        }
    };
    let path = cmd.manifest.to_string_lossy();
    let manifest = match Manifest::from_yaml_all(&text, &path) {
        Ok(m) => m,
        Err(errors) => {
            for e in &errors {
                fail(e, cmd.annotate, out, err);
            }
            if errors.len() > 1 {
                let _ = writeln!(err, "{path}: {} errors", errors.len());
            }
            return config_error;
        }
    };
    let planned = match plan(&manifest, date, cmd.now) {
        Ok(p) => p,
        Err(e) => return fail(&e, cmd.annotate, out, err),
    };
    let json = planned.matrix_json();
    if let Some(file) = &cmd.github_output {
        let written = set_output(file, "matrix", &json)
            .and_then(|()| set_output(file, "jobs", &planned.jobs.len().to_string()));
        if let Err(e) = written {
            let _ = writeln!(err, "error: cannot write the step outputs: {e}");
            return config_error;
        }
    }
    let _ = write!(err, "{}", planned.summary(&manifest));
    if let Some(source) = &cmd.review_load
        && let Err(code) = report_review_load(cmd, &planned, source, err)
    {
        return code;
    }
    let stdout = match cmd.format {
        Some(PlanOutput::Text) => Some(planned.table()),
        Some(PlanOutput::Json) => Some(json + "\n"),
        None if cmd.github_output.is_none() => Some(json + "\n"),
        None => None,
    };
    if let Some(text) = stdout {
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
    if cmd.github_output.is_some() {
        let _ = writeln!(
            err,
            "agent-gate plan: wrote outputs `matrix` and `jobs` to GITHUB_OUTPUT"
        );
    }
    0
}

/// `--review-load`: each job's repository's open pull requests from agent-gate's tasks, on
/// `err` and as the `review-load` step output; the exit code when it cannot be read or
/// written.
fn report_review_load(
    cmd: &PlanCommand,
    planned: &crate::core::manifest::Plan,
    source: &LoadSource,
    err: &mut dyn Write,
) -> Result<(), u8> {
    let config_error = Verdict::ConfigError.exit_code();
    let loads = count_review_load(&planned.jobs, source).map_err(|e| {
        let _ = writeln!(err, "error: --review-load: {e}");
        config_error
    })?;
    let _ = writeln!(
        err,
        "review load (open pull requests from agent-gate's tasks):"
    );
    for load in &loads {
        let _ = writeln!(err, "  {}", load.line());
    }
    if let Some(file) = &cmd.github_output {
        let json = serde_json::to_string(&loads).unwrap_or_default();
        set_output(file, "review-load", &json).map_err(|e| {
            let _ = writeln!(err, "error: cannot write the step outputs: {e}");
            config_error
        })?;
    }
    Ok(())
}
