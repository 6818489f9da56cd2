//! Errors of loading a policy: one variant per kind of mistake, each carrying the policy's
//! path, the 1-based line and column (where the YAML parser or the compiler knows them) and
//! what was expected. This module also translates `serde-saphyr` errors into these variants,
//! with hints for the classic YAML traps (an unquoted glob that starts with `*` is an alias;
//! tabs are not indentation). It does not parse or compile anything itself.

use std::fmt::{self, Write as _};

use serde_saphyr::Error as YamlError;

/// A policy that could not be loaded.
///
/// [`Display`](fmt::Display) renders `path:line:column: message`, followed by an indented
/// `hint:` line when there is something more to say. The parts are also available separately
/// ([`PolicyError::path`], [`PolicyError::location`], [`PolicyError::message`],
/// [`PolicyError::hint`]) for annotations such as `::error file=…,line=…,col=…::`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The text is not well-formed YAML (indentation, tabs, quotes, several documents…).
    Syntax {
        path: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
        hint: Option<String>,
    },
    /// The text is empty or holds only comments.
    Empty { path: String },
    /// A key that version 1 does not define in this place.
    UnknownKey {
        path: String,
        line: usize,
        column: usize,
        key: String,
        expected: Vec<String>,
    },
    /// A key written twice in the same mapping (`first_line`: where it was first written,
    /// when it could be found).
    DuplicateKey {
        path: String,
        line: usize,
        column: usize,
        key: String,
        first_line: Option<usize>,
    },
    /// A required key is absent.
    MissingKey {
        path: String,
        line: usize,
        column: usize,
        key: String,
    },
    /// A value of the wrong YAML type (a list where a number belongs, …).
    WrongType {
        path: String,
        line: usize,
        column: usize,
        key: Option<String>,
        /// What was there, ready to print: a value in backquotes or a description.
        found: Option<String>,
        expected: String,
    },
    /// A value that is not one of the allowed words.
    UnknownValue {
        path: String,
        line: usize,
        column: usize,
        value: String,
        expected: Vec<String>,
    },
    /// An unquoted value that starts with `*`: YAML reads it as an alias, not as a glob.
    UnquotedGlob {
        path: String,
        line: usize,
        column: usize,
        text: String,
    },
    /// `version` is absent.
    MissingVersion {
        path: String,
        line: usize,
        column: usize,
    },
    /// `version` is not 1.
    UnsupportedVersion {
        path: String,
        line: usize,
        column: usize,
        found: String,
    },
    /// A value of the right type that the policy does not accept (a zero duration, a bad
    /// repository name, an inconsistent pair of limits, …).
    InvalidValue {
        path: String,
        line: usize,
        column: usize,
        key: String,
        found: String,
        expected: String,
    },
    /// A glob the scope engine rejects.
    InvalidGlob {
        path: String,
        line: usize,
        column: usize,
        key: String,
        pattern: String,
        reason: String,
    },
    /// Two checks with the same name.
    DuplicateCheck {
        path: String,
        line: usize,
        column: usize,
        name: String,
        first_line: usize,
    },
    /// The path of the policy itself cannot be made into a protected rule.
    InvalidPath { path: String, reason: String },
}

impl PolicyError {
    /// The policy path the error is about, as given to the loader.
    pub fn path(&self) -> &str {
        match self {
            PolicyError::Syntax { path, .. }
            | PolicyError::Empty { path }
            | PolicyError::UnknownKey { path, .. }
            | PolicyError::DuplicateKey { path, .. }
            | PolicyError::MissingKey { path, .. }
            | PolicyError::WrongType { path, .. }
            | PolicyError::UnknownValue { path, .. }
            | PolicyError::UnquotedGlob { path, .. }
            | PolicyError::MissingVersion { path, .. }
            | PolicyError::UnsupportedVersion { path, .. }
            | PolicyError::InvalidValue { path, .. }
            | PolicyError::InvalidGlob { path, .. }
            | PolicyError::DuplicateCheck { path, .. }
            | PolicyError::InvalidPath { path, .. } => path,
        }
    }

    /// (line, column) of the error, 1-based, when known.
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            PolicyError::Syntax {
                line: Some(line),
                column,
                ..
            } => Some((*line, column.unwrap_or(1))),
            PolicyError::Syntax { line: None, .. } | PolicyError::InvalidPath { .. } => None,
            PolicyError::Empty { .. } => Some((1, 1)),
            PolicyError::UnknownKey { line, column, .. }
            | PolicyError::DuplicateKey { line, column, .. }
            | PolicyError::MissingKey { line, column, .. }
            | PolicyError::WrongType { line, column, .. }
            | PolicyError::UnknownValue { line, column, .. }
            | PolicyError::UnquotedGlob { line, column, .. }
            | PolicyError::MissingVersion { line, column, .. }
            | PolicyError::UnsupportedVersion { line, column, .. }
            | PolicyError::InvalidValue { line, column, .. }
            | PolicyError::InvalidGlob { line, column, .. }
            | PolicyError::DuplicateCheck { line, column, .. } => Some((*line, *column)),
        }
    }

    /// What is wrong and what was expected, without the location prefix or the hint.
    pub fn message(&self) -> String {
        match self {
            PolicyError::Syntax { message, .. } => format!("invalid YAML: {message}"),
            PolicyError::Empty { .. } => {
                "the policy is empty: expected a mapping that starts with `version: 1`".into()
            }
            PolicyError::UnknownKey { key, expected, .. } => {
                format!("unknown key `{key}`: expected one of {}", list(expected))
            }
            PolicyError::DuplicateKey { key, .. } => {
                format!("duplicate key `{key}`: each key may appear only once in a mapping")
            }
            PolicyError::MissingKey { key, .. } => format!("missing required key `{key}`"),
            PolicyError::WrongType {
                key,
                found,
                expected,
                ..
            } => {
                let mut out = String::from("wrong type");
                if let Some(key) = key {
                    let _ = write!(out, " for `{key}`");
                }
                let _ = write!(out, ": expected {expected}");
                if let Some(found) = found {
                    let _ = write!(out, ", found {found}");
                }
                out
            }
            PolicyError::UnknownValue {
                value, expected, ..
            } => {
                format!(
                    "unknown value `{value}`: expected one of {}",
                    list(expected)
                )
            }
            PolicyError::UnquotedGlob { text, .. } => {
                format!(
                    "`{text}` is read by YAML as {}, not as a glob: quote the pattern",
                    yaml_reading(text).unwrap_or("something else")
                )
            }
            PolicyError::MissingVersion { .. } => {
                "missing `version`: expected `version: 1` at the top of the policy".into()
            }
            PolicyError::UnsupportedVersion { found, .. } => {
                format!(
                    "unsupported policy version {found}: expected `version: 1` (the only version this agent-gate reads)"
                )
            }
            PolicyError::InvalidValue {
                key,
                found,
                expected,
                ..
            } => {
                format!("invalid `{key}`: expected {expected}, found `{found}`")
            }
            PolicyError::InvalidGlob {
                key,
                pattern,
                reason,
                ..
            } => {
                format!("invalid glob `{pattern}` in `{key}`: {reason}")
            }
            PolicyError::DuplicateCheck {
                name, first_line, ..
            } => {
                format!(
                    "duplicate check name `{name}` (first used on line {first_line}): expected unique check names"
                )
            }
            PolicyError::InvalidPath { reason, .. } => {
                format!("the policy path cannot be protected: {reason}")
            }
        }
    }

    /// A suggestion of what to write instead, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            PolicyError::Syntax { hint, .. } => hint.clone(),
            PolicyError::UnquotedGlob { text, .. } => Some(format!(
                "write \"{text}\" in quotes: an unquoted value that starts with `{}` is {} in YAML",
                text.chars().next().unwrap_or('*'),
                yaml_reading(text).unwrap_or("something else")
            )),
            PolicyError::UnknownKey { key, expected, .. } => {
                closest(key, expected).map(|best| format!("did you mean `{best}`?"))
            }
            PolicyError::UnknownValue { value, expected, .. } => {
                closest(value, expected).map(|best| format!("did you mean `{best}`?"))
            }
            PolicyError::DuplicateKey { first_line: Some(first), .. } => {
                Some(format!("it is first written on line {first}: keep one of the two"))
            }
            PolicyError::DuplicateKey { first_line: None, .. } => Some("keep one of the two entries".into()),
            PolicyError::UnsupportedVersion { found, .. } if found.starts_with('"') => {
                Some("write the number without quotes: `version: 1`".into())
            }
            PolicyError::MissingVersion { .. } => Some("add `version: 1` as the first line".into()),
            PolicyError::InvalidGlob { pattern, .. } if pattern.starts_with('!') => Some(
                "to keep a path out of scope, list it under `scope.deny` (deny wins over allow); to match a name that starts with `!`, write `\\!`".into(),
            ),
            _ => None,
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location() {
            Some((line, column)) => {
                write!(f, "{}:{line}:{column}: {}", self.path(), self.message())?;
            }
            None => write!(f, "{}: {}", self.path(), self.message())?,
        }
        if let Some(hint) = self.hint() {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

fn list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
fn closest<'a>(word: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d > 0 && *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The text of line `line` (1-based), if any.
pub(crate) fn source_line(text: &str, line: usize) -> Option<&str> {
    text.lines().nth(line.checked_sub(1)?)
}

/// The plain-scalar token that starts at (line, column) (1-based, in characters): up to the
/// end of the line, a comment, or a flow delimiter when inside `[...]`/`{...}`.
pub(crate) fn token_at(text: &str, line: usize, column: usize) -> Option<String> {
    let src = source_line(text, line)?;
    let start = column.checked_sub(1)?;
    let before: String = src.chars().take(start).collect();
    let in_flow = before.contains('[') || before.contains('{');
    let mut token = String::new();
    let mut prev = ' ';
    for c in src.chars().skip(start) {
        if in_flow && matches!(c, ',' | ']' | '}') {
            break;
        }
        if c == '#' && prev.is_whitespace() {
            break;
        }
        token.push(c);
        prev = c;
    }
    let token = token.trim().to_string();
    (!token.is_empty()).then_some(token)
}

/// The mapping key written on `line` before `column`, e.g. `max-files` for the value of
/// `  max-files: abc`. Best effort: `None` when the value is not on its key's line.
pub(crate) fn key_before(text: &str, line: usize, column: usize) -> Option<String> {
    let src = source_line(text, line)?;
    let before: String = src.chars().take(column.checked_sub(1)?).collect();
    let before = before.trim_end().strip_suffix(':')?;
    let key = before
        .rsplit(|c: char| c.is_whitespace() || matches!(c, '{' | ','))
        .next()?;
    let key = key.trim_matches(|c| c == '"' || c == '\'');
    (!key.is_empty()).then(|| key.to_string())
}

fn human_type(ty: &str) -> String {
    match ty {
        "string scalar" | "string" | "a string" => "a string".into(),
        "mapping start" | "mapping" => "a mapping (indented `key: value` lines)".into(),
        "sequence start" | "sequence" => "a list".into(),
        "u8" | "u16" | "u32" | "u64" | "usize" | "u128" => "a whole number ≥ 0".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" | "i128" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "bool" | "a boolean" => "`true` or `false`".into(),
        other if other.starts_with("struct ") => "a mapping (indented `key: value` lines)".into(),
        other => other.to_string(),
    }
}

fn position(location: serde_saphyr::Location) -> Option<(usize, usize)> {
    let line = usize::try_from(location.line()).ok()?;
    let column = usize::try_from(location.column()).ok()?;
    (line > 0).then_some((line, column.max(1)))
}

/// Translate a `serde-saphyr` error on the policy `text` read from `path`.
pub(crate) fn from_yaml_error(err: &YamlError, text: &str, path: &str) -> PolicyError {
    let path = path.to_string();
    let mut through_alias = None;
    let mut err = err.without_snippet();
    while let YamlError::AliasError {
        error, locations, ..
    } = err
    {
        through_alias = position(locations.reference_location).or(through_alias);
        err = error.without_snippet();
    }
    let pos = err.location().and_then(position);
    let Some((line, column)) = pos else {
        return PolicyError::Syntax {
            path,
            line: None,
            column: None,
            message: bare_message(err),
            hint: None,
        };
    };
    let syntax = |message: String, hint: Option<String>| PolicyError::Syntax {
        path: path.clone(),
        line: Some(line),
        column: Some(column),
        message,
        hint: hint.or_else(|| {
            through_alias.map(|(l, c)| format!("reached through the alias at line {l}, column {c}"))
        }),
    };
    let token = token_at(text, line, column);
    let found = || token.clone().map(|t| shorten(&t));
    let quoted = |t: &str| format!("`{}`", shorten(t));
    // Where the parser points at a `key: value` line rather than at a value, the thing it
    // found there is a mapping (or, for serde's own type errors, the key's value).
    let split = token.as_deref().and_then(split_key_value);
    let value_key =
        key_before(text, line, column).or_else(|| split.as_ref().map(|(k, _)| k.clone()));
    let unquoted = |candidate: Option<&str>| {
        candidate
            .filter(|v| looks_like_unquoted_glob(v))
            .map(|v| PolicyError::UnquotedGlob {
                path: path.clone(),
                line,
                column,
                text: shorten(v),
            })
    };
    let structural = |expected: &str| {
        unquoted(token.as_deref()).unwrap_or_else(|| PolicyError::WrongType {
            path: path.clone(),
            line,
            column,
            key: key_before(text, line, column).or_else(|| parent_key(text, line, column)),
            found: if split.is_some() {
                Some("a mapping".into())
            } else {
                token.as_deref().map(quoted)
            },
            expected: human_type(expected),
        })
    };
    match err {
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => PolicyError::UnknownKey {
            path,
            line,
            column,
            key: field.clone(),
            expected: expected.iter().map(ToString::to_string).collect(),
        },
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => PolicyError::UnknownValue {
            path,
            line,
            column,
            value: variant.clone(),
            expected: expected.iter().map(ToString::to_string).collect(),
        },
        YamlError::DuplicateMappingKey { key: dup, .. } => {
            let key = dup.clone().or_else(found).unwrap_or_default();
            let first_line = first_occurrence(text, line, column, &key);
            PolicyError::DuplicateKey {
                path,
                line,
                column,
                key,
                first_line,
            }
        }
        YamlError::SerdeMissingField { field, .. } => PolicyError::MissingKey {
            path,
            line,
            column,
            key: (*field).to_string(),
        },
        YamlError::UnknownAnchor { .. } => match found() {
            Some(text) if text.starts_with('*') => PolicyError::UnquotedGlob {
                path,
                line,
                column,
                text,
            },
            _ => syntax(
                "alias refers to an unknown anchor".into(),
                Some("quote the value if it is not meant as an alias".into()),
            ),
        },
        YamlError::Unexpected { expected, .. } => structural(expected),
        YamlError::InvalidScalar { ty, .. } => structural(ty),
        YamlError::InvalidBooleanStrict { .. } => structural("bool"),
        // `- !foo` is a tag on an empty value, `- &x` an anchor on one: the parser points
        // just after the word.
        YamlError::NullIntoString { .. } => match word_before(text, line, column) {
            Some((word, start)) if looks_like_unquoted_glob(&word) => PolicyError::UnquotedGlob {
                path,
                line,
                column: start,
                text: shorten(&word),
            },
            _ => PolicyError::WrongType {
                path,
                line,
                column,
                key: key_before(text, line, column),
                found: Some("nothing (null)".into()),
                expected: "a string".into(),
            },
        },
        YamlError::SerdeInvalidType {
            expected,
            unexpected,
            ..
        }
        | YamlError::SerdeInvalidValue {
            expected,
            unexpected,
            ..
        } => unquoted(
            split
                .as_ref()
                .and_then(|(_, v)| v.as_deref())
                .or(token.as_deref()),
        )
        .unwrap_or(PolicyError::WrongType {
            path,
            line,
            column,
            key: value_key,
            found: Some(unexpected.clone()),
            expected: human_type(expected),
        }),
        YamlError::MultipleDocuments { .. } => syntax(
            "more than one YAML document".into(),
            Some(
                "a policy is a single document: remove the `---` separator and what follows it"
                    .into(),
            ),
        ),
        other => {
            let message = bare_message(other);
            let hint = tab_hint(text, line, &message);
            syntax(message, hint)
        }
    }
}

/// How YAML reads an unquoted value that starts with this character, when that is a trap
/// for a glob.
fn yaml_reading(text: &str) -> Option<&'static str> {
    match text.chars().next()? {
        '*' => Some("an alias"),
        '!' => Some("a tag"),
        '&' => Some("an anchor"),
        '{' => Some("a flow mapping"),
        _ => None,
    }
}

/// A value that was meant as a glob but that YAML read as something else.
fn looks_like_unquoted_glob(text: &str) -> bool {
    match text.chars().next() {
        Some('*' | '!' | '&') => true,
        Some('{') => {
            !text.contains(": ")
                && (text.contains('/') || text.contains('*') || text.contains("}."))
        }
        _ => false,
    }
}

/// The key whose value starts on a later line at (line, column): the nearest line above
/// that is indented less and ends with `key:`.
fn parent_key(text: &str, line: usize, column: usize) -> Option<String> {
    let indent = column.checked_sub(1)?;
    for l in (1..line).rev() {
        let src = source_line(text, l)?;
        let trimmed = src.trim_start_matches(' ');
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if src.len() - trimmed.len() >= indent {
            continue;
        }
        let content = trimmed.split(" #").next().unwrap_or_default().trim_end();
        let key = content.strip_suffix(':')?.trim_start_matches("- ").trim();
        return (!key.is_empty() && !key.contains(' '))
            .then(|| key.trim_matches(|c| c == '"' || c == '\'').to_string());
    }
    None
}

/// The last word before `column` on `line`, e.g. `!foo` in `    - !foo`.
/// Returns the word and its 1-based column.
fn word_before(text: &str, line: usize, column: usize) -> Option<(String, usize)> {
    let src = source_line(text, line)?;
    let before: String = src.chars().take(column.checked_sub(1)?).collect();
    let trimmed = before.trim_end();
    let word = trimmed.rsplit([' ', '[', ',']).next()?;
    let start = trimmed[..trimmed.len() - word.len()].chars().count() + 1;
    (!word.is_empty()).then(|| (word.to_string(), start))
}

/// `key: value` → (key, value) when `token` starts with a plain key.
fn split_key_value(token: &str) -> Option<(String, Option<String>)> {
    let (key, value) = token.split_once(':')?;
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return None;
    }
    if !(value.is_empty() || value.starts_with(' ')) {
        return None;
    }
    let value = value.trim();
    Some((
        key.to_string(),
        (!value.is_empty()).then(|| value.to_string()),
    ))
}

/// At most 60 characters of `text`, for messages.
fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let mut out: String = text.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

/// The line where `key` was first written in the block mapping whose duplicate is at
/// (line, column): scanning up at the same indentation until the mapping starts.
fn first_occurrence(text: &str, line: usize, column: usize, key: &str) -> Option<usize> {
    let indent = column.checked_sub(1)?;
    for l in (1..line).rev() {
        let src = source_line(text, l)?;
        let mut trimmed = src.trim_start_matches(' ');
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut here = src.len() - trimmed.len();
        // `- key: value` starts a mapping inside a list, at the column after the dash.
        let mut starts_item = false;
        while let Some(rest) = trimmed.strip_prefix('-') {
            let after = rest.trim_start_matches(' ');
            if after.len() == rest.len() {
                break;
            }
            here += trimmed.len() - after.len();
            trimmed = after;
            starts_item = true;
        }
        if here < indent {
            return None;
        }
        if here == indent {
            let name = trimmed
                .split(':')
                .next()
                .unwrap_or_default()
                .trim()
                .trim_matches(|c| c == '"' || c == '\'');
            if name == key {
                return Some(l);
            }
            if starts_item {
                return None;
            }
        }
    }
    None
}

/// The parser's message without its trailing " at line L, column C".
fn bare_message(err: &YamlError) -> String {
    let text = err.to_string();
    match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn tab_hint(text: &str, line: usize, message: &str) -> Option<String> {
    let has_tab = |l: usize| {
        source_line(text, l).is_some_and(|s| {
            s.starts_with(['\t', ' ']) && s.trim_start_matches(' ').starts_with('\t')
        })
    };
    if message.contains("tab") || has_tab(line) || (line > 1 && has_tab(line - 1)) {
        Some("indent with spaces: YAML does not allow tabs for indentation".into())
    } else if message.contains("did not find expected key") || message.contains("indentation") {
        Some("check the indentation: keys of the same mapping must start in the same column".into())
    } else {
        None
    }
}
