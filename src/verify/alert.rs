//! Alert lifecycle model: rebuilding pending/firing stretches from the
//! `ALERTS` series and deriving how soon an alert *should* fire and resolve
//! from its own rule. Judging an expectation against it is
//! `judge::alert`. Pure: times are unix ms.

use std::time::Duration;

use super::outcome::{AlertSpan, AlertState, AlertTimeline};
use super::phase::PhaseWindow;
use crate::plan::{AlertExpectation, DelayDist, FaultSpec, Plan, PrometheusPlan};

/// Rebuilds contiguous state stretches from the sample times of the
/// `pending` and `firing` series on a range query's grid. A state ends at the
/// first grid point where it is no longer seen.
pub fn spans(
    pending: &[u64],
    firing: &[u64],
    grid_start: u64,
    grid_end: u64,
    step_ms: u64,
) -> Vec<AlertSpan> {
    let step = step_ms.max(1);
    let mut out: Vec<AlertSpan> = Vec::new();
    let mut current: Option<(AlertState, u64)> = None;
    let mut t = grid_start;
    // Series points sit on the grid; look them up with a tolerance of half a
    // step in case the grid and the points were rounded differently.
    let seen = |pts: &[u64], t: u64| pts.iter().any(|&p| p.abs_diff(t) * 2 < step);
    while t <= grid_end {
        let state = if seen(firing, t) {
            Some(AlertState::Firing)
        } else if seen(pending, t) {
            Some(AlertState::Pending)
        } else {
            None
        };
        match (current, state) {
            (Some((s, _)), Some(n)) if s == n => {}
            (prev, next) => {
                if let Some((s, start)) = prev {
                    out.push(AlertSpan {
                        state: s,
                        start_ms: start,
                        end_ms: Some(t),
                    });
                }
                current = next.map(|n| (n, t));
            }
        }
        t += step;
    }
    if let Some((s, start)) = current {
        out.push(AlertSpan {
            state: s,
            start_ms: start,
            end_ms: None,
        });
    }
    out
}

/// The alert's timeline over `[start, until]` (unix ms) from the sample
/// times of its `pending` and `firing` series on a grid of `step_ms`.
pub fn timeline(
    alert: &str,
    pending: &[u64],
    firing: &[u64],
    (start, until): (u64, u64),
    step_ms: u64,
    api_state_at_end: Option<String>,
) -> AlertTimeline {
    let spans = spans(pending, firing, start, until, step_ms);
    let first = |st| spans.iter().find(|s| s.state == st);
    AlertTimeline {
        alert: alert.to_string(),
        pending_at_ms: first(AlertState::Pending).map(|s| s.start_ms),
        firing_at_ms: first(AlertState::Firing).map(|s| s.start_ms),
        resolved_at_ms: first(AlertState::Firing).and_then(|s| s.end_ms),
        spans,
        api_state_at_end,
    }
}

/// The timing-relevant parts of an alerting rule (after time scaling).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RuleTiming {
    /// Largest range selector in the expression.
    pub window: Option<Duration>,
    /// Scalar on the right of a top-level `>` / `>=`.
    pub threshold: Option<f64>,
    /// `q` of a `histogram_quantile(q, …)` compared with the threshold.
    pub quantile: Option<f64>,
    pub for_: Duration,
    pub keep_firing_for: Duration,
}

/// Delays that any alert sees on top of its own rule: a scrape must land, a
/// rule evaluation must run, each at most one interval late, twice over for
/// the rate() needing two samples; plus fixed slack for scheduling jitter.
fn pipeline_lag(scrape: Duration, eval: Duration) -> Duration {
    2 * scrape + 2 * eval + Duration::from_secs(2)
}

/// The share of the alert's window that must hold faulted traffic before
/// its expression crosses the threshold, given the faults of the firing
/// phase: `θ / e` for an error-ratio alert (`e` the injected error ratio),
/// `(1 − q) / r` for a `histogram_quantile(q, …) > θ` alert when a share `r`
/// of requests is delayed past `θ`. None when the faults cannot be related to
/// the rule (then the whole window is assumed).
pub fn fill_fraction(rule: &RuleTiming, faults: &FaultSpec) -> Option<f64> {
    let th = rule.threshold.filter(|t| *t > 0.0)?;
    let f = match rule.quantile {
        Some(q) => {
            let lat = faults.latency?;
            let shortest = match lat.delay {
                DelayDist::Fixed(d) => d,
                DelayDist::Uniform { min, .. } => min,
                DelayDist::Exponential { .. } => Duration::ZERO,
            };
            (shortest.as_secs_f64() > th).then(|| (1.0 - q) / lat.ratio)?
        }
        None => faults.error.map(|e| th / e.ratio)?,
    };
    (f > 0.0 && f < 1.0).then_some(f)
}

/// How long after the firing phase starts the alert should be firing: the
/// window must fill to the threshold (all of it when unknown), then `for`
/// must elapse.
pub fn fire_bound(
    rule: &RuleTiming,
    fill: Option<f64>,
    scrape: Duration,
    eval: Duration,
) -> Duration {
    let w = rule.window.unwrap_or_default();
    w.mul_f64(fill.unwrap_or(1.0)) + rule.for_ + pipeline_lag(scrape, eval)
}

/// How long after the faults stop the alert should be resolved: the window
/// must drain until the expression is back under the threshold (all of it
/// when unknown), then `keep_firing_for` must elapse.
pub fn resolve_bound(
    rule: &RuleTiming,
    fill: Option<f64>,
    scrape: Duration,
    eval: Duration,
) -> Duration {
    let w = rule.window.unwrap_or_default();
    w.mul_f64(fill.map_or(1.0, |f| 1.0 - f)) + rule.keep_firing_for + pipeline_lag(scrape, eval)
}

/// The bounds an alert expectation is judged with: the scenario's own, else
/// derived from the rule and `fires_faults`, the faults of its
/// `fires_during` phase (the resolve bound drains the window filled at that
/// phase's level).
pub fn bounds(
    a: &AlertExpectation,
    rule: &RuleTiming,
    fires_faults: Option<&FaultSpec>,
    pp: &PrometheusPlan,
) -> AppliedBounds {
    let fill = fires_faults.and_then(|f| fill_fraction(rule, f));
    let (scrape, eval) = (pp.scrape_interval, pp.evaluation_interval);
    AppliedBounds {
        fire_within: a.fires_during.as_ref().map(|_| {
            a.fire_within
                .unwrap_or_else(|| fire_bound(rule, fill, scrape, eval))
        }),
        resolve_within: a.resolves_during.as_ref().map(|_| {
            a.resolve_within
                .unwrap_or_else(|| resolve_bound(rule, fill, scrape, eval))
        }),
    }
}

/// `bounds` before any run (`slocheck check`): the `fires_during` phase is
/// found in the plan.
pub fn applied_bounds(a: &AlertExpectation, rule: &RuleTiming, plan: &Plan) -> AppliedBounds {
    let faults = a
        .fires_during
        .as_ref()
        .and_then(|n| plan.phases.iter().find(|p| &p.name == n))
        .map(|p| &p.faults);
    bounds(a, rule, faults, &plan.prometheus)
}

/// Bounds actually applied (explicit or derived), for the report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AppliedBounds {
    pub fire_within: Option<Duration>,
    pub resolve_within: Option<Duration>,
}

pub(crate) fn secs_between(from_ms: u64, to_ms: u64) -> f64 {
    (to_ms as f64 - from_ms as f64) / 1000.0
}

pub(crate) fn overlaps(span: &AlertSpan, w: &PhaseWindow) -> bool {
    span.start_ms < w.end_ms && span.end_ms.is_none_or(|e| e > w.start_ms)
}

/// Describes the whole timeline relative to the first phase start.
pub fn describe(spans: &[AlertSpan], origin_ms: u64) -> String {
    if spans.is_empty() {
        return "never pending or firing".to_string();
    }
    spans
        .iter()
        .map(|s| {
            let state = match s.state {
                AlertState::Pending => "pending",
                AlertState::Firing => "firing",
            };
            match s.end_ms {
                Some(e) => format!(
                    "{state} {:+.1}s..{:+.1}s",
                    secs_between(origin_ms, s.start_ms),
                    secs_between(origin_ms, e)
                ),
                None => format!("{state} from {:+.1}s", secs_between(origin_ms, s.start_ms)),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1000;

    fn secs(r: std::ops::Range<u64>) -> Vec<u64> {
        r.map(|s| s * S).collect()
    }

    #[test]
    fn spans_follow_the_series() {
        let s = spans(&secs(14..29), &secs(29..47), 0, 60 * S, S);
        assert_eq!(
            s,
            vec![
                AlertSpan {
                    state: AlertState::Pending,
                    start_ms: 14 * S,
                    end_ms: Some(29 * S)
                },
                AlertSpan {
                    state: AlertState::Firing,
                    start_ms: 29 * S,
                    end_ms: Some(47 * S)
                },
            ]
        );
        let open = spans(&[], &secs(50..61), 0, 60 * S, S);
        assert_eq!(open[0].end_ms, None);
        let t = timeline("A", &secs(14..29), &secs(29..47), (0, 60 * S), S, None);
        assert_eq!(
            (t.pending_at_ms, t.firing_at_ms, t.resolved_at_ms),
            (Some(14 * S), Some(29 * S), Some(47 * S))
        );
        assert_eq!(t.spans.len(), 2);
    }

    #[test]
    fn derived_bounds_follow_the_rule() {
        let rule = RuleTiming {
            window: Some(Duration::from_secs(15)),
            threshold: Some(0.05),
            quantile: None,
            for_: Duration::from_secs(15),
            keep_firing_for: Duration::ZERO,
        };
        let one = Duration::from_secs(1);
        let errors = FaultSpec {
            error: Some(crate::plan::ErrorFault {
                ratio: 0.2,
                status: 503,
            }),
            latency: None,
        };
        let fill = fill_fraction(&rule, &errors);
        assert_eq!(fill, Some(0.25));
        // 15 s × 0.05 / 0.2 = 3.75 s to fill, + 15 s for, + 6 s pipeline.
        assert_eq!(
            fire_bound(&rule, fill, one, one),
            Duration::from_millis(24_750)
        );
        // 15 s × (1 − 0.25) = 11.25 s to drain, + 6 s pipeline.
        assert_eq!(
            resolve_bound(&rule, fill, one, one),
            Duration::from_millis(17_250)
        );
        // Faults unrelated to the rule: assume the whole window.
        assert_eq!(fill_fraction(&rule, &FaultSpec::default()), None);
        assert_eq!(fire_bound(&rule, None, one, one), Duration::from_secs(36));
        let sticky = RuleTiming {
            keep_firing_for: Duration::from_secs(60),
            ..rule
        };
        assert_eq!(
            resolve_bound(&sticky, fill, one, one),
            Duration::from_millis(77_250)
        );
        // An injected ratio under the threshold never fills the window.
        let low = FaultSpec {
            error: Some(crate::plan::ErrorFault {
                ratio: 0.04,
                status: 503,
            }),
            latency: None,
        };
        assert_eq!(fill_fraction(&rule, &low), None);
    }

    #[test]
    fn latency_alerts_fill_with_the_delayed_share() {
        let p90 = RuleTiming {
            window: Some(Duration::from_secs(15)),
            threshold: Some(0.25),
            quantile: Some(0.9),
            for_: Duration::from_secs(15),
            keep_firing_for: Duration::ZERO,
        };
        let slow = |ratio, ms| FaultSpec {
            error: None,
            latency: Some(crate::plan::LatencyFault {
                ratio,
                delay: DelayDist::Fixed(Duration::from_millis(ms)),
            }),
        };
        // Half the requests at 300 ms: P90 crosses 250 ms once 10 % / 50 % = 20 % of the window is slow.
        let fill = fill_fraction(&p90, &slow(0.5, 300));
        assert!((fill.unwrap_or_default() - 0.2).abs() < 1e-9, "{fill:?}");
        let one = Duration::from_secs(1);
        assert_eq!(fire_bound(&p90, fill, one, one), Duration::from_secs(24));
        assert_eq!(resolve_bound(&p90, fill, one, one), Duration::from_secs(18));
        // A delay under the threshold, or too few slow requests, cannot fire it.
        assert_eq!(fill_fraction(&p90, &slow(0.5, 200)), None);
        assert_eq!(fill_fraction(&p90, &slow(0.05, 300)), None);
    }
}
