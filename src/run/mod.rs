//! `slocheck run`: target up → Prometheus up → phases → settle → verify →
//! report → exit code. Every exit path stops what was started and, once the
//! scenario has loaded, writes the requested report.

mod env;
pub mod rules;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::Url;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::exit;
use crate::load::{self, LiveStats};
use crate::plan::{Plan, TargetPlan};
use crate::progress::{self, ProgressMode};
use crate::prom::rules::RuleFile;
use crate::record::RunRecord;
use crate::report::{self, Report, RunStatus};
use crate::scenario;
use crate::signals::Interrupt;
use crate::verify::{self, outcome::Outcome};
pub use env::{AlertingSetup, Env, PromSetup, PromSource, PromUp};

/// Command-line options of `slocheck run`, already resolved.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub scenario: PathBuf,
    pub prometheus_url: Option<Url>,
    pub prometheus_bin: Option<PathBuf>,
    pub target_url: Option<Url>,
    pub seed: Option<u64>,
    pub keep_run_dir: bool,
    pub json: Option<PathBuf>,
    /// Folder for report.json, junit.xml, summary.md and report.html.
    pub report_dir: Option<PathBuf>,
    pub progress: ProgressMode,
    pub prometheus_timeout: Option<Duration>,
    /// Start Alertmanager even when no expectation needs it.
    pub alertmanager: bool,
    pub alertmanager_bin: Option<PathBuf>,
    /// Keep the user's real receivers (Slack, Teams…) beside the recorder.
    pub live_receivers: bool,
    /// Write a `promtool test rules` replay of the run into this folder.
    pub export_promtool: Option<PathBuf>,
    /// Serve the generator's own metrics here (`--metrics-listen`).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `--shards N` / `coordinate`: the load comes from N shard processes.
    pub shards: Option<crate::shard::ShardsOptions>,
}

/// What a run produced, whatever happened: filled in as it goes so a failed
/// or interrupted run still reports what it has.
#[derive(Default)]
pub struct Session {
    pub plan: Option<Plan>,
    pub record: Option<RunRecord>,
    pub outcome: Option<Outcome>,
    pub scaled: Vec<crate::prom::timescale::ScaledFile>,
    pub prometheus_url: Option<Url>,
    pub prometheus_version: Option<String>,
    /// Prometheus's series for the HTML charts, asked after verification.
    pub charts: Option<report::ChartSeries>,
    /// What every loaded rule did during the run.
    pub coverage: Option<crate::coverage::RunCoverage>,
}

impl Session {
    /// What the run produced so far, as the plain data a report reads.
    fn data(&self) -> report::RunData<'_> {
        report::RunData {
            record: self.record.as_ref(),
            outcome: self.outcome.as_ref(),
            scaled: &self.scaled,
            prometheus_url: self.prometheus_url.as_ref().map(Url::as_str),
            prometheus_version: self.prometheus_version.as_deref(),
            charts: self.charts.as_ref(),
            coverage: self.coverage.as_ref(),
        }
    }
}

/// Applies command-line overrides to a loaded scenario.
pub fn apply_overrides(
    plan: &mut Plan,
    target_url: Option<&Url>,
    prometheus_url: Option<&Url>,
    seed: Option<u64>,
) {
    if let Some(u) = target_url {
        plan.target = TargetPlan::External { url: u.clone() };
    }
    if let Some(u) = prometheus_url {
        plan.prometheus.url = Some(u.clone());
    }
    if let Some(s) = seed {
        plan.seed = s;
    }
}

/// Sends the fault protocol's shared token (`$SLOCHECK_FAULT_TOKEN`) with
/// every request, so a service on another host honours the faults without
/// the secret being written into the scenario (docs/fault-protocol.md).
pub fn add_fault_token(plan: &mut Plan, token: Option<&str>) -> Result<(), Error> {
    use crate::fault_protocol::{TOKEN_ENV, TOKEN_HEADER, token_header};
    let Some(token) = token.filter(|t| !t.trim().is_empty()) else {
        return Ok(());
    };
    let header = token_header(token).ok_or_else(|| {
        Error::Invalid(format!(
            "{TOKEN_ENV} is not a valid header value (hint: use printable ASCII)"
        ))
    })?;
    plan.request.headers.retain(|(n, _)| n != TOKEN_HEADER);
    plan.request.headers.push(header);
    Ok(())
}

/// Runs the scenario and returns the exit code. Errors are printed here.
pub async fn run(opts: RunOptions, cancel: CancellationToken, interrupt: Interrupt) -> u8 {
    run_reported(opts, cancel, interrupt).await.0
}

/// [`run`], also handing back the report (None when the scenario did not
/// load) for a suite to collect.
pub async fn run_reported(
    opts: RunOptions,
    cancel: CancellationToken,
    interrupt: Interrupt,
) -> (u8, Option<Report>) {
    let mut session = Session::default();
    let mut env = Env {
        query_timeout: opts.prometheus_timeout,
        ..Env::default()
    };
    let result = match execute(&opts, &mut session, &mut env, &cancel, &interrupt).await {
        // Whatever a stage reported while being cancelled (e.g. "cancelled
        // while waiting for the first scrape"), the run was interrupted.
        Err(e) if interrupt.signal().is_some() && !matches!(e, Error::Interrupted(_)) => {
            Err(Error::Interrupted(interrupt.exit_code()))
        }
        r => r,
    };
    let kept_dir = env.shutdown().await;
    session.prometheus_version = env.prometheus_version.take();
    session.scaled = std::mem::take(&mut env.scaled);

    let (status, code) = match &result {
        Ok(()) if session.outcome.as_ref().is_some_and(Outcome::passed) => {
            (RunStatus::Passed, exit::PASS)
        }
        Ok(()) => (RunStatus::Failed, exit::FAIL),
        Err(Error::Interrupted(c)) => (RunStatus::Aborted, *c),
        Err(e) => (RunStatus::Error, e.exit_code()),
    };
    let report = write_reports(&opts, &session, status, code, result.as_ref().err());
    if let Err(e) = &result
        && !matches!(e, Error::Interrupted(_))
    {
        eprintln!("slocheck: error: {}", e.full());
    }
    if let Some(dir) = &kept_dir {
        eprintln!("slocheck: run directory kept at {}", dir.display());
    }
    (code, report)
}

/// The terminal summary (once load ran), `--json` and `--report-dir`, for
/// whatever the session holds. Report files never change the exit code.
fn write_reports(
    opts: &RunOptions,
    session: &Session,
    status: RunStatus,
    code: u8,
    error: Option<&Error>,
) -> Option<Report> {
    let plan = session.plan.as_ref()?;
    let rep = Report::new(plan, &session.data(), status, code, error.map(Error::full));
    if session.record.is_some() {
        let mut out = std::io::stdout().lock();
        // A closed stdout (e.g. `| head`) must not change the verdict.
        let _ = report::terminal::write(&rep, &mut out, report::terminal::use_color());
    }
    if let Some(path) = &opts.json
        && let Err(e) = report::json::write_file(&rep, path)
    {
        eprintln!("slocheck: error: {}", crate::error::chain(&e));
    }
    if let Some(dir) = &opts.report_dir
        && let Err(e) = report::dir::write(&rep, dir)
    {
        eprintln!("slocheck: error: {}", crate::error::chain(&e));
    }
    Some(rep)
}

async fn execute(
    opts: &RunOptions,
    session: &mut Session,
    env: &mut Env,
    cancel: &CancellationToken,
    interrupt: &Interrupt,
) -> Result<(), Error> {
    let (plan, rule_files) = {
        let opts = opts.clone();
        crate::signals::blocking(cancel, interrupt, move || read_inputs(&opts)).await?
    };
    session.plan = Some(plan.clone());
    let coordinated = opts.shards.as_ref().is_some_and(|s| s.listen.is_some());
    check_inputs(&plan, &rule_files, coordinated)?;
    // Up before anything else: probes find `/healthz`, shards may register.
    let sharded = match &opts.shards {
        Some(s) => Some(crate::shard::Sharded::start(s, &plan).await?),
        None => None,
    };
    let result = execute_load(
        opts,
        session,
        env,
        (&plan, rule_files),
        sharded.as_ref(),
        cancel,
        interrupt,
    )
    .await;
    if let Some(s) = sharded {
        s.shutdown().await;
    }
    result
}

/// `execute` from the target on, with the coordinator of a sharded run.
async fn execute_load(
    opts: &RunOptions,
    session: &mut Session,
    env: &mut Env,
    (plan, rule_files): (&Plan, Vec<RuleFile>),
    sharded: Option<&crate::shard::Sharded>,
    cancel: &CancellationToken,
    interrupt: &Interrupt,
) -> Result<(), Error> {
    let plan = plan.clone();

    let target_url = env.start_target(&plan).await?;
    let loaded_rules = rule_files.clone();
    if let Some(addr) = opts.metrics_listen {
        env.start_generator_metrics(addr).await?;
    }
    let setup = prom_setup(opts, &plan, rule_files);
    let prom = env
        .start_prometheus(&plan, setup, &target_url, cancel, interrupt)
        .await?;
    session.prometheus_url = Some(prom.client.base_url().clone());

    let interrupted = || Error::Interrupted(interrupt.exit_code());
    eprintln!(
        "slocheck: load started: {} phases, {}",
        plan.phases.len(),
        crate::timeutil::human(plan.total_duration())
    );
    // The batch job keeps its schedule through the settle period, so the
    // last phase is evaluated too; it stops before verification, and any
    // early return stops it (and its running job) through the guard.
    let cron_stop = cancel.child_token();
    let _cron_guard = cron_stop.clone().drop_guard();
    let cron = start_evaluation(&plan, env, &target_url, &cron_stop)?;
    let (record, died) = match sharded {
        None => load_pass(&plan, &target_url, opts.progress, env, cancel).await,
        Some(s) => {
            let record = s.load(&plan, &target_url, cancel).await;
            (record, env.check_alive().err())
        }
    };
    let record = record?;
    session.record = Some(record.clone());
    if let Some(e) = died {
        return Err(e);
    }
    if cancel.is_cancelled() {
        return Err(interrupted());
    }

    // Let the last phase's samples be scraped and its rules evaluated.
    eprintln!(
        "slocheck: load done; settling {} before verification",
        crate::timeutil::human(plan.prometheus.settle)
    );
    tokio::select! {
        _ = tokio::time::sleep(plan.prometheus.settle) => {}
        _ = cancel.cancelled() => return Err(interrupted()),
    }
    cron_stop.cancel();
    if let Some(cron) = cron
        && let Ok(stats) = cron.await
    {
        eprintln!(
            "slocheck: evaluation batch job ran {} times ({} failed, {} skipped)",
            stats.runs, stats.failures, stats.skipped
        );
        if let Some(e) = &stats.last_error {
            eprintln!("slocheck: warning: last evaluation failure: {e}");
        }
    }
    env.check_alive()?;
    let observed = VerifyInputs {
        plan: &plan,
        record: &record,
        prom: &prom,
        env,
        charts: opts.report_dir.is_some(),
        loaded: &loaded_rules,
        export: opts.export_promtool.as_deref(),
        sharded,
    };
    tokio::select! {
        r = verify_and_chart(observed, session) => r,
        _ = cancel.cancelled() => Err(interrupted()),
    }
}

/// The Prometheus side of a run as the scenario and command line ask.
fn prom_setup<'a>(opts: &'a RunOptions, plan: &'a Plan, rules: Vec<RuleFile>) -> PromSetup<'a> {
    let source = match &plan.prometheus.url {
        Some(url) => PromSource::External { url: url.clone() },
        None => PromSource::Managed {
            bin: opts.prometheus_bin.clone(),
        },
    };
    PromSetup {
        source,
        rules,
        alerting: plan.alertmanager.as_ref().map(|am| AlertingSetup {
            plan: am,
            bin: opts.alertmanager_bin.as_deref(),
            live_receivers: opts.live_receivers,
        }),
        keep_run_dir: opts.keep_run_dir,
    }
}

/// Reads the scenario and its rule files (on a blocking thread: either may
/// be a slow or never-ending file) and applies the command line to them.
fn read_inputs(opts: &RunOptions) -> Result<(Plan, Vec<RuleFile>), Error> {
    let mut loaded = scenario::load(&opts.scenario)?;
    apply_overrides(
        &mut loaded.plan,
        opts.target_url.as_ref(),
        opts.prometheus_url.as_ref(),
        opts.seed,
    );
    let token = std::env::var(crate::fault_protocol::TOKEN_ENV).ok();
    add_fault_token(&mut loaded.plan, token.as_deref())?;
    if opts.alertmanager && loaded.plan.alertmanager.is_none() {
        loaded.plan.alertmanager = Some(crate::plan::AlertmanagerPlan::default());
    }
    let rule_files = rules::load_and_check(&loaded)?;
    Ok((loaded.plan, rule_files))
}

/// What can be refused before anything starts (exit 2): combinations of
/// scenario and command line, the time scale against the rules, and the
/// Alertmanager config.
/// `coordinated`: `coordinate`, whose own webhook recorder receives what
/// the cluster's Alertmanager sends, so delivery checks work with an
/// external Prometheus.
fn check_inputs(plan: &Plan, rule_files: &[RuleFile], coordinated: bool) -> Result<(), Error> {
    if let Some(url) = &plan.prometheus.url {
        env::check_prometheus_url(url)?;
        if plan.prometheus.time_scale != 1.0 {
            return Err(Error::Invalid(format!(
                "{}: time_scale = {} needs a managed Prometheus; an external one evaluates its own rules unscaled (hint: remove prometheus.url / --prometheus-url, or set time_scale = 1)",
                plan.source.display(),
                plan.prometheus.time_scale
            )));
        }
        if plan.alertmanager.is_some() && !coordinated {
            return Err(Error::Invalid(format!(
                "{}: delivery checks need a managed Prometheus that sends to slocheck's Alertmanager; an external one sends where its own config says (hint: remove prometheus.url / --prometheus-url, or the notified expectations and [alertmanager])",
                plan.source.display()
            )));
        }
        if plan
            .model
            .as_ref()
            .is_some_and(|m| m.pushgateway_url.is_none())
        {
            return Err(Error::Invalid(format!(
                "{}: an external Prometheus cannot scrape the Pushgateway slocheck would start (hint: set [model] pushgateway_url to the Pushgateway your Prometheus scrapes with honor_labels: true)",
                plan.source.display()
            )));
        }
    }
    rules::check_time_scale(plan, rule_files)?;
    if let Some(am) = &plan.alertmanager {
        crate::alertmanager::stack::precheck(am, plan.prometheus.time_scale)?;
    }
    Ok(())
}

/// With `[model]`: schedules `slocheck evaluate` (this very binary) against
/// the target's prediction log and the run's Pushgateway.
fn start_evaluation(
    plan: &Plan,
    env: &Env,
    target_url: &Url,
    stop: &CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<crate::evaluate::cron::CronStats>>, Error> {
    let (Some(model), Some(pushgateway)) = (&plan.model, &env.pushgateway_url) else {
        return Ok(None);
    };
    let bin = std::env::current_exe()
        .map_err(|e| Error::Environment(format!("cannot find slocheck's own binary: {e}")))?;
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let source = format!("{}/predictions", target_url.as_str().trim_end_matches('/'));
    let cfg = crate::evaluate::cron::CronConfig {
        bin,
        args: vec![
            "--source".into(),
            source,
            "--pushgateway".into(),
            pushgateway.to_string(),
            "--job".into(),
            model.job.clone(),
            "--window".into(),
            ms(model.window),
            "--label-delay".into(),
            ms(model.label_delay),
            "--timeout".into(),
            ms(model.evaluate_every.max(Duration::from_secs(2))),
        ],
        every: model.evaluate_every,
        phases: plan
            .phases
            .iter()
            .map(|p| (p.duration, p.evaluate))
            .collect(),
        log: env.run_dir().map(|d| d.join("evaluate.log")),
    };
    Ok(Some(crate::evaluate::cron::spawn(cfg, stop.clone())))
}

/// One pass of the plan's phases at `target` with the progress display.
/// When a started child (Prometheus, Alertmanager) dies meanwhile, the load
/// is stopped at once and its partial record returned with the error, so
/// the report still shows what ran. Shared by `run`, `demo` and `load`.
pub(crate) async fn load_pass(
    plan: &Plan,
    target: &Url,
    mode: ProgressMode,
    env: &mut Env,
    cancel: &CancellationToken,
) -> (Result<RunRecord, Error>, Option<Error>) {
    let generator = env.generator.as_ref().map(|g| &g.metrics);
    let live = Arc::new(LiveStats::default().with_generator(generator));
    let load_cancel = cancel.child_token();
    let progress = progress::spawn(plan, live.clone(), mode, load_cancel.clone());
    let mut task = {
        let (plan, url, c) = (plan.clone(), target.clone(), load_cancel.clone());
        tokio::spawn(async move { load::run(&plan, &url, live, c).await })
    };
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut died = None;
    let joined = loop {
        tokio::select! {
            r = &mut task => break r,
            _ = tick.tick(), if died.is_none() => {
                if let Err(e) = env.check_alive() {
                    load_cancel.cancel();
                    died = Some(e);
                }
            }
        }
    };
    load_cancel.cancel();
    let _ = progress.await;
    let record = match joined {
        Ok(r) => r.map_err(Error::from),
        Err(e) => Err(Error::Environment(format!(
            "the load engine stopped unexpectedly: {e}"
        ))),
    };
    (record, died)
}

/// What verification reads once the load is over.
struct VerifyInputs<'a> {
    plan: &'a Plan,
    record: &'a RunRecord,
    prom: &'a PromUp,
    env: &'a Env,
    /// Also fetch the series for the HTML report's charts.
    charts: bool,
    /// The rule files as the scenario names them (for coverage).
    loaded: &'a [RuleFile],
    /// `--export-promtool DIR`.
    export: Option<&'a std::path::Path>,
    /// The coordinator of a sharded run (its webhook recorder).
    sharded: Option<&'a crate::shard::Sharded>,
}

/// What runs on the finished run besides verification: rule coverage and
/// the promtool export. Neither changes the verdict; a failure is reported.
struct AfterVerify<'a> {
    client: &'a crate::prom::PromClient,
    plan: &'a Plan,
    record: &'a RunRecord,
    /// The rule files as the scenario names them.
    loaded: &'a [crate::prom::rules::RuleFile],
    scaled: &'a [crate::prom::timescale::ScaledFile],
    until: SystemTime,
}

impl AfterVerify<'_> {
    async fn coverage(&self) -> Option<crate::coverage::RunCoverage> {
        let step = self.plan.prometheus.evaluation_interval;
        let start = self.record.started_at;
        match crate::coverage::observe(self.client, self.loaded, start, self.until, step).await {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("slocheck: warning: no rule coverage: {e}");
                None
            }
        }
    }

    /// The export replays the files Prometheus evaluated: the scaled copies,
    /// or the originals when nothing was scaled.
    async fn export(&self, outcome: &Outcome, dir: &std::path::Path) {
        let rules = if self.plan.prometheus.time_scale != 1.0 && !self.scaled.is_empty() {
            match self
                .scaled
                .iter()
                .map(|s| crate::prom::rules::load(&s.scaled))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("slocheck: error: promtool export: {e}");
                    return;
                }
            }
        } else {
            self.loaded.to_vec()
        };
        let inputs = crate::export::promtool::ExportInputs {
            plan: self.plan,
            record: self.record,
            outcome,
            rules: &rules,
            until: self.until,
        };
        match crate::export::promtool::export(self.client, &inputs, dir).await {
            Ok(x) => {
                eprintln!(
                    "slocheck: promtool test written to {} ({} input series, {} rule file(s))",
                    x.test_file.display(),
                    x.series,
                    x.rule_files.len()
                );
                match x.promtool {
                    Some(Ok(took)) => eprintln!(
                        "slocheck: promtool test rules {}: SUCCESS in {}",
                        x.test_file.display(),
                        crate::timeutil::human(took)
                    ),
                    Some(Err(msg)) => eprintln!(
                        "slocheck: warning: promtool test rules {} fails on the replay:\n{msg}",
                        x.test_file.display()
                    ),
                    None => {
                        eprintln!("slocheck: promtool not on PATH: the export was not test-run")
                    }
                }
            }
            Err(e) => eprintln!("slocheck: error: promtool export: {e}"),
        }
    }
}

/// Asks Prometheus about every expectation, then (for `--report-dir`) the
/// chart series; both land in the session.
async fn verify_and_chart(v: VerifyInputs<'_>, session: &mut Session) -> Result<(), Error> {
    let until = SystemTime::now();
    eprintln!("slocheck: verifying {} expectations", v.plan.expects.len());
    let deliveries = (v.env.alerting.as_ref().map(|a| a.deliveries()))
        .or_else(|| v.sharded.and_then(|s| s.deliveries(v.plan)));
    let inputs = verify::Inputs {
        plan: v.plan,
        record: v.record,
        rules: &v.prom.timings,
        until,
        deliveries: deliveries.as_ref(),
    };
    session.outcome = Some(verify::verify(&v.prom.client, &inputs).await?);
    let after = AfterVerify {
        client: &v.prom.client,
        plan: v.plan,
        record: v.record,
        loaded: v.loaded,
        scaled: &v.env.scaled,
        until,
    };
    session.coverage = after.coverage().await;
    if let (Some(dir), Some(outcome)) = (v.export, &session.outcome) {
        after.export(outcome, dir).await;
    }
    if v.charts {
        let threshold = verify::observe::charts::error_threshold(&v.prom.timings);
        let charts =
            verify::observe::charts::collect(&v.prom.client, v.plan, v.record, until, threshold)
                .await;
        // Charts are an aid to the reader; without them the verdict stands.
        match charts {
            Ok(c) => session.charts = Some(c),
            Err(e) => eprintln!(
                "slocheck: warning: no chart series for the HTML report: {}",
                crate::error::chain(&e)
            ),
        }
    }
    Ok(())
}
