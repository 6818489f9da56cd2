//! Workflow commands (`::name key=value,key=value::message`): escaping exactly as the
//! toolkit's `command.ts` does, the runner's decoding (for parsing and round-trip tests),
//! rendering with falsy properties left out, message truncation, and the helpers for the
//! commands the gate uses (`add-mask`, annotations, groups, `debug`). It does not choose
//! which annotations to emit (see `annotations`) nor redact secrets (see `mask`).

use std::borrow::Cow;
use std::fmt;

/// Longest message the runner keeps for an annotation, in UTF-16 code units (the runner is
/// .NET and truncates `string.Length`). Messages are cut to this length, marker included.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// Escape command data (the text after the second `::`): `%` → `%25` first, then
/// CR → `%0D`, LF → `%0A`. Nothing else is escaped.
pub fn escape_data(text: &str) -> String {
    escape(text, false)
}

/// Escape a property value: the data rules, then `:` → `%3A` and `,` → `%2C`.
pub fn escape_property(text: &str) -> String {
    escape(text, true)
}

fn escape(text: &str, property: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        // One pass is the same as the toolkit's sequential replaces with `%` first: the
        // `%` of a produced `%0D` is never seen again.
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            ':' if property => out.push_str("%3A"),
            ',' if property => out.push_str("%2C"),
            c => out.push(c),
        }
    }
    out
}

/// Decode command data as the runner does: case-sensitive literal replaces of `%0D`,
/// `%0A`, then `%25` (so `%0a` is never decoded).
pub fn unescape_data(text: &str) -> String {
    text.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%25", "%")
}

/// Decode a property value as the runner does: `%0D`, `%0A`, `%3A`, `%2C`, then `%25`.
pub fn unescape_property(text: &str) -> String {
    text.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
}

/// Cut `message` to at most [`MAX_MESSAGE_LEN`] UTF-16 code units, the marker
/// ` […truncated, N more characters]` included; shorter messages are returned as they are.
pub fn truncate_message(message: &str) -> Cow<'_, str> {
    let units: usize = message.chars().map(char::len_utf16).sum();
    if units <= MAX_MESSAGE_LEN {
        return Cow::Borrowed(message);
    }
    let total_chars = message.chars().count();
    // Start with the longest marker (all characters omitted); a shorter count frees room,
    // so widen the budget until the marker's length no longer changes.
    let mut marker_units = marker(total_chars).encode_utf16().count();
    let (end, kept_chars) = loop {
        let (end, kept_chars) = prefix_within(message, MAX_MESSAGE_LEN - marker_units);
        let units = marker(total_chars - kept_chars).encode_utf16().count();
        if units == marker_units {
            break (end, kept_chars);
        }
        marker_units = units;
    };
    let mut out = String::with_capacity(end + 48);
    out.push_str(&message[..end]);
    out.push_str(&marker(total_chars - kept_chars));
    Cow::Owned(out)
}

/// The byte length and character count of the longest prefix within `budget` UTF-16 units.
fn prefix_within(text: &str, budget: usize) -> (usize, usize) {
    let mut used = 0;
    let mut end = 0;
    let mut chars = 0;
    for (i, c) in text.char_indices() {
        if used + c.len_utf16() > budget {
            break;
        }
        used += c.len_utf16();
        end = i + c.len_utf8();
        chars += 1;
    }
    (end, chars)
}

fn marker(omitted: usize) -> String {
    format!(" […truncated, {omitted} more characters]")
}

/// One workflow command. `Display` renders the line without its trailing newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The command name (`error`, `group`, …), written as is.
    pub name: String,
    /// Properties in order; keys are written as is, values escaped; empty values left out.
    pub properties: Vec<(String, String)>,
    /// The data after the second `::`, escaped; truncated to [`MAX_MESSAGE_LEN`] except
    /// for `add-mask` (a cut secret would leak its tail).
    pub message: String,
}

impl Command {
    /// A command with no properties.
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Command {
        Command {
            name: name.into(),
            properties: Vec::new(),
            message: message.into(),
        }
    }

    /// Add a property (builder style).
    #[must_use]
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Command {
        self.properties.push((key.into(), value.into()));
        self
    }

    /// The value of property `key` (case-insensitive, as the runner reads keys).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// Parse one line as the runner's `ActionCommand.TryParseV2` does (without its list
    /// of registered names): leading whitespace trimmed, `::name props::data`, the
    /// property string trimmed and split on `,` (empty entries dropped), each entry split
    /// on its first `=` and dropped unless both sides are non-empty, values and data
    /// decoded. Returns `None` for a line that is not a command.
    pub fn parse(line: &str) -> Option<Command> {
        let line = line.trim_start();
        let rest = line.strip_prefix("::")?;
        let end = rest.find("::")?;
        let info = &rest[..end];
        let data = &rest[end + 2..];
        let (name, props) = match info.find(' ') {
            Some(space) => (&info[..space], Some(&info[space + 1..])),
            None => (info, None),
        };
        if name.is_empty() {
            return None;
        }
        let mut properties: Vec<(String, String)> = Vec::new();
        for entry in props.unwrap_or("").trim().split(',') {
            let Some((key, value)) = entry.split_once('=') else {
                continue;
            };
            if key.is_empty() || value.is_empty() {
                continue;
            }
            let value = unescape_property(value);
            // Keys are a case-insensitive dictionary in the runner: the last one wins.
            properties.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
            properties.push((key.to_string(), value));
        }
        Some(Command {
            name: name.to_string(),
            properties,
            message: unescape_data(data),
        })
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "::{}", self.name)?;
        let mut first = true;
        for (key, value) in self.properties.iter().filter(|(_, v)| !v.is_empty()) {
            f.write_str(if first { " " } else { "," })?;
            first = false;
            write!(f, "{key}={}", escape_property(value))?;
        }
        let message = if self.name == "add-mask" {
            Cow::Borrowed(self.message.as_str())
        } else {
            truncate_message(&self.message)
        };
        write!(f, "::{}", escape_data(&message))
    }
}

/// The three annotation levels, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `::error`
    Error,
    /// `::warning`
    Warning,
    /// `::notice`
    Notice,
}

impl Level {
    /// The command name.
    pub fn command_name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        }
    }

    /// The plural noun used in the overflow note.
    pub(crate) fn plural(self) -> &'static str {
        match self {
            Level::Error => "errors",
            Level::Warning => "warnings",
            Level::Notice => "notices",
        }
    }
}

/// An annotation's location and text. `file` should be workspace-relative (or under
/// `/github/workspace`); `0` for a number and `""` for a string mean "absent", as in the
/// toolkit. The runner drops `col`/`endColumn` unless `line == endLine` and drops a pair
/// whose end is before its start; this type renders what it is given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotation {
    /// Path of the file, relative to the workspace.
    pub file: Option<String>,
    /// First line, 1-based.
    pub line: Option<u32>,
    /// Last line.
    pub end_line: Option<u32>,
    /// First column, 1-based.
    pub col: Option<u32>,
    /// Last column.
    pub end_column: Option<u32>,
    /// Short title shown above the message.
    pub title: Option<String>,
    /// The message.
    pub message: String,
}

impl Annotation {
    /// An annotation with only a message.
    pub fn new(message: impl Into<String>) -> Annotation {
        Annotation {
            message: message.into(),
            ..Annotation::default()
        }
    }

    /// Set `file`.
    #[must_use]
    pub fn file(mut self, file: impl Into<String>) -> Annotation {
        self.file = Some(file.into());
        self
    }

    /// Set `line` and `endLine`.
    #[must_use]
    pub fn lines(mut self, start: u32, end: u32) -> Annotation {
        self.line = Some(start);
        self.end_line = Some(end);
        self
    }

    /// Set `line`.
    #[must_use]
    pub fn line(mut self, line: u32) -> Annotation {
        self.line = Some(line);
        self
    }

    /// Set `col` and `endColumn`.
    #[must_use]
    pub fn columns(mut self, start: u32, end: u32) -> Annotation {
        self.col = Some(start);
        self.end_column = Some(end);
        self
    }

    /// Set `title`.
    #[must_use]
    pub fn title(mut self, title: impl Into<String>) -> Annotation {
        self.title = Some(title.into());
        self
    }

    /// The command for this annotation at `level`, properties in the toolkit's order
    /// (`title, file, line, endLine, col, endColumn`).
    pub fn to_command(&self, level: Level) -> Command {
        let number = |n: Option<u32>| n.filter(|&n| n != 0).map(|n| n.to_string());
        let props = [
            ("title", self.title.clone()),
            ("file", self.file.clone()),
            ("line", number(self.line)),
            ("endLine", number(self.end_line)),
            ("col", number(self.col)),
            ("endColumn", number(self.end_column)),
        ];
        Command {
            name: level.command_name().to_string(),
            properties: props
                .into_iter()
                .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k.to_string(), v)))
                .collect(),
            message: self.message.clone(),
        }
    }
}

/// `::add-mask::value`: the runner masks `value` in every later log line.
pub fn add_mask(value: &str) -> Command {
    Command::new("add-mask", value)
}

/// `::error …::message`.
pub fn error(annotation: &Annotation) -> Command {
    annotation.to_command(Level::Error)
}

/// `::warning …::message`.
pub fn warning(annotation: &Annotation) -> Command {
    annotation.to_command(Level::Warning)
}

/// `::notice …::message`.
pub fn notice(annotation: &Annotation) -> Command {
    annotation.to_command(Level::Notice)
}

/// `::group::title`: folds the following lines until [`endgroup`].
pub fn group(title: &str) -> Command {
    Command::new("group", title)
}

/// `::endgroup::`.
pub fn endgroup() -> Command {
    Command::new("endgroup", "")
}

/// `::debug::message`: shown only with step debug logging on.
pub fn debug(message: &str) -> Command {
    Command::new("debug", message)
}
