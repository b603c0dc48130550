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
    /// Read a service's /metrics, recognize its metric convention, write a starter scenario and rules.
    Init(InitArgs),
    /// Print the seed's recording and alerting rules rewritten for a metric convention.
    Rules(RulesArgs),
    /// Kubernetes objects generated from the project's files (e.g. a PrometheusRule from rules/*.yml).
    #[command(subcommand)]
    K8s(crate::k8s::cmd::K8sCommand),
    /// SLOs: generate multi-window, multi-burn-rate alert rules (and their promtool tests).
    Slo(crate::slo::cmd::SloArgs),
    /// The model-quality batch job: score a window of predictions with their labels and push to a Pushgateway.
    Evaluate(crate::evaluate::EvaluateArgs),
    /// Coordinate a sharded run: start N `load --shard` processes together, merge their records, verify and report.
    Coordinate(CoordinateArgs),
}

#[derive(Debug, Args)]
pub struct CoordinateArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Address the shards register at and report to (token from $SLOCHECK_COORDINATOR_TOKEN; required unless loopback).
    #[arg(long, value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Base URL of the running service (its /metrics is read).
    #[arg(long, value_name = "URL")]
    pub target_url: Url,
    /// Use this metric convention instead of recognizing it.
    #[arg(long, value_name = "NAME", value_parser = crate::metrics::preset::parse_name)]
    pub preset: Option<String>,
    /// Path (and query) every request is sent to.
    #[arg(long, value_name = "PATH", default_value = "/")]
    pub path: String,
    /// HTTP method of every request.
    #[arg(long, value_name = "METHOD", default_value = "GET")]
    pub method: http::Method,
    /// Requests per second in every phase.
    #[arg(long, value_name = "RPS", default_value_t = 20.0)]
    pub rate: f64,
    /// Folder to write scenario.toml and rules.yml into.
    #[arg(long, value_name = "DIR", default_value = "slocheck")]
    pub dir: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    /// The metric convention (e.g. fastapi-instrumentator, opentelemetry, triton).
    #[arg(long, value_name = "NAME", value_parser = crate::metrics::preset::parse_name)]
    pub preset: String,
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
    /// Check /metrics against this metric convention (default: recognize it and say which preset fits).
    #[arg(long, value_name = "NAME", value_parser = crate::metrics::preset::parse_name)]
    pub preset: Option<String>,
    /// CA bundle (PEM) to verify an https --target-url with, instead of the system roots.
    #[arg(long, value_name = "PEM", conflicts_with = "target_insecure")]
    pub target_ca_file: Option<PathBuf>,
    /// Do not verify the certificate of an https --target-url.
    #[arg(long)]
    pub target_insecure: bool,
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
    /// Serve the generator's own metrics (sent, dropped, faults, scheduler lag, client latency) at http://ADDR/metrics; a managed Prometheus scrapes them as job "slocheck-generator".
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
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
    /// More scenario files or folders (of *.toml): run them all as one suite
    /// with one exit code, JUnit file, summary and rule coverage.
    #[arg(value_name = "MORE")]
    pub more: Vec<PathBuf>,
    /// Write a `promtool test rules` replay of the run (rule files + test) into this folder.
    #[arg(long, value_name = "DIR")]
    pub export_promtool: Option<PathBuf>,
    /// Suites: run up to N scenarios at once (those that bind no fixed address).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Fail (exit 1) when an alerting rule never reached this state in any scenario.
    #[arg(long, value_name = "STATE")]
    pub require_coverage: Option<crate::coverage::Level>,
    /// Send the load from N `slocheck load --shard I/N` processes started together by a coordinator (`coordinate`: how many shards to wait for).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024), conflicts_with = "metrics_listen")]
    pub shards: Option<u64>,
    /// With --shards: how long to wait for every shard to register.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub register_timeout: std::time::Duration,
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
    /// Send only shard I of N of the schedule (requests n ≡ I mod N); `/N` takes I from $JOB_COMPLETION_INDEX.
    #[arg(long, value_name = "I/N", value_parser = crate::load::slice::parse_shard, conflicts_with_all = ["repeat", "metrics_listen"])]
    pub shard: Option<crate::load::slice::ShardArg>,
    /// The `slocheck coordinate` to register with and report to (token from $SLOCHECK_COORDINATOR_TOKEN).
    #[arg(long, value_name = "URL", requires = "shard")]
    pub coordinator: Option<Url>,
    /// How long the coordinator may stay unreachable before the shard gives up (exit 3).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration, requires = "coordinator")]
    pub coordinator_timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
}

/// `run`'s options from its arguments; `listen` makes a `--shards` run a
/// `coordinate` for shards elsewhere.
fn run_options(a: &RunArgs, listen: Option<std::net::SocketAddr>) -> run::RunOptions {
    run::RunOptions {
        scenario: a.traffic.scenario.clone(),
        prometheus_url: a.prometheus_url.clone(),
        prometheus_bin: a.prometheus_bin.clone(),
        target_url: a.traffic.target_url.clone(),
        seed: a.traffic.seed,
        keep_run_dir: a.keep_run_dir,
        json: a.json.clone(),
        report_dir: a.report_dir.clone(),
        progress: progress_mode(a.traffic.quiet),
        prometheus_timeout: Some(a.prometheus_timeout),
        alertmanager: a.alertmanager,
        alertmanager_bin: a.alertmanager_bin.clone(),
        live_receivers: a.live_receivers,
        export_promtool: a.export_promtool.clone(),
        metrics_listen: a.traffic.metrics_listen,
        shards: a.shards.map(|count| crate::shard::ShardsOptions {
            count,
            listen,
            register_timeout: a.register_timeout,
            token: coordinator_token(),
        }),
    }
}

/// `$SLOCHECK_COORDINATOR_TOKEN` (a Secret on Kubernetes), if set and non-empty.
fn coordinator_token() -> Option<String> {
    std::env::var(crate::shard::wire::TOKEN_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty())
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
            let opts = run_options(&a, None);
            let suite = !a.more.is_empty()
                || opts.scenario.is_dir()
                || a.jobs > 1
                || a.require_coverage.is_some();
            if suite && opts.shards.is_some() {
                eprintln!(
                    "slocheck: error: --shards runs one scenario (hint: drop the extra scenarios, --jobs and --require-coverage)"
                );
                return exit::INVALID;
            }
            if !suite {
                return run::run(opts, cancel, interrupt).await;
            }
            let mut paths = vec![opts.scenario.clone()];
            paths.extend(a.more);
            match crate::suite::expand(&paths) {
                Ok(scenarios) => {
                    let s = crate::suite::SuiteOptions {
                        base: opts,
                        scenarios,
                        jobs: a.jobs.into(),
                        require_coverage: a.require_coverage,
                    };
                    return crate::suite::run(s, cancel, interrupt).await;
                }
                Err(e) => Err(e),
            }
        }
        Command::Coordinate(c) => {
            let a = c.run;
            if a.shards.is_none() {
                eprintln!(
                    "slocheck: error: coordinate needs --shards N (the number of load shards to wait for)"
                );
                return exit::INVALID;
            }
            if !a.more.is_empty() || a.jobs > 1 || a.require_coverage.is_some() {
                eprintln!(
                    "slocheck: error: coordinate runs one scenario (hint: drop the extra scenarios, --jobs and --require-coverage)"
                );
                return exit::INVALID;
            }
            let opts = run_options(&a, Some(c.listen));
            return run::run(opts, cancel, interrupt).await;
        }
        Command::Load(a) if a.shard.is_some() => {
            let shard = crate::shard::client::ShardOptions {
                shard: a.shard.unwrap_or(crate::load::slice::ShardArg {
                    index: None,
                    count: 1,
                }),
                coordinator: a.coordinator,
                token: coordinator_token(),
                coordinator_timeout: a.coordinator_timeout,
            };
            let opts = loadcmd::LoadOptions {
                scenario: a.traffic.scenario,
                target_url: a.traffic.target_url,
                seed: a.traffic.seed,
                repeat: false,
                admin_token: a.admin_token,
                progress: progress_mode(a.traffic.quiet),
                metrics_listen: a.traffic.metrics_listen,
            };
            crate::shard::client::load(opts, shard, &cancel, &interrupt).await
        }
        Command::Load(a) => {
            let opts = loadcmd::LoadOptions {
                scenario: a.traffic.scenario,
                target_url: a.traffic.target_url,
                seed: a.traffic.seed,
                repeat: a.repeat,
                admin_token: a.admin_token,
                progress: progress_mode(a.traffic.quiet),
                metrics_listen: a.traffic.metrics_listen,
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
                preset: a
                    .preset
                    .as_deref()
                    .and_then(crate::metrics::preset)
                    .map(|p| p.spec()),
                target_tls: crate::plan::TlsPlan {
                    ca_file: a.target_ca_file,
                    insecure: a.target_insecure,
                    ..Default::default()
                },
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
        Command::Init(a) => {
            let opts = crate::init::InitOptions {
                target_url: a.target_url,
                preset: a.preset,
                method: a.method,
                path: a.path,
                rate: a.rate,
                dir: a.dir,
                force: a.force,
            };
            crate::init::init(&opts).await
        }
        Command::Rules(a) => crate::init::rules(&a.preset),
        Command::K8s(c) => crate::k8s::cmd::run(c),
        Command::Slo(a) => crate::slo::cmd::run(&a),
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
