//! The scenario's file operations ([`FileOp`]: write, symlink, delete, rename, mode,
//! patch) applied to a temporary index of the bare repository, through `ls-files`,
//! `update-index` and `apply --cached`. It does not write trees, make commits or move refs
//! (that is [`Repo::commit_ops`] in `mod.rs`) nor run git itself (`run.rs`).

use std::path::Path;

use super::{Repo, RepoError, ZERO, op_err};
use crate::sim::scenario::FileOp;

impl Repo {
    pub(super) async fn apply(&self, index: &Path, op: &FileOp) -> Result<(), RepoError> {
        match op {
            FileOp::Write { path, content } => {
                let blob = self.hash_blob(content).await?;
                let mode = match self.entries(index, path).await?.as_slice() {
                    [(m, _, p)] if p == path && m == "100755" => "100755",
                    _ => "100644",
                };
                self.update_index(index, &[(mode.to_string(), blob, path.clone())])
                    .await
            }
            FileOp::Symlink { path, target } => {
                let blob = self.hash_blob(target.as_bytes()).await?;
                self.update_index(index, &[("120000".to_string(), blob, path.clone())])
                    .await
            }
            FileOp::Delete { path } => {
                let found = self.entries(index, path).await?;
                if found.is_empty() {
                    return Err(RepoError::Op {
                        op: format!("delete {path}"),
                        message: "no such file or directory in the branch".into(),
                    });
                }
                let removals: Vec<_> = found
                    .into_iter()
                    .map(|(_, _, p)| ("0".to_string(), ZERO.to_string(), p))
                    .collect();
                self.update_index(index, &removals).await
            }
            FileOp::Rename { from, to } => {
                let found = self.entries(index, from).await?;
                if found.is_empty() {
                    return Err(RepoError::Op {
                        op: format!("rename {from} -> {to}"),
                        message: "no such file or directory in the branch".into(),
                    });
                }
                let mut changes = Vec::new();
                for (mode, sha, p) in found {
                    let new = format!("{to}{}", &p[from.len()..]);
                    changes.push(("0".to_string(), ZERO.to_string(), p));
                    changes.push((mode, sha, new));
                }
                self.update_index(index, &changes).await
            }
            FileOp::Mode { path, executable } => {
                match self.entries(index, path).await?.as_slice() {
                    [(m, sha, p)] if p == path && (m == "100644" || m == "100755") => {
                        let mode = if *executable { "100755" } else { "100644" };
                        self.update_index(index, &[(mode.to_string(), sha.clone(), path.clone())])
                            .await
                    }
                    _ => Err(RepoError::Op {
                        op: format!("mode {path}"),
                        message: "not a regular file in the branch".into(),
                    }),
                }
            }
            FileOp::Patch { file, patch } => {
                let tmp = tempfile::NamedTempFile::new().map_err(|e| op_err("patch", &e))?;
                std::fs::write(tmp.path(), patch).map_err(|e| op_err("patch", &e))?;
                let p = tmp.path().to_string_lossy().into_owned();
                self.git_index(index, &["apply", "--cached", "--", &p], None)
                    .await
                    .map(drop)
                    .map_err(|e| RepoError::Op {
                        op: format!("patch-file {}", file.display()),
                        message: e.to_string(),
                    })
            }
        }
    }

    /// Index entries `(mode, sha, path)` at `path` or under the directory `path`.
    async fn entries(
        &self,
        index: &Path,
        path: &str,
    ) -> Result<Vec<(String, String, String)>, RepoError> {
        let out = self
            .git_index(index, &["ls-files", "-s", "-z", "--", path], None)
            .await?;
        Ok(out
            .split('\0')
            .filter_map(|rec| {
                let (meta, p) = rec.split_once('\t')?;
                let mut it = meta.split(' ');
                let (mode, sha) = (it.next()?, it.next()?);
                (p == path || p.starts_with(&format!("{path}/")))
                    .then(|| (mode.to_string(), sha.to_string(), p.to_string()))
            })
            .collect())
    }

    async fn update_index(
        &self,
        index: &Path,
        entries: &[(String, String, String)],
    ) -> Result<(), RepoError> {
        let mut input = Vec::new();
        for (mode, sha, path) in entries {
            input.extend_from_slice(format!("{mode} {sha}\t{path}\0").as_bytes());
        }
        self.git_index(index, &["update-index", "-z", "--index-info"], Some(input))
            .await
            .map(drop)
    }
}
