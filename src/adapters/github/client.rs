//! The HTTP client for GitHub's REST API: its configuration ([`ClientConfig`], the
//! [`Token`] that never shows in `Debug`), one `reqwest` client (rustls with the ring
//! provider), the one place that sets `Accept`, `X-GitHub-Api-Version`, `User-Agent` and
//! the bearer token, the state its clones share (the `ETag` cache, the "not before"
//! instant of a rate limit), call deadlines and URLs under the base. Sending, retries and
//! the `ETag` cache's use are in `transport`, the typed endpoint methods in `endpoints`;
//! reconciliation of an ambiguous create lives in `reconcile`, the poller in `poll`, `stop`
//! in `stop`.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::time::{Duration, SystemTime};

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderValue};
use tokio::time::Instant;

use super::error::ApiError;
use super::retry::{Clock, Retry, RetryPolicy, SystemClock};
use crate::core::secret::Token;

/// Default API base URL.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// The REST API version the client sends.
pub const DEFAULT_API_VERSION: &str = "2026-03-10";

/// What paces the client's writes (POST, PATCH, PUT, DELETE) across the runs that share a
/// token: asked before each write is sent, it answers when the write may go. Reading
/// requests are never paced.
pub trait WritePacer: Send + Sync + fmt::Debug {
    /// Reserve the next write: the wall-clock time at which it may be sent (now or later).
    fn reserve(&self) -> Pin<Box<dyn Future<Output = SystemTime> + Send + '_>>;
}

/// Everything a [`Client`] needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL: `https://api.github.com`, a GHES `https://host/api/v3`, or the simulator.
    pub api_url: String,
    pub token: Token,
    /// Sent as `X-GitHub-Api-Version`.
    pub api_version: String,
    pub user_agent: String,
    /// Timeout of one request (connect to last body byte).
    pub request_timeout: Duration,
    pub owner: String,
    pub repo: String,
    /// The token's user id, when known: narrows reconciliation lists with `creator_id`.
    pub creator_id: Option<i64>,
    pub retry: RetryPolicy,
    /// Wall clock for epoch-second headers and event stamps.
    pub clock: Arc<dyn Clock>,
    /// Paces writes across runs (`write-pace`); `None`: writes go at once.
    pub pacer: Option<Arc<dyn WritePacer>>,
}

impl ClientConfig {
    /// A configuration with the defaults: api.github.com, version 2026-03-10, 30 s timeout.
    pub fn new(
        token: impl Into<Token>,
        owner: impl Into<String>,
        repo: impl Into<String>,
    ) -> ClientConfig {
        ClientConfig {
            api_url: DEFAULT_API_URL.to_string(),
            token: token.into(),
            api_version: DEFAULT_API_VERSION.to_string(),
            user_agent: concat!("agent-gate/", env!("CARGO_PKG_VERSION")).to_string(),
            request_timeout: Duration::from_secs(30),
            owner: owner.into(),
            repo: repo.into(),
            creator_id: None,
            retry: RetryPolicy::default(),
            clock: Arc::new(SystemClock),
            pacer: None,
        }
    }

    /// Same, with another base URL (GHES, the simulator).
    #[must_use]
    pub fn with_api_url(mut self, api_url: impl Into<String>) -> ClientConfig {
        self.api_url = api_url.into();
        self
    }
}

/// A successful (or 304-revalidated) response.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Body,
    pub request_id: Option<String>,
    /// GitHub answered `304 Not Modified` to the cached `ETag` (the body is the cached one):
    /// the request did not count against the primary rate limit.
    pub revalidated: bool,
}

/// A response body, shared between a reply and the `ETag` cache.
pub(crate) type Body = Arc<Vec<u8>>;

#[derive(Debug, Clone)]
pub(super) struct CachedGet {
    pub(super) etag: String,
    pub(super) body: Body,
}

pub(super) const ETAG_CACHE_LIMIT: usize = 256;

/// The largest answer the client reads (10 MiB): bodies are streamed and reading stops
/// here with [`ApiError::TooLarge`]. A page of 100 tasks with
/// their sessions is well under 1 MiB.
pub const MAX_RESPONSE_BYTES: usize = 10 << 20;

pub(super) struct Inner {
    pub(super) http: reqwest::Client,
    pub(super) base: Url,
    pub(super) token: Token,
    pub(super) owner: String,
    pub(super) repo: String,
    pub(super) creator_id: Option<i64>,
    pub(super) retry: RetryPolicy,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) pacer: Option<Arc<dyn WritePacer>>,
    /// No request of this client is sent before this instant.
    pub(super) not_before: Mutex<Option<Instant>>,
    pub(super) etags: Mutex<HashMap<String, CachedGet>>,
}

/// Observer of retries: each one announced before its wait.
pub(crate) type RetryObserver<'a> = &'a mut (dyn FnMut(&Retry<'_>) + Send);

/// The default observer: each retry announced on stderr as one warning line.
pub(crate) fn announce_retry(retry: &Retry<'_>) {
    tracing::warn!("{retry}");
}

/// The GitHub REST client. Cheap to clone; clones share the connection pool, the `ETag` cache
/// and the rate-limit "not before" instant.
#[derive(Clone)]
pub struct Client {
    pub(super) inner: Arc<Inner>,
    pub(super) deadline: Option<Instant>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base.as_str())
            .field("owner", &self.inner.owner)
            .field("repo", &self.inner.repo)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

static CRYPTO: Once = Once::new();

/// Install rustls' ring provider as the process default (once; a provider someone else
/// installed first is kept).
pub fn install_crypto_provider() {
    CRYPTO.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn header(value: &str, what: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(value).map_err(|_| {
        ApiError::Config(format!(
            "{what} contains characters not allowed in an HTTP header"
        ))
    })
}

/// An API base URL a [`Client`] can use: `http` or `https`, with a host, its query and
/// fragment dropped. Parsed once where the URL is given (the `api-url` input), so a
/// malformed one is refused before anything runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiUrl(Url);

/// An `api-url` that is not one a client can use (the message names it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiUrlError {
    #[error("api-url `{url}` is not a URL: {reason}")]
    NotAUrl { url: String, reason: String },
    #[error("api-url `{url}` must be an http(s) URL such as {DEFAULT_API_URL}")]
    NotHttp { url: String },
}

impl ApiUrl {
    /// Parse `text` (surrounding blanks ignored).
    pub fn parse(text: &str) -> Result<ApiUrl, ApiUrlError> {
        let mut url = Url::parse(text.trim()).map_err(|e| ApiUrlError::NotAUrl {
            url: text.to_string(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(ApiUrlError::NotHttp {
                url: text.to_string(),
            });
        }
        url.set_query(None);
        url.set_fragment(None);
        Ok(ApiUrl(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl Default for ApiUrl {
    /// `https://api.github.com`.
    fn default() -> ApiUrl {
        ApiUrl::parse(DEFAULT_API_URL).expect("the default API URL parses")
    }
}

impl fmt::Display for ApiUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl Client {
    /// Build a client. Fails on an unusable base URL or header values (never echoing the token).
    pub fn new(config: ClientConfig) -> Result<Client, ApiError> {
        install_crypto_provider();
        let base = ApiUrl::parse(&config.api_url)
            .map_err(|e| ApiError::Config(e.to_string()))?
            .0;
        if config.token.expose().trim().is_empty() {
            return Err(ApiError::Config(
                "the token is empty; pass a user token (PAT) as `token`".to_string(),
            ));
        }
        if config.owner.is_empty() || config.repo.is_empty() {
            return Err(ApiError::Config(
                "owner and repo must not be empty".to_string(),
            ));
        }
        // The one place the standard headers and the credentials are set.
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            header(&config.api_version, "api_version")?,
        );
        headers.insert(
            reqwest::header::USER_AGENT,
            header(&config.user_agent, "user_agent")?,
        );
        let mut auth = header(&format!("Bearer {}", config.token.expose()), "the token")?;
        auth.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, auth);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| ApiError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                token: config.token,
                owner: config.owner,
                repo: config.repo,
                creator_id: config.creator_id,
                retry: config.retry,
                clock: config.clock,
                pacer: config.pacer,
                not_before: Mutex::new(None),
                etags: Mutex::new(HashMap::new()),
            }),
            deadline: None,
        })
    }

    /// A handle on the same client whose retries (and waits for rate limits) end at `deadline`.
    #[must_use]
    pub fn with_deadline(&self, deadline: Instant) -> Client {
        Client {
            inner: Arc::clone(&self.inner),
            deadline: Some(deadline),
        }
    }

    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    pub fn repo(&self) -> &str {
        &self.inner.repo
    }

    /// The id given as `creator_id` in the configuration.
    pub fn creator_id(&self) -> Option<i64> {
        self.inner.creator_id
    }

    /// The wall clock the client reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Now, as the client's (injected) clock tells it (the epoch when out of range).
    pub fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::try_from(self.inner.clock.now()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// No request of this client is sent before this instant (a rate limit's reset or a
    /// `Retry-After`), if one is pending.
    pub fn not_before(&self) -> Option<Instant> {
        let nb = *self
            .inner
            .not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        nb.filter(|nb| *nb > Instant::now())
    }

    pub(super) fn push_not_before(&self, at: Instant) {
        let mut nb = self
            .inner
            .not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if nb.is_none_or(|cur| cur < at) {
            *nb = Some(at);
        }
    }

    /// The deadline of the current call: the handle's, or now + `max_elapsed`.
    pub(crate) fn call_deadline(&self) -> Instant {
        self.deadline
            .unwrap_or_else(|| Instant::now() + self.inner.retry.max_elapsed)
    }

    // ---- URLs ------------------------------------------------------------------------

    pub(super) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        {
            // `cannot_be_a_base` was refused in `new`, so this cannot fail.
            if let Ok(mut path) = url.path_segments_mut() {
                path.pop_if_empty();
                path.extend(segments);
            }
        }
        url
    }

    pub(super) fn tasks_url(&self) -> Url {
        self.url(&[
            "agents",
            "repos",
            &self.inner.owner,
            &self.inner.repo,
            "tasks",
        ])
    }

    /// The GraphQL endpoint beside the REST base: `https://api.github.com/graphql`, and on
    /// GitHub Enterprise Server `https://HOST/api/graphql` for the REST base
    /// `https://HOST/api/v3`.
    pub(super) fn graphql_url(&self) -> Url {
        let mut url = self.inner.base.clone();
        let path = url.path().trim_end_matches('/').to_string();
        match path.strip_suffix("/api/v3") {
            Some(root) => url.set_path(&format!("{root}/api/graphql")),
            None => url.set_path(&format!("{path}/graphql")),
        }
        url
    }

    pub(super) fn repo_url(&self, rest: &[&str]) -> Url {
        let mut segs = vec!["repos", self.inner.owner.as_str(), self.inner.repo.as_str()];
        segs.extend_from_slice(rest);
        self.url(&segs)
    }

    pub(super) fn same_origin(&self, url: &Url) -> bool {
        url.scheme() == self.inner.base.scheme()
            && url.host_str() == self.inner.base.host_str()
            && url.port_or_known_default() == self.inner.base.port_or_known_default()
    }
}
