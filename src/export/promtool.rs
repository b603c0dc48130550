//! `slocheck run --export-promtool DIR`: turns a finished run into a
//! `promtool test rules` file. Asks the run's Prometheus for the scraped
//! series the rules and checks read (resampled on the scrape grid) and for
//! the `ALERTS` series of every alerting rule, copies the rule files that
//! were loaded, renders the test (`testfile`) and, when promtool is
//! installed, runs it once so the user learns at once whether the replay
//! agrees with the run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr};

use super::testfile::{self, ActiveAlert, AlertGrid, ExprCheck, GridSeries, TestFile};
use crate::error::Error;
use crate::plan::{Aggregate, ExpectKind, Plan};
use crate::prom::PromClient;
use crate::prom::rules::RuleFile;
use crate::record::RunRecord;
use crate::timeutil::{from_unix_secs_f64, unix_ms};
use crate::verify::outcome::{AlertState, Outcome};

/// What an export needs from the run.
pub struct ExportInputs<'a> {
    pub plan: &'a Plan,
    pub record: &'a RunRecord,
    pub outcome: &'a Outcome,
    /// The rule files Prometheus loaded (scaled copies, or the originals),
    /// parsed.
    pub rules: &'a [RuleFile],
    /// The end of the observed range (after the settle period).
    pub until: SystemTime,
}

/// What was written, and what promtool said about it.
#[derive(Debug, Clone)]
pub struct Exported {
    pub test_file: PathBuf,
    pub rule_files: Vec<PathBuf>,
    pub series: usize,
    /// None: promtool is not installed.
    pub promtool: Option<Result<Duration, String>>,
}

/// Alert checks stay this many evaluation intervals away from a state change.
const MARGIN_STEPS: usize = 3;

/// promtool evaluates every rule group at every step up to the last check
/// (a few milliseconds a step for the burn-rate rules' long windows): the
/// replay evaluates at most about this many times, to run in well under a
/// second.
const MAX_EVALUATIONS: u64 = 100;

/// The run's evaluation interval, or a whole multiple of it when the run
/// would need more than [`MAX_EVALUATIONS`] steps (a 40 s run evaluated
/// every 100 ms is replayed every 400 ms). The input series keep the scrape
/// interval, so every window still holds the samples the run's did.
fn replay_interval(run: Duration, span_ms: u64) -> Duration {
    let run_ms = run.as_millis().max(1) as u64;
    run * span_ms.div_ceil(run_ms * MAX_EVALUATIONS).max(1) as u32
}

/// Metric names an expression reads, as written in its selectors.
pub fn selector_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Ok(mut ast) = parser::parse(expr) else {
        return out;
    };
    crate::prom::timescale::visit_mut(&mut ast, &mut |node| {
        let vs = match node {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(ms) => &mut ms.vs,
            _ => return,
        };
        if let Some(n) = &vs.name {
            out.insert(n.clone());
        }
        for m in &vs.matchers.matchers {
            if m.name == "__name__" && matches!(m.op, MatchOp::Equal) {
                out.insert(m.value.clone());
            }
        }
    });
    out
}

/// Writes `DIR/<scenario>_test.yml` and `DIR/rules/*` and checks them.
pub async fn export(
    client: &PromClient,
    inp: &ExportInputs<'_>,
    dir: &Path,
) -> Result<Exported, Error> {
    let pp = &inp.plan.prometheus;
    let scrape = pp.scrape_interval;
    // The grid starts two scrapes before the load (the series exist from the
    // target's start, at zero) on a whole multiple of the scrape interval.
    let step_ms = scrape.as_millis().max(1) as u64;
    let origin_ms =
        (unix_ms(inp.record.started_at).saturating_sub(2 * step_ms) / step_ms) * step_ms;
    let origin = from_unix_secs_f64(origin_ms as f64 / 1000.0);
    let span_ms = unix_ms(inp.until).saturating_sub(origin_ms);
    let scrape_n = (span_ms / step_ms) as usize + 1;
    let eval = replay_interval(pp.evaluation_interval, span_ms);
    let eval_ms = eval.as_millis().max(1) as u64;
    let eval_n = (span_ms / eval_ms) as usize + 1;
    let end_of =
        |n: usize, ms: u64| from_unix_secs_f64((origin_ms + (n as u64 - 1) * ms) as f64 / 1000.0);

    // The series to replay: everything the rules and the checks select,
    // minus what the rules themselves record.
    let checks = checks(inp, origin_ms, step_ms);
    let recorded: BTreeSet<&str> = inp
        .rules
        .iter()
        .flat_map(|f| f.recording_rules().map(|r| r.name.as_str()))
        .collect();
    let mut names = BTreeSet::new();
    for r in inp.rules.iter().flat_map(|f| f.rules()) {
        names.extend(selector_names(r.expr()));
    }
    for c in &checks {
        names.extend(selector_names(&c.expr));
    }
    names.retain(|n| !recorded.contains(n.as_str()) && !n.starts_with("ALERTS"));

    // Every series of the run's own scrape jobs: the target's, and the
    // Pushgateway's (pushed metrics keep their pushed `job`) when the run
    // had one.
    let jobs: Vec<&str> = std::iter::once(pp.job.as_str())
        .chain(inp.plan.model.as_ref().map(|m| m.job.as_str()))
        .collect();
    let jobs = crate::verify::queries::quote(&regex_alternatives(&jobs));
    // promtool's clock starts at 0, the run's at the grid origin: when a
    // rule reads `time()`, timestamps such as `push_time_seconds` move by
    // the same amount so their difference is the run's.
    let uses_time = inp
        .rules
        .iter()
        .flat_map(|f| f.rules())
        .map(|r| r.expr())
        .chain(checks.iter().map(|c| c.expr.as_str()))
        .any(calls_time);
    let mut clock_series = BTreeSet::new();
    let mut series = Vec::new();
    for name in &names {
        let q = format!(
            "{{__name__={},job=~{jobs}}}",
            crate::verify::queries::quote(name)
        );
        let got = client
            .query_range(&q, origin, end_of(scrape_n, step_ms), scrape)
            .await?;
        let shift = (uses_time && is_timestamp(name)).then_some(origin_ms as f64 / 1000.0);
        for s in got {
            let mut values = on_grid(&s.points, origin_ms, step_ms, scrape_n);
            if let Some(by) = shift {
                clock_series.insert(name.clone());
                for v in values.iter_mut().flatten() {
                    // Milliseconds are all a clock comparison needs.
                    *v = ((*v - by) * 1000.0).round() / 1000.0;
                }
            }
            series.push(GridSeries {
                labels: s.labels,
                values,
            });
        }
    }
    series.sort_by_key(|s| testfile::series_text(&s.labels));

    let mut alerts = Vec::new();
    for a in inp.rules.iter().flat_map(|f| f.alerts()) {
        let q = format!(
            "ALERTS{{alertname={}}}",
            crate::verify::queries::quote(&a.name)
        );
        let got = client
            .query_range(&q, origin, end_of(eval_n, eval_ms), eval)
            .await?;
        let mut points: Vec<Vec<ActiveAlert>> = vec![Vec::new(); eval_n];
        for s in got {
            let state = match s.labels.get("alertstate").map(String::as_str) {
                Some("firing") => AlertState::Firing,
                Some("pending") => AlertState::Pending,
                _ => continue,
            };
            let mut labels = s.labels.clone();
            for k in ["__name__", "alertname", "alertstate"] {
                labels.remove(k);
            }
            for (i, v) in on_grid(&s.points, origin_ms, eval_ms, eval_n)
                .iter()
                .enumerate()
            {
                if v.is_some() {
                    points[i].push(ActiveAlert {
                        state,
                        labels: labels.clone(),
                    });
                }
            }
        }
        let templated = a.annotations.values().any(|v| v.contains("{{"));
        alerts.push(AlertGrid {
            alert: a.name.clone(),
            static_annotations: (!templated).then(|| a.annotations.clone()),
            points,
        });
    }

    let rules_dir = dir.join("rules");
    std::fs::create_dir_all(&rules_dir).map_err(Error::io("create", &rules_dir))?;
    let mut copied = Vec::new();
    let mut rel = Vec::new();
    let mut used = BTreeSet::new();
    for (i, f) in inp.rules.iter().enumerate() {
        let base = f
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("rules-{i}.yml"));
        let name = if used.insert(base.clone()) {
            base
        } else {
            format!("{i}-{base}")
        };
        let to = rules_dir.join(&name);
        std::fs::copy(&f.path, &to).map_err(Error::io("copy the rule file to", &to))?;
        copied.push(to);
        rel.push(format!("rules/{name}"));
    }

    let origin_off = |t: SystemTime| Duration::from_millis(unix_ms(t).saturating_sub(origin_ms));
    let file = TestFile {
        scenario: inp.plan.name.clone(),
        source: inp.plan.source.display().to_string(),
        rule_files: rel,
        scrape_interval: scrape,
        evaluation_interval: eval,
        run_evaluation_interval: pp.evaluation_interval,
        phases: inp
            .record
            .phases
            .iter()
            .map(|p| (p.name.clone(), origin_off(p.start), origin_off(p.end)))
            .collect(),
        series,
        alerts,
        checks,
        margin_steps: MARGIN_STEPS,
        clock_series: clock_series.into_iter().collect(),
    };
    let text = testfile::render(&file);
    let test_file = dir.join(format!("{}_test.yml", file_stem(&inp.plan.name)));
    crate::report::atomic::write(&test_file, |out| out.write_all(text.as_bytes()))?;
    Ok(Exported {
        promtool: promtool_test(&test_file),
        test_file,
        rule_files: copied,
        series: file.series.len(),
    })
}

/// A Unix-time gauge by the Prometheus naming convention
/// (`push_time_seconds`, `process_start_time_seconds`,
/// `*_timestamp_seconds`).
fn is_timestamp(name: &str) -> bool {
    name.ends_with("_time_seconds") || name.ends_with("_timestamp_seconds")
}

/// Whether a PromQL expression calls `time()`.
fn calls_time(expr: &str) -> bool {
    let Ok(mut ast) = parser::parse(expr) else {
        return false;
    };
    let mut found = false;
    crate::prom::timescale::visit_mut(&mut ast, &mut |node| {
        if let Expr::Call(c) = node
            && c.func.name == "time"
        {
            found = true;
        }
    });
    found
}

/// Literals as one RE2 alternation (job names may hold `.`).
fn regex_alternatives(literals: &[&str]) -> String {
    literals
        .iter()
        .map(|a| {
            a.chars()
                .flat_map(|c| {
                    let special = "\\.+*?()[]{}^$|".contains(c);
                    special.then_some('\\').into_iter().chain([c])
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// A scenario name as a file name: anything but `[A-Za-z0-9._-]` becomes `_`.
fn file_stem(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "run".into() } else { s }
}

/// Points of a range query placed on the grid `origin + k·step`.
fn on_grid(
    points: &[(SystemTime, f64)],
    origin_ms: u64,
    step_ms: u64,
    n: usize,
) -> Vec<Option<f64>> {
    let mut out = vec![None; n];
    for (t, v) in points {
        let off = unix_ms(*t) as i64 - origin_ms as i64;
        let k = (off as f64 / step_ms as f64).round();
        if k >= 0.0 && (k as usize) < n {
            out[k as usize] = Some(*v);
        }
    }
    out
}

/// The expectations that became a query, replayed at their phase's end
/// (floored onto the scrape grid, where the replay's last sample sits).
fn checks(inp: &ExportInputs<'_>, origin_ms: u64, step_ms: u64) -> Vec<ExprCheck> {
    let mut out = Vec::new();
    for e in &inp.plan.expects {
        let Some(r) = inp.outcome.results.iter().find(|r| r.id == e.id) else {
            continue;
        };
        let Some(ev) = r.queries.first() else {
            continue;
        };
        let (bound, expr) = match &e.kind {
            ExpectKind::LatencyQuantile { bound, .. } | ExpectKind::LatencyMean { bound, .. } => {
                (crate::verify::bound::secs(bound), ev.promql.clone())
            }
            ExpectKind::ErrorRatio { bound, .. } => (bound.clone(), ev.promql.clone()),
            ExpectKind::PromQl {
                bound, aggregate, ..
            } => {
                let range = ev.at_ms.saturating_sub(ev.start_ms.unwrap_or(ev.at_ms));
                let f = match aggregate {
                    Aggregate::Last => None,
                    Aggregate::Min => Some("min_over_time"),
                    Aggregate::Max => Some("max_over_time"),
                    Aggregate::Avg => Some("avg_over_time"),
                };
                let step = inp.plan.prometheus.evaluation_interval;
                let expr = match f {
                    None => ev.promql.clone(),
                    Some(f) => format!(
                        "{f}(({})[{}:{}])",
                        ev.promql,
                        testfile::duration(Duration::from_millis(range)),
                        testfile::duration(step)
                    ),
                };
                (bound.clone(), expr)
            }
            // Alert lifecycles are replayed from ALERTS; deliveries need an
            // Alertmanager promtool does not have; delivered load is the
            // client's record, not a series.
            // Model quality is judged on the last evaluation window inside
            // the phase (and may be near the generator's expected value), not
            // on one instant a promtool test can state.
            ExpectKind::Alert(_)
            | ExpectKind::Notified(_)
            | ExpectKind::Load(_)
            | ExpectKind::ModelQuality { .. } => continue,
        };
        let at_ms = ev.at_ms.saturating_sub(origin_ms) / step_ms * step_ms;
        out.push(ExprCheck {
            id: e.id.clone(),
            expected: r.expected.clone(),
            observed: ev.value,
            expr,
            bound,
            at: Duration::from_millis(at_ms),
        });
    }
    out
}

/// Runs `promtool test rules` on the export. None when promtool is absent.
pub fn promtool_test(file: &Path) -> Option<Result<Duration, String>> {
    let started = Instant::now();
    let result =
        crate::prom::timescale::promtool(["test".as_ref(), "rules".as_ref(), file.as_os_str()])?;
    Some(result.map(|()| started.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_names_reads_plain_and_name_matchers() {
        let n = selector_names(
            r#"sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate({__name__="other"}[5m])) > job:x:rate5m"#,
        );
        assert_eq!(
            n.into_iter().collect::<Vec<_>>(),
            vec!["http_requests_total", "job:x:rate5m", "other"]
        );
    }

    #[test]
    fn points_land_on_the_nearest_grid_step() {
        let t = |ms: u64| from_unix_secs_f64(ms as f64 / 1000.0);
        let g = on_grid(
            &[(t(10_000), 1.0), (t(12_001), 3.0), (t(99_000), 9.0)],
            10_000,
            1000,
            4,
        );
        assert_eq!(g, vec![Some(1.0), None, Some(3.0), None]);
    }

    #[test]
    fn long_runs_at_short_intervals_are_replayed_at_a_multiple() {
        let ms = Duration::from_millis;
        assert_eq!(replay_interval(ms(1000), 60_000), ms(1000));
        assert_eq!(replay_interval(ms(100), 38_000), ms(400));
        assert_eq!(replay_interval(ms(100), 9_000), ms(100));
    }

    #[test]
    fn timestamps_and_time_calls_are_recognised() {
        assert!(is_timestamp("push_time_seconds"));
        assert!(is_timestamp("batch_last_success_timestamp_seconds"));
        assert!(!is_timestamp("process_cpu_seconds_total"));
        assert!(calls_time("time() - push_time_seconds > 30"));
        assert!(!calls_time("rate(x[5m]) > 1"));
        assert_eq!(
            regex_alternatives(&["slocheck-target", "model.eval"]),
            "slocheck-target|model\\.eval"
        );
    }

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("error-spike"), "error-spike");
        assert_eq!(file_stem("a b/c"), "a_b_c");
    }
}
