//! One check process: `bash -c <command>` in its own process group, stdout and stderr
//! written to one pipe (so their lines interleave as the check wrote them) whose tail is
//! kept in a bounded buffer, a timeout and a cancellation signal that kill the whole group
//! (SIGTERM, a grace period, SIGKILL), and a guard that SIGKILLs the group if the future
//! is dropped. It decides nothing about policies or isolation; it is told uid, env and cwd.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

/// How long output is still read after the check's group is gone: a process that left the
/// group (`setsid`) may keep the pipe open forever.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// Everything needed to run one check process.
#[derive(Debug)]
pub(super) struct Exec {
    pub command: Vec<u8>,
    pub cwd: PathBuf,
    pub env: Vec<(OsString, OsString)>,
    /// `Some((uid, gid))`: switch to this uid/gid (and clear supplementary groups).
    pub user: Option<(u32, u32)>,
    pub timeout: Duration,
    pub grace: Duration,
    pub output_cap: usize,
}

/// How the process ended.
#[derive(Debug)]
pub(super) enum Ending {
    Exited(ExitStatus),
    TimedOut,
    Cancelled,
    SpawnFailed(std::io::Error),
}

/// Result of one process.
#[derive(Debug)]
pub(super) struct Ran {
    pub ending: Ending,
    pub duration: Duration,
    pub output: String,
    pub truncated_bytes: u64,
}

/// The last `cap` bytes of a stream, and how many bytes went by in total.
#[derive(Debug, Default)]
pub(super) struct Tail {
    buf: VecDeque<u8>,
    cap: usize,
    total: u64,
}

impl Tail {
    pub fn new(cap: usize) -> Tail {
        Tail {
            buf: VecDeque::new(),
            cap,
            total: 0,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if bytes.len() >= self.cap {
            self.buf.clear();
            self.buf.extend(&bytes[bytes.len() - self.cap..]);
            return;
        }
        let excess = (self.buf.len() + bytes.len()).saturating_sub(self.cap);
        self.buf.drain(..excess);
        self.buf.extend(bytes);
    }

    /// The kept bytes (lossily decoded) and the number of bytes dropped before them.
    pub fn finish(&mut self) -> (String, u64) {
        let kept = self.buf.make_contiguous();
        (
            String::from_utf8_lossy(kept).into_owned(),
            self.total - kept.len() as u64,
        )
    }
}

/// SIGKILLs a process group when dropped, unless disarmed.
struct GroupKill {
    pgid: Option<Pid>,
}

impl GroupKill {
    fn signal(&self, signal: Signal) {
        if let Some(pgid) = self.pgid {
            // ESRCH (the group is gone) is the expected outcome, not an error.
            let _ = kill_process_group(pgid, signal);
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.signal(Signal::KILL);
    }
}

/// Run one check to its end. `cancel` turning `true` kills it (reported as cancelled).
pub(super) async fn run(exec: Exec, mut cancel: watch::Receiver<bool>) -> Ran {
    let started = Instant::now();
    let tail = Arc::new(Mutex::new(Tail::new(exec.output_cap)));
    let ending = run_process(&exec, &mut cancel, &tail, started).await;
    let duration = started.elapsed();
    let (output, truncated_bytes) = tail.lock().unwrap_or_else(PoisonError::into_inner).finish();
    Ran {
        ending,
        duration,
        output,
        truncated_bytes,
    }
}

async fn run_process(
    exec: &Exec,
    cancel: &mut watch::Receiver<bool>,
    tail: &Arc<Mutex<Tail>>,
    started: Instant,
) -> Ending {
    let (reader, writer) = match std::io::pipe() {
        Ok(pair) => pair,
        Err(e) => return Ending::SpawnFailed(e),
    };
    let writer2 = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => return Ending::SpawnFailed(e),
    };
    let mut command = tokio::process::Command::new("bash");
    command
        .arg("-c")
        .arg(OsStr::from_bytes(&exec.command))
        .env_clear()
        .envs(exec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&exec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(writer2))
        .process_group(0)
        .kill_on_drop(true);
    if let Some((uid, gid)) = exec.user {
        // std clears the supplementary groups (setgroups(0)) when it switches uid as root.
        command.uid(uid).gid(gid);
    }
    let spawned = command.spawn();
    // Our copies of the pipe's write end must be closed, or the reader never sees EOF.
    drop(command);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return Ending::SpawnFailed(e),
    };
    let group = GroupKill {
        pgid: child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw),
    };
    let reading = match tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader)) {
        Ok(rx) => Some(AbortOnDrop(tokio::spawn(read_into(rx, Arc::clone(tail))))),
        Err(e) => {
            tail.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(format!("agent-gate: cannot read the check's output: {e}\n").as_bytes());
            None
        }
    };

    let deadline = tokio::time::Instant::from_std(started) + exec.timeout;
    let ending = tokio::select! {
        status = child.wait() => match status {
            Ok(status) => Ending::Exited(status),
            Err(e) => Ending::SpawnFailed(e),
        },
        () = tokio::time::sleep_until(deadline) => Ending::TimedOut,
        () = cancelled(cancel) => Ending::Cancelled,
    };
    if matches!(ending, Ending::TimedOut | Ending::Cancelled) {
        group.signal(Signal::TERM);
        if tokio::time::timeout(exec.grace, child.wait())
            .await
            .is_err()
        {
            group.signal(Signal::KILL);
            // Should the group signal fail, the leader at least must not outlive its timeout.
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
    // Whatever the check left behind in its group (background jobs, daemons) dies with it.
    drop(group);

    if let Some(mut reading) = reading
        && tokio::time::timeout(DRAIN_AFTER_EXIT, &mut reading.0)
            .await
            .is_err()
    {
        tail.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(b"\nagent-gate: stopped reading output: a process outside the check's process group kept it open\n");
    }
    ending
}

/// Completes when `cancel` turns true; never, once nobody can send any more.
pub(super) async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        // The sender is gone: nobody can cancel any more.
        std::future::pending::<()>().await;
    }
}

async fn read_into(mut rx: tokio::net::unix::pipe::Receiver, tail: Arc<Mutex<Tail>>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match rx.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => tail
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(&buf[..n]),
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Exit code or signal of a finished process.
pub(super) fn code_or_signal(status: ExitStatus) -> (Option<i32>, Option<i32>) {
    (status.code(), status.signal())
}
