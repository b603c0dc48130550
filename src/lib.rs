//! slocheck: drives phased traffic with injected faults at an instrumented
//! service, lets a real Prometheus scrape it and evaluate the real rules, and
//! verifies latency, error-ratio and alert-lifecycle expectations.
//!
//! The binary is a thin shell over this library (`cli::run`).

pub mod exit;
pub mod load;
pub mod plan;
pub mod progress;
pub mod prom;
pub mod record;
pub mod scenario;
pub mod target;
