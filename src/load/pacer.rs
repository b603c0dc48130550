//! Pure arrival schedule: when request *n* of a phase is due, for a constant or
//! linearly ramping rate (vegeta's `Pace` model, without any clock).

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Number of requests expected by time `t` (the integral of the rate):
    /// the reference the schedule is checked against.
    fn hits_at(p: &Pacer, t: Duration) -> f64 {
        let t = t.min(p.duration).as_secs_f64();
        match p.rate {
            Rate::Constant(r) => r.max(0.0) * t,
            Rate::Ramp { from, to } => {
                let d = p.duration.as_secs_f64();
                if d <= 0.0 {
                    return 0.0;
                }
                from * t + (to - from) * t * t / (2.0 * d)
            }
        }
    }

    /// Sends due strictly before `t` (a half-open window `[0, t)`), capped at
    /// the phase end, counted from the schedule itself.
    fn count_until(p: &Pacer, t: Duration) -> u64 {
        if t.is_zero() {
            return 0;
        }
        let t = t.min(p.duration);
        // Start from the integral and fix float rounding against `offset`.
        let mut k = hits_at(p, t).ceil().max(0.0) as u64;
        while k > 0 && p.offset(k - 1).is_none_or(|o| o >= t) {
            k -= 1;
        }
        while p.offset(k).is_some_and(|o| o < t) {
            k += 1;
        }
        k
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
            let got = count_until(&p, p.duration);
            assert!(
                got.abs_diff(*want) <= 1,
                "{rate:?} over {d_ms} ms: {got} vs {want}"
            );
        }
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
            let counted = count_until(&p, t1) - count_until(&p, t0);
            let integral = hits_at(&p, t1) - hits_at(&p, t0);
            prop_assert!((counted as f64 - integral).abs() <= 1.0 + 1e-6,
                "{rate:?} [{t0:?},{t1:?}) counted {counted}, integral {integral}");
            // The schedule agrees with the count at both window edges.
            let first = count_until(&p, t0);
            if counted > 0 {
                let o = p.offset(first).unwrap();
                prop_assert!(o >= t0 && o < t1);
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
