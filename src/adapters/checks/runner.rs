//! Running planned checks: isolation set-up (hidden credentials or the same-uid credential
//! scan), the programs the checks start looked up before any of them runs, then for each
//! check its own copy of the tree, its own uid (when the gate is root) and a fresh `HOME`,
//! parallelism up to `jobs`, and shutdown. One process is [`super::process`]'s business;
//! the types are [`super`]'s.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use super::error::SetupError;
use super::isolation::{self, IsolationMode, IsolationReport, ProtectGuard, RunAs};
use super::{
    CheckOutcome, CheckStatus, ChecksRun, Isolation, PlannedAction, PlannedCheck, RunOptions,
    chown_tree, make_gate_undumpable, process, protect, readable_credentials, scrubbed_env,
    writable_file_commands,
};
use super::{container, program, reaper};

/// What every check shares in one run.
struct Shared {
    /// The export of the head tree each check gets a copy of.
    source: PathBuf,
    /// Where each check's directory (its tree and `HOME`) is made.
    homes: PathBuf,
    /// The first check's uid and gid when the gate is root; check `i` runs as
    /// `(uid - i, gid - i)`, so no check can reach another's tree or processes.
    user: Option<(u32, u32)>,
    /// Each check's own tree and `HOME` (by plan index), made before any check starts:
    /// `None` for a check that does not run in the gate.
    dirs: Vec<Option<Result<(PathBuf, PathBuf), SetupError>>>,
    docker: Option<crate::adapters::checks::docker::Engine>,
    env: Vec<(OsString, OsString)>,
    output_cap: usize,
    grace: Duration,
}

/// Run the planned checks, each in its own copy of `tree` (the caller's isolated export of
/// the head tree), which the checks never see itself. A check whose command starts a
/// program its `PATH` does not have is not run ([`CheckStatus::Unavailable`]); that is
/// decided for every check before any of them starts. Runs up to `opts.jobs` at once; when `shutdown` completes, running checks are stopped (their
/// process groups get SIGTERM, then SIGKILL after the grace period) and the rest are not
/// started; all of them are then reported [`CheckStatus::Cancelled`]. Dropping the
/// returned future kills every running check's group and restores protected modes.
pub async fn run_checks(
    tree: &Path,
    checks: Vec<PlannedCheck>,
    opts: &RunOptions,
    shutdown: impl Future,
) -> ChecksRun {
    let root = isolation::gate_is_root();
    let user = match opts.run_as {
        RunAs::Unprivileged { uid, gid } if root => Some((uid, gid)),
        _ => None,
    };
    let mode = if user.is_some() {
        IsolationMode::UnprivilegedUid
    } else {
        IsolationMode::SameUid
    };
    let mut report = IsolationReport {
        mode,
        notes: Vec::new(),
        weaknesses: Vec::new(),
    };
    if let Err(e) = make_gate_undumpable() {
        report.weakness(format!("could not mark the gate process undumpable ({e}); its /proc/<pid>/environ may be readable to same-uid processes"));
    }
    if let Err(e) = reaper::become_subreaper() {
        report.weakness(format!("could not make the gate a child subreaper ({e}); a process a check detaches with setsid may outlive the checks"));
    }

    let (refusal, _guard) = match user {
        Some((uid, gid)) => isolate_unprivileged(uid, gid, opts, &mut report),
        None => (isolate_same_uid(root, opts, &mut report), None),
    };
    // Declared after `_guard`, so dropped (sweeping) before the protected files are restored.
    let _sweeper = reaper::SweepOnDrop;

    let setup = match refusal {
        Some(message) => Err(message),
        None => prepare(tree, user, opts).map_err(|e| e.to_string()),
    };
    let (mut shared, _homes_dir) = match setup {
        Ok(ok) => ok,
        Err(message) => {
            let outcomes = checks
                .into_iter()
                .map(|c| {
                    not_run(c, || CheckStatus::Error {
                        message: message.clone(),
                    })
                })
                .collect();
            return ChecksRun {
                outcomes,
                isolation: report,
            };
        }
    };
    let checks = checks
        .into_iter()
        .map(|c| resolve_program(c, &opts.env))
        .collect();
    let (checks, image_notes) = container::prepare(checks, opts.docker.as_ref()).await;
    report.notes.extend(image_notes);
    shared.dirs = check_dirs(&shared, &checks).await;
    let outcomes = run_all(Arc::new(shared), checks, opts.jobs.max(1), shutdown).await;
    let escaped = reaper::sweep(Duration::from_secs(2));
    if escaped > 0 {
        report.weakness(format!(
            "killed {escaped} process{} that left {} check's process group (setsid) and outlived it",
            if escaped == 1 { "" } else { "es" },
            if escaped == 1 { "its" } else { "their" }
        ));
    }
    // `_guard` (protected modes) and `_homes_dir` are dropped here, after every check's
    // process group is gone.
    ChecksRun {
        outcomes,
        isolation: report,
    }
}

/// Root: check processes get another uid; hide the persisted credentials from it.
fn isolate_unprivileged(
    uid: u32,
    gid: u32,
    opts: &RunOptions,
    report: &mut IsolationReport,
) -> (Option<String>, Option<ProtectGuard>) {
    if uid == 0 {
        return (
            Some("`run_as` names uid 0: checks must not run as root".into()),
            None,
        );
    }
    report.notes.push(format!(
        "checks ran as uid {uid} gid {gid} (the next check as {} {}, and so on: one uid per check) with no supplementary groups, each in its own copy of the tree, which it owns, with a fresh HOME; the gate's /proc/<pid>/environ is not readable to them",
        uid.saturating_sub(1),
        gid.saturating_sub(1)
    ));
    match protect(&opts.protect) {
        Ok(guard) => {
            if !guard.changed().is_empty() {
                let list: Vec<String> = guard
                    .changed()
                    .iter()
                    .map(|(p, _)| p.display().to_string())
                    .collect();
                report.notes.push(format!(
                    "made unreadable to checks while they ran, then restored: {}",
                    list.join(", ")
                ));
            }
            (None, Some(guard))
        }
        Err(e) => match opts.isolation {
            Isolation::Strict => (
                Some(format!(
                    "refused to run checks: {e}; fix the permissions, or set `checks-isolation: best-effort`"
                )),
                None,
            ),
            Isolation::BestEffort => {
                report.weakness(format!("best-effort isolation: {e}; checks ran anyway"));
                (None, None)
            }
        },
    }
}

/// Not root (or told to stay): checks share the gate's uid; refuse while a credential is
/// readable to them, unless best-effort.
fn isolate_same_uid(root: bool, opts: &RunOptions, report: &mut IsolationReport) -> Option<String> {
    let why = if root {
        "`run_as` is the current user"
    } else {
        "the gate is not root, so it cannot switch uid"
    };
    report.weakness(format!(
        "checks ran under the gate's own uid ({why}): they can read whatever this user can, including other processes of this user (such as the shell that started the gate) through /proc; the gate's own process was made undumpable"
    ));
    let writable = writable_file_commands(&opts.env);
    if !writable.is_empty() {
        let list: Vec<String> = writable.iter().map(|p| p.display().to_string()).collect();
        report.weakness(format!(
            "the runner's file-command files are writable by this uid, so checks could write them: {}",
            list.join(", ")
        ));
    }
    let found = readable_credentials(&opts.protect);
    if found.is_empty() {
        return None;
    }
    let list: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
    let list = list.join(", ");
    match opts.isolation {
        Isolation::Strict => Some(format!(
            "refused to run checks: a credential is readable to them at {list} (checks run under the gate's own uid because {why}). Set `persist-credentials: false` on actions/checkout, or set `checks-isolation: best-effort` in the policy to run them anyway"
        )),
        Isolation::BestEffort => {
            report.weakness(format!(
                "best-effort isolation: a credential was readable to checks at {list}"
            ));
            None
        }
    }
}

/// Resolve the source tree and create the directory of the checks' own directories.
fn prepare(
    tree: &Path,
    user: Option<(u32, u32)>,
    opts: &RunOptions,
) -> Result<(Shared, tempfile::TempDir), SetupError> {
    let source =
        std::fs::canonicalize(tree).map_err(SetupError::io(|source| SetupError::Source {
            path: tree.to_path_buf(),
            source,
        }))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix("agent-gate-homes-");
    let homes = match &opts.temp_dir {
        Some(dir) => builder.tempdir_in(dir),
        None => builder.tempdir(),
    }
    .map_err(SetupError::io(|source| SetupError::TempDir { source }))?;
    if user.is_some() {
        // Traversable, not listable, by the checks' uids.
        std::fs::set_permissions(homes.path(), std::fs::Permissions::from_mode(0o711))
            .map_err(mode_error(homes.path()))?;
    }
    let shared = Shared {
        source,
        homes: homes.path().to_path_buf(),
        user,
        dirs: Vec::new(),
        docker: opts.docker.clone(),
        env: opts.env.clone(),
        output_cap: opts.output_cap.max(1),
        grace: opts.kill_grace,
    };
    Ok((shared, homes))
}

/// Look up the program a runnable check starts on its `PATH`: when it is missing, the check
/// is not run and says which program, where it looked, and how to provide it.
fn resolve_program(check: PlannedCheck, gate_env: &[(OsString, OsString)]) -> PlannedCheck {
    let PlannedAction::Run { command } = &check.action else {
        return check;
    };
    if check.image.is_some() {
        // Looked up inside its image, by `container::prepare`.
        return check;
    }
    let Some(name) = program::leading_program(command) else {
        return check;
    };
    let env = scrubbed_env(gate_env, &check.env, Path::new("/nonexistent"));
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or_else(|| OsString::from(super::DEFAULT_PATH), |(_, v)| v.clone());
    if program::find_on_path(&name, &path).is_some() {
        return check;
    }
    let message = format!(
        "`{name}` is not installed where the check runs (looked on PATH={}): the check's environment lacks it, not the change. Install it in the image the gate runs in (docs/action.md, \"Checks need your toolchain\"), or give the check a PATH that has it",
        path.to_string_lossy()
    );
    container::unavailable(check, name, message)
}

/// Copy the export at `from` to `to` (which must not exist): directories, regular files
/// with their modes, symbolic links as links (the export already made every link that
/// leads out of it a plain file, and a copy keeps the same shape, so links stay inside).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir(to)?;
    std::fs::set_permissions(to, std::fs::metadata(from)?.permissions())?;
    let mut stack = vec![(from.to_path_buf(), to.to_path_buf())];
    while let Some((src, dst)) = stack.pop() {
        for entry in std::fs::read_dir(&src)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let target = dst.join(entry.file_name());
            if kind.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &target)?;
            } else if kind.is_dir() {
                std::fs::create_dir(&target)?;
                std::fs::set_permissions(&target, entry.metadata()?.permissions())?;
                stack.push((entry.path(), target));
            } else if kind.is_file() {
                std::fs::copy(entry.path(), &target)?;
            }
        }
    }
    Ok(())
}

/// The uid and gid check `index` runs as in the gate (when the gate is root).
fn user_for(shared: &Shared, index: usize) -> Option<(u32, u32)> {
    shared.user.map(|first| nth_user(first, index))
}

/// Check `index`'s uid and gid, counting down from the first check's: one of its own each.
fn nth_user((uid, gid): (u32, u32), index: usize) -> (u32, u32) {
    let offset = u32::try_from(index).unwrap_or(u32::MAX);
    (
        uid.saturating_sub(offset).max(1),
        gid.saturating_sub(offset).max(1),
    )
}

/// Every check's own directory, made before any check starts: a copy of the export for
/// each check that runs in the gate, except the last of them, which gets the export itself
/// when no check runs in an image (nothing reads the export once the copies are made, so a
/// single check costs no copy at all). Image checks get their tree in their container.
async fn check_dirs(
    shared: &Shared,
    checks: &[PlannedCheck],
) -> Vec<Option<Result<(PathBuf, PathBuf), SetupError>>> {
    let runs_here =
        |c: &PlannedCheck| matches!(c.action, PlannedAction::Run { .. }) && c.image.is_none();
    let any_image = checks
        .iter()
        .any(|c| matches!(c.action, PlannedAction::Run { .. }) && c.image.is_some());
    let owner = if any_image {
        None
    } else {
        checks.iter().rposition(runs_here)
    };
    let mut dirs = Vec::with_capacity(checks.len());
    for (index, check) in checks.iter().enumerate() {
        dirs.push(if runs_here(check) {
            Some(check_dir(shared, index, user_for(shared, index), owner != Some(index)).await)
        } else {
            None
        });
    }
    dirs
}

/// A check's own directory: its tree (a copy of the export, or with `copy: false` the
/// export itself) and a fresh `HOME`, both made for `user` (the check's uid and gid) when
/// the gate is root.
async fn check_dir(
    shared: &Shared,
    index: usize,
    user: Option<(u32, u32)>,
    copy: bool,
) -> Result<(PathBuf, PathBuf), SetupError> {
    let dir = shared
        .homes
        .join(format!("check-{index}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir(&dir).map_err(create_error("the check's directory", &dir))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))
        .map_err(mode_error(&dir))?;
    let tree = if copy {
        dir.join("tree")
    } else {
        shared.source.clone()
    };
    let (source, target) = (shared.source.clone(), tree.clone());
    tokio::task::spawn_blocking(move || {
        if copy {
            copy_tree(&source, &target).map_err(SetupError::io(|e| SetupError::Copy {
                from: source.clone(),
                to: target.clone(),
                source: e,
            }))?;
        }
        if let Some((uid, gid)) = user {
            chown_tree(&target, uid, gid).map_err(SetupError::io(|source| SetupError::Chown {
                path: target.clone(),
                uid,
                source,
            }))?;
        }
        Ok::<(), SetupError>(())
    })
    .await
    .map_err(|e| SetupError::Task {
        what: "copying the check tree",
        source: std::sync::Arc::new(e),
    })??;
    let home = dir.join("home");
    make_home(&home, user)?;
    Ok((tree, home))
}

/// Run every check to its outcome. The checks' futures are polled inside this future (not
/// spawned), so dropping it drops them at once — each kills its process group on drop —
/// before the caller's protect guard is dropped and restores the credentials' modes.
async fn run_all(
    shared: Arc<Shared>,
    checks: Vec<PlannedCheck>,
    jobs: usize,
    shutdown: impl Future,
) -> Vec<CheckOutcome> {
    type Running<'a> = Pin<Box<dyn Future<Output = (usize, CheckOutcome)> + Send + 'a>>;
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let permits = Semaphore::new(jobs);
    let mut outcomes: Vec<Option<CheckOutcome>> = vec![None; checks.len()];
    let mut running: Vec<Option<Running<'_>>> = Vec::new();
    for (index, check) in checks.into_iter().enumerate() {
        let PlannedAction::Run { command } = &check.action else {
            outcomes[index] = Some(not_run(check, || CheckStatus::Cancelled));
            continue;
        };
        let command = command.to_vec();
        let shared = &shared;
        let permits = &permits;
        let mut cancel = cancel_rx.clone();
        running.push(Some(Box::pin(async move {
            let permit = tokio::select! {
                permit = permits.acquire() => permit.ok(),
                () = process::cancelled(&mut cancel) => None,
            };
            if permit.is_none() || *cancel.borrow() {
                return (index, not_run(check, || CheckStatus::Cancelled));
            }
            let outcome = run_one(shared, index, check, command, cancel).await;
            drop(permit);
            (index, outcome)
        })));
    }

    let all_done = std::future::poll_fn(|cx| {
        for slot in &mut running {
            if let Some(fut) = slot
                && let Poll::Ready((index, outcome)) = fut.as_mut().poll(cx)
            {
                outcomes[index] = Some(outcome);
                *slot = None;
            }
        }
        if running.iter().all(Option::is_none) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    });
    let mut all_done = std::pin::pin!(all_done);
    let mut shutdown = std::pin::pin!(shutdown);
    tokio::select! {
        () = &mut all_done => {}
        _ = &mut shutdown => {
            let _ = cancel_tx.send(true);
            all_done.await;
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| unreachable!("every check has an outcome")))
        .collect()
}

async fn run_one(
    shared: &Shared,
    index: usize,
    check: PlannedCheck,
    command: Vec<u8>,
    cancel: watch::Receiver<bool>,
) -> CheckOutcome {
    if let (Some(image), Some(engine)) = (check.image.clone(), shared.docker.as_ref()) {
        // Its own uid inside its container, whether or not the gate is root.
        let user = nth_user((super::NOBODY, super::NOBODY), index);
        let job = container::Job {
            engine,
            image: &image,
            source: &shared.source,
            command: &command,
            user,
            output_cap: shared.output_cap,
        };
        return container::run(job, check, cancel).await;
    }
    let user = user_for(shared, index);
    let (tree, home) = match shared.dirs.get(index).cloned().flatten() {
        Some(Ok(dirs)) => dirs,
        Some(Err(e)) => {
            return not_run(check, || CheckStatus::Error {
                message: e.to_string(),
            });
        }
        None => {
            return not_run(check, || CheckStatus::Error {
                message: "no tree was prepared for this check".into(),
            });
        }
    };
    let exec = process::Exec {
        command,
        cwd: tree.clone(),
        env: scrubbed_env(&shared.env, &check.env, &home),
        user,
        timeout: check.timeout,
        grace: shared.grace,
        output_cap: shared.output_cap,
    };
    let ran = process::run(exec, cancel).await;
    let status = match ran.ending {
        process::Ending::Exited(status) if status.success() => CheckStatus::Passed,
        process::Ending::Exited(status) => {
            let (exit_code, signal) = process::code_or_signal(status);
            CheckStatus::Failed { exit_code, signal }
        }
        process::Ending::TimedOut => CheckStatus::TimedOut {
            after: check.timeout,
        },
        process::Ending::Cancelled => CheckStatus::Cancelled,
        process::Ending::SpawnFailed(e) => CheckStatus::Error {
            message: spawn_error(&e, &tree, user),
        },
    };
    CheckOutcome {
        name: check.name,
        required: check.required,
        line: check.line,
        status,
        duration: ran.duration,
        output_tail: ran.output,
        truncated_bytes: ran.truncated_bytes,
    }
}

fn make_home(home: &Path, user: Option<(u32, u32)>) -> Result<(), SetupError> {
    std::fs::create_dir(home).map_err(create_error("the check's HOME", home))?;
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700))
        .map_err(mode_error(home))?;
    if let Some((uid, gid)) = user {
        std::os::unix::fs::lchown(home, Some(uid), Some(gid)).map_err(SetupError::io(
            |source| SetupError::Chown {
                path: home.to_path_buf(),
                uid,
                source,
            },
        ))?;
    }
    Ok(())
}

fn create_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SetupError {
    let path = path.to_path_buf();
    SetupError::io(move |source| SetupError::Create { what, path, source })
}

fn mode_error(path: &Path) -> impl FnOnce(std::io::Error) -> SetupError {
    let path = path.to_path_buf();
    SetupError::io(move |source| SetupError::Mode { path, source })
}

fn spawn_error(e: &std::io::Error, tree: &Path, user: Option<(u32, u32)>) -> String {
    let mut message = format!("cannot start `bash -c` in {}: {e}", tree.display());
    if e.kind() == std::io::ErrorKind::PermissionDenied
        && let Some((uid, _)) = user
    {
        let _ = write!(
            message,
            "; every parent directory of the tree must be traversable by uid {uid} (mode 0755)"
        );
    } else if e.kind() == std::io::ErrorKind::NotFound {
        message.push_str("; bash must be installed and on PATH");
    }
    message
}

/// The outcome of a check that did not run: its planned skip or rejection, or `otherwise`.
fn not_run(check: PlannedCheck, otherwise: impl FnOnce() -> CheckStatus) -> CheckOutcome {
    let status = match check.action {
        PlannedAction::Skip { reason } => CheckStatus::Skipped { reason },
        PlannedAction::Reject { message } => CheckStatus::Error { message },
        PlannedAction::Unavailable { program, message } => {
            CheckStatus::Unavailable { program, message }
        }
        PlannedAction::Run { .. } => otherwise(),
    };
    CheckOutcome {
        name: check.name,
        required: check.required,
        line: check.line,
        status,
        duration: Duration::ZERO,
        output_tail: String::new(),
        truncated_bytes: 0,
    }
}
