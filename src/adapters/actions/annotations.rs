//! The annotation budget: GitHub keeps at most 10 error and 10 warning annotations per
//! step (notices get the same cap here, to be safe). [`Annotations`] collects every
//! annotation with a caller-given priority and emits, per level, the most important first;
//! when a level has more than fits, its 10th slot becomes one note saying how many more
//! are in the step summary. It does not write the summary (callers list
//! [`Annotations::hidden`] there).

use super::command::{Annotation, Command, Level};

/// One collected annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnotationEntry {
    /// Error, warning or notice.
    pub level: Level,
    /// Higher is more important; equal priorities keep insertion order.
    pub priority: u32,
    /// The annotation itself.
    pub annotation: Annotation,
}

/// Collects annotations and plans what to emit within GitHub's per-step budget.
#[derive(Debug, Clone, Default)]
pub struct Annotations {
    entries: Vec<AnnotationEntry>,
}

impl Annotations {
    /// Annotations GitHub shows per level and step.
    pub const PER_LEVEL: usize = 10;

    /// An empty collector.
    pub fn new() -> Annotations {
        Annotations::default()
    }

    /// Collect an annotation.
    pub fn push(&mut self, level: Level, priority: u32, annotation: Annotation) {
        self.entries.push(AnnotationEntry {
            level,
            priority,
            annotation,
        });
    }

    /// How many annotations were collected.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was collected.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries of `level`, most important first (stable for equal priorities).
    fn ranked(&self, level: Level) -> Vec<&AnnotationEntry> {
        let mut ranked: Vec<_> = self.entries.iter().filter(|e| e.level == level).collect();
        ranked.sort_by_key(|e| std::cmp::Reverse(e.priority));
        ranked
    }

    /// How many of `n` entries are shown as themselves.
    fn shown_count(n: usize) -> usize {
        if n > Self::PER_LEVEL {
            Self::PER_LEVEL - 1
        } else {
            n
        }
    }

    /// The commands to print: errors, then warnings, then notices, each level most
    /// important first, at most [`Self::PER_LEVEL`] per level, the last slot of an
    /// overflowing level being a note pointing at the step summary.
    pub fn commands(&self) -> Vec<Command> {
        let mut out = Vec::new();
        for level in [Level::Error, Level::Warning, Level::Notice] {
            let ranked = self.ranked(level);
            let shown = Self::shown_count(ranked.len());
            out.extend(
                ranked[..shown]
                    .iter()
                    .map(|e| e.annotation.to_command(level)),
            );
            let more = ranked.len() - shown;
            if more > 0 {
                let note = Annotation::new(format!(
                    "{more} more {} are listed in the step summary (GitHub shows at most {} per step).",
                    level.plural(),
                    Self::PER_LEVEL,
                ))
                .title(format!("agent-gate: {more} more {}", level.plural()));
                out.push(note.to_command(level));
            }
        }
        out
    }

    /// The entries [`Self::commands`] leaves out, in the same order, for the summary.
    pub fn hidden(&self) -> Vec<&AnnotationEntry> {
        let mut out = Vec::new();
        for level in [Level::Error, Level::Warning, Level::Notice] {
            let ranked = self.ranked(level);
            let shown = Self::shown_count(ranked.len());
            out.extend_from_slice(&ranked[shown..]);
        }
        out
    }
}
