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

/// A path of `protect` that could not be hidden, or the register of hidden files that runs
/// on this machine share could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProtectError {
    #[error("cannot make `{}` unreadable to checks: {source}", path.display())]
    Path {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot record hidden files in `{}` (shared by the gate's runs on this machine): {source}", dir.display())]
    Register {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Hides persisted credentials from other uids while alive: on creation each path (after
/// resolving symlinks) is chmod-ed to `0o700` (directories) or `0o000` (files), and on drop
/// — also when unwinding from a panic — the mode the file had before *any* run hid it is
/// restored, once the last run that hides it lets go.
///
/// Runs on one machine share a home directory (self-hosted runners, local use), so two runs
/// may hide the same `~/.gitconfig` at once. Each file hidden has an entry in a register
/// (`$TMPDIR/agent-gate-hidden-<euid>/<dev>-<inode>.json`, in a directory only the gate's
/// uid may use), taken under an exclusive `flock`: the mode the first run found, and the
/// runs holding it. A run that comes second records the original mode, not the `000` the
/// first one set; the last one out restores it. A holder that died without letting go
/// (SIGKILL) is recognised by its pid and start time and dropped, so the next run restores
/// what it hid. A file whose mode someone changed while it was hidden keeps that mode.
#[derive(Debug)]
pub struct ProtectGuard {
    changed: Vec<(PathBuf, u32)>,
    entries: Vec<PathBuf>,
    holder: Holder,
}

impl ProtectGuard {
    /// Paths whose mode was changed, with the modes they will get back.
    pub fn changed(&self) -> &[(PathBuf, u32)] {
        &self.changed
    }
}

impl Drop for ProtectGuard {
    fn drop(&mut self) {
        let entries = std::mem::take(&mut self.entries);
        for ((path, mode), entry) in self.changed.drain(..).zip(entries).rev() {
            if let Err(e) = release(&path, mode, &entry, &self.holder) {
                tracing::error!("could not restore mode {mode:o} of {}: {e}", path.display());
            }
        }
    }
}

/// One guard of one process: the pid, the process's start time (so a reused pid is not
/// taken for a live holder) and a number unique in the process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
struct Holder {
    pid: u32,
    start: u64,
    guard: u64,
}

impl Holder {
    fn new() -> Holder {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let pid = std::process::id();
        Holder {
            pid,
            start: process_start(pid).unwrap_or(0),
            guard: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    fn alive(&self) -> bool {
        process_start(self.pid) == Some(self.start)
    }
}

/// Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks since boot.
fn process_start(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// A register entry: the mode the file had before it was hidden, and who hides it.
#[derive(Debug, Default, Serialize, serde::Deserialize)]
struct Hidden {
    path: PathBuf,
    mode: u32,
    /// The mode it was given while hidden (to tell a later change by someone else).
    set_to: u32,
    holders: Vec<Holder>,
}

/// The register's directory, created `0o700` when missing; refused unless it is a real
/// directory of the gate's own uid that nobody else can write (a register others could
/// write would let them choose the mode a credential gets back).
fn register_dir() -> Result<PathBuf, ProtectError> {
    use std::os::unix::fs::DirBuilderExt;
    let euid = rustix::process::geteuid().as_raw();
    let dir = std::env::temp_dir().join(format!("agent-gate-hidden-{euid}"));
    let fail = |source| ProtectError::Register {
        dir: dir.clone(),
        source,
    };
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(fail(e)),
    }
    let meta = fs::symlink_metadata(&dir).map_err(fail)?;
    if !meta.is_dir() || meta.uid() != euid || meta.mode() & 0o077 != 0 {
        return Err(fail(io::Error::other(format!(
            "not a directory of uid {euid} that only it can use (mode {:o}, uid {})",
            meta.mode() & 0o7777,
            meta.uid()
        ))));
    }
    Ok(dir)
}

/// Open and lock a register entry; the lock is released when the file is closed.
fn lock_entry(entry: &Path) -> io::Result<(fs::File, Option<Hidden>)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(entry)?;
    file.lock()?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let hidden = serde_json::from_str::<Hidden>(&text).ok();
    Ok((file, hidden))
}

fn write_entry(file: &mut fs::File, hidden: Option<&Hidden>) -> io::Result<()> {
    use std::io::{Seek, Write};
    file.set_len(0)?;
    file.seek(io::SeekFrom::Start(0))?;
    if let Some(h) = hidden {
        file.write_all(&serde_json::to_vec(h).map_err(io::Error::other)?)?;
    }
    file.flush()
}

/// Let go of one hidden file: the last live holder restores the original mode (unless
/// someone else changed it meanwhile).
fn release(path: &Path, mode: u32, entry: &Path, me: &Holder) -> io::Result<()> {
    // The register is gone: restore what this run recorded.
    let Ok((mut file, hidden)) = lock_entry(entry) else {
        return fs::set_permissions(path, fs::Permissions::from_mode(mode));
    };
    let Some(mut hidden) = hidden else {
        return fs::set_permissions(path, fs::Permissions::from_mode(mode));
    };
    hidden.holders.retain(|h| h != me && h.alive());
    if hidden.holders.is_empty() {
        let current = fs::metadata(path)?.permissions().mode() & 0o7777;
        if current == hidden.set_to {
            fs::set_permissions(path, fs::Permissions::from_mode(hidden.mode))?;
        }
        write_entry(&mut file, None)
    } else {
        write_entry(&mut file, Some(&hidden))
    }
}

/// Make `paths` unreadable to other uids until the returned guard is dropped. Paths that do
/// not exist are ignored (not every run has every credential file). On error every change
/// made so far is undone. Safe to call from concurrent runs that share files (see
/// [`ProtectGuard`]).
pub fn protect(paths: &[PathBuf]) -> Result<ProtectGuard, ProtectError> {
    let mut guard = ProtectGuard {
        changed: Vec::new(),
        entries: Vec::new(),
        holder: Holder::new(),
    };
    let mut register = None;
    for path in paths {
        let fail = |source| ProtectError::Path {
            path: path.clone(),
            source,
        };
        let real = match fs::canonicalize(path) {
            Ok(real) => real,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(fail(source)),
        };
        let dir = match &register {
            Some(dir) => dir,
            None => register.insert(register_dir()?),
        };
        let meta = fs::metadata(&real).map_err(fail)?;
        let entry = dir.join(format!("{:x}-{:x}.json", meta.dev(), meta.ino()));
        let (mut file, hidden) = lock_entry(&entry).map_err(|source| ProtectError::Register {
            dir: dir.clone(),
            source,
        })?;
        // Read the mode under the lock: another run may have just hidden or restored it.
        let meta = fs::metadata(&real).map_err(fail)?;
        let current = meta.permissions().mode() & 0o7777;
        let mut holders = Vec::new();
        let original = match hidden {
            // Hidden by a run (alive, or dead without restoring) and not changed since:
            // what that run found is the original.
            Some(h) if h.path == real && current == h.set_to => {
                holders = h.holders;
                holders.retain(Holder::alive);
                h.mode
            }
            _ => current,
        };
        let new = if meta.is_dir() { original & 0o700 } else { 0 };
        fs::set_permissions(&real, fs::Permissions::from_mode(new)).map_err(fail)?;
        holders.push(guard.holder.clone());
        let hidden = Hidden {
            path: real.clone(),
            mode: original,
            set_to: new,
            holders,
        };
        guard.changed.push((real, original));
        guard.entries.push(entry);
        write_entry(&mut file, Some(&hidden)).map_err(|source| ProtectError::Register {
            dir: dir.clone(),
            source,
        })?;
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
