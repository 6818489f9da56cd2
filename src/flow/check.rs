//! `agent-gate check`: DESIGN §1 steps 5–8 on an existing change — read the policy at the
//! base ref, compute base...head with git, assess the scope, run the checks in an isolated
//! copy of the head tree, and produce one [`Report`]. [`gate_change`] is the part `run`
//! shares once it has the agent's head.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::adapters::checks::{self, CheckStatus as RunStatus, ChecksRun};
use crate::adapters::git::{ChangeSet, Git};
use crate::adapters::shutdown::Shutdown;
use crate::core::assessment::assess;
use crate::core::policy::{CheckSpec, OnViolation, Policy, PolicyError};
use crate::core::report::{CheckEntry, CheckStatus, Report, Verdict};
use crate::core::scope::{Scope, ScopeInput};

use super::ending::config_error;

/// Inputs of [`check`].
#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub repo: PathBuf,
    pub base: String,
    pub head: String,
    pub policy_path: String,
    /// The `--scope` input, compiled.
    pub scope: ScopeInput,
    pub jobs: Option<usize>,
}

/// Gate base...head of `opts.repo`. Never panics; every failure is a verdict.
pub async fn check(opts: CheckOptions, shutdown: Shutdown) -> Report {
    let git = Git::new(&opts.repo);
    let mut report = Report::new(Verdict::Passed);
    report.policy = Some(opts.policy_path.clone());
    report.base = Some(opts.base.clone());
    report.head = Some(opts.head.clone());

    // Short names become the one full ref they mean; an ambiguous one (a tag named like
    // the base branch) is refused, never resolved to the tag.
    let resolved = git
        .resolve_ref(&opts.base)
        .and_then(|b| Ok((b, git.resolve_ref(&opts.head)?)));
    let (base, head) = match resolved {
        Ok(r) => r,
        Err(e) => return config_error(report, e.to_string()),
    };
    let policy = match load_policy_at(&git, &base, &format!("`{}`", opts.base), &opts.policy_path) {
        Ok(p) => p,
        Err(e) => return config_error(report, e.to_string()),
    };
    let scope = policy.scope.narrowed_by(&opts.scope);
    let changes = match git.changes(&base, &head) {
        Ok(c) => c,
        Err(e) => return config_error(report, e.to_string()),
    };
    let ctx = GateContext {
        git: &git,
        policy: &policy,
        scope: &scope,
        jobs: opts.jobs,
        gate_env: std::env::vars_os().collect(),
        workspace: opts.repo.clone(),
        ci: None,
    };
    gate_change(&ctx, &changes, &mut report, &shutdown, &mut std::io::sink()).await;
    report
}

/// The policy could not be read at the base: each names the file and the base as the user
/// knows it (`base`: a quoted branch name, not the private ref the gate fetched it into).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PolicyAtBase {
    #[error(transparent)]
    Git(#[from] crate::adapters::git::GitError),
    #[error(
        "no policy file `{path}` at the base ref {base}: commit one (see `agent-gate validate`) or pass --policy"
    )]
    Missing { path: String, base: String },
    #[error("{path} (at {base}): the policy file is not UTF-8")]
    NotUtf8 { path: String, base: String },
    #[error("{source}\n  (read at the base ref {base})")]
    Invalid {
        source: Box<PolicyError>,
        base: String,
    },
}

/// Read the policy blob at the commit `rev` (never the working tree) and compile it;
/// errors call the base `shown_as` (already quoted: `` `main` ``).
pub(crate) fn load_policy_at(
    git: &Git,
    rev: &str,
    shown_as: &str,
    path: &str,
) -> Result<Policy, PolicyAtBase> {
    let base = shown_as.to_string();
    let Some(blob) = git.show_file(rev, path)? else {
        return Err(PolicyAtBase::Missing {
            path: path.to_string(),
            base,
        });
    };
    let text = String::from_utf8(blob).map_err(|_| PolicyAtBase::NotUtf8 {
        path: path.to_string(),
        base: base.clone(),
    })?;
    Policy::from_yaml(&text, path).map_err(|source| PolicyAtBase::Invalid {
        source: Box::new(source),
        base,
    })
}

/// What [`gate_change`] needs besides the change.
pub(crate) struct GateContext<'a> {
    pub git: &'a Git,
    pub policy: &'a Policy,
    pub scope: &'a Scope,
    pub jobs: Option<usize>,
    /// The gate's environment, from which checks get an allow-listed subset.
    pub gate_env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
    /// The workspace whose persisted credentials must be unreadable to checks.
    pub workspace: PathBuf,
    /// GitHub, for `github-checks` checks (`run` only; `check` has no pull request).
    pub ci: Option<super::ci::CiContext<'a>>,
}

/// Steps 6–8 on a computed change: assess, run checks (unless the scope is violated and
/// the policy says skip), and finish the report's verdict.
pub(crate) async fn gate_change(
    ctx: &GateContext<'_>,
    changes: &ChangeSet,
    report: &mut Report,
    shutdown: &Shutdown,
    progress: &mut (dyn Write + Send),
) {
    report.merge_base = Some(changes.merge_base.clone());
    if changes.merge_bases.len() > 1 {
        report.notes.push(format!(
            "base and head have {} merge bases (criss-cross history): the change judged is \
             the one a merge would apply, the base against the merged tree",
            changes.merge_bases.len()
        ));
    }
    report.head_sha = Some(changes.head.clone());
    let assessment = assess(
        ctx.scope,
        &ctx.policy.limits,
        &changes.changes,
        &changes.link_targets,
    );
    report.files = assessment.files;
    report.violations = assessment.violations;

    if !report.violations.is_empty() && ctx.policy.checks_on_violation == OnViolation::Skip {
        report.checks_skipped = Some(
            "the change violates the scope; its code is not run (checks-on-violation: skip)"
                .to_string(),
        );
        for c in &ctx.policy.checks {
            report.checks.push(CheckEntry {
                name: c.name.clone(),
                required: c.required,
                status: CheckStatus::Skipped,
                detail: Some("scope violation".to_string()),
                duration_ms: 0,
                output_tail: String::new(),
                truncated_bytes: 0,
                github: None,
            });
        }
    } else {
        let local = ctx.policy.checks.iter().any(|c| c.github.is_none());
        if local {
            run_local_checks(ctx, changes, report, shutdown).await;
        }
        let paths: Vec<bstr::BString> = changes.changes.iter().map(|c| c.path.clone()).collect();
        for spec in ctx.policy.checks.iter().filter(|c| c.github.is_some()) {
            await_github_checks(ctx, spec, &paths, &changes.head, report, shutdown, progress).await;
        }
    }
    if shutdown.fired().is_some() {
        report.set_verdict(report.verdict.combine(Verdict::Cancelled));
    }
    report.finish();
}

/// A `github-checks` check: skipped by `when`, skipped outside `run` (no pull request on
/// GitHub to read), otherwise awaited.
async fn await_github_checks(
    ctx: &GateContext<'_>,
    spec: &CheckSpec,
    changed: &[bstr::BString],
    head: &str,
    report: &mut Report,
    shutdown: &Shutdown,
    progress: &mut (dyn Write + Send),
) {
    let skipped = |detail: String| CheckEntry {
        name: spec.name.clone(),
        required: spec.required,
        status: CheckStatus::Skipped,
        detail: Some(detail),
        duration_ms: 0,
        output_tail: String::new(),
        truncated_bytes: 0,
        github: None,
    };
    let (Some(github), Some(ci)) = (&spec.github, &ctx.ci) else {
        report.checks.push(skipped(
            "awaits the repository's own checks on the agent's pull request: only `agent-gate run` reads them from GitHub".to_string(),
        ));
        return;
    };
    if let Some(reason) = checks::skipped_by_when(spec, changed) {
        report.checks.push(skipped(reason));
        return;
    }
    if shutdown.fired().is_some() {
        return;
    }
    // Boxed: the wait is a large future, and most runs have no such check.
    let awaited = Box::pin(super::ci::await_checks(
        ci, spec, github, head, shutdown, progress,
    ))
    .await;
    report.checks.push(awaited.entry);
    if let Some(v) = awaited.verdict {
        report.set_verdict(report.verdict.combine(v));
    }
}

/// The checks that run a command, in isolated copies of the head tree.
async fn run_local_checks(
    ctx: &GateContext<'_>,
    changes: &ChangeSet,
    report: &mut Report,
    shutdown: &Shutdown,
) {
    {
        match run_policy_checks(ctx, changes, shutdown).await {
            Ok(run) => {
                report
                    .isolation_notes
                    .extend(run.isolation.notes.iter().cloned());
                report
                    .isolation_weaknesses
                    .extend(run.isolation.weaknesses.iter().cloned());
                report.checks.extend(run.outcomes.iter().map(check_entry));
            }
            Err(e) => {
                // The gate never passes on an error path: an unrunnable check set fails it.
                let e = e.to_string();
                report.errors.push(e.clone());
                for c in ctx.policy.checks.iter().filter(|c| c.github.is_none()) {
                    report.checks.push(CheckEntry {
                        name: c.name.clone(),
                        required: c.required,
                        status: CheckStatus::Error,
                        detail: Some(e.clone()),
                        duration_ms: 0,
                        output_tail: String::new(),
                        truncated_bytes: 0,
                        github: None,
                    });
                }
            }
        }
    }
}

fn check_entry(o: &checks::CheckOutcome) -> CheckEntry {
    let (status, detail) = match &o.status {
        RunStatus::Passed => (CheckStatus::Passed, None),
        RunStatus::Failed { exit_code, signal } => (
            CheckStatus::Failed,
            Some(match (exit_code, signal) {
                (Some(c), _) => format!("exit code {c}"),
                (None, Some(s)) => format!("killed by signal {s}"),
                (None, None) => "failed".to_string(),
            }),
        ),
        RunStatus::TimedOut { after } => (
            CheckStatus::TimedOut,
            Some(format!(
                "timed out after {}",
                crate::core::policy::format_duration(*after)
            )),
        ),
        RunStatus::Skipped { reason } => (CheckStatus::Skipped, Some(reason.clone())),
        RunStatus::Cancelled => (
            CheckStatus::Cancelled,
            Some("the gate was interrupted".to_string()),
        ),
        RunStatus::Error { message } => (CheckStatus::Error, Some(message.clone())),
        RunStatus::Unavailable { message, .. } => (CheckStatus::Unavailable, Some(message.clone())),
    };
    CheckEntry {
        name: o.name.clone(),
        required: o.required,
        status,
        detail,
        duration_ms: u64::try_from(o.duration.as_millis()).unwrap_or(u64::MAX),
        output_tail: o.output_tail.clone(),
        truncated_bytes: o.truncated_bytes,
        github: None,
    }
}

/// Export the head tree into a fresh directory and run the planned checks there.
async fn run_policy_checks(
    ctx: &GateContext<'_>,
    changes: &ChangeSet,
    shutdown: &Shutdown,
) -> Result<ChecksRun, ExportError> {
    let changed_paths: Vec<bstr::BString> =
        changes.changes.iter().map(|c| c.path.clone()).collect();
    let local: Vec<CheckSpec> = ctx
        .policy
        .checks
        .iter()
        .filter(|c| c.github.is_none())
        .cloned()
        .collect();
    let planned = checks::plan(&local, &changed_paths);
    let root = tempfile::Builder::new()
        .prefix("agent-gate-checks-")
        .tempdir()
        .map_err(ExportError::Dir)?;
    // The checks may run under another uid: it must be able to reach the tree.
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .map_err(ExportError::Mode)?;
    spread_hint(root.path());
    // A new name each run, so the hint puts each run's tree somewhere new.
    let tree = root
        .path()
        .join(format!("tree-{}", uuid::Uuid::new_v4().simple()));
    ctx.git.export_tree(&changes.head, &tree)?;
    let mut opts = checks::RunOptions {
        isolation: ctx.policy.checks_isolation,
        env: ctx.gate_env.clone(),
        protect: checks::credential_paths(&ctx.workspace, &ctx.gate_env),
        temp_dir: Some(root.path().to_path_buf()),
        docker: crate::adapters::checks::docker::Engine::from_env(&ctx.gate_env),
        ..checks::RunOptions::default()
    };
    if let Some(j) = ctx.jobs {
        opts.jobs = j.max(1);
    }
    let stop = shutdown.clone();
    let run = checks::run_checks(&tree, planned, &opts, async move {
        stop.wait().await;
    })
    .await;
    // Give the kill of any straggler a moment before the tree is removed.
    tokio::time::sleep(Duration::from_millis(1)).await;
    let _ = tokio::task::spawn_blocking(move || remove_checks_dir(root, &tree)).await;
    Ok(run)
}

/// The head tree could not be exported for the checks.
#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error("cannot create a directory for the checks: {0}")]
    Dir(std::io::Error),
    #[error("cannot prepare the checks directory: {0}")]
    Mode(std::io::Error),
    #[error(transparent)]
    Git(#[from] crate::adapters::git::GitError),
}

/// Mark `dir` as the top of unrelated directory trees (`chattr +T`, `FS_TOPDIR_FL`): a
/// hint to ext4's allocator to place each directory made in it in a block group of its
/// own choosing instead of next to `dir` — that is, next to the shared temporary directory.
/// Creating a file can cost the exported tree most of its time on ext4 without a journal,
/// where the allocator steps over every inode freed in the last minutes in the group
/// (other runs' trees, other programs' temporary files): 3,000 files took 1.5–2.3 s next
/// to a busy `/tmp`, 0.05–0.2 s in a group of their own (`docs/benchmarks.md`). Only a
/// hint: other file systems refuse it, and that is fine.
fn spread_hint(dir: &Path) {
    let Ok(file) = std::fs::File::open(dir) else {
        return;
    };
    if let Ok(flags) = rustix::fs::ioctl_getflags(&file) {
        let _ = rustix::fs::ioctl_setflags(&file, flags | rustix::fs::IFlags::TOPDIR);
    }
}

/// Remove the checks' directory — the exported tree is the whole repository, thousands of
/// files — on every core: the entries one and two levels below the tree are shared among
/// threads, each removed without following symbolic links (`remove_dir_all` removes a link
/// itself, never its target); dropping `root` then removes whatever is left, as before.
fn remove_checks_dir(root: tempfile::TempDir, tree: &Path) {
    let mut work = Vec::new();
    if let Ok(entries) = std::fs::read_dir(tree) {
        for entry in entries.flatten() {
            let inner = entry
                .file_type()
                .is_ok_and(|t| t.is_dir())
                .then(|| std::fs::read_dir(entry.path()).ok())
                .flatten();
            match inner {
                Some(inner) => work.extend(inner.flatten().map(|e| e.path())),
                None => work.push(entry.path()),
            }
        }
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(8)
        .min(work.len());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while let Some(path) = work.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let _ = match std::fs::symlink_metadata(path) {
                        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
                        _ => std::fs::remove_file(path),
                    };
                }
            });
        }
    });
    drop(root);
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_spread_hint_marks_the_directory_where_the_file_system_has_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let Ok(before) = rustix::fs::ioctl_getflags(std::fs::File::open(dir.path()).unwrap())
        else {
            return; // no inode flags here (e.g. tmpfs): nothing to hint
        };
        super::spread_hint(dir.path());
        let after = rustix::fs::ioctl_getflags(std::fs::File::open(dir.path()).unwrap()).unwrap();
        if rustix::fs::ioctl_setflags(std::fs::File::open(dir.path()).unwrap(), after).is_ok() {
            assert!(after.contains(rustix::fs::IFlags::TOPDIR), "{after:?}");
        }
        assert!(
            after.contains(before),
            "no flag is dropped: {before:?} -> {after:?}"
        );
    }
}
