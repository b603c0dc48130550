//! The load engine: paces, sends and measures the traffic of a plan's phases
//! and returns the client-side ground truth as a `record::RunRecord`.

pub mod client;
pub mod connect;
pub mod engine;
pub mod exporter;
pub mod faults;
pub mod live;
pub mod metrics;
pub mod model;
pub mod pacer;
pub mod pool;
pub mod recorder;
pub mod slice;
pub mod summary;
pub mod timer;

pub use client::preflight;
pub use engine::{LoadError, Part, combine, finish, run, run_prepared, run_slice};
pub use live::{LiveSnapshot, LiveStats};
pub use summary::phase_summary_table;
