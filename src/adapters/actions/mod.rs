//! Adapter for the GitHub Actions runner's I/O contract: workflow commands on stdout
//! (escaped exactly as `@actions/core` does), the `GITHUB_OUTPUT` file command, the
//! `GITHUB_STEP_SUMMARY` file with its 1 MiB limit, the `GITHUB_*`/`INPUT_*` environment,
//! and secret masking. It owns the *format* of everything the gate hands the runner; it
//! does not decide *what* to report (that is the report and flow modules' job) and never
//! reads the process environment itself: callers inject the variables and the writers.
//!
//! Facts and sources (public: GitHub's workflow-command and variables documentation, the
//! runner's `ActionCommand.cs` and `FileCommandManager.cs`, the toolkit's `command.ts`) and
//! the guarantees are listed in `docs/actions-io.md`; the toolkit's escaping vectors are in
//! `tests/data/conformance/actions-commands.tsv`.

mod annotations;
mod command;
mod env;
mod file_command;
mod io;
mod mask;
mod summary;

use std::path::PathBuf;

pub use annotations::{AnnotationEntry, Annotations};
pub use command::{
    Annotation, Command, Level, MAX_MESSAGE_LEN, add_mask, debug, endgroup, error, escape_data,
    escape_property, group, notice, truncate_message, unescape_data, unescape_property, warning,
};
pub use env::ActionsEnv;
pub use file_command::{
    DELIMITER_PREFIX, FileCommandParseError, append_key_value, format_key_value,
    parse_file_command, set_output, validate_name,
};
pub use io::ActionsIo;
pub use mask::Masker;
pub use summary::{SUMMARY_LIMIT, SummaryWrite, fit_summary, write_summary};

/// Failures of the Actions writers. Each variant names the file or output it is about.
#[derive(Debug, thiserror::Error)]
pub enum ActionsError {
    /// The environment variable naming a runner file is unset or empty.
    #[error(
        "{variable} is not set: agent-gate is not running inside a GitHub Actions step \
         (GITHUB_ACTIONS={actions}); read the report on the terminal or the --format json \
         output instead of Action outputs"
    )]
    NotInActions {
        /// `GITHUB_OUTPUT` or `GITHUB_STEP_SUMMARY`.
        variable: &'static str,
        /// The value of `GITHUB_ACTIONS` seen (or `unset`).
        actions: String,
    },
    /// An output (or env/state) name the runner's parser would misread.
    #[error("invalid output name {name:?}: {reason}; use letters, digits, '-' and '_'")]
    InvalidName {
        /// The refused name.
        name: String,
        /// Why the runner could not read it back.
        reason: &'static str,
    },
    /// Every generated heredoc delimiter occurred in the name or value.
    #[error(
        "could not choose a heredoc delimiter for output {name:?}: {attempts} random \
         delimiters all occurred in its name or value"
    )]
    DelimiterCollision {
        /// The output being written.
        name: String,
        /// How many delimiters were tried.
        attempts: usize,
    },
    /// Reading or appending a runner file failed.
    #[error("cannot append to {}: {source} (the runner creates this file before the step starts)", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}
