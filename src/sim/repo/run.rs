//! Running one `git` subprocess for the simulator's repository: scrubbed environment, own
//! process group, killed on timeout or drop, stdout capped, stderr kept for the error. It
//! knows nothing of refs, commits or file operations (`mod.rs`, `ops.rs`).

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::RepoError;

pub(super) const GIT_TIMEOUT: Duration = Duration::from_mins(1);
const OUTPUT_CAP: usize = 16 << 20;

pub(super) fn os(s: &str) -> OsString {
    OsString::from(s)
}

/// Run git with a scrubbed environment, in its own process group, killed on timeout or
/// drop; returns stdout (capped).
pub(super) async fn run_git(
    git_dir: Option<&Path>,
    args: &[OsString],
    env: &[(&str, &str)],
    stdin: Option<Vec<u8>>,
) -> Result<Vec<u8>, RepoError> {
    let shown = args
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = tokio::process::Command::new("git");
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .env("GIT_LITERAL_PATHSPECS", "1")
        .env("HOME", std::env::temp_dir());
    if let Some(d) = git_dir {
        cmd.env("GIT_DIR", d);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| RepoError::Spawn {
        args: shown.clone(),
        source,
    })?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        tokio::spawn(async move {
            let _ = pipe.write_all(&data).await;
        });
    }
    let out = tokio::time::timeout(GIT_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| RepoError::Timeout {
            args: shown.clone(),
        })?;
    let out = out.map_err(|source| RepoError::Spawn {
        args: shown.clone(),
        source,
    })?;
    if !out.status.success() {
        let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        stderr.truncate(4000);
        return Err(RepoError::Git {
            args: shown,
            status: out.status.to_string(),
            stderr,
        });
    }
    let mut stdout = out.stdout;
    stdout.truncate(OUTPUT_CAP);
    Ok(stdout)
}
