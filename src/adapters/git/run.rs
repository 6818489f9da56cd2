//! Running one `git` process to completion: stdout captured whole (diffs must be complete),
//! stderr captured with a cap (the tail is kept: git's `fatal:` line comes last), a timeout
//! after which the whole process group is killed. It knows nothing of git's arguments; the
//! environment and `-c` options are set by the caller (`Git::command`).

use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// At most this many bytes of stderr are kept (the last ones).
pub const STDERR_CAP: usize = 64 * 1024;

/// How a process ended.
pub enum Outcome {
    Exited {
        status: ExitStatus,
        stdout: Vec<u8>,
        stderr: String,
    },
    TimedOut {
        stderr: String,
    },
}

fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = r.read_to_end(&mut out);
    out
}

fn read_tail(mut r: impl Read, cap: usize) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    let mut dropped = false;
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * cap {
                    kept.drain(..kept.len() - cap);
                    dropped = true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if kept.len() > cap {
        kept.drain(..kept.len() - cap);
        dropped = true;
    }
    let text = String::from_utf8_lossy(&kept).trim().to_string();
    if dropped {
        format!("[…] {text}")
    } else {
        text
    }
}

/// Spawn `cmd` in its own process group with no stdin, wait at most `timeout`.
pub fn run_captured(mut cmd: Command, timeout: Duration) -> io::Result<Outcome> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let pid = rustix::process::Pid::from_child(&child);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    thread::scope(|s| {
        let out = s.spawn(move || stdout.map(read_all).unwrap_or_default());
        let err = s.spawn(move || stderr.map(|e| read_tail(e, STDERR_CAP)).unwrap_or_default());
        let (tx, rx) = mpsc::channel();
        s.spawn(move || {
            let _ = tx.send(child.wait());
        });
        let finished = if let Ok(status) = rx.recv_timeout(timeout) {
            Some(status)
        } else {
            // The group is ours (process_group(0) made the child its leader).
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            let _ = rx.recv();
            None
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        match finished {
            Some(status) => Ok(Outcome::Exited {
                status: status?,
                stdout,
                stderr,
            }),
            None => Ok(Outcome::TimedOut { stderr }),
        }
    })
}
