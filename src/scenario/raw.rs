//! The scenario file exactly as written: a strict serde model (unknown keys
//! rejected, spans kept) that `resolve` turns into a `Plan`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor, value::MapAccessDeserializer};
use toml::Spanned;

/// A value together with the byte range it was written at.
pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Option<S<String>>,
    pub seed: Option<S<i64>>,
    pub allow_inconclusive: Option<bool>,
    pub target: Option<S<RawTarget>>,
    pub prometheus: Option<S<RawPrometheus>>,
    pub load: Option<S<RawLoad>>,
    pub phase: Option<S<Vec<S<RawPhase>>>>,
    pub expect: Option<Vec<S<RawExpect>>>,
    pub alertmanager: Option<S<RawAlertmanager>>,
    pub metrics: Option<S<super::metrics::RawMetrics>>,
    pub model: Option<S<RawModel>>,
    pub slo: Option<Vec<S<crate::slo::RawSlo>>>,
}

/// `[model]`: labels in the bodies and the evaluation batch job.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub label_key: S<String>,
    pub evaluate_every: Option<S<Dur>>,
    pub window: Option<S<Dur>>,
    pub label_delay: Option<S<Dur>>,
    pub job: Option<S<String>>,
    pub pushgateway_url: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDrift {
    pub shift: S<f64>,
    pub fraction: Option<S<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModelQuality {
    pub metric: S<String>,
    pub class: Option<S<String>>,
    pub phase: S<String>,
    pub below: Option<S<toml::Value>>,
    pub above: Option<S<toml::Value>>,
    pub near: Option<S<toml::Value>>,
    pub tolerance: Option<S<toml::Value>>,
    pub between: Option<S<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlertmanager {
    pub config: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub url: Option<S<String>>,
    pub request: Option<S<RawRequest>>,
    pub timeout: Option<S<Dur>>,
    pub connect_timeout: Option<S<Dur>>,
    pub tls: Option<S<RawTls>>,
    pub http_version: Option<S<String>>,
    pub connections: Option<S<i64>>,
    pub keep_alive: Option<S<bool>>,
}

/// `[target] tls = { ca_file, insecure, client_cert, client_key, server_name }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub ca_file: Option<S<String>>,
    pub insecure: Option<S<bool>>,
    pub client_cert: Option<S<String>>,
    pub client_key: Option<S<String>>,
    pub server_name: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequest {
    pub method: Option<S<String>>,
    pub path: Option<S<String>>,
    pub headers: Option<BTreeMap<String, S<String>>>,
    pub body: Option<S<String>>,
    pub body_file: Option<S<String>>,
    pub content_type: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrometheus {
    pub url: Option<S<String>>,
    pub scrape_interval: Option<S<Dur>>,
    pub evaluation_interval: Option<S<Dur>>,
    pub rule_files: Option<S<Vec<S<String>>>>,
    pub time_scale: Option<S<f64>>,
    pub job: Option<S<String>>,
    pub settle: Option<S<Dur>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawMode {
    Open,
    Closed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoad {
    pub mode: Option<S<RawMode>>,
    pub rate: Option<S<RawRate>>,
    pub concurrency: Option<S<i64>>,
    pub think_time: Option<S<Dur>>,
    pub max_in_flight: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPhase {
    pub name: S<String>,
    pub duration: S<Dur>,
    pub rate: Option<S<RawRate>>,
    pub concurrency: Option<S<i64>>,
    pub faults: Option<S<RawFaults>>,
    pub evaluate: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFaults {
    pub error_rate: Option<S<f64>>,
    pub status: Option<S<i64>>,
    pub latency_ratio: Option<S<f64>>,
    pub delay: Option<S<RawDelay>>,
    pub drift: Option<S<RawDrift>>,
}

/// One `[[expect]]` table. The kind keys and their options share one flat
/// table (no `flatten`/`untagged`, which would blur error messages);
/// `resolve` checks that exactly one kind is present and that every other
/// key applies to it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    pub name: Option<S<String>>,
    pub allow_inconclusive: Option<bool>,
    pub latency_quantile: Option<S<f64>>,
    pub error_ratio: Option<S<RawErrorRatio>>,
    pub alert: Option<S<String>>,
    pub promql: Option<S<String>>,
    pub phase: Option<S<String>>,
    pub aggregate: Option<S<RawAggregate>>,
    pub below: Option<S<toml::Value>>,
    pub above: Option<S<toml::Value>>,
    pub near: Option<S<toml::Value>>,
    pub tolerance: Option<S<toml::Value>>,
    pub between: Option<S<toml::Value>>,
    pub silent_during: Option<S<Vec<S<String>>>>,
    pub fires_during: Option<S<String>>,
    pub fire_within: Option<S<Dur>>,
    pub resolves_during: Option<S<String>>,
    pub resolve_within: Option<S<Dur>>,
    pub notified: Option<S<String>>,
    pub receiver: Option<S<String>>,
    pub labels: Option<S<BTreeMap<String, S<String>>>>,
    pub firing_within: Option<S<Dur>>,
    pub resolved_within: Option<S<Dur>>,
    /// `latency_mean = { phase = "baseline", below = "200ms" }`.
    pub latency_mean: Option<S<RawErrorRatio>>,
    pub load: Option<S<RawLoadExpect>>,
    pub model_quality: Option<S<RawModelQuality>>,
}

/// `load = { phase = "spike", min_achieved_ratio = 0.99, max_dropped = 0 }`:
/// the generator delivered the phase's schedule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoadExpect {
    pub phase: S<String>,
    pub min_achieved_ratio: Option<S<f64>>,
    pub max_dropped: Option<S<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawErrorRatio {
    pub phase: S<String>,
    pub below: Option<S<toml::Value>>,
    pub above: Option<S<toml::Value>>,
    pub near: Option<S<toml::Value>>,
    pub tolerance: Option<S<toml::Value>>,
    pub between: Option<S<toml::Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawAggregate {
    Last,
    Min,
    Max,
    Avg,
}

/// A human duration such as `"250ms"`, `"15s"` or `"1m 30s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

pub const DURATION_HINT: &str = r#"write durations like "250ms", "15s" or "1m 30s""#;

/// Parses a duration string with a message that fits the one-line format.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.starts_with('-') {
        return Err(format!("duration must not be negative, got \"{s}\""));
    }
    let d = humantime::parse_duration(t)
        .map_err(|e| format!("invalid duration \"{s}\": {e} (hint: {DURATION_HINT})"))?;
    if d > MAX_DURATION {
        return Err(format!("duration \"{s}\" is longer than 365 days"));
    }
    Ok(d)
}

/// Longest duration accepted anywhere: keeps every sum and multiple of
/// durations far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a duration string such as "250ms" or "15s""#)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                parse_duration(s).map(Dur).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// `rate = 200` or `rate = { from = 50, to = 400 }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawRate {
    Constant(f64),
    Ramp { from: f64, to: f64 },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRamp {
    from: f64,
    to: f64,
}

impl<'de> Deserialize<'de> for RawRate {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawRate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("requests per second as a number, or a ramp { from = 50, to = 400 }")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawRate, E> {
                Ok(RawRate::Constant(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawRate, E> {
                Ok(RawRate::Constant(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawRate, E> {
                Ok(RawRate::Constant(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawRate, A::Error> {
                let r = RawRamp::deserialize(MapAccessDeserializer::new(map))?;
                Ok(RawRate::Ramp {
                    from: r.from,
                    to: r.to,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `delay = "300ms"`, `delay = { uniform = ["100ms", "500ms"] }` or
/// `delay = { exponential = "200ms", max = "2s" }`.
#[derive(Debug, Clone, PartialEq)]
pub enum RawDelay {
    Fixed(Duration),
    Table(RawDelayTable),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDelayTable {
    pub uniform: Option<[Dur; 2]>,
    pub exponential: Option<Dur>,
    pub max: Option<Dur>,
}

impl<'de> Deserialize<'de> for RawDelay {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawDelay;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    r#"a duration such as "300ms", { uniform = ["100ms", "500ms"] } or { exponential = "200ms", max = "2s" }"#,
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawDelay, E> {
                parse_duration(s).map(RawDelay::Fixed).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawDelay, A::Error> {
                RawDelayTable::deserialize(MapAccessDeserializer::new(map)).map(RawDelay::Table)
            }
        }
        d.deserialize_any(V)
    }
}
