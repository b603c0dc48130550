//! `slocheck doctor`: diagnoses the seed's troubleshooting list ("Target
//! DOWN", "Empty /metrics", "Empty Grafana panels") against a live
//! Prometheus and target, one verdict and fix hint per check.

pub mod check;
pub mod dashboard;
pub mod exposition;
pub mod probe;

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;

use crate::error::Error;
use crate::exit;
use crate::prom::PromClient;
use check::Check;

/// Resolved options of `slocheck doctor`.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    pub prometheus_url: Url,
    /// Base URL of the service whose `/metrics` to check.
    pub target_url: Option<Url>,
    /// Folder of dashboard JSON; `None` uses `./dashboards` when it exists.
    pub dashboards: Option<PathBuf>,
    /// Only this scrape job (and `$job` in panel queries); `None` = all.
    pub job: Option<String>,
    /// What `$__rate_interval`, `$__interval` and `$__range` stand for.
    pub rate_interval: Duration,
    /// The metric convention to check /metrics against (None: recognize it).
    pub preset: Option<crate::metrics::MetricsSpec>,
    /// How to verify an https target (CA bundle or insecure).
    pub target_tls: crate::plan::TlsPlan,
}

/// Every check, in the order a user would fix things.
pub struct Diagnosis {
    pub checks: Vec<Check>,
    /// Neither Prometheus nor the target answered.
    pub nothing_reachable: bool,
}

impl Diagnosis {
    /// 0 all passed, 1 a check failed, 3 nothing could be reached.
    pub fn exit_code(&self) -> u8 {
        if self.nothing_reachable {
            exit::ENVIRONMENT
        } else if probe::all_pass(&self.checks) {
            exit::PASS
        } else {
            exit::FAIL
        }
    }
}

/// Runs the checks and prints them; returns the exit code.
pub async fn doctor(opts: &DoctorOptions) -> Result<u8, Error> {
    let d = diagnose(opts).await?;
    print!("{}", check::render(&d.checks));
    Ok(d.exit_code())
}

/// Runs every check. Bad input (URL, dashboard files) is an error (exit 2);
/// everything found in the environment is a check.
pub async fn diagnose(opts: &DoctorOptions) -> Result<Diagnosis, Error> {
    let queries = match &opts.dashboards {
        Some(dir) => Some(dashboard::load_dir(dir)),
        None => {
            let dir = PathBuf::from("dashboards");
            dir.is_dir().then(|| dashboard::load_dir(&dir))
        }
    }
    .transpose()
    .map_err(|e| Error::Invalid(e.to_string()))?;
    // A bad URL exits 2 here as in `run`: `Error::exit_code` maps both.
    let client = PromClient::new(opts.prometheus_url.clone(), Duration::from_secs(5))?;

    let mut checks = vec![probe::prometheus(&client).await];
    let prom_up = probe::all_pass(&checks);
    let (target_checks, target_answered) = match &opts.target_url {
        Some(u) => probe::metrics(u, opts.preset.as_ref(), &opts.target_tls).await,
        None => (
            vec![Check::skip(
                "metrics",
                "no --target-url: the service's /metrics was not checked",
            )],
            false,
        ),
    };
    if prom_up {
        checks.extend(probe::targets(&client, opts.job.as_deref()).await);
    }
    checks.extend(target_checks);
    if prom_up {
        checks.extend(probe::rules(&client).await);
        match &queries {
            Some(q) => {
                let vars = dashboard::Variables::new(
                    opts.rate_interval,
                    opts.job.as_deref().unwrap_or(".+"),
                );
                checks.extend(probe::panels(&client, q, &vars).await);
            }
            None => checks.push(Check::skip(
                "panel",
                "no dashboards folder: pass --dashboards DIR to check every panel query",
            )),
        }
    } else {
        checks.push(Check::skip(
            "rules",
            "prometheus is not reachable: rules and panels were not checked",
        ));
    }
    Ok(Diagnosis {
        checks,
        nothing_reachable: !prom_up && !target_answered,
    })
}
