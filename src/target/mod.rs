//! The built-in instrumented ML service (`slocheck target`): an Iris
//! classifier behind axum with Prometheus metrics and fault injection.
//!
//! Layering is metrics → faults → handler, so an injected fault is counted
//! exactly like a real one. See README.md ("The built-in target") for the HTTP reference.

pub mod admin;
pub mod faults;
pub mod metrics;
pub mod model;
pub mod router;
pub mod server;
pub mod state;
pub mod tls;

pub use faults::{DelayConfig, FaultConfig, FaultConfigError, InjectedFault, LatencyConfig};
pub use router::app;
pub use server::{
    TargetArgs, TargetConfig, TargetError, TargetHandle, TargetTls, serve_until_signal,
};
pub use state::AppState;
