//! Command-line types and dispatch. Parsing only: each command's work lives
//! in its own module.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use reqwest::Url;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::progress::ProgressMode;
use crate::{demo, doctor, exit, loadcmd, run, signals, target};

#[derive(Debug, Parser)]
#[command(
    name = "slocheck",
    version,
    about = "Drive phased traffic with injected faults at a service and prove on a real Prometheus that its SLOs and alerts behave",
    long_about = "slocheck starts (or uses) an instrumented service, drives phased traffic at it \
(baseline → injected latency / 5xx faults → recovery), lets a real Prometheus scrape it and evaluate \
the real recording and alerting rules, then checks P90 latency, the 5xx ratio and the alert lifecycle \
against the scenario's expectations.",
    after_help = "Exit codes: 0 all expectations passed, 1 an expectation failed or was inconclusive, \
2 invalid scenario/rules/arguments, 3 environment failure (Prometheus, target, ports), \
130 interrupted (143 on SIGTERM)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario end to end and verify its expectations (the CI gate).
    Run(RunArgs),
    /// Drive a scenario's traffic only, no verification (e.g. for a Grafana demo).
    Load(LoadArgs),
    /// Validate a scenario and its rules and print the plan, without sending traffic.
    Check(CheckArgs),
    /// Re-render a saved report.json (terminal summary by default).
    Report(crate::report::cmd::ReportArgs),
    /// Serve the built-in instrumented ML service.
    Target(target::TargetArgs),
    /// Diagnose an empty dashboard: Prometheus, scrape targets, /metrics, rules, every panel query.
    Doctor(DoctorArgs),
    /// Live dashboards without Docker: built-in target, managed Prometheus (and Grafana if installed), looping load.
    Demo(DemoArgs),
    /// The model-quality batch job: score a window of predictions with their labels and push to a Pushgateway.
    Evaluate(crate::evaluate::EvaluateArgs),
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The Prometheus to diagnose.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:9090/")]
    pub prometheus_url: Url,
    /// Base URL of the service whose /metrics to check (e.g. http://127.0.0.1:8000).
    #[arg(long, value_name = "URL")]
    pub target_url: Option<Url>,
    /// Folder of Grafana dashboard JSON whose panel queries to run (default: ./dashboards if present).
    #[arg(long, value_name = "DIR")]
    pub dashboards: Option<PathBuf>,
    /// Only this scrape job; also the value of $job in panel queries (default: every job).
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    /// What $__rate_interval, $__interval and $__range stand for in panel queries.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = humantime::parse_duration)]
    pub rate_interval: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The scenario whose phases loop.
    #[arg(default_value = "scenarios/demo.toml")]
    pub scenario: PathBuf,
    /// The Prometheus binary (default: `prometheus` on PATH).
    #[arg(long, value_name = "PATH", env = "SLOCHECK_PROMETHEUS_BIN")]
    pub prometheus_bin: Option<PathBuf>,
    /// Dashboards folder (with provisioning/) handed to Grafana.
    #[arg(long, value_name = "DIR", default_value = "dashboards")]
    pub dashboards: PathBuf,
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct TrafficArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Send traffic to this service instead of the built-in one.
    #[arg(long, value_name = "URL")]
    pub target_url: Option<Url>,
    /// Seed of the fault plan (overrides the scenario's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub traffic: TrafficArgs,
    /// Use this Prometheus instead of starting one (it must already scrape the target and load the rules).
    #[arg(long, value_name = "URL")]
    pub prometheus_url: Option<Url>,
    /// The Prometheus binary for managed mode (default: `prometheus` on PATH).
    #[arg(long, value_name = "PATH", env = "SLOCHECK_PROMETHEUS_BIN")]
    pub prometheus_bin: Option<PathBuf>,
    /// Start a managed Alertmanager and webhook recorder even when no `notified` expectation asks for one.
    #[arg(long)]
    pub alertmanager: bool,
    /// The Alertmanager binary (default: `alertmanager` or `prometheus-alertmanager` on PATH).
    #[arg(long, value_name = "PATH", env = "SLOCHECK_ALERTMANAGER_BIN")]
    pub alertmanager_bin: Option<PathBuf>,
    /// Keep the real receivers (Slack, Teams, e-mail…) of `[alertmanager] config`; the recorder is added beside them.
    #[arg(long)]
    pub live_receivers: bool,
    /// Keep the run directory (Prometheus config, scaled rules, log, TSDB).
    #[arg(long)]
    pub keep_run_dir: bool,
    /// Write the machine-readable result to this file.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Per-request timeout of Prometheus API calls (each retried with backoff).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub prometheus_timeout: std::time::Duration,
    /// Write report.json, junit.xml, summary.md and report.html into this folder
    /// (also on failure; the summary is appended to $GITHUB_STEP_SUMMARY when set).
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub traffic: TrafficArgs,
    /// Repeat the phase list until interrupted.
    #[arg(long = "loop")]
    pub repeat: bool,
    /// Sent as `Authorization: Bearer` so a remote target honours the fault header.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SLOCHECK_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
}

fn progress_mode(quiet: bool) -> ProgressMode {
    if quiet {
        ProgressMode::Quiet
    } else if std::io::stderr().is_terminal() {
        ProgressMode::Tty
    } else {
        ProgressMode::Plain
    }
}

/// Parses arguments, runs the command, and returns the documented exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::INVALID
            } else {
                exit::PASS
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("slocheck: error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ENVIRONMENT);
        }
    };
    let code = rt.block_on(dispatch(cli.command));
    // Blocking tasks (child reaping, file IO) must not hold the exit hostage.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    ExitCode::from(code)
}

async fn dispatch(cmd: Command) -> u8 {
    let cancel = CancellationToken::new();
    let interrupt = match signals::install(cancel.clone()) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("slocheck: error: cannot install signal handlers: {e}");
            return exit::ENVIRONMENT;
        }
    };
    let result: Result<u8, Error> = match cmd {
        Command::Run(a) => {
            let opts = run::RunOptions {
                scenario: a.traffic.scenario,
                prometheus_url: a.prometheus_url,
                prometheus_bin: a.prometheus_bin,
                target_url: a.traffic.target_url,
                seed: a.traffic.seed,
                keep_run_dir: a.keep_run_dir,
                json: a.json,
                report_dir: a.report_dir,
                progress: progress_mode(a.traffic.quiet),
                prometheus_timeout: Some(a.prometheus_timeout),
                alertmanager: a.alertmanager,
                alertmanager_bin: a.alertmanager_bin,
                live_receivers: a.live_receivers,
            };
            return run::run(opts, cancel, interrupt).await;
        }
        Command::Load(a) => {
            let opts = loadcmd::LoadOptions {
                scenario: a.traffic.scenario,
                target_url: a.traffic.target_url,
                seed: a.traffic.seed,
                repeat: a.repeat,
                admin_token: a.admin_token,
                progress: progress_mode(a.traffic.quiet),
            };
            loadcmd::load(opts, &cancel, &interrupt).await
        }
        Command::Doctor(a) => {
            let opts = doctor::DoctorOptions {
                prometheus_url: a.prometheus_url,
                target_url: a.target_url,
                dashboards: a.dashboards,
                job: a.job,
                rate_interval: a.rate_interval,
            };
            doctor::doctor(&opts).await
        }
        Command::Demo(a) => {
            let opts = demo::DemoOptions {
                scenario: a.scenario,
                prometheus_bin: a.prometheus_bin,
                dashboards: a.dashboards,
                progress: progress_mode(a.quiet),
            };
            demo::demo(opts, &cancel, &interrupt).await
        }
        Command::Report(a) => crate::report::cmd::run(&a),
        Command::Evaluate(a) => crate::evaluate::run(&a).await,
        Command::Check(a) => {
            signals::blocking(&cancel, &interrupt, move || loadcmd::check(&a.scenario))
                .await
                .map(|()| exit::PASS)
        }
        Command::Target(a) => target::serve_until_signal(a.into())
            .await
            .map(|()| exit::PASS)
            .map_err(Error::from),
    };
    match result {
        Ok(code) => code,
        Err(Error::Interrupted(code)) => code,
        Err(e) => {
            eprintln!("slocheck: error: {}", e.full());
            e.exit_code()
        }
    }
}
