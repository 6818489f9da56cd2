//! One gitignore-style rule ([`Pattern`]): the layer between a policy string and git's glob
//! function. It trims trailing spaces as git does, rejects what gitignore would read as a
//! comment or a negation, expands the `{a,b}` extension, then applies gitignore's reading of
//! each expansion (`dir.c`): one trailing `/` means "directories only", a rule with no other
//! `/` matches a name at any depth, a leading or middle `/` anchors it at the root, and a rule
//! that matches a directory covers everything below it. The glob function itself is
//! `wildmatch.rs`; compiling many rules into one matcher is `set.rs`.

use std::sync::Arc;

use super::PatternError;
use super::set::{Expansion, Matcher, Shape};
use super::wildmatch::{self, Token};

/// The most globs one rule may expand to (`{a,b}{c,d}` is 4).
const MAX_EXPANSIONS: usize = 256;

/// How deep `{…}` groups may nest.
const MAX_BRACE_DEPTH: usize = 16;

/// One compiled gitignore-style rule.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// Shared with every decision that names the rule, so a decision copies no text.
    text: Arc<str>,
    expansions: Vec<Expansion>,
    matcher: Matcher,
}

impl Pattern {
    /// Parse and compile one rule. Rejected, each with a reason that says what to write
    /// instead: the empty rule, a leading `#` (a comment in gitignore) or `!` (negation),
    /// patterns git can never match (trailing `\`, unclosed `[`, unknown `[:class:]`, an empty
    /// path component such as `a//b`), non-ASCII inside `[...]`, and malformed braces.
    pub fn new(text: &str) -> Result<Pattern, PatternError> {
        let error = |reason: &str| PatternError {
            pattern: text.to_string(),
            reason: reason.to_string(),
        };
        let raw = trim_trailing_spaces(text.as_bytes());
        match raw.first() {
            None => return Err(error("empty rule: a rule must name at least one path")),
            Some(b'#') => {
                return Err(error(
                    "starts with `#`, which gitignore reads as a comment; write `\\#` for a name that starts with `#`",
                ));
            }
            Some(b'!') => return Err(error(NEGATION)),
            Some(_) => {}
        }
        let expanded = expand_braces(raw).map_err(|reason| error(&reason.to_string()))?;
        let mut expansions = Vec::with_capacity(expanded.len());
        for one in &expanded {
            let expansion = compile_expansion(one).map_err(|reason| error(&reason.to_string()))?;
            if !expansions.contains(&expansion) {
                expansions.push(expansion);
            }
        }
        let matcher = Matcher::build(std::iter::once(expansions.as_slice())).map_err(|e| {
            error(&format!(
                "too complex to compile ({e}); split it into several rules"
            ))
        })?;
        Ok(Pattern {
            text: Arc::from(text),
            expansions,
            matcher,
        })
    }

    /// The most globs one rule may expand to (`{a,b}{c,d}` is 4); [`Pattern::new`] refuses
    /// more.
    pub const MAX_EXPANSIONS: usize = MAX_EXPANSIONS;

    /// How many globs `text` expands to (`{a,b}{c,d}` is 4) and their total length in
    /// bytes, counted without expanding anything, saturating; one glob of `text`'s length
    /// for text [`Pattern::new`] would refuse for another reason. Lets a caller cap the
    /// work of many rules before compiling any: compiling costs per pattern and per byte.
    pub fn expanded_size(text: &str) -> ExpandedSize {
        let raw = trim_trailing_spaces(text.as_bytes());
        let mut i = 0;
        count_seq(raw, &mut i, 0).unwrap_or(ExpandedSize {
            patterns: 1,
            bytes: raw.len(),
        })
    }

    /// How many globs this rule expanded to (alternatives that read the same counted once).
    pub fn expansion_count(&self) -> usize {
        self.expansions.len()
    }

    /// The rule as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The rule as written, shared.
    pub(crate) fn shared_text(&self) -> Arc<str> {
        Arc::clone(&self.text)
    }

    /// Does this rule match `path` (a repository-relative file path, `/`-separated, any
    /// bytes), either itself or through one of its parent directories?
    pub fn is_match(&self, path: &[u8]) -> bool {
        self.matcher.last_match(path, &mut Vec::new()).is_some()
    }

    pub(crate) fn expansions(&self) -> &[Expansion] {
        &self.expansions
    }

    /// Could this rule match a path at or below the directory `dir` because of *where* it
    /// is, so that a symbolic link put at `dir` would redirect what the rule protects?
    /// Rules tied to a location (`/.github/workflows`, `docs/*.md`, `/src/*/keys`) answer
    /// by their literal directory prefix — erring on yes when a wildcard follows it; a name
    /// matched at any depth (`*.pem`, `**/secrets`) answers no, since it matches the real
    /// path wherever the content lives. The empty `dir` is the repository root.
    pub fn may_match_at_or_below(&self, dir: &[u8]) -> bool {
        let at_or_below = |path: &[u8]| {
            dir.is_empty()
                || path == dir
                || (path.starts_with(dir) && path.get(dir.len()) == Some(&b'/'))
        };
        let above = |path: &[u8]| {
            path.is_empty() || (dir.starts_with(path) && dir.get(path.len()) == Some(&b'/'))
        };
        self.expansions.iter().any(|e| match e {
            Expansion::Literal { path, .. } => at_or_below(path),
            Expansion::Child { parent, .. } => at_or_below(parent),
            Expansion::Globs {
                file_globs,
                dir_glob,
                ..
            } => file_globs.iter().chain(dir_glob).any(|glob| {
                if glob.starts_with("**") {
                    return false;
                }
                let literal = glob
                    .find(['*', '?', '[', '{', '\\'])
                    .map_or(glob.as_str(), |i| &glob[..i]);
                let prefix = literal.rfind('/').map_or("", |i| &literal[..i]);
                at_or_below(prefix.as_bytes()) || above(prefix.as_bytes())
            }),
        })
    }
}

const NEGATION: &str = "starts with `!`: negation is not supported (use a `deny` rule); \
                        write `\\!` for a name that starts with `!`";

/// git's `trim_trailing_spaces`: drop trailing spaces unless the last one is escaped.
fn trim_trailing_spaces(text: &[u8]) -> &[u8] {
    let mut last_space = None;
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b' ' => {
                if last_space.is_none() {
                    last_space = Some(i);
                }
            }
            b'\\' => {
                i += 1;
                if i >= text.len() {
                    return text;
                }
                last_space = None;
            }
            _ => last_space = None,
        }
        i += 1;
    }
    match last_space {
        Some(at) => &text[..at],
        None => text,
    }
}

/// Why a rule, or one alternative of its `{a,b}` groups, cannot be compiled: the reason its
/// [`PatternError`] gives, saying what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Unusable {
    #[error("`{{…}}` expands to more than {MAX_EXPANSIONS} patterns; split the rule")]
    TooManyExpansions,
    #[error("unmatched `}}`; write `\\}}` for a literal `}}`")]
    UnmatchedClose,
    #[error("unclosed `{{`; write `\\{{` for a literal `{{`")]
    Unclosed,
    #[error("`{{…}}` groups nested more than {MAX_BRACE_DEPTH} deep; simplify the rule")]
    TooDeep,
    #[error(
        "`{{…}}` without a `,` (the `{{a,b}}` extension needs two alternatives); write `\\{{` for a literal `{{`"
    )]
    SingleAlternative,
    #[error("an alternative of `{{…}}` is empty, which leaves an empty rule")]
    EmptyAlternative,
    #[error("{}", NEGATION)]
    Negation,
    #[error("names no path (`/` alone); write `**` to match everything")]
    SlashOnly,
    #[error(
        "contains an empty path component (`//`, or `/` right after the anchoring `/`), which git never matches in a repository path"
    )]
    EmptyComponent,
    /// What the glob parser said (an unclosed `[`, an unknown class, …).
    #[error("{0}")]
    Pattern(String),
}

/// Expand `{a,b}` groups (nested allowed) like a shell does. Escapes and bracket expressions
/// are copied as they are, so `\{` and `[{]` stay literal.
fn expand_braces(text: &[u8]) -> Result<Vec<Vec<u8>>, Unusable> {
    let mut i = 0;
    let out = expand_seq(text, &mut i, 0)?;
    debug_assert_eq!(i, text.len());
    Ok(out)
}

/// `depth`: how many `{` groups enclose this sequence (0 = the whole rule).
fn expand_seq(p: &[u8], i: &mut usize, depth: usize) -> Result<Vec<Vec<u8>>, Unusable> {
    let in_group = depth > 0;
    let mut results: Vec<Vec<u8>> = vec![Vec::new()];
    let append = |results: &mut Vec<Vec<u8>>, bytes: &[u8]| {
        for r in results.iter_mut() {
            r.extend_from_slice(bytes);
        }
    };
    while *i < p.len() {
        match p[*i] {
            b'\\' => {
                let end = (*i + 2).min(p.len());
                append(&mut results, &p[*i..end]);
                *i = end;
            }
            b'[' => match wildmatch::class_end(p, *i) {
                Ok(end) => {
                    append(&mut results, &p[*i..end]);
                    *i = end;
                }
                Err(e) => return Err(Unusable::Pattern(e.reason)),
            },
            b'{' => {
                *i += 1;
                let alternatives = expand_group(p, i, depth + 1)?;
                if results.len() * alternatives.len() > MAX_EXPANSIONS {
                    return Err(Unusable::TooManyExpansions);
                }
                results = results
                    .iter()
                    .flat_map(|head| {
                        alternatives.iter().map(move |tail| {
                            let mut joined = head.clone();
                            joined.extend_from_slice(tail);
                            joined
                        })
                    })
                    .collect();
            }
            b'}' | b',' if in_group => return Ok(results),
            b'}' => return Err(Unusable::UnmatchedClose),
            b => {
                append(&mut results, &[b]);
                *i += 1;
            }
        }
    }
    if in_group {
        return Err(Unusable::Unclosed);
    }
    Ok(results)
}

/// What a rule expands to, as [`Pattern::expanded_size`] counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExpandedSize {
    /// Globs (`{a,b}{c,d}` is 4).
    pub patterns: usize,
    /// Their lengths added up.
    pub bytes: usize,
}

impl ExpandedSize {
    /// Every expansion of `self` followed by every expansion of `next`.
    #[must_use]
    fn then(self, next: ExpandedSize) -> ExpandedSize {
        ExpandedSize {
            patterns: self.patterns.saturating_mul(next.patterns),
            bytes: self
                .bytes
                .saturating_mul(next.patterns)
                .saturating_add(next.bytes.saturating_mul(self.patterns)),
        }
    }

    /// The expansions of `self` and of `other`, side by side.
    #[must_use]
    pub fn plus(self, other: ExpandedSize) -> ExpandedSize {
        ExpandedSize {
            patterns: self.patterns.saturating_add(other.patterns),
            bytes: self.bytes.saturating_add(other.bytes),
        }
    }
}

/// [`expand_seq`]'s count: over the sequence, each byte one more byte of every expansion
/// and each group a product with the sum of its alternatives. `None` where `expand_seq`
/// fails (unclosed group, too deep, bad class).
fn count_seq(p: &[u8], i: &mut usize, depth: usize) -> Option<ExpandedSize> {
    if depth > MAX_BRACE_DEPTH {
        return None;
    }
    let mut size = ExpandedSize {
        patterns: 1,
        bytes: 0,
    };
    let literal = |n: usize| ExpandedSize {
        patterns: 1,
        bytes: n,
    };
    while *i < p.len() {
        match p[*i] {
            b'\\' => {
                let end = (*i + 2).min(p.len());
                size = size.then(literal(end - *i));
                *i = end;
            }
            b'[' => {
                let end = wildmatch::class_end(p, *i).ok()?;
                size = size.then(literal(end - *i));
                *i = end;
            }
            b'{' => {
                *i += 1;
                let mut sum = ExpandedSize::default();
                loop {
                    sum = sum.plus(count_seq(p, i, depth + 1)?);
                    let stop = *p.get(*i)?;
                    *i += 1;
                    if stop == b'}' {
                        break;
                    }
                }
                size = size.then(sum);
            }
            b'}' | b',' if depth > 0 => return Some(size),
            _ => {
                size = size.then(literal(1));
                *i += 1;
            }
        }
    }
    (depth == 0).then_some(size)
}

/// After a `{`: alternatives up to the matching `}`.
fn expand_group(p: &[u8], i: &mut usize, depth: usize) -> Result<Vec<Vec<u8>>, Unusable> {
    if depth > MAX_BRACE_DEPTH {
        return Err(Unusable::TooDeep);
    }
    let mut alternatives = Vec::new();
    let mut branches = 0;
    loop {
        let seq = expand_seq(p, i, depth)?;
        branches += 1;
        alternatives.extend(seq);
        if alternatives.len() > MAX_EXPANSIONS {
            return Err(Unusable::TooManyExpansions);
        }
        // expand_seq stopped on `,` or `}` (it errors at the end of the text).
        let stop = p[*i];
        *i += 1;
        if stop == b'}' {
            break;
        }
    }
    if branches < 2 {
        return Err(Unusable::SingleAlternative);
    }
    Ok(alternatives)
}

/// gitignore's reading of one (brace-free) rule, as `dir.c` `parse_path_pattern` and
/// `last_matching_pattern_from_list` do it, turned into globs.
fn compile_expansion(rule: &[u8]) -> Result<Expansion, Unusable> {
    if rule.is_empty() {
        return Err(Unusable::EmptyAlternative);
    }
    if rule[0] == b'!' {
        return Err(Unusable::Negation);
    }
    let mut body = rule;
    let dir_only = body.last() == Some(&b'/');
    if dir_only {
        body = &body[..body.len() - 1];
    }
    let anchored = body.contains(&b'/');
    if anchored && body.first() == Some(&b'/') {
        body = &body[1..];
    }
    if body.is_empty() {
        return Err(Unusable::SlashOnly);
    }
    let tokens = if anchored {
        wildmatch::parse_gitignore_pathname(body)
    } else {
        wildmatch::parse(body)
    }
    .map_err(|e| Unusable::Pattern(e.reason))?;
    if anchored && has_empty_component(&tokens) {
        return Err(Unusable::EmptyComponent);
    }
    // `**/name`, `**/name/` and `**/name/**` (no other `/`) mean what `name`, `name/` and
    // `name/` mean; read that way they compile to basename checks instead of regexes.
    let (anchored, dir_only, tokens) = match (anchored, tokens.as_slice()) {
        (true, [Token::StarStarSlash, name @ ..]) if is_component(name) => {
            (false, dir_only, name.to_vec())
        }
        (
            true,
            [
                Token::StarStarSlash,
                name @ ..,
                Token::Byte(b'/'),
                Token::StarStarEnd,
            ],
        ) if is_component(name) => (false, true, name.to_vec()),
        _ => (anchored, dir_only, tokens),
    };
    if !anchored {
        // A name at any depth: the path's own name, or the name of one of its directories.
        if tokens == [Token::StarStarEnd] {
            let (everything, shape) = if dir_only {
                (
                    "*/**",
                    vec![Token::Star, Token::Byte(b'/'), Token::StarStarEnd],
                )
            } else {
                ("**", vec![Token::StarStarEnd])
            };
            return Ok(Expansion::Globs {
                file_globs: vec![everything.to_string()],
                dir_glob: None,
                shape: Shape::Path(shape),
            });
        }
        let at_any_depth = format!("**/{}", wildmatch::to_glob(&tokens));
        let file_globs = if dir_only {
            Vec::new()
        } else {
            vec![at_any_depth.clone()]
        };
        return Ok(Expansion::Globs {
            file_globs,
            dir_glob: Some(at_any_depth),
            shape: Shape::Name(tokens),
        });
    }

    // Literal directory prefixes are looked up, not globbed.
    let literal_len = tokens
        .iter()
        .take_while(|t| matches!(t, Token::Byte(_)))
        .count();
    let literal: Vec<u8> = tokens[..literal_len]
        .iter()
        .map(|t| if let Token::Byte(b) = t { *b } else { 0 })
        .collect();
    let rest = &tokens[literal_len..];
    let parent = literal.strip_suffix(b"/").map(<[u8]>::to_vec);
    match (parent, rest) {
        // `docs` (itself and everything below), `docs/` (below only).
        (_, []) => {
            return Ok(Expansion::Literal {
                path: literal,
                itself: !dir_only,
            });
        }
        // `docs/*` and `docs/**`: everything below `docs` (a repository path never ends in
        // `/`). With a trailing `/` they need one more level, left to the general case.
        (Some(dir), [Token::Star | Token::StarStarEnd]) if !dir_only => {
            return Ok(Expansion::Literal {
                path: dir,
                itself: false,
            });
        }
        // `docs/*.md`: a name pattern for the entries of one directory.
        (Some(dir), name) if is_component(name) => {
            return Ok(Expansion::Child {
                parent: dir,
                name: name.to_vec(),
                dir_only,
            });
        }
        _ => {}
    }

    let glob = wildmatch::to_glob(&tokens);
    let ends_recursive = matches!(
        tokens.last(),
        Some(Token::StarStarEnd | Token::GluedStarStarEnd)
    );
    Ok(if ends_recursive && !dir_only {
        // `x/**` already covers what is below anything it matches.
        Expansion::Globs {
            file_globs: vec![glob],
            dir_glob: None,
            shape: Shape::Path(tokens),
        }
    } else {
        let file_globs = if dir_only {
            Vec::new()
        } else {
            vec![glob.clone()]
        };
        Expansion::Globs {
            file_globs,
            dir_glob: Some(glob),
            shape: Shape::Path(tokens),
        }
    })
}

/// Tokens that match one non-empty path component and nothing with a `/`.
fn is_component(tokens: &[Token]) -> bool {
    !tokens.is_empty()
        && tokens.iter().all(|t| match t {
            Token::Byte(b) => *b != b'/',
            Token::Any | Token::Star | Token::Class { .. } => true,
            _ => false,
        })
}

/// Would every text the tokens match contain `//`, or start or end with `/`?
fn has_empty_component(tokens: &[Token]) -> bool {
    tokens.first() == Some(&Token::Byte(b'/'))
        || tokens.last().is_some_and(|t| t.ends_with_slash())
        || tokens
            .windows(2)
            .any(|w| w[0].ends_with_slash() && w[1] == Token::Byte(b'/'))
}
