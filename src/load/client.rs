//! The hot path: one request on a worker-owned HTTP/1.1 connection or a
//! shared HTTP/2 one, with the request timeout, reconnect on failure, and the
//! outcome classified; plus the per-run preparation (every resolved address,
//! TLS, a preflight connection to each address).
//!
//! Why raw `hyper::client::conn` rather than reqwest or hyper-util's pooled
//! client: a pool is shared state (a lock and bookkeeping per request) and
//! reqwest adds its own layers on top; measured here that costs ~10 µs of
//! CPU per request against ~4 µs for wrk. Each load thread instead owns its
//! connections outright: an HTTP/1.1 connection belongs to one request at a
//! time; an HTTP/2 connection is one of the thread's share of `connections`,
//! and requests hold clones of its sender (streams multiplex on it).

use std::cell::Cell;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use tokio::sync::Mutex;
use tokio::time::{Instant, timeout_at};

use super::connect::{self, Conn, ConnectError, Driver, Sender, Tls};
use super::recorder::Outcome;
use crate::fault_protocol;
use crate::plan::{HttpVersion, RequestTemplate, TransportPlan};
use crate::record::TransportRecord;

/// Errors preparing the client (never per request: those are counted).
/// Each renders as one line naming the URL or host, with a hint.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "target url {url} has an unsupported scheme (hint: use http://host:port or https://host:port)"
    )]
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
    #[error(
        "target host {host} does not resolve: {reason} (hint: check the host name in the target url, DNS and /etc/hosts)"
    )]
    Resolve { host: String, reason: String },
    #[error(
        "target host {host} resolved to no address (hint: check the host name in the target url, DNS and /etc/hosts)"
    )]
    NoAddress { host: String },
    #[error("target url {url} needs TLS but its TLS settings are unusable: {source}")]
    TlsConfig {
        url: String,
        #[source]
        source: crate::tls::TlsError,
    },
    #[error("target host {host} is not a valid TLS server name (hint: set tls.server_name)")]
    ServerName { host: String },
    #[error("TLS certificate of {url} ({addr}) rejected: {reason} (hint: {hint})")]
    Certificate {
        url: String,
        addr: SocketAddr,
        reason: String,
        hint: &'static str,
    },
    #[error(
        "TLS handshake with {url} ({addr}) failed: {reason} (hint: check that the port serves TLS and the tls settings, e.g. a client certificate the server requires)"
    )]
    Handshake {
        url: String,
        addr: SocketAddr,
        reason: String,
    },
    #[error("{url} ({addr}) does not speak HTTP/2: {reason} (hint: {hint})")]
    NoHttp2 {
        url: String,
        addr: SocketAddr,
        reason: String,
        hint: &'static str,
    },
    #[error(
        "target {url} is unreachable: {reason} (hint: start the service, or omit target.url to use the built-in one)"
    )]
    Unreachable { url: String, reason: String },
}

/// Everything needed to build a request and open a connection, prepared
/// once per run.
#[derive(Debug, Clone)]
pub struct Target {
    /// Every resolved address that accepted the preflight connection (all
    /// of them when none did).
    pub addrs: Vec<SocketAddr>,
    url: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    bodies: Vec<Bytes>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub version: HttpVersion,
    pub keep_alive: bool,
    /// HTTP/2 connections over the whole run (None: the default).
    pub connections: Option<NonZeroUsize>,
    tls: Option<Tls>,
    insecure: bool,
}

/// An address that refused the preflight (the run goes on without it).
#[derive(Debug, Clone)]
pub struct Skipped {
    pub addr: SocketAddr,
    pub reason: String,
}

impl Target {
    /// Resolves the base URL to all its addresses, prepares the request
    /// parts and TLS, and opens one connection to every address (TLS and
    /// HTTP/2 problems surface here, before any phase). Addresses that
    /// refuse are skipped and returned.
    pub async fn prepare(
        base: &reqwest::Url,
        req: &RequestTemplate,
        transport: &TransportPlan,
    ) -> Result<(Self, Vec<Skipped>), ClientError> {
        let url = base.as_str();
        if !matches!(base.scheme(), "http" | "https") {
            return Err(ClientError::BadScheme { url: url.into() });
        }
        let host = base
            .host_str()
            .ok_or_else(|| ClientError::NoHost { url: url.into() })?;
        let port = base.port_or_known_default().unwrap_or(80);
        let addrs = resolve(host, port).await?;
        Self::prepare_at(base, addrs, req, transport).await
    }

    /// As `prepare`, with the addresses given instead of resolved (tests
    /// of the address spread use two loopback addresses).
    pub async fn prepare_at(
        base: &reqwest::Url,
        addrs: Vec<SocketAddr>,
        req: &RequestTemplate,
        transport: &TransportPlan,
    ) -> Result<(Self, Vec<Skipped>), ClientError> {
        let url = base.as_str().to_string();
        let https = match base.scheme() {
            "http" => false,
            "https" => true,
            _ => return Err(ClientError::BadScheme { url }),
        };
        let host = base
            .host_str()
            .ok_or_else(|| ClientError::NoHost { url: url.clone() })?
            .to_string();
        let version = transport.http_version;
        let path = format!("{}{}", base.path().trim_end_matches('/'), req.path);
        let authority = match base.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let bad_path = |source| ClientError::BadPath {
            url: url.clone(),
            path: req.path.clone(),
            source,
        };
        let mut headers = HeaderMap::new();
        let uri: Uri = match version {
            // HTTP/2 carries scheme and authority as pseudo-headers, taken
            // from an absolute URI; a Host header would be redundant.
            HttpVersion::Http2 => format!("{}://{authority}{path}", base.scheme())
                .parse()
                .map_err(bad_path)?,
            HttpVersion::Http1 => {
                headers.insert(
                    HOST,
                    HeaderValue::from_str(&authority).map_err(|source| ClientError::BadHost {
                        url: url.clone(),
                        source,
                    })?,
                );
                if !transport.keep_alive {
                    headers.insert(CONNECTION, HeaderValue::from_static("close"));
                }
                path.parse().map_err(bad_path)?
            }
        };
        for (name, value) in &req.headers {
            headers.append(name.clone(), value.clone());
        }
        let tls = if https {
            Some(tls(&url, &host, transport)?)
        } else {
            None
        };
        let mut target = Self {
            addrs,
            url,
            method: req.method.clone(),
            uri,
            headers,
            bodies: req.bodies.clone(),
            timeout: req.timeout,
            connect_timeout: req.connect_timeout,
            version,
            keep_alive: transport.keep_alive,
            connections: transport.connections,
            tls,
            insecure: https && transport.tls.insecure,
        };
        let skipped = target.preflight().await?;
        Ok((target, skipped))
    }

    /// One connection per address: TCP, the TLS handshake (certificate,
    /// ALPN) and the HTTP handshake. HTTP/2 in cleartext also sends one
    /// `GET /`, the only way to learn that the server does not speak h2c;
    /// a slow answer is not held against it (stalls are what load tests
    /// measure), a garbled one is.
    async fn preflight(&mut self) -> Result<Vec<Skipped>, ClientError> {
        let mut usable = Vec::with_capacity(self.addrs.len());
        let mut skipped = Vec::new();
        for (i, &addr) in self.addrs.iter().enumerate() {
            let deadline = Instant::now() + self.connect_timeout;
            let conn = connect::open(
                addr,
                i,
                self.tls.as_ref(),
                self.version,
                deadline,
                Driver::Runtime,
            )
            .await;
            let h2c = self.version == HttpVersion::Http2 && self.tls.is_none();
            let failure = match conn {
                Ok(conn) if h2c => match self.probe(conn).await {
                    Ok(()) | Err(ConnectError::Timeout) => {
                        usable.push(addr);
                        continue;
                    }
                    Err(e) => e,
                },
                Ok(_) => {
                    usable.push(addr);
                    continue;
                }
                Err(e) => e,
            };
            skipped.push(Skipped {
                addr,
                reason: self.explain(addr, failure)?,
            });
        }
        // None answering: keep them all, so the load counts connection
        // errors (a target restarting under `load --loop`); the strict
        // `preflight` before a run turns this into an error instead.
        if !usable.is_empty() {
            self.addrs = usable;
        }
        Ok(skipped)
    }

    async fn probe(&self, conn: Conn) -> Result<(), ConnectError> {
        let mut parts = self.uri.clone().into_parts();
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        let mut req = Request::new(Full::new(Bytes::new()));
        *req.uri_mut() = Uri::from_parts(parts).unwrap_or_else(|_| self.uri.clone());
        let deadline = Instant::now() + self.connect_timeout;
        let sent = match conn.sender {
            Sender::H1(mut s) => timeout_at(deadline, s.send_request(req)).await,
            Sender::H2(mut s) => timeout_at(deadline, s.send_request(req)).await,
        };
        match sent {
            Err(_) => Err(ConnectError::Timeout),
            Ok(Err(e)) => Err(ConnectError::Http(e)),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// A failed preflight of one address: a configuration problem (TLS,
    /// HTTP/2) is an error at once; a refused or silent address is skipped.
    fn explain(&self, addr: SocketAddr, e: ConnectError) -> Result<String, ClientError> {
        let url = self.url.clone();
        match e {
            ConnectError::Timeout => Ok(format!(
                "no connection and answer within {}",
                humantime::format_duration(self.connect_timeout.max(self.timeout))
            )),
            ConnectError::Tcp(e) => Ok(e.to_string()),
            ConnectError::Tls(e) => match crate::tls::certificate_problem(&e) {
                Some((reason, hint)) => Err(ClientError::Certificate {
                    url,
                    addr,
                    reason,
                    hint,
                }),
                None => Err(ClientError::Handshake {
                    url,
                    addr,
                    reason: e.to_string(),
                }),
            },
            ConnectError::NoH2 { negotiated } => Err(ClientError::NoHttp2 {
                url,
                addr,
                reason: match negotiated {
                    Some(p) => format!("TLS negotiated {p} by ALPN"),
                    None => "the server offered no HTTP/2 by ALPN".into(),
                },
                hint: "the server supports only HTTP/1.1: use http_version = \"1.1\"",
            }),
            ConnectError::Http(e) if self.version == HttpVersion::Http2 => {
                Err(ClientError::NoHttp2 {
                    url,
                    addr,
                    reason: format!("{e} (HTTP/2 with prior knowledge, h2c)"),
                    hint: "the server speaks only HTTP/1.1 in cleartext: use http_version = \"1.1\", or an https:// url where HTTP/2 is negotiated",
                })
            }
            ConnectError::Http(e) => Ok(e.to_string()),
        }
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

    /// The target's base URL, as given.
    pub fn base_url(&self) -> &str {
        &self.url
    }

    /// Number of template bodies (request `n` sends body `n % count`).
    pub fn body_count(&self) -> usize {
        self.bodies.len()
    }

    /// `insecure = true` on an https target.
    pub fn insecure(&self) -> bool {
        self.insecure
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, ClientError> {
    let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| ClientError::Resolve {
            host: host.to_string(),
            reason: e.to_string(),
        })?
        .collect();
    // getaddrinfo lists an address once per socket type on some systems.
    let mut seen = std::collections::HashSet::new();
    addrs.retain(|a| seen.insert(*a));
    if addrs.is_empty() {
        return Err(ClientError::NoAddress {
            host: host.to_string(),
        });
    }
    Ok(addrs)
}

fn tls(url: &str, host: &str, transport: &TransportPlan) -> Result<Tls, ClientError> {
    let alpn: &[&[u8]] = match transport.http_version {
        HttpVersion::Http1 => &[crate::tls::ALPN_HTTP1],
        HttpVersion::Http2 => &[crate::tls::ALPN_H2],
    };
    let config = crate::tls::client_config(&transport.tls, alpn).map_err(|source| {
        ClientError::TlsConfig {
            url: url.to_string(),
            source,
        }
    })?;
    let name_host = transport.tls.server_name.as_deref().unwrap_or(host);
    let name = crate::tls::server_name(name_host).ok_or_else(|| ClientError::ServerName {
        host: name_host.to_string(),
    })?;
    Ok(Tls::new(config, name))
}

/// What one request sends beyond the template, and what it reads back.
#[derive(Debug, Default)]
pub struct Extra {
    /// Sent instead of the template's body `n` (a drifted copy).
    pub body: Option<Bytes>,
    /// Read this response header as the prediction id.
    pub id_header: Option<HeaderName>,
}

/// What came back for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub outcome: Outcome,
    /// The request asked for a fault and the response acknowledged it
    /// (`x-slocheck-fault-applied`).
    pub acknowledged: bool,
    /// The prediction id header, when `Extra::id_header` asked for it.
    pub prediction_id: Option<u64>,
}

impl Reply {
    fn failed(outcome: Outcome) -> Reply {
        Reply {
            outcome,
            acknowledged: false,
            prediction_id: None,
        }
    }
}

/// One load thread's view of the target: its connections, the address
/// rotation and the counters the report shows. Single-threaded (`Cell`s).
pub struct Client {
    pub target: Target,
    /// Next address index for a new connection (strided by thread count, so
    /// threads start on different addresses).
    next_addr: Cell<usize>,
    stride: usize,
    opened: Cell<u64>,
    per_addr: Box<[Cell<u64>]>,
    /// HTTP/2 with keep-alive: this thread's share of `connections`, each
    /// locked only while it is (re)connected, never per request.
    shared: Vec<Mutex<Option<Conn>>>,
    next_shared: Cell<usize>,
    /// Where new connections' driver tasks run ([`Client::in_local_set`]).
    driver: Driver,
}

/// Default HTTP/2 connections of a run: one per load thread, and at least
/// one per address.
pub fn h2_connections(target: &Target, threads: usize) -> usize {
    target
        .connections
        .map_or_else(|| threads.max(target.addrs.len()), NonZeroUsize::get)
}

impl Client {
    /// The client of load thread `index` of `threads`.
    pub fn new(target: Target, index: usize, threads: usize) -> Client {
        let shared = match (target.version, target.keep_alive) {
            (HttpVersion::Http2, true) => {
                let total = h2_connections(&target, threads);
                let mine = (total / threads + usize::from(index < total % threads)).max(1);
                (0..mine).map(|_| Mutex::new(None)).collect()
            }
            _ => Vec::new(),
        };
        Client {
            next_addr: Cell::new(index),
            stride: threads.max(1),
            opened: Cell::new(0),
            per_addr: target.addrs.iter().map(|_| Cell::new(0)).collect(),
            shared,
            next_shared: Cell::new(0),
            target,
            driver: Driver::Runtime,
        }
    }

    /// This client is used only inside a `LocalSet` (a load shard): its
    /// connections' driver tasks run there too (see [`Driver::Local`]).
    pub fn in_local_set(mut self) -> Client {
        self.driver = Driver::Local;
        self
    }

    /// Connections opened and requests per address, for the run record.
    pub fn record(&self) -> TransportRecord {
        TransportRecord {
            http_version: self.target.version,
            tls: self.target.is_tls(),
            insecure: self.target.insecure,
            keep_alive: self.target.keep_alive,
            connections_opened: self.opened.get(),
            addresses: self
                .target
                .addrs
                .iter()
                .zip(self.per_addr.iter())
                .map(|(a, n)| (*a, n.get()))
                .collect(),
        }
    }

    async fn open(&self, deadline: Instant) -> Option<Conn> {
        let t = &self.target;
        let index = self.next_addr.get() % t.addrs.len();
        self.next_addr.set(index + self.stride);
        let connect_by = deadline.min(Instant::now() + t.connect_timeout);
        let conn = connect::open(
            t.addrs[index],
            index,
            t.tls.as_ref(),
            t.version,
            connect_by,
            self.driver,
        )
        .await
        .ok()?;
        self.opened.set(self.opened.get() + 1);
        Some(conn)
    }

    /// A connection for a request: a fresh one (HTTP/1.1, or no keep-alive),
    /// or a handle on one of the thread's HTTP/2 connections.
    async fn checkout(&self, deadline: Instant) -> Option<Conn> {
        if self.shared.is_empty() {
            return self.open(deadline).await;
        }
        let i = self.next_shared.get() % self.shared.len();
        self.next_shared.set(i + 1);
        let mut entry = self.shared[i].lock().await;
        if let Some(live) = entry.as_ref().filter(|c| !c.is_closed()) {
            return live.share();
        }
        let conn = self.open(deadline).await?;
        *entry = conn.share();
        Some(conn)
    }

    /// A connection opened ahead of a request (the shard's pool bounds how
    /// many open at once); boxed like the one in `attempt`.
    pub(super) async fn connect(&self, deadline: Instant) -> Option<Conn> {
        Box::pin(self.checkout(deadline)).await
    }

    /// Send request `n` on `slot` (checking out a connection when empty),
    /// wait for the whole response, and classify it, with the fault
    /// acknowledgement and the prediction id when asked for. On any failure the
    /// slot is emptied so the next request reconnects; without keep-alive it
    /// is emptied after every request.
    pub async fn exchange(
        &self,
        slot: &mut Option<Conn>,
        n: u64,
        fault: Option<(&HeaderName, HeaderValue)>,
        extra: Extra,
    ) -> Reply {
        let deadline = Instant::now() + self.target.timeout;
        let reply = match timeout_at(deadline, self.attempt(slot, n, fault, extra, deadline)).await
        {
            Ok(done) => done,
            Err(_) => {
                *slot = None;
                Reply::failed(Outcome::Timeout)
            }
        };
        if !self.target.keep_alive {
            *slot = None;
        }
        reply
    }

    async fn attempt(
        &self,
        slot: &mut Option<Conn>,
        n: u64,
        fault: Option<(&HeaderName, HeaderValue)>,
        extra: Extra,
        deadline: Instant,
    ) -> Reply {
        // Only a request that asked for a fault looks for the
        // acknowledgement: one header-map lookup by a pre-built name, no
        // allocation, the same for HTTP/1.1 and HTTP/2.
        let asked = fault.is_some();
        let mut req = self.target.build(n, fault, extra.body);
        // A kept-alive connection the server has closed since the last
        // response fails before anything is written; it is retried once on a
        // fresh one.
        for _ in 0..2 {
            if slot.as_ref().is_none_or(Conn::is_closed) {
                // Boxed: connecting (TCP, TLS, HTTP/2 handshake) is a
                // future of kilobytes that would otherwise sit inline in
                // every request's task, to be allocated and moved on each
                // spawn though almost every request reuses a connection.
                *slot = Box::pin(self.checkout(deadline)).await;
            }
            let Some(conn) = slot.as_mut() else {
                return Reply::failed(Outcome::ConnectionError);
            };
            let addr = conn.addr;
            let sent = match &mut conn.sender {
                Sender::H1(s) => {
                    if s.ready().await.is_err() {
                        *slot = None;
                        continue;
                    }
                    s.try_send_request(req).await
                }
                Sender::H2(s) => {
                    if s.ready().await.is_err() {
                        *slot = None;
                        continue;
                    }
                    s.try_send_request(req).await
                }
            };
            match sent {
                Ok(resp) => {
                    self.count(addr);
                    let status = resp.status().as_u16();
                    let acknowledged = asked
                        && resp
                            .headers()
                            .contains_key(fault_protocol::APPLIED_HEADER_NAME);
                    // A header, not the body: no JSON parsing on the hot path.
                    let prediction_id = extra.id_header.as_ref().and_then(|h| {
                        let v = resp.headers().get(h)?;
                        v.to_str().ok()?.parse::<u64>().ok()
                    });
                    let mut body = resp.into_body();
                    while let Some(frame) = body.frame().await {
                        if frame.is_err() {
                            *slot = None;
                            return Reply::failed(Outcome::ConnectionError);
                        }
                    }
                    return Reply {
                        outcome: Outcome::Response(status),
                        acknowledged,
                        prediction_id,
                    };
                }
                Err(mut e) => {
                    *slot = None;
                    match e.take_message() {
                        Some(unsent) => req = unsent,
                        None => {
                            self.count(addr);
                            return Reply::failed(Outcome::ConnectionError);
                        }
                    }
                }
            }
        }
        Reply::failed(Outcome::ConnectionError)
    }

    fn count(&self, addr: usize) {
        let c = &self.per_addr[addr];
        c.set(c.get() + 1);
    }
}

/// Checks before anything starts that the load can reach `base` as the plan
/// says (addresses, TLS, HTTP version); warns about skipped addresses and
/// about `insecure = true`.
pub async fn preflight(plan: &crate::plan::Plan, base: &reqwest::Url) -> Result<(), ClientError> {
    let (target, skipped) = Target::prepare(base, &plan.request, &plan.transport).await?;
    if skipped.len() == target.addrs.len() {
        let reason = match skipped.as_slice() {
            [only] => only.reason.clone(),
            all => all
                .iter()
                .map(|s| format!("{}: {}", s.addr, s.reason))
                .collect::<Vec<_>>()
                .join("; "),
        };
        return Err(ClientError::Unreachable {
            url: base.to_string(),
            reason,
        });
    }
    for s in &skipped {
        eprintln!(
            "slocheck: warning: target address {} skipped: {} (the load uses the other {})",
            s.addr,
            s.reason,
            target.addrs.len()
        );
    }
    if target.insecure() {
        eprintln!(
            "slocheck: warning: TLS certificate verification is OFF for {base} (tls.insecure = true)"
        );
    }
    Ok(())
}
