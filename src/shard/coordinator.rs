//! The coordinator's HTTP side: the barrier (shards register; once all N
//! have, one absolute start time is announced to every long-polling
//! shard) and the collector (each shard posts its record). Every route but
//! `/healthz` wants the bearer token; records of another scenario, seed or
//! shard count, and duplicate indices, are refused with 409 and one log
//! line. Also serves the Alertmanager webhook recorder at
//! `/receiver/{name}`, so `notified` works where Alertmanager runs
//! elsewhere.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::wire::{
    Identity, RECORD_PATH, REGISTER_PATH, Refusal, Register, Registered, ShardRecord,
};
use crate::alertmanager::payload::Notification;
use crate::error::Error;

/// How long one registration request is held open waiting for the start.
const LONG_POLL: Duration = Duration::from_secs(20);

struct Board {
    /// Index → instance of the process that registered it.
    registered: BTreeMap<u64, u64>,
    records: BTreeMap<u64, ShardRecord>,
}

struct Shared {
    identity: Identity,
    token: Option<String>,
    board: Mutex<Board>,
    start: watch::Sender<Option<u64>>,
    changed: Notify,
    notifications: Arc<Mutex<Vec<Notification>>>,
}

/// A running coordinator. Dropping it stops the server.
pub struct Coordinator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

fn refuse(status: StatusCode, msg: String) -> Response {
    eprintln!(
        "slocheck: coordinator: refused ({}): {msg}",
        status.as_u16()
    );
    (status, Json(Refusal { error: msg })).into_response()
}

async fn auth(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if let Some(token) = &s.token {
        let given = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            let what = if given.is_some() { "a wrong" } else { "no" };
            return refuse(
                StatusCode::UNAUTHORIZED,
                format!(
                    "{} {} with {what} bearer token",
                    req.method(),
                    req.uri().path()
                ),
            );
        }
    }
    next.run(req).await
}

async fn register(State(s): State<Arc<Shared>>, Json(r): Json<Register>) -> Response {
    if let Some(why) = s.identity.mismatch(&r.identity, r.index) {
        return refuse(StatusCode::CONFLICT, why);
    }
    {
        let Ok(mut board) = s.board.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        match board.registered.get(&r.index) {
            Some(&other) if other != r.instance => {
                return refuse(
                    StatusCode::CONFLICT,
                    format!(
                        "shard {} is already registered by another process (hint: each shard needs its own index)",
                        r.index
                    ),
                );
            }
            Some(_) => {}
            None => {
                board.registered.insert(r.index, r.instance);
                eprintln!(
                    "slocheck: coordinator: shard {}/{} registered ({} of {})",
                    r.index,
                    s.identity.shards,
                    board.registered.len(),
                    s.identity.shards
                );
            }
        }
    }
    s.changed.notify_waiters();
    let mut rx = s.start.subscribe();
    let _ = tokio::time::timeout(LONG_POLL, rx.wait_for(Option::is_some)).await;
    let registered = s.board.lock().map_or(0, |b| b.registered.len() as u64);
    let start = *rx.borrow();
    Json(Registered {
        start_unix_ms: start,
        registered,
        shards: s.identity.shards,
    })
    .into_response()
}

async fn record(State(s): State<Arc<Shared>>, Json(r): Json<ShardRecord>) -> Response {
    if let Some(why) = s.identity.mismatch(&r.identity, r.index) {
        return refuse(StatusCode::CONFLICT, why);
    }
    if let Err(e) = r.to_part() {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("shard {}'s record is damaged: {e}", r.index),
        );
    }
    {
        let Ok(mut board) = s.board.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        if board.registered.get(&r.index) != Some(&r.instance) {
            return refuse(
                StatusCode::CONFLICT,
                format!(
                    "a record for shard {} from a process that did not register it",
                    r.index
                ),
            );
        }
        if board.records.contains_key(&r.index) {
            return refuse(
                StatusCode::CONFLICT,
                format!("a second record for shard {}", r.index),
            );
        }
        eprintln!(
            "slocheck: coordinator: shard {}/{} reported",
            r.index, s.identity.shards
        );
        board.records.insert(r.index, r);
    }
    s.changed.notify_waiters();
    Json(serde_json::json!({ "accepted": true })).into_response()
}

impl Coordinator {
    /// Listens on `listen`. A non-loopback address needs a token.
    pub async fn start(
        listen: SocketAddr,
        identity: Identity,
        token: Option<String>,
    ) -> Result<Coordinator, Error> {
        let token = token.filter(|t| !t.trim().is_empty());
        if token.is_none() && !listen.ip().is_loopback() {
            return Err(Error::Invalid(format!(
                "refusing to coordinate on non-loopback address {listen} without a token (hint: set {} or listen on 127.0.0.1)",
                super::wire::TOKEN_ENV
            )));
        }
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
            Error::Environment(format!("cannot listen on {listen} for the shards: {e}"))
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Environment(format!("coordinator address: {e}")))?;
        let notifications = Arc::<Mutex<Vec<Notification>>>::default();
        let shared = Arc::new(Shared {
            identity,
            token,
            board: Mutex::new(Board {
                registered: BTreeMap::new(),
                records: BTreeMap::new(),
            }),
            start: watch::channel(None).0,
            changed: Notify::new(),
            notifications: notifications.clone(),
        });
        let guarded = Router::new()
            .route(REGISTER_PATH, post(register))
            .route(RECORD_PATH, post(record))
            .with_state(shared.clone())
            .merge(crate::alertmanager::receiver::app(notifications))
            .layer(middleware::from_fn_with_state(shared.clone(), auth));
        let app = Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .merge(guarded);
        let stop = CancellationToken::new();
        let signal = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await;
        });
        Ok(Coordinator {
            addr,
            shared,
            stop,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL shards are given (`--coordinator`).
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    fn registered(&self) -> Vec<u64> {
        (self.shared.board.lock())
            .map(|b| b.registered.keys().copied().collect())
            .unwrap_or_default()
    }

    fn reported(&self) -> Vec<u64> {
        (self.shared.board.lock())
            .map(|b| b.records.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Waits until all N shards registered. After `timeout`, or once
    /// `gone` names a shard that can no longer come, fails (exit 3) naming
    /// the shards that never came.
    pub async fn wait_registered(
        &self,
        timeout: Duration,
        cancel: &CancellationToken,
        mut gone: impl FnMut() -> Vec<(u64, String)>,
    ) -> Result<(), Error> {
        let n = self.shared.identity.shards;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            let have = self.registered();
            if have.len() as u64 >= n {
                return Ok(());
            }
            let missing: Vec<u64> = (0..n).filter(|i| !have.contains(i)).collect();
            let dead: Vec<(u64, String)> = gone()
                .into_iter()
                .filter(|(i, _)| missing.contains(i))
                .collect();
            if !dead.is_empty() {
                let list: Vec<String> = dead.iter().map(|(i, w)| format!("{i} ({w})")).collect();
                return Err(Error::Environment(format!(
                    "shard(s) {} of {n} exited before registering with the coordinator",
                    list.join(", ")
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Environment(format!(
                    "shard(s) {} of {n} never registered with the coordinator within {} (hint: are all {n} load pods running and pointed at {}? raise --register-timeout for slow schedulers)",
                    list(&missing),
                    humantime::format_duration(timeout),
                    self.url()
                )));
            }
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = tokio::time::sleep_until(deadline) => {}
                _ = cancel.cancelled() => return Err(Error::Interrupted(crate::exit::INTERRUPTED)),
            }
        }
    }

    /// Tells every shard (now and on its next poll) when the schedule starts.
    pub fn announce(&self, start: SystemTime) {
        let ms = crate::timeutil::unix_ms(start);
        self.shared.start.send_replace(Some(ms));
        eprintln!(
            "slocheck: coordinator: all {} shards registered; the schedule starts at unix ms {ms}",
            self.shared.identity.shards
        );
    }

    /// Waits for every shard's record until `deadline`, cancellation, or
    /// until each shard without a record is one `gone` names. Returns the
    /// records and the shards that never reported, with why.
    pub async fn collect(
        &self,
        deadline: SystemTime,
        cancel: &CancellationToken,
        mut gone: impl FnMut() -> Vec<(u64, String)>,
    ) -> (Vec<ShardRecord>, Vec<(u64, String)>) {
        let n = self.shared.identity.shards;
        loop {
            let changed = self.shared.changed.notified();
            let have = self.reported();
            let waiting: Vec<u64> = (0..n).filter(|i| !have.contains(i)).collect();
            let dead = gone();
            let all_dead = waiting.iter().all(|i| dead.iter().any(|(d, _)| d == i));
            let late = SystemTime::now() >= deadline;
            if waiting.is_empty() || all_dead || late || cancel.is_cancelled() {
                let missing = waiting
                    .iter()
                    .map(|&i| {
                        let why = match dead.iter().find(|(d, _)| *d == i) {
                            Some((_, w)) => format!("its process ended without a record: {w}"),
                            None if cancel.is_cancelled() => "the run was interrupted".into(),
                            None => "it never reported by the planned end plus grace".into(),
                        };
                        (i, why)
                    })
                    .collect();
                let records = (self.shared.board.lock())
                    .map(|b| b.records.values().cloned().collect())
                    .unwrap_or_default();
                return (records, missing);
            }
            let left = deadline
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep(left.min(Duration::from_millis(250))) => {}
                _ = cancel.cancelled() => {}
            }
        }
    }

    /// Alertmanager notifications received so far.
    pub fn notifications(&self) -> Vec<Notification> {
        (self.shared.notifications.lock())
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn list(ix: &[u64]) -> String {
    ix.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}
