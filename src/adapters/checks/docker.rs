//! The Docker Engine's HTTP API on its Unix socket: as much of it as a check that runs in an
//! image of the repository's choosing needs — is the image here, pull it, create a container
//! with its limits, copy a tree into it as a tar stream, start, wait, kill, stream its logs,
//! remove it. The gate runs in a container itself (the runner mounts
//! `/var/run/docker.sock` into every container action), so it talks to the engine directly
//! instead of carrying a docker CLI, and never bind-mounts one of its own paths: the engine
//! resolves paths on the host, where the gate's paths do not exist.
//!
//! One connection per request, HTTP/1.1, API version [`API_VERSION`] (engines accept older
//! versions than their own). Bodies are read with a cap.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

/// The Engine API version every request names (Docker 20.10 and later serve it).
pub const API_VERSION: &str = "v1.41";

/// Where the engine listens when `DOCKER_HOST` names no Unix socket.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The most of an answer body read into memory (pull progress, errors, JSON).
const BODY_CAP: usize = 8 * 1024 * 1024;

/// An engine request that failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot reach the Docker engine at {}: {source}", socket.display())]
    Connect {
        socket: PathBuf,
        source: std::io::Error,
    },
    #[error("Docker engine: {method} {path} failed: {source}")]
    Http {
        method: Method,
        path: String,
        source: hyper::Error,
    },
    #[error("Docker engine: {method} {path} answered {status}: {message}")]
    Status {
        method: Method,
        path: String,
        status: u16,
        message: String,
    },
    #[error("Docker engine: {method} {path}: {reason}")]
    Answer {
        method: Method,
        path: String,
        reason: String,
    },
}

impl EngineError {
    /// The HTTP status the engine answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            EngineError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A Docker engine reached through a Unix socket.
#[derive(Debug, Clone)]
pub struct Engine {
    socket: PathBuf,
}

/// What a container is made of.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub image: String,
    /// The command, as `argv`.
    pub cmd: Vec<String>,
    /// `NAME=value` entries, on top of the image's own environment.
    pub env: Vec<String>,
    /// `uid:gid`.
    pub user: String,
    pub working_dir: String,
    /// `none`, `bridge` or `host`.
    pub network: String,
    /// A fresh anonymous volume is mounted here (writable with a read-only root).
    pub volume: String,
    /// A tmpfs of this many bytes is mounted at `/tmp`.
    pub tmp_bytes: u64,
    pub memory_bytes: u64,
    pub nano_cpus: u64,
    pub pids: u32,
    /// Labels (the gate marks its containers so a person can find strays).
    pub labels: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct Created {
    #[serde(rename = "Id")]
    id: String,
}

#[derive(Deserialize)]
struct Waited {
    #[serde(rename = "StatusCode")]
    status_code: i64,
}

#[derive(Deserialize)]
struct Message {
    message: Option<String>,
}

impl Engine {
    /// The engine at `socket`.
    pub fn at(socket: impl Into<PathBuf>) -> Engine {
        Engine {
            socket: socket.into(),
        }
    }

    /// The engine named by `DOCKER_HOST` (`unix://PATH`) in `env`, else the default socket;
    /// `None` when that socket does not exist (no engine here).
    pub fn from_env(env: &[(std::ffi::OsString, std::ffi::OsString)]) -> Option<Engine> {
        let host = env
            .iter()
            .rev()
            .find(|(k, _)| k == "DOCKER_HOST")
            .and_then(|(_, v)| v.to_str())
            .and_then(|v| v.strip_prefix("unix://"))
            .map(PathBuf::from);
        let socket = host.unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
        socket.exists().then(|| Engine::at(socket))
    }

    /// The socket this engine is reached at.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, EngineError> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|source| EngineError::Connect {
                socket: self.socket.clone(),
                source,
            })?;
        let http = |source| EngineError::Http {
            method: method.clone(),
            path: path.to_string(),
            source,
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("/{API_VERSION}{path}"))
            .header("host", "docker");
        let body = match body {
            Some((content_type, bytes)) => {
                request = request.header("content-type", content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(body))
            .map_err(|e| EngineError::Answer {
                method: method.clone(),
                path: path.to_string(),
                reason: format!("cannot build the request: {e}"),
            })?;
        sender.send_request(request).await.map_err(http)
    }

    /// One request; the answer's status and body (at most [`BODY_CAP`] bytes). A status of
    /// 400 or more is an error carrying the engine's message.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<(StatusCode, Bytes), EngineError> {
        let response = self.send(method.clone(), path, body).await?;
        let status = response.status();
        let mut body = response.into_body();
        let mut read = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|source| EngineError::Http {
                method: method.clone(),
                path: path.to_string(),
                source,
            })?;
            if let Ok(data) = frame.into_data() {
                let room = BODY_CAP.saturating_sub(read.len());
                read.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        let read = Bytes::from(read);
        if status.as_u16() >= 400 {
            let message = serde_json::from_slice::<Message>(&read)
                .ok()
                .and_then(|m| m.message)
                .unwrap_or_else(|| String::from_utf8_lossy(&read).trim().to_string());
            return Err(EngineError::Status {
                method,
                path: path.to_string(),
                status: status.as_u16(),
                message,
            });
        }
        Ok((status, read))
    }

    /// Is `image` in the engine's image store?
    pub async fn image_exists(&self, image: &str) -> Result<bool, EngineError> {
        match self
            .call(Method::GET, &format!("/images/{image}/json"), None)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Pull `image` (`name[:tag]` or `name@digest`). The engine streams progress as JSON
    /// lines; a line with `error` fails the pull even though the status was 200.
    pub async fn pull(&self, image: &str) -> Result<(), EngineError> {
        let path = format!("/images/create?fromImage={}", encode(image));
        let (_, body) = self.call(Method::POST, &path, None).await?;
        for line in body.split(|&b| b == b'\n') {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(line)
                && let Some(error) = v.get("error").and_then(|e| e.as_str())
            {
                return Err(EngineError::Answer {
                    method: Method::POST,
                    path,
                    reason: error.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Create a container; its id.
    pub async fn create(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        let labels: serde_json::Map<String, serde_json::Value> = spec
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let body = serde_json::json!({
            "Image": spec.image,
            "Cmd": spec.cmd,
            "Env": spec.env,
            "User": spec.user,
            "WorkingDir": spec.working_dir,
            "Labels": labels,
            "AttachStdin": false,
            "AttachStdout": false,
            "AttachStderr": false,
            "Tty": false,
            "HostConfig": {
                "NetworkMode": spec.network,
                "ReadonlyRootfs": true,
                "Tmpfs": { "/tmp": format!("rw,exec,nosuid,nodev,size={},mode=1777", spec.tmp_bytes) },
                "Mounts": [{ "Type": "volume", "Target": spec.volume }],
                "Memory": spec.memory_bytes,
                "MemorySwap": spec.memory_bytes,
                "NanoCpus": spec.nano_cpus,
                "PidsLimit": spec.pids,
                "CapDrop": ["ALL"],
                "SecurityOpt": ["no-new-privileges"],
                "Init": true,
            },
        });
        let path = "/containers/create";
        let (_, answer) = self
            .call(
                Method::POST,
                path,
                Some(("application/json", Bytes::from(body.to_string()))),
            )
            .await?;
        serde_json::from_slice::<Created>(&answer)
            .map(|c| c.id)
            .map_err(|e| EngineError::Answer {
                method: Method::POST,
                path: path.to_string(),
                reason: format!("no container id in the answer: {e}"),
            })
    }

    /// Extract the tar archive `tar` at `path` in the container.
    pub async fn put_archive(&self, id: &str, path: &str, tar: Vec<u8>) -> Result<(), EngineError> {
        let url = format!("/containers/{id}/archive?path={}", encode(path));
        self.call(
            Method::PUT,
            &url,
            Some(("application/x-tar", Bytes::from(tar))),
        )
        .await
        .map(drop)
    }

    /// Start a created container.
    pub async fn start(&self, id: &str) -> Result<(), EngineError> {
        self.call(Method::POST, &format!("/containers/{id}/start"), None)
            .await
            .map(drop)
    }

    /// Wait for the container to stop; its exit code.
    pub async fn wait(&self, id: &str) -> Result<i64, EngineError> {
        let path = format!("/containers/{id}/wait");
        let (_, body) = self.call(Method::POST, &path, None).await?;
        serde_json::from_slice::<Waited>(&body)
            .map(|w| w.status_code)
            .map_err(|e| EngineError::Answer {
                method: Method::POST,
                path,
                reason: format!("no exit code in the answer: {e}"),
            })
    }

    /// SIGKILL the container's processes.
    pub async fn kill(&self, id: &str) -> Result<(), EngineError> {
        self.call(Method::POST, &format!("/containers/{id}/kill"), None)
            .await
            .map(drop)
    }

    /// The container's stdout and stderr as written (the engine's multiplexed stream
    /// decoded), handed to `sink` piece by piece as it is read: the caller keeps what it
    /// wants (a check keeps the tail), so nothing is held whole here.
    pub async fn logs(&self, id: &str, mut sink: impl FnMut(&[u8])) -> Result<(), EngineError> {
        let path = format!("/containers/{id}/logs?stdout=1&stderr=1");
        let response = self.send(Method::GET, &path, None).await?;
        let status = response.status().as_u16();
        if status >= 400 {
            return Err(EngineError::Status {
                method: Method::GET,
                path,
                status,
                message: "cannot read the container's logs".into(),
            });
        }
        let mut body = response.into_body();
        let mut frames = Demux::default();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|source| EngineError::Http {
                method: Method::GET,
                path: path.clone(),
                source,
            })?;
            if let Ok(data) = frame.into_data() {
                frames.feed(&data, &mut sink);
            }
        }
        Ok(())
    }

    /// Remove the container and its anonymous volumes, stopping it first if it runs.
    pub async fn remove(&self, id: &str) -> Result<(), EngineError> {
        match self
            .call(
                Method::DELETE,
                &format!("/containers/{id}?force=1&v=1"),
                None,
            )
            .await
        {
            Err(e) if e.status() == Some(404) => Ok(()),
            other => other.map(drop),
        }
    }
}

/// Percent-encode a path segment or query value.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The engine's log stream without a TTY: frames of an 8-byte header (stream, 3 zero bytes,
/// big-endian length) and the payload.
#[derive(Default)]
struct Demux {
    pending: Vec<u8>,
}

impl Demux {
    fn feed(&mut self, data: &[u8], mut out: impl FnMut(&[u8])) {
        self.pending.extend_from_slice(data);
        let mut at = 0;
        while self.pending.len() >= at + 8 {
            let len = u32::from_be_bytes([
                self.pending[at + 4],
                self.pending[at + 5],
                self.pending[at + 6],
                self.pending[at + 7],
            ]) as usize;
            if self.pending.len() < at + 8 + len {
                break;
            }
            out(&self.pending[at + 8..at + 8 + len]);
            at += 8 + len;
        }
        self.pending.drain(..at);
    }
}

/// A tar archive of the tree at `root`, under the directory `prefix`, every entry owned by
/// `uid:gid`: directories, regular files with their modes, symbolic links as links.
pub fn tar_tree(root: &Path, prefix: &str, uid: u32, gid: u32) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let entry_header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_uid(u64::from(uid));
        header.set_gid(u64::from(gid));
        header.set_mtime(0);
        header
    };
    let mut top = entry_header(tar::EntryType::Directory, 0o755, 0);
    builder.append_data(&mut top, prefix, std::io::empty())?;
    let mut stack = vec![(root.to_path_buf(), PathBuf::from(prefix))];
    while let Some((dir, name)) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let inside = name.join(entry.file_name());
            let meta = std::fs::symlink_metadata(entry.path())?;
            let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
            if kind.is_symlink() {
                let mut header = entry_header(tar::EntryType::Symlink, 0o777, 0);
                builder.append_link(&mut header, &inside, std::fs::read_link(entry.path())?)?;
            } else if kind.is_dir() {
                let mut header = entry_header(tar::EntryType::Directory, mode, 0);
                builder.append_data(&mut header, &inside, std::io::empty())?;
                stack.push((entry.path(), inside));
            } else if kind.is_file() {
                let mut header = entry_header(tar::EntryType::Regular, mode, meta.len());
                builder.append_data(&mut header, &inside, std::fs::File::open(entry.path())?)?;
            }
        }
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_frames_are_decoded_across_reads() {
        let mut stream = Vec::new();
        for (kind, text) in [(1u8, "out one\n"), (2, "err two\n"), (1, "out three\n")] {
            stream.extend_from_slice(&[kind, 0, 0, 0]);
            stream.extend_from_slice(&u32::try_from(text.len()).unwrap().to_be_bytes());
            stream.extend_from_slice(text.as_bytes());
        }
        let mut demux = Demux::default();
        let mut read = Vec::new();
        for chunk in stream.chunks(5) {
            demux.feed(chunk, |p| read.extend_from_slice(p));
        }
        assert_eq!(
            String::from_utf8(read).unwrap(),
            "out one\nerr two\nout three\n"
        );
    }

    #[test]
    fn names_are_percent_encoded() {
        assert_eq!(encode("python:3.12-slim"), "python%3A3.12-slim");
        assert_eq!(encode("a/b@sha256:0f"), "a%2Fb%40sha256%3A0f");
    }
}
