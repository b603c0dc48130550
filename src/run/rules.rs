//! The rule files a run uses: loaded and validated before anything starts,
//! checked against the scenario's expectations (unknown alert → exit 2),
//! time-scaled into the run directory, and reduced to the timings verification
//! derives its bounds from.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::error::Error;
use crate::plan::{ExpectKind, Plan};
use crate::prom::rules::{self, RuleFile};
use crate::prom::{shape, timescale};
use crate::scenario::Loaded;
use crate::verify::alert::RuleTiming;

/// Rules as deployed, plus what the managed Prometheus will load.
pub struct PreparedRules {
    pub files: Vec<RuleFile>,
    /// Scaled copies (managed Prometheus) with what was changed.
    pub scaled: Vec<timescale::ScaledFile>,
    /// Alert name → timing after scaling.
    pub timings: BTreeMap<String, RuleTiming>,
}

/// Loads every rule file and checks that each alert an expectation names
/// exists in them.
pub fn load_and_check(loaded: &Loaded) -> Result<Vec<RuleFile>, Error> {
    let plan = &loaded.plan;
    let mut files = Vec::with_capacity(plan.prometheus.rule_files.len());
    for (i, path) in plan.prometheus.rule_files.iter().enumerate() {
        match rules::load(path) {
            Ok(f) => files.push(f),
            // A missing file is the scenario's mistake: point at its entry.
            Err(e @ rules::RulesError::Read { .. }) => {
                return Err(match loaded.spans.rule_files.get(i) {
                    Some(at) => Error::Invalid(
                        loaded
                            .spans
                            .diagnostic(&at.key_path, at.location, &e.to_string(), None)
                            .to_string(),
                    ),
                    None => e.into(),
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    let known: Vec<&str> = files
        .iter()
        .flat_map(|f| f.alerts().map(|a| a.name.as_str()))
        .collect();
    for (i, e) in plan.expects.iter().enumerate() {
        let alert = match &e.kind {
            ExpectKind::Alert(a) => &a.alert,
            ExpectKind::Notified(n) => &n.alert,
            _ => continue,
        };
        if known.contains(&alert.as_str()) {
            continue;
        }
        let hint = if known.is_empty() {
            "the rule files define no alerts; add rule_files to [prometheus]".to_string()
        } else {
            format!("alerts in the rule files: {}", known.join(", "))
        };
        let message = format!("unknown alert \"{alert}\"");
        let diag = match loaded
            .spans
            .alert_names
            .iter()
            .find(|r| r.expect_index == i)
        {
            Some(r) => loaded
                .spans
                .diagnostic(&r.key_path, r.location, &message, Some(&hint))
                .to_string(),
            None => format!(
                "{}: {}.alert: {message} (hint: {hint})",
                plan.source.display(),
                e.id
            ),
        };
        return Err(Error::Invalid(diag));
    }
    Ok(files)
}

/// Refuses a time scale that shrinks a rule's range below two scrape
/// intervals: rate() over fewer than two samples is empty, so the alert could
/// never fire and the run would fail for a reason that is not the rules'.
pub fn check_time_scale(plan: &Plan, files: &[RuleFile]) -> Result<(), Error> {
    let scale = plan.prometheus.time_scale;
    let floor = 2 * plan.prometheus.scrape_interval;
    for f in files {
        if let Some(min) = timescale::min_range(f) {
            let scaled = min.div_f64(scale);
            if scaled < floor {
                return Err(Error::Invalid(format!(
                    "{}: time_scale = {scale} turns the range [{}] in {} into {}, shorter than two scrape intervals ({}) (hint: lower time_scale or the scrape_interval)",
                    plan.source.display(),
                    humantime::format_duration(min),
                    f.path.display(),
                    crate::timeutil::human(scaled),
                    crate::timeutil::human(floor),
                )));
            }
        }
    }
    Ok(())
}

/// Writes the scaled copies into `dir` and checks them with promtool when it
/// is installed.
pub fn prepare(plan: &Plan, files: Vec<RuleFile>, dir: &Path) -> Result<PreparedRules, Error> {
    std::fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    let scaled =
        timescale::write_scaled(&plan.prometheus.rule_files, plan.prometheus.time_scale, dir)?;
    let paths: Vec<_> = scaled.iter().map(|s| s.scaled.clone()).collect();
    if let Some(Err(msg)) = timescale::promtool_check(&paths) {
        return Err(Error::Invalid(format!(
            "the time-scaled rules do not pass promtool check rules: {msg} (hint: run with --keep-run-dir and inspect the copies)"
        )));
    }
    let mut timings = BTreeMap::new();
    for s in &scaled {
        let file = rules::load(&s.scaled)?;
        for a in file.alerts() {
            timings.insert(a.name.clone(), timing(&a.expr, a.for_, a.keep_firing_for));
        }
    }
    Ok(PreparedRules {
        files,
        scaled,
        timings,
    })
}

/// Timings of rules loaded elsewhere (external Prometheus: unscaled).
pub fn timings(files: &[RuleFile]) -> BTreeMap<String, RuleTiming> {
    files
        .iter()
        .flat_map(|f| f.alerts())
        .map(|a| (a.name.clone(), timing(&a.expr, a.for_, a.keep_firing_for)))
        .collect()
}

fn timing(expr: &str, for_: Duration, keep_firing_for: Duration) -> RuleTiming {
    let s = shape::alert_shape(expr);
    RuleTiming {
        window: s.window,
        threshold: s.threshold,
        quantile: s.quantile,
        for_,
        keep_firing_for,
    }
}
