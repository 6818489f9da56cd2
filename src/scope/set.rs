//! Many rules compiled once into two `globset::GlobSet`s, and the queries over them.
//!
//! The *file set* holds, for every rule, the globs matched against a whole path (for most
//! rules these already cover everything below a matching directory: `docs` is compiled as
//! `docs` + `docs/**`, `src/*` as `src/**`). The *directory set* holds the globs of the rules
//! whose directory coverage cannot be folded that way (`*.d/`, `build`, `a/*/b`); they are
//! matched against each proper parent directory of a path. Batch queries remember the
//! answer per directory, so a directory shared by many paths is matched once.
//!
//! This file knows nothing of how a rule is read (that is `rule.rs`) or of scope decisions
//! (that is `mod.rs`).

use std::collections::HashMap;

use globset::{Candidate, GlobSet, GlobSetBuilder};

use super::rule::Expansion;
use super::wildmatch;

/// Compiled globs of a list of rules; answers use rule indices (positions in that list).
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    file: GlobSet,
    file_owner: Vec<usize>,
    dir: GlobSet,
    dir_owner: Vec<usize>,
}

impl Default for Matcher {
    fn default() -> Matcher {
        Matcher {
            file: GlobSet::empty(),
            file_owner: Vec::new(),
            dir: GlobSet::empty(),
            dir_owner: Vec::new(),
        }
    }
}

/// Per-thread memory of batch queries: directory → last rule covering it.
pub(crate) type DirCache<'p> = HashMap<&'p [u8], Option<usize>>;

impl Matcher {
    /// Compile the expansions of each rule, in rule order.
    pub(crate) fn build<'a>(
        rules: impl Iterator<Item = &'a [Expansion]>,
    ) -> Result<Matcher, globset::Error> {
        let mut file = GlobSetBuilder::new();
        let mut dir = GlobSetBuilder::new();
        let mut file_owner = Vec::new();
        let mut dir_owner = Vec::new();
        for (index, expansions) in rules.enumerate() {
            for expansion in expansions {
                for glob in &expansion.file_globs {
                    file.add(wildmatch::build(glob)?);
                    file_owner.push(index);
                }
                if let Some(glob) = &expansion.dir_glob {
                    dir.add(wildmatch::build(glob)?);
                    dir_owner.push(index);
                }
            }
        }
        Ok(Matcher {
            file: file.build()?,
            file_owner,
            dir: dir.build()?,
            dir_owner,
        })
    }

    /// Every rule that matches `path`, ascending, each once.
    pub(crate) fn matches(&self, path: &[u8]) -> Vec<usize> {
        let mut scratch = Vec::new();
        let mut out = Vec::new();
        self.file
            .matches_candidate_into(&Candidate::from_bytes(path), &mut scratch);
        out.extend(scratch.iter().map(|&g| self.file_owner[g]));
        if !self.dir.is_empty() {
            for dir in parents(path) {
                self.dir
                    .matches_candidate_into(&Candidate::from_bytes(dir), &mut scratch);
                out.extend(scratch.iter().map(|&g| self.dir_owner[g]));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The last rule that matches `path`.
    pub(crate) fn last_match(&self, path: &[u8], scratch: &mut Vec<usize>) -> Option<usize> {
        let mut best = self.file_last(path, scratch);
        if !self.dir.is_empty() {
            for dir in parents(path) {
                best = best.max(self.dir_last(dir, scratch));
            }
        }
        best
    }

    /// [`Matcher::last_match`], remembering directories in `cache` (for batches).
    pub(crate) fn last_match_cached<'p>(
        &self,
        path: &'p [u8],
        cache: &mut DirCache<'p>,
        scratch: &mut Vec<usize>,
    ) -> Option<usize> {
        let best = self.file_last(path, scratch);
        if self.dir.is_empty() {
            return best;
        }
        match parent(path) {
            Some(dir) => best.max(self.covering(dir, cache, scratch)),
            None => best,
        }
    }

    /// The last rule matching `dir` or one of its parents, as a directory.
    fn covering<'p>(
        &self,
        dir: &'p [u8],
        cache: &mut DirCache<'p>,
        scratch: &mut Vec<usize>,
    ) -> Option<usize> {
        if let Some(&known) = cache.get(dir) {
            return known;
        }
        // Walk up to the nearest remembered directory, then fill in downwards.
        let mut chain = vec![dir];
        let mut above = None;
        let mut current = dir;
        while let Some(up) = parent(current) {
            if let Some(&known) = cache.get(up) {
                above = known;
                break;
            }
            chain.push(up);
            current = up;
        }
        let mut acc = above;
        for &d in chain.iter().rev() {
            acc = acc.max(self.dir_last(d, scratch));
            cache.insert(d, acc);
        }
        acc
    }

    fn file_last(&self, path: &[u8], scratch: &mut Vec<usize>) -> Option<usize> {
        if self.file.is_empty() {
            return None;
        }
        self.file
            .matches_candidate_into(&Candidate::from_bytes(path), scratch);
        // Globs were added in rule order, so the last glob belongs to the last rule.
        scratch.last().map(|&g| self.file_owner[g])
    }

    fn dir_last(&self, dir: &[u8], scratch: &mut Vec<usize>) -> Option<usize> {
        self.dir
            .matches_candidate_into(&Candidate::from_bytes(dir), scratch);
        scratch.last().map(|&g| self.dir_owner[g])
    }
}

/// `a/b/c` → `a/b`; `a` → none.
fn parent(path: &[u8]) -> Option<&[u8]> {
    let at = path.iter().rposition(|&b| b == b'/')?;
    (at > 0).then(|| &path[..at])
}

/// The proper parent directories of `path`, outermost first: `a`, `a/b` for `a/b/c`.
fn parents(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'/' && i > 0)
        .map(move |(i, _)| &path[..i])
}

/// Run `work` over `items` split into one chunk per available core (at most 8) when the
/// batch is large enough to pay for the threads; results come back in input order.
pub(crate) fn par_map_chunks<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    const MIN_PER_THREAD: usize = 4096;
    let cores = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(8);
    let threads = cores.min(items.len() / MIN_PER_THREAD).max(1);
    if threads == 1 {
        return work(items);
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(|| work(part)))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for handle in handles {
            match handle.join() {
                Ok(part) => out.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}
