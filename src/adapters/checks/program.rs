//! The program a check's command starts, and whether the check's environment has it. A
//! check whose tool is missing (`ruff` not installed in the image) is an environment
//! error — the repository's setup, never the agent's change — so it is found before any
//! of the agent's code runs and reported apart from a failing check. Only a bare command
//! name that starts the command (after `NAME=value` assignments) is looked up on the
//! check's `PATH`; shell keywords and builtins, paths (`./scripts/lint.sh`, which the
//! change may have deleted: that stays a failing check) and anything quoted or expanded
//! are left to the shell.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Words bash itself runs (keywords and builtins): never looked up on `PATH`.
const SHELL_WORDS: &[&str] = &[
    "!",
    "[[",
    "{",
    "(",
    "((",
    "case",
    "coproc",
    "for",
    "function",
    "if",
    "select",
    "time",
    "until",
    "while",
    ".",
    ":",
    "[",
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "caller",
    "cd",
    "command",
    "compgen",
    "complete",
    "compopt",
    "continue",
    "declare",
    "dirs",
    "disown",
    "echo",
    "enable",
    "eval",
    "exec",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "getopts",
    "hash",
    "help",
    "history",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "set",
    "shift",
    "shopt",
    "source",
    "suspend",
    "test",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "wait",
];

/// The bare command name `command` starts with, when there is one to look up: the first
/// word after any leading `NAME=value` assignments, made only of letters, digits and
/// `_ . + -`, and not a shell keyword or builtin.
pub fn leading_program(command: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(command).ok()?;
    let mut words = text.split_ascii_whitespace();
    let word = loop {
        let word = words.next()?;
        let is_assignment = word.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !name.as_bytes()[0].is_ascii_digit()
        });
        if !is_assignment {
            break word;
        }
    };
    // A word ending the command's first simple command (`make;`, `pytest&&`) is still it.
    let word = word.trim_end_matches([';', '&', '|']);
    let bare = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'))
        && !word.starts_with('-');
    (bare && !SHELL_WORDS.contains(&word)).then(|| word.to_string())
}

/// Where `program` is on `path` (a `PATH` value): the first executable regular file.
pub fn find_on_path(program: &str, path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
