//! `slocheck init` and `slocheck rules`: from a service's `/metrics` to a
//! first verdict. `init` recognizes the metric convention, writes a starter
//! scenario (baseline → error spike → recovery against the service, with
//! expectations in that convention) and the seed's rules rewritten for it;
//! `rules` prints those rules for a named preset.

use std::path::{Path, PathBuf};

use reqwest::Url;

use crate::doctor::probe::fetch_metrics;
use crate::error::Error;
use crate::exit;
use crate::metrics::recognize::recognize;
use crate::metrics::rules::rules_yaml;
use crate::metrics::{MetricsSpec, preset, preset_names};

/// Resolved options of `slocheck init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub target_url: Url,
    /// Skip recognition and use this preset.
    pub preset: Option<String>,
    /// The request every phase sends (method and path).
    pub method: http::Method,
    pub path: String,
    /// Requests per second of every phase.
    pub rate: f64,
    /// Folder the scenario and rules are written into.
    pub dir: PathBuf,
    pub force: bool,
}

pub const SCENARIO_FILE: &str = "scenario.toml";
pub const RULES_FILE: &str = "rules.yml";

/// `slocheck rules --preset NAME`: the rules on stdout.
pub fn rules(name: &str) -> Result<u8, Error> {
    let p = preset(name).ok_or_else(|| {
        Error::Invalid(format!(
            "unknown preset \"{name}\" (hint: presets: {})",
            preset_names()
        ))
    })?;
    print!("{}", rules_yaml(&p.spec()));
    Ok(exit::PASS)
}

/// `slocheck init`: writes the two files and says what to run next.
pub async fn init(opts: &InitOptions) -> Result<u8, Error> {
    if !opts.rate.is_finite() || opts.rate <= 0.0 {
        return Err(Error::Invalid(format!(
            "--rate must be > 0, got {}",
            opts.rate
        )));
    }
    if !opts.path.starts_with('/') {
        return Err(Error::Invalid(format!(
            "--path must start with '/', got \"{}\"",
            opts.path
        )));
    }
    let scenario_path = opts.dir.join(SCENARIO_FILE);
    let rules_path = opts.dir.join(RULES_FILE);
    if !opts.force {
        for p in [&scenario_path, &rules_path] {
            if p.exists() {
                return Err(Error::Invalid(format!(
                    "{} already exists (hint: pass --force to overwrite it, or --dir for another folder)",
                    p.display()
                )));
            }
        }
    }
    let (spec, why) = match &opts.preset {
        Some(name) => {
            let p = preset(name).ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown preset \"{name}\" (hint: presets: {})",
                    preset_names()
                ))
            })?;
            (p.spec(), format!("preset \"{}\" as asked", p.name))
        }
        None => {
            let (mut url, mut exp) = fetch(&opts.target_url).await?;
            if recognize(&exp.samples).is_empty() {
                // Most exporters create a series at its first request: a
                // service that has served none shows empty families.
                poke(opts).await;
                (url, exp) = fetch(&opts.target_url).await?;
            }
            let Some(best) = recognize(&exp.samples).first().copied() else {
                return Err(Error::Invalid(format!(
                    "{url} matches no known metric convention (hint: pass --preset NAME, or write a scenario whose [metrics] table names the counters; presets: {})",
                    preset_names()
                )));
            };
            (
                best.spec(),
                format!("{url} looks like {} (preset \"{}\")", best.about, best.name),
            )
        }
    };
    let scenario = scenario_text(opts, &spec, &why);
    // What init writes must load: a bug here would hand the user an error
    // in a file they did not write.
    crate::scenario::parse_str(&scenario, &scenario_path).map_err(|e| {
        Error::Invalid(format!(
            "init produced an invalid scenario (please report this): {e}"
        ))
    })?;
    std::fs::create_dir_all(&opts.dir).map_err(|source| Error::Io {
        what: "create",
        path: opts.dir.clone(),
        source,
    })?;
    write(&rules_path, &rules_yaml(&spec))?;
    write(&scenario_path, &scenario)?;
    println!("{why}");
    println!("wrote {}", scenario_path.display());
    println!("wrote {}", rules_path.display());
    println!("next:");
    println!(
        "  slocheck check {}    # the plan and the PromQL each expectation runs",
        scenario_path.display()
    );
    println!(
        "  slocheck run {}      # traffic, a managed Prometheus, the verdict",
        scenario_path.display()
    );
    println!(
        "the \"error-spike\" phase asks the service to fail 20% of requests with the x-slocheck-fault header; \
a service without the slocheck fault middleware ignores it (then drop that phase's expectations)"
    );
    Ok(exit::PASS)
}

async fn fetch(target: &Url) -> Result<(Url, crate::doctor::exposition::Exposition), Error> {
    fetch_metrics(target, &crate::plan::TlsPlan::default())
        .await
        .map_err(|(c, _)| {
            let hint = c.hint.map(|h| format!(" (hint: {h})")).unwrap_or_default();
            Error::Environment(format!("{}{hint}", c.detail))
        })
}

/// One request to the scenario's path, so the exporter's series exist;
/// its outcome does not matter (recognition reads the page again).
async fn poke(opts: &InitOptions) {
    let Ok(url) = opts.target_url.join(&opts.path) else {
        return;
    };
    let Ok(http) = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .no_proxy()
        .build()
    else {
        return;
    };
    println!(
        "no known series on /metrics yet: sent one {} {} so the exporter creates them",
        opts.method, opts.path
    );
    let _ = http.request(opts.method.clone(), url).send().await;
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|source| Error::Io {
        what: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// A TOML basic string.
fn tq(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The starter scenario. Phases are short and the rules' 5m windows are
/// checked at `time_scale = 30` (10 s), so the first verdict takes under a
/// minute.
pub fn scenario_text(opts: &InitOptions, spec: &MetricsSpec, why: &str) -> String {
    let mut base = opts.target_url.clone();
    base.set_path("/");
    base.set_query(None);
    let latency = if spec.has_quantiles() {
        "latency_quantile = 0.9\nphase = \"baseline\"\nbelow = \"1s\"".to_string()
    } else {
        "latency_mean = { phase = \"baseline\", below = \"1s\" }".to_string()
    };
    format!(
        r#"# Written by `slocheck init`: {why}.
# Baseline, then 20% of requests fail (x-slocheck-fault header), then recovery;
# Prometheus must see the error ratio and HighErrorRate must fire and resolve.
name = "init-{preset}"
seed = 1

[target]
url = {url}
request = {{ method = {method}, path = {path} }}

[metrics]
preset = {preset_q}

[prometheus]        # no url: slocheck starts a managed Prometheus
scrape_interval = "1s"
evaluation_interval = "1s"
rule_files = ["{rules}"]
time_scale = 30     # the rules' 5m windows and `for: 5m` are checked as 10s

[load]
mode = "open"
rate = {rate}

[[phase]]
name = "baseline"
duration = "8s"

[[phase]]
name = "error-spike"
duration = "20s"
faults = {{ error_rate = 0.20, status = 503 }}

[[phase]]
name = "recovery"
duration = "20s"

[[expect]]
name = "baseline-latency"
{latency}

[[expect]]
name = "baseline-errors"
error_ratio = {{ phase = "baseline", below = 0.01 }}

[[expect]]
name = "spike-errors"
error_ratio = {{ phase = "error-spike", near = 0.20, tolerance = 0.05 }}

[[expect]]
name = "high-error-rate"
alert = "HighErrorRate"
silent_during = ["baseline"]
fires_during = "error-spike"
resolves_during = "recovery"
"#,
        preset = spec.preset,
        preset_q = tq(&spec.preset),
        url = tq(base.as_str()),
        method = tq(opts.method.as_str()),
        path = tq(&opts.path),
        rules = RULES_FILE,
        rate = opts.rate,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::PRESETS;

    #[test]
    fn every_preset_s_starter_scenario_loads() {
        for p in PRESETS {
            let opts = InitOptions {
                target_url: "http://127.0.0.1:8000/metrics".parse().unwrap(),
                preset: None,
                method: http::Method::POST,
                path: "/predict".into(),
                rate: 20.0,
                dir: PathBuf::from("x"),
                force: false,
            };
            let text = scenario_text(&opts, &p.spec(), "test");
            let loaded = crate::scenario::parse_str(&text, Path::new("x/scenario.toml"))
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", p.name));
            assert_eq!(loaded.plan.metrics, p.spec());
            assert!(text.contains("url = \"http://127.0.0.1:8000/\""));
        }
    }
}
