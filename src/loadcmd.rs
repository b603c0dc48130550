//! `slocheck load` (traffic only, optionally looping for demos) and
//! `slocheck check` (validate and print the plan, no traffic).

use std::path::{Path, PathBuf};

use reqwest::Url;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::load;
use crate::plan::{ExpectKind, Plan};
use crate::progress::ProgressMode;
use crate::run::{Env, add_fault_token, apply_overrides, load_pass, rules};
use crate::signals::Interrupt;
use crate::timeutil::human;
use crate::verify::alert::{RuleTiming, applied_bounds};
use crate::{exit, scenario};

pub struct LoadOptions {
    pub scenario: PathBuf,
    pub target_url: Option<Url>,
    pub seed: Option<u64>,
    pub repeat: bool,
    /// Bearer token for a target that only honours the fault header with it.
    pub admin_token: Option<String>,
    pub progress: ProgressMode,
    /// Serve the generator's own metrics here (`--metrics-listen`).
    pub metrics_listen: Option<std::net::SocketAddr>,
}

pub async fn load(
    opts: LoadOptions,
    cancel: &CancellationToken,
    interrupt: &Interrupt,
) -> Result<u8, Error> {
    let plan = read_plan(&opts, cancel, interrupt).await?;
    let mut env = Env::default();
    let result = async {
        let url = env.start_target(&plan).await?;
        if env.target.is_some() {
            eprintln!("slocheck: built-in target serving at {url} (metrics at {url}metrics)");
        }
        if let Some(addr) = opts.metrics_listen {
            env.start_generator_metrics(addr).await?;
        }
        passes(
            &plan,
            &url,
            opts.progress,
            opts.repeat,
            &mut env,
            cancel,
            interrupt,
        )
        .await
    }
    .await;
    env.shutdown().await;
    result
}

/// The scenario with the command line applied (on a blocking thread: the
/// file may be slow or never end). Shared with `load --shard`.
pub(crate) async fn read_plan(
    opts: &LoadOptions,
    cancel: &CancellationToken,
    interrupt: &Interrupt,
) -> Result<Plan, Error> {
    let (path, url, seed) = (opts.scenario.clone(), opts.target_url.clone(), opts.seed);
    let token = opts.admin_token.clone();
    crate::signals::blocking(cancel, interrupt, move || {
        let mut loaded = scenario::load(&path)?;
        apply_overrides(&mut loaded.plan, url.as_ref(), None, seed);
        let fault_token = std::env::var(crate::fault_protocol::TOKEN_ENV).ok();
        add_fault_token(&mut loaded.plan, fault_token.as_deref())?;
        if let Some(token) = &token {
            add_bearer(&mut loaded.plan, token)?;
        }
        Ok(loaded.plan)
    })
    .await
}

/// Drives the phases once, or again and again until interrupted when
/// `repeat` (`load --loop`, `demo`), printing each pass's summary table.
/// Stops when a child `env` started dies.
pub(crate) async fn passes(
    plan: &Plan,
    target: &Url,
    mode: ProgressMode,
    repeat: bool,
    env: &mut Env,
    cancel: &CancellationToken,
    interrupt: &Interrupt,
) -> Result<u8, Error> {
    let mut pass = 0u64;
    loop {
        pass += 1;
        let (record, died) = load_pass(plan, target, mode, env, cancel).await;
        let record = record?;
        if repeat {
            println!("pass {pass}:");
        }
        println!("{}", load::phase_summary_table(&record));
        println!(
            "{}",
            crate::report::TransportReport::of(&record.transport).describe()
        );
        if let Some(e) = died {
            return Err(e);
        }
        if cancel.is_cancelled() {
            return Err(Error::Interrupted(interrupt.exit_code()));
        }
        if !repeat {
            return Ok(exit::PASS);
        }
    }
}

fn add_bearer(plan: &mut Plan, token: &str) -> Result<(), Error> {
    let mut value = http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        Error::Invalid(
            "the admin token is not a valid header value (hint: use printable ASCII)".into(),
        )
    })?;
    value.set_sensitive(true);
    plan.request
        .headers
        .push((http::header::AUTHORIZATION, value));
    Ok(())
}

/// Validates the scenario and its rules, then prints the timeline and the
/// alert bounds that verification would apply.
pub fn check(path: &Path) -> Result<(), Error> {
    let loaded = scenario::load(path)?;
    let files = rules::load_and_check(&loaded)?;
    let plan = &loaded.plan;
    if plan.prometheus.url.is_none() {
        rules::check_time_scale(plan, &files)?;
    }
    print!("{}", scenario::timeline(plan));
    print!("{}", promql_of_expectations(plan));
    if let Some(am) = &plan.alertmanager {
        crate::alertmanager::stack::print_check(am, plan.prometheus.time_scale)?;
    }
    let scale = if plan.prometheus.url.is_none() {
        plan.prometheus.time_scale
    } else {
        1.0
    };
    let timings = rules::timings(&files);
    for e in &plan.expects {
        let ExpectKind::Alert(a) = &e.kind else {
            continue;
        };
        let Some(t) = timings.get(&a.alert) else {
            continue;
        };
        let t = RuleTiming {
            window: t.window.map(|w| w.div_f64(scale)),
            for_: t.for_.div_f64(scale),
            keep_firing_for: t.keep_firing_for.div_f64(scale),
            ..*t
        };
        let bounds = applied_bounds(a, &t, plan);
        let mut parts = Vec::new();
        if let Some(p) = &a.fires_during {
            let b = bounds.fire_within.unwrap_or_default();
            parts.push(format!("must fire within {} of \"{p}\" starting", human(b)));
            warn_if_longer(plan, p, b, "fire");
        }
        if let Some(p) = &a.resolves_during {
            let b = bounds.resolve_within.unwrap_or_default();
            parts.push(format!(
                "must resolve within {} of \"{p}\" starting",
                human(b)
            ));
            warn_if_longer(plan, p, b, "resolve");
        }
        if !parts.is_empty() {
            println!("{} {}: {}", e.id, a.alert, parts.join(", "));
        }
    }
    for line in crate::slo::bounds::check_lines(plan, &files, scale) {
        println!("{line}");
    }
    for line in crate::slo::bounds::slo_lines(&plan.slos, &files, scale) {
        println!("{line}");
    }
    Ok(())
}

/// The metric convention and the exact PromQL each metric expectation will
/// run (the window is the phase's planned length; the run uses the measured
/// one, a few milliseconds apart).
fn promql_of_expectations(plan: &Plan) -> String {
    let m = crate::metrics::MetricQueries::new(&plan.metrics, &plan.prometheus.job);
    let mut out = format!("{}\n", plan.metrics.describe());
    let window = |phase: &str| {
        plan.phases
            .iter()
            .find(|p| p.name == phase)
            .map_or(std::time::Duration::ZERO, |p| p.duration)
    };
    for e in &plan.expects {
        let q = match &e.kind {
            ExpectKind::LatencyQuantile {
                quantile, phase, ..
            } => m.latency_quantile(*quantile, window(phase)),
            ExpectKind::ErrorRatio { phase, .. } => Some(m.error_ratio(window(phase))),
            ExpectKind::LatencyMean { phase, .. } => Some(m.latency_mean(window(phase))),
            ExpectKind::PromQl { expr, .. } => Some(expr.clone()),
            ExpectKind::Alert(a) => Some(crate::verify::queries::alert_states(&a.alert)),
            ExpectKind::ModelQuality { metric, .. } => plan
                .model
                .as_ref()
                .map(|m| crate::verify::quality::metric_query(metric, &m.job)),
            ExpectKind::Notified(_) | ExpectKind::Load(_) => None,
        };
        if let Some(q) = q {
            out.push_str(&format!("{} promql: {q}\n", e.id));
        }
    }
    out
}

fn warn_if_longer(plan: &Plan, phase: &str, bound: std::time::Duration, what: &str) {
    if let Some(p) = plan.phases.iter().find(|p| p.name == phase)
        && p.duration < bound
    {
        println!(
            "warning: phase \"{phase}\" lasts {} but the alert may need up to {} to {what}; lengthen the phase",
            human(p.duration),
            human(bound)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> crate::plan::Plan {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/demo.toml");
        scenario::load(&path).expect("demo scenario").plan
    }

    #[test]
    fn admin_token_becomes_a_sensitive_bearer_header() {
        let mut p = plan();
        let before = p.request.headers.len();
        add_bearer(&mut p, "s3cret").unwrap();
        let (name, value) = p.request.headers.last().unwrap();
        assert_eq!(p.request.headers.len(), before + 1);
        assert_eq!(name, http::header::AUTHORIZATION);
        assert_eq!(value.to_str().unwrap(), "Bearer s3cret");
        assert!(value.is_sensitive());
        assert!(matches!(add_bearer(&mut p, "a\nb"), Err(Error::Invalid(_))));
    }

    #[test]
    fn fault_token_is_sent_once_and_sensitive() {
        let mut p = plan();
        let before = p.request.headers.len();
        add_fault_token(&mut p, None).unwrap();
        add_fault_token(&mut p, Some("  ")).unwrap();
        assert_eq!(p.request.headers.len(), before, "no token, no header");
        add_fault_token(&mut p, Some("first")).unwrap();
        add_fault_token(&mut p, Some("s3cret")).unwrap();
        let tokens: Vec<_> = p
            .request
            .headers
            .iter()
            .filter(|(n, _)| n == crate::fault_protocol::TOKEN_HEADER)
            .collect();
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0].1.to_str().unwrap(), "s3cret");
        assert!(tokens[0].1.is_sensitive());
        let err = add_fault_token(&mut p, Some("a\nb")).unwrap_err();
        assert!(err.to_string().contains("SLOCHECK_FAULT_TOKEN"), "{err}");
    }
}
