//! The webhook recorder: an axum server on 127.0.0.1 (port 0) that records
//! every Alertmanager notification with its arrival time. Each receiver of
//! the Alertmanager config posts to `/receiver/<name>`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use tokio_util::sync::CancellationToken;

use super::error::AmError;
use super::payload::{Notification, WebhookPayload};

type Log = Arc<Mutex<Vec<Notification>>>;

/// A running recorder. `shutdown` (or dropping it) stops the server.
pub struct Recorder {
    addr: SocketAddr,
    log: Log,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The router alone, for in-process tests.
pub fn app(log: Arc<Mutex<Vec<Notification>>>) -> Router {
    Router::new()
        .route("/receiver/{name}", post(record))
        .with_state(log)
}

async fn record(
    State(log): State<Log>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    let received_at = SystemTime::now();
    // A body that is not a v4 payload is Alertmanager misconfigured (or
    // someone else posting): refuse it so Alertmanager logs the failure.
    let Ok(payload) = serde_json::from_slice::<WebhookPayload>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    if let Ok(mut log) = log.lock() {
        log.push(Notification {
            received_at,
            url_receiver: name,
            payload,
        });
    }
    StatusCode::OK
}

impl Recorder {
    pub async fn start() -> Result<Recorder, AmError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(AmError::Recorder)?;
        let addr = listener.local_addr().map_err(AmError::Recorder)?;
        let log: Log = Arc::default();
        let stop = CancellationToken::new();
        let signal = stop.clone().cancelled_owned();
        let service = app(log.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, service)
                .with_graceful_shutdown(signal)
                .await;
        });
        Ok(Recorder {
            addr,
            log,
            stop,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL a receiver named `name` posts to.
    pub fn url_for(&self, name: &str) -> String {
        receiver_url(self.addr, name)
    }

    /// Everything recorded so far, in arrival order.
    pub fn notifications(&self) -> Vec<Notification> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Receiver names may hold any character; the path segment is escaped.
pub fn receiver_url(addr: SocketAddr, name: &str) -> String {
    let mut url = reqwest::Url::parse(&format!("http://{addr}/receiver/"))
        .unwrap_or_else(|_| unreachable!("a socket address always forms a valid URL"));
    if let Ok(mut segs) = url.path_segments_mut() {
        segs.pop_if_empty().push(name);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_posted_payloads_with_the_receiver_name() {
        let rec = Recorder::start().await.expect("recorder");
        let body = r#"{"receiver":"team a","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"X"}}]}"#;
        let http = reqwest::Client::new();
        let url = rec.url_for("team a");
        assert!(url.ends_with("/receiver/team%20a"), "{url}");
        let ok = http.post(&url).body(body).send().await.expect("post");
        assert_eq!(ok.status(), 200);
        let bad = http.post(&url).body("not json").send().await.expect("post");
        assert_eq!(bad.status(), 400);
        let got = rec.notifications();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].url_receiver, "team a");
        assert_eq!(got[0].receiver(), "team a");
        rec.shutdown().await;
    }
}
