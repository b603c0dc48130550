//! The target's router in-process (tower `oneshot`): predictions, validation,
//! fault header, admin API and the metrics they leave behind.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use slocheck::target::{AppState, TargetConfig, app};
use tower::ServiceExt;

fn router() -> Router {
    router_with(TargetConfig::default())
}

fn router_with(cfg: TargetConfig) -> Router {
    app(AppState::new(&cfg).unwrap())
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn post(body: &str) -> Request<Body> {
    Request::post("/predict")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn post_with_fault(fault: &str) -> Request<Body> {
    Request::post("/predict")
        .header("x-slocheck-fault", fault)
        .body(Body::from(r#"{"features":[5.1,3.5,1.4,0.2]}"#))
        .unwrap()
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap()
}

/// The status and the predicted class of one request.
async fn classify(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let (status, body) = send(app, req).await;
    (status, json(&body)["class"].clone())
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

async fn metrics_text(app: &Router) -> String {
    let (status, body) = send(app, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    body
}

/// Value of the exposition line starting with `series ` (0 when absent).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn predict_returns_the_models_class_for_known_rows() {
    let app = router();
    for (features, class, index) in [
        ("[5.1,3.5,1.4,0.2]", "setosa", 0),
        ("[6.4,3.2,4.5,1.5]", "versicolor", 1),
        ("[6.3,3.3,6.0,2.5]", "virginica", 2),
    ] {
        let (status, body) = send(&app, post(&format!(r#"{{"features":{features}}}"#))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let v = json(&body);
        assert_eq!(v["class"], class);
        assert_eq!(v["class_index"], index);
        assert_eq!(v["model"], "iris-logreg-v1");
        let scores: Vec<f64> = serde_json::from_value(v["scores"].clone()).unwrap();
        assert_eq!(scores.len(), 3);
        assert!((scores.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(scores[index] > 0.5, "{scores:?}");
    }
}

#[tokio::test]
async fn every_shipped_request_body_is_accepted() {
    let app = router();
    let lines: Vec<&str> = include_str!("../scenarios/data/iris.jsonl")
        .lines()
        .collect();
    assert_eq!(lines.len(), 30);
    let mut classes = std::collections::BTreeSet::new();
    for line in lines {
        let (status, body) = send(&app, post(line)).await;
        assert_eq!(status, StatusCode::OK, "{line}: {body}");
        classes.insert(json(&body)["class"].as_str().unwrap().to_owned());
    }
    assert_eq!(classes.len(), 3, "{classes:?}");
}

#[tokio::test]
async fn batch_and_get_predict() {
    let app = router();
    let (status, body) = send(
        &app,
        post(r#"{"instances":[[5.1,3.5,1.4,0.2],[6.3,3.3,6.0,2.5]]}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v = json(&body);
    assert_eq!(v["predictions"][0]["class"], "setosa");
    assert_eq!(v["predictions"][1]["class"], "virginica");

    assert_eq!(
        classify(&app, get("/predict")).await,
        (StatusCode::OK, json!("setosa"))
    );
    assert_eq!(
        classify(&app, get("/predict?features=6.3,3.3,6.0,2.5")).await,
        (StatusCode::OK, json!("virginica"))
    );
}

#[tokio::test]
async fn malformed_input_is_422_with_a_json_error() {
    let app = router();
    for body in [
        "not json",
        r#"{"features":[1,2,3]}"#,
        r#"{"features":[1,2,3,4,5]}"#,
        r#"{"features":["a",2,3,4]}"#,
        r#"{"features":[1e7,2,3,4]}"#,
        r#"{"features":[1,2,3,4],"instances":[[1,2,3,4]]}"#,
        r#"{"instances":[]}"#,
        r#"{"instances":[[1,2,3,4],[1,2]]}"#,
        r#"{"feature":[1,2,3,4]}"#,
        "{}",
    ] {
        let (status, resp) = send(&app, post(body)).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body} gave {resp}"
        );
        assert!(
            json(&resp)["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{resp}"
        );
    }
    for uri in [
        "/predict?features=1,2,3",
        "/predict?features=1,2,nan,4",
        "/predict?features=1,2,inf,4",
    ] {
        let (status, _) = send(&app, get(uri)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}");
    }
}

#[tokio::test]
async fn healthz_is_ok() {
    let (status, body) = send(&router(), get("/healthz")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
}

#[tokio::test]
async fn fault_header_status_skips_the_model() {
    let app = router();
    let (status, body) = send(&app, post_with_fault("status=503")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        json(&body),
        json!({"error": "injected fault", "status": 503})
    );
    let text = metrics_text(&app).await;
    let predictions: f64 = ["setosa", "versicolor", "virginica"]
        .iter()
        .map(|c| sample(&text, &format!(r#"model_predictions_total{{class="{c}"}}"#)))
        .sum();
    assert_eq!(predictions, 0.0, "the model ran for an injected fault");
}

#[tokio::test]
async fn fault_header_delay_then_status() {
    let app = router();
    let start = Instant::now();
    let (status, _) = send(&app, post_with_fault("delay=150ms,status=500")).await;
    assert!(
        start.elapsed() >= Duration::from_millis(150),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    let start = Instant::now();
    let got = classify(&app, post_with_fault("delay=120ms")).await;
    assert!(start.elapsed() >= Duration::from_millis(120));
    assert_eq!(got, (StatusCode::OK, json!("setosa")));
}

#[tokio::test]
async fn malformed_fault_header_is_ignored_not_an_error() {
    let app = router();
    for bad in ["colour=red", "status=700", "delay=soon", "status"] {
        let resp = app.clone().oneshot(post_with_fault(bad)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{bad}");
        assert!(
            !resp.headers().contains_key("x-slocheck-fault-applied"),
            "{bad} was acknowledged"
        );
    }
    let text = metrics_text(&app).await;
    assert_eq!(
        sample(
            &text,
            r#"http_requests_total{path="/predict",method="POST",status="200"}"#
        ),
        4.0
    );
}

#[tokio::test]
async fn fault_header_is_ignored_when_faults_are_disabled() {
    let app = router_with(TargetConfig {
        faults_enabled: false,
        ..TargetConfig::default()
    });
    let (status, _) = send(&app, post_with_fault("status=503")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(&app, get("/admin/faults")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn injected_faults_are_counted_like_real_ones() {
    let app = router();
    for _ in 0..3 {
        send(&app, post_with_fault("status=503")).await;
    }
    send(&app, post_with_fault("delay=210ms")).await;
    send(&app, post(r#"{"features":[5.1,3.5,1.4,0.2]}"#)).await;
    let text = metrics_text(&app).await;
    let series = |s: &str| sample(&text, s);
    assert_eq!(
        series(r#"http_requests_total{path="/predict",method="POST",status="503"}"#),
        3.0
    );
    assert_eq!(
        series(r#"http_requests_total{path="/predict",method="POST",status="200"}"#),
        2.0
    );
    assert_eq!(
        series(r#"http_request_latency_seconds_count{path="/predict",method="POST"}"#),
        5.0
    );
    // The delayed request lands above 0.2 s; the other four well below.
    assert_eq!(
        series(r#"http_request_latency_seconds_bucket{path="/predict",method="POST",le="0.2"}"#),
        4.0
    );
    assert_eq!(
        series(r#"http_request_latency_seconds_bucket{path="/predict",method="POST",le="0.25"}"#),
        5.0
    );
    assert!(series(r#"http_request_latency_seconds_sum{path="/predict",method="POST"}"#) >= 0.21);
    assert_eq!(series(r#"model_predictions_total{class="setosa"}"#), 2.0);
}

#[tokio::test]
async fn metrics_exposition_names_labels_and_content_type() {
    let app = router();
    send(&app, get("/healthz")).await;
    send(&app, get("/no/such/route")).await;
    let resp = app.clone().oneshot(get("/metrics")).await.unwrap();
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    for line in [
        "# TYPE http_requests_total counter",
        "# TYPE http_request_latency_seconds histogram",
        "# TYPE http_requests_in_flight gauge",
        "# TYPE model_predictions_total counter",
        "# TYPE model_inference_seconds histogram",
        r#"http_requests_total{path="/healthz",method="GET",status="200"} 1"#,
        r#"http_requests_total{path="unmatched",method="GET",status="404"} 1"#,
        r#"http_request_latency_seconds_count{path="unmatched",method="GET"} 1"#,
        r#"http_requests_total{path="/predict",method="POST",status="503"} 0"#,
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(
        !text.contains("/no/such/route"),
        "raw URL leaked into a label"
    );
}

#[tokio::test]
async fn admin_api_round_trip_drives_predict() {
    let app = router_with(TargetConfig {
        seed: 3,
        ..TargetConfig::default()
    });
    let put = |body: &str| {
        Request::put("/admin/faults")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let (status, body) = send(&app, get("/admin/faults")).await;
    assert_eq!(
        (status, json(&body)),
        (StatusCode::OK, json!({"error_rate": 0.0, "status": 503}))
    );

    let cfg = json!({"error_rate": 1.0, "status": 502, "latency": {"ratio": 1.0, "delay": {"fixed": "50ms"}}});
    let (status, body) = send(&app, put(&cfg.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = send(&app, get("/admin/faults")).await;
    assert_eq!(json(&body), cfg);

    let start = Instant::now();
    let (status, _) = send(&app, post(r#"{"features":[5.1,3.5,1.4,0.2]}"#)).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(start.elapsed() >= Duration::from_millis(50));
    // The header overrides the admin config for its request.
    let (status, _) = send(&app, post_with_fault("status=504")).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);

    let (status, _) = send(
        &app,
        Request::delete("/admin/faults")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(&app, post(r#"{"features":[5.1,3.5,1.4,0.2]}"#)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn admin_api_validation_names_the_field() {
    let app = router();
    let put = |body: &str| {
        Request::put("/admin/faults")
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let (status, body) = send(&app, put(r#"{"error_rate":1.5}"#)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json(&body)["field"], "error_rate");
    let (status, body) = send(
        &app,
        put(r#"{"latency":{"ratio":0.5,"delay":{"uniform":{"min":"2s","max":"1s"}}}}"#),
    )
    .await;
    assert_eq!(
        (status, json(&body)["field"].clone()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("latency.delay.uniform.min")
        )
    );
    let (status, body) = send(&app, put(r#"{"eror_rate":0.1}"#)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        json(&body)["error"].as_str().unwrap().contains("eror_rate"),
        "{body}"
    );
    // A rejected config leaves the old one in place.
    let (_, body) = send(&app, get("/admin/faults")).await;
    assert_eq!(json(&body)["error_rate"], 0.0);
}

#[tokio::test]
async fn admin_api_needs_the_token_when_one_is_set() {
    let app = router_with(TargetConfig {
        admin_token: Some("s3cret".into()),
        ..TargetConfig::default()
    });
    let (status, body) = send(&app, get("/admin/faults")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!body.contains("s3cret"));
    let wrong = Request::get("/admin/faults")
        .header(header::AUTHORIZATION, "Bearer nope")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, wrong).await.0, StatusCode::UNAUTHORIZED);
    let right = Request::get("/admin/faults")
        .header(header::AUTHORIZATION, "Bearer s3cret")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, right).await.0, StatusCode::OK);
}

#[tokio::test]
async fn without_metrics_there_is_no_metrics_route() {
    let app = router_with(TargetConfig {
        metrics_enabled: false,
        ..TargetConfig::default()
    });
    let (status, _) = send(&app, post(r#"{"features":[5.1,3.5,1.4,0.2]}"#)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(&app, get("/metrics")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
