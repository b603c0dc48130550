//! Builds the `promtool test rules` file of an exported run from plain data:
//! the resampled input series, the alert states seen on the evaluation grid
//! and the expectation checks. Pure: no I/O, unit-tested.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::notation;
use crate::plan::Bound;
use crate::verify::outcome::AlertState;

/// One scraped series on the scrape grid (labels include `__name__`).
#[derive(Debug, Clone, PartialEq)]
pub struct GridSeries {
    pub labels: BTreeMap<String, String>,
    pub values: Vec<Option<f64>>,
}

/// One active `ALERTS` series at one evaluation grid point.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAlert {
    pub state: AlertState,
    /// The alert's labels without `__name__`, `alertname`, `alertstate`.
    pub labels: BTreeMap<String, String>,
}

/// What the real Prometheus said about one alerting rule, per evaluation
/// grid point.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertGrid {
    pub alert: String,
    /// The rule's annotations when none is a template: promtool compares
    /// annotations exactly, and a `{{ $value }}` rendered from the replayed
    /// samples is not the number the real run printed.
    pub static_annotations: Option<BTreeMap<String, String>>,
    pub points: Vec<Vec<ActiveAlert>>,
}

/// An expectation, replayed: `expr` evaluated at `at` must satisfy `bound`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExprCheck {
    pub id: String,
    pub expected: String,
    /// What the real Prometheus returned for the same query.
    pub observed: Option<f64>,
    pub expr: String,
    pub bound: Bound<f64>,
    pub at: Duration,
}

/// Everything the test file is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct TestFile {
    pub scenario: String,
    pub source: String,
    /// Paths relative to the test file.
    pub rule_files: Vec<String>,
    pub scrape_interval: Duration,
    /// The replay's: the run's, or a multiple of it for a long run.
    pub evaluation_interval: Duration,
    pub run_evaluation_interval: Duration,
    /// Phases as offsets from the grid origin, for the comments.
    pub phases: Vec<(String, Duration, Duration)>,
    pub series: Vec<GridSeries>,
    pub alerts: Vec<AlertGrid>,
    pub checks: Vec<ExprCheck>,
    /// Alert checks keep this many evaluation steps away from any state
    /// change seen in the real run.
    pub margin_steps: usize,
    /// Unix-time series shifted by the grid origin, because a rule reads
    /// `time()` and promtool's clock starts at 0.
    pub clock_series: Vec<String>,
}

/// The state that counts at one grid point: firing beats pending.
fn state_at(point: &[ActiveAlert]) -> Option<AlertState> {
    if point.iter().any(|a| a.state == AlertState::Firing) {
        Some(AlertState::Firing)
    } else if point.iter().any(|a| a.state == AlertState::Pending) {
        Some(AlertState::Pending)
    } else {
        None
    }
}

/// Grid points at which to check an alert: the middle of every stretch of
/// one state, at least `margin` steps inside each edge where the state
/// changed. The replay sees samples on a grid the real Prometheus did not
/// evaluate on, so a transition may move by a step or two; the middle of a
/// long-enough stretch does not. Stretches too short for that are skipped.
pub fn checkpoints(
    states: &[Option<AlertState>],
    margin: usize,
) -> Vec<(usize, Option<AlertState>)> {
    let mut out = Vec::new();
    let last = match states.len() {
        0 => return out,
        n => n - 1,
    };
    let mut s = 0;
    while s <= last {
        let mut e = s;
        while e < last && states[e + 1] == states[s] {
            e += 1;
        }
        let lo = if s > 0 { s + margin } else { s };
        let hi = if e < last {
            e.checked_sub(margin)
        } else {
            Some(e)
        };
        if let Some(hi) = hi
            && lo <= hi
        {
            out.push(((lo + hi) / 2, states[s]));
        }
        s = e + 1;
    }
    out
}

/// promtool's duration syntax: whole seconds where possible.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// A YAML single-quoted scalar.
fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `name{a="1", b="2"}` in PromQL series syntax.
pub fn series_text(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").map(String::as_str).unwrap_or("");
    let inner: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}={}", crate::verify::queries::quote(v)))
        .collect();
    format!("{name}{{{}}}", inner.join(", "))
}

/// The expression that is 1 exactly when `expr` satisfies `bound` (as
/// `verify::bound::holds` judges it); `min` drops the labels so the expected
/// sample is always `{}`, and an empty result stays empty (no data fails).
pub fn bound_expr(expr: &str, bound: &Bound<f64>) -> String {
    let n = notation::number;
    match *bound {
        Bound::Below(b) => format!("min(({expr}) < bool {})", n(b)),
        Bound::Above(b) => format!("min(({expr}) > bool {})", n(b)),
        Bound::Near { value, tolerance } => {
            format!("min(abs(({expr}) - {}) <= bool {})", n(value), n(tolerance))
        }
        Bound::Between { min, max } => format!(
            "min((({expr}) >= bool {}) * (({expr}) <= bool {}))",
            n(min),
            n(max)
        ),
    }
}

/// Renders the test file.
pub fn render(t: &TestFile) -> String {
    let mut y = String::new();
    let eval = t.evaluation_interval;
    let _ = writeln!(
        y,
        "# promtool test rules: a replay of the slocheck run of {:?} ({}).",
        t.scenario, t.source
    );
    y.push_str(
        "# Generated by `slocheck run --export-promtool`; run with `promtool test rules` on this file.\n\
         #\n\
         # input_series: the run's scraped series as the real Prometheus returned them,\n\
         # one value per scrape interval from the grid origin (0s). Each `a+bxN` segment\n\
         # starts at an exact value; inside it values stay within 10 % of a typical\n\
         # scrape's increase of what was scraped.\n\
         # alert checks: the alert state the real Prometheus recorded (ALERTS), checked\n",
    );
    let _ = writeln!(
        y,
        "# in the middle of each stretch of one state, at least {} away from any change.",
        duration(eval * t.margin_steps as u32)
    );
    if t.run_evaluation_interval != eval {
        let _ = writeln!(
            y,
            "# Rules are evaluated every {} (the run: every {}) so the replay stays fast.",
            duration(eval),
            duration(t.run_evaluation_interval)
        );
    }
    if !t.clock_series.is_empty() {
        let _ = writeln!(
            y,
            "# {}: Unix times minus the grid origin, since the rules read time()\n# and promtool's clock starts at 0s.",
            t.clock_series.join(", ")
        );
    }
    y.push_str("# Phases (offsets from the grid origin):\n");
    for (name, start, end) in &t.phases {
        let _ = writeln!(
            y,
            "#   {name:<14} {} .. {}",
            duration(*start),
            duration(*end)
        );
    }
    y.push_str("rule_files:\n");
    for f in &t.rule_files {
        let _ = writeln!(y, "  - {}", sq(f));
    }
    let _ = writeln!(y, "\nevaluation_interval: {}\n", duration(eval));
    y.push_str("tests:\n");
    let _ = writeln!(
        y,
        "  - name: {}",
        sq(&format!("slocheck run {}", t.scenario))
    );
    let _ = writeln!(y, "    interval: {}", duration(t.scrape_interval));
    y.push_str("    input_series:\n");
    for s in &t.series {
        let tol = notation::tolerance(&s.values);
        let _ = writeln!(y, "      - series: {}", sq(&series_text(&s.labels)));
        let _ = writeln!(
            y,
            "        values: {}",
            sq(&notation::encode(&s.values, tol))
        );
    }

    let mut rule_tests = String::new();
    let mut expr_tests = String::new();
    for a in &t.alerts {
        let states: Vec<Option<AlertState>> = a.points.iter().map(|p| state_at(p)).collect();
        for (i, state) in checkpoints(&states, t.margin_steps) {
            let at = duration(eval * i as u32);
            let active = &a.points[i];
            match state {
                None => {
                    let _ = writeln!(
                        rule_tests,
                        "      # {}: neither pending nor firing at {at} in the real run\n      - eval_time: {at}\n        alertname: {}\n        exp_alerts: []",
                        a.alert,
                        sq(&a.alert)
                    );
                    let _ = writeln!(
                        expr_tests,
                        "      # {}: no ALERTS series (not even pending) at {at}\n      - expr: {}\n        eval_time: {at}\n        exp_samples: []",
                        a.alert,
                        sq(&format!(
                            "ALERTS{{alertname={}}}",
                            crate::verify::queries::quote(&a.alert)
                        ))
                    );
                }
                Some(st) => {
                    let word = match st {
                        AlertState::Pending => "pending",
                        AlertState::Firing => "firing",
                    };
                    let mut samples: Vec<String> = active
                        .iter()
                        .filter(|x| x.state == st)
                        .map(|x| {
                            let mut l = x.labels.clone();
                            l.insert("__name__".into(), "ALERTS".into());
                            l.insert("alertname".into(), a.alert.clone());
                            l.insert("alertstate".into(), word.into());
                            series_text(&l)
                        })
                        .collect();
                    samples.sort();
                    let _ = writeln!(
                        expr_tests,
                        "      # {}: {word} at {at} in the real run\n      - expr: {}\n        eval_time: {at}\n        exp_samples:",
                        a.alert,
                        sq(&format!(
                            "ALERTS{{alertname={}, alertstate=\"{word}\"}}",
                            crate::verify::queries::quote(&a.alert)
                        ))
                    );
                    for s in samples {
                        let _ = writeln!(
                            expr_tests,
                            "          - labels: {}\n            value: 1",
                            sq(&s)
                        );
                    }
                    if st == AlertState::Firing
                        && let Some(ann) = &a.static_annotations
                    {
                        let _ = writeln!(
                            rule_tests,
                            "      # {}: firing at {at} in the real run\n      - eval_time: {at}\n        alertname: {}\n        exp_alerts:",
                            a.alert,
                            sq(&a.alert)
                        );
                        for x in active.iter().filter(|x| x.state == st) {
                            rule_tests.push_str("          - exp_labels:\n");
                            for (k, v) in &x.labels {
                                let _ = writeln!(rule_tests, "              {k}: {}", sq(v));
                            }
                            if !ann.is_empty() {
                                rule_tests.push_str("            exp_annotations:\n");
                                for (k, v) in ann {
                                    let _ = writeln!(rule_tests, "              {k}: {}", sq(v));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    for c in &t.checks {
        let observed = c
            .observed
            .map(notation::number)
            .unwrap_or_else(|| "no data".into());
        let at = duration(c.at);
        let _ = writeln!(
            expr_tests,
            "      # {}: {} (the real Prometheus returned {observed})\n      - expr: {}\n        eval_time: {at}\n        exp_samples:\n          - labels: '{{}}'\n            value: 1",
            c.id,
            c.expected.replace('\n', " "),
            sq(&bound_expr(&c.expr, &c.bound))
        );
    }
    if !rule_tests.is_empty() {
        y.push_str("    alert_rule_test:\n");
        y.push_str(&rule_tests);
    }
    if !expr_tests.is_empty() {
        y.push_str("    promql_expr_test:\n");
        y.push_str(&expr_tests);
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    use AlertState::{Firing as F, Pending as P};

    #[test]
    fn checkpoints_sit_in_the_middle_away_from_changes() {
        // silent 0..=9, pending 10..=19, firing 20..=29, silent 30..=39
        let mut s = vec![None; 10];
        s.extend(vec![Some(P); 10]);
        s.extend(vec![Some(F); 10]);
        s.extend(vec![None; 10]);
        let c = checkpoints(&s, 3);
        assert_eq!(c, vec![(3, None), (14, Some(P)), (24, Some(F)), (36, None)]);
    }

    #[test]
    fn short_stretches_are_skipped() {
        let mut s = vec![None; 10];
        s.extend(vec![Some(P); 4]);
        s.extend(vec![None; 10]);
        let c = checkpoints(&s, 3);
        assert_eq!(c, vec![(3, None), (20, None)]);
    }

    #[test]
    fn bound_expressions_match_verify_semantics() {
        assert_eq!(bound_expr("x", &Bound::Below(0.25)), "min((x) < bool 0.25)");
        assert_eq!(
            bound_expr(
                "x",
                &Bound::Near {
                    value: 0.2,
                    tolerance: 0.03
                }
            ),
            "min(abs((x) - 0.2) <= bool 0.03)"
        );
        assert_eq!(
            bound_expr("x", &Bound::Between { min: 1.0, max: 2.0 }),
            "min(((x) >= bool 1) * ((x) <= bool 2))"
        );
    }

    #[test]
    fn durations_in_promtool_syntax() {
        assert_eq!(duration(Duration::from_secs(38)), "38s");
        assert_eq!(duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn renders_series_alerts_and_checks() {
        let labels = |name: &str| {
            BTreeMap::from([
                ("__name__".to_string(), name.to_string()),
                ("job".to_string(), "slocheck-target".to_string()),
            ])
        };
        let firing = ActiveAlert {
            state: F,
            labels: BTreeMap::from([("severity".to_string(), "critical".to_string())]),
        };
        let mut points = vec![vec![]; 8];
        points.extend(vec![vec![firing]; 8]);
        let t = TestFile {
            scenario: "s".into(),
            source: "s.toml".into(),
            rule_files: vec!["rules/alerts.yml".into()],
            scrape_interval: Duration::from_secs(1),
            evaluation_interval: Duration::from_secs(1),
            run_evaluation_interval: Duration::from_secs(1),
            phases: vec![("a".into(), Duration::ZERO, Duration::from_secs(16))],
            series: vec![GridSeries {
                labels: labels("http_requests_total"),
                values: (0..16).map(|k| Some(k as f64 * 100.0)).collect(),
            }],
            alerts: vec![AlertGrid {
                alert: "A".into(),
                static_annotations: Some(BTreeMap::from([("summary".into(), "it's bad".into())])),
                points,
            }],
            checks: vec![ExprCheck {
                id: "ratio".into(),
                expected: "below 1".into(),
                observed: Some(0.5),
                expr: "sum(x)".into(),
                bound: Bound::Below(1.0),
                at: Duration::from_secs(10),
            }],
            margin_steps: 2,
            clock_series: vec![],
        };
        let y = render(&t);
        assert!(y.contains("values: '0+100x15'"), "{y}");
        assert!(
            y.contains("series: 'http_requests_total{job=\"slocheck-target\"}'"),
            "{y}"
        );
        assert!(
            y.contains("eval_time: 2s\n        alertname: 'A'\n        exp_alerts: []"),
            "{y}"
        );
        assert!(y.contains("eval_time: 12s\n        alertname: 'A'\n        exp_alerts:\n          - exp_labels:\n              severity: 'critical'\n            exp_annotations:\n              summary: 'it''s bad'"), "{y}");
        assert!(
            y.contains(
                "labels: 'ALERTS{alertname=\"A\", alertstate=\"firing\", severity=\"critical\"}'"
            ),
            "{y}"
        );
        assert!(y.contains("expr: 'min((sum(x)) < bool 1)'"), "{y}");
    }
}
