//! The `slocheck check` view of a plan: what will happen when, and what will
//! be checked. Plain text, stable enough to snapshot.

use std::fmt::Write;
use std::time::Duration;

use crate::plan::*;

fn d(x: Duration) -> String {
    if x.is_zero() {
        "0s".into()
    } else {
        humantime::format_duration(x).to_string()
    }
}

fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// Renders the plan as the `check` command prints it.
pub fn timeline(plan: &Plan) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write_timeline(plan, &mut s);
    s
}

fn write_timeline(plan: &Plan, s: &mut String) -> std::fmt::Result {
    writeln!(
        s,
        "scenario {} ({}), seed {}",
        plan.name,
        plan.source.display(),
        plan.seed
    )?;
    match &plan.target {
        TargetPlan::BuiltIn => writeln!(s, "target      built-in ML service")?,
        TargetPlan::External { url } => writeln!(s, "target      {url}")?,
    }
    let r = &plan.request;
    let body = match r.bodies.len() {
        0 => "no body".to_string(),
        1 => "1 body".to_string(),
        n => format!("{n} bodies (cycled)"),
    };
    writeln!(
        s,
        "request     {} {}, {body}, timeout {}, connect timeout {}",
        r.method,
        r.path,
        d(r.timeout),
        d(r.connect_timeout)
    )?;
    for (k, v) in &r.headers {
        writeln!(s, "            {k}: {}", v.to_str().unwrap_or("<binary>"))?;
    }
    match plan.load.mode {
        LoadMode::Open => writeln!(
            s,
            "load        open loop, at most {} in flight",
            plan.load.max_in_flight
        )?,
        LoadMode::Closed {
            concurrency,
            think_time,
        } => writeln!(
            s,
            "load        closed loop, {concurrency} workers, think time {}, at most {} in flight",
            d(think_time),
            plan.load.max_in_flight
        )?,
    }
    let p = &plan.prometheus;
    let where_ = p
        .url
        .as_ref()
        .map_or_else(|| "managed".to_string(), |u| u.to_string());
    writeln!(
        s,
        "prometheus  {where_}, scrape every {}, evaluate every {}, time scale {}, job {}, settle {}",
        d(p.scrape_interval),
        d(p.evaluation_interval),
        num(p.time_scale),
        p.job,
        d(p.settle)
    )?;
    for f in &p.rule_files {
        writeln!(s, "rule file   {}", f.display())?;
    }
    if p.time_scale > 1.0 {
        let five = Duration::from_secs(300).div_f64(p.time_scale);
        writeln!(
            s,
            "            (rule windows and `for` divided by {}: 5m becomes {})",
            num(p.time_scale),
            d(five)
        )?;
    }

    if let Some(m) = &plan.model {
        let pg = m
            .pushgateway_url
            .as_ref()
            .map_or_else(|| "managed pushgateway".to_string(), |u| u.to_string());
        writeln!(
            s,
            "model       labels from \"{}\" ({} bodies); `slocheck evaluate` every {} over {} (labels after {}), pushed to {pg} as job {}",
            m.label_key,
            m.labels.len(),
            d(m.evaluate_every),
            d(m.window),
            d(m.label_delay),
            m.job
        )?;
    }
    writeln!(s, "\nphases (one pass: {})", d(plan.total_duration()))?;
    let mut start = Duration::ZERO;
    for (i, ph) in plan.phases.iter().enumerate() {
        let end = start + ph.duration;
        let load = match (plan.load.mode, ph.rate, ph.concurrency) {
            (LoadMode::Closed { .. }, _, Some(c)) => format!("{c} workers"),
            (_, Rate::Constant(r), _) => format!("{} rps", num(r)),
            (_, Rate::Ramp { from, to }, _) => format!("{} → {} rps", num(from), num(to)),
        };
        let expected = match plan.load.mode {
            LoadMode::Open => Some(ph.rate.expected_count(ph.duration)),
            LoadMode::Closed { .. } => None,
        };
        let requests = expected.map_or_else(
            || "requests depend on the service".into(),
            |n| format!("~{} requests", n.round()),
        );
        writeln!(
            s,
            "  {}. {:<12} {:>7} → {:<7} {:<16} {requests}",
            i + 1,
            ph.name,
            d(start),
            d(end),
            load
        )?;
        let share = |ratio: f64| {
            expected.map_or(String::new(), |n| {
                format!(" (~{} requests)", (n * ratio).round())
            })
        };
        if let Some(e) = ph.faults.error {
            writeln!(
                s,
                "       error fault: status {} on {}%{}",
                e.status,
                num(e.ratio * 100.0),
                share(e.ratio)
            )?;
        }
        if let Some(l) = ph.faults.latency {
            let dist = match l.delay {
                DelayDist::Fixed(x) => d(x),
                DelayDist::Uniform { min, max } => format!("uniform {}..{}", d(min), d(max)),
                DelayDist::Exponential { mean, max } => {
                    format!("exponential mean {}, max {}", d(mean), d(max))
                }
            };
            writeln!(
                s,
                "       latency fault: +{dist} on {}%{}",
                num(l.ratio * 100.0),
                share(l.ratio)
            )?;
        }
        if let Some(x) = ph.drift {
            writeln!(
                s,
                "       input drift: features +{} sd on {}%{}",
                num(x.shift),
                num(x.fraction * 100.0),
                share(x.fraction)
            )?;
        }
        if plan.model.is_some() && !ph.evaluate {
            writeln!(s, "       evaluation batch job stopped")?;
        }
        start = end;
    }

    writeln!(
        s,
        "\nexpectations{}",
        if plan.allow_inconclusive {
            " (inconclusive allowed)"
        } else {
            ""
        }
    )?;
    if plan.expects.is_empty() {
        writeln!(s, "  (none: the run only produces traffic)")?;
    }
    for e in &plan.expects {
        let extra = if e.allow_inconclusive {
            " [inconclusive allowed]"
        } else {
            ""
        };
        writeln!(s, "  {}: {}{extra}", e.id, describe(&e.kind))?;
    }
    Ok(())
}

fn bound<T>(b: &Bound<T>, f: impl Fn(&T) -> String) -> String {
    match b {
        Bound::Below(x) => format!("below {}", f(x)),
        Bound::Above(x) => format!("above {}", f(x)),
        Bound::Near { value, tolerance } => format!("near {} ± {}", f(value), f(tolerance)),
        Bound::Between { min, max } => format!("between {} and {}", f(min), f(max)),
    }
}

fn describe(k: &ExpectKind) -> String {
    match k {
        ExpectKind::LatencyQuantile {
            quantile,
            phase,
            bound: b,
        } => {
            format!(
                "latency P{} in {phase} {}",
                num(quantile * 100.0),
                bound(b, |x| d(*x))
            )
        }
        ExpectKind::ErrorRatio { phase, bound: b } => {
            format!("5xx ratio in {phase} {}", bound(b, |x| num(*x)))
        }
        ExpectKind::LatencyMean { phase, bound: b } => {
            format!("mean latency in {phase} {}", bound(b, |x| d(*x)))
        }
        ExpectKind::PromQl {
            expr,
            phase,
            aggregate,
            bound: b,
        } => {
            let agg = format!("{aggregate:?}").to_lowercase();
            format!("{agg} of `{expr}` in {phase} {}", bound(b, |x| num(*x)))
        }
        ExpectKind::Alert(a) => {
            let mut parts = Vec::new();
            if !a.silent_during.is_empty() {
                parts.push(format!("silent during {}", a.silent_during.join(", ")));
            }
            let within = |w: Option<Duration>| {
                w.map_or_else(
                    || "bound from the rule".into(),
                    |w| format!("within {}", d(w)),
                )
            };
            if let Some(p) = &a.fires_during {
                parts.push(format!("fires during {p} ({})", within(a.fire_within)));
            }
            if let Some(p) = &a.resolves_during {
                parts.push(format!(
                    "resolves during {p} ({})",
                    within(a.resolve_within)
                ));
            }
            format!("alert {}: {}", a.alert, parts.join("; "))
        }
        ExpectKind::Notified(n) => n.describe(),
        ExpectKind::Load(l) => l.describe(),
        ExpectKind::ModelQuality {
            metric,
            phase,
            bound: b,
        } => {
            let b = match b {
                crate::plan::QualityBound::Fixed(b) => bound(b, |x| num(*x)),
                crate::plan::QualityBound::NearExpected { tolerance } => {
                    format!("near the generator's expected value ± {}", num(*tolerance))
                }
            };
            format!("model {} in {phase} {b}", metric.describe())
        }
    }
}
