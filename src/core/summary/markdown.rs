//! Markdown building blocks for untrusted text: entity escaping for inline text and
//! `<code>`, fences longer than the text's backtick runs, output cleaning (ANSI
//! sequences, carriage returns, control characters), link destinations, and the number
//! and duration formats of the summary.

use std::fmt::Write as _;

/// A backtick fence longer than any run of backticks in `text` (at least three).
pub fn fence_for(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

/// Output for a code block: ANSI escape sequences removed, CR-overwritten progress lines
/// reduced to their last state, other control characters (but tab) dropped.
pub fn clean_output(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ params final-byte; other escapes: drop ESC and the next char.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for d in chars.by_ref() {
                        if ('@'..='~').contains(&d) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    continue;
                }
                // Carriage return: the terminal would overwrite the line.
                let line_start = out.rfind('\n').map_or(0, |i| i + 1);
                out.truncate(line_start);
            }
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Untrusted text for inline Markdown: every character that Markdown or HTML could
/// interpret becomes a numeric entity (also `@`, `#`, `:` and `$`, against mentions,
/// references, emoji and math — though GitHub's filters for those run on the rendered
/// text, so agent-chosen text is always put in [`code`]); a leading `-`, `+` or digit
/// too, so the text cannot start a list; newlines and other control characters become
/// visible escapes (`\n`, `\t`, `\x{7}`).
pub fn inline(text: &str) -> String {
    escape(text, true)
}

/// Untrusted text for a table cell: as [`inline`], but a leading `-`, `+` or digit stays
/// as it is — a cell never starts a line (the row starts with `|`), so it cannot start a
/// list, and a task id like `2f0c…` reads as written.
pub fn cell(text: &str) -> String {
    escape(text, false)
}

fn escape(text: &str, line_start: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        match c {
            '&' | '<' | '>' | '|' | '`' | '\\' | '*' | '_' | '[' | ']' | '(' | ')' | '~' | '#'
            | '@' | ':' | '!' | '$' => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            '-' | '+' | '0'..='9' if i == 0 && line_start => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            '\n' => out.push_str("&#92;n"),
            '\r' => out.push_str("&#92;r"),
            '\t' => out.push_str("&#92;t"),
            c if c.is_control() => {
                let _ = write!(out, "&#92;x{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// A sentence the gate wrote (a note), as Markdown: its `` `code` `` spans as code, its
/// `http(s)://` URLs as links, everything else escaped as [`inline`] escapes it. A note
/// with an odd number of backticks is escaped whole.
pub fn prose(text: &str) -> String {
    let parts: Vec<&str> = text.split('`').collect();
    if parts.len().is_multiple_of(2) {
        return inline(text);
    }
    let mut out = String::with_capacity(text.len());
    for (i, part) in parts.iter().enumerate() {
        if i % 2 == 1 {
            out.push_str(&code(part));
            continue;
        }
        let mut rest = *part;
        while let Some(at) = rest.find("https://").or_else(|| rest.find("http://")) {
            out.push_str(&escape(&rest[..at], out.is_empty()));
            let tail = &rest[at..];
            let end = tail.find(char::is_whitespace).unwrap_or(tail.len());
            // Sentence punctuation after a URL is not part of it.
            let url = tail[..end].trim_end_matches(['.', ',', ';', ':', ')', '!', '?']);
            let _ = write!(out, "[{}]({})", escape(url, false), url_text(url));
            rest = &tail[url.len()..];
        }
        out.push_str(&escape(rest, out.is_empty()));
    }
    out
}

/// Untrusted text in an HTML `<code>` element (entities decoded, Markdown not applied).
pub fn code(text: &str) -> String {
    format!("<code>{}</code>", escape(text, false))
}

/// A URL for a Markdown link destination: characters that would end or break it
/// percent-encoded.
pub(super) fn url_text(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            ' ' | '(' | ')' | '<' | '>' | '"' | '\'' | '`' | '|' | '[' | ']' | '\\' => {
                let _ = write!(out, "%{:02X}", u32::from(c));
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

pub(super) fn first_line(text: &str, max_chars: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > max_chars {
        let cut: String = line.chars().take(max_chars).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    }
}

/// `850 ms`, `12.3 s`, `4m 03s`, `1h 02m`.
pub(super) fn millis(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{}.{} s", ms / 1000, ms % 1000 / 100)
    } else {
        whole_seconds(ms / 1000)
    }
}

pub(super) fn seconds(s: f64) -> String {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "non-negative and rounded; runs are far shorter than u64::MAX seconds"
    )]
    whole_seconds(s.max(0.0).round() as u64)
}

pub(super) fn whole_seconds(s: u64) -> String {
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, s / 60 % 60)
    }
}

/// `1.25`, `3`, `0.001` — at most three decimals, no trailing zeros.
pub(super) fn number(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}
