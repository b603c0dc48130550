//! A phase's `faults = { … }` resolved into a `FaultSpec`.

use std::time::Duration;

use super::ctx::{Ctx, join};
use super::raw::{RawDelay, RawFaults, S};
use crate::plan::{DelayDist, ErrorFault, FaultSpec, LatencyFault};

/// Status used when `error_rate` is given without `status`.
pub const DEFAULT_FAULT_STATUS: u16 = 503;

pub(super) fn resolve_faults(f: &RawFaults, path: &str, cx: &mut Ctx<'_>) -> Option<FaultSpec> {
    let mut ok = true;
    let error = match (&f.error_rate, &f.status) {
        (Some(rate), status) => {
            let ratio = cx.ratio(rate, &join(path, "error_rate"));
            let status = match status {
                Some(s) => status_code(s, &join(path, "status"), cx),
                None => Some(DEFAULT_FAULT_STATUS),
            };
            match (ratio, status) {
                (Some(ratio), Some(status)) => Some(ErrorFault { ratio, status }),
                _ => {
                    ok = false;
                    None
                }
            }
        }
        (None, Some(s)) => {
            cx.error_hint(
                &s.span(),
                &join(path, "status"),
                "status without error_rate",
                "add error_rate = 0.2 (the fraction of requests answered with this status)",
            );
            ok = false;
            None
        }
        (None, None) => None,
    };
    let latency = match (&f.latency_ratio, &f.delay) {
        (ratio, Some(d)) => {
            // A delay alone delays every request.
            let ratio = match ratio {
                Some(r) => cx.ratio(r, &join(path, "latency_ratio")),
                None => Some(1.0),
            };
            let delay = delay_dist(d, &join(path, "delay"), cx);
            match (ratio, delay) {
                (Some(ratio), Some(delay)) => Some(LatencyFault { ratio, delay }),
                _ => {
                    ok = false;
                    None
                }
            }
        }
        (Some(r), None) => {
            cx.error_hint(
                &r.span(),
                &join(path, "latency_ratio"),
                "latency_ratio without delay",
                "add delay = \"300ms\"",
            );
            ok = false;
            None
        }
        (None, None) => None,
    };
    ok.then_some(FaultSpec { error, latency })
}

fn status_code(s: &S<i64>, path: &str, cx: &mut Ctx<'_>) -> Option<u16> {
    match u16::try_from(*s.get_ref()) {
        Ok(code) if (200..=599).contains(&code) => Some(code),
        _ => {
            cx.error_hint(
                &s.span(),
                path,
                format!(
                    "status must be a final HTTP status 200..=599, got {}",
                    s.get_ref()
                ),
                "5xx statuses such as 503 count as errors",
            );
            None
        }
    }
}

fn delay_dist(d: &S<RawDelay>, path: &str, cx: &mut Ctx<'_>) -> Option<DelayDist> {
    let span = d.span();
    let fmt = |d: Duration| humantime::format_duration(d).to_string();
    let err = |cx: &mut Ctx<'_>, msg: String| {
        cx.error_hint(
            &span,
            path,
            msg,
            r#"write delay = "300ms", { uniform = ["100ms", "500ms"] } or { exponential = "200ms", max = "2s" }"#,
        );
        None
    };
    match d.get_ref() {
        RawDelay::Fixed(d) if d.is_zero() => err(cx, "delay must be > 0".into()),
        RawDelay::Fixed(d) => Some(DelayDist::Fixed(*d)),
        RawDelay::Table(t) => match (&t.uniform, &t.exponential, &t.max) {
            (Some([min, max]), None, None) if min.0 <= max.0 && !max.0.is_zero() => {
                Some(DelayDist::Uniform {
                    min: min.0,
                    max: max.0,
                })
            }
            (Some([min, max]), None, None) => err(
                cx,
                format!(
                    "uniform delay needs min ≤ max and max > 0, got [{}, {}]",
                    fmt(min.0),
                    fmt(max.0)
                ),
            ),
            (None, Some(mean), max) => {
                // An uncapped exponential tail could exceed any timeout.
                let max = max.map_or(mean.0 * 10, |m| m.0);
                if mean.0.is_zero() || max < mean.0 {
                    err(
                        cx,
                        format!(
                            "exponential delay needs mean > 0 and max ≥ mean, got mean {}, max {}",
                            fmt(mean.0),
                            fmt(max)
                        ),
                    )
                } else {
                    Some(DelayDist::Exponential { mean: mean.0, max })
                }
            }
            (Some(_), _, Some(_)) | (None, None, Some(_)) => {
                err(cx, "max applies to an exponential delay only".into())
            }
            _ => err(
                cx,
                "delay table needs exactly one of uniform, exponential".into(),
            ),
        },
    }
}
