//! The HTTP front of the simulator: the single handler every request enters. It reads the
//! body, logs the request on arrival (and its answer), counts it per endpoint for faults,
//! runs it through GitHub's order of checks (auth, rate limits, injected faults, then the
//! endpoint) and answers or drops the connection. It owns transport, the order of checks and
//! the common headers, not the endpoints or the state they change.

mod conn;
mod faults;
mod limits;
mod pipeline;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};

use super::reply::Reply;
use super::route;
use super::state::{Incoming, Sim};
use super::store::LoggedRequest;
pub(crate) use conn::{ConnHandle, SimListener};

/// API versions the simulator accepts (reference §1).
pub const API_VERSIONS: [&str; 2] = ["2022-11-28", "2026-03-10"];
const DOCS: &str = "https://docs.github.com/rest";
const BODY_LIMIT: usize = 4 << 20;

enum Outcome {
    Reply(Reply),
    Drop,
}

/// The single handler of every request.
pub(crate) async fn handle(
    axum::extract::State(sim): axum::extract::State<Arc<Sim>>,
    req: Request<Body>,
) -> Response<Body> {
    let conn = req
        .extensions()
        .get::<ConnectInfo<ConnHandle>>()
        .map(|c| c.0.clone());
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map(|b| b.to_vec());
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let matched = route::match_path(&method, &path);
    let request_id = request_id();

    // Log on arrival, so a request whose handling is abandoned (client timeout) is counted.
    let (log_index, nth) = {
        let mut store = sim.store();
        let mut shown = String::from_utf8_lossy(body.as_deref().unwrap_or_default()).into_owned();
        if shown.len() > 64 << 10 {
            let mut cut = 64 << 10;
            while !shown.is_char_boundary(cut) {
                cut -= 1;
            }
            shown.truncate(cut);
        }
        store.log.push(LoggedRequest {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            status: None,
            at: jiff::Timestamp::now(),
            endpoint: matched.as_ref().map(|m| m.endpoint),
            request_id: request_id.clone(),
            body: shown,
            answered_at: None,
            response_headers: Vec::new(),
            user: match pipeline::bearer(&parts.headers) {
                pipeline::Auth::Token(t) => Some(super::store::user_id_for_token(&t)),
                _ => None,
            },
        });
        let nth = matched.as_ref().map_or(0, |m| {
            let c = store.counters.entry(m.endpoint).or_insert(0);
            *c += 1;
            *c
        });
        (store.log.len() - 1, nth)
    };

    let outcome = match body {
        Ok(body) => {
            let inc = Incoming {
                method,
                path,
                query,
                headers: parts.headers,
                body,
                request_id: request_id.clone(),
                matched,
            };
            pipeline::pipeline(&sim, &inc, nth).await
        }
        Err(_) => Outcome::Reply(Reply::error(413, "Payload too large", DOCS)),
    };
    match outcome {
        Outcome::Reply(reply) => {
            {
                let mut store = sim.store();
                let logged = &mut store.log[log_index];
                logged.status = Some(reply.status);
                logged.answered_at = Some(jiff::Timestamp::now());
                logged.response_headers = reply
                    .headers
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), v.clone()))
                    .collect();
            }
            reply.into_response()
        }
        Outcome::Drop => {
            if let Some(c) = conn {
                c.kill();
            }
            // Never written: the connection fails first.
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    }
}

/// `XXXX:XXXXXX:XXXXXXX:XXXXXXX:XXXXXXXX`, like GitHub's request ids.
fn request_id() -> String {
    let u = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase();
    format!(
        "{}:{}:{}:{}:{}",
        &u[0..4],
        &u[4..10],
        &u[10..17],
        &u[17..24],
        &u[24..32]
    )
}
