//! Delayed ground truth over HTTP: `POST /feedback` attaches true labels to
//! logged predictions by id, `GET /predictions` hands the joined log to the
//! evaluation batch job as JSON Lines. The contract is in docs/model-quality.md.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::model::{CLASS_NAMES, class_index};
use super::predictions::Feedback;
use super::router::json_error;
use super::state::AppState;

/// Upper bound on feedback items per request.
pub const MAX_FEEDBACK_BATCH: usize = 10_000;

/// Content type of `GET /predictions`.
pub const NDJSON: &str = "application/x-ndjson";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    prediction_id: String,
    label: String,
}

/// One item, or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Body {
    One(Item),
    Many(Vec<Item>),
}

/// `POST /feedback`: `{"prediction_id": "42", "label": "setosa"}` or a list of
/// such objects. Answers how many were accepted and why others were not; a
/// malformed body is a 422 and nothing is taken.
pub async fn post_feedback(State(state): State<AppState>, body: Bytes) -> Response {
    let items = match serde_json::from_slice::<Body>(&body) {
        Ok(Body::One(i)) => vec![i],
        Ok(Body::Many(v)) => v,
        Err(_) => {
            return json_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid feedback body: expected {\"prediction_id\": \"…\", \"label\": \"…\"} or a list of them",
            );
        }
    };
    if items.len() > MAX_FEEDBACK_BATCH {
        return json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "feedback: at most {MAX_FEEDBACK_BATCH} items per request, got {}",
                items.len()
            ),
        );
    }
    let (mut accepted, mut unknown_id, mut invalid_label) = (0u64, 0u64, 0u64);
    for item in &items {
        let Some(class) = class_index(&item.label) else {
            invalid_label += 1;
            continue;
        };
        let id = item.prediction_id.parse::<u64>().ok();
        match id.map(|id| state.predictions().label(id, class)) {
            Some(Feedback::Accepted) => accepted += 1,
            _ => unknown_id += 1,
        }
    }
    if let Some(m) = state.metrics() {
        m.record_feedback(accepted, unknown_id, invalid_label);
    }
    let mut out = json!({
        "accepted": accepted,
        "unknown_id": unknown_id,
        "invalid_label": invalid_label,
    });
    if invalid_label > 0 {
        out["labels"] = json!(CLASS_NAMES);
    }
    (StatusCode::OK, axum::Json(out)).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Unix seconds; default: the start of the log.
    since: Option<f64>,
    /// Unix seconds, exclusive; default: now.
    until: Option<f64>,
}

fn to_ms(secs: Option<f64>, default: u64) -> Result<u64, String> {
    match secs {
        None => Ok(default),
        Some(s) if s.is_finite() && s >= 0.0 => Ok((s * 1000.0).round() as u64),
        Some(s) => Err(format!("{s} is not a unix time in seconds")),
    }
}

/// `GET /predictions?since=…&until=…`: one JSON object per line,
/// `{"prediction_id","time","predicted","label"}` with `label` null until
/// feedback arrived.
pub async fn get_predictions(
    State(state): State<AppState>,
    query: Result<Query<Window>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let window = match query {
        Ok(Query(w)) => w,
        Err(e) => {
            return json_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("invalid query: {e} (hint: ?since=<unix seconds>&until=<unix seconds>)"),
            );
        }
    };
    let (since, until) = match (to_ms(window.since, 0), to_ms(window.until, u64::MAX)) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(e), _) | (_, Err(e)) => {
            return json_error(StatusCode::UNPROCESSABLE_ENTITY, format!("window: {e}"));
        }
    };
    let mut out = String::new();
    for p in state.predictions().between(since, until) {
        if let Ok(line) = serde_json::to_string(&p) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON))],
        out,
    )
        .into_response()
}
