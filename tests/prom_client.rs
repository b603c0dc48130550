//! The Prometheus client against servers that are not (quite) Prometheus:
//! garbage, closed ports, slow and failing servers. Real Prometheus is
//! exercised in prom_launcher.rs.

mod prom_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use prom_support::{closed_port, serve, url};
use slocheck::prom::{PromClient, PromError};

fn client(u: reqwest::Url, timeout: Duration) -> PromClient {
    PromClient::new(u, timeout).expect("client")
}

/// A server answering every path with `status` and `body`; counts requests.
async fn fake(status: StatusCode, body: &'static str) -> (reqwest::Url, Arc<AtomicU32>) {
    let hits = Arc::new(AtomicU32::new(0));
    let h = hits.clone();
    let router = Router::new().fallback(move || {
        h.fetch_add(1, Ordering::Relaxed);
        async move { (status, body).into_response() }
    });
    (url(serve(router).await), hits)
}

#[tokio::test]
async fn garbage_server_is_not_prometheus() {
    let (u, _) = fake(StatusCode::OK, "<html>hello</html>").await;
    let err = client(u.clone(), Duration::from_secs(2))
        .query("up", SystemTime::now())
        .await
        .expect_err("garbage");
    assert!(matches!(err, PromError::NotPrometheus { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{u} answered but is not a Prometheus API (")),
        "{text}"
    );
    assert!(text.contains("not JSON"), "{text}");
}

#[tokio::test]
async fn json_without_envelope_and_404_are_not_prometheus() {
    let (u, _) = fake(StatusCode::OK, r#"{"hello": "world"}"#).await;
    let err = client(u, Duration::from_secs(2))
        .targets()
        .await
        .expect_err("no envelope");
    assert!(matches!(err, PromError::NotPrometheus { .. }), "{err:?}");

    let (u, hits) = fake(StatusCode::NOT_FOUND, "404 page not found").await;
    let err = client(u, Duration::from_secs(2))
        .build_version()
        .await
        .expect_err("404");
    assert!(err.to_string().contains("404 Not Found"), "{err}");
    assert_eq!(hits.load(Ordering::Relaxed), 1, "a 404 is not retried");
}

#[tokio::test]
async fn closed_port_is_unreachable() {
    let port = closed_port();
    let u = reqwest::Url::parse(&format!("http://127.0.0.1:{port}/")).expect("url");
    let err = client(u, Duration::from_secs(2))
        .query("up", SystemTime::now())
        .await
        .expect_err("closed");
    assert!(matches!(err, PromError::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "prometheus at http://127.0.0.1:{port}/ is unreachable: connection refused (hint:"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn slow_server_times_out_after_bounded_retries() {
    let hits = Arc::new(AtomicU32::new(0));
    let h = hits.clone();
    let router = Router::new().fallback(move || {
        h.fetch_add(1, Ordering::Relaxed);
        async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        }
    });
    let u = url(serve(router).await);
    let started = Instant::now();
    let err = client(u, Duration::from_millis(200))
        .query("up", SystemTime::now())
        .await
        .expect_err("slow");
    let elapsed = started.elapsed();
    assert!(
        matches!(err, PromError::Timeout { attempts: 4, .. }),
        "{err:?}"
    );
    assert_eq!(hits.load(Ordering::Relaxed), 4);
    // Not a speed check: proof that the retries are bounded (4 × 200 ms +
    // 700 ms of backoff), far below the server's 30 s sleep.
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    assert!(err.to_string().contains("did not answer within"), "{err}");
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let (u, hits) = fake(StatusCode::BAD_GATEWAY, "upstream down").await;
    let err = client(u, Duration::from_secs(2))
        .query("up", SystemTime::now())
        .await
        .expect_err("502");
    assert!(
        matches!(
            err,
            PromError::Unavailable {
                status: 502,
                attempts: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(hits.load(Ordering::Relaxed), 4);
    assert!(err.to_string().contains("upstream down"), "{err}");
}

#[tokio::test]
async fn bad_data_is_a_query_error_without_retry() {
    let (u, hits) = fake(
        StatusCode::BAD_REQUEST,
        r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unclosed left parenthesis"}"#,
    )
    .await;
    let err = client(u, Duration::from_secs(2))
        .query("sum(", SystemTime::now())
        .await
        .expect_err("bad_data");
    match &err {
        PromError::Query {
            error_type,
            message,
            expr,
            ..
        } => {
            assert_eq!(error_type, "bad_data");
            assert!(message.contains("unclosed left parenthesis"));
            assert_eq!(expr, "sum(");
        }
        other => panic!("expected a query error, got {other:?}"),
    }
    assert_eq!(hits.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn well_formed_answers_are_decoded() {
    let (u, _) = fake(
        StatusCode::OK,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"a"},"value":[1700000000.5,"NaN"]},{"metric":{},"value":[1700000000.5,"+Inf"]}]}}"#,
    )
    .await;
    let samples = client(u, Duration::from_secs(2))
        .query("x", SystemTime::now())
        .await
        .expect("vector");
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0].labels.get("job").map(String::as_str), Some("a"));
    assert!(samples[0].value.is_nan());
    assert_eq!(samples[1].value, f64::INFINITY);
}
