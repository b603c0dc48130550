//! The target's HTTP surface: routes, the predict handlers and the fault
//! middleware, layered as metrics → faults → handler.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::admin;
use super::faults::InjectedFault;
use super::feedback;
use super::metrics;
use super::model::{MAX_ABS_FEATURE, MODEL_NAME, N_CLASSES, N_FEATURES};
use super::state::AppState;
use crate::fault_protocol;

/// What `GET /predict` without `?features=` classifies (first Iris row).
pub const SAMPLE_FEATURES: [f64; N_FEATURES] = [5.1, 3.5, 1.4, 0.2];

/// Upper bound on `instances` per request, so one body cannot pin a core.
pub const MAX_BATCH: usize = 1_000;

/// The whole service. With metrics disabled (benchmark only) there is neither
/// the metrics middleware nor `/metrics`.
pub fn app(state: AppState) -> Router {
    let predict = get(predict_get)
        .post(predict_post)
        .layer(middleware::from_fn_with_state(state.clone(), inject_faults));
    let router = Router::new()
        .route("/predict", predict)
        .route("/healthz", get(|| async { "ok" }))
        .route("/feedback", post(feedback::post_feedback))
        .route("/predictions", get(feedback::get_predictions))
        .route(
            "/admin/faults",
            get(admin::get_faults)
                .put(admin::put_faults)
                .delete(admin::delete_faults),
        );
    match state.metrics().cloned() {
        Some(m) => router
            .route("/metrics", get(metrics_text))
            .with_state(state)
            .layer(middleware::from_fn_with_state(m, metrics::track)),
        None => router.with_state(state),
    }
}

/// `{"error": "..."}` with the given status.
pub fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    let Some(m) = state.metrics() else {
        return json_error(StatusCode::NOT_FOUND, "metrics are disabled");
    };
    match m.encode() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(metrics::CONTENT_TYPE),
            )],
            text,
        )
            .into_response(),
        Err(_) => json_error(StatusCode::INTERNAL_SERVER_ERROR, "encoding metrics failed"),
    }
}

/// Applies the request's fault header, else the admin config's fault: wait,
/// then answer with the injected status without running the model. A fault
/// requested by header is acknowledged (`x-slocheck-fault-applied`), one
/// drawn from the admin config is not: nobody asked for it per request.
async fn inject_faults(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (fault, requested) = match requested_fault(&state, &req) {
        Some(f) => (f, true),
        None => match state.sample_admin_fault() {
            Some(f) => (f, false),
            None => return next.run(req).await,
        },
    };
    if let Some(d) = fault.delay {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = state.hard_stop().cancelled() => {
                return json_error(StatusCode::SERVICE_UNAVAILABLE, "target is shutting down");
            }
        }
    }
    let mut resp = match fault.status.and_then(|s| StatusCode::from_u16(s).ok()) {
        // These statuses must not carry a body (RFC 9110 §6.4.1).
        Some(status) if matches!(status.as_u16(), 204 | 205 | 304) => status.into_response(),
        Some(status) => (
            status,
            Json(json!({ "error": "injected fault", "status": status.as_u16() })),
        )
            .into_response(),
        None => next.run(req).await,
    };
    if requested {
        if let Some(ack) = fault.header_value() {
            resp.headers_mut()
                .insert(fault_protocol::APPLIED_HEADER_NAME, ack);
        }
    }
    resp
}

/// The header's fault when present, allowed and well-formed; a header
/// overrides the admin config for that request so the sender's ground truth
/// stays exact. A malformed header is ignored with a log line, as the
/// protocol asks: the request is served as if it had none.
fn requested_fault(state: &AppState, req: &Request) -> Option<InjectedFault> {
    let mut values = req
        .headers()
        .get_all(fault_protocol::FAULT_HEADER_NAME)
        .iter();
    let value = values.next()?;
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if !state.fault_header_allowed(peer, req.headers()) {
        return None;
    }
    if values.next().is_some() {
        eprintln!(
            "slocheck target: ignoring the request's fault: the fault header is given more than once"
        );
        return None;
    }
    match fault_protocol::parse_header(value) {
        Ok(f) => Some(f),
        Err(e) => {
            eprintln!("slocheck target: ignoring the request's fault: {e}");
            None
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictRequest {
    features: Option<Vec<f64>>,
    instances: Option<Vec<Vec<f64>>>,
}

/// Response header carrying the prediction id of a single prediction, so a
/// client can report its label later without parsing the body.
pub const PREDICTION_ID_HEADER: &str = "x-prediction-id";

#[derive(Debug, Serialize)]
struct PredictionBody {
    prediction_id: String,
    class: &'static str,
    class_index: usize,
    scores: [f64; N_CLASSES],
}

#[derive(Debug, Deserialize)]
struct PredictQuery {
    features: Option<String>,
}

async fn predict_post(State(state): State<AppState>, body: Bytes) -> Response {
    let req: PredictRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return json_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("invalid predict body: {e}"),
            );
        }
    };
    match (req.features, req.instances) {
        (Some(f), None) => match to_features(&f) {
            Ok(x) => single(&state, &x),
            Err(msg) => json_error(StatusCode::UNPROCESSABLE_ENTITY, format!("features: {msg}")),
        },
        (None, Some(rows)) => batch(&state, &rows),
        _ => json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid predict body: give exactly one of `features` or `instances`",
        ),
    }
}

async fn predict_get(
    State(state): State<AppState>,
    query: Result<Query<PredictQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let raw = match query {
        Ok(Query(q)) => q.features,
        Err(e) => {
            return json_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("invalid query: {e}"),
            );
        }
    };
    let Some(raw) = raw else {
        return single(&state, &SAMPLE_FEATURES);
    };
    let parsed: Result<Vec<f64>, _> = raw.split(',').map(|v| v.trim().parse::<f64>()).collect();
    match parsed
        .map_err(|_| "must be comma-separated numbers".to_owned())
        .and_then(|v| to_features(&v))
    {
        Ok(x) => single(&state, &x),
        Err(msg) => json_error(StatusCode::UNPROCESSABLE_ENTITY, format!("features: {msg}")),
    }
}

fn to_features(v: &[f64]) -> Result<[f64; N_FEATURES], String> {
    let x: [f64; N_FEATURES] = v
        .try_into()
        .map_err(|_| format!("expected {N_FEATURES} numbers, got {}", v.len()))?;
    if x.iter()
        .all(|f| f.is_finite() && f.abs() <= MAX_ABS_FEATURE)
    {
        Ok(x)
    } else {
        Err(format!(
            "every value must be finite with magnitude at most {MAX_ABS_FEATURE:e}"
        ))
    }
}

fn run_model(state: &AppState, x: &[f64; N_FEATURES]) -> PredictionBody {
    let start = Instant::now();
    let p = state.model().predict(x);
    if let Some(m) = state.metrics() {
        m.record_prediction(p.class_index, start.elapsed().as_secs_f64());
        m.record_features(x);
    }
    let id = state.predictions().record(p.class_index);
    PredictionBody {
        prediction_id: id.to_string(),
        class: p.class(),
        class_index: p.class_index,
        scores: p.scores,
    }
}

fn single(state: &AppState, x: &[f64; N_FEATURES]) -> Response {
    let p = run_model(state, x);
    let id = HeaderValue::from_str(&p.prediction_id).ok();
    let mut resp = Json(json!({ "prediction_id": p.prediction_id, "class": p.class, "class_index": p.class_index, "scores": p.scores, "model": MODEL_NAME }))
        .into_response();
    if let Some(id) = id {
        resp.headers_mut().insert(PREDICTION_ID_HEADER, id);
    }
    resp
}

fn batch(state: &AppState, rows: &[Vec<f64>]) -> Response {
    if rows.is_empty() || rows.len() > MAX_BATCH {
        return json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "instances: expected 1..={MAX_BATCH} rows, got {}",
                rows.len()
            ),
        );
    }
    let mut xs = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        match to_features(row) {
            Ok(x) => xs.push(x),
            Err(msg) => {
                return json_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("instances[{i}]: {msg}"),
                );
            }
        }
    }
    let predictions: Vec<PredictionBody> = xs.iter().map(|x| run_model(state, x)).collect();
    Json(json!({ "predictions": predictions, "model": MODEL_NAME })).into_response()
}
