//! Progress output of `run` on the terminal: the run flow writes plain lines (one per state
//! change, heartbeats while waiting) to a writer; this adapter turns them into an
//! `indicatif` spinner when stderr is a TTY — state changes stay as lines above it, and
//! heartbeats only update its message — and passes them through as lines otherwise (CI
//! logs, pipes), text from outside defused either way. It owns the terminal and nothing else:
//! also whether stderr gets colour ([`colour_wanted`]).

use std::io::{self, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Colour codes on stderr only when it is a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>): a CI log or a file never gets raw escape sequences.
pub fn colour_wanted(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

/// A line writer for progress: a spinner on a TTY, plain lines elsewhere.
pub struct ProgressWriter {
    spinner: Option<ProgressBar>,
    pending: Vec<u8>,
    /// Where plain lines go (stderr, or a buffer in tests).
    sink: Box<dyn Write + Send>,
}

impl ProgressWriter {
    /// For stderr: a spinner when it is a terminal (and `CI` is not set).
    pub fn stderr() -> ProgressWriter {
        let tty = io::IsTerminal::is_terminal(&io::stderr()) && std::env::var_os("CI").is_none();
        ProgressWriter::new(tty)
    }

    /// `spinner: false` writes every line to stderr as is.
    pub fn new(spinner: bool) -> ProgressWriter {
        let spinner = spinner.then(|| {
            let pb = ProgressBar::new_spinner();
            pb.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        });
        ProgressWriter {
            spinner,
            pending: Vec::new(),
            sink: Box::new(io::stderr()),
        }
    }

    /// Plain lines to `sink` (no spinner).
    pub fn to_sink(sink: Box<dyn Write + Send>) -> ProgressWriter {
        ProgressWriter {
            spinner: None,
            pending: Vec::new(),
            sink,
        }
    }

    /// One line of progress. Lines carry text from outside (task states, API messages), so
    /// each is [`neutralized`](crate::core::report::neutralize) first: stderr is read for workflow
    /// commands too.
    fn line(&mut self, line: &str) {
        let line = crate::core::report::neutralize(line);
        let line = line.as_ref();
        match &self.spinner {
            // Heartbeats and waiting lines replace each other in the spinner's message.
            Some(pb) if line.contains(": still ") || line.contains("waiting for capacity") => {
                pb.set_message(line.trim_start_matches("agent-gate: ").to_string());
            }
            Some(pb) => {
                pb.println(line);
                pb.set_message(line.trim_start_matches("agent-gate: ").to_string());
            }
            None => {
                let _ = writeln!(self.sink, "{line}");
            }
        }
    }
}

impl Write for ProgressWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            self.line(String::from_utf8_lossy(&line[..line.len() - 1]).as_ref());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.line(String::from_utf8_lossy(&rest).as_ref());
        }
        self.sink.flush()
    }
}

impl Drop for ProgressWriter {
    fn drop(&mut self) {
        let _ = self.flush();
        if let Some(pb) = self.spinner.take() {
            pb.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn plain_mode_passes_whole_lines_and_flushes_a_partial_one() {
        let sink = Shared::default();
        let mut w = super::ProgressWriter::to_sink(Box::new(sink.clone()));
        write!(w, "agent-gate: task que").unwrap();
        assert!(
            sink.0.lock().unwrap().is_empty(),
            "a partial line waits for its end"
        );
        write!(w, "ued\nagent-gate: still queued").unwrap();
        assert_eq!(
            String::from_utf8_lossy(&sink.0.lock().unwrap()),
            "agent-gate: task queued\n"
        );
        drop(w);
        assert_eq!(
            String::from_utf8_lossy(&sink.0.lock().unwrap()),
            "agent-gate: task queued\nagent-gate: still queued\n"
        );
    }

    #[test]
    fn spinner_mode_accepts_lines_without_a_terminal() {
        // indicatif hides its drawing when stderr is not a terminal; the writer must still
        // take every line without error.
        let mut w = super::ProgressWriter::new(true);
        writeln!(w, "agent-gate: task queued").unwrap();
        let spinner = w.spinner.clone().expect("spinner mode");
        assert_eq!(
            spinner.message(),
            "task queued",
            "a state change is the message"
        );
        writeln!(w, "agent-gate: still queued (after 30s)").unwrap();
        write!(w, "agent-gate: task wor").unwrap();
        assert_eq!(
            spinner.message(),
            "still queued (after 30s)",
            "a heartbeat replaces the message; a partial line waits"
        );
        w.flush().unwrap();
        assert_eq!(
            spinner.message(),
            "task wor",
            "flush writes the partial line"
        );
        assert!(w.pending.is_empty());
    }
}
