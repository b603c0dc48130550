//! The Prometheus HTTP API's JSON answers as typed serde structs: the
//! `{"status", "data", "errorType", "error"}` envelope and the `data` of
//! each endpoint the client calls. Unknown fields are ignored (Prometheus
//! adds fields between versions); missing optional ones default.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::RuleKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Success,
    Error,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    pub status: Status,
    pub data: Option<T>,
    #[serde(default)]
    pub error_type: String,
    #[serde(default)]
    pub error: String,
}

pub type Labels = BTreeMap<String, String>;

/// `[1700000000.123, "0.5"]`: a unix time in seconds and a value spelled as
/// a string (`NaN`, `+Inf` and `-Inf` included).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "(f64, String)")]
pub struct Point {
    pub time: SystemTime,
    pub value: f64,
}

impl TryFrom<(f64, String)> for Point {
    type Error = String;

    fn try_from((ts, value): (f64, String)) -> Result<Point, String> {
        if !ts.is_finite() || ts < 0.0 {
            return Err(format!("sample time {ts} is not a unix time"));
        }
        let value =
            parse_value(&value).ok_or_else(|| format!("sample value {value:?} is not a number"))?;
        Ok(Point {
            time: UNIX_EPOCH + Duration::from_secs_f64(ts),
            value,
        })
    }
}

/// Prometheus spells special values `NaN`, `+Inf`, `-Inf`.
pub fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// `data` of `/api/v1/query`.
#[derive(Debug, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
pub enum QueryData {
    Vector(Vec<VectorSample>),
    Scalar(Point),
    Matrix(IgnoredAny),
    String(IgnoredAny),
}

#[derive(Debug, Deserialize)]
pub struct VectorSample {
    #[serde(default)]
    pub metric: Labels,
    pub value: Point,
}

/// `data` of `/api/v1/query_range` (always a matrix).
#[derive(Debug, Deserialize)]
pub struct RangeData {
    pub result: Vec<RangeSeries>,
}

#[derive(Debug, Deserialize)]
pub struct RangeSeries {
    #[serde(default)]
    pub metric: Labels,
    pub values: Vec<Point>,
}

/// `data` of `/api/v1/status/buildinfo`.
#[derive(Debug, Deserialize)]
pub struct BuildInfo {
    pub version: String,
}

/// `data` of `/api/v1/targets`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetsData {
    pub active_targets: Vec<Target>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    #[serde(default)]
    pub labels: Labels,
    #[serde(default)]
    pub scrape_pool: String,
    #[serde(default)]
    pub scrape_url: String,
    #[serde(default)]
    pub health: String,
    #[serde(default)]
    pub last_error: String,
}

/// `data` of `/api/v1/rules`.
#[derive(Debug, Deserialize)]
pub struct RulesData {
    pub groups: Vec<RuleGroup>,
}

#[derive(Debug, Deserialize)]
pub struct RuleGroup {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(rename = "type")]
    pub kind: RuleKind,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub health: String,
    #[serde(default)]
    pub last_error: String,
    #[serde(default)]
    pub query: String,
    /// `for` of an alerting rule, in seconds.
    #[serde(default)]
    pub duration: f64,
}

/// `data` of `/api/v1/alerts`.
#[derive(Debug, Deserialize)]
pub struct AlertsData {
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    #[serde(default)]
    pub labels: Labels,
    #[serde(default)]
    pub state: String,
    pub active_at: Option<String>,
    #[serde(default)]
    pub value: String,
}

/// `data` of `/api/v1/alertmanagers`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagersData {
    #[serde(default)]
    pub active_alertmanagers: Vec<AlertmanagerEntry>,
}

#[derive(Debug, Deserialize)]
pub struct AlertmanagerEntry {
    pub url: String,
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
        let p: Point = serde_json::from_str("[1700000000.5, \"3\"]").expect("point");
        assert_eq!(
            p.time,
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_500)
        );
        assert_eq!(p.value, 3.0);
        for bad in ["[\"x\", \"3\"]", "[-1, \"3\"]", "[1, \"three\"]", "[1]"] {
            assert!(serde_json::from_str::<Point>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers_decode_by_result_type() {
        let v: Envelope<QueryData> = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"a"},"value":[1,"2"]}]}}"#,
        )
        .expect("vector");
        assert_eq!(v.status, Status::Success);
        let Some(QueryData::Vector(items)) = v.data else {
            panic!("not a vector: {v:?}")
        };
        assert_eq!(items[0].metric.get("job").map(String::as_str), Some("a"));
        let s: QueryData =
            serde_json::from_str(r#"{"resultType":"scalar","result":[1,"NaN"]}"#).expect("scalar");
        assert!(matches!(s, QueryData::Scalar(p) if p.value.is_nan()));
        let m: QueryData =
            serde_json::from_str(r#"{"resultType":"matrix","result":[]}"#).expect("matrix");
        assert!(matches!(m, QueryData::Matrix(_)));
        let e: Envelope<IgnoredAny> = serde_json::from_str(
            r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
        )
        .expect("error envelope");
        assert_eq!(
            (e.status, e.error_type.as_str(), e.error.as_str()),
            (Status::Error, "bad_data", "parse error")
        );
    }

    #[test]
    fn rules_and_alerts_decode_with_defaults() {
        let r: RulesData = serde_json::from_str(
            r#"{"groups":[{"name":"g","rules":[
                {"type":"alerting","name":"A","query":"up == 0","duration":15,"health":"ok","alerts":[]},
                {"type":"recording","name":"r","query":"sum(up)"}]}]}"#,
        )
        .expect("rules");
        let rules = &r.groups[0].rules;
        assert_eq!(
            (rules[0].kind, rules[0].duration),
            (RuleKind::Alerting, 15.0)
        );
        assert_eq!(
            (rules[1].kind, rules[1].duration),
            (RuleKind::Recording, 0.0)
        );
        let a: AlertsData = serde_json::from_str(
            r#"{"alerts":[{"labels":{"alertname":"A"},"state":"firing","activeAt":"2024-01-01T00:00:00Z","value":"1e+00"}]}"#,
        )
        .expect("alerts");
        assert_eq!(a.alerts[0].state, "firing");
        assert!(
            serde_json::from_str::<RulesData>(r#"{"groups":[{"rules":[{"type":"other"}]}]}"#)
                .is_err()
        );
    }
}
