//! `slocheck demo`: the dashboards under live load without Docker — the
//! built-in target, a managed Prometheus with the scenario's rules
//! (time-scaled), Grafana when `grafana-server` is installed, and the
//! scenario's phases looping until Ctrl-C; everything started is stopped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::Url;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::plan::Plan;
use crate::progress::ProgressMode;
use crate::prom::rules::RuleFile;
use crate::run::{AlertingSetup, Env, PromSetup, PromSource, rules};
use crate::scenario;
use crate::signals::Interrupt;

pub struct DemoOptions {
    pub scenario: PathBuf,
    pub prometheus_bin: Option<PathBuf>,
    /// Dashboards folder with `provisioning/` inside, handed to Grafana.
    pub dashboards: PathBuf,
    pub progress: ProgressMode,
}

/// Runs until interrupted; returns the interruption's exit code (130/143).
pub async fn demo(
    opts: DemoOptions,
    cancel: &CancellationToken,
    interrupt: &Interrupt,
) -> Result<u8, Error> {
    let (plan, files) = {
        let path = opts.scenario.clone();
        crate::signals::blocking(cancel, interrupt, move || read_inputs(&path)).await?
    };
    let mut env = Env::default();
    let mut grafana: Option<Grafana> = None;
    let result = serve(
        &opts,
        &plan,
        files,
        &mut env,
        &mut grafana,
        cancel,
        interrupt,
    )
    .await;
    // Grafana writes into the run directory, which `shutdown` removes.
    if let Some(g) = grafana.take() {
        g.stop().await;
    }
    env.shutdown().await;
    match result {
        Err(Error::Interrupted(code)) => Ok(code),
        other => other,
    }
}

/// The scenario and its rules, refused when they ask for an external
/// Prometheus or a time scale the rules cannot take.
fn read_inputs(path: &Path) -> Result<(Plan, Vec<RuleFile>), Error> {
    let loaded = scenario::load(path)?;
    let files = rules::load_and_check(&loaded)?;
    let plan = loaded.plan;
    if plan.prometheus.url.is_some() {
        return Err(Error::Invalid(format!(
            "{}: prometheus.url is set, but the demo starts its own Prometheus (hint: remove it, or use `slocheck load` against your Prometheus)",
            plan.source.display()
        )));
    }
    rules::check_time_scale(&plan, &files)?;
    Ok((plan, files))
}

/// Brings everything up, prints where to look, and loops the phases until
/// interrupted. What it started stays in `env` / `grafana` for the caller
/// to stop.
async fn serve(
    opts: &DemoOptions,
    plan: &Plan,
    files: Vec<RuleFile>,
    env: &mut Env,
    grafana: &mut Option<Grafana>,
    cancel: &CancellationToken,
    interrupt: &Interrupt,
) -> Result<u8, Error> {
    let target = env.start_target(plan).await?;
    // Alertmanager (with slocheck's recorder) when the scenario asks for it
    // or the binary is installed: the demo then shows alerts delivered.
    let am_plan = plan.alertmanager.clone().unwrap_or_default();
    let alerting = (plan.alertmanager.is_some()
        || crate::alertmanager::launcher::find_binary(None).is_ok())
    .then_some(AlertingSetup {
        plan: &am_plan,
        bin: None,
        live_receivers: false,
    });
    let setup = PromSetup {
        source: PromSource::Managed {
            bin: opts.prometheus_bin.clone(),
        },
        rules: files,
        alerting,
        keep_run_dir: false,
    };
    let up = env
        .start_prometheus(plan, setup, &target, cancel, interrupt)
        .await?;
    let prom = up.client.base_url().clone();
    let mut urls = vec![
        ("target metrics", format!("{target}metrics")),
        ("prometheus", prom.to_string()),
    ];
    if let Some(am) = env.alerting.as_ref().and_then(|a| a.url()) {
        urls.push(("alertmanager", am.to_string()));
    }
    let dir = env.run_dir().unwrap_or_else(std::env::temp_dir);
    *grafana = Grafana::start(&opts.dashboards, &prom, &dir)?;
    if let Some(g) = grafana {
        urls.push(("grafana", g.url.clone()));
    }
    for (what, url) in &urls {
        println!("{what}: {url}");
    }
    println!(
        "slocheck demo: looping \"{}\" ({} per pass); press Ctrl-C to stop",
        plan.name,
        crate::timeutil::human(plan.total_duration())
    );
    crate::loadcmd::passes(plan, &target, opts.progress, true, env, cancel, interrupt).await
}

/// A Grafana server provisioned from the repository's dashboards folder.
struct Grafana {
    child: crate::process::ManagedChild,
    url: String,
}

impl Grafana {
    /// Starts `grafana-server` when it is on PATH; `None` otherwise.
    fn start(dashboards: &Path, prom: &Url, run_dir: &Path) -> Result<Option<Grafana>, Error> {
        let Ok(bin) = which::which("grafana-server") else {
            println!(
                "grafana: grafana-server not on PATH; use deploy/compose.yaml for Grafana, or import dashboards/*.json"
            );
            return Ok(None);
        };
        let dashboards = std::path::absolute(dashboards)
            .map_err(Error::io("resolve the dashboards folder", dashboards))?;
        let data = run_dir.join("grafana");
        std::fs::create_dir_all(&data).map_err(Error::io("create", &data))?;
        let log_path = data.join("grafana.log");
        let log = std::fs::File::create(&log_path).map_err(Error::io("create", &log_path))?;
        let log_err = log.try_clone().map_err(Error::io("open", &log_path))?;
        let port = crate::prom::free_loopback_port()
            .map_err(|e| Error::Environment(format!("cannot find a free port for grafana: {e}")))?;
        let mut cmd = Command::new(&bin);
        // Distribution packages keep Grafana's static files here; without
        // --homepath grafana-server looks for them beside the working directory.
        if let Some(home) = ["/usr/share/grafana", "/usr/local/share/grafana"]
            .iter()
            .find(|p| Path::new(p).join("conf").is_dir())
        {
            cmd.arg(format!("--homepath={home}"));
        }
        cmd.env("GF_PATHS_PROVISIONING", dashboards.join("provisioning"))
            .env("GF_PATHS_DATA", &data)
            .env("GF_PATHS_LOGS", &data)
            .env("GF_SERVER_HTTP_ADDR", "127.0.0.1")
            .env("GF_SERVER_HTTP_PORT", port.to_string())
            .env("GF_AUTH_ANONYMOUS_ENABLED", "true")
            .env("GF_AUTH_ANONYMOUS_ORG_ROLE", "Viewer")
            .env(
                "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH",
                dashboards.join("ml-service.json"),
            )
            .env("PROMETHEUS_URL", prom.as_str().trim_end_matches('/'))
            .env("SLOCHECK_DASHBOARDS", &dashboards)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        // Own process group and parent-death signal, like Prometheus.
        let child = crate::process::ManagedChild::spawn(cmd).map_err(Error::io("start", &bin))?;
        Ok(Some(Grafana {
            child,
            url: format!("http://127.0.0.1:{port}/ (log: {})", log_path.display()),
        }))
    }

    /// SIGTERM, up to 5 s, then SIGKILL; always reaped.
    async fn stop(self) {
        let _ = self.child.stop(Duration::from_secs(5)).await;
    }
}
