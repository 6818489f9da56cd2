//! Many rules compiled once, and the queries over them.
//!
//! Rules are split by shape ([`Expansion`]): anchored literal paths and literal directories
//! (`docs`, `docs/`, `src/*`, `src/**`) go into hash maps; `dir/<one-component glob>`
//! (`docs/*.md`) into one small `globset::GlobSet` of name globs per literal directory;
//! everything else into two `GlobSet`s: the *file set*, matched against the whole path, and
//! the *directory set*, matched against each proper parent directory (`a`, `a/b` for
//! `a/b/c`), for the rules whose directory coverage a single glob cannot express (`build`,
//! `*.d/`, `a/*/b`). Batch queries remember the answer per directory, so a directory shared
//! by many paths is looked at once.
//!
//! It knows nothing of how a rule is read or of scope decisions: a rule comes here as the
//! [`Expansion`]s it compiled to.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use globset::{Candidate, GlobSet, GlobSetBuilder};

use super::wildmatch;

/// How one expansion of a rule is matched against a repository file path. A path matches
/// a rule when it matches one of the rule's expansions itself (as a file), or when one of
/// its proper parent directories (`a` and `a/b` for `a/b/c`) matches it as a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expansion {
    /// An anchored literal path: the path itself when `itself`, and everything below it.
    Literal { path: Vec<u8>, itself: bool },
    /// `parent/name`: an entry of the literal directory `parent` whose name matches the
    /// one-component glob `name_glob` (a file unless `dir_only`), and everything below it.
    Child {
        parent: Vec<u8>,
        name_glob: String,
        dir_only: bool,
    },
    /// Anything else: `file_globs` match the whole path; `dir_glob` matches a parent
    /// directory. Directory coverage is folded into `file_globs` where a glob can say it
    /// (`x/**`), so `dir_glob` is only there when needed.
    Globs {
        file_globs: Vec<String>,
        dir_glob: Option<String>,
    },
}

/// A fast non-cryptographic hash for path keys (Fx-style, 8 bytes at a time).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PathHasher(u64);

impl Hasher for PathHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0xf135_7aea_2e62_a9c5;
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        self.0 = h;
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0xf135_7aea_2e62_a9c5);
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

type PathMap<K, V> = HashMap<K, V, BuildHasherDefault<PathHasher>>;

/// Per-thread memory of batch queries: directory → last rule covering it.
pub(crate) type DirCache<'p> = PathMap<&'p [u8], Option<usize>>;

/// Name globs for the entries of one literal directory.
#[derive(Debug, Clone)]
struct Children {
    names: GlobSet,
    owner: Vec<usize>,
    dir_only: Vec<bool>,
}

/// Compiled rules; answers use rule indices (positions in the list compiled).
#[derive(Debug, Clone, Default)]
pub(crate) struct Matcher {
    /// Path → rules that match exactly that path.
    exact: PathMap<Vec<u8>, Vec<usize>>,
    /// Directory → rules that cover everything below it.
    below: PathMap<Vec<u8>, Vec<usize>>,
    /// Directory → name globs for its entries.
    children: PathMap<Vec<u8>, Children>,
    file: GlobSet,
    file_owner: Vec<usize>,
    dir: GlobSet,
    dir_owner: Vec<usize>,
}

impl Matcher {
    /// Compile the expansions of each rule, in rule order.
    pub(crate) fn build<'a>(
        rules: impl Iterator<Item = &'a [Expansion]>,
    ) -> Result<Matcher, globset::Error> {
        let mut m = Matcher::default();
        let mut file = GlobSetBuilder::new();
        let mut dir = GlobSetBuilder::new();
        let mut children: PathMap<Vec<u8>, Vec<(usize, &str, bool)>> = PathMap::default();
        for (index, expansions) in rules.enumerate() {
            for expansion in expansions {
                match expansion {
                    Expansion::Literal { path, itself } => {
                        if *itself {
                            m.exact.entry(path.clone()).or_default().push(index);
                        }
                        m.below.entry(path.clone()).or_default().push(index);
                    }
                    Expansion::Child {
                        parent,
                        name_glob,
                        dir_only,
                    } => {
                        children
                            .entry(parent.clone())
                            .or_default()
                            .push((index, name_glob, *dir_only));
                    }
                    Expansion::Globs {
                        file_globs,
                        dir_glob,
                    } => {
                        for glob in file_globs {
                            file.add(wildmatch::build(glob)?);
                            m.file_owner.push(index);
                        }
                        if let Some(glob) = dir_glob {
                            dir.add(wildmatch::build(glob)?);
                            m.dir_owner.push(index);
                        }
                    }
                }
            }
        }
        for (parent, entries) in children {
            let mut names = GlobSetBuilder::new();
            for (_, glob, _) in &entries {
                names.add(wildmatch::build(glob)?);
            }
            let children = Children {
                names: names.build()?,
                owner: entries.iter().map(|e| e.0).collect(),
                dir_only: entries.iter().map(|e| e.2).collect(),
            };
            m.children.insert(parent, children);
        }
        m.file = file.build()?;
        m.dir = dir.build()?;
        Ok(m)
    }

    /// Is there any rule that needs looking at parent directories?
    fn has_dir_rules(&self) -> bool {
        !self.below.is_empty() || !self.children.is_empty() || !self.dir.is_empty()
    }

    /// Every rule that matches `path`, ascending, each once.
    pub(crate) fn matches(&self, path: &[u8]) -> Vec<usize> {
        let mut scratch = Vec::new();
        let mut out = Vec::new();
        self.each_file_match(path, &mut scratch, |r| out.push(r));
        if self.has_dir_rules() {
            for dir in parents(path) {
                self.each_dir_match(dir, &mut scratch, |r| out.push(r));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The last rule that matches `path`.
    pub(crate) fn last_match(&self, path: &[u8], scratch: &mut Vec<usize>) -> Option<usize> {
        let mut best = self.file_last(path, scratch);
        if self.has_dir_rules() {
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
        if !self.has_dir_rules() {
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
        let mut best = None;
        self.each_file_match(path, scratch, |r| best = best.max(Some(r)));
        best
    }

    fn dir_last(&self, dir: &[u8], scratch: &mut Vec<usize>) -> Option<usize> {
        let mut best = None;
        self.each_dir_match(dir, scratch, |r| best = best.max(Some(r)));
        best
    }

    /// Rules that match `path` itself (not through a parent directory).
    fn each_file_match(&self, path: &[u8], scratch: &mut Vec<usize>, mut visit: impl FnMut(usize)) {
        if let Some(rules) = self.exact.get(path) {
            rules.iter().copied().for_each(&mut visit);
        }
        if let Some(children) = parent(path).and_then(|dir| self.children.get(dir)) {
            children
                .names
                .matches_candidate_into(&Candidate::from_bytes(basename(path)), scratch);
            for &g in scratch.iter() {
                if !children.dir_only[g] {
                    visit(children.owner[g]);
                }
            }
        }
        if !self.file.is_empty() {
            self.file
                .matches_candidate_into(&Candidate::from_bytes(path), scratch);
            for &g in scratch.iter() {
                visit(self.file_owner[g]);
            }
        }
    }

    /// Rules that match `dir` as a directory (and so cover everything below it).
    fn each_dir_match(&self, dir: &[u8], scratch: &mut Vec<usize>, mut visit: impl FnMut(usize)) {
        if let Some(rules) = self.below.get(dir) {
            rules.iter().copied().for_each(&mut visit);
        }
        if let Some(children) = parent(dir).and_then(|up| self.children.get(up)) {
            children
                .names
                .matches_candidate_into(&Candidate::from_bytes(basename(dir)), scratch);
            for &g in scratch.iter() {
                visit(children.owner[g]);
            }
        }
        if !self.dir.is_empty() {
            self.dir
                .matches_candidate_into(&Candidate::from_bytes(dir), scratch);
            for &g in scratch.iter() {
                visit(self.dir_owner[g]);
            }
        }
    }
}

/// `a/b/c` → `c`.
fn basename(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(at) => &path[at + 1..],
        None => path,
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
