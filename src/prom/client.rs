//! A thin, bounded client for the Prometheus HTTP API: per-request timeout,
//! a few retries with backoff on transient failures, and errors that say
//! which URL failed and how.
//!
//! reqwest is used directly (not prometheus-http-query) because telling
//! "unreachable" from "not Prometheus" from "bad query" needs the raw status
//! and body.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::{StatusCode, Url};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::error::PromError;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
enum Attempt {
    Done(Value),
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
                Ok(resp) if resp.status().is_success() => Attempt::Done(Value::Null),
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
        .map(|_| ())
    }

    pub async fn build_version(&self) -> Result<String, PromError> {
        let data = self.api("api/v1/status/buildinfo", &[], None).await?;
        data.get("version")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| self.not_prometheus("buildinfo has no version"))
    }

    pub async fn query(&self, expr: &str, at: SystemTime) -> Result<Vec<Sample>, PromError> {
        let params = [("query", expr.to_string()), ("time", unix_secs(at))];
        let data = self.api("api/v1/query", &params, Some(expr)).await?;
        let result = data.get("result").unwrap_or(&Value::Null);
        match data.get("resultType").and_then(Value::as_str) {
            Some("vector") => {
                let items = result
                    .as_array()
                    .ok_or_else(|| self.not_prometheus("vector result is not a list"))?;
                items
                    .iter()
                    .map(|item| {
                        let labels = labels(item.get("metric"));
                        let value = item
                            .get("value")
                            .and_then(point)
                            .ok_or_else(|| self.not_prometheus("vector sample has no value"))?;
                        Ok(Sample {
                            labels,
                            value: value.1,
                        })
                    })
                    .collect()
            }
            Some("scalar") => {
                let (_, value) = point(result)
                    .ok_or_else(|| self.not_prometheus("scalar result has no value"))?;
                Ok(vec![Sample {
                    labels: BTreeMap::new(),
                    value,
                }])
            }
            Some(other) => Err(PromError::Query {
                url: self.base.to_string(),
                expr: expr.into(),
                error_type: "unsupported_result".into(),
                message: format!(
                    "an instant query returned a {other}, expected a vector or scalar"
                ),
            }),
            None => Err(self.not_prometheus("query result has no resultType")),
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
        let data = self.api("api/v1/query_range", &params, Some(expr)).await?;
        let items = data
            .get("result")
            .and_then(Value::as_array)
            .ok_or_else(|| self.not_prometheus("range query result is not a list"))?;
        items
            .iter()
            .map(|item| {
                let points = item
                    .get("values")
                    .and_then(Value::as_array)
                    .ok_or_else(|| self.not_prometheus("range series has no values"))?
                    .iter()
                    .map(|p| point(p).ok_or_else(|| self.not_prometheus("malformed range point")))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Series {
                    labels: labels(item.get("metric")),
                    points,
                })
            })
            .collect()
    }

    pub async fn targets(&self) -> Result<Vec<TargetInfo>, PromError> {
        let params = [("state", "active".to_string())];
        let data = self.api("api/v1/targets", &params, None).await?;
        let active = data
            .get("activeTargets")
            .and_then(Value::as_array)
            .ok_or_else(|| self.not_prometheus("targets has no activeTargets"))?;
        Ok(active
            .iter()
            .map(|t| TargetInfo {
                job: t
                    .pointer("/labels/job")
                    .or_else(|| t.get("scrapePool"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .into(),
                scrape_url: str_field(t, "scrapeUrl"),
                health: str_field(t, "health"),
                last_error: str_field(t, "lastError"),
            })
            .collect())
    }

    pub async fn rules(&self) -> Result<Vec<LoadedRule>, PromError> {
        let data = self.api("api/v1/rules", &[], None).await?;
        let groups = data
            .get("groups")
            .and_then(Value::as_array)
            .ok_or_else(|| self.not_prometheus("rules has no groups"))?;
        let mut out = Vec::new();
        for g in groups {
            let group = str_field(g, "name");
            for r in g
                .get("rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let kind = match r.get("type").and_then(Value::as_str) {
                    Some("alerting") => RuleKind::Alerting,
                    _ => RuleKind::Recording,
                };
                out.push(LoadedRule {
                    group: group.clone(),
                    name: str_field(r, "name"),
                    kind,
                    health: str_field(r, "health"),
                    last_error: str_field(r, "lastError"),
                    query: str_field(r, "query"),
                    duration: Duration::from_secs_f64(
                        r.get("duration")
                            .and_then(Value::as_f64)
                            .unwrap_or(0.0)
                            .max(0.0),
                    ),
                });
            }
        }
        Ok(out)
    }

    pub async fn alerts(&self) -> Result<Vec<ActiveAlert>, PromError> {
        let data = self.api("api/v1/alerts", &[], None).await?;
        let alerts = data
            .get("alerts")
            .and_then(Value::as_array)
            .ok_or_else(|| self.not_prometheus("alerts has no list"))?;
        Ok(alerts
            .iter()
            .map(|a| {
                let labels = labels(a.get("labels"));
                ActiveAlert {
                    name: labels.get("alertname").cloned().unwrap_or_default(),
                    state: str_field(a, "state"),
                    active_at: a.get("activeAt").and_then(Value::as_str).and_then(|t| {
                        humantime::parse_rfc3339(t)
                            .or_else(|_| humantime::parse_rfc3339_weak(t))
                            .ok()
                    }),
                    value: a
                        .get("value")
                        .and_then(Value::as_str)
                        .and_then(parse_value)
                        .unwrap_or(f64::NAN),
                    labels,
                }
            })
            .collect())
    }

    pub async fn alertmanagers(&self) -> Result<Vec<String>, PromError> {
        let data = self.api("api/v1/alertmanagers", &[], None).await?;
        Ok(data
            .get("activeAlertmanagers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| a.get("url").and_then(Value::as_str).map(str::to_string))
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

    /// GET an API path and unwrap the `{"status": …, "data": …}` envelope.
    async fn api(
        &self,
        path: &str,
        params: &[(&str, String)],
        expr: Option<&str>,
    ) -> Result<Value, PromError> {
        let url = self.url(path, params)?;
        self.with_retries(&url, || self.api_once(&url, expr)).await
    }

    async fn api_once(&self, url: &Url, expr: Option<&str>) -> Attempt {
        let resp = match self.http.get(url.clone()).send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Transient(self.transport_error(e)),
        };
        let status = resp.status();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Attempt::Transient(self.transport_error(e)),
        };
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let envelope = json
            .as_ref()
            .and_then(|j| j.get("status"))
            .and_then(Value::as_str);
        match envelope {
            Some("success") if status.is_success() => Attempt::Done(
                json.and_then(|mut j| j.get_mut("data").map(Value::take))
                    .unwrap_or(Value::Null),
            ),
            Some("error") => {
                let j = json.as_ref();
                let error_type = j.map(|j| str_field(j, "errorType")).unwrap_or_default();
                let message = j.map(|j| str_field(j, "error")).unwrap_or_default();
                let err = PromError::Query {
                    url: self.base.to_string(),
                    expr: expr.unwrap_or(url.path()).into(),
                    error_type: error_type.clone(),
                    message,
                };
                // "unavailable" (e.g. still starting) may pass; a bad query never will.
                if status.is_server_error() && error_type != "bad_data" && error_type != "execution"
                {
                    Attempt::Transient(err)
                } else {
                    Attempt::Fatal(err)
                }
            }
            _ if status.is_server_error() => {
                Attempt::Transient(self.unavailable(status, snippet(&body)))
            }
            _ => Attempt::Fatal(PromError::NotPrometheus {
                url: self.base.to_string(),
                detail: if status == StatusCode::NOT_FOUND {
                    format!("GET {} answered 404 Not Found", url.path())
                } else if json.is_none() {
                    format!(
                        "GET {} answered HTTP {} with a body that is not JSON: {}",
                        url.path(),
                        status.as_u16(),
                        snippet(&body)
                    )
                } else {
                    format!(
                        "GET {} answered HTTP {} with JSON lacking the API envelope: {}",
                        url.path(),
                        status.as_u16(),
                        snippet(&body)
                    )
                },
            }),
        }
    }

    async fn with_retries<F, Fut>(&self, url: &Url, mut once: F) -> Result<Value, PromError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Attempt>,
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

fn str_field(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn labels(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `[1700000000.123, "0.5"]` → (time, value).
fn point(v: &Value) -> Option<(SystemTime, f64)> {
    let arr = v.as_array()?;
    let ts = arr.first()?.as_f64()?;
    let value = parse_value(arr.get(1)?.as_str()?)?;
    if !ts.is_finite() || ts < 0.0 {
        return None;
    }
    Some((UNIX_EPOCH + Duration::from_secs_f64(ts), value))
}

/// Prometheus spells special values `NaN`, `+Inf`, `-Inf`.
pub(crate) fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
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

    #[test]
    fn values_and_points_parse() {
        assert_eq!(parse_value("0.25"), Some(0.25));
        assert!(parse_value("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value("-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_value("x"), None);
        let p = point(&serde_json::json!([1700000000.5, "3"])).expect("point");
        assert_eq!(p.0, UNIX_EPOCH + Duration::from_millis(1_700_000_000_500));
        assert_eq!(p.1, 3.0);
        assert!(point(&serde_json::json!(["x", "3"])).is_none());
        assert!(point(&serde_json::json!([-1, "3"])).is_none());
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
