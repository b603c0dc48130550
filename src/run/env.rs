//! The one bring-up of `run`, `demo` and `load`: the target (built-in or
//! external), the run directory, Alertmanager with its recorder, and
//! Prometheus (managed or external). Started in order, checked before any
//! load, and always stopped in reverse order — and the run directory removed
//! even on a forced exit (second Ctrl-C).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use tokio_util::sync::CancellationToken;

use super::rules;
use crate::alertmanager::{AlertStack, StackOptions};
use crate::error::Error;
use crate::load::exporter;
use crate::load::metrics::GeneratorMetrics;
use crate::plan::{AlertmanagerPlan, ExpectKind, Plan, TargetPlan};
use crate::prom::launcher::{self, LaunchConfig, ManagedPrometheus};
use crate::prom::rules::RuleFile;
use crate::prom::timescale::ScaledFile;
use crate::prom::{PromClient, PromError};
use crate::signals::Interrupt;
use crate::target::{TargetConfig, TargetHandle};
use crate::verify::alert::RuleTiming;

/// How long to wait for Prometheus's first successful scrape of the target.
const FIRST_SCRAPE_TIMEOUT: Duration = Duration::from_secs(30);
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct Env {
    pub target: Option<TargetHandle>,
    pub target_url: Option<Url>,
    pub prometheus: Option<ManagedPrometheus>,
    pub client: Option<PromClient>,
    pub prometheus_version: Option<String>,
    /// Per-request timeout of Prometheus API calls (default 10 s).
    pub query_timeout: Option<Duration>,
    /// Recorder + managed Alertmanager, when the scenario checks delivery.
    pub alerting: Option<AlertStack>,
    /// The time-scaled rule copies the managed Prometheus loads.
    pub scaled: Vec<ScaledFile>,
    /// Removed after the children stopped (they write into it).
    pub(super) run_dir: Option<RunDirGuard>,
    /// The generator's own metrics (`--metrics-listen`), scraped as a
    /// second job by a managed Prometheus.
    pub generator: Option<GeneratorExport>,
}

/// A running `--metrics-listen` exporter.
pub struct GeneratorExport {
    pub addr: SocketAddr,
    pub metrics: Arc<GeneratorMetrics>,
    stop: CancellationToken,
}

/// Which Prometheus to bring up, and with what.
pub struct PromSetup<'a> {
    pub source: PromSource,
    /// The rules as deployed: time-scaled into the run directory for a
    /// managed Prometheus, only read for their timings for an external one.
    pub rules: Vec<RuleFile>,
    /// Alertmanager and its recorder (managed Prometheus only).
    pub alerting: Option<AlertingSetup<'a>>,
    pub keep_run_dir: bool,
}

pub enum PromSource {
    /// Started by slocheck; `None` finds `prometheus` on PATH.
    Managed { bin: Option<PathBuf> },
    /// Already running; it must scrape the target and load the rules.
    External { url: Url },
}

pub struct AlertingSetup<'a> {
    pub plan: &'a AlertmanagerPlan,
    pub bin: Option<&'a Path>,
    pub live_receivers: bool,
}

/// A Prometheus ready to be asked: it has scraped the target once.
pub struct PromUp {
    pub client: PromClient,
    /// Alert name → timing, after scaling.
    pub timings: BTreeMap<String, RuleTiming>,
}

impl Env {
    /// Starts the built-in target on a free loopback port, or checks that the
    /// external one answers HTTP at all.
    pub async fn start_target(&mut self, plan: &Plan) -> Result<Url, Error> {
        let url = match &plan.target {
            TargetPlan::BuiltIn => {
                let cfg = TargetConfig {
                    listen: ([127, 0, 0, 1], 0).into(),
                    faults_enabled: true,
                    admin_token: None,
                    metrics_enabled: true,
                    seed: plan.seed,
                    tls: None,
                };
                let handle = TargetHandle::start(cfg).await?;
                let url = handle.base_url();
                self.target = Some(handle);
                url
            }
            TargetPlan::External { url } => {
                // `--target-url` is not checked by the scenario's rules.
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(Error::Invalid(format!(
                        "target URL {url} is not an http(s) URL with a host (hint: use e.g. http://127.0.0.1:8000/)"
                    )));
                }
                // Every address, TLS and the HTTP version, before anything
                // else starts.
                crate::load::preflight(plan, url)
                    .await
                    .map_err(|e| Error::Load(e.into()))?;
                url.clone()
            }
        };
        self.target_url = Some(url.clone());
        Ok(url)
    }

    /// Brings up Prometheus for `target` (started first): managed — run
    /// directory, scaled rules, Alertmanager, Prometheus, first scrape — or
    /// external — API, target and rules checked. A signal at any step
    /// returns `Error::Interrupted`; what was started stays in `self` for
    /// `shutdown`.
    pub async fn start_prometheus(
        &mut self,
        plan: &Plan,
        setup: PromSetup<'_>,
        target: &Url,
        cancel: &CancellationToken,
        interrupt: &Interrupt,
    ) -> Result<PromUp, Error> {
        let interrupted = || Error::Interrupted(interrupt.exit_code());
        let up = match setup.source {
            PromSource::Managed { bin } => {
                let dir = self.make_run_dir(setup.keep_run_dir)?;
                let prepared = rules::prepare(plan, setup.rules, &dir.join("rules"))?;
                self.scaled = prepared.scaled;
                if let Some(a) = setup.alerting {
                    let o = StackOptions {
                        plan: a.plan,
                        bin: a.bin,
                        live_receivers: a.live_receivers,
                        time_scale: plan.prometheus.time_scale,
                        run_dir: &dir,
                    };
                    let started = AlertStack::start(o, cancel).await;
                    if cancel.is_cancelled() {
                        return Err(interrupted());
                    }
                    self.alerting = Some(started?);
                }
                let paths = self.scaled.iter().map(|s| s.scaled.clone()).collect();
                let client = self
                    .start_managed(plan, bin, dir, paths, target, cancel)
                    .await;
                if cancel.is_cancelled() {
                    return Err(interrupted());
                }
                PromUp {
                    client: client?,
                    timings: prepared.timings,
                }
            }
            PromSource::External { url } => PromUp {
                client: self.use_external(&url, plan).await?,
                timings: rules::timings(&setup.rules),
            },
        };
        if cancel.is_cancelled() {
            return Err(interrupted());
        }
        Ok(up)
    }

    /// The run directory (Prometheus config, scaled rules, logs, TSDB), once
    /// a managed Prometheus asked for it.
    pub fn run_dir(&self) -> Option<PathBuf> {
        self.run_dir.as_ref().map(RunDirGuard::path)
    }

    fn make_run_dir(&mut self, keep: bool) -> Result<PathBuf, Error> {
        let dir = tempfile::Builder::new()
            .prefix("slocheck-run-")
            .tempdir()
            .map_err(Error::io("create a run directory in", std::env::temp_dir()))?;
        if !keep {
            crate::signals::remove_on_forced_exit(dir.path().to_path_buf());
        }
        let guard = RunDirGuard {
            dir: Some(dir),
            keep,
        };
        let path = guard.path();
        self.run_dir = Some(guard);
        Ok(path)
    }

    /// Serves the generator's own metrics on `addr` (before Prometheus
    /// starts, so its config scrapes them); port 0 picks a free one.
    pub async fn start_generator_metrics(&mut self, addr: SocketAddr) -> Result<SocketAddr, Error> {
        let metrics = Arc::new(GeneratorMetrics::new());
        let stop = CancellationToken::new();
        let bound = exporter::serve(addr, metrics.clone(), stop.clone())
            .await
            .map_err(|e| Error::Environment(e.to_string()))?;
        eprintln!("slocheck: generator metrics at http://{bound}/metrics");
        self.generator = Some(GeneratorExport {
            addr: bound,
            metrics,
            stop,
        });
        Ok(bound)
    }

    /// Starts a managed Prometheus scraping `target`, waits until it is ready
    /// and has scraped the target once.
    async fn start_managed(
        &mut self,
        plan: &Plan,
        bin: Option<PathBuf>,
        run_dir: PathBuf,
        rule_files: Vec<PathBuf>,
        target: &Url,
        cancel: &CancellationToken,
    ) -> Result<PromClient, Error> {
        let bin = launcher::find_binary(bin.as_deref())?;
        eprintln!(
            "slocheck: starting {} (run directory {})",
            bin.display(),
            run_dir.display()
        );
        let host = target.host_str().unwrap_or("127.0.0.1");
        let port = target.port_or_known_default().unwrap_or(80);
        let cfg = LaunchConfig {
            bin,
            run_dir,
            scrape_interval: plan.prometheus.scrape_interval,
            evaluation_interval: plan.prometheus.evaluation_interval,
            job: plan.prometheus.job.clone(),
            targets: vec![format!("{host}:{port}")],
            metrics_path: "/metrics".to_string(),
            rule_files,
            alertmanagers: self
                .alerting
                .as_ref()
                .map(AlertStack::target)
                .unwrap_or_default(),
            extra_jobs: self
                .generator
                .iter()
                .map(|g| {
                    crate::prom::config::ScrapeConfig::new(
                        exporter::JOB,
                        &[g.addr.to_string()],
                        "/metrics",
                    )
                })
                .collect(),
            scrape_tls: (target.scheme() == "https").then(|| plan.transport.tls.clone()),
        };
        let prom = ManagedPrometheus::start(cfg, cancel).await?;
        let client = PromClient::new(prom.url().clone(), self.timeout())?;
        eprintln!(
            "slocheck: prometheus {} ready at {}; waiting for its first scrape of the target",
            prom.pid(),
            prom.url()
        );
        self.prometheus = Some(prom);
        self.prometheus_version = client.build_version().await.ok();
        client
            .wait_target_up(&plan.prometheus.job, FIRST_SCRAPE_TIMEOUT, cancel)
            .await?;
        if let Some(a) = &self.alerting {
            a.wait_discovered(&client, cancel).await?;
        }
        self.client = Some(client.clone());
        Ok(client)
    }

    /// Checks an external Prometheus: API answers, target up, the alerts the
    /// expectations name loaded.
    async fn use_external(&mut self, url: &Url, plan: &Plan) -> Result<PromClient, Error> {
        let required: Vec<String> = plan
            .expects
            .iter()
            .filter_map(|e| match &e.kind {
                ExpectKind::Alert(a) => Some(a.alert.clone()),
                _ => None,
            })
            .collect();
        let client = PromClient::new(url.clone(), self.timeout())?;
        crate::prom::preflight(&client, &plan.prometheus.job, &required).await?;
        self.prometheus_version = client.build_version().await.ok();
        self.client = Some(client.clone());
        Ok(client)
    }

    fn timeout(&self) -> Duration {
        self.query_timeout.unwrap_or(QUERY_TIMEOUT)
    }

    /// Errors when the managed Prometheus or Alertmanager has exited.
    pub fn check_alive(&mut self) -> Result<(), Error> {
        if let Some(a) = self.alerting.as_mut() {
            a.check_alive()?;
        }
        match self.prometheus.as_mut() {
            Some(p) => Ok(p.check_alive()?),
            None => Ok(()),
        }
    }

    /// Stops everything that was started, Prometheus first (it scrapes the
    /// target and sends to Alertmanager), then Alertmanager, then the target,
    /// and reaps them; then removes the run directory, or keeps it and
    /// returns its path.
    pub async fn shutdown(&mut self) -> Option<PathBuf> {
        if let Some(p) = self.prometheus.take()
            && let Err(e) = p.stop().await
        {
            eprintln!("slocheck: warning: {}", crate::error::chain(&e));
        }
        if let Some(a) = self.alerting.take()
            && let Err(e) = a.stop().await
        {
            eprintln!("slocheck: warning: {}", crate::error::chain(&e));
        }
        if let Some(t) = self.target.take() {
            t.shutdown().await;
        }
        if let Some(g) = self.generator.take() {
            g.stop.cancel();
        }
        self.run_dir.take().and_then(RunDirGuard::finish)
    }
}

/// A URL the Prometheus client accepts, checked before anything starts so
/// a bad `--prometheus-url` is invalid input (exit 2) in `run` as in
/// `doctor`.
pub fn check_prometheus_url(url: &Url) -> Result<(), PromError> {
    PromClient::new(url.clone(), QUERY_TIMEOUT).map(|_| ())
}

/// Removes the run directory on every exit path unless asked to keep it.
pub(super) struct RunDirGuard {
    dir: Option<tempfile::TempDir>,
    keep: bool,
}

impl RunDirGuard {
    fn path(&self) -> PathBuf {
        self.dir
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default()
    }

    /// Keeps or removes the directory now; returns the kept path.
    fn finish(mut self) -> Option<PathBuf> {
        let dir = self.dir.take()?;
        crate::signals::forget_on_forced_exit(dir.path());
        if self.keep { Some(dir.keep()) } else { None }
    }
}

impl Drop for RunDirGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            crate::signals::forget_on_forced_exit(dir.path());
            if self.keep {
                let path = dir.keep();
                eprintln!("slocheck: run directory kept at {}", path.display());
            }
        }
    }
}
