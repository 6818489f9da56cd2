//! The one error type of the GitHub adapter. Every failure keeps what GitHub said (status,
//! message, documentation URL, `x-github-request-id`) and falls in one class the caller can
//! act on: authentication/permission (fix the token), rejected request (fix the input),
//! transient (rate limit, server error, transport: retried for GETs, then given up), or a
//! response that is not the JSON we expect. Messages say what to do. Nothing here ever holds
//! the token. This file does not decide retries; the client does, with [`ApiError::is_transient`].

use std::fmt;
use std::time::Duration;

use super::types::ValidationError;

/// The hint for a token GitHub refuses on the agent-tasks API.
pub const INSTALLATION_TOKEN_HINT: &str = "the agent-tasks API refuses GitHub App installation tokens such as GITHUB_TOKEN; pass a user token (PAT) as `token`";

/// What GitHub said about a failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    /// HTTP method.
    pub method: String,
    /// Path and query of the request (never the host's credentials: there are none in URLs).
    pub path: String,
    /// HTTP status.
    pub status: u16,
    /// `message` of GitHub's error body, when there was one.
    pub message: Option<String>,
    /// `documentation_url` of GitHub's error body.
    pub documentation_url: Option<String>,
    /// `x-github-request-id` header: quote it to GitHub support.
    pub request_id: Option<String>,
    /// `x-accepted-github-permissions` header: the permissions the endpoint needs.
    pub accepted_permissions: Option<String>,
}

impl fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} returned {}", self.method, self.path, self.status)?;
        if let Some(m) = &self.message {
            write!(f, " \"{m}\"")?;
        }
        let mut extra = Vec::new();
        if let Some(id) = &self.request_id {
            extra.push(format!("request id {id}"));
        }
        if let Some(p) = &self.accepted_permissions {
            extra.push(format!("needs permission {p}"));
        }
        if let Some(d) = &self.documentation_url {
            extra.push(format!("docs {d}"));
        }
        if !extra.is_empty() {
            write!(f, " ({})", extra.join("; "))?;
        }
        Ok(())
    }
}

/// How a request failed below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// No connection could be made: the request was certainly not received.
    Connect,
    /// No (complete) answer within the request timeout.
    Timeout,
    /// The connection broke after the request was (maybe) sent.
    Broken,
}

/// A failure of a GitHub request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// 401: the token is missing, invalid, expired, or of a kind the endpoint refuses.
    #[error("{info}: the token was not accepted; {hint}")]
    Unauthorized { info: Box<ErrorInfo>, hint: String },
    /// 403 without rate-limit signals: the token lacks a permission.
    #[error("{info}: permission denied; {hint}")]
    Forbidden { info: Box<ErrorInfo>, hint: String },
    /// 404: GitHub answers 404 for private resources the token cannot see.
    #[error(
        "{info}: not found, or not visible to this token; check owner/repo and the task id, that the token can read the repository, and that Copilot cloud agent is enabled for it"
    )]
    NotFound { info: Box<ErrorInfo> },
    /// 400, 409, 410, 422 and other definite refusals: the request itself is wrong.
    #[error("{info}{details}: GitHub rejected the request; {hint}", details = fmt_validation(errors))]
    Rejected {
        info: Box<ErrorInfo>,
        errors: Vec<ValidationError>,
        hint: String,
    },
    /// 429, or 403 with rate-limit headers or a "rate limit" message.
    #[error("{info}: rate limited{}, and retries gave up before the limit lifted: raise the deadline, spread runs out, or use a token with its own rate limit", fmt_wait(*retry_in))]
    RateLimited {
        info: Box<ErrorInfo>,
        retry_in: Option<Duration>,
    },
    /// 5xx.
    #[error(
        "{info}: GitHub server error that retries did not cure; try again later, and quote the request id if you contact GitHub support"
    )]
    Server { info: Box<ErrorInfo> },
    /// Connection failures and timeouts.
    #[error("{method} {path}: {}: {detail}; check `api-url` and the network", transport_what(*kind))]
    Transport {
        method: String,
        path: String,
        kind: TransportKind,
        detail: String,
    },
    /// A response body that is not the JSON we expect.
    #[error(
        "{method} {path}: the {status} response is not the expected JSON ({detail}){}; the preview API may have changed: upgrade agent-gate or report it with the request id",
        fmt_rid(request_id.as_deref())
    )]
    Decode {
        method: String,
        path: String,
        status: u16,
        request_id: Option<String>,
        detail: String,
    },
    /// An answer larger than [`MAX_RESPONSE_BYTES`](crate::adapters::github::client::MAX_RESPONSE_BYTES):
    /// reading stopped there (a misbehaving server or proxy; GitHub's answers are far smaller).
    #[error(
        "{method} {path}: the {status} answer is larger than {limit} bytes; stopped reading it \
         there (GitHub's answers are far smaller: check `api-url` and any proxy in between){}",
        fmt_rid(request_id.as_deref())
    )]
    TooLarge {
        method: String,
        path: String,
        status: u16,
        request_id: Option<String>,
        limit: usize,
    },
    /// GitHub asked us to wait (rate limit) beyond the caller's deadline; nothing was sent.
    #[error("{method} {path}: not sent: GitHub's rate limit asks to wait {}s more, past the deadline; raise the deadline or retry later", wait.as_secs())]
    WaitPastDeadline {
        method: String,
        path: String,
        wait: Duration,
    },
    /// The client cannot be built or a request cannot be formed from its inputs.
    #[error("invalid GitHub client configuration: {0}")]
    Config(String),
}

fn fmt_validation(errors: &[ValidationError]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = errors
        .iter()
        .map(|e| {
            let mut s = e.code.clone();
            if let Some(field) = &e.field {
                s = format!("{field}: {s}");
            }
            if let Some(m) = &e.message {
                s = format!("{s} ({m})");
            }
            s
        })
        .collect();
    format!(" [{}]", parts.join(", "))
}

fn fmt_wait(d: Option<Duration>) -> String {
    d.map(|d| format!(" (GitHub asked to wait {}s)", d.as_secs()))
        .unwrap_or_default()
}

fn fmt_rid(id: Option<&str>) -> String {
    id.map(|id| format!(" (request id {id})"))
        .unwrap_or_default()
}

fn transport_what(kind: TransportKind) -> &'static str {
    match kind {
        TransportKind::Connect => "could not connect",
        TransportKind::Timeout => "no answer within the request timeout",
        TransportKind::Broken => "the connection broke before a complete answer",
    }
}

impl ApiError {
    /// Worth retrying (for an idempotent request): rate limits, 5xx, transport failures.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ApiError::RateLimited { .. } | ApiError::Server { .. } | ApiError::Transport { .. }
        )
    }

    /// A problem with the token or its permissions (401, 403 without rate limit, 404).
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            ApiError::Unauthorized { .. } | ApiError::Forbidden { .. } | ApiError::NotFound { .. }
        )
    }

    /// For a non-idempotent request: the server may have acted on it although we got no
    /// success answer (timeout, broken connection, 5xx, or a success answer we could not read).
    pub fn is_ambiguous(&self) -> bool {
        match self {
            ApiError::Transport { kind, .. } => *kind != TransportKind::Connect,
            ApiError::Server { .. } => true,
            ApiError::Decode { status, .. } | ApiError::TooLarge { status, .. } => {
                (200..300).contains(status)
            }
            _ => false,
        }
    }

    /// The HTTP status, when there was a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Decode { status, .. } | ApiError::TooLarge { status, .. } => Some(*status),
            _ => self.info().map(|info| info.status),
        }
    }

    /// GitHub's `x-github-request-id`, when there was a response.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ApiError::Decode { request_id, .. } => request_id.as_deref(),
            _ => self.info().and_then(|info| info.request_id.as_deref()),
        }
    }

    /// The details GitHub sent, when there was an error response.
    pub fn info(&self) -> Option<&ErrorInfo> {
        match self {
            ApiError::Unauthorized { info, .. }
            | ApiError::Forbidden { info, .. }
            | ApiError::NotFound { info }
            | ApiError::Rejected { info, .. }
            | ApiError::RateLimited { info, .. }
            | ApiError::Server { info } => Some(info),
            _ => None,
        }
    }
}
