//! Run-wide live counters shared with the progress display: relaxed atomics
//! written by the load shards a few times a second, never per request.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use super::metrics::GeneratorMetrics;

/// Live view of a running load. Counters are cumulative over every `run`
/// call that was given this value (so `--loop` keeps counting); the phase
/// fields describe the current pass.
#[derive(Debug, Default)]
pub struct LiveStats {
    phase: AtomicUsize,
    phase_started_unix_ms: AtomicU64,
    sent: AtomicU64,
    completed: AtomicU64,
    ok: AtomicU64,
    errors_5xx: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    p90_us: AtomicU64,
    /// Per-request cells for `--metrics-listen`; unset, the shards skip them.
    generator: OnceLock<Arc<GeneratorMetrics>>,
}

/// A consistent-enough copy of the live counters for display.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveSnapshot {
    pub phase: usize,
    pub phase_started_unix_ms: u64,
    pub sent: u64,
    pub completed: u64,
    pub in_flight: u64,
    pub ok: u64,
    pub errors_5xx: u64,
    pub dropped: u64,
    pub failed: u64,
    pub p90_us: u64,
}

/// Counter increments one shard publishes at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub sent: u64,
    pub completed: u64,
    pub ok: u64,
    pub errors_5xx: u64,
    pub dropped: u64,
    pub failed: u64,
}

impl Counts {
    pub fn minus(&self, o: &Counts) -> Counts {
        Counts {
            sent: self.sent.saturating_sub(o.sent),
            completed: self.completed.saturating_sub(o.completed),
            ok: self.ok.saturating_sub(o.ok),
            errors_5xx: self.errors_5xx.saturating_sub(o.errors_5xx),
            dropped: self.dropped.saturating_sub(o.dropped),
            failed: self.failed.saturating_sub(o.failed),
        }
    }
}

impl LiveStats {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn snapshot(&self) -> LiveSnapshot {
        let completed = self.completed.load(Relaxed);
        let sent = self.sent.load(Relaxed);
        LiveSnapshot {
            phase: self.phase.load(Relaxed),
            phase_started_unix_ms: self.phase_started_unix_ms.load(Relaxed),
            sent,
            completed,
            in_flight: sent.saturating_sub(completed),
            ok: self.ok.load(Relaxed),
            errors_5xx: self.errors_5xx.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            failed: self.failed.load(Relaxed),
            p90_us: self.p90_us.load(Relaxed),
        }
    }

    /// Turns on the generator's per-request metrics (before `load::run`);
    /// the same `GeneratorMetrics` may serve many runs (`--loop`).
    pub fn with_generator(self, g: Option<&Arc<GeneratorMetrics>>) -> Self {
        if let Some(g) = g {
            let _ = self.generator.set(g.clone());
        }
        self
    }

    pub(crate) fn generator(&self) -> Option<&Arc<GeneratorMetrics>> {
        self.generator.get()
    }

    pub(crate) fn set_phase(&self, index: usize, started_unix_ms: u64) {
        self.phase.store(index, Relaxed);
        self.phase_started_unix_ms.store(started_unix_ms, Relaxed);
    }

    pub(crate) fn add(&self, d: &Counts) {
        self.sent.fetch_add(d.sent, Relaxed);
        self.completed.fetch_add(d.completed, Relaxed);
        self.ok.fetch_add(d.ok, Relaxed);
        self.errors_5xx.fetch_add(d.errors_5xx, Relaxed);
        self.dropped.fetch_add(d.dropped, Relaxed);
        self.failed.fetch_add(d.failed, Relaxed);
    }

    pub(crate) fn set_p90_us(&self, v: u64) {
        self.p90_us.store(v, Relaxed);
    }
}
