//! slocheck: drives phased traffic with injected faults at an instrumented
//! service, lets a real Prometheus scrape it and evaluate the real rules, and
//! verifies latency, error-ratio and alert-lifecycle expectations.
//!
//! The binary is a thin shell over this library (`cli::main`).

pub mod alertmanager;
pub mod cli;
pub mod coverage;
pub mod demo;
pub mod doctor;
pub mod error;
pub mod evaluate;
pub mod exit;
pub mod export;
pub mod fault_protocol;
pub mod init;
pub mod input;
pub mod k8s;
pub mod load;
pub mod loadcmd;
pub mod metrics;
pub mod plan;
pub mod process;
pub mod progress;
pub mod prom;
pub mod pushgateway;
pub mod record;
pub mod report;
pub mod run;
pub mod scenario;
pub mod shard;
pub mod signals;
pub mod slo;
pub mod suite;
pub mod target;
pub mod timeutil;
pub mod tls;
pub mod verify;
