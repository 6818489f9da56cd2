//! Adapter for GitHub's REST API: the agent-tasks endpoints and the few repository
//! endpoints the gate uses. [`types`] holds the wire types shared with the simulator;
//! [`client`] the one HTTP client (configuration, headers, shared state) over `transport`
//! (retries, rate limits, the `ETag` cache), with its typed endpoint methods in
//! `endpoints` and, for the repository's own CI on a commit, [`ci`]; [`error`] its error classes; [`retry`] the backoff policy and header
//! reading; `reconcile` the at-most-once create; `cost` the sum of session usage; [`poll`]
//! the poller; [`stop()`] the stand-in for the cancel endpoint GitHub does not have. Nothing
//! here knows policies, git, reports or the simulator.

mod availability;
pub mod ci;
pub mod client;
mod cost;
mod endpoints;
pub mod error;
pub mod poll;
mod reconcile;
pub mod retry;
pub mod stop;
mod transport;
pub mod types;

pub use availability::AgentAvailability;
pub use client::{
    ApiUrl, ApiUrlError, Client, ClientConfig, DEFAULT_API_URL, DEFAULT_API_VERSION, WritePacer,
    install_crypto_provider,
};
pub use cost::{Cost, task_cost};
pub use endpoints::{CreatedComment, Direction, ListQuery, ListSort, create_task_request};
pub use error::{ApiError, ErrorInfo, INSTALLATION_TOKEN_HINT, TransportKind};
pub use poll::{PollEvent, PollOptions, PollOutcome, StatePolicy, poll_task};
pub use reconcile::{CreatedTask, MarkerHints};
pub use retry::{Clock, RetryPolicy, SystemClock};
pub use stop::{StopAction, StopOptions, StopReason, StopRecord, StoppedPull, stop};
