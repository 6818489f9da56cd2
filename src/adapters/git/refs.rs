//! Refs on a remote used as a small shared store (the admission lock of issue 8): writing a
//! parentless commit on the empty tree whose message is a note ([`Git::note_commit`]),
//! pushing ref updates with compare-and-swap expectations, atomically
//! ([`Git::push_refs`]), and mirroring the refs under a remote prefix into a private local
//! prefix to read their notes ([`Git::mirror_refs`]). It knows nothing of what the notes
//! mean; `crate::flow::lease` does.

use std::ffi::OsStr;

use bstr::ByteSlice;

use super::error::display_args;
use super::fetch::{fetch_args, with_token};
use super::{Git, GitError};

/// What a pushed ref must hold on the remote for the update to happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// The ref must not exist (create).
    Absent,
    /// The ref must point at this object id.
    Is(String),
    /// Anything: the update is forced (a ref only this process writes).
    Any,
}

/// One ref update of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    /// The full ref name on the remote (`refs/...`).
    pub name: String,
    /// The object id to set, `None` to delete the ref.
    pub new: Option<String>,
    pub expect: Expect,
}

/// How a push ended when git could talk to the remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// Every update was applied.
    Pushed,
    /// An expectation did not hold (or the remote refused a ref); with `--atomic`, nothing
    /// was applied. `reason` is git's per-ref summary, e.g. `refs/x: [rejected] (stale info)`.
    Rejected { reason: String },
}

/// A ref read by [`Git::mirror_refs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    /// The ref's name on the remote.
    pub name: String,
    /// The object it points at.
    pub id: String,
    /// The first line of the commit message (empty for a non-commit).
    pub subject: String,
}

/// The committer of note commits: a fixed identity, so no user configuration is needed.
const NOTE_IDENTITY: [(&str, &str); 4] = [
    ("GIT_AUTHOR_NAME", "agent-gate"),
    ("GIT_AUTHOR_EMAIL", "agent-gate@users.noreply.github.com"),
    ("GIT_COMMITTER_NAME", "agent-gate"),
    ("GIT_COMMITTER_EMAIL", "agent-gate@users.noreply.github.com"),
];

fn check_ref(command: &'static str, name: &str) -> Result<(), GitError> {
    let ok = name.starts_with("refs/")
        && !name.contains(['\0', ' ', ':', '~', '^', '?', '*', '[', '\\'])
        && !name.contains("..")
        && !name.ends_with('/');
    if ok {
        Ok(())
    } else {
        Err(GitError::BadArgument {
            command,
            what: "ref",
            arg: name.to_string(),
            reason: "a full `refs/...` name without wildcards, spaces or `:`",
        })
    }
}

impl Git {
    /// Write a commit with no parent on the empty tree whose message is `message` (one
    /// line), and return its id. Never signed, never on a branch: it exists to be pushed
    /// under a ref as a note.
    pub fn note_commit(&self, message: &str) -> Result<String, GitError> {
        if message.contains(['\n', '\0']) || message.trim().is_empty() {
            return Err(GitError::BadArgument {
                command: "commit-tree",
                what: "message",
                arg: message.to_string(),
                reason: "a note is one non-empty line",
            });
        }
        let tree = self.run(&["hash-object", "-t", "tree", "-w", "/dev/null"])?;
        let tree = tree.trim().to_str_lossy().into_owned();
        let args = ["commit-tree", "--no-gpg-sign", "-m", message, &tree].map(OsStr::new);
        let env = NOTE_IDENTITY.map(|(k, v)| (k, OsStr::new(v)));
        let out = self.run_env(&args, &env)?;
        Ok(out.trim().to_str_lossy().into_owned())
    }

    /// Push `updates` to `remote` in one atomic push (all or nothing), each with its
    /// expectation checked by the remote under its ref lock. `token` authenticates HTTPS as
    /// [`Git::fetch_with_token`] does. A failed expectation is [`PushOutcome::Rejected`];
    /// a remote that cannot be reached or refuses the push as a whole is an error.
    pub fn push_refs(
        &self,
        remote: &str,
        updates: &[RefUpdate],
        token: Option<&str>,
    ) -> Result<PushOutcome, GitError> {
        self.push(remote, updates, token, true)
    }

    /// [`Git::push_refs`] without `--atomic`: each update stands alone (for best-effort
    /// cleanup, where one lost expectation must not stop the others).
    pub fn push_refs_each(
        &self,
        remote: &str,
        updates: &[RefUpdate],
        token: Option<&str>,
    ) -> Result<PushOutcome, GitError> {
        self.push(remote, updates, token, false)
    }

    fn push(
        &self,
        remote: &str,
        updates: &[RefUpdate],
        token: Option<&str>,
        atomic: bool,
    ) -> Result<PushOutcome, GitError> {
        if updates.is_empty() {
            return Ok(PushOutcome::Pushed);
        }
        // The remote's checks, reused: a remote never taken as an option.
        fetch_args(remote, &[])?;
        let mut args: Vec<String> = vec!["push".into(), "--porcelain".into(), "--no-verify".into()];
        if atomic {
            args.push("--atomic".into());
        }
        let mut specs = Vec::new();
        for u in updates {
            check_ref("push", &u.name)?;
            if let Some(id) = &u.new
                && !super::is_object_id(id)
            {
                return Err(GitError::BadArgument {
                    command: "push",
                    what: "object id",
                    arg: id.clone(),
                    reason: "a full hexadecimal object id",
                });
            }
            match &u.expect {
                Expect::Absent => args.push(format!("--force-with-lease={}:", u.name)),
                Expect::Is(id) => args.push(format!("--force-with-lease={}:{id}", u.name)),
                Expect::Any => {}
            }
            let force = if u.expect == Expect::Any { "+" } else { "" };
            specs.push(format!(
                "{force}{}:{}",
                u.new.as_deref().unwrap_or_default(),
                u.name
            ));
        }
        args.push("--".into());
        args.push(remote.into());
        args.extend(specs);
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let done = with_token(token, |env| self.exec(&args, env))?;
        if done.status.success() {
            return Ok(PushOutcome::Pushed);
        }
        // `<flag> TAB <from>:<to> TAB <summary>`; `!` marks a ref that was not updated.
        let rejected: Vec<String> = done
            .stdout
            .lines()
            .filter_map(|l| {
                let l = l.to_str_lossy();
                let mut fields = l.split('\t');
                let flag = fields.next()?;
                let spec = fields.next()?;
                let summary = fields.next()?;
                (flag == "!" && summary.contains("rejected")).then(|| {
                    let to = spec.rsplit(':').next().unwrap_or(spec);
                    format!("{to}: {summary}")
                })
            })
            .collect();
        if rejected.is_empty() {
            Err(self.failed(&args, &done))
        } else {
            Ok(PushOutcome::Rejected {
                reason: rejected.join("; "),
            })
        }
    }

    /// Fetch every ref under `remote_prefix` (e.g. `refs/agent-gate/admission/`) from
    /// `remote` into `local_prefix`, pruning local refs the remote no longer has, and return
    /// them under their remote names with their commit subjects.
    pub fn mirror_refs(
        &self,
        remote: &str,
        remote_prefix: &str,
        local_prefix: &str,
        token: Option<&str>,
    ) -> Result<Vec<RemoteRef>, GitError> {
        for prefix in [remote_prefix, local_prefix] {
            check_ref("fetch", prefix.trim_end_matches('/'))?;
            if !prefix.ends_with('/') {
                return Err(GitError::BadArgument {
                    command: "fetch",
                    what: "ref prefix",
                    arg: prefix.to_string(),
                    reason: "a prefix ends with `/`",
                });
            }
        }
        let spec = format!("+{remote_prefix}*:{local_prefix}*");
        let mut args = fetch_args(remote, &[&spec])?;
        args.insert(1, "--prune");
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        with_token(token, |env| self.run_env(&args, env))?;
        self.local_refs(local_prefix).map(|refs| {
            refs.into_iter()
                .map(|mut r| {
                    r.name = format!("{remote_prefix}{}", &r.name[local_prefix.len()..]);
                    r
                })
                .collect()
        })
    }

    /// The local refs under `prefix` with their commit subjects.
    pub fn local_refs(&self, prefix: &str) -> Result<Vec<RemoteRef>, GitError> {
        check_ref("for-each-ref", prefix.trim_end_matches('/'))?;
        let args = [
            "for-each-ref",
            "--format=%(refname)%00%(objectname)%00%(contents:subject)",
            prefix,
        ];
        let out = self.run(&args)?;
        let mut refs = Vec::new();
        for line in out.lines().filter(|l| !l.is_empty()) {
            let mut fields = line.splitn(3, |&b| b == 0);
            let (Some(name), Some(id), subject) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(GitError::Parse {
                    args: display_args(&args.map(OsStr::new)),
                    source: super::ParseError {
                        offset: 0,
                        message: format!("unexpected for-each-ref line {:?}", line.as_bstr()),
                    },
                });
            };
            let name = name.to_str_lossy().into_owned();
            if !name.starts_with(prefix) {
                continue;
            }
            refs.push(RemoteRef {
                name,
                id: id.to_str_lossy().into_owned(),
                subject: subject
                    .map(|s| s.to_str_lossy().into_owned())
                    .unwrap_or_default(),
            });
        }
        Ok(refs)
    }

    /// The names of the refs under `prefix` on `remote` (`git ls-remote`: one round trip,
    /// no objects fetched), with `token` as [`Git::fetch_with_token`] uses it.
    pub fn remote_ref_names(
        &self,
        remote: &str,
        prefix: &str,
        token: Option<&str>,
    ) -> Result<Vec<String>, GitError> {
        check_ref("ls-remote", prefix.trim_end_matches('/'))?;
        // The remote's checks, reused: a remote never taken as an option.
        fetch_args(remote, &[])?;
        let pattern = format!("{prefix}*");
        let args = ["ls-remote", "--refs", "--", remote, &pattern].map(OsStr::new);
        let out = with_token(token, |env| self.run_env(&args, env))?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let name = l.split_once_str("\t")?.1.to_str_lossy().into_owned();
                name.starts_with(prefix).then_some(name)
            })
            .collect())
    }
}
