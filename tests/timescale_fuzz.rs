//! Property-based fuzzing of the time-scale rewrite: for generated PromQL
//! (selectors, ranges, offsets, `@`, subqueries, functions, aggregations,
//! vector matching), parse → rewrite → print → parse succeeds, the rewritten
//! expression has the same structure, and every duration is divided by the
//! factor. Bounded in CI; `PROPTEST_CASES=200000 cargo test --release --test
//! timescale_fuzz` for a long run.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use slocheck::prom::timescale::{expr_min_range, scale_expr};

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u32..600).prop_map(|s| format!("{s}s")),
        (1u32..90).prop_map(|m| format!("{m}m")),
        (1u32..48).prop_map(|h| format!("{h}h")),
        (1u32..10).prop_map(|d| format!("{d}d")),
        (1u32..60, 1u32..60).prop_map(|(m, s)| format!("{m}m{s}s")),
        (100u32..5000).prop_map(|ms| format!("{ms}ms")),
    ]
}

fn selector() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("http_requests_total"),
        Just("up"),
        Just("http_request_latency_seconds_bucket"),
        Just("x:y:z")
    ];
    let matcher = prop_oneof![
        Just(""),
        Just("{status=~\"5..\"}"),
        Just("{job=\"a\\\"b\", le!=\"+Inf\"}"),
        Just("{path!~\"/(a|b)\\\\.x\"}"),
    ];
    (name, matcher).prop_map(|(n, m)| format!("{n}{m}"))
}

/// A range vector: a selector with a range, optionally offset / pinned, or
/// a subquery over an instant expression.
fn range_vector(inner: BoxedStrategy<String>) -> impl Strategy<Value = String> {
    let modifiers = prop_oneof![
        Just(String::new()),
        duration().prop_map(|d| format!(" offset {d}")),
        duration().prop_map(|d| format!(" offset -{d}")),
        Just(" @ 1700000000".to_string()),
        duration().prop_map(|d| format!(" @ 1700000000 offset {d}")),
        Just(" @ end()".to_string()),
    ];
    prop_oneof![
        (selector(), duration(), modifiers.clone()).prop_map(|(s, d, m)| format!("{s}[{d}]{m}")),
        (inner, duration(), prop::option::of(duration()), modifiers)
            .prop_map(|(e, r, step, m)| format!("({e})[{r}:{}]{m}", step.unwrap_or_default())),
    ]
}

fn expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        selector(),
        (selector(), duration()).prop_map(|(s, d)| format!("{s} offset {d}")),
        (0u32..1000).prop_map(|n| format!("{n}")),
        Just("0.05".to_string()),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        let rv = range_vector(inner.clone().boxed());
        prop_oneof![
            (
                prop_oneof![
                    Just("rate"),
                    Just("increase"),
                    Just("sum_over_time"),
                    Just("max_over_time"),
                    Just("deriv")
                ],
                rv
            )
                .prop_map(|(f, r)| format!("{f}({r})")),
            (
                prop_oneof![Just("sum"), Just("max"), Just("count")],
                prop_oneof![Just(""), Just(" by (le)"), Just(" without (job, path)")],
                inner.clone()
            )
                .prop_map(|(a, g, e)| format!("{a}{g} ({e})")),
            inner
                .clone()
                .prop_map(|e| format!("histogram_quantile(0.9, {e})")),
            (
                inner.clone(),
                prop_oneof![
                    Just(" / "),
                    Just(" > "),
                    Just(" >= bool "),
                    Just(" + on(job) "),
                    Just(" * ignoring(le) group_left "),
                    Just(" and "),
                    Just(" or ")
                ],
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a}){op}({b})")),
            inner.clone().prop_map(|e| format!("-({e})")),
            inner.prop_map(|e| format!("label_replace({e}, \"dst\", \"$1\", \"src\", \"(.*)\")")),
        ]
    })
}

/// With a huge factor every duration becomes the 1 ms floor: what is left is
/// the structure, printed by the same printer.
fn structure(e: &str) -> String {
    scale_expr(e, 1e15).unwrap_or_else(|err| panic!("{e}: {err}"))
}

/// One generated case.
fn check(e: &str, factor: f64) -> Result<(), TestCaseError> {
    // Generated text that is not valid PromQL (e.g. a scalar where a vector
    // is required) says nothing about the rewrite.
    prop_assume!(promql_parser::parser::parse(e).is_ok());
    let scaled = scale_expr(e, factor).unwrap_or_else(|err| panic!("{e}: {err}"));
    promql_parser::parser::parse(&scaled).unwrap_or_else(|err| panic!("{e} → {scaled}: {err}"));
    prop_assert_eq!(structure(e), structure(&scaled), "{} → {}", e, scaled);
    if let (Some(a), Some(b)) = (expr_min_range(e), expr_min_range(&scaled)) {
        let want = a.div_f64(factor).max(Duration::from_millis(1));
        let diff = want.abs_diff(b);
        prop_assert!(
            diff <= Duration::from_millis(1),
            "{} → {}: min range {:?} / {} = {:?}, got {:?}",
            e,
            scaled,
            a,
            factor,
            want,
            b
        );
    }
    // Factor 1 changes nothing.
    prop_assert_eq!(scale_expr(&scaled, 1.0).unwrap_or_default(), scaled.clone());
    Ok(())
}

#[test]
fn rewrite_keeps_structure_and_divides_durations() {
    // The recursive generator is deep in debug builds: give it a stack of
    // its own rather than depending on the test thread's 2 MiB.
    let run = || {
        let n = cases(512);
        // Some generated text is not valid PromQL (a scalar where a vector
        // is needed); it is skipped, so allow that many skips.
        let config = ProptestConfig {
            cases: n,
            max_global_rejects: n * 8,
            failure_persistence: None,
            ..ProptestConfig::default()
        };
        let factors = prop_oneof![Just(2.0), Just(20.0), Just(7.5), 1.0f64..100.0];
        let mut runner = proptest::test_runner::TestRunner::new(config);
        runner
            .run(&(expr(), factors), |(e, f)| check(&e, f))
            .map_err(|e| e.to_string())
    };
    let outcome = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(run)
        .expect("spawn fuzz thread")
        .join()
        .expect("fuzz thread panicked");
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
