//! The load engine: paces, sends and measures the traffic of a plan's phases
//! and returns the client-side ground truth as a `record::RunRecord`.

pub mod client;
pub mod engine;
pub mod faults;
pub mod live;
pub mod model;
pub mod pacer;
pub mod recorder;
pub mod summary;

pub use engine::{LoadError, run};
pub use live::{LiveSnapshot, LiveStats};
pub use summary::phase_summary_table;
