//! The live parts of a run: the target (built-in or external) and Prometheus
//! (managed or external). Started in order, checked before any load, and
//! always stopped in reverse order.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;
use tokio_util::sync::CancellationToken;

use crate::alertmanager::{AlertStack, StackOptions};
use crate::error::Error;
use crate::plan::{Plan, TargetPlan};
use crate::prom::PromClient;
use crate::prom::launcher::{self, LaunchConfig, ManagedPrometheus};
use crate::pushgateway::{self, ManagedPushgateway};
use crate::target::{TargetConfig, TargetHandle};

/// How long to wait for Prometheus's first successful scrape of the target.
const FIRST_SCRAPE_TIMEOUT: Duration = Duration::from_secs(30);
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Scrape job of the Pushgateway; with `honor_labels` the pushed series
/// keep the batch job's own `job` label.
pub const PUSHGATEWAY_JOB: &str = "pushgateway";

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
    /// With `[model]`: the managed Pushgateway (None for the user's own).
    pub pushgateway: Option<ManagedPushgateway>,
    /// With `[model]`: where the batch job pushes.
    pub pushgateway_url: Option<Url>,
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
                };
                let handle = TargetHandle::start(cfg).await?;
                let url = handle.base_url();
                self.target = Some(handle);
                url
            }
            TargetPlan::External { url } => {
                check_reachable(url).await?;
                url.clone()
            }
        };
        self.target_url = Some(url.clone());
        Ok(url)
    }

    /// With `[model]`: starts a Pushgateway (or checks the given one) before
    /// Prometheus, which then scrapes it.
    pub async fn start_pushgateway(
        &mut self,
        plan: &Plan,
        run_dir: &std::path::Path,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let Some(model) = &plan.model else {
            return Ok(());
        };
        let url = match &model.pushgateway_url {
            Some(url) => {
                pushgateway::check_reachable(url).await?;
                url.clone()
            }
            None => {
                let bin = pushgateway::find_binary(None)?;
                let pg = ManagedPushgateway::start(&bin, run_dir, cancel).await?;
                eprintln!("slocheck: pushgateway {} ready at {}", pg.pid(), pg.url());
                let url = pg.url().clone();
                self.pushgateway = Some(pg);
                url
            }
        };
        self.pushgateway_url = Some(url);
        Ok(())
    }

    /// Starts the webhook recorder and Alertmanager; `start_managed` then
    /// points Prometheus at it.
    pub async fn start_alerting(
        &mut self,
        opts: StackOptions<'_>,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        self.alerting = Some(AlertStack::start(opts, cancel).await?);
        Ok(())
    }

    /// Starts a managed Prometheus scraping `target`, waits until it is ready
    /// and has scraped the target once.
    pub async fn start_managed(
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
        };
        let extra = self
            .pushgateway_url
            .as_ref()
            .map(|u| {
                let host = u.host_str().unwrap_or("127.0.0.1");
                let port = u.port_or_known_default().unwrap_or(80);
                crate::prom::config::ScrapeConfig::pushgateway(
                    PUSHGATEWAY_JOB,
                    &format!("{host}:{port}"),
                )
            })
            .into_iter()
            .collect();
        let prom = ManagedPrometheus::start_with(cfg, extra, cancel).await?;
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

    /// Checks an external Prometheus: API answers, target up, rules loaded.
    pub async fn use_external(
        &mut self,
        url: &Url,
        plan: &Plan,
        required_rules: &[String],
    ) -> Result<PromClient, Error> {
        let client = PromClient::new(url.clone(), self.timeout())?;
        crate::prom::preflight(&client, &plan.prometheus.job, required_rules).await?;
        self.prometheus_version = client.build_version().await.ok();
        self.client = Some(client.clone());
        Ok(client)
    }

    fn timeout(&self) -> Duration {
        self.query_timeout.unwrap_or(QUERY_TIMEOUT)
    }

    /// Errors when the managed Prometheus has exited.
    pub fn check_alive(&mut self) -> Result<(), Error> {
        if let Some(a) = self.alerting.as_mut() {
            a.check_alive()?;
        }
        if let Some(p) = self.pushgateway.as_mut() {
            p.check_alive()?;
        }
        match self.prometheus.as_mut() {
            Some(p) => Ok(p.check_alive()?),
            None => Ok(()),
        }
    }

    /// Stops everything that was started, Prometheus first (it scrapes the
    /// target and sends to Alertmanager), then Alertmanager, and reaps them.
    pub async fn shutdown(&mut self) {
        if let Some(p) = self.prometheus.take()
            && let Err(e) = p.stop().await
        {
            eprintln!("slocheck: warning: {e}");
        }
        if let Some(a) = self.alerting.take()
            && let Err(e) = a.stop().await
        {
            eprintln!("slocheck: warning: {e}");
        }
        if let Some(p) = self.pushgateway.take()
            && let Err(e) = p.stop().await
        {
            eprintln!("slocheck: warning: {e}");
        }
        if let Some(t) = self.target.take() {
            t.shutdown().await;
        }
    }
}

/// Any HTTP answer proves the target is there; only a transport failure is
/// "unreachable".
async fn check_reachable(url: &Url) -> Result<(), Error> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| Error::Environment(format!("cannot build an HTTP client: {e}")))?;
    match client.get(url.clone()).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            // reqwest's own text ("client error (Connect)") hides the cause;
            // the innermost source says what happened.
            let mut cause: &dyn std::error::Error = &e;
            while let Some(inner) = cause.source() {
                cause = inner;
            }
            Err(Error::Environment(format!(
                "target {url} is unreachable: {cause} (hint: start the service, or omit target.url to use the built-in one)"
            )))
        }
    }
}
