//! A thin, bounded client for the Prometheus HTTP API: per-request timeout,
//! a few retries with backoff on transient failures, and errors that say
//! which URL failed and how.
//!
//! reqwest is used directly (not prometheus-http-query) because telling
//! "unreachable" from "not Prometheus" from "bad query" needs the raw status
//! and body. Answers are decoded into the typed structs of `wire`.

mod wire;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::{StatusCode, Url};
use serde::de::{DeserializeOwned, IgnoredAny};
use tokio_util::sync::CancellationToken;

use super::error::PromError;
use wire::{Envelope, Status, parse_value};

/// Attempts per request; with backoff 100 → 200 → 400 ms the total stays
/// within `4 × timeout + 0.7 s`.
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct PromClient {
    http: reqwest::Client,
    base: Url,
    timeout: Duration,
}

/// One element of an instant vector (or the single value of a scalar).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(SystemTime, f64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetInfo {
    pub job: String,
    pub scrape_url: String,
    /// `up`, `down` or `unknown` (not scraped yet).
    pub health: String,
    pub last_error: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    Alerting,
    Recording,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadedRule {
    pub group: String,
    pub name: String,
    pub kind: RuleKind,
    pub health: String,
    pub last_error: String,
    pub query: String,
    /// `for` of an alerting rule as Prometheus loaded it; zero otherwise.
    pub duration: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAlert {
    pub name: String,
    /// `pending` or `firing`.
    pub state: String,
    pub active_at: Option<SystemTime>,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// What one HTTP exchange came to, before retry policy is applied.
enum Attempt<T> {
    Done(T),
    /// Worth another try (connection refused/reset, timeout, 5xx).
    Transient(PromError),
    Fatal(PromError),
}

impl PromClient {
    pub fn new(base: Url, timeout: Duration) -> Result<PromClient, PromError> {
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(PromError::BadUrl {
                url: base.to_string(),
                reason: "not an http(s) URL".into(),
            });
        }
        let mut base = base;
        // Joining "api/v1/query" must keep any path prefix (e.g. behind a proxy).
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .no_proxy()
            .build()
            .map_err(PromError::Client)?;
        Ok(PromClient {
            http,
            base,
            timeout,
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str, params: &[(&str, String)]) -> Result<Url, PromError> {
        let mut url = self.base.join(path).map_err(|e| PromError::BadUrl {
            url: format!("{}{path}", self.base),
            reason: e.to_string(),
        })?;
        if !params.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// GET /-/ready: Prometheus answers 200 once it can serve queries.
    pub async fn ready(&self) -> Result<(), PromError> {
        let url = self.url("-/ready", &[])?;
        self.with_retries(&url, || async {
            match self.http.get(url.clone()).send().await {
                Err(e) => Attempt::Transient(self.transport_error(e)),
                Ok(resp) if resp.status().is_success() => Attempt::Done(()),
                Ok(resp) if resp.status() == StatusCode::SERVICE_UNAVAILABLE => {
                    Attempt::Transient(self.unavailable(resp.status(), "not ready yet".into()))
                }
                Ok(resp) => Attempt::Fatal(PromError::NotPrometheus {
                    url: self.base.to_string(),
                    detail: format!("GET {url} answered HTTP {}", resp.status().as_u16()),
                }),
            }
        })
        .await
    }

    pub async fn build_version(&self) -> Result<String, PromError> {
        let info: wire::BuildInfo = self.api("api/v1/status/buildinfo", &[], None).await?;
        Ok(info.version)
    }

    pub async fn query(&self, expr: &str, at: SystemTime) -> Result<Vec<Sample>, PromError> {
        let params = [("query", expr.to_string()), ("time", unix_secs(at))];
        let unsupported = |kind: &str| PromError::Query {
            url: self.base.to_string(),
            expr: expr.into(),
            error_type: "unsupported_result".into(),
            message: format!("an instant query returned a {kind}, expected a vector or scalar"),
        };
        match self.api("api/v1/query", &params, Some(expr)).await? {
            wire::QueryData::Vector(items) => Ok(items
                .into_iter()
                .map(|s| Sample {
                    labels: s.metric,
                    value: s.value.value,
                })
                .collect()),
            wire::QueryData::Scalar(p) => Ok(vec![Sample {
                labels: BTreeMap::new(),
                value: p.value,
            }]),
            wire::QueryData::Matrix(_) => Err(unsupported("matrix")),
            wire::QueryData::String(_) => Err(unsupported("string")),
        }
    }

    pub async fn query_range(
        &self,
        expr: &str,
        start: SystemTime,
        end: SystemTime,
        step: Duration,
    ) -> Result<Vec<Series>, PromError> {
        let params = [
            ("query", expr.to_string()),
            ("start", unix_secs(start)),
            ("end", unix_secs(end)),
            ("step", format!("{:.3}", step.as_secs_f64())),
        ];
        let data: wire::RangeData = self.api("api/v1/query_range", &params, Some(expr)).await?;
        Ok(data
            .result
            .into_iter()
            .map(|s| Series {
                labels: s.metric,
                points: s.values.into_iter().map(|p| (p.time, p.value)).collect(),
            })
            .collect())
    }

    pub async fn targets(&self) -> Result<Vec<TargetInfo>, PromError> {
        let params = [("state", "active".to_string())];
        let data: wire::TargetsData = self.api("api/v1/targets", &params, None).await?;
        Ok(data
            .active_targets
            .into_iter()
            .map(|t| TargetInfo {
                job: t.labels.get("job").cloned().unwrap_or(t.scrape_pool),
                scrape_url: t.scrape_url,
                health: t.health,
                last_error: t.last_error,
            })
            .collect())
    }

    pub async fn rules(&self) -> Result<Vec<LoadedRule>, PromError> {
        let data: wire::RulesData = self.api("api/v1/rules", &[], None).await?;
        Ok(data
            .groups
            .into_iter()
            .flat_map(|g| {
                let group = g.name;
                g.rules.into_iter().map(move |r| LoadedRule {
                    group: group.clone(),
                    name: r.name,
                    kind: r.kind,
                    health: r.health,
                    last_error: r.last_error,
                    query: r.query,
                    duration: Duration::try_from_secs_f64(r.duration.max(0.0)).unwrap_or_default(),
                })
            })
            .collect())
    }

    pub async fn alerts(&self) -> Result<Vec<ActiveAlert>, PromError> {
        let data: wire::AlertsData = self.api("api/v1/alerts", &[], None).await?;
        Ok(data
            .alerts
            .into_iter()
            .map(|a| ActiveAlert {
                name: a.labels.get("alertname").cloned().unwrap_or_default(),
                state: a.state,
                active_at: a.active_at.and_then(|t| {
                    humantime::parse_rfc3339(&t)
                        .or_else(|_| humantime::parse_rfc3339_weak(&t))
                        .ok()
                }),
                value: parse_value(&a.value).unwrap_or(f64::NAN),
                labels: a.labels,
            })
            .collect())
    }

    pub async fn alertmanagers(&self) -> Result<Vec<String>, PromError> {
        let data: wire::AlertmanagersData = self.api("api/v1/alertmanagers", &[], None).await?;
        Ok(data
            .active_alertmanagers
            .into_iter()
            .map(|a| a.url)
            .collect())
    }

    /// Polls `up{job=…}` until one series is 1. Bounded by `timeout`; on
    /// expiry the error carries the target's last scrape error.
    pub async fn wait_target_up(
        &self,
        job: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<(), PromError> {
        let expr = format!("up{{job=\"{}\"}} == 1", escape_label(job));
        let started = Instant::now();
        let mut last_problem = String::from("no scrape has happened yet");
        loop {
            match self.query(&expr, SystemTime::now()).await {
                Ok(samples) if !samples.is_empty() => return Ok(()),
                Ok(_) => {}
                // The API itself failing is not "target down": say so at once.
                Err(e @ (PromError::NotPrometheus { .. } | PromError::Query { .. })) => {
                    return Err(e);
                }
                Err(e) => last_problem = e.to_string(),
            }
            if started.elapsed() >= timeout {
                break;
            }
            tokio::select! {
                _ = cancel.cancelled() => return Err(PromError::Cancelled("waiting for the target to be up")),
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
        let detail = match self.targets().await {
            Ok(targets) => {
                let mine: Vec<_> = targets.iter().filter(|t| t.job == job).collect();
                if targets.is_empty() {
                    "prometheus has not discovered any target yet (it applies static targets ~5 s after start)".to_string()
                } else if mine.is_empty() {
                    let jobs: Vec<_> = targets.iter().map(|t| t.job.as_str()).collect();
                    format!(
                        "prometheus has no active target with job {job:?} (jobs: {})",
                        list_or_none(&jobs)
                    )
                } else {
                    mine.iter()
                        .map(|t| {
                            let err = if t.last_error.is_empty() {
                                "no error recorded".into()
                            } else {
                                t.last_error.clone()
                            };
                            format!("{} is {}: {err}", t.scrape_url, t.health)
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            }
            Err(_) => last_problem,
        };
        Err(PromError::TargetNotUp {
            job: job.into(),
            waited: timeout,
            detail,
        })
    }

    /// GET an API path, unwrap the `{"status": …, "data": …}` envelope and
    /// decode the data as `T`.
    async fn api<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, String)],
        expr: Option<&str>,
    ) -> Result<T, PromError> {
        let url = self.url(path, params)?;
        self.with_retries(&url, || self.api_once(&url, expr)).await
    }

    async fn api_once<T: DeserializeOwned>(&self, url: &Url, expr: Option<&str>) -> Attempt<T> {
        let resp = match self.http.get(url.clone()).send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Transient(self.transport_error(e)),
        };
        let status = resp.status();
        match resp.bytes().await {
            Ok(body) => self.decode(url, expr, status, &body),
            Err(e) => Attempt::Transient(self.transport_error(e)),
        }
    }

    /// One answer of the API: its data, a query error, or not the API.
    fn decode<T: DeserializeOwned>(
        &self,
        url: &Url,
        expr: Option<&str>,
        status: StatusCode,
        body: &[u8],
    ) -> Attempt<T> {
        let Ok(envelope) = serde_json::from_slice::<Envelope<IgnoredAny>>(body) else {
            return self.not_the_api(url, status, body);
        };
        match envelope.status {
            Status::Error => {
                let err = PromError::Query {
                    url: self.base.to_string(),
                    expr: expr.unwrap_or(url.path()).into(),
                    error_type: envelope.error_type.clone(),
                    message: envelope.error,
                };
                // "unavailable" (e.g. still starting) may pass; a bad query never will.
                let t = envelope.error_type;
                if status.is_server_error() && t != "bad_data" && t != "execution" {
                    Attempt::Transient(err)
                } else {
                    Attempt::Fatal(err)
                }
            }
            Status::Success if status.is_success() => {
                match serde_json::from_slice::<Envelope<T>>(body) {
                    Ok(Envelope { data: Some(d), .. }) => Attempt::Done(d),
                    Ok(_) => Attempt::Fatal(self.not_prometheus(&format!(
                        "GET {} answered success without data",
                        url.path()
                    ))),
                    Err(e) => Attempt::Fatal(self.not_prometheus(&format!(
                        "GET {} answered data slocheck cannot read: {e}",
                        url.path()
                    ))),
                }
            }
            Status::Success => self.not_the_api(url, status, body),
        }
    }

    /// An answer without a usable API envelope: a server error is worth
    /// retrying, anything else is not Prometheus.
    fn not_the_api<T>(&self, url: &Url, status: StatusCode, body: &[u8]) -> Attempt<T> {
        if status.is_server_error() {
            return Attempt::Transient(self.unavailable(status, snippet(body)));
        }
        let what = if status == StatusCode::NOT_FOUND {
            return Attempt::Fatal(
                self.not_prometheus(&format!("GET {} answered 404 Not Found", url.path())),
            );
        } else if serde_json::from_slice::<IgnoredAny>(body).is_err() {
            "a body that is not JSON"
        } else {
            "JSON lacking the API envelope"
        };
        Attempt::Fatal(self.not_prometheus(&format!(
            "GET {} answered HTTP {} with {what}: {}",
            url.path(),
            status.as_u16(),
            snippet(body)
        )))
    }

    async fn with_retries<T, F, Fut>(&self, url: &Url, mut once: F) -> Result<T, PromError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let mut last = None;
        for attempt in 1..=ATTEMPTS {
            match once().await {
                Attempt::Done(v) => return Ok(v),
                Attempt::Fatal(e) => return Err(e),
                Attempt::Transient(e) => last = Some(e),
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        Err(match last {
            Some(PromError::Timeout { .. }) | None => PromError::Timeout {
                url: url.as_str().split('?').next().unwrap_or_default().into(),
                attempts: ATTEMPTS,
                elapsed: started.elapsed(),
                per_request: self.timeout,
            },
            Some(PromError::Unavailable {
                url, status, body, ..
            }) => PromError::Unavailable {
                url,
                status,
                attempts: ATTEMPTS,
                body,
            },
            Some(other) => other,
        })
    }

    fn transport_error(&self, e: reqwest::Error) -> PromError {
        if e.is_timeout() {
            return PromError::Timeout {
                url: self.base.to_string(),
                attempts: 1,
                elapsed: self.timeout,
                per_request: self.timeout,
            };
        }
        PromError::Unreachable {
            url: self.base.to_string(),
            reason: root_cause(&e),
            source: Some(e),
        }
    }

    fn unavailable(&self, status: StatusCode, body: String) -> PromError {
        PromError::Unavailable {
            url: self.base.to_string(),
            status: status.as_u16(),
            attempts: 1,
            body,
        }
    }

    fn not_prometheus(&self, detail: &str) -> PromError {
        PromError::NotPrometheus {
            url: self.base.to_string(),
            detail: detail.into(),
        }
    }
}

/// The innermost cause, lowercased: "connection refused" reads better than
/// reqwest's "error sending request for url (…)".
fn root_cause(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = crate::prom::rules::one_line(&cause.to_string());
    let text = match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    text.to_lowercase()
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = crate::prom::rules::one_line(&text);
    if text.chars().count() > 120 {
        format!("{}…", text.chars().take(120).collect::<String>())
    } else {
        text
    }
}

fn unix_secs(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `decode` made of one answer, in words a table can hold.
    fn decoded(status: u16, body: &str) -> String {
        let c = PromClient::new(
            Url::parse("http://127.0.0.1:9/").expect("url"),
            Duration::from_secs(1),
        )
        .expect("client");
        let url = c.url("api/v1/query", &[]).expect("join");
        let status = StatusCode::from_u16(status).expect("status");
        match c.decode::<wire::QueryData>(&url, Some("up"), status, body.as_bytes()) {
            Attempt::Done(wire::QueryData::Vector(v)) => format!("vector of {}", v.len()),
            Attempt::Done(other) => format!("{other:?}"),
            Attempt::Transient(e) => format!("transient: {e}"),
            Attempt::Fatal(e) => format!("fatal: {e}"),
        }
    }

    #[test]
    fn answers_decode_into_data_query_errors_or_not_prometheus() {
        let ok = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        let cases = [
            (200, ok, "vector of 0"),
            (503, ok, "transient:"),
            (
                400,
                r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
                "fatal: ",
            ),
            (
                503,
                r#"{"status":"error","errorType":"unavailable","error":"starting"}"#,
                "transient:",
            ),
            (
                200,
                r#"{"status":"success","data":{"resultType":"vector","result":[{"value":"x"}]}}"#,
                "answered data slocheck cannot read",
            ),
            (200, r#"{"status":"success"}"#, "success without data"),
            (200, r#"{"hello":1}"#, "JSON lacking the API envelope"),
            (200, "<html>", "a body that is not JSON"),
            (404, "nope", "404 Not Found"),
            (502, "<html>", "transient:"),
        ];
        for (status, body, want) in cases {
            let got = decoded(status, body);
            assert!(got.contains(want), "{status} {body}: {got}");
        }
    }

    #[test]
    fn base_url_keeps_prefix_and_rejects_non_http() {
        let c = PromClient::new(
            Url::parse("http://127.0.0.1:9090/prom").expect("url"),
            Duration::from_secs(1),
        )
        .expect("client");
        assert_eq!(
            c.url("api/v1/query", &[]).expect("join").as_str(),
            "http://127.0.0.1:9090/prom/api/v1/query"
        );
        let bad = PromClient::new(
            Url::parse("ftp://127.0.0.1/").expect("url"),
            Duration::from_secs(1),
        );
        assert!(matches!(bad, Err(PromError::BadUrl { .. })));
    }

    #[test]
    fn job_names_are_escaped_in_promql() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(unix_secs(UNIX_EPOCH + Duration::from_millis(1500)), "1.500");
    }
}
