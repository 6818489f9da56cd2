//! Fetching from a remote ([`Git::fetch`], [`Git::fetch_with_token`]) and the token
//! authentication every remote operation shares: the checked arguments of a fetch, the
//! `http.extraheader` that one git process gets through `GIT_CONFIG_*` variables (never a
//! command line, never a file), and [`plain_then_token`], which retries with the token only
//! when the plain attempt fails.

use std::ffi::OsStr;

use super::{Git, GitError};
use crate::core::secret::Token;

impl Git {
    /// Fetch `refspecs` from `remote` (a remote name, a URL, or a path to a repository),
    /// without tags or submodules, writing only the refs the refspecs name.
    pub fn fetch(&self, remote: &str, refspecs: &[&str]) -> Result<(), GitError> {
        let args = fetch_args(remote, refspecs)?;
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        self.run_env(&args, &[]).map(drop)
    }

    /// [`Git::fetch`], authenticating HTTPS with `token` (as actions/checkout does:
    /// `AUTHORIZATION: basic x-access-token:<token>`) for a workspace checked out with
    /// `persist-credentials: false`. The header reaches git through `GIT_CONFIG_*`
    /// variables of that one process — never its command line, never a file.
    pub fn fetch_with_token(
        &self,
        remote: &str,
        refspecs: &[&str],
        token: &str,
    ) -> Result<(), GitError> {
        let args = fetch_args(remote, refspecs)?;
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        with_token(Some(token), |env| self.run_env(&args, env)).map(drop)
    }
}

/// The arguments of every fetch: checked `remote` and `refspecs` (never taken as options),
/// no tags, no submodules, and only the refs the refspecs name are written.
pub(super) fn fetch_args<'a>(
    remote: &'a str,
    refspecs: &[&'a str],
) -> Result<Vec<&'a str>, GitError> {
    if remote.is_empty() || remote.starts_with('-') || remote.contains('\0') {
        return Err(GitError::BadArgument {
            command: "fetch",
            what: "remote",
            arg: remote.to_string(),
            reason: "a remote must be a name, URL or path that does not start with '-'",
        });
    }
    if let Some(bad) = refspecs.iter().find(|r| r.is_empty() || r.contains('\0')) {
        return Err(GitError::BadArgument {
            command: "fetch",
            what: "refspec",
            arg: (*bad).to_string(),
            reason: "a refspec must be non-empty and contain no NUL",
        });
    }
    let mut args = vec![
        "fetch",
        "--no-tags",
        "--quiet",
        "--no-recurse-submodules",
        "--no-auto-gc",
        // No opportunistic update of `refs/remotes/*`: only the refspecs given are
        // written, so a fetch into private refs leaves the workspace's refs alone.
        "--refmap=",
        "--",
        remote,
    ];
    args.extend_from_slice(refspecs);
    Ok(args)
}

/// The environment that makes one git process send `token` as actions/checkout does
/// (`AUTHORIZATION: basic x-access-token:<token>`) through `GIT_CONFIG_*` variables: never
/// on a command line, never in a file.
fn token_env(token: &str) -> [(&'static str, String); 3] {
    let header = format!(
        "AUTHORIZATION: basic {}",
        base64(format!("x-access-token:{token}").as_bytes())
    );
    [
        ("GIT_CONFIG_COUNT", "1".to_string()),
        ("GIT_CONFIG_KEY_0", "http.extraheader".to_string()),
        ("GIT_CONFIG_VALUE_0", header),
    ]
}

/// Run the remote operation `op` without a token, and once more with `token` when that
/// fails — a workspace checked out with `persist-credentials: false` has no credentials of
/// its own. Returns the result and whether the token was needed; when both attempts fail,
/// the plain attempt's error (the token never appears in a message).
pub fn plain_then_token<T>(
    token: Option<&str>,
    op: impl Fn(Option<&str>) -> Result<T, GitError>,
) -> Result<(T, bool), GitError> {
    match op(None) {
        Ok(v) => Ok((v, false)),
        Err(plain) => match token {
            Some(t) => op(Some(t)).map(|v| (v, true)).map_err(|_| plain),
            None => Err(plain),
        },
    }
}

/// How a remote is reached: plain git first and, when that fails, with the token — the
/// first operation that works decides, and later ones go straight to what worked. The
/// shared stores on a remote (the admission refs, the write-pace ledger) keep one each.
#[derive(Debug, Clone, Default)]
pub struct RemoteAuth {
    token: Option<Token>,
    /// Whether the token is needed (decided by the first operation that works).
    use_token: Option<bool>,
}

impl RemoteAuth {
    /// With `token` (an empty one counts as none).
    pub fn new(token: Option<Token>) -> RemoteAuth {
        RemoteAuth {
            token: token.filter(|t| !t.expose().trim().is_empty()),
            use_token: None,
        }
    }

    /// Whether an operation has reached the remote yet.
    pub fn has_reached(&self) -> bool {
        self.use_token.is_some()
    }

    /// Run `op` with the token it needs ([`plain_then_token`] until decided).
    pub fn run<T>(
        &mut self,
        op: impl Fn(Option<&str>) -> Result<T, GitError>,
    ) -> Result<T, GitError> {
        if let Some(needed) = self.use_token {
            return op(self.token.as_ref().map(Token::expose).filter(|_| needed));
        }
        let (v, needed) = plain_then_token(self.token.as_ref().map(Token::expose), op)?;
        self.use_token = Some(needed);
        Ok(v)
    }
}

/// Call `f` with the environment that authenticates one git process with `token` (none
/// without one).
pub(super) fn with_token<T>(token: Option<&str>, f: impl FnOnce(&[(&str, &OsStr)]) -> T) -> T {
    let owned = token.map(token_env);
    let env: Vec<(&str, &OsStr)> = owned
        .iter()
        .flatten()
        .map(|(k, v)| (*k, OsStr::new(v)))
        .collect();
    f(&env)
}

/// Standard base64 with padding (for one HTTP header; not worth a dependency).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(input.as_bytes()), expected);
        }
    }
}
