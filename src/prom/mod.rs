//! The Prometheus side of slocheck: rule files, their time-scaled copies, a
//! managed Prometheus process, and the HTTP API client used to verify a run.

pub mod client;
pub mod config;
pub mod error;
pub mod launcher;
pub mod preflight;
pub mod rules;
pub mod shape;
pub mod timescale;

pub use client::{ActiveAlert, LoadedRule, PromClient, RuleKind, Sample, Series, TargetInfo};
pub use error::PromError;
pub use launcher::{LaunchConfig, ManagedPrometheus, find_binary, free_loopback_port};
pub use preflight::preflight;
pub use rules::{AlertRule, RecordingRule, Rule, RuleFile, RuleGroup, RulesError, load};
pub use shape::{AlertShape, alert_shape};
pub use timescale::{
    ScaledChange, ScaledFile, min_range, promtool_check, scale_expr, scale_rule_file, write_scaled,
};
