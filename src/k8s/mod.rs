//! Kubernetes objects generated from the project's single sources of truth:
//! today the Prometheus Operator `PrometheusRule` built from `rules/*.yml`,
//! so the cluster evaluates exactly the rules slocheck tests locally.

pub mod cmd;
pub mod prometheus_rule;

pub use prometheus_rule::{PrometheusRuleSpec, render};
