//! Judges of the kinds that compare one number over a phase with a bound:
//! `latency_quantile`, `error_ratio` (one instant query) and `promql` (a
//! range query aggregated to one value). Pure.

use std::time::Duration;

use super::{Context, Judged, evidence};
use crate::plan::{Aggregate, Bound};
use crate::verify::bound;
use crate::verify::observation::{
    ClientCounts, ErrorRatioObs, LatencyObs, PhaseQuery, PromQlObs, RangeReading, Reading,
};
use crate::verify::phase::PhaseWindow;
use crate::verify::queries;

fn percentile(q: f64) -> String {
    format!("P{}", (q * 1000.0).round() / 10.0)
}

pub fn latency_expected(q: f64, phase: &str, b: &Bound<Duration>) -> String {
    format!(
        "{} latency in \"{phase}\" {}",
        percentile(q),
        bound::describe(&bound::secs(b), bound::latency)
    )
}

pub fn error_ratio_expected(phase: &str, b: &Bound<f64>) -> String {
    format!(
        "5xx ratio in \"{phase}\" {}",
        bound::describe(b, bound::ratio)
    )
}

pub fn promql_expected(expr: &str, phase: &str, agg: Aggregate, b: &Bound<f64>) -> String {
    let agg_name = match agg {
        Aggregate::Last => "at end",
        Aggregate::Min => "min",
        Aggregate::Max => "max",
        Aggregate::Avg => "avg",
    };
    format!(
        "{expr} ({agg_name} over \"{phase}\") {}",
        bound::describe(b, bound::number)
    )
}

/// `(lo, hi]` of the histogram bucket holding `v`, in words.
fn bucket_words(buckets: &[f64], v: f64, form: fn(String, String) -> String) -> String {
    queries::bucket_of(buckets, v)
        .map(|(lo, hi)| form(bound::latency(lo), bound::latency(hi)))
        .unwrap_or_default()
}

pub fn latency(o: &LatencyObs<'_>, cx: &Context<'_>) -> Judged {
    let w = cx.phases.get(o.phase);
    let pct = percentile(o.quantile);
    let mut j = Judged::new(latency_expected(o.quantile, &w.name, o.bound));
    if let Some(c) = o.client {
        j.client.push(format!(
            "client HDR {pct} (corrected) = {}{}",
            bound::latency(c),
            bucket_words(cx.buckets, c, |lo, hi| format!(" in bucket ({lo}, {hi}]"))
        ));
    }
    let b = bound::secs(o.bound);
    compare_instant(&mut j, w, &o.prometheus, &b, bound::latency, |v| {
        bucket_words(cx.buckets, v, |lo, hi| {
            format!(" (histogram bucket {lo}..{hi})")
        })
    });
    j
}

pub fn error_ratio(o: &ErrorRatioObs<'_>, cx: &Context<'_>) -> Judged {
    let w = cx.phases.get(o.phase);
    let mut j = Judged::new(error_ratio_expected(&w.name, o.bound));
    j.client.push(client_ratios(&o.client));
    compare_instant(&mut j, w, &o.prometheus, o.bound, bound::ratio, |_| {
        String::new()
    });
    j
}

fn client_ratios(c: &ClientCounts) -> String {
    let or_na = |r: Option<f64>| r.map(bound::ratio).unwrap_or_else(|| "n/a".into());
    format!(
        "injected 5xx ratio = {} ({} of {} sent); client saw {} ({} of {} responses)",
        or_na(c.injected_ratio()),
        c.injected_errors,
        c.sent,
        or_na(c.observed_ratio()),
        c.server_errors,
        c.responses
    )
}

/// Verdict, observed value and evidence from one instant query over `w`.
fn compare_instant(
    j: &mut Judged,
    w: &PhaseWindow,
    q: &PhaseQuery,
    b: &Bound<f64>,
    fmt: fn(f64) -> String,
    extra: impl Fn(f64) -> String,
) {
    let PhaseQuery::Asked { promql, reading } = q else {
        j.reason = format!("phase \"{}\" is shorter than two scrape intervals", w.name);
        return;
    };
    j.queries.push(evidence(promql.clone(), w, reading.value()));
    match reading {
        Reading::Failed(msg) => j.reason = format!("query failed: {msg}"),
        Reading::NoData => {
            j.reason = format!(
                "no data from Prometheus for \"{}\" (no requests scraped in the window?)",
                w.name
            )
        }
        Reading::Value(v) => {
            j.observed = format!("{}{}", fmt(*v), extra(*v));
            compare(j, *v, b, fmt);
        }
    }
}

/// Pass or fail of a value against its bound, with the reason on fail.
fn compare(j: &mut Judged, v: f64, b: &Bound<f64>, fmt: fn(f64) -> String) {
    if bound::holds(v, b) {
        j.verdict = super::Verdict::Pass;
    } else {
        j.verdict = super::Verdict::Fail;
        j.reason = format!("{} is not {}", fmt(v), bound::describe(b, fmt));
    }
}

pub fn promql(o: &PromQlObs<'_>, cx: &Context<'_>) -> Judged {
    let w = cx.phases.get(o.phase);
    let name = &w.name;
    let mut j = Judged::new(promql_expected(o.expr, name, o.aggregate, o.bound));
    let mut value = None;
    match &o.prometheus {
        RangeReading::Failed(msg) => j.reason = format!("query failed: {msg}"),
        RangeReading::Series(s) if s.is_empty() => {
            j.reason = format!("the expression returned no data during \"{name}\"")
        }
        RangeReading::Series(s) if s.len() > 1 => {
            j.reason = format!(
                "the expression returned {} series; aggregate it to one (e.g. sum(...) or max(...))",
                s.len()
            )
        }
        RangeReading::Series(s) => {
            let vals: Vec<f64> = s[0].iter().copied().filter(|v| !v.is_nan()).collect();
            value = aggregate(&vals, o.aggregate);
            match value {
                None => j.reason = format!("the expression returned only NaN during \"{name}\""),
                Some(v) => {
                    j.observed = format!("{} ({} samples)", bound::number(v), vals.len());
                    compare(&mut j, v, o.bound, bound::number);
                }
            }
        }
    }
    j.queries.push(evidence(o.expr.to_string(), w, value));
    j
}

fn aggregate(vals: &[f64], agg: Aggregate) -> Option<f64> {
    if vals.is_empty() {
        return None;
    }
    Some(match agg {
        Aggregate::Last => vals[vals.len() - 1],
        Aggregate::Min => vals.iter().copied().fold(f64::INFINITY, f64::min),
        Aggregate::Max => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Aggregate::Avg => vals.iter().sum::<f64>() / vals.len() as f64,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::testkit::*;
    use super::*;
    use crate::verify::outcome::Verdict;

    fn asked(r: Reading) -> PhaseQuery {
        PhaseQuery::Asked {
            promql: "q".into(),
            reading: r,
        }
    }

    #[test]
    fn aggregates() {
        let v = [3.0, 1.0, 2.0];
        assert_eq!(aggregate(&v, Aggregate::Last), Some(2.0));
        assert_eq!(aggregate(&v, Aggregate::Min), Some(1.0));
        assert_eq!(aggregate(&v, Aggregate::Max), Some(3.0));
        assert_eq!(aggregate(&v, Aggregate::Avg), Some(2.0));
        assert_eq!(aggregate(&[], Aggregate::Avg), None);
    }

    #[test]
    fn latency_table() {
        let (plan, rules, ph) = (plan(), BTreeMap::new(), phases());
        let cx = context(&plan, &rules, &ph);
        let below = Bound::Below(Duration::from_millis(250));
        let cases: Vec<(PhaseQuery, Verdict, &str, &str)> = vec![
            (
                asked(Reading::Value(0.2)),
                Verdict::Pass,
                "",
                "200.0ms (histogram bucket 100.0ms..250.0ms)",
            ),
            (
                asked(Reading::Value(0.3)),
                Verdict::Fail,
                "300.0ms is not below 250.0ms",
                "300.0ms (histogram bucket 250.0ms..500.0ms)",
            ),
            (
                asked(Reading::NoData),
                Verdict::Inconclusive,
                "no data from Prometheus for \"baseline\" (no requests scraped in the window?)",
                "",
            ),
            (
                asked(Reading::Failed("bad_data: parse error".into())),
                Verdict::Inconclusive,
                "query failed: bad_data: parse error",
                "",
            ),
            (
                PhaseQuery::TooShort,
                Verdict::Inconclusive,
                "phase \"baseline\" is shorter than two scrape intervals",
                "",
            ),
        ];
        for (q, verdict, reason, observed) in cases {
            let o = LatencyObs {
                quantile: 0.9,
                bound: &below,
                phase: ph.resolve("baseline").expect("baseline"),
                client: Some(0.12),
                prometheus: q.clone(),
            };
            let j = latency(&o, &cx);
            assert_eq!(j.verdict, verdict, "{q:?}: {}", j.reason);
            assert_eq!(j.reason, reason, "{q:?}");
            assert_eq!(j.observed, observed, "{q:?}");
            assert_eq!(j.expected, "P90 latency in \"baseline\" below 250.0ms");
            assert_eq!(
                j.client,
                ["client HDR P90 (corrected) = 120.0ms in bucket (100.0ms, 250.0ms]"]
            );
            // Every asked query is shown, over the phase's window.
            let shown: Vec<_> = j.queries.iter().map(|e| (e.at_ms, e.start_ms)).collect();
            let want = if q == PhaseQuery::TooShort {
                vec![]
            } else {
                vec![(10 * S, Some(0))]
            };
            assert_eq!(shown, want, "{q:?}");
        }
    }

    #[test]
    fn error_ratio_table() {
        let (plan, rules, ph) = (plan(), BTreeMap::new(), phases());
        let cx = context(&plan, &rules, &ph);
        let near = Bound::Near {
            value: 0.2,
            tolerance: 0.03,
        };
        let cases = [
            (Reading::Value(0.21), Verdict::Pass, ""),
            (
                Reading::Value(0.3),
                Verdict::Fail,
                "0.3000 is not near 0.2000 ± 0.0300",
            ),
            (Reading::Value(f64::NAN), Verdict::Fail, "NaN is not near"),
            (Reading::NoData, Verdict::Inconclusive, "no data"),
        ];
        for (r, verdict, reason) in cases {
            let o = ErrorRatioObs {
                bound: &near,
                phase: ph.resolve("spike").expect("spike"),
                client: ClientCounts {
                    sent: 1000,
                    injected_errors: 200,
                    responses: 990,
                    server_errors: 199,
                },
                prometheus: asked(r.clone()),
            };
            let j = error_ratio(&o, &cx);
            assert_eq!(j.verdict, verdict, "{r:?}: {}", j.reason);
            assert!(j.reason.starts_with(reason), "{r:?}: {}", j.reason);
            assert_eq!(
                j.client,
                [
                    "injected 5xx ratio = 0.2000 (200 of 1000 sent); client saw 0.2010 (199 of 990 responses)"
                ]
            );
        }
    }

    #[test]
    fn promql_table() {
        let (plan, rules, ph) = (plan(), BTreeMap::new(), phases());
        let cx = context(&plan, &rules, &ph);
        let above = Bound::Above(1.0);
        let cases: Vec<(Aggregate, RangeReading, Verdict, &str)> = vec![
            (
                Aggregate::Max,
                RangeReading::Series(vec![vec![0.5, 2.0, f64::NAN]]),
                Verdict::Pass,
                "",
            ),
            (
                Aggregate::Last,
                RangeReading::Series(vec![vec![2.0, 0.5]]),
                Verdict::Fail,
                "0.5000 is not above 1",
            ),
            (
                Aggregate::Avg,
                RangeReading::Series(vec![]),
                Verdict::Inconclusive,
                "the expression returned no data during \"spike\"",
            ),
            (
                Aggregate::Avg,
                RangeReading::Series(vec![vec![1.0], vec![2.0]]),
                Verdict::Inconclusive,
                "the expression returned 2 series",
            ),
            (
                Aggregate::Min,
                RangeReading::Series(vec![vec![f64::NAN]]),
                Verdict::Inconclusive,
                "the expression returned only NaN",
            ),
            (
                Aggregate::Min,
                RangeReading::Failed("execution: boom".into()),
                Verdict::Inconclusive,
                "query failed: execution: boom",
            ),
        ];
        for (agg, r, verdict, reason) in cases {
            let o = PromQlObs {
                expr: "up",
                aggregate: agg,
                bound: &above,
                phase: ph.resolve("spike").expect("spike"),
                prometheus: r.clone(),
            };
            let j = promql(&o, &cx);
            assert_eq!(j.verdict, verdict, "{r:?}: {}", j.reason);
            assert!(j.reason.starts_with(reason), "{r:?}: {}", j.reason);
            assert_eq!(j.queries.len(), 1, "the query is always shown");
        }
    }
}
