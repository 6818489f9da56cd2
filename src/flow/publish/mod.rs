//! Publishing a finished [`Report`], the one home of everything a run hands back: the
//! console report on stdout, and in Actions the step's outputs, annotations, step summary,
//! and the JSON-lines audit record. Every text passes through the
//! [`Masker`] holding the run's secrets, so no token reaches any of
//! them. Used by `run` and `check`.

pub mod outputs;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::adapters::actions::{ActionsEnv, ActionsIo, Masker};
use crate::adapters::audit::{self, AuditLog, AuditStream, TriggerEvent};
use crate::adapters::ownership;
use crate::core::report::Report;
use crate::core::summary::SummaryContext;

/// How to publish.
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    /// `--format json`: one JSON object instead of the text report.
    pub json: bool,
    /// Where the audit record goes; default in Actions `$RUNNER_TEMP/agent-gate/…`, none
    /// outside Actions unless given (so a local run never writes into the repository).
    pub audit_file: Option<PathBuf>,
    /// The policy path, for annotations on policy errors.
    pub policy_path: String,
    /// The audit record the run streamed into (`run`); when open, the publisher finishes it
    /// instead of writing one at `audit_file`.
    pub audit: AuditStream,
}

/// The `(line, col)` of a policy error message `path:line:col: …`, for the annotation.
fn policy_error_location(report: &Report, policy_path: &str) -> Option<(u32, u32)> {
    let first = report.errors.first()?;
    let rest = first.strip_prefix(policy_path)?.strip_prefix(':')?;
    let mut parts = rest.splitn(3, ':');
    let line = parts.next()?.trim().parse().ok()?;
    let col = parts.next()?.trim().parse().ok()?;
    Some((line, col))
}

/// Open the audit record of a run that streams it: at `audit_file`, else in Actions the
/// default path under `RUNNER_TEMP`; none outside Actions unless asked. Its lines are masked
/// with `io`'s secrets. A file that cannot be opened is reported on `err`; the publisher
/// then tries once more at the end.
pub fn open_audit<W: Write>(
    io: &ActionsIo<W>,
    audit_file: Option<&Path>,
    err: &mut dyn Write,
) -> AuditStream {
    let trigger = audit_trigger(io.env());
    match audit_path(io.env(), &trigger, audit_file) {
        Some(path) => open_at(io, &path, trigger, err),
        None => AuditStream::none(),
    }
}

/// Where the audit record of the run `trigger` goes: `audit_file`, else in Actions the
/// default path under `RUNNER_TEMP`; nowhere outside Actions unless asked.
fn audit_path(
    env: &ActionsEnv,
    trigger: &TriggerEvent,
    audit_file: Option<&Path>,
) -> Option<PathBuf> {
    audit_file.map(Path::to_path_buf).or_else(|| {
        env.is_actions
            .then(|| audit::default_path(env.runner_temp.as_deref(), trigger))
    })
}

/// The audit record's `trigger`: the workflow run `env` describes, and the repository the
/// step works on (the workflow's own repository only when the step names another).
pub fn audit_trigger(env: &ActionsEnv) -> TriggerEvent {
    TriggerEvent {
        event_name: env.event_name.clone(),
        actor: env.actor.clone(),
        workflow: env.workflow.clone(),
        job: env.job.clone(),
        run_id: env.run_id,
        run_attempt: env.run_attempt,
        run_url: env.run_url(),
        git_ref: env.git_ref.clone(),
        sha: env.sha.clone(),
        repository: env.target().map(str::to_string),
        workflow_repository: env.target_repository.as_ref().and(env.repository.clone()),
    }
}

/// Open the audit file at `path`. In the container, `RUNNER_TEMP` is the runner's: what is
/// created there (the file, and any directory above it that did not exist) is handed back
/// to the runner's user, so the runner can clean it up.
fn open_audit_log(path: &Path, masker: &Masker) -> Result<AuditLog, audit::AuditError> {
    let base = ownership::existing_ancestor(path).map(Path::to_path_buf);
    let log = AuditLog::open(path, masker.clone())?;
    if let Some(base) = base {
        let _ = ownership::give_back_path(&base, path);
    }
    Ok(log)
}

/// The audit stream of the run `trigger` at `path`, masked with `io`'s secrets; a file that
/// cannot be opened is reported on `err` and gives a stream that writes nothing.
fn open_at<W: Write>(
    io: &ActionsIo<W>,
    path: &Path,
    trigger: TriggerEvent,
    err: &mut dyn Write,
) -> AuditStream {
    match open_audit_log(path, io.masker()) {
        Ok(log) => AuditStream::new(log, trigger),
        Err(e) => {
            let _ = writeln!(
                err,
                "error: cannot open the audit record {}: {e}",
                path.display()
            );
            AuditStream::none()
        }
    }
}

/// Print and publish `report` through `io` (which already holds the run's secrets and has
/// emitted their `::add-mask::` lines); returns the exit code. The report is redacted in
/// place (the report of a large change is tens of megabytes: no copy is made). Problems
/// writing Actions files are reported on `err` as errors; they never change the verdict.
pub fn publish<W: Write>(
    report: Report,
    io: &mut ActionsIo<W>,
    opts: &PublishOptions,
    err: &mut dyn Write,
) -> u8 {
    let exit_code = report.exit_code;
    let redacted = outputs::redact_report_owned(report, io.masker());
    if io.env().is_actions {
        print_check_groups(&redacted, io);
    }
    let printed = if opts.json {
        io.print_json(&redacted)
    } else {
        io.print(&redacted.render_text())
    };
    if let Err(e) = printed {
        let _ = writeln!(err, "error: cannot print the report: {e}");
    }
    let audit_path = finish_audit(&redacted, io, opts, err);
    if io.env().is_actions {
        publish_to_actions(&redacted, io, opts, &audit_path.unwrap_or_default(), err);
    }
    exit_code
}

/// Each check's output in a collapsible group of the log, before the report.
fn print_check_groups<W: Write>(redacted: &Report, io: &mut ActionsIo<W>) {
    for c in redacted.checks.iter().filter(|c| !c.output_tail.is_empty()) {
        let _ = io.command(&crate::adapters::actions::group(&format!(
            "check `{}`: {}",
            c.name,
            c.status.as_str()
        )));
        if c.truncated_bytes > 0 {
            let _ = io.print(&format!(
                "… {} earlier bytes not shown\n",
                c.truncated_bytes
            ));
        }
        // Agent-written output must not be able to run workflow commands (e.g.
        // `::add-mask::`, `::endgroup::`, `::set-output`): stop command processing
        // around it with a one-time token, as the runner documents.
        let token = uuid::Uuid::new_v4().simple().to_string();
        let _ = io.print(&format!("::stop-commands::{token}\n"));
        // Escaped too: a lone `\r` starts a new line for the runner, and ESC sequences
        // (OSC 8 links, cursor moves) would act on whoever reads the log in a terminal.
        let mut text = crate::core::report::escape_output(&c.output_tail).into_owned();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let _ = io.print(&text);
        let _ = io.print(&format!("::{token}::\n"));
        let _ = io.command(&crate::adapters::actions::endgroup());
    }
}

/// The audit record finished with the report; where it is, when there is one.
fn finish_audit<W: Write>(
    redacted: &Report,
    io: &mut ActionsIo<W>,
    opts: &PublishOptions,
    err: &mut dyn Write,
) -> Option<PathBuf> {
    if opts.audit.is_open() {
        let path = opts.audit.path();
        if let Err(e) = opts.audit.finish(redacted) {
            let _ = writeln!(err, "error: cannot write the audit record: {e}");
        }
        return path;
    }
    // Not opened at the start (a `check`, or it failed then): once more, now.
    let trigger = audit_trigger(io.env());
    let path = audit_path(io.env(), &trigger, opts.audit_file.as_deref());
    if let Some(path) = &path
        && let Err(e) = open_at(io, path, trigger, err).finish(redacted)
    {
        let _ = writeln!(
            err,
            "error: cannot write the audit record {}: {e}",
            path.display()
        );
    }
    path
}

/// In Actions: the step outputs, the annotations and the job summary.
fn publish_to_actions<W: Write>(
    redacted: &Report,
    io: &mut ActionsIo<W>,
    opts: &PublishOptions,
    audit_display: &Path,
    err: &mut dyn Write,
) {
    if let Err(e) = outputs::write(redacted, io, audit_display) {
        let _ = writeln!(
            err,
            "::error title=agent-gate: outputs::cannot write the step outputs: {e}"
        );
    }
    let annotations = outputs::annotations(
        redacted,
        &opts.policy_path,
        policy_error_location(redacted, &opts.policy_path),
    );
    if let Err(e) = io.annotations(&annotations) {
        let _ = writeln!(err, "error: cannot print annotations: {e}");
    }
    let ctx = SummaryContext {
        run_url: io.env().run_url(),
        policy_path: Some(opts.policy_path.clone()),
        ..SummaryContext::default()
    };
    let where_full = format!(
        "the audit record ({}) and the job log",
        audit_display.display()
    );
    if let Err(e) = outputs::write_redacted_summary(redacted, &ctx, io, &where_full) {
        let _ = writeln!(
            err,
            "::error title=agent-gate: summary::cannot write the step summary: {e}"
        );
    }
}

/// An [`ActionsIo`] on `out` for the process environment, with `secrets` registered
/// (and their `::add-mask::` lines emitted first, in Actions).
pub fn actions_io<W: Write>(out: W, secrets: &[String]) -> ActionsIo<W> {
    let env = ActionsEnv::from_vars(
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
    );
    let mut io = ActionsIo::new(env, out);
    for s in secrets.iter().filter(|s| !s.trim().is_empty()) {
        let _ = io.add_mask(s.trim());
    }
    io
}
