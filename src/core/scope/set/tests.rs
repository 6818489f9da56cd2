//! The set's fast paths held to plain per-rule matching: for random rules of every shape
//! (literal paths and directories, `dir/<name glob>`, names at any depth, extensions,
//! anchored globs with `*`, `?`, `**`, bracket expressions, braces, escapes) and random
//! paths (empty components, non-UTF-8 bytes and dots included), the indexed matcher gives
//! exactly the rules that each rule's own `globset` globs give, so the same last matching
//! rule and the same match count; and the regex-free component and sequence patterns match
//! exactly what the `globset` glob written from the same tokens matches.

use globset::{Candidate, GlobMatcher};
use proptest::prelude::*;

use super::super::wildmatch::{self, Token};
use super::wildcard::{Component, Sequence};
use super::{Batch, Expansion, Matcher, basename, parent, parents};
use crate::core::scope::Pattern;

fn globset(glob: &str) -> GlobMatcher {
    wildmatch::build(glob).expect("glob").compile_matcher()
}

fn glob_match(m: &GlobMatcher, text: &[u8]) -> bool {
    m.is_match_candidate(&Candidate::from_bytes(text))
}

/// One expansion matched the plain way: its own globs, each through `globset`.
enum Plain {
    Literal {
        path: Vec<u8>,
        itself: bool,
    },
    Child {
        parent: Vec<u8>,
        name: GlobMatcher,
        dir_only: bool,
    },
    Globs {
        files: Vec<GlobMatcher>,
        dir: Option<GlobMatcher>,
    },
}

impl Plain {
    fn new(e: &Expansion) -> Plain {
        match e {
            Expansion::Literal { path, itself } => Plain::Literal {
                path: path.clone(),
                itself: *itself,
            },
            Expansion::Child {
                parent,
                name,
                dir_only,
            } => Plain::Child {
                parent: parent.clone(),
                name: globset(&Expansion::name_glob(name)),
                dir_only: *dir_only,
            },
            Expansion::Globs {
                file_globs,
                dir_glob,
                ..
            } => Plain::Globs {
                files: file_globs.iter().map(|g| globset(g)).collect(),
                dir: dir_glob.as_deref().map(globset),
            },
        }
    }

    fn file(&self, path: &[u8]) -> bool {
        match self {
            Plain::Literal { path: p, itself } => *itself && p == path,
            Plain::Child {
                parent: p,
                name,
                dir_only,
            } => !dir_only && parent(path) == Some(p) && glob_match(name, basename(path)),
            Plain::Globs { files, .. } => files.iter().any(|g| glob_match(g, path)),
        }
    }

    fn dir(&self, dir: &[u8]) -> bool {
        match self {
            Plain::Literal { path, .. } => path == dir,
            Plain::Child {
                parent: p, name, ..
            } => parent(dir) == Some(p) && glob_match(name, basename(dir)),
            Plain::Globs { dir: g, .. } => g.as_ref().is_some_and(|g| glob_match(g, dir)),
        }
    }

    fn matches(&self, path: &[u8]) -> bool {
        self.file(path) || parents(path).any(|d| self.dir(d))
    }
}

fn rule_strategy() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "a", "b", "ab", "x.rs", ".a", "rs", "*", "*.rs", "?", "**", "[ab]", "[!a]", "[a-c]*",
        "{a,b}", "{x,*.rs}", "\\*", "*~", "a*", "/", "/", "/",
    ]);
    (
        prop::sample::select(vec!["", "", "/", "**/"]),
        prop::collection::vec(piece, 1..5),
        prop::sample::select(vec!["", "", "/", "/**", "/*"]),
    )
        .prop_map(|(lead, pieces, trail)| format!("{lead}{}{trail}", pieces.concat()))
}

fn path_strategy() -> impl Strategy<Value = Vec<u8>> {
    let component: Vec<&'static [u8]> = vec![
        b"a",
        b"b",
        b"ab",
        b"x.rs",
        b".a",
        b"a.b.rs",
        b"rs",
        b"~",
        b"a~",
        b"*",
        b"",
        b"\xff",
        "é".as_bytes(),
        b"c.rs",
    ];
    prop::collection::vec(prop::sample::select(component), 1..6).prop_map(|parts| parts.join(&b'/'))
}

/// Tokens as git's parser reads them from a glob (anchored rule bodies, glued `**` too).
fn tokens_strategy(most: usize) -> impl Strategy<Value = Vec<Token>> {
    let piece = prop::sample::select(vec![
        "a",
        "b",
        ".",
        "/",
        "é",
        "*",
        "**",
        "***",
        "?",
        "[ab]",
        "[!a]",
        "[a-c]",
        "[^.]",
        "[[:alpha:]]",
        "\\*",
        "\\/",
        "**/",
        "/**",
        "**\\/",
    ]);
    prop::collection::vec(piece, 1..most).prop_filter_map("git never matches it", |pieces| {
        wildmatch::parse_gitignore_pathname(pieces.concat().as_bytes()).ok()
    })
}

fn text_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop::sample::select(vec![b'a', b'b', b'.', b'/', b'\xff', 0xc3, 0xa9, 0, b'z']),
        0..8,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    /// The indexed set equals plain per-rule matching: every matching rule (so the match
    /// count), the last one, and the last one through the batch directory memory.
    #[test]
    fn indexed_set_equals_plain_per_rule_matching(
        rules in prop::collection::vec(rule_strategy(), 1..12),
        paths in prop::collection::vec(path_strategy(), 1..24),
    ) {
        let patterns: Vec<Pattern> = rules.iter().filter_map(|r| Pattern::new(r).ok()).collect();
        let plain: Vec<Vec<Plain>> = patterns
            .iter()
            .map(|p| p.expansions().iter().map(Plain::new).collect())
            .collect();
        let set = Matcher::build(patterns.iter().map(Pattern::expansions)).expect("build");
        let mut batch = Batch::new(vec![&set], paths.len());
        let mut scratch = Vec::new();
        for path in &paths {
            let want: Vec<usize> = (0..plain.len())
                .filter(|&r| plain[r].iter().any(|e| e.matches(path)))
                .collect();
            let shown = bstr::BStr::new(path);
            prop_assert_eq!(&set.matches(path), &want, "path {:?} rules {:?}", shown, rules);
            prop_assert_eq!(set.last_match(path, &mut scratch), want.last().copied(), "path {:?}", shown);
            prop_assert_eq!(
                {
                    let slot = batch.directory(path);
                    batch.last_match(0, path, slot)
                },
                want.last().copied(),
                "path {:?} (batch)", shown
            );
        }
    }

    /// A component pattern matches exactly what its `globset` glob matches.
    #[test]
    fn component_patterns_equal_globset(
        tokens in tokens_strategy(6),
        texts in prop::collection::vec(text_strategy(), 1..16),
    ) {
        let glob = wildmatch::to_glob(&tokens);
        let Ok(built) = wildmatch::build(&glob) else { return Ok(()) };
        let m = built.compile_matcher();
        if let Some(c) = Component::new(&tokens) {
            for t in texts.iter().filter(|t| !t.contains(&b'/')) {
                prop_assert_eq!(c.is_match(t), glob_match(&m, t), "glob {:?} text {:?}", glob, bstr::BStr::new(t));
            }
        }
    }

    /// A sequence matches exactly what its `globset` glob matches, on any text.
    #[test]
    fn sequences_equal_globset(
        tokens in tokens_strategy(7),
        texts in prop::collection::vec(text_strategy(), 1..16),
    ) {
        let glob = wildmatch::to_glob(&tokens);
        let Ok(built) = wildmatch::build(&glob) else { return Ok(()) };
        let m = built.compile_matcher();
        if let Some(s) = Sequence::new(&tokens) {
            for t in &texts {
                prop_assert_eq!(s.is_match(t), glob_match(&m, t), "glob {:?} text {:?}", glob, bstr::BStr::new(t));
            }
        }
    }
}
