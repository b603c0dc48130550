//! Burn-rate arithmetic: when a generated page or ticket alert should fire
//! and resolve for a phase that fails a share `e` of requests, derived from
//! its window pairs (read back from the rule file, after time scaling).
//! Pure; `slocheck check` prints the result.

use std::collections::BTreeMap;
use std::time::Duration;

use promql_parser::parser::token::{T_GTR, T_LAND, T_LOR, T_MUL};
use promql_parser::parser::{self, Expr};

use crate::plan::{ExpectKind, Plan};
use crate::prom::rules::RuleFile;
use crate::timeutil::human;

/// One long/short pair of an alert, windows as Prometheus evaluates them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    pub long: Duration,
    pub short: Duration,
    /// Error-ratio threshold (factor × budget).
    pub threshold: f64,
}

/// The pairs of a generated burn-rate alert: `(A > θ and B > θ …) or (…)`
/// over recorded ratios whose windows are looked up in `files`. Empty when
/// the alert is not of that form.
pub fn pairs(alert_expr: &str, files: &[RuleFile]) -> Vec<Pair> {
    let windows: BTreeMap<&str, Duration> = files
        .iter()
        .flat_map(|f| f.recording_rules())
        .filter_map(|r| {
            Some((
                r.name.as_str(),
                crate::prom::timescale::expr_max_range(&r.expr)?,
            ))
        })
        .collect();
    let Ok(ast) = parser::parse(alert_expr) else {
        return vec![];
    };
    let mut out = Vec::new();
    for branch in split(&ast, T_LOR) {
        let mut seen: Vec<(Duration, f64)> = Vec::new();
        for cond in split(branch, T_LAND) {
            if let Some((name, th)) = compared(cond)
                && let Some(w) = windows.get(name.as_str())
            {
                seen.push((*w, th));
            }
        }
        if let [a, b] = seen[..] {
            let (long, short) = if a.0 >= b.0 { (a, b) } else { (b, a) };
            out.push(Pair {
                long: long.0,
                short: short.0,
                threshold: long.1.max(short.1),
            });
        }
    }
    out
}

fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unparen(&p.expr),
        e => e,
    }
}

fn split(e: &Expr, op: u16) -> Vec<&Expr> {
    match unparen(e) {
        Expr::Binary(b) if b.op.id() == op => {
            let mut v = split(&b.lhs, op);
            v.extend(split(&b.rhs, op));
            v
        }
        e => vec![e],
    }
}

fn number(e: &Expr) -> Option<f64> {
    match unparen(e) {
        Expr::NumberLiteral(n) => Some(n.val),
        Expr::Binary(b) if b.op.id() == T_MUL => Some(number(&b.lhs)? * number(&b.rhs)?),
        _ => None,
    }
}

/// `recorded_ratio{…} > θ` → (recorded name, θ).
fn compared(e: &Expr) -> Option<(String, f64)> {
    match unparen(e) {
        Expr::Binary(b) if b.op.id() == T_GTR => match unparen(&b.lhs) {
            Expr::VectorSelector(vs) => Some((vs.name.clone()?, number(&b.rhs)?)),
            _ => None,
        },
        _ => None,
    }
}

/// How long after a phase failing a share `e` of requests starts until the
/// first pair holds; `before` is how long traffic ran before the phase (a
/// window longer than the run holds only the run). None: no pair can hold.
pub fn fire_after(pairs: &[Pair], e: f64, before: Duration) -> Option<Duration> {
    pairs
        .iter()
        .filter(|p| e > p.threshold)
        .map(|p| {
            let (l, b) = (p.long.as_secs_f64(), before.as_secs_f64());
            // Window not yet full of traffic: e·t / (b + t) > θ.
            let partial = p.threshold * b / (e - p.threshold);
            let t = if b + partial <= l {
                partial
            } else {
                l * p.threshold / e
            };
            Duration::from_secs_f64(t)
        })
        .min()
}

/// How long after the faults stop until no pair holds: each pair ends when
/// its short window has drained below the threshold.
pub fn resolve_after(pairs: &[Pair], e: f64) -> Option<Duration> {
    pairs
        .iter()
        .filter(|p| e > p.threshold)
        .map(|p| p.short.mul_f64(1.0 - p.threshold / e))
        .max()
}

/// Lines for `slocheck check`: for every alert expectation on a burn-rate
/// alert, the bounds the arithmetic gives (windows divided by `scale`, the
/// injected error ratio of its `fires_during` phase, traffic before it).
pub fn check_lines(plan: &Plan, files: &[RuleFile], scale: f64) -> Vec<String> {
    let pp = &plan.prometheus;
    let lag = crate::verify::alert::pipeline_lag(pp.scrape_interval, pp.evaluation_interval);
    let mut out = Vec::new();
    for e in &plan.expects {
        let ExpectKind::Alert(a) = &e.kind else {
            continue;
        };
        let Some(rule) = files.iter().find_map(|f| f.alert(&a.alert)) else {
            continue;
        };
        let scaled: Vec<Pair> = pairs(&rule.expr, files)
            .into_iter()
            .map(|p| Pair {
                long: p.long.div_f64(scale),
                short: p.short.div_f64(scale),
                ..p
            })
            .collect();
        if scaled.is_empty() {
            continue;
        }
        let Some(name) = &a.fires_during else {
            out.push(format!(
                "{} {} (burn rate): no fires_during phase, nothing to derive",
                e.id, a.alert
            ));
            continue;
        };
        let Some(i) = plan.phases.iter().position(|p| &p.name == name) else {
            continue;
        };
        let ratio = plan.phases[i].faults.error.map_or(0.0, |x| x.ratio);
        let before: Duration = plan.phases[..i].iter().map(|p| p.duration).sum();
        let head = format!(
            "{} {} (burn rate): {:.2}% errors in \"{name}\"",
            e.id,
            a.alert,
            ratio * 100.0
        );
        match fire_after(&scaled, ratio, before) {
            None => out.push(format!(
                "{head}: no window pair can exceed its threshold ({}), it never fires",
                scaled
                    .iter()
                    .map(|p| format!("{:.2}%", p.threshold * 100.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Some(t) => {
                let mut line = format!(
                    "{head}: fires {} after the phase starts (+ {} pipeline lag)",
                    human(t),
                    human(lag)
                );
                if let Some(r) = resolve_after(&scaled, ratio) {
                    line.push_str(&format!(
                        ", resolves {} after the faults stop (+ {})",
                        human(r),
                        human(lag)
                    ));
                }
                out.push(line);
            }
        }
    }
    out
}

/// Lines for `slocheck check` about a scenario's `[[slo]]` tables: each
/// alert's window pairs and thresholds as the run evaluates them (windows
/// divided by `scale`), and whether the loaded rule files hold that alert
/// with the same thresholds (rules generated from an older `[[slo]]` do not).
pub fn slo_lines(slos: &[super::Slo], files: &[RuleFile], scale: f64) -> Vec<String> {
    let mut out = Vec::new();
    for slo in slos {
        out.push(format!(
            "slo {}: {}% good over {}, error budget {:.2}%, errors {} of {}",
            slo.name,
            slo.objective,
            crate::prom::rules::format_duration(slo.period),
            slo.budget() * 100.0,
            slo.errors,
            slo.total
        ));
        for (alert, windows, kind) in [
            (super::rules::PAGE_ALERT, &super::PAGE[..], "page"),
            (super::rules::TICKET_ALERT, &super::TICKET[..], "ticket"),
        ] {
            let thresholds: Vec<f64> = windows
                .iter()
                .map(|w| w.factor(slo.period) * slo.budget())
                .collect();
            let text: Vec<String> = windows
                .iter()
                .zip(&thresholds)
                .map(|(w, th)| {
                    format!(
                        "{}x = {:.2}% over {} and {}",
                        w.factor(slo.period),
                        th * 100.0,
                        human(w.long.div_f64(scale)),
                        human(w.short.div_f64(scale))
                    )
                })
                .collect();
            let loaded = files
                .iter()
                .flat_map(|f| f.alerts())
                .find(|a| a.name == alert && a.labels.get("slo") == Some(&slo.name));
            let state = match loaded {
                None => {
                    "not in the rule files (hint: `slocheck slo rules SCENARIO --out FILE` and list FILE in prometheus.rule_files)"
                }
                Some(a) => {
                    let have: Vec<f64> =
                        pairs(&a.expr, files).iter().map(|p| p.threshold).collect();
                    let same = have.len() == thresholds.len()
                        && have
                            .iter()
                            .zip(&thresholds)
                            .all(|(h, t)| (h - t).abs() < 1e-9);
                    if same {
                        "loaded"
                    } else {
                        "loaded, but with other thresholds (hint: regenerate it with `slocheck slo rules`)"
                    }
                }
            };
            out.push(format!("  {kind} {alert}: {}: {state}", text.join(", or ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo::rules::tests::slo as ml_slo;
    use crate::slo::{Slo, rules};

    fn files(scale: f64) -> Vec<RuleFile> {
        let text = rules::render(&[ml_slo()], "slo.toml");
        let f = crate::prom::rules::parse_str(&text, std::path::Path::new("slo.yml")).unwrap();
        let (scaled, _) = crate::prom::timescale::scale_rule_file(&f, scale).unwrap();
        vec![crate::prom::rules::parse_str(&scaled, std::path::Path::new("slo.yml")).unwrap()]
    }

    fn close(a: Duration, secs: f64) -> bool {
        (a.as_secs_f64() - secs).abs() < 0.01
    }

    #[test]
    fn reads_the_generated_pairs_after_scaling() {
        let f = files(1000.0);
        let page = pairs(&f[0].alert(rules::PAGE_ALERT).unwrap().expr, &f);
        assert_eq!(page.len(), 2);
        assert_eq!(page[0].long, Duration::from_millis(3600));
        assert_eq!(page[0].short, Duration::from_millis(300));
        assert!((page[0].threshold - 0.072).abs() < 1e-12);
        assert!((page[1].threshold - 0.03).abs() < 1e-12);
        assert!(pairs("up > 1", &f).is_empty());
    }

    #[test]
    fn slo_lines_show_scaled_windows_and_whether_the_rules_are_loaded() {
        let f = files(1.0);
        let slo = ml_slo();
        let lines = slo_lines(std::slice::from_ref(&slo), &f, 1000.0);
        assert!(
            lines[1].contains("page SLOErrorBudgetBurnPage: 14.4x = 7.20% over 3.6s and 300ms"),
            "{lines:?}"
        );
        assert!(lines[1].ends_with(": loaded"), "{lines:?}");
        let stricter = Slo {
            objective: 99.9,
            ..slo.clone()
        };
        let lines = slo_lines(&[stricter], &f, 1000.0);
        assert!(lines[2].contains("with other thresholds"), "{lines:?}");
        let lines = slo_lines(&[slo], &[], 1000.0);
        assert!(lines[1].contains("not in the rule files"), "{lines:?}");
    }

    #[test]
    fn fast_burn_pages_in_seconds_and_resolves_when_the_short_window_drains() {
        let f = files(1000.0);
        let page = pairs(&f[0].alert(rules::PAGE_ALERT).unwrap().expr, &f);
        // 12 % errors: the 1h window (3.6 s) crosses 7.2 % after 2.16 s.
        assert!(close(
            fire_after(&page, 0.12, Duration::from_secs(8)).unwrap(),
            2.16
        ));
        // The 30m window (1.8 s) drains below 3 % after 1.35 s.
        assert!(close(resolve_after(&page, 0.12).unwrap(), 1.35));
        // Doubled thresholds: nothing can fire at 12 % within 8 s of burn.
        assert!(fire_after(&page[..1], 0.12 / 2.0, Duration::ZERO).is_none());
    }

    #[test]
    fn slow_burn_tickets_once_the_run_holds_enough_errors_and_never_pages() {
        let f = files(1000.0);
        let ticket = pairs(&f[0].alert(rules::TICKET_ALERT).unwrap().expr, &f);
        let page = pairs(&f[0].alert(rules::PAGE_ALERT).unwrap().expr, &f);
        // 0.75 %: only the 1x pair (0.5 %); the 6h window (21.6 s) holds
        // 5 s of clean traffic first: 0.0075 t / (5 + t) > 0.005 → t > 10 s.
        assert!(close(
            fire_after(&ticket, 0.0075, Duration::from_secs(5)).unwrap(),
            10.0
        ));
        assert!(fire_after(&page, 0.0075, Duration::from_secs(5)).is_none());
    }
}
