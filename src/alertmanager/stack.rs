//! The alerting side of one run: the webhook recorder, the config it
//! implies, and the managed Alertmanager delivering to it. Started before
//! Prometheus, checked discovered by it before load, stopped after it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use super::config::{self, AmConfig, RouteTiming};
use super::error::AmError;
use super::launcher::{self, ManagedAlertmanager};
use super::payload::Notification;
use super::receiver::Recorder;
use crate::plan::AlertmanagerPlan;
use crate::prom::PromClient;

const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// What the recorder saw, and what slocheck knows of the routing config.
#[derive(Debug, Clone)]
pub struct Deliveries {
    pub notifications: Vec<Notification>,
    pub timing: RouteTiming,
    /// Receiver name → whether it sends resolved notifications.
    pub send_resolved: BTreeMap<String, bool>,
    /// True for a user's config: slocheck's catch-all receiver is evidence
    /// only, never the receiver an expectation is met by.
    pub user_config: bool,
    /// Nothing that arrived later is known.
    pub collected_at: SystemTime,
}

/// How to start the stack, from the plan and the command line.
#[derive(Debug, Clone)]
pub struct StackOptions<'a> {
    pub plan: &'a AlertmanagerPlan,
    pub bin: Option<&'a Path>,
    pub live_receivers: bool,
    pub time_scale: f64,
    pub run_dir: &'a Path,
}

/// Reads and rewrites the user's config (if any) without starting anything,
/// so a broken file is reported before the run (exit 2). Returns the
/// config as it would run, with a placeholder recorder address.
pub fn precheck(plan: &AlertmanagerPlan, time_scale: f64) -> Result<AmConfig, AmError> {
    let placeholder = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
    build_config(plan, placeholder, time_scale, false)
}

/// `slocheck check`: the config's validity and what a run would change in it.
pub fn print_check(plan: &AlertmanagerPlan, time_scale: f64) -> Result<(), AmError> {
    let c = precheck(plan, time_scale)?;
    match &plan.config {
        None => println!("\nalertmanager: generated config, every alert to the recorder"),
        Some(p) => {
            println!("\nalertmanager: {} (rewritten for the run)", p.display());
            for line in &c.rewritten {
                println!("  {line}");
            }
        }
    }
    Ok(())
}

fn build_config(
    plan: &AlertmanagerPlan,
    recorder: std::net::SocketAddr,
    time_scale: f64,
    live: bool,
) -> Result<AmConfig, AmError> {
    let Some(path) = &plan.config else {
        return config::generated(recorder);
    };
    let text =
        crate::input::read_to_string(path, crate::input::Pipes::Refused).map_err(|source| {
            AmError::ConfigRead {
                path: path.clone(),
                source,
            }
        })?;
    config::rewrite(&text, path, recorder, time_scale, live)
}

pub struct AlertStack {
    recorder: Recorder,
    alertmanager: Option<ManagedAlertmanager>,
    config: AmConfig,
    user_config: bool,
}

impl AlertStack {
    pub async fn start(
        o: StackOptions<'_>,
        cancel: &CancellationToken,
    ) -> Result<AlertStack, AmError> {
        let bin = launcher::find_binary(o.bin)?;
        let recorder = Recorder::start().await?;
        let config = build_config(o.plan, recorder.addr(), o.time_scale, o.live_receivers)?;
        let am = ManagedAlertmanager::start(&bin, o.run_dir, &config.yaml, cancel).await?;
        Ok(AlertStack {
            recorder,
            alertmanager: Some(am),
            config,
            user_config: o.plan.config.is_some(),
        })
    }

    /// `host:port` for Prometheus's `alerting` section.
    pub fn target(&self) -> Vec<String> {
        self.alertmanager
            .iter()
            .map(ManagedAlertmanager::host_port)
            .collect()
    }

    /// Lines saying what was changed in the user's config.
    pub fn rewritten(&self) -> &[String] {
        &self.config.rewritten
    }

    /// Waits until Prometheus lists this Alertmanager as active: alerts sent
    /// before that are dropped until the next resend a minute later.
    pub async fn wait_discovered(
        &self,
        client: &PromClient,
        cancel: &CancellationToken,
    ) -> Result<(), AmError> {
        let Some(am) = &self.alertmanager else {
            return Ok(());
        };
        let want = am.host_port();
        let started = Instant::now();
        let mut listed = String::from("nothing yet");
        while started.elapsed() < DISCOVERY_TIMEOUT {
            match client.alertmanagers().await {
                Ok(urls) if urls.iter().any(|u| u.contains(&want)) => return Ok(()),
                Ok(urls) if !urls.is_empty() => listed = urls.join(", "),
                Ok(_) => {}
                Err(e) => listed = format!("error: {e}"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return Err(AmError::Cancelled("waiting for prometheus to discover alertmanager")),
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
        Err(AmError::NotDiscovered {
            url: am.url().to_string(),
            waited: DISCOVERY_TIMEOUT,
            listed,
        })
    }

    pub fn check_alive(&mut self) -> Result<(), AmError> {
        match self.alertmanager.as_mut() {
            Some(am) => am.check_alive(),
            None => Ok(()),
        }
    }

    /// The managed Alertmanager's web UI / API.
    pub fn url(&self) -> Option<&reqwest::Url> {
        self.alertmanager.as_ref().map(|a| a.url())
    }

    pub fn pid(&self) -> Option<u32> {
        self.alertmanager.as_ref().map(ManagedAlertmanager::pid)
    }

    pub fn deliveries(&self) -> Deliveries {
        Deliveries {
            notifications: self.recorder.notifications(),
            timing: self.config.timing,
            send_resolved: self.config.send_resolved.clone(),
            user_config: self.user_config,
            collected_at: SystemTime::now(),
        }
    }

    /// Alertmanager first (it posts to the recorder), then the recorder.
    pub async fn stop(mut self) -> Result<(), AmError> {
        let result = match self.alertmanager.take() {
            Some(am) => am.stop().await,
            None => Ok(()),
        };
        self.recorder.shutdown().await;
        result
    }
}
