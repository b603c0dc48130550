//! The HTTP/1.1 hot path: one request on a worker-owned connection, with the
//! request timeout, reconnect on failure, and the outcome classified.
//!
//! Why raw `hyper::client::conn::http1` rather than reqwest or hyper-util's
//! pooled client: a pool is shared state (a lock and bookkeeping per request)
//! and reqwest adds its own layers on top; measured here that costs ~10 µs of
//! CPU per request against ~4 µs for wrk. Each worker instead owns its
//! connections outright (a handshake per connection, no pool, no lock), which
//! is all a load generator needs since every request goes to one origin.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::recorder::Outcome;
use crate::plan::RequestTemplate;

/// Errors preparing the client (never per request: those are counted).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("https targets are not supported by the load engine yet (target {url})")]
    HttpsUnsupported { url: String },
    #[error("target url {url} has an unsupported scheme (hint: use http://host:port)")]
    BadScheme { url: String },
    #[error("target url {url} has no host")]
    NoHost { url: String },
    #[error("request path {path:?} joined to {url} is not a valid URI")]
    BadPath {
        url: String,
        path: String,
        #[source]
        source: http::uri::InvalidUri,
    },
    #[error("host header for {url} is invalid")]
    BadHost {
        url: String,
        #[source]
        source: http::header::InvalidHeaderValue,
    },
    #[error("resolving target {host}:{port} failed (hint: check the target url)")]
    Resolve {
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("target {host}:{port} resolved to no address")]
    NoAddress { host: String, port: u16 },
}

/// Everything needed to build a request, prepared once per run.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    bodies: Vec<Bytes>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

impl Target {
    /// Resolve the base URL once and prepare the request parts.
    pub async fn prepare(base: &reqwest::Url, req: &RequestTemplate) -> Result<Self, ClientError> {
        let url = base.as_str().to_string();
        match base.scheme() {
            "http" => {}
            "https" => return Err(ClientError::HttpsUnsupported { url }),
            _ => return Err(ClientError::BadScheme { url }),
        }
        let host = base
            .host_str()
            .ok_or_else(|| ClientError::NoHost { url: url.clone() })?
            .to_string();
        let port = base.port_or_known_default().unwrap_or(80);
        let addr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|source| ClientError::Resolve {
                host: host.clone(),
                port,
                source,
            })?
            .next()
            .ok_or_else(|| ClientError::NoAddress {
                host: host.clone(),
                port,
            })?;
        let path = format!("{}{}", base.path().trim_end_matches('/'), req.path);
        let uri: Uri = path.parse().map_err(|source| ClientError::BadPath {
            url: url.clone(),
            path: req.path.clone(),
            source,
        })?;
        let authority = match base.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            HOST,
            HeaderValue::from_str(&authority)
                .map_err(|source| ClientError::BadHost { url, source })?,
        );
        for (name, value) in &req.headers {
            headers.append(name.clone(), value.clone());
        }
        Ok(Self {
            addr,
            method: req.method.clone(),
            uri,
            headers,
            bodies: req.bodies.clone(),
            timeout: req.timeout,
            connect_timeout: req.connect_timeout,
        })
    }

    fn build(
        &self,
        n: u64,
        fault: Option<(&HeaderName, HeaderValue)>,
        body: Option<Bytes>,
    ) -> Request<Full<Bytes>> {
        let body = match (body, self.bodies.len()) {
            (Some(b), _) => b,
            (None, 0) => Bytes::new(),
            (None, len) => self.bodies[(n % len as u64) as usize].clone(),
        };
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        if let Some((name, value)) = fault {
            req.headers_mut().insert(name.clone(), value);
        }
        req
    }
}

impl Target {
    /// Number of template bodies (request `n` sends body `n % count`).
    pub fn body_count(&self) -> usize {
        self.bodies.len()
    }
}

/// A worker's connection slot: empty until the first request or after a
/// failure, then reused for keep-alive.
pub type Conn = SendRequest<Full<Bytes>>;

async fn connect(target: &Target, deadline: Instant) -> Option<Conn> {
    let connect_by = deadline.min(Instant::now() + target.connect_timeout);
    let stream = timeout_at(connect_by, TcpStream::connect(target.addr))
        .await
        .ok()?
        .ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = timeout_at(connect_by, http1::handshake(TokioIo::new(stream)))
        .await
        .ok()?
        .ok()?;
    // The connection task ends when the sender is dropped or the peer closes.
    tokio::task::spawn_local(conn);
    Some(sender)
}

/// What one request sends beyond the template, and what it reads back.
#[derive(Debug, Default)]
pub struct Extra {
    /// Sent instead of the template's body `n` (a drifted copy).
    pub body: Option<Bytes>,
    /// Read this response header as the prediction id.
    pub id_header: Option<HeaderName>,
}

/// Send request `n` on `slot` (connecting when empty), wait for the whole
/// response, and classify it, with the prediction id when asked for. On any
/// failure the connection is dropped so the next request reconnects.
pub async fn exchange(
    target: &Target,
    slot: &mut Option<Conn>,
    n: u64,
    fault: Option<(&HeaderName, HeaderValue)>,
    extra: Extra,
) -> (Outcome, Option<u64>) {
    let deadline = Instant::now() + target.timeout;
    match timeout_at(deadline, attempt(target, slot, n, fault, extra, deadline)).await {
        Ok(outcome) => outcome,
        Err(_) => {
            *slot = None;
            (Outcome::Timeout, None)
        }
    }
}

async fn attempt(
    target: &Target,
    slot: &mut Option<Conn>,
    n: u64,
    fault: Option<(&HeaderName, HeaderValue)>,
    extra: Extra,
    deadline: Instant,
) -> (Outcome, Option<u64>) {
    let mut req = target.build(n, fault, extra.body);
    // A kept-alive connection the server has closed since the last response
    // fails before anything is written; it is retried once on a fresh one.
    for _ in 0..2 {
        if slot.as_ref().is_none_or(|c| c.is_closed()) {
            *slot = connect(target, deadline).await;
        }
        let Some(conn) = slot.as_mut() else {
            return (Outcome::ConnectionError, None);
        };
        if conn.ready().await.is_err() {
            *slot = None;
            continue;
        }
        match conn.try_send_request(req).await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                // A header, not the body: no JSON parsing on the hot path.
                let id = extra.id_header.as_ref().and_then(|h| {
                    let v = resp.headers().get(h)?;
                    v.to_str().ok()?.parse::<u64>().ok()
                });
                let mut body = resp.into_body();
                while let Some(frame) = body.frame().await {
                    if frame.is_err() {
                        *slot = None;
                        return (Outcome::ConnectionError, None);
                    }
                }
                return (Outcome::Response(status), id);
            }
            Err(mut e) => {
                *slot = None;
                match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return (Outcome::ConnectionError, None),
                }
            }
        }
    }
    (Outcome::ConnectionError, None)
}
