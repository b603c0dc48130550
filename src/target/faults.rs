//! The admin API's fault config (`/admin/faults`) with its seeded sampler.
//! The per-request header's wire format lives in `crate::fault_protocol`.

use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use crate::fault_protocol::{Fault as InjectedFault, INJECTABLE_STATUSES, MAX_DELAY};
use crate::plan::DelayDist;

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
