//! Shared helpers for the Prometheus integration tests: a tiny hand-written
//! /metrics server and fake HTTP servers, all on 127.0.0.1 port 0.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

/// Serves `router` on 127.0.0.1:0 until the test's runtime ends.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// A /metrics endpoint whose counters grow by 10 requests (one a 503) per
/// scrape, in the service's metric names.
pub async fn metrics_server() -> SocketAddr {
    let scrapes = Arc::new(AtomicU64::new(0));
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let n = scrapes.fetch_add(1, Ordering::Relaxed) + 1;
            async move {
                format!(
                    "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n\
                     http_requests_total{{path=\"/predict\",method=\"POST\",status=\"200\"}} {}\n\
                     http_requests_total{{path=\"/predict\",method=\"POST\",status=\"503\"}} {}\n",
                    9 * n,
                    n
                )
            }
        }),
    );
    serve(router).await
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

pub fn url(addr: SocketAddr) -> reqwest::Url {
    reqwest::Url::parse(&format!("http://{addr}/")).expect("url")
}
