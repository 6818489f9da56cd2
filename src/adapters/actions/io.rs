//! [`ActionsIo`]: the one door the report writers use to reach the runner. It joins an
//! [`ActionsEnv`], a [`Masker`] and the stdout writer so that every command, output and
//! summary goes through redaction, `::add-mask::` is only printed inside Actions (outside,
//! it would print the secret), and a missing `GITHUB_OUTPUT`/`GITHUB_STEP_SUMMARY` is a
//! clear [`ActionsError::NotInActions`] rather than a deprecated `::set-output` command.

use std::io::{self, Write};
use std::path::Path;

use super::annotations::Annotations;
use super::command::Command;
use super::env::ActionsEnv;
use super::mask::Masker;
use super::summary::{SummaryWrite, write_summary};
use super::{ActionsError, file_command};
use crate::core::slug::RepoSlug;

/// The runner-facing writers of one step, with secrets redacted everywhere.
#[derive(Debug)]
pub struct ActionsIo<W> {
    env: ActionsEnv,
    masker: Masker,
    out: W,
}

impl<W: Write> ActionsIo<W> {
    /// Writers for the step described by `env`, printing commands to `out` (stdout in
    /// `main`, a buffer in tests).
    pub fn new(env: ActionsEnv, out: W) -> ActionsIo<W> {
        ActionsIo {
            env,
            masker: Masker::new(),
            out,
        }
    }

    /// The step's environment.
    pub fn env(&self) -> &ActionsEnv {
        &self.env
    }

    /// Name the repository the step works on (see [`ActionsEnv::target_repository`]); the
    /// workflow's own leaves it unset.
    pub fn set_target_repository(&mut self, repository: &RepoSlug) {
        let repository = repository.to_string();
        self.env.target_repository =
            (self.env.repository.as_deref() != Some(repository.as_str())).then_some(repository);
    }

    /// The secrets registered so far (to redact text written elsewhere, e.g. the audit file).
    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    /// The stdout writer back.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Register a secret: redacted from now on everywhere; inside Actions also announced
    /// with `::add-mask::` right away. Call it before printing anything else.
    pub fn add_mask(&mut self, secret: &str) -> io::Result<()> {
        if self.env.is_actions {
            self.masker.add_mask(secret, &mut self.out)
        } else {
            self.masker.register(secret);
            Ok(())
        }
    }

    /// Print one workflow command, its properties and message redacted first.
    pub fn command(&mut self, command: &Command) -> io::Result<()> {
        let redacted = Command {
            name: command.name.clone(),
            properties: command
                .properties
                .iter()
                .map(|(k, v)| (k.clone(), self.masker.redact(v).into_owned()))
                .collect(),
            message: self.masker.redact(&command.message).into_owned(),
        };
        // Redact the rendered line too, in case a secret only appears once escaped.
        let line = redacted.to_string();
        writeln!(self.out, "{}", self.masker.redact(&line))
    }

    /// Print the planned annotations (see [`Annotations::commands`]).
    pub fn annotations(&mut self, annotations: &Annotations) -> io::Result<()> {
        for command in annotations.commands() {
            self.command(&command)?;
        }
        Ok(())
    }

    /// Print plain text (a check's output inside a group, the terminal report), redacted.
    pub fn print(&mut self, text: &str) -> io::Result<()> {
        let text = self.masker.redact(text);
        self.out.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Print `value` as pretty JSON and a newline, redacted line by line as it is written,
    /// so a large report is never held whole as text. (Pretty JSON never breaks a string
    /// across lines, and every line of a multi-line secret is masked on its own.)
    pub fn print_json<T: serde::Serialize>(&mut self, value: &T) -> io::Result<()> {
        let mut out = RedactLines {
            masker: &self.masker,
            out: io::BufWriter::with_capacity(64 * 1024, &mut self.out),
            line: Vec::new(),
        };
        serde_json::to_writer_pretty(&mut out, value).map_err(io::Error::other)?;
        out.write_all(b"\n")?;
        out.flush()
    }

    /// Set a step output in `GITHUB_OUTPUT`, its value redacted.
    pub fn set_output(&mut self, name: &str, value: &str) -> Result<(), ActionsError> {
        let file = self.file(self.env.output_file.as_deref(), "GITHUB_OUTPUT")?;
        file_command::set_output(file, name, &self.masker.redact(value))
    }

    /// Append Markdown to `GITHUB_STEP_SUMMARY`, redacted, within the 1 MiB limit;
    /// `full_report` (also redacted) says where the whole report is if it must be cut.
    pub fn write_summary(
        &mut self,
        markdown: &str,
        full_report: &str,
    ) -> Result<SummaryWrite, ActionsError> {
        let file = self.file(self.env.summary_file.as_deref(), "GITHUB_STEP_SUMMARY")?;
        write_summary(
            file,
            &self.masker.redact(markdown),
            &self.masker.redact(full_report),
        )
    }

    fn file<'p>(
        &self,
        file: Option<&'p Path>,
        variable: &'static str,
    ) -> Result<&'p Path, ActionsError> {
        file.ok_or_else(|| ActionsError::NotInActions {
            variable,
            actions: self
                .env
                .var("GITHUB_ACTIONS")
                .unwrap_or("unset")
                .to_string(),
        })
    }
}

/// A writer that passes whole lines, each redacted, to `out`; `flush` passes the rest.
struct RedactLines<'a, W: Write> {
    masker: &'a Masker,
    out: W,
    line: Vec<u8>,
}

impl<W: Write> RedactLines<'_, W> {
    fn emit(&mut self) -> io::Result<()> {
        if !self.line.is_empty() {
            let text = String::from_utf8_lossy(&self.line);
            self.out.write_all(self.masker.redact(&text).as_bytes())?;
            self.line.clear();
        }
        Ok(())
    }
}

impl<W: Write> Write for RedactLines<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&rest[..=end]);
            self.emit()?;
            rest = &rest[end + 1..];
        }
        self.line.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.emit()?;
        self.out.flush()
    }
}
