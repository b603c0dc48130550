//! Comparing a value against an expectation's bound, and saying both in
//! words. Pure.

use std::time::Duration;

use crate::plan::Bound;
use crate::timeutil::human_secs;

/// Whether `value` satisfies `bound`. NaN never does.
pub fn holds(value: f64, bound: &Bound<f64>) -> bool {
    if value.is_nan() {
        return false;
    }
    match *bound {
        Bound::Below(b) => value < b,
        Bound::Above(b) => value > b,
        Bound::Near {
            value: v,
            tolerance,
        } => (value - v).abs() <= tolerance,
        Bound::Between { min, max } => value >= min && value <= max,
    }
}

/// A duration bound in seconds, so one comparison serves both kinds.
pub fn secs(bound: &Bound<Duration>) -> Bound<f64> {
    let s = |d: Duration| d.as_secs_f64();
    match *bound {
        Bound::Below(b) => Bound::Below(s(b)),
        Bound::Above(b) => Bound::Above(s(b)),
        Bound::Near { value, tolerance } => Bound::Near {
            value: s(value),
            tolerance: s(tolerance),
        },
        Bound::Between { min, max } => Bound::Between {
            min: s(min),
            max: s(max),
        },
    }
}

/// `below 250.0ms`, `near 0.2000 ± 0.0300`, … with `fmt` for the numbers.
pub fn describe(bound: &Bound<f64>, fmt: impl Fn(f64) -> String) -> String {
    match *bound {
        Bound::Below(b) => format!("below {}", fmt(b)),
        Bound::Above(b) => format!("above {}", fmt(b)),
        Bound::Near { value, tolerance } => format!("near {} ± {}", fmt(value), fmt(tolerance)),
        Bound::Between { min, max } => format!("between {} and {}", fmt(min), fmt(max)),
    }
}

pub fn ratio(v: f64) -> String {
    format!("{v:.4}")
}

pub fn latency(v: f64) -> String {
    human_secs(v)
}

pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_table() {
        let cases: &[(f64, Bound<f64>, bool)] = &[
            (0.1, Bound::Below(0.25), true),
            (0.25, Bound::Below(0.25), false),
            (0.3, Bound::Above(0.25), true),
            (0.25, Bound::Above(0.25), false),
            (
                0.21,
                Bound::Near {
                    value: 0.2,
                    tolerance: 0.03,
                },
                true,
            ),
            (
                0.24,
                Bound::Near {
                    value: 0.2,
                    tolerance: 0.03,
                },
                false,
            ),
            (0.5, Bound::Between { min: 0.5, max: 1.0 }, true),
            (1.01, Bound::Between { min: 0.5, max: 1.0 }, false),
            (f64::NAN, Bound::Below(1.0), false),
            (f64::NAN, Bound::Above(1.0), false),
        ];
        for (v, b, want) in cases {
            assert_eq!(holds(*v, b), *want, "{v} {b:?}");
        }
    }

    #[test]
    fn duration_bounds_become_seconds() {
        let b = secs(&Bound::Below(Duration::from_millis(250)));
        assert_eq!(b, Bound::Below(0.25));
        assert_eq!(describe(&b, latency), "below 250.0ms");
        let n = Bound::Near {
            value: 0.2,
            tolerance: 0.03,
        };
        assert_eq!(describe(&n, ratio), "near 0.2000 ± 0.0300");
    }
}
