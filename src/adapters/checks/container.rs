//! A check that runs in a container of its own image (`image:`), through the Docker engine:
//! the image made available once per run (found in the engine's store, else pulled, and the
//! time it took reported), the program the command starts looked up inside the image before
//! any check runs, then per check a container with no network unless the policy opts in, an
//! unprivileged uid of its own, none of the gate's environment, a read-only root with a
//! writable tree and `/tmp`, memory, CPU and process limits — its own copy of the tree
//! copied in as a tar stream (the engine's paths are the host's, not the gate's), its
//! timeout, output cap and cancellation — and the container removed afterwards, also when
//! the check is stopped or dropped.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use super::error::SetupError;
use super::process::{self, Tail};
use super::{CheckOutcome, CheckStatus, PlannedAction, PlannedCheck, program};
use crate::adapters::checks::docker::{ContainerSpec, Engine, EngineError};
use crate::core::policy::CheckImage;

/// Where the check's tree is, inside its container (in a fresh volume at `/work`).
pub const TREE: &str = "/work/tree";
const VOLUME: &str = "/work";
/// The `/tmp` tmpfs of a check container.
const TMP_BYTES: u64 = 1024 * 1024 * 1024;

/// Make every image the runnable checks name available (once per image) and look up the
/// program each command starts inside its image. A check whose image cannot be had, or
/// whose program is not in it, becomes [`PlannedAction::Unavailable`]. Also returns how
/// each image was made available (present, or pulled and how long it took), for the report.
pub async fn prepare(
    checks: Vec<PlannedCheck>,
    engine: Option<&Engine>,
) -> (Vec<PlannedCheck>, Vec<String>) {
    let mut notes = Vec::new();
    let mut images: BTreeMap<String, Result<(), SetupError>> = BTreeMap::new();
    let mut out = Vec::with_capacity(checks.len());
    for check in checks {
        let (Some(image), PlannedAction::Run { command }) = (check.image.clone(), &check.action)
        else {
            out.push(check);
            continue;
        };
        let command = command.clone();
        let Some(engine) = engine else {
            let message = format!(
                "the check runs in the image `{}`, but no Docker engine is reachable (no socket at {} and no `DOCKER_HOST=unix://…`): on GitHub the runner mounts the socket into container actions; elsewhere start Docker, or drop `image:` to run the check in the gate's environment",
                image.image,
                crate::adapters::checks::docker::DEFAULT_SOCKET
            );
            out.push(unavailable(check, image.image.clone(), message));
            continue;
        };
        let ready = if let Some(ready) = images.get(&image.image) {
            ready.clone()
        } else {
            let ready = make_available(engine, &image.image, &mut notes).await;
            images.insert(image.image.clone(), ready.clone());
            ready
        };
        if let Err(e) = ready {
            out.push(unavailable(check, image.image.clone(), e.to_string()));
            continue;
        }
        if let Some(name) = program::leading_program(&command)
            && !in_image(engine, &image, &name).await
        {
            let message = format!(
                "`{name}` is not installed in the image `{}` (`command -v {name}` failed in it): the check's environment lacks it, not the change. Use an image that has it, or install it in the command (`pip install … && {name} …`, with `network:` to reach an index)",
                image.image
            );
            out.push(unavailable(check, name, message));
            continue;
        }
        out.push(check);
    }
    (out, notes)
}

/// `check`, not to be run: `program` (or its image) is missing where it would run.
pub(super) fn unavailable(check: PlannedCheck, program: String, message: String) -> PlannedCheck {
    PlannedCheck {
        action: PlannedAction::Unavailable { program, message },
        ..check
    }
}

async fn make_available(
    engine: &Engine,
    image: &str,
    notes: &mut Vec<String>,
) -> Result<(), SetupError> {
    match engine.image_exists(image).await {
        Ok(true) => {
            notes.push(format!(
                "image `{image}`: present in the engine's store, not pulled"
            ));
            return Ok(());
        }
        Ok(false) => {}
        Err(e) => {
            return Err(SetupError::Image {
                image: image.to_string(),
                source: Arc::new(e),
            });
        }
    }
    let started = Instant::now();
    match engine.pull(image).await {
        Ok(()) => {
            notes.push(format!(
                "image `{image}`: pulled in {:.1} s",
                started.elapsed().as_secs_f64()
            ));
            Ok(())
        }
        Err(e) => Err(SetupError::Pull {
            image: image.to_string(),
            source: Arc::new(e),
        }),
    }
}

/// Does `sh -c 'command -v NAME'` find `name` in the image? When the image has no `sh`,
/// or the probe cannot run, the check is left to run (and fail on its own if it must).
async fn in_image(engine: &Engine, image: &CheckImage, name: &str) -> bool {
    let spec = ContainerSpec {
        image: image.image.clone(),
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "command -v \"$1\" >/dev/null".into(),
            "sh".into(),
            name.into(),
        ],
        env: vec!["HOME=/tmp".into()],
        user: format!("{0}:{0}", super::NOBODY),
        working_dir: "/".into(),
        network: "none".into(),
        volume: VOLUME.into(),
        tmp_bytes: 16 * 1024 * 1024,
        memory_bytes: image.memory_bytes,
        nano_cpus: image.nano_cpus,
        pids: image.pids,
        labels: vec![("agent-gate.probe".into(), name.into())],
    };
    let Ok(id) = engine.create(&spec).await else {
        return true;
    };
    let probe = Removal::new(engine, &id);
    // An image without `sh` fails to start: left to run. `command -v` exits non-zero (1 in
    // bash, 127 in dash) when the program is not there.
    let found = engine.start(&id).await.is_err() || matches!(engine.wait(&id).await, Ok(0));
    probe.remove_now().await;
    found
}

/// Removes the container when dropped (a task on the runtime, since drop cannot wait),
/// unless it was removed already.
struct Removal {
    engine: Engine,
    id: String,
}

impl Removal {
    fn new(engine: &Engine, id: &str) -> Removal {
        Removal {
            engine: engine.clone(),
            id: id.to_string(),
        }
    }

    /// Remove the container now (waiting for the engine); if that fails, the drop tries
    /// again in the background.
    async fn remove_now(mut self) {
        if self.engine.remove(&self.id).await.is_ok() {
            self.id.clear();
        }
    }
}

impl Drop for Removal {
    fn drop(&mut self) {
        let (engine, id) = (self.engine.clone(), std::mem::take(&mut self.id));
        if id.is_empty() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = engine.remove(&id).await;
            });
        }
    }
}

/// What one check needs to run in its image.
pub struct Job<'a> {
    pub engine: &'a Engine,
    pub image: &'a CheckImage,
    /// The export of the head tree; the container gets a copy.
    pub source: &'a Path,
    pub command: &'a [u8],
    /// The container's `uid:gid` (one per check).
    pub user: (u32, u32),
    pub output_cap: usize,
}

/// Run `check` in a container of its image; its outcome.
pub async fn run(
    job: Job<'_>,
    check: PlannedCheck,
    mut cancel: watch::Receiver<bool>,
) -> CheckOutcome {
    let started = Instant::now();
    let mut tail = Tail::new(job.output_cap.max(1));
    let status = match started_container(&job, &check).await {
        Err(e) => CheckStatus::Error {
            message: e.to_string(),
        },
        Ok(container) => {
            let (engine, id) = (job.engine, container.id.as_str());
            let status = tokio::select! {
                waited = engine.wait(id) => match waited {
                    Ok(0) => CheckStatus::Passed,
                    Ok(code) => CheckStatus::Failed {
                        exit_code: Some(i32::try_from(code).unwrap_or(i32::MAX)),
                        signal: None,
                    },
                    Err(e) => CheckStatus::Error {
                        message: format!("lost the check's container: {e}"),
                    },
                },
                () = tokio::time::sleep(check.timeout) => {
                    let _ = engine.kill(id).await;
                    CheckStatus::TimedOut { after: check.timeout }
                }
                () = process::cancelled(&mut cancel) => {
                    let _ = engine.kill(id).await;
                    CheckStatus::Cancelled
                }
            };
            let _ = engine.logs(id, |bytes| tail.push(bytes)).await;
            // Removed now, so the run does not end with containers still being deleted.
            container.remove_now().await;
            status
        }
    };
    let (output_tail, truncated_bytes) = tail.finish();
    CheckOutcome {
        name: check.name,
        required: check.required,
        line: check.line,
        status,
        duration: started.elapsed(),
        output_tail,
        truncated_bytes,
    }
}

/// The check's container, started: its tree packed (owned by the check's uid), the
/// container created with the check's limits, the tree copied in. Removed when the
/// returned guard drops.
async fn started_container(job: &Job<'_>, check: &PlannedCheck) -> Result<Removal, SetupError> {
    let command = std::str::from_utf8(job.command).map_err(|_| SetupError::NotUtf8)?;
    let (uid, gid) = job.user;
    let source = job.source.to_path_buf();
    let tar = tokio::task::spawn_blocking(move || {
        crate::adapters::checks::docker::tar_tree(&source, "tree", uid, gid)
    })
    .await
    .map_err(|e| SetupError::Task {
        what: "packing the check tree",
        source: Arc::new(e),
    })?
    .map_err(SetupError::io(|source| SetupError::Pack { source }))?;
    let mut env: Vec<String> = check
        .env
        .iter()
        .filter(|(name, _)| name.as_str() != "HOME")
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    env.push("HOME=/tmp".into());
    let spec = ContainerSpec {
        image: job.image.image.clone(),
        cmd: vec!["sh".into(), "-c".into(), command.to_string()],
        env,
        user: format!("{uid}:{gid}"),
        working_dir: TREE.into(),
        network: job.image.network.mode().into(),
        volume: VOLUME.into(),
        tmp_bytes: TMP_BYTES,
        memory_bytes: job.image.memory_bytes,
        nano_cpus: job.image.nano_cpus,
        pids: job.image.pids,
        labels: vec![("agent-gate.check".into(), check.name.clone())],
    };
    let engine = job.engine;
    let id = engine
        .create(&spec)
        .await
        .map_err(step("create the check's container"))?;
    let container = Removal::new(engine, &id);
    engine
        .put_archive(&id, VOLUME, tar)
        .await
        .map_err(step("copy the tree into the check's container"))?;
    engine
        .start(&id)
        .await
        .map_err(step("start the check's container"))?;
    Ok(container)
}

/// A failed step of the check's container.
fn step(step: &'static str) -> impl FnOnce(EngineError) -> SetupError {
    move |e| SetupError::Container {
        step,
        source: Arc::new(e),
    }
}
