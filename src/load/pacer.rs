//! Pure arrival schedule: when request *n* of a phase is due, for a constant or
//! linearly ramping rate (vegeta's `Pace` model, without any clock), and when
//! a shard should wake to send it (wake batching at high rates).

use std::time::Duration;

use crate::plan::Rate;

/// The schedule of one phase. Request `n` (0-based) is due at the time `t`
/// where the integral of the rate from 0 to `t` equals `n`; requests due at or
/// after the phase end are not part of the phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacer {
    rate: Rate,
    duration: Duration,
}

impl Pacer {
    pub fn new(rate: Rate, duration: Duration) -> Self {
        Self { rate, duration }
    }

    /// Offset from the phase start at which request `n` is due, or `None` when
    /// it falls at or after the phase end (or the rate never gets there).
    pub fn offset(&self, n: u64) -> Option<Duration> {
        let n_f = n as f64;
        let d = self.duration.as_secs_f64();
        let secs = match self.rate {
            Rate::Constant(r) if r > 0.0 && r.is_finite() => n_f / r,
            Rate::Constant(_) => return None,
            Rate::Ramp { from, to } => {
                if d <= 0.0 {
                    return None;
                }
                if n == 0 {
                    0.0
                } else {
                    // Solve a·t² + b·t = n with a = (to-from)/2D, b = from, in
                    // the cancellation-free form 2n / (b + √(b² + 4an)), which
                    // also covers from == to (a = 0) and from == 0.
                    let a = (to - from) / (2.0 * d);
                    let disc = from * from + 4.0 * a * n_f;
                    if disc < 0.0 {
                        return None;
                    }
                    let denom = from + disc.sqrt();
                    if denom <= 0.0 {
                        return None;
                    }
                    2.0 * n_f / denom
                }
            }
        };
        (secs.is_finite() && secs < d).then(|| Duration::from_secs_f64(secs))
    }

    /// Number of requests expected by time `t` (the integral of the rate).
    pub fn hits_at(&self, t: Duration) -> f64 {
        let t = t.min(self.duration).as_secs_f64();
        match self.rate {
            Rate::Constant(r) => r.max(0.0) * t,
            Rate::Ramp { from, to } => {
                let d = self.duration.as_secs_f64();
                if d <= 0.0 {
                    return 0.0;
                }
                from * t + (to - from) * t * t / (2.0 * d)
            }
        }
    }

    /// Sends due strictly before `t` (a half-open window `[0, t)`), capped at
    /// the phase end, counted from the schedule itself: what a phase cut at
    /// `t` had planned (delivered load is judged against it).
    pub fn count_until(&self, t: Duration) -> u64 {
        if t.is_zero() {
            return 0;
        }
        let t = t.min(self.duration);
        // Start from the integral and fix float rounding against `offset`.
        let mut k = self.hits_at(t).ceil().max(0.0) as u64;
        while k > 0 && self.offset(k - 1).is_none_or(|o| o >= t) {
            k -= 1;
        }
        while self.offset(k).is_some_and(|o| o < t) {
            k += 1;
        }
        k
    }
}

/// Per-shard rate above which wakes are batched. Below it every request
/// gets its own wake-up; above it the wake-ups alone would eat a large
/// share of a core (a sleep and wake costs ≈ 25 µs of CPU on a 2-core VM,
/// and each request needs one for its send and one for its answer).
pub const BATCH_ABOVE_RPS: f64 = 15_000.0;

/// The lateness a batched wake may add on purpose: the first request of a
/// batch waits up to this long for the later ones, so one wake sends them
/// all. Measured at 20,000 rps on one shard against nginx (2-core VM):
///
/// | budget | requests per wake | lag p50 / p99 | CPU per request |
/// |---|---|---|---|
/// | 40 µs | 1 | 44 / 89 µs | 45 µs |
/// | 60–90 µs | 2 | 65 / 134–688 µs | 30 µs |
/// | 100 µs | 3 | 90 / 176–371 µs | 18–24 µs |
/// | 150 µs | 4 | 130 / 210 µs | 16 µs |
///
/// 100 µs halves the generator's CPU (which the target shares on a small
/// machine) for ≈ 50 µs of mean lateness, well under a millisecond.
pub const BATCH_BUDGET: Duration = Duration::from_micros(100);

/// The lateness budget for a shard sending `rate_per_shard` requests/s.
pub fn batch_budget(rate_per_shard: f64) -> Duration {
    if rate_per_shard > BATCH_ABOVE_RPS {
        BATCH_BUDGET
    } else {
        Duration::ZERO
    }
}

/// The highest rate a phase reaches (a ramp peaks at one of its ends).
pub fn peak_rate(rate: Rate) -> f64 {
    match rate {
        Rate::Constant(r) => r,
        Rate::Ramp { from, to } => from.max(to),
    }
}

impl Pacer {
    /// When to wake for requests `n, n + stride, …` (one shard's share):
    /// the latest due time within `budget` after request `n`'s own, so one
    /// wake sends them all and none leaves before it is due. `None` after
    /// the phase's last request.
    pub fn wake_offset(&self, n: u64, stride: u64, budget: Duration) -> Option<Duration> {
        let first = self.offset(n)?;
        let mut wake = first;
        let mut k = n + stride.max(1);
        while let Some(o) = self.offset(k).filter(|&o| o <= first + budget) {
            wake = o;
            k += stride.max(1);
        }
        Some(wake)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn offsets_table() {
        let s = Duration::from_secs(1);
        let cases: &[(Rate, Duration, u64, Option<Duration>)] = &[
            (Rate::Constant(100.0), s, 0, Some(ms(0))),
            (Rate::Constant(100.0), s, 1, Some(ms(10))),
            (Rate::Constant(100.0), s, 99, Some(ms(990))),
            (Rate::Constant(100.0), s, 100, None),
            (Rate::Constant(0.0), s, 0, None),
            // from 0 to 200 over 1 s: t = sqrt(n / 100)
            (
                Rate::Ramp {
                    from: 0.0,
                    to: 200.0,
                },
                s,
                25,
                Some(ms(500)),
            ),
            (
                Rate::Ramp {
                    from: 0.0,
                    to: 200.0,
                },
                s,
                100,
                None,
            ),
            // from == to behaves as constant
            (
                Rate::Ramp {
                    from: 50.0,
                    to: 50.0,
                },
                s,
                25,
                Some(ms(500)),
            ),
            // from 200 to 0: n(t) = 200t - 100t², n(0.5) = 75
            (
                Rate::Ramp {
                    from: 200.0,
                    to: 0.0,
                },
                s,
                75,
                Some(ms(500)),
            ),
            (
                Rate::Ramp {
                    from: 200.0,
                    to: 0.0,
                },
                s,
                100,
                None,
            ),
        ];
        for (rate, d, n, want) in cases {
            let got = Pacer::new(*rate, *d).offset(*n);
            let close = match (got, want) {
                (Some(g), Some(w)) => g.abs_diff(*w) < Duration::from_micros(1),
                (None, None) => true,
                _ => false,
            };
            assert!(close, "{rate:?} n={n}: got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn totals_table() {
        let cases: &[(Rate, u64, u64)] = &[
            (Rate::Constant(300.0), 3000, 900),
            (Rate::Constant(0.5), 3000, 2),
            (
                Rate::Ramp {
                    from: 0.0,
                    to: 100.0,
                },
                10_000,
                500,
            ),
            (
                Rate::Ramp {
                    from: 100.0,
                    to: 0.0,
                },
                10_000,
                500,
            ),
            (
                Rate::Ramp {
                    from: 10.0,
                    to: 30.0,
                },
                2000,
                40,
            ),
        ];
        for (rate, d_ms, want) in cases {
            let p = Pacer::new(*rate, ms(*d_ms));
            let got = p.count_until(p.duration);
            assert!(
                got.abs_diff(*want) <= 1,
                "{rate:?} over {d_ms} ms: {got} vs {want}"
            );
        }
    }

    #[test]
    fn wake_offsets_table() {
        let us = Duration::from_micros;
        let s = Duration::from_secs(1);
        // (rate, stride, n, budget, want): 20 k/s is one request per 50 µs.
        let cases: &[(f64, u64, u64, Duration, Option<Duration>)] = &[
            (20_000.0, 1, 0, Duration::ZERO, Some(us(0))),
            (20_000.0, 1, 3, Duration::ZERO, Some(us(150))),
            // A 40 µs budget never reaches the next request 50 µs later.
            (20_000.0, 1, 3, us(40), Some(us(150))),
            // 100 µs does: wake at request 5 and send 3, 4 and 5 then.
            (20_000.0, 1, 3, us(100), Some(us(250))),
            // A shard's share: stride 2 reaches request 5 (at +100 µs) only.
            (20_000.0, 2, 1, us(100), Some(us(150))),
            (20_000.0, 1, 19_999, us(100), Some(us(999_950))),
            (20_000.0, 1, 20_000, us(100), None),
        ];
        for &(r, stride, n, budget, want) in cases {
            let p = Pacer::new(Rate::Constant(r), s);
            let got = p.wake_offset(n, stride, budget);
            let close = match (got, want) {
                (Some(g), Some(w)) => g.abs_diff(w) < Duration::from_nanos(100),
                (None, None) => true,
                _ => false,
            };
            assert!(
                close,
                "{r}/s stride {stride} n={n} budget {budget:?}: got {got:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn batch_budget_table() {
        let cases = [
            (100.0, Duration::ZERO),
            (10_000.0, Duration::ZERO),
            (BATCH_ABOVE_RPS, Duration::ZERO),
            (20_000.0, BATCH_BUDGET),
        ];
        for (rate, want) in cases {
            assert_eq!(batch_budget(rate), want, "{rate}/s");
        }
        assert_eq!(peak_rate(Rate::Ramp { from: 5.0, to: 2.0 }), 5.0);
        assert_eq!(peak_rate(Rate::Constant(7.0)), 7.0);
    }

    fn rate() -> impl Strategy<Value = Rate> {
        prop_oneof![
            (0.1f64..50_000.0).prop_map(Rate::Constant),
            (0.0f64..20_000.0, 0.0f64..20_000.0)
                .prop_filter("not both zero", |(a, b)| a + b > 0.01)
                .prop_map(|(from, to)| Rate::Ramp { from, to }),
        ]
    }

    proptest! {
        #[test]
        fn window_counts_match_integral(rate in rate(), d_ms in 1u64..20_000, a in 0.0f64..1.0, b in 0.0f64..1.0) {
            let p = Pacer::new(rate, ms(d_ms));
            let d = ms(d_ms);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let (t0, t1) = (d.mul_f64(lo), d.mul_f64(hi));
            let counted = p.count_until(t1) - p.count_until(t0);
            let integral = p.hits_at(t1) - p.hits_at(t0);
            prop_assert!((counted as f64 - integral).abs() <= 1.0 + 1e-6,
                "{rate:?} [{t0:?},{t1:?}) counted {counted}, integral {integral}");
            // The schedule agrees with the count at both window edges.
            let first = p.count_until(t0);
            if counted > 0 {
                let o = p.offset(first).unwrap();
                prop_assert!(o >= t0 && o < t1);
            }
        }

        /// The wake never precedes request n's due time, and every request it
        /// covers is due by then: catch-up sends them, none early.
        #[test]
        fn wakes_cover_due_requests(rate in rate(), d_ms in 1u64..5_000, n in 0u64..50_000, stride in 1u64..4, budget_us in 0u64..200) {
            let p = Pacer::new(rate, ms(d_ms));
            let budget = Duration::from_micros(budget_us);
            if let Some(w) = p.wake_offset(n, stride, budget) {
                let first = p.offset(n).unwrap();
                prop_assert!(w >= first && w <= first + budget);
            } else {
                prop_assert!(p.offset(n).is_none());
            }
        }

        #[test]
        fn offsets_are_monotonic(rate in rate(), d_ms in 1u64..10_000, n in 0u64..100_000) {
            let p = Pacer::new(rate, ms(d_ms));
            if let (Some(x), Some(y)) = (p.offset(n), p.offset(n + 1)) {
                prop_assert!(x <= y);
            }
        }
    }
}
