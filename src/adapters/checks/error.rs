//! Why a check could not be set up to run: its directory (the copy of the tree, its `HOME`),
//! its image (not in the engine's store and not pullable) or its container. Each variant
//! names the path, image or command it is about; the check's outcome carries the text
//! (`error`, or `unavailable` for an image), so the sources are shared (`Arc`) to let one
//! failure stand for every check it stops.

use std::path::PathBuf;
use std::sync::Arc;

use crate::adapters::checks::docker::EngineError;

/// A check that cannot be set up; it is reported without running.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SetupError {
    #[error("cannot use the check tree {}: {source}", path.display())]
    Source {
        path: PathBuf,
        source: Arc<std::io::Error>,
    },
    #[error("cannot create a temporary directory for the checks: {source}")]
    TempDir { source: Arc<std::io::Error> },
    #[error("cannot create {what} {}: {source}", path.display())]
    Create {
        what: &'static str,
        path: PathBuf,
        source: Arc<std::io::Error>,
    },
    #[error("cannot set the mode of {}: {source}", path.display())]
    Mode {
        path: PathBuf,
        source: Arc<std::io::Error>,
    },
    #[error("cannot copy the check tree {} to {}: {source}", from.display(), to.display())]
    Copy {
        from: PathBuf,
        to: PathBuf,
        source: Arc<std::io::Error>,
    },
    #[error("cannot give {} to uid {uid}: {source}", path.display())]
    Chown {
        path: PathBuf,
        uid: u32,
        source: Arc<std::io::Error>,
    },
    /// A blocking task (copy, pack) panicked or was cancelled.
    #[error("{what} failed: {source}")]
    Task {
        what: &'static str,
        source: Arc<tokio::task::JoinError>,
    },
    #[error("cannot use the image `{image}`: {source}")]
    Image {
        image: String,
        source: Arc<EngineError>,
    },
    #[error(
        "cannot pull the image `{image}` ({source}): check its name and tag, and that the runner can reach its registry (a private registry needs a `docker login` step before this one)"
    )]
    Pull {
        image: String,
        source: Arc<EngineError>,
    },
    #[error(
        "the command holds file names that are not UTF-8, which the Docker engine cannot pass; narrow `files` or run the check without `image:`"
    )]
    NotUtf8,
    #[error("cannot pack the check tree: {source}")]
    Pack { source: Arc<std::io::Error> },
    /// A step of the check's container: `create the check's container`, …
    #[error("cannot {step}: {source}")]
    Container {
        step: &'static str,
        source: Arc<EngineError>,
    },
}

impl SetupError {
    pub(super) fn io(
        make: impl FnOnce(Arc<std::io::Error>) -> SetupError,
    ) -> impl FnOnce(std::io::Error) -> SetupError {
        move |e| make(Arc::new(e))
    }
}
