//! git's glob *function* (`wildmatch` with `WM_PATHNAME`), translated into a `globset` glob.
//!
//! This file owns one thing: reading a pattern exactly as git's `wildmatch.c` reads it
//! (escapes, `*`, `?`, the cases where a run of stars is `**`, bracket expressions with git's
//! escape, range and `[:class:]` rules) into [`Token`]s, and writing those tokens back out as a
//! glob that `globset` (with `literal_separator(true)` and `backslash_escape(true)`) matches
//! the same way. It knows nothing of gitignore rules (anchoring, trailing `/`, directories):
//! that layer is in `rule.rs`.
//!
//! Where `globset`'s own syntax reads a pattern differently from git (see
//! `tests/data/conformance/README.md`), the difference never reaches `globset`: every literal is
//! escaped, every bracket expression is rewritten as an explicit set of bytes, `***` runs and
//! `**\/` are spelt in the form `globset` reads as git means them, and patterns git can never
//! match (trailing `\`, unclosed `[`, unknown `[:class:]`) are rejected with a reason.

use globset::{GlobBuilder, GlobMatcher};

use super::PatternError;

/// One element of a parsed wildmatch pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    /// A literal byte (already unescaped).
    Byte(u8),
    /// `?`: one byte, never `/`.
    Any,
    /// `*` (or a run of stars that git reads as `*`): any bytes but `/`.
    Star,
    /// `**/` after the start or a `/`: nothing, or anything ending in `/`.
    StarStarSlash,
    /// `**\/` after the start or a `/`: anything ending in `/` (git takes no zero-directory
    /// shortcut here).
    StarStarEscapedSlash,
    /// `**` at the end, after the start or a `/`: anything, slashes included.
    StarStarEnd,
    /// `**/` right after a literal prefix that does not end in `/` (`foo**/bar`): gitignore
    /// strips the literal prefix before calling wildmatch, so these stars count as being at
    /// the start. Nothing, or anything ending in `/`.
    GluedStarStarSlash,
    /// `**` at the end right after such a literal prefix (`foo**`): anything.
    GluedStarStarEnd,
    /// A bracket expression: the ASCII bytes it lists (bit `b` set = byte `b` listed).
    Class { negated: bool, set: u128 },
}

impl Token {
    /// Does every text this token matches end with `/`?
    pub(crate) fn ends_with_slash(self) -> bool {
        matches!(
            self,
            Token::Byte(b'/') | Token::StarStarSlash | Token::StarStarEscapedSlash
        )
    }
}

/// Why git would never match a pattern; the text of [`PatternError::reason`].
fn reject(pattern: &[u8], reason: &str) -> PatternError {
    PatternError {
        pattern: String::from_utf8_lossy(pattern).into_owned(),
        reason: reason.to_string(),
    }
}

const UNCLOSED: &str =
    "unclosed `[` (git never matches such a pattern); write `\\[` for a literal `[`";
const TRAILING_BACKSLASH: &str = "ends with a lone `\\` (git never matches such a pattern); write `\\\\` for a literal backslash";

/// Parse `pattern` as git's `wildmatch` reads it with `WM_PATHNAME`.
pub(crate) fn parse(pattern: &[u8]) -> Result<Vec<Token>, PatternError> {
    parse_from(pattern, None)
}

/// Parse the body of an anchored gitignore rule as `dir.c` `match_pathname` matches it: the
/// literal prefix (up to the first `*`, `?`, `[` or `\`) is compared first and wildmatch
/// runs on the rest, so a run of stars right after that prefix counts as at the start.
pub(crate) fn parse_gitignore_pathname(pattern: &[u8]) -> Result<Vec<Token>, PatternError> {
    let prefix = pattern
        .iter()
        .position(|&b| matches!(b, b'*' | b'?' | b'[' | b'\\'));
    parse_from(pattern, prefix.filter(|&at| at > 0))
}

fn parse_from(pattern: &[u8], wildmatch_start: Option<usize>) -> Result<Vec<Token>, PatternError> {
    let p = pattern;
    let n = p.len();
    let mut tokens = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        match p[i] {
            b'\\' => {
                if i + 1 >= n {
                    return Err(reject(pattern, TRAILING_BACKSLASH));
                }
                tokens.push(Token::Byte(p[i + 1]));
                i += 2;
            }
            b'?' => {
                tokens.push(Token::Any);
                i += 1;
            }
            b'*' => {
                let mut j = i;
                while j < n && p[j] == b'*' {
                    j += 1;
                }
                // wildmatch.c: two or more stars right after the start or a `/`, and right
                // before the end, a `/` or an escaped `/`, match across directories.
                let glued = wildmatch_start == Some(i) && p[i - 1] != b'/';
                let at_component_start = i == 0 || p[i - 1] == b'/' || glued;
                if j - i >= 2 && at_component_start {
                    if glued && j == n {
                        tokens.push(Token::GluedStarStarEnd);
                        i = j;
                        continue;
                    }
                    if glued && p[j] == b'/' {
                        tokens.push(Token::GluedStarStarSlash);
                        i = j + 1;
                        continue;
                    }
                    if j == n {
                        tokens.push(Token::StarStarEnd);
                        i = j;
                        continue;
                    }
                    if p[j] == b'/' {
                        tokens.push(Token::StarStarSlash);
                        i = j + 1;
                        continue;
                    }
                    if p[j] == b'\\' && j + 1 < n && p[j + 1] == b'/' {
                        tokens.push(Token::StarStarEscapedSlash);
                        i = j + 2;
                        continue;
                    }
                }
                tokens.push(Token::Star);
                i = j;
            }
            b'[' => {
                let (token, next) = parse_class(pattern, i)?;
                tokens.push(token);
                i = next;
            }
            b => {
                tokens.push(Token::Byte(b));
                i += 1;
            }
        }
    }
    Ok(tokens)
}

/// Parse the bracket expression starting at `p[start] == b'['`, following the `case '['`
/// of `wildmatch.c` step by step. Returns the token and the index after the closing `]`.
#[allow(
    clippy::many_single_char_names,
    reason = "mirrors the names of wildmatch.c"
)]
fn parse_class(p: &[u8], start: usize) -> Result<(Token, usize), PatternError> {
    let n = p.len();
    let mut set: u128 = 0;
    let mut non_ascii = false;
    let mut add = |set: &mut u128, b: u8| {
        if b.is_ascii() {
            *set |= 1u128 << b;
        } else {
            non_ascii = true;
        }
    };
    let mut k = start + 1;
    if k >= n {
        return Err(reject(p, UNCLOSED));
    }
    let negated = p[k] == b'!' || p[k] == b'^';
    if negated {
        k += 1;
    }
    // The previous single character, which may start a range (git's `prev_ch`; 0 = none).
    let mut prev: Option<u8> = None;
    loop {
        if k >= n {
            return Err(reject(p, UNCLOSED));
        }
        let c = p[k];
        let cur;
        if c == b'\\' {
            k += 1;
            if k >= n {
                return Err(reject(p, UNCLOSED));
            }
            add(&mut set, p[k]);
            cur = Some(p[k]);
        } else if c == b'-' && prev.is_some() && k + 1 < n && p[k + 1] != b']' {
            k += 1;
            let mut end = p[k];
            if end == b'\\' {
                k += 1;
                if k >= n {
                    return Err(reject(p, UNCLOSED));
                }
                end = p[k];
            }
            let lo = prev.unwrap_or(0);
            if !lo.is_ascii() || !end.is_ascii() {
                add(&mut set, 0x80);
            } else {
                // A reversed range is empty (its first character was already counted).
                for b in lo..=end {
                    add(&mut set, b);
                }
            }
            cur = None;
        } else if c == b'[' && k + 1 < n && p[k + 1] == b':' {
            let s = k + 2;
            let mut m = s;
            while m < n && p[m] != b']' {
                m += 1;
            }
            if m >= n {
                return Err(reject(p, UNCLOSED));
            }
            if m < s + 1 || p[m - 1] != b':' {
                // Not `[:name:]`: the `[` is an ordinary member; go on with the `:`.
                add(&mut set, b'[');
                cur = Some(b'[');
            } else {
                let name = &p[s..m - 1];
                let Some(members) = posix_class(name) else {
                    let name = String::from_utf8_lossy(name);
                    return Err(reject(
                        p,
                        &format!(
                            "unknown character class `[:{name}:]` (git never matches such a pattern); \
                             known: alnum alpha blank cntrl digit graph lower print punct space upper xdigit"
                        ),
                    ));
                };
                set |= members;
                k = m;
                cur = None;
            }
        } else {
            add(&mut set, c);
            cur = Some(c);
        }
        prev = cur;
        k += 1;
        if k >= n {
            return Err(reject(p, UNCLOSED));
        }
        if p[k] == b']' {
            break;
        }
    }
    if non_ascii {
        return Err(reject(
            p,
            "non-ASCII character inside `[...]` (not supported: git compares single bytes there); \
             write the character outside brackets",
        ));
    }
    Ok((Token::Class { negated, set }, k + 1))
}

/// The index just after the bracket expression that starts at `p[start] == b'['`, or why
/// git would never match it.
pub(crate) fn class_end(p: &[u8], start: usize) -> Result<usize, PatternError> {
    parse_class(p, start).map(|(_, end)| end)
}

/// The members of `[:name:]` as git's ctype (`sane_ctype`, C locale) defines them.
fn posix_class(name: &[u8]) -> Option<u128> {
    let pred: fn(u8) -> bool = match name {
        b"alnum" => |b| b.is_ascii_alphanumeric(),
        b"alpha" => |b| b.is_ascii_alphabetic(),
        b"blank" => |b| b == b' ' || b == b'\t',
        b"cntrl" => |b| b < 0x20 || b == 0x7f,
        b"digit" => |b| b.is_ascii_digit(),
        b"graph" => |b| (0x21..=0x7e).contains(&b),
        b"lower" => |b| b.is_ascii_lowercase(),
        b"print" => |b| (0x20..=0x7e).contains(&b),
        b"punct" => |b| b.is_ascii_punctuation(),
        // git's isspace: TAB, LF, CR and SP only (not VT, FF).
        b"space" => |b| matches!(b, b'\t' | b'\n' | b'\r' | b' '),
        b"upper" => |b| b.is_ascii_uppercase(),
        b"xdigit" => |b| b.is_ascii_hexdigit(),
        _ => return None,
    };
    Some(
        (0u8..0x80)
            .filter(|&b| pred(b))
            .fold(0, |acc, b| acc | (1u128 << b)),
    )
}

/// Write `tokens` as a `globset` glob (for `literal_separator(true)`, `backslash_escape(true)`)
/// that matches exactly what git's wildmatch matches.
pub(crate) fn to_glob(tokens: &[Token]) -> String {
    if !tokens.is_empty() && tokens.iter().all(|&t| t == Token::StarStarSlash) {
        // `**/` alone: nothing, or anything ending in `/`. globset would read a lone `**/`
        // as `**` (everything).
        return "{,*/**/}".to_string();
    }
    let mut out: Vec<u8> = Vec::with_capacity(tokens.len() + 8);
    for &token in tokens {
        match token {
            Token::Byte(b) => push_literal(&mut out, b),
            Token::Any => out.push(b'?'),
            Token::Star => out.push(b'*'),
            // globset reads `**/` at the start as `(?:/?|.*/)` and `/**/` as `(?:/|/.*/)`: the
            // same as git's "nothing, or anything ending in `/`" after the start or a `/`.
            Token::StarStarSlash => out.extend_from_slice(b"**/"),
            // git: anything ending in `/`, at least the `/`. `*/**/` is `[^/]*(?:/|/.*/)`.
            Token::StarStarEscapedSlash => out.extend_from_slice(b"*/**/"),
            // `**` alone is `.*`, `/**` is `/.*`.
            Token::StarStarEnd => out.extend_from_slice(b"**"),
            // After a literal, globset would read `**` as `*`; inside an alternation it reads
            // `**/` as `(?:/?|.*/)` again: `(?:|[^/]*(?:/|/.*/))` and `[^/]*(?:|/.*)`.
            Token::GluedStarStarSlash => out.extend_from_slice(b"{,*/**/}"),
            Token::GluedStarStarEnd => out.extend_from_slice(b"*{,/**}"),
            Token::Class { negated, set } => push_class(&mut out, negated, set),
        }
    }
    // Only ASCII is ever inserted, and only between whole characters of the (UTF-8) input.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn push_literal(out: &mut Vec<u8>, b: u8) {
    if matches!(
        b,
        b'*' | b'?' | b'[' | b']' | b'{' | b'}' | b',' | b'\\' | b'!' | b'^' | b'-'
    ) {
        out.push(b'\\');
    }
    out.push(b);
}

/// Write a bracket expression as `globset` reads it: no escapes inside brackets, `]` only
/// literal first, `-` only literal first or last, `!`/`^` negate when first, `[:` starts a
/// class name. The members are ordered so none of those rules applies to them.
fn push_class(out: &mut Vec<u8>, negated: bool, set: u128) {
    // git's text never holds NUL; globset's regex would take it literally anyway.
    let mut set = set & !1;
    if !negated {
        // With WM_PATHNAME a bracket expression never matches `/`.
        set &= !(1u128 << b'/');
        let count = set.count_ones();
        if count == 0 {
            // Matches nothing; globset turns a class holding only `/` into `[^\s\S]`.
            out.extend_from_slice(b"[/]");
            return;
        }
        if count == 1 {
            #[allow(
                clippy::cast_possible_truncation,
                reason = "trailing_zeros of a u128 < 128"
            )]
            push_literal(out, set.trailing_zeros() as u8);
            return;
        }
    }
    let has = |set: u128, b: u8| set & (1u128 << b) != 0;
    let close = has(set, b']');
    let dash = has(set, b'-');
    let rest = set & !(1u128 << b']') & !(1u128 << b'-');

    // Runs of consecutive members, as strings.
    let mut items: Vec<Vec<u8>> = Vec::new();
    let mut b: u8 = 0;
    while b < 0x80 {
        if has(rest, b) {
            let lo = b;
            while b + 1 < 0x80 && has(rest, b + 1) {
                b += 1;
            }
            let hi = b;
            if !negated && (lo == b'!' || lo == b'^') && hi > lo {
                // Split so that no item but single `!`/`^` starts with a negation mark.
                items.push(range_item(lo + 1, hi));
                items.push(vec![lo]);
            } else {
                items.push(range_item(lo, hi));
            }
        }
        b += 1;
    }
    if !negated && !close {
        let negation_mark = |item: &Vec<u8>| matches!(item.first(), Some(b'!' | b'^'));
        if items.first().is_some_and(negation_mark) {
            if let Some(j) = items.iter().position(|item| !negation_mark(item)) {
                items.swap(0, j);
            } else if !dash {
                // Exactly `!` and `^` (a single member was written as a literal above).
                out.extend_from_slice(b"{\\!,\\^}");
                return;
            }
            // else: `-` goes first below, where it is literal.
        }
    }
    out.push(b'[');
    if negated {
        out.push(b'!');
    }
    let dash_first =
        !negated && !close && items.first().is_some_and(|i| matches!(i[0], b'!' | b'^'));
    if close {
        out.push(b']');
    }
    if dash && dash_first {
        out.push(b'-');
    }
    for item in &items {
        out.extend_from_slice(item);
    }
    if dash && !dash_first {
        out.push(b'-');
    }
    out.push(b']');
}

fn range_item(lo: u8, hi: u8) -> Vec<u8> {
    if lo == hi {
        vec![lo]
    } else {
        vec![lo, b'-', hi]
    }
}

/// Build a `globset` glob with the options this engine always uses.
pub(crate) fn build(glob: &str) -> Result<globset::Glob, globset::Error> {
    GlobBuilder::new(glob)
        .literal_separator(true)
        .backslash_escape(true)
        .empty_alternates(true)
        .build()
}

/// git's glob function on its own: `wildmatch(pattern, text, WM_PATHNAME)`, with no
/// gitignore layer (no anchoring, no trailing-`/` rule, no directory coverage).
///
/// This is what the conformance test pins against git's own vectors. Policies use
/// [`super::Pattern`], which adds the gitignore layer on top of this function.
#[derive(Debug, Clone)]
pub struct Wildmatch {
    pattern: String,
    glob: String,
    matcher: GlobMatcher,
}

impl Wildmatch {
    /// Compile `pattern` with git's syntax. Patterns git can never match (a trailing `\`,
    /// an unclosed `[`, an unknown `[:class:]`) and non-ASCII bytes inside `[...]` are
    /// rejected. Braces are literal here (the `{a,b}` extension lives in the rule layer).
    pub fn new(pattern: &str) -> Result<Wildmatch, PatternError> {
        let tokens = parse(pattern.as_bytes())?;
        let glob = to_glob(&tokens);
        let matcher = build(&glob)
            .map_err(|e| PatternError {
                pattern: pattern.to_string(),
                reason: e.kind().to_string(),
            })?
            .compile_matcher();
        Ok(Wildmatch {
            pattern: pattern.to_string(),
            glob,
            matcher,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The `globset` glob it was translated into.
    pub fn glob(&self) -> &str {
        &self.glob
    }

    /// Does the whole of `text` match?
    pub fn is_match(&self, text: &[u8]) -> bool {
        self.matcher
            .is_match_candidate(&globset::Candidate::from_bytes(text))
    }
}
