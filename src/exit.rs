//! The documented, stable exit codes. CI must be able to tell "the SLO
//! failed" (1) from "the tool or its setup broke" (2, 3).

/// Every expectation passed.
pub const PASS: u8 = 0;
/// At least one expectation failed or was inconclusive.
pub const FAIL: u8 = 1;
/// The scenario, rules or command line are invalid; nothing was run.
pub const INVALID: u8 = 2;
/// The environment failed: Prometheus missing or unreachable, target down,
/// port in use, a child process died.
pub const ENVIRONMENT: u8 = 3;
/// Interrupted by SIGINT (128 + 2).
pub const INTERRUPTED: u8 = 130;
/// Terminated by SIGTERM (128 + 15).
pub const TERMINATED: u8 = 143;
