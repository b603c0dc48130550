//! The generator's own live metrics (for `--metrics-listen`): one cell of
//! relaxed atomics per (shard, phase) that the shard bumps per request and a
//! scrape reads. Nothing here locks or allocates on the request path; the
//! layout lock is taken only when a run starts and when Prometheus scrapes.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds of the scheduler-lag histogram, µs: dense around the
/// 100 µs at which a run warns.
pub const LAG_BUCKETS_US: [u64; 12] = [5, 10, 25, 50, 75, 100, 150, 250, 500, 1_000, 2_500, 10_000];

/// Upper bounds of the client latency histogram, µs: the target's own
/// buckets (`target::metrics::LATENCY_BUCKETS`) plus sub-millisecond ones, so
/// the dashboard's client and server P90 are read at comparable resolution.
pub const LATENCY_BUCKETS_US: [u64; 29] = [
    100, 250, 500, 1_000, 2_500, 5_000, 7_500, 10_000, 15_000, 20_000, 30_000, 40_000, 50_000,
    75_000, 100_000, 125_000, 150_000, 200_000, 250_000, 300_000, 400_000, 500_000, 600_000,
    750_000, 1_000_000, 1_500_000, 2_500_000, 5_000_000, 10_000_000,
];

/// A fixed-bucket histogram of relaxed atomics (per-bucket counts; the
/// exporter makes them cumulative). Values above the last bound count only
/// in `count` (the `+Inf` bucket).
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [u64],
    buckets: Box<[AtomicU64]>,
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl AtomicHistogram {
    pub fn new(bounds: &'static [u64]) -> Self {
        Self {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        // Bounds are few and sorted: a linear scan beats a binary search here.
        if let Some(i) = self.bounds.iter().position(|&b| us <= b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.sum_us.fetch_add(us, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// (upper bound in seconds, count in that bucket alone), sum in
    /// seconds, total count: what an exposition needs.
    pub fn read(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let buckets = self
            .bounds
            .iter()
            .zip(self.buckets.iter())
            .map(|(&b, c)| (b as f64 / 1e6, c.load(Relaxed)))
            .collect();
        (
            buckets,
            self.sum_us.load(Relaxed) as f64 / 1e6,
            self.count.load(Relaxed),
        )
    }
}

/// What one shard did in one phase, cumulative over `--loop` passes.
#[derive(Debug)]
pub struct PhaseCells {
    /// Sends the schedule asked for (open) or attempted (closed): the
    /// intended rate is its rate.
    pub scheduled: AtomicU64,
    pub sent: AtomicU64,
    pub dropped: AtomicU64,
    pub injected_errors: AtomicU64,
    pub injected_delays: AtomicU64,
    /// Fault requests the target acknowledged (fault protocol).
    pub faults_acknowledged: AtomicU64,
    pub lag: AtomicHistogram,
    /// Client latency from the intended send time (corrected).
    pub latency: AtomicHistogram,
}

impl Default for PhaseCells {
    fn default() -> Self {
        Self {
            scheduled: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            injected_errors: AtomicU64::new(0),
            injected_delays: AtomicU64::new(0),
            faults_acknowledged: AtomicU64::new(0),
            lag: AtomicHistogram::new(&LAG_BUCKETS_US),
            latency: AtomicHistogram::new(&LATENCY_BUCKETS_US),
        }
    }
}

/// One exported series set: its labels and cells.
#[derive(Debug, Clone)]
pub struct Series {
    pub phase: String,
    pub shard: usize,
    pub cells: Arc<PhaseCells>,
}

/// Every cell of the generator, addressed by shard and phase name. The
/// same (shard, phase) keeps its cell across runs (`--loop`), so counters
/// stay monotonic as Prometheus expects.
#[derive(Debug, Default)]
pub struct GeneratorMetrics {
    series: Mutex<Vec<Series>>,
}

impl GeneratorMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// The cells shard `shard` writes, one per phase in `phases` order.
    pub fn cells(&self, shard: usize, phases: &[&str]) -> Vec<Arc<PhaseCells>> {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        phases
            .iter()
            .map(|&phase| {
                if let Some(s) = series.iter().find(|s| s.shard == shard && s.phase == phase) {
                    return s.cells.clone();
                }
                let cells = Arc::new(PhaseCells::default());
                series.push(Series {
                    phase: phase.to_string(),
                    shard,
                    cells: cells.clone(),
                });
                cells
            })
            .collect()
    }

    /// All series, for a scrape.
    pub fn series(&self) -> Vec<Series> {
        self.series
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_table() {
        let us = Duration::from_micros;
        let h = AtomicHistogram::new(&LAG_BUCKETS_US);
        // (value, index of the bucket it lands in; None = +Inf only)
        let cases = [
            (us(0), Some(0)),
            (us(5), Some(0)),
            (us(6), Some(1)),
            (us(100), Some(5)),
            (us(101), Some(6)),
            (us(10_000), Some(11)),
            (us(10_001), None),
        ];
        for (v, _) in cases {
            h.observe(v);
        }
        let (buckets, sum, count) = h.read();
        assert_eq!(count, cases.len() as u64);
        assert!((sum - 20_213.0 / 1e6).abs() < 1e-12, "{sum}");
        for (i, (bound, n)) in buckets.iter().enumerate() {
            let want = cases.iter().filter(|(_, b)| *b == Some(i)).count() as u64;
            assert_eq!(*n, want, "bucket {i} (≤ {bound} s)");
        }
    }

    #[test]
    fn cells_are_kept_per_shard_and_phase() {
        let m = GeneratorMetrics::new();
        let a = m.cells(0, &["baseline", "spike"]);
        a[1].sent.fetch_add(3, Relaxed);
        // A second pass (`--loop`) continues the same counters.
        let again = m.cells(0, &["baseline", "spike"]);
        assert_eq!(again[1].sent.load(Relaxed), 3);
        let other = m.cells(1, &["spike"]);
        assert_eq!(other[0].sent.load(Relaxed), 0);
        let series = m.series();
        assert_eq!(series.len(), 3);
        assert!(series.iter().any(|s| s.shard == 1 && s.phase == "spike"));
    }
}
