//! What keeps agent-written check code away from the gate's credentials (DESIGN §5):
//! handing the tree to an unprivileged uid, hiding persisted credentials for the duration
//! of the checks (and restoring them exactly), making the gate's own process undumpable,
//! and finding credentials a same-uid check could read. It does not spawn checks.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Whom checks run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAs {
    /// When the gate is root: this uid/gid (supplementary groups cleared). When it is not,
    /// checks run as the gate's own uid ("same-uid" isolation).
    Unprivileged { uid: u32, gid: u32 },
    /// Always the gate's own uid, also when it is root (for tests and for callers that
    /// sandbox checks some other way; the report says so).
    CurrentUser,
}

/// `nobody`/`nogroup` on Debian-family systems, and the kernel's overflow uid.
pub const NOBODY: u32 = 65534;

impl Default for RunAs {
    fn default() -> RunAs {
        RunAs::Unprivileged {
            uid: NOBODY,
            gid: NOBODY,
        }
    }
}

/// How checks were isolated from the gate's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IsolationMode {
    /// Checks ran under a uid other than the gate's, in a tree and `HOME` they own, with
    /// persisted credentials made unreadable for the duration.
    UnprivilegedUid,
    /// Checks ran under the gate's own uid (the gate is not root).
    SameUid,
}

impl IsolationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            IsolationMode::UnprivilegedUid => "unprivileged-uid",
            IsolationMode::SameUid => "same-uid",
        }
    }
}

/// Isolation of one run of the checks, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IsolationReport {
    pub mode: IsolationMode,
    /// Sentences for humans: what was and was not protected.
    pub notes: Vec<String>,
    /// The notes (also in `notes`) that say what was *not* protected: a weakness a reader
    /// should be warned of, where the others describe isolation working as designed.
    pub weaknesses: Vec<String>,
}

impl IsolationReport {
    /// Record a weakness of this run's isolation (a note that is also a warning).
    pub fn weakness(&mut self, note: String) {
        self.weaknesses.push(note.clone());
        self.notes.push(note);
    }
}

/// A path of `protect` that could not be hidden.
#[derive(Debug, thiserror::Error)]
#[error("cannot make `{}` unreadable to checks: {source}", path.display())]
pub struct ProtectError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Hides persisted credentials from other uids while alive: on creation each path (after
/// resolving symlinks) is chmod-ed to `0o700` (directories) or `0o000` (files), and on drop
/// — also when unwinding from a panic — every exact previous mode is restored, in reverse
/// order. A process that exits without dropping it (`std::process::exit`, SIGKILL) leaves
/// the paths hidden: the caller must keep the guard alive while it handles SIGINT/SIGTERM
/// and drop it before exiting.
#[derive(Debug)]
pub struct ProtectGuard {
    changed: Vec<(PathBuf, u32)>,
}

impl ProtectGuard {
    /// Paths whose mode was changed, with their previous modes.
    pub fn changed(&self) -> &[(PathBuf, u32)] {
        &self.changed
    }
}

impl Drop for ProtectGuard {
    fn drop(&mut self) {
        for (path, mode) in self.changed.drain(..).rev() {
            if let Err(e) = fs::set_permissions(&path, fs::Permissions::from_mode(mode)) {
                tracing::error!("could not restore mode {mode:o} of {}: {e}", path.display());
            }
        }
    }
}

/// Make `paths` unreadable to other uids until the returned guard is dropped. Paths that do
/// not exist are ignored (not every run has every credential file). On error every change
/// made so far is undone.
pub fn protect(paths: &[PathBuf]) -> Result<ProtectGuard, ProtectError> {
    let mut guard = ProtectGuard {
        changed: Vec::new(),
    };
    for path in paths {
        let real = match fs::canonicalize(path) {
            Ok(real) => real,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(ProtectError {
                    path: path.clone(),
                    source,
                });
            }
        };
        let meta = fs::metadata(&real).map_err(|source| ProtectError {
            path: path.clone(),
            source,
        })?;
        let old = meta.permissions().mode() & 0o7777;
        let new = if meta.is_dir() { old & 0o700 } else { 0 };
        fs::set_permissions(&real, fs::Permissions::from_mode(new)).map_err(|source| {
            ProtectError {
                path: path.clone(),
                source,
            }
        })?;
        guard.changed.push((real, old));
    }
    Ok(guard)
}

/// Give the tree at `root` to `uid:gid`, recursively, never following symlinks (symlinks
/// themselves are re-owned with `lchown`). Entry kinds come from the directory listing, so
/// a file costs one `lchown` and no `stat`.
pub fn chown_tree(root: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(root, Some(uid), Some(gid))?;
    if !fs::symlink_metadata(root)?.is_dir() {
        return Ok(());
    }
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid))?;
            if entry.file_type()?.is_dir() {
                dirs.push(path);
            }
        }
    }
    Ok(())
}

/// Is the gate running as root?
pub fn gate_is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Mark the gate process not dumpable, so that processes of the same uid (checks, when the
/// gate is not root) cannot read its `/proc/<pid>/environ` or attach to it. Not inherited
/// across `execve`, so checks themselves are unaffected.
pub fn make_gate_undumpable() -> io::Result<()> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(io::Error::from)
}

/// File-command variables of the Actions runner (files a step writes to set outputs,
/// environment, `PATH`, state and the summary of later steps).
pub const FILE_COMMAND_VARS: &[&str] = &[
    "GITHUB_OUTPUT",
    "GITHUB_ENV",
    "GITHUB_PATH",
    "GITHUB_STATE",
    "GITHUB_STEP_SUMMARY",
];

/// The usual places credentials are persisted around a gate run, to pass as
/// [`RunOptions::protect`](super::RunOptions::protect): the workspace's `.git` directory and
/// `.git/config` (actions/checkout's `extraheader`), the runner's file-command directory
/// (`$RUNNER_TEMP/_runner_file_commands` and the directory of `$GITHUB_OUTPUT` & co., which
/// in a container action is `/github/file_commands`), and the gate user's
/// `~/.git-credentials`, `~/.gitconfig` and `~/.config/gh`. `gate_env` is the gate's
/// environment. Paths that do not exist are ignored by [`protect`] and
/// [`readable_credentials`], so the list may name more than a given run has.
pub fn credential_paths(
    workspace: &Path,
    gate_env: &[(std::ffi::OsString, std::ffi::OsString)],
) -> Vec<PathBuf> {
    let var = |name: &str| {
        gate_env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| PathBuf::from(v))
            .filter(|p| p.is_absolute())
    };
    let mut paths = vec![workspace.join(".git"), workspace.join(".git/config")];
    if let Some(temp) = var("RUNNER_TEMP") {
        paths.push(temp.join("_runner_file_commands"));
    }
    for name in FILE_COMMAND_VARS {
        // Only the runner's own directories: hiding `/tmp` because a caller pointed
        // GITHUB_OUTPUT there would break every check.
        if let Some(dir) = var(name).as_deref().and_then(Path::parent)
            && dir
                .file_name()
                .is_some_and(|n| n == "_runner_file_commands" || n == "file_commands")
            && !paths.iter().any(|p| p == dir)
        {
            paths.push(dir.to_path_buf());
        }
    }
    if let Some(home) = var("HOME") {
        paths.extend([
            home.join(".git-credentials"),
            home.join(".gitconfig"),
            home.join(".config/gh"),
        ]);
    }
    paths
}

/// The runner's file-command files named in `gate_env` that this process can write: when
/// checks share its uid they could write them too (and set later steps' environment).
pub fn writable_file_commands(
    gate_env: &[(std::ffi::OsString, std::ffi::OsString)],
) -> Vec<PathBuf> {
    gate_env
        .iter()
        .filter(|(k, _)| FILE_COMMAND_VARS.iter().any(|v| k == v))
        .map(|(_, v)| PathBuf::from(v))
        .filter(|p| fs::OpenOptions::new().append(true).open(p).is_ok())
        .collect()
}

/// Files read by [`readable_credentials`] are looked at up to this size.
const MAX_SCANNED_BYTES: u64 = 1 << 20;

/// The files among `paths` that this process can read and that hold a credential: a git
/// config with an `http.*.extraheader` (where actions/checkout persists its token) or a URL
/// with a password, an `Authorization:` header, or a GitHub token. A directory stands for
/// the regular files directly inside it (`.git` → `.git/config`, …). When the gate is not
/// root its checks run as the same uid, so what this finds they could read too.
pub fn readable_credentials(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for path in paths {
        let Ok(meta) = fs::metadata(path) else {
            continue;
        };
        if meta.is_dir() {
            let Ok(entries) = fs::read_dir(path) else {
                continue;
            };
            let mut files: Vec<PathBuf> =
                entries.filter_map(Result::ok).map(|e| e.path()).collect();
            files.sort();
            for file in files {
                if fs::metadata(&file).is_ok_and(|m| m.is_file())
                    && file_holds_credential(&file)
                    && !found.contains(&file)
                {
                    found.push(file);
                }
            }
        } else if meta.is_file() && file_holds_credential(path) && !found.contains(path) {
            found.push(path.clone());
        }
    }
    found
}

fn file_holds_credential(path: &Path) -> bool {
    let Ok(file) = fs::File::open(path) else {
        return false;
    };
    if file.metadata().is_ok_and(|m| m.size() > MAX_SCANNED_BYTES) {
        // Large files (packs, the index) are not where credentials are persisted.
        return false;
    }
    let mut text = Vec::new();
    if file.take(MAX_SCANNED_BYTES).read_to_end(&mut text).is_err() {
        return false;
    }
    holds_credential(&text)
}

/// Does this text look like it holds a credential?
pub fn holds_credential(text: &[u8]) -> bool {
    let lower = text.to_ascii_lowercase();
    let markers: &[&[u8]] = &[
        b"extraheader",
        b"authorization:",
        b"x-access-token",
        b"ghp_",
        b"gho_",
        b"ghu_",
        b"ghs_",
        b"ghr_",
        b"github_pat_",
    ];
    if markers.iter().any(|m| contains(&lower, m)) {
        return true;
    }
    url_with_password(&lower)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// `scheme://user:password@host` anywhere in the text.
fn url_with_password(text: &[u8]) -> bool {
    let mut rest = text;
    while let Some(i) = rest.windows(3).position(|w| w == b"://") {
        let after = &rest[i + 3..];
        let end = after
            .iter()
            .position(|&b| b == b'/' || b.is_ascii_whitespace() || b == b'"' || b == b'\'')
            .unwrap_or(after.len());
        let authority = &after[..end];
        if let Some(at) = authority.iter().rposition(|&b| b == b'@')
            && authority[..at].contains(&b':')
        {
            return true;
        }
        rest = after;
    }
    false
}
