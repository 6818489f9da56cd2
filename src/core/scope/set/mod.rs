//! Many rules compiled once, and the queries over them.
//!
//! Rules are split by shape ([`Expansion`]): anchored literal paths and literal directories
//! (`docs`, `docs/`, `src/*`, `src/**`) go into hash maps; `dir/<one-component glob>`
//! (`docs/*.md`) into a list of name patterns per literal directory; names at any depth
//! (`*.log`, `build/`, `**/node_modules`) and the other anchored globs (`src/**/*.pem`,
//! `**/gen/*.rs`, `a/*/b`) into an index keyed by what a text must hold to match them (its
//! name, extension, first component, last byte), matched without a regex. Each of those is
//! kept twice over: the *file side*, matched against the whole path, and the *directory
//! side*, matched against each proper parent directory (`a`, `a/b` for `a/b/c`), for the
//! rules whose directory coverage the path's own glob does not say (`build`, `*.d/`,
//! `a/*/b`). The few globs those matchers cannot express (`foo**/bar`) go into two
//! `GlobSet`s, one per side.
//!
//! "The last matching rule" looks at a path's directories first (their answer is remembered
//! per directory in batch queries, so a directory shared by many paths is looked at once),
//! then tries only the rules above that answer, highest first, stopping at the first match.
//!
//! It knows nothing of how a rule is read or of scope decisions: a rule comes here as the
//! [`Expansion`]s it compiled to.

mod index;
mod wildcard;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use globset::{Candidate, GlobSet, GlobSetBuilder};

use super::wildmatch::{self, Token};
use index::{All, Index, Last, Sink};
use wildcard::{Component, Sequence};

/// How one expansion of a rule is matched against a repository file path. A path matches
/// a rule when it matches one of the rule's expansions itself (as a file), or when one of
/// its proper parent directories (`a` and `a/b` for `a/b/c`) matches it as a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expansion {
    /// An anchored literal path: the path itself when `itself`, and everything below it.
    Literal { path: Vec<u8>, itself: bool },
    /// `parent/name`: an entry of the literal directory `parent` whose name matches the
    /// one-component pattern `name` (a file unless `dir_only`), and everything below it.
    Child {
        parent: Vec<u8>,
        name: Vec<Token>,
        dir_only: bool,
    },
    /// Anything else: `file_globs` match the whole path; `dir_glob` matches a parent
    /// directory. Directory coverage is folded into `file_globs` where a glob can say it
    /// (`x/**`), so `dir_glob` is only there when needed. `shape` says how the globs can be
    /// matched without them.
    Globs {
        file_globs: Vec<String>,
        dir_glob: Option<String>,
        shape: Shape,
    },
}

/// What the globs of an [`Expansion::Globs`] say, in tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Each glob is `**/` + this one-component pattern: a name at any depth.
    Name(Vec<Token>),
    /// Each glob is written from these tokens.
    Path(Vec<Token>),
}

impl Expansion {
    /// The `globset` globs of a [`Expansion::Child`]'s name pattern.
    pub(crate) fn name_glob(name: &[Token]) -> String {
        wildmatch::to_glob(name)
    }
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

/// Name patterns for the entries of one literal directory.
#[derive(Debug, Clone, Default)]
struct Children {
    /// For files (the rules without a trailing `/`).
    files: Index,
    /// For directories (every rule).
    dirs: Index,
}

/// Globs the matchers without regex cannot express, per side.
#[derive(Debug, Clone, Default)]
struct Fallback {
    set: GlobSet,
    owner: Vec<usize>,
}

impl Fallback {
    fn visit(&self, text: &[u8], scratch: &mut Vec<usize>, sink: &mut impl Sink) {
        if self.owner.is_empty() {
            return;
        }
        self.set
            .matches_candidate_into(&Candidate::from_bytes(text), scratch);
        for &g in scratch.iter() {
            let rule = self.owner[g];
            if sink.wants(rule) {
                sink.hit(rule);
            }
        }
    }
}

/// Compiled rules; answers use rule indices (positions in the list compiled).
#[derive(Debug, Clone, Default)]
pub(crate) struct Matcher {
    /// Path → rules that match exactly that path, highest first.
    exact: PathMap<Vec<u8>, Vec<usize>>,
    /// Bit `n % 64` set: some path of `exact` is `n` bytes long (most lookups end here).
    exact_lengths: u64,
    /// Directory → rules that cover everything below it, highest first.
    below: PathMap<Vec<u8>, Vec<usize>>,
    /// Directory → name patterns for its entries.
    children: PathMap<Vec<u8>, Children>,
    /// Names and globs matched against a whole path.
    file: Index,
    /// Names and globs matched against a parent directory.
    dir: Index,
    file_fallback: Fallback,
    dir_fallback: Fallback,
}

/// The fallback globs of both sides, being built.
struct Sides {
    file: GlobSetBuilder,
    file_owner: Vec<usize>,
    dir: GlobSetBuilder,
    dir_owner: Vec<usize>,
}

impl Sides {
    /// `index`'s globs for a whole path and for a parent directory.
    fn add(
        &mut self,
        index: usize,
        file_globs: &[String],
        dir_glob: Option<&String>,
    ) -> Result<(), globset::Error> {
        for glob in file_globs {
            self.file.add(wildmatch::build(glob)?);
            self.file_owner.push(index);
        }
        if let Some(glob) = dir_glob {
            self.dir.add(wildmatch::build(glob)?);
            self.dir_owner.push(index);
        }
        Ok(())
    }
}

impl Matcher {
    /// Compile the expansions of each rule, in rule order. Every glob is also checked by
    /// `globset`'s parser, so a rule is refused exactly when `globset` would refuse it.
    pub(crate) fn build<'a>(
        rules: impl Iterator<Item = &'a [Expansion]>,
    ) -> Result<Matcher, globset::Error> {
        let mut m = Matcher::default();
        let mut fallback = Sides {
            file: GlobSetBuilder::new(),
            file_owner: Vec::new(),
            dir: GlobSetBuilder::new(),
            dir_owner: Vec::new(),
        };
        for (index, expansions) in rules.enumerate() {
            for expansion in expansions {
                m.add(index, expansion, &mut fallback)?;
            }
        }
        for rules in m.exact.values_mut().chain(m.below.values_mut()) {
            rules.reverse();
            rules.dedup();
        }
        for children in m.children.values_mut() {
            children.files.finish();
            children.dirs.finish();
        }
        m.file.finish();
        m.dir.finish();
        m.file_fallback = Fallback {
            set: fallback.file.build()?,
            owner: fallback.file_owner,
        };
        m.dir_fallback = Fallback {
            set: fallback.dir.build()?,
            owner: fallback.dir_owner,
        };
        Ok(m)
    }

    fn add(
        &mut self,
        index: usize,
        expansion: &Expansion,
        fallback: &mut Sides,
    ) -> Result<(), globset::Error> {
        match expansion {
            Expansion::Literal { path, itself } => {
                if *itself {
                    self.exact.entry(path.clone()).or_default().push(index);
                    self.exact_lengths |= 1 << (path.len() % 64);
                }
                self.below.entry(path.clone()).or_default().push(index);
            }
            Expansion::Child {
                parent,
                name,
                dir_only,
            } => {
                wildmatch::build(&Expansion::name_glob(name))?;
                let Some(child) = Component::new(name) else {
                    // Not a component pattern after all: the globs of `parent/name`.
                    let mut path: Vec<Token> = parent.iter().map(|&b| Token::Byte(b)).collect();
                    path.push(Token::Byte(b'/'));
                    path.extend_from_slice(name);
                    let glob = wildmatch::to_glob(&path);
                    let files = if *dir_only {
                        Vec::new()
                    } else {
                        vec![glob.clone()]
                    };
                    return fallback.add(index, &files, Some(&glob));
                };
                let children = self.children.entry(parent.clone()).or_default();
                if !dir_only {
                    children.files.add_name(index, child.clone());
                }
                children.dirs.add_name(index, child);
            }
            Expansion::Globs {
                file_globs,
                dir_glob,
                shape,
            } => {
                for glob in file_globs.iter().chain(dir_glob) {
                    wildmatch::build(glob)?;
                }
                let files = !file_globs.is_empty();
                let dirs = dir_glob.is_some();
                match shape {
                    Shape::Name(tokens) if let Some(name) = Component::new(tokens) => {
                        if files {
                            self.file.add_name(index, name.clone());
                        }
                        if dirs {
                            self.dir.add_name(index, name);
                        }
                    }
                    Shape::Path(tokens) if let Some(path) = Sequence::new(tokens) => {
                        if files {
                            self.file.add_path(index, path.clone());
                        }
                        if dirs {
                            self.dir.add_path(index, path);
                        }
                    }
                    _ => fallback.add(index, file_globs, dir_glob.as_ref())?,
                }
            }
        }
        Ok(())
    }

    /// Is there any rule that needs looking at parent directories?
    fn has_dir_rules(&self) -> bool {
        !self.below.is_empty()
            || !self.children.is_empty()
            || !self.dir.is_empty()
            || !self.dir_fallback.owner.is_empty()
    }

    /// Every rule that matches `path`, ascending, each once.
    pub(crate) fn matches(&self, path: &[u8]) -> Vec<usize> {
        let mut scratch = Vec::new();
        let mut out = Vec::new();
        self.file_side(path, &mut scratch, &mut All(&mut out));
        if self.has_dir_rules() {
            for dir in parents(path) {
                self.dir_side(dir, &mut scratch, &mut All(&mut out));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The last rule that matches `path`.
    pub(crate) fn last_match(&self, path: &[u8], scratch: &mut Vec<usize>) -> Option<usize> {
        let mut best = Last(None);
        if self.has_dir_rules() {
            for dir in parents(path) {
                self.dir_side(dir, scratch, &mut best);
            }
        }
        self.file_side(path, scratch, &mut best);
        best.0
    }

    /// Rules that match `path` itself (not through a parent directory).
    fn file_side(&self, path: &[u8], scratch: &mut Vec<usize>, sink: &mut impl Sink) {
        let children = if self.children.is_empty() {
            None
        } else {
            parent(path).and_then(|dir| self.children.get(dir))
        };
        self.file_side_in(path, children, scratch, sink);
    }

    /// [`Matcher::file_side`] with the name patterns of `path`'s directory already looked up.
    fn file_side_in(
        &self,
        path: &[u8],
        children: Option<&Children>,
        scratch: &mut Vec<usize>,
        sink: &mut impl Sink,
    ) {
        if self.exact_lengths & (1 << (path.len() % 64)) != 0
            && let Some(rules) = self.exact.get(path)
        {
            take(rules, sink);
        }
        if let Some(children) = children {
            children.files.visit(path, sink);
        }
        self.file.visit(path, sink);
        self.file_fallback.visit(path, scratch, sink);
    }

    /// Rules that match `dir` as a directory (and so cover everything below it).
    fn dir_side(&self, dir: &[u8], scratch: &mut Vec<usize>, sink: &mut impl Sink) {
        if let Some(rules) = self.below.get(dir) {
            take(rules, sink);
        }
        if !self.children.is_empty()
            && let Some(children) = parent(dir).and_then(|up| self.children.get(up))
        {
            children.dirs.visit(dir, sink);
        }
        self.dir.visit(dir, sink);
        self.dir_fallback.visit(dir, scratch, sink);
    }
}

/// Per-thread memory of batch queries over one or more matchers (the lists of a scope):
/// each directory seen gets a slot holding, for each matcher, the last rule that covers it
/// (it or a directory above it) and the name patterns for its entries. A path's directory
/// is then one lookup, whatever the number of matchers, and a directory shared by many
/// paths is looked at once.
pub(crate) struct Batch<'m, 'p> {
    matchers: Vec<&'m Matcher>,
    slots: PathMap<&'p [u8], u32>,
    /// At `slot * matchers + i`: what matcher `i` says of the slot's directory (the last
    /// rule covering it) and its name patterns for the directory's entries, side by side
    /// since a query reads both.
    said: Vec<(Option<usize>, Option<&'m Children>)>,
    chain: Vec<&'p [u8]>,
    scratch: Vec<usize>,
    /// The directory looked up last and its slot: paths in `git` order come by directory.
    last: Option<(&'p [u8], u32)>,
}

/// A path's directory, as [`Batch::directory`] found it (`None`: the path has none).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot(Option<u32>);

impl<'m, 'p> Batch<'m, 'p> {
    /// `paths`: about how many paths it will see (sizes the directory memory).
    pub(crate) fn new(matchers: Vec<&'m Matcher>, paths: usize) -> Self {
        Batch {
            matchers,
            slots: PathMap::with_capacity_and_hasher(paths / 4, BuildHasherDefault::default()),
            said: Vec::new(),
            chain: Vec::new(),
            scratch: Vec::new(),
            last: None,
        }
    }

    /// Look `path`'s directory up, working out what each matcher says of it (and of the
    /// directories above it not seen yet) the first time.
    pub(crate) fn directory(&mut self, path: &'p [u8]) -> Slot {
        let Some(dir) = parent(path) else {
            return Slot(None);
        };
        if let Some((last, slot)) = self.last
            && last == dir
        {
            return Slot(Some(slot));
        }
        if let Some(&slot) = self.slots.get(dir) {
            self.last = Some((dir, slot));
            return Slot(Some(slot));
        }
        // Walk up to the nearest directory seen, then fill in downwards.
        let mut chain = std::mem::take(&mut self.chain);
        chain.clear();
        chain.push(dir);
        let mut above = None;
        let mut current = dir;
        while let Some(up) = parent(current) {
            if let Some(&slot) = self.slots.get(up) {
                above = Some(slot);
                break;
            }
            chain.push(up);
            current = up;
        }
        let n = self.matchers.len();
        for &d in chain.iter().rev() {
            let slot =
                u32::try_from(self.said.len() / n.max(1)).expect("fewer than 2^32 directories");
            for (i, m) in self.matchers.iter().enumerate() {
                let floor = above.and_then(|a: u32| self.said[a as usize * n + i].0);
                let mut best = Last(floor);
                if m.has_dir_rules() {
                    m.dir_side(d, &mut self.scratch, &mut best);
                }
                let children = if m.children.is_empty() {
                    None
                } else {
                    m.children.get(d)
                };
                self.said.push((best.0, children));
            }
            self.slots.insert(d, slot);
            above = Some(slot);
        }
        self.chain = chain;
        self.last = above.map(|slot| (dir, slot));
        Slot(above)
    }

    /// The last rule of matcher `i` that matches `path`, whose directory is `slot`.
    pub(crate) fn last_match(&mut self, i: usize, path: &[u8], slot: Slot) -> Option<usize> {
        let m = self.matchers[i];
        let (floor, children) = match slot.0 {
            Some(s) => self.said[s as usize * self.matchers.len() + i],
            None => (None, None),
        };
        let mut best = Last(floor);
        m.file_side_in(path, children, &mut self.scratch, &mut best);
        best.0
    }
}

/// Give `sink` the rules of a bucket (highest first) it still wants.
fn take(rules: &[usize], sink: &mut impl Sink) {
    for &r in rules {
        if !sink.wants(r) {
            break;
        }
        sink.hit(r);
    }
}

/// `a/b/c` → `c`.
pub(crate) fn basename(path: &[u8]) -> &[u8] {
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
        // The first part becomes the answer, so only the others are copied.
        let mut out: Option<Vec<R>> = None;
        for handle in handles {
            match (handle.join(), &mut out) {
                (Ok(part), Some(out)) => out.extend(part),
                (Ok(part), None) => {
                    let mut first = part;
                    first.reserve(items.len() - first.len());
                    out = Some(first);
                }
                (Err(panic), _) => std::panic::resume_unwind(panic),
            }
        }
        out.unwrap_or_default()
    })
}
