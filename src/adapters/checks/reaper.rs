//! Processes that left their check's process group with `setsid` (a daemon started by a
//! test suite, or code that tries to outlive the gate): the kill of the check's
//! process group cannot reach them, and one still running when the protected files are restored could
//! read the credentials the gate hid. The gate makes itself a child subreaper
//! ([`become_subreaper`]), so such a process, once its parent dies, becomes the gate's
//! child; [`sweep`] then kills every process in the session of each such orphan (a new
//! session is what `setsid` makes) and reaps it, until none is left. It reads `/proc`; it
//! knows nothing of checks, policies or uids.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions, getpid, kill_process, waitpid};

/// Make the gate the reaper of its orphaned descendants (Linux `PR_SET_CHILD_SUBREAPER`).
pub(super) fn become_subreaper() -> std::io::Result<()> {
    rustix::process::set_child_subreaper(Some(getpid())).map_err(std::io::Error::from)
}

/// One process as `/proc/<pid>/stat` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Proc {
    pid: i32,
    ppid: i32,
    session: i32,
}

/// Parse `/proc/<pid>/stat`: `pid (comm) state ppid pgrp session …`, where `comm` may hold
/// spaces and parentheses (the last `)` ends it).
fn parse_stat(text: &str) -> Option<Proc> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let _state = fields.next()?;
    let parent = fields.next()?.parse().ok()?;
    let _pgrp = fields.next()?;
    let session = fields.next()?.parse().ok()?;
    Some(Proc {
        pid: text.split_once(' ')?.0.parse().ok()?,
        ppid: parent,
        session,
    })
}

/// This process's session as `/proc` reports it. Not `getsid(2)`: in a PID namespace whose
/// session leader lives outside it (a container started without its own init session, a
/// sandboxed CI), the session reads as 0, which is no process id (rustix's `getsid`
/// panics on it). `/proc` reports the same 0 for every process of that session, so
/// comparing with it stays right.
fn own_session() -> Option<i32> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?).map(|p| p.session)
}

fn processes() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|t| parse_stat(&t))
        .collect()
}

/// Kill every process that escaped a check: each child of the gate in another session (an
/// orphan of `setsid`), and every process in those sessions; reap the orphans; repeat
/// while new orphans appear (their children, reparented as they die), for at most
/// `patience`. Returns how many processes were killed. Call it when no check is running:
/// a check's own `setsid` helper is its business until the check ends.
pub(super) fn sweep(patience: Duration) -> usize {
    let me = getpid().as_raw_nonzero().get();
    let Some(my_session) = own_session() else {
        return 0;
    };
    let started = Instant::now();
    let mut killed = BTreeSet::new();
    loop {
        let all = processes();
        let orphans: Vec<Proc> = all
            .iter()
            .copied()
            .filter(|p| p.ppid == me && p.session != my_session && p.pid != me)
            .collect();
        // Session 0 is "led from outside this PID namespace": never one a check made.
        let sessions: BTreeSet<i32> = orphans
            .iter()
            .map(|p| p.session)
            .filter(|&s| s > 0)
            .collect();
        for p in all
            .iter()
            .filter(|p| sessions.contains(&p.session) && p.pid != me)
        {
            if let Some(pid) = Pid::from_raw(p.pid)
                && kill_process(pid, Signal::KILL).is_ok()
            {
                killed.insert(p.pid);
            }
        }
        for p in &orphans {
            if let Some(pid) = Pid::from_raw(p.pid) {
                let _ = waitpid(Some(pid), WaitOptions::NOHANG);
            }
        }
        if orphans.is_empty() || started.elapsed() >= patience {
            return killed.len();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sweeps when dropped (the checks future dropped mid-run), before what was declared
/// earlier — the protected files' guard — is restored.
pub(super) struct SweepOnDrop;

impl Drop for SweepOnDrop {
    fn drop(&mut self) {
        sweep(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names() {
        assert_eq!(
            parse_stat("4242 (a (b) c) S 1 4242 4242 0 -1 4194560 0 0"),
            Some(Proc {
                pid: 4242,
                ppid: 1,
                session: 4242
            })
        );
        assert_eq!(
            parse_stat("7 (sh) Z 3 7 5 0"),
            Some(Proc {
                pid: 7,
                ppid: 3,
                session: 5
            })
        );
        assert_eq!(parse_stat("x (sh) S 1 2 3"), None);
        assert_eq!(parse_stat("7 (sh) S"), None);
    }

    #[test]
    fn own_session_is_the_one_proc_lists_for_this_process() {
        let me = i32::try_from(std::process::id()).unwrap();
        let listed = processes().into_iter().find(|p| p.pid == me).unwrap();
        assert_eq!(own_session(), Some(listed.session));
    }

    #[test]
    fn this_process_is_listed() {
        let me = i32::try_from(std::process::id()).unwrap();
        assert!(processes().iter().any(|p| p.pid == me));
    }
}
