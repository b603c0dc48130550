//! The admin fault API (`GET`/`PUT`/`DELETE /admin/faults`) for demos, with
//! its token check.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::faults::FaultConfig;
use super::router::json_error;
use super::state::AppState;

/// Why an admin call was turned away; small so handlers can `?` it.
enum Denied {
    NoToken,
    FaultsDisabled,
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::NoToken => {
                let mut resp = json_error(
                    StatusCode::UNAUTHORIZED,
                    "admin API needs `Authorization: Bearer <token>` (hint: the token given by --admin-token or SLOCHECK_ADMIN_TOKEN)",
                );
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
                resp
            }
            Denied::FaultsDisabled => json_error(
                StatusCode::FORBIDDEN,
                "fault injection is disabled on this target (hint: restart it without --no-faults)",
            ),
        }
    }
}

/// Token first, so an unauthenticated caller learns nothing about the state.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), Denied> {
    if state.token_required() && !state.has_valid_token(headers) {
        return Err(Denied::NoToken);
    }
    if !state.faults_enabled() {
        return Err(Denied::FaultsDisabled);
    }
    Ok(())
}

pub async fn get_faults(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(resp) = authorize(&state, &headers) {
        return resp.into_response();
    }
    Json(state.fault_config()).into_response()
}

pub async fn put_faults(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(resp) = authorize(&state, &headers) {
        return resp.into_response();
    }
    let config: FaultConfig = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return json_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("invalid fault config: {e}"),
            );
        }
    };
    if let Err(e) = config.validate() {
        let body = json!({ "error": e.to_string(), "field": e.field });
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
    }
    state.set_fault_config(config.clone());
    Json(config).into_response()
}

pub async fn delete_faults(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(resp) = authorize(&state, &headers) {
        return resp.into_response();
    }
    state.set_fault_config(FaultConfig::default());
    Json(state.fault_config()).into_response()
}
