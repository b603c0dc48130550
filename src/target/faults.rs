//! Fault protocol: the per-request `x-slocheck-fault` header (parse and
//! canonical format) and the admin fault config with its seeded sampler.

use std::fmt::Write as _;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::plan::DelayDist;

/// Name of the request header carrying a per-request fault.
pub const FAULT_HEADER: &str = "x-slocheck-fault";

/// Longest delay the target will inject, so a typo cannot hold a connection
/// (and a worker of the load generator) for hours.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

/// Statuses the target can inject. An informational (1xx) status cannot be
/// a final response: hyper would send 500 while the metrics said 1xx.
pub const INJECTABLE_STATUSES: std::ops::RangeInclusive<u16> = 200..=599;

/// What one request asks the target to do instead of (or before) answering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InjectedFault {
    /// Answer with this status without running the model.
    pub status: Option<u16>,
    /// Wait this long before answering.
    pub delay: Option<Duration>,
}

impl InjectedFault {
    pub fn is_empty(&self) -> bool {
        self.status.is_none() && self.delay.is_none()
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum FaultHeaderError {
    #[error(
        "fault header is empty (hint: use `status=503`, `delay=300ms` or both, comma-separated)"
    )]
    Empty,
    #[error("fault header part `{part}` is not key=value (hint: `status=503,delay=300ms`)")]
    NotKeyValue { part: String },
    #[error("fault header key `{key}` is unknown (hint: keys are `status` and `delay`)")]
    UnknownKey { key: String },
    #[error("fault header key `{key}` is given twice")]
    Duplicate { key: &'static str },
    #[error(
        "fault header status `{value}` is not a final HTTP status 200..=599 (1xx cannot end a response)"
    )]
    BadStatus { value: String },
    #[error("fault header delay `{value}` is not a duration (hint: `300ms`, `1s`)")]
    BadDelay {
        value: String,
        #[source]
        source: humantime::DurationError,
    },
    #[error("fault header delay `{value}` is longer than the {max_secs}s limit", max_secs = MAX_DELAY.as_secs())]
    DelayTooLong { value: String },
}

/// Parses `status=503`, `delay=300ms` or both, comma-separated, in any order;
/// whitespace around parts is ignored.
pub fn parse_fault_header(value: &str) -> Result<InjectedFault, FaultHeaderError> {
    let mut fault = InjectedFault::default();
    let mut any = false;
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        any = true;
        let (key, val) = part
            .split_once('=')
            .ok_or_else(|| FaultHeaderError::NotKeyValue {
                part: part.to_owned(),
            })?;
        let (key, val) = (key.trim(), val.trim());
        match key {
            "status" => {
                if fault.status.is_some() {
                    return Err(FaultHeaderError::Duplicate { key: "status" });
                }
                let status = val
                    .parse::<u16>()
                    .ok()
                    .filter(|s| INJECTABLE_STATUSES.contains(s))
                    .ok_or_else(|| FaultHeaderError::BadStatus {
                        value: val.to_owned(),
                    })?;
                fault.status = Some(status);
            }
            "delay" => {
                if fault.delay.is_some() {
                    return Err(FaultHeaderError::Duplicate { key: "delay" });
                }
                let delay = humantime::parse_duration(val).map_err(|source| {
                    FaultHeaderError::BadDelay {
                        value: val.to_owned(),
                        source,
                    }
                })?;
                if delay > MAX_DELAY {
                    return Err(FaultHeaderError::DelayTooLong {
                        value: val.to_owned(),
                    });
                }
                fault.delay = Some(delay);
            }
            other => {
                return Err(FaultHeaderError::UnknownKey {
                    key: other.to_owned(),
                });
            }
        }
    }
    if any {
        Ok(fault)
    } else {
        Err(FaultHeaderError::Empty)
    }
}

/// The canonical header value: `delay=<d>,status=<s>` with the delay in whole
/// milliseconds when it is one (`300ms`), else microseconds (`1500us`).
/// Empty string when there is no fault (send no header then).
pub fn format_fault_header(status: Option<u16>, delay: Option<Duration>) -> String {
    let mut out = String::with_capacity(24);
    if let Some(d) = delay {
        // Sub-microsecond precision is below what the target's timer can honour.
        let micros = d.as_micros();
        if micros % 1000 == 0 {
            let _ = write!(out, "delay={}ms", micros / 1000);
        } else {
            let _ = write!(out, "delay={micros}us");
        }
    }
    if let Some(s) = status {
        if !out.is_empty() {
            out.push(',');
        }
        let _ = write!(out, "status={s}");
    }
    out
}

/// The admin API's fault config: applies to every `/predict` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// Fraction of requests in [0, 1] answered with `status`.
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default = "default_status")]
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyConfig>,
}

fn default_status() -> u16 {
    503
}

impl Default for FaultConfig {
    /// No faults; a later `error_rate` alone answers 503.
    fn default() -> Self {
        FaultConfig {
            error_rate: 0.0,
            status: default_status(),
            latency: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyConfig {
    /// Fraction of requests in [0, 1] delayed.
    pub ratio: f64,
    pub delay: DelayConfig,
}

/// JSON spelling of [`DelayDist`]: `{"fixed":"300ms"}`,
/// `{"uniform":{"min":"100ms","max":"300ms"}}`,
/// `{"exponential":{"mean":"100ms","max":"2s"}}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DelayConfig {
    Fixed(#[serde(with = "humantime_serde")] Duration),
    Uniform {
        #[serde(with = "humantime_serde")]
        min: Duration,
        #[serde(with = "humantime_serde")]
        max: Duration,
    },
    Exponential {
        #[serde(with = "humantime_serde")]
        mean: Duration,
        #[serde(with = "humantime_serde")]
        max: Duration,
    },
}

impl From<DelayDist> for DelayConfig {
    fn from(d: DelayDist) -> Self {
        match d {
            DelayDist::Fixed(d) => DelayConfig::Fixed(d),
            DelayDist::Uniform { min, max } => DelayConfig::Uniform { min, max },
            DelayDist::Exponential { mean, max } => DelayConfig::Exponential { mean, max },
        }
    }
}

impl From<DelayConfig> for DelayDist {
    fn from(d: DelayConfig) -> Self {
        match d {
            DelayConfig::Fixed(d) => DelayDist::Fixed(d),
            DelayConfig::Uniform { min, max } => DelayDist::Uniform { min, max },
            DelayConfig::Exponential { mean, max } => DelayDist::Exponential { mean, max },
        }
    }
}

/// A rejected admin fault config; `field` is the JSON key path.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("fault config field `{field}`: {reason}")]
pub struct FaultConfigError {
    pub field: &'static str,
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> FaultConfigError {
    FaultConfigError {
        field,
        reason: reason.into(),
    }
}

fn check_ratio(field: &'static str, v: f64) -> Result<(), FaultConfigError> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(invalid(field, format!("{v} is not a fraction in [0, 1]")))
    }
}

fn check_delay(field: &'static str, d: Duration) -> Result<(), FaultConfigError> {
    if d > MAX_DELAY {
        Err(invalid(
            field,
            format!(
                "{} is longer than the {}s limit",
                humantime::format_duration(d),
                MAX_DELAY.as_secs()
            ),
        ))
    } else {
        Ok(())
    }
}

impl FaultConfig {
    pub fn validate(&self) -> Result<(), FaultConfigError> {
        check_ratio("error_rate", self.error_rate)?;
        if !INJECTABLE_STATUSES.contains(&self.status) {
            return Err(invalid(
                "status",
                format!("{} is not a final HTTP status 200..=599", self.status),
            ));
        }
        let Some(lat) = &self.latency else {
            return Ok(());
        };
        check_ratio("latency.ratio", lat.ratio)?;
        match lat.delay {
            DelayConfig::Fixed(d) => check_delay("latency.delay.fixed", d),
            DelayConfig::Uniform { min, max } => {
                check_delay("latency.delay.uniform.max", max)?;
                if min > max {
                    return Err(invalid("latency.delay.uniform.min", "must not exceed max"));
                }
                Ok(())
            }
            DelayConfig::Exponential { mean, max } => {
                check_delay("latency.delay.exponential.max", max)?;
                if mean.is_zero() {
                    return Err(invalid(
                        "latency.delay.exponential.mean",
                        "must be greater than 0",
                    ));
                }
                if mean > max {
                    return Err(invalid(
                        "latency.delay.exponential.mean",
                        "must not exceed max",
                    ));
                }
                Ok(())
            }
        }
    }

    pub fn is_active(&self) -> bool {
        self.error_rate > 0.0 || self.latency.as_ref().is_some_and(|l| l.ratio > 0.0)
    }
}

/// Draws admin-config faults from a seeded generator: one seed, one sequence.
#[derive(Debug)]
pub struct FaultSampler {
    rng: ChaCha8Rng,
}

impl FaultSampler {
    pub fn new(seed: u64) -> Self {
        FaultSampler {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    pub fn sample(&mut self, cfg: &FaultConfig) -> InjectedFault {
        let status = (self.rng.random::<f64>() < cfg.error_rate).then_some(cfg.status);
        let delay = cfg
            .latency
            .as_ref()
            .filter(|l| self.rng.random::<f64>() < l.ratio)
            .map(|l| self.delay(l.delay));
        InjectedFault { status, delay }
    }

    fn delay(&mut self, d: DelayConfig) -> Duration {
        match d {
            DelayConfig::Fixed(d) => d,
            DelayConfig::Uniform { min, max } => {
                min + (max - min).mul_f64(self.rng.random::<f64>())
            }
            DelayConfig::Exponential { mean, max } => {
                // Inverse CDF; 1 - u is in (0, 1] so ln never sees 0.
                let u: f64 = self.rng.random();
                let secs = -mean.as_secs_f64() * (1.0 - u).ln();
                Duration::try_from_secs_f64(secs).unwrap_or(max).min(max)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn parses_each_key_and_both_in_any_order() {
        assert_eq!(
            parse_fault_header("status=503").unwrap(),
            InjectedFault {
                status: Some(503),
                delay: None
            }
        );
        assert_eq!(
            parse_fault_header("delay=300ms").unwrap(),
            InjectedFault {
                status: None,
                delay: Some(MS(300))
            }
        );
        let both = InjectedFault {
            status: Some(500),
            delay: Some(MS(200)),
        };
        assert_eq!(parse_fault_header("delay=200ms,status=500").unwrap(), both);
        assert_eq!(
            parse_fault_header(" status = 500 , delay=200ms ").unwrap(),
            both
        );
    }

    #[test]
    fn rejects_bad_headers_with_the_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("status", "not key=value"),
            ("colour=red", "`colour` is unknown"),
            ("status=99", "200..=599"),
            ("status=100", "200..=599"),
            ("status=600", "200..=599"),
            ("status=abc", "200..=599"),
            ("delay=soon", "not a duration"),
            ("delay=2h", "limit"),
            ("status=500,status=503", "twice"),
        ];
        for (input, want) in cases {
            let err = parse_fault_header(input).unwrap_err().to_string();
            assert!(
                err.contains(want),
                "{input:?} gave {err:?}, wanted {want:?}"
            );
        }
    }

    #[test]
    fn format_is_canonical_and_round_trips() {
        assert_eq!(
            format_fault_header(Some(503), Some(MS(300))),
            "delay=300ms,status=503"
        );
        assert_eq!(format_fault_header(Some(503), None), "status=503");
        assert_eq!(
            format_fault_header(None, Some(Duration::from_micros(1500))),
            "delay=1500us"
        );
        assert_eq!(format_fault_header(None, None), "");
        for (s, d) in [
            (Some(500), Some(MS(1))),
            (None, Some(Duration::from_micros(2_000_001))),
            (Some(418), None),
        ] {
            assert_eq!(
                parse_fault_header(&format_fault_header(s, d)).unwrap(),
                InjectedFault {
                    status: s,
                    delay: d
                }
            );
        }
    }

    #[test]
    fn config_json_shape_and_plan_conversion() {
        let json =
            r#"{"error_rate":0.2,"status":503,"latency":{"ratio":0.5,"delay":{"fixed":"300ms"}}}"#;
        let cfg: FaultConfig = serde_json::from_str(json).unwrap();
        assert_eq!(
            cfg.latency.as_ref().unwrap().delay,
            DelayConfig::Fixed(MS(300))
        );
        cfg.validate().unwrap();
        let back: FaultConfig =
            serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
        for d in [
            DelayDist::Fixed(MS(5)),
            DelayDist::Uniform {
                min: MS(1),
                max: MS(9),
            },
            DelayDist::Exponential {
                mean: MS(50),
                max: MS(900),
            },
        ] {
            assert_eq!(DelayDist::from(DelayConfig::from(d)), d);
        }
        let uni: DelayConfig =
            serde_json::from_str(r#"{"uniform":{"min":"10ms","max":"20ms"}}"#).unwrap();
        assert_eq!(
            uni,
            DelayConfig::Uniform {
                min: MS(10),
                max: MS(20)
            }
        );
    }

    #[test]
    fn validation_names_the_field() {
        let mut cfg = FaultConfig {
            error_rate: 1.5,
            ..FaultConfig::default()
        };
        assert_eq!(cfg.validate().unwrap_err().field, "error_rate");
        cfg.error_rate = 0.1;
        cfg.status = 42;
        assert_eq!(cfg.validate().unwrap_err().field, "status");
        cfg.status = 503;
        cfg.latency = Some(LatencyConfig {
            ratio: 0.5,
            delay: DelayConfig::Uniform {
                min: MS(9),
                max: MS(1),
            },
        });
        assert_eq!(
            cfg.validate().unwrap_err().field,
            "latency.delay.uniform.min"
        );
        cfg.latency = Some(LatencyConfig {
            ratio: -0.1,
            delay: DelayConfig::Fixed(MS(1)),
        });
        assert_eq!(cfg.validate().unwrap_err().field, "latency.ratio");
    }

    #[test]
    fn sampler_is_seeded_and_honours_rates() {
        let cfg = FaultConfig {
            error_rate: 0.2,
            status: 503,
            latency: Some(LatencyConfig {
                ratio: 0.5,
                delay: DelayConfig::Exponential {
                    mean: MS(100),
                    max: MS(400),
                },
            }),
        };
        let draw = |seed| {
            let mut s = FaultSampler::new(seed);
            (0..10_000).map(|_| s.sample(&cfg)).collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        let errors = a.iter().filter(|f| f.status == Some(503)).count() as f64 / 1e4;
        let delayed: Vec<Duration> = a.iter().filter_map(|f| f.delay).collect();
        assert!((errors - 0.2).abs() < 0.02, "error fraction {errors}");
        assert!((delayed.len() as f64 / 1e4 - 0.5).abs() < 0.02);
        assert!(delayed.iter().all(|d| *d <= MS(400)));
        let mean = delayed.iter().map(Duration::as_secs_f64).sum::<f64>() / delayed.len() as f64;
        // Capped at 4× the mean, the exponential's mean drops to 1 - e^-4 of it.
        assert!((mean - 0.0982).abs() < 0.01, "mean delay {mean}");
    }
}
