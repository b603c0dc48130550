//! The target as a real server on a loopback port: start, serve, refuse unsafe
//! or taken addresses, and shut down within its bound.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use slocheck::target::{TargetConfig, TargetError, TargetHandle};

#[tokio::test]
async fn serves_on_an_ephemeral_loopback_port() {
    let handle = TargetHandle::start(TargetConfig::default()).await.unwrap();
    let addr = handle.addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    assert_eq!(
        handle.base_url().as_str(),
        format!("http://127.0.0.1:{}/", addr.port())
    );
    let client = reqwest::Client::new();
    let health = client
        .get(handle.base_url().join("healthz").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");
    let resp = client
        .post(handle.base_url().join("predict").unwrap())
        .body(r#"{"features":[6.3,3.3,6.0,2.5]}"#)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["class"], "virginica");
    handle.shutdown().await;
    assert!(
        client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_err(),
        "still serving after shutdown"
    );
}

#[tokio::test]
async fn loopback_peer_may_inject_faults_even_with_a_token() {
    let cfg = TargetConfig {
        admin_token: Some("s3cret".into()),
        ..TargetConfig::default()
    };
    let handle = TargetHandle::start(cfg).await.unwrap();
    let client = reqwest::Client::new();
    let predict = handle.base_url().join("predict").unwrap();
    let resp = client
        .post(predict)
        .header("x-slocheck-fault", "status=503")
        .body(r#"{"features":[5.1,3.5,1.4,0.2]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let admin = handle.base_url().join("admin/faults").unwrap();
    assert_eq!(
        client.get(admin.clone()).send().await.unwrap().status(),
        401
    );
    assert_eq!(
        client
            .get(admin)
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn non_loopback_listen_without_token_is_refused() {
    let cfg = TargetConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        ..TargetConfig::default()
    };
    let err = TargetHandle::start(cfg).await.unwrap_err();
    assert!(matches!(err, TargetError::TokenRequired { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("refusing to listen on non-loopback address 0.0.0.0:0"),
        "{msg}"
    );
    assert!(msg.contains("--admin-token"), "{msg}");
}

#[tokio::test]
async fn port_in_use_is_a_clear_bind_error() {
    let first = TargetHandle::start(TargetConfig::default()).await.unwrap();
    let taken: SocketAddr = first.addr();
    let err = TargetHandle::start(TargetConfig {
        listen: taken,
        ..TargetConfig::default()
    })
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot listen on {taken}: address already in use (hint: pick another --listen port)"
        )
    );
    assert!(std::error::Error::source(&err).is_some());
    first.shutdown().await;
}

#[tokio::test]
async fn shutdown_is_bounded_with_a_request_in_flight() {
    let handle = TargetHandle::start(TargetConfig::default()).await.unwrap();
    let url = handle.base_url().join("predict").unwrap();
    let slow = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .header("x-slocheck-fault", "delay=10s")
            .body("{}")
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    handle.shutdown().await;
    // Grace is 2 s + 0.25 s; allow scheduling slack on a loaded machine.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        start.elapsed()
    );
    // Cut short: a 503 or a closed connection, never the 10 s answer.
    let status = slow.await.unwrap().map(|r| r.status().as_u16());
    assert!(matches!(status, Ok(503) | Err(_)), "{status:?}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "the in-flight request outlived shutdown"
    );
}
