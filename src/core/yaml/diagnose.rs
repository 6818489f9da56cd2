//! Translation of `serde-saphyr` errors into [`Problem`]s: the parser's location kept, its
//! wording replaced by what the file's author needs (the key, what was found, what was
//! expected), and the classic YAML traps recognised from the source text (an unquoted glob
//! that starts with `*` is an alias, `!` a tag, `{` a mapping; tabs are not indentation).
//! Pure functions over the error and the file's text; nothing here parses YAML itself, and
//! nothing knows which file (policy, manifest) it is.

use serde_saphyr::Error as YamlError;

use super::Problem;

/// The text of line `line` (1-based), if any.
fn source_line(text: &str, line: usize) -> Option<&str> {
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
fn key_before(text: &str, line: usize, column: usize) -> Option<String> {
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
        "sequence start" | "sequence" | "a sequence" => "a list".into(),
        "u8" | "u16" | "u32" | "u64" | "usize" | "u128" => "a whole number ≥ 0".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" | "i128" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "bool" | "a boolean" => "`true` or `false`".into(),
        other if other.starts_with("struct ") => "a mapping (indented `key: value` lines)".into(),
        other => other.to_string(),
    }
}

fn located(location: serde_saphyr::Location) -> Option<(usize, usize)> {
    let line = usize::try_from(location.line()).ok()?;
    let column = usize::try_from(location.column()).ok()?;
    (line > 0).then_some((line, column.max(1)))
}

/// Translate a `serde-saphyr` error on `text`, a YAML file of the kind `document` names
/// (`policy`, `manifest`: it appears in hints).
pub(super) fn from_yaml_error(err: &YamlError, text: &str, document: &str) -> Problem {
    let mut through_alias = None;
    let mut err = err.without_snippet();
    while let YamlError::AliasError {
        error, locations, ..
    } = err
    {
        through_alias = located(locations.reference_location).or(through_alias);
        err = error.without_snippet();
    }
    let Some((line, column)) = err.location().and_then(located) else {
        return Problem::Syntax {
            line: None,
            column: None,
            message: bare_message(err),
            hint: None,
        };
    };
    let token = token_at(text, line, column);
    // Where the parser points at a `key: value` line rather than at a value, the thing it
    // found there is a mapping (or, for serde's own type errors, the key's value).
    let split = token.as_deref().and_then(split_key_value);
    let site = Site {
        text,
        line,
        column,
        token,
        split,
        through_alias,
    };
    site.problem(err, document)
}

/// Where an error points, and what is written there.
struct Site<'t> {
    text: &'t str,
    line: usize,
    column: usize,
    /// The token at the position.
    token: Option<String>,
    /// The token as `key: value`, when it is one.
    split: Option<(String, Option<String>)>,
    /// Where the alias that led to the error is, when one did.
    through_alias: Option<(usize, usize)>,
}

impl Site<'_> {
    fn problem(&self, err: &YamlError, document: &str) -> Problem {
        let (line, column) = (self.line, self.column);
        match err {
            YamlError::SerdeUnknownField {
                field, expected, ..
            } => Problem::UnknownKey {
                line,
                column,
                key: field.clone(),
                expected: expected.iter().map(ToString::to_string).collect(),
            },
            YamlError::SerdeUnknownVariant {
                variant, expected, ..
            } => Problem::UnknownValue {
                line,
                column,
                value: variant.clone(),
                expected: expected.iter().map(ToString::to_string).collect(),
            },
            YamlError::DuplicateMappingKey { key: dup, .. } => {
                let key = dup.clone().or_else(|| self.found()).unwrap_or_default();
                let first_line = first_occurrence(self.text, line, column, &key);
                Problem::DuplicateKey {
                    line,
                    column,
                    key,
                    first_line,
                }
            }
            YamlError::SerdeMissingField { field, .. } => Problem::MissingKey {
                line,
                column,
                key: (*field).to_string(),
            },
            YamlError::UnknownAnchor { .. } => match self.found() {
                Some(text) if text.starts_with('*') => Problem::UnquotedGlob { line, column, text },
                _ => self.syntax(
                    "alias refers to an unknown anchor".into(),
                    Some("quote the value if it is not meant as an alias".into()),
                ),
            },
            YamlError::Unexpected { expected, .. } => self.structural(expected),
            YamlError::InvalidScalar { ty, .. } => self.structural(ty),
            YamlError::InvalidBooleanStrict { .. } => self.structural("bool"),
            YamlError::NullIntoString { .. } => self.null_into_string(),
            YamlError::SerdeInvalidType {
                expected,
                unexpected,
                ..
            }
            | YamlError::SerdeInvalidValue {
                expected,
                unexpected,
                ..
            } => self.invalid_value(expected, unexpected),
            YamlError::MultipleDocuments { .. } => self.syntax(
                "more than one YAML document".into(),
                Some(format!(
                    "a {document} is a single document: remove the `---` separator and what follows it"
                )),
            ),
            other => {
                let message = bare_message(other);
                let hint = tab_hint(self.text, line, &message)
                    .or_else(|| colon_hint(self.text, line, &message));
                self.syntax(message, hint)
            }
        }
    }

    /// The token, shortened for a message.
    fn found(&self) -> Option<String> {
        self.token.as_deref().map(shorten)
    }

    fn syntax(&self, message: String, hint: Option<String>) -> Problem {
        Problem::Syntax {
            line: Some(self.line),
            column: Some(self.column),
            message,
            hint: hint.or_else(|| {
                self.through_alias
                    .map(|(l, c)| format!("reached through the alias at line {l}, column {c}"))
            }),
        }
    }

    /// `candidate` read as a glob that YAML took for something else, when it looks like one.
    fn unquoted(&self, candidate: Option<&str>) -> Option<Problem> {
        candidate
            .filter(|v| looks_like_unquoted_glob(v))
            .map(|v| Problem::UnquotedGlob {
                line: self.line,
                column: self.column,
                text: shorten(v),
            })
    }

    /// The parser expected `expected` here and found something of another shape.
    fn structural(&self, expected: &str) -> Problem {
        let (text, line, column) = (self.text, self.line, self.column);
        self.unquoted(self.token.as_deref())
            .unwrap_or_else(|| Problem::WrongType {
                line,
                column,
                key: key_before(text, line, column).or_else(|| parent_key(text, line, column)),
                found: if self.split.is_some() {
                    Some("a mapping".into())
                } else {
                    self.token.as_deref().map(quoted)
                },
                expected: human_type(expected),
            })
    }

    /// `- !foo` is a tag on an empty value, `- &x` an anchor on one: the parser points just
    /// after the word.
    fn null_into_string(&self) -> Problem {
        let (text, line, column) = (self.text, self.line, self.column);
        match word_before(text, line, column) {
            Some((word, start)) if looks_like_unquoted_glob(&word) => Problem::UnquotedGlob {
                line,
                column: start,
                text: shorten(&word),
            },
            _ => Problem::WrongType {
                line,
                column,
                key: key_before(text, line, column),
                found: Some("nothing (null)".into()),
                expected: "a string".into(),
            },
        }
    }

    /// serde's own type error: the key's value was `unexpected`.
    fn invalid_value(&self, expected: &str, unexpected: &str) -> Problem {
        let (text, line, column) = (self.text, self.line, self.column);
        let value = self.split.as_ref().and_then(|(_, v)| v.as_deref());
        self.unquoted(value.or(self.token.as_deref()))
            .unwrap_or_else(|| Problem::WrongType {
                line,
                column,
                key: key_before(text, line, column)
                    .or_else(|| self.split.as_ref().map(|(k, _)| k.clone())),
                found: Some(unexpected.to_string()),
                expected: human_type(expected),
            })
    }
}

/// A token named for a message: a flow list or mapping is named, not quoted (`[x]` reads
/// as "a list").
fn quoted(t: &str) -> String {
    if t.starts_with('[') || t == "-" || t.starts_with("- ") {
        "a list".to_string()
    } else if t.starts_with('{') {
        "a mapping".to_string()
    } else {
        format!("`{}`", shorten(t))
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

/// `run: echo a: b`: a plain value holding `: ` reads as a second mapping. Say which key's
/// value it is and how to write it: quoted whole, or as a block scalar.
fn colon_hint(text: &str, line: usize, message: &str) -> Option<String> {
    if !message.contains("mapping values are not allowed") {
        return None;
    }
    let src = source_line(text, line)?.trim_start();
    let src = src.strip_prefix("- ").unwrap_or(src).trim_start();
    let (key, value) = src.split_once(": ")?;
    let value = value.trim();
    if key.is_empty() || key.contains(char::is_whitespace) || !value.contains(": ") {
        return None;
    }
    let quoted = if !value.contains('\'') {
        format!(" (`{key}: '{}'`)", shorten(value))
    } else if !value.contains(['"', '\\']) {
        format!(" (`{key}: \"{}\"`)", shorten(value))
    } else {
        String::new()
    };
    Some(format!(
        "the value of `{key}` contains `: `, which YAML reads as the start of another key: quote the whole value{quoted}, or write it as a block: `{key}: |` with the value on the next line, indented"
    ))
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
