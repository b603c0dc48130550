//! slocheck: drives phased traffic with injected faults at an instrumented
//! service, lets a real Prometheus scrape it and evaluate the real rules, and
//! verifies latency, error-ratio and alert-lifecycle expectations.
//!
//! The binary is a thin shell over this library (`cli::main`).

pub mod alertmanager;
pub mod cli;
pub mod demo;
pub mod doctor;
pub mod error;
pub mod evaluate;
pub mod exit;
pub mod input;
pub mod load;
pub mod loadcmd;
pub mod plan;
pub mod process;
pub mod progress;
pub mod prom;
pub mod pushgateway;
pub mod record;
pub mod report;
pub mod run;
pub mod scenario;
pub mod signals;
pub mod target;
pub mod timeutil;
pub mod verify;
