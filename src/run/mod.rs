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
use crate::plan::{ExpectKind, Plan, TargetPlan};
use crate::progress::{self, ProgressMode};
use crate::record::RunRecord;
use crate::report::{self, Report, RunStatus};
use crate::scenario;
use crate::signals::Interrupt;
use crate::verify::{self, outcome::Outcome};
pub use env::Env;

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
    /// Removed after the children stopped (they write into it).
    run_dir: Option<RunDirGuard>,
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

/// Runs the scenario and returns the exit code. Errors are printed here.
pub async fn run(opts: RunOptions, cancel: CancellationToken, interrupt: Interrupt) -> u8 {
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
    env.shutdown().await;
    session.prometheus_version = env.prometheus_version.take();
    let kept_dir = session.run_dir.take().and_then(RunDirGuard::finish);

    let (status, code) = match &result {
        Ok(()) if session.outcome.as_ref().is_some_and(Outcome::passed) => {
            (RunStatus::Passed, exit::PASS)
        }
        Ok(()) => (RunStatus::Failed, exit::FAIL),
        Err(Error::Interrupted(c)) => (RunStatus::Aborted, *c),
        Err(e) => (RunStatus::Error, e.exit_code()),
    };
    if let Some(plan) = &session.plan {
        let rep = Report::new(
            plan,
            &session,
            status,
            code,
            result.as_ref().err().map(|e| e.to_string()),
        );
        if session.record.is_some() {
            let mut out = std::io::stdout().lock();
            // A closed stdout (e.g. `| head`) must not change the verdict.
            let _ = report::terminal::write(&rep, &mut out, report::terminal::use_color());
        }
        if let Some(path) = &opts.json
            && let Err(e) = report::json::write_file(&rep, path)
        {
            eprintln!("slocheck: error: {e}");
        }
        // Report files never change the exit code: the verdict stands.
        if let Some(dir) = &opts.report_dir
            && let Err(e) = report::dir::write(&rep, dir)
        {
            eprintln!("slocheck: error: {e}");
        }
    }
    if let Err(e) = &result
        && !matches!(e, Error::Interrupted(_))
    {
        eprintln!("slocheck: error: {e}");
    }
    if let Some(dir) = &kept_dir {
        eprintln!("slocheck: run directory kept at {}", dir.display());
    }
    code
}

async fn execute(
    opts: &RunOptions,
    session: &mut Session,
    env: &mut Env,
    cancel: &CancellationToken,
    interrupt: &Interrupt,
) -> Result<(), Error> {
    let mut loaded = scenario::load(&opts.scenario)?;
    apply_overrides(
        &mut loaded.plan,
        opts.target_url.as_ref(),
        opts.prometheus_url.as_ref(),
        opts.seed,
    );
    if opts.alertmanager && loaded.plan.alertmanager.is_none() {
        loaded.plan.alertmanager = Some(crate::plan::AlertmanagerPlan::default());
    }
    let rule_files = rules::load_and_check(&loaded)?;
    let plan = loaded.plan.clone();
    session.plan = Some(plan.clone());
    let managed = plan.prometheus.url.is_none();
    if !managed && plan.prometheus.time_scale != 1.0 {
        return Err(Error::Invalid(format!(
            "{}: time_scale = {} needs a managed Prometheus; an external one evaluates its own rules unscaled (hint: remove prometheus.url / --prometheus-url, or set time_scale = 1)",
            plan.source.display(),
            plan.prometheus.time_scale
        )));
    }
    if !managed && plan.alertmanager.is_some() {
        return Err(Error::Invalid(format!(
            "{}: delivery checks need a managed Prometheus that sends to slocheck's Alertmanager; an external one sends where its own config says (hint: remove prometheus.url / --prometheus-url, or the notified expectations and [alertmanager])",
            plan.source.display()
        )));
    }
    if !managed
        && plan
            .model
            .as_ref()
            .is_some_and(|m| m.pushgateway_url.is_none())
    {
        return Err(Error::Invalid(format!(
            "{}: an external Prometheus cannot scrape the Pushgateway slocheck would start (hint: set [model] pushgateway_url to the Pushgateway your Prometheus scrapes with honor_labels: true)",
            plan.source.display()
        )));
    }
    rules::check_time_scale(&plan, &rule_files)?;
    if let Some(am) = &plan.alertmanager {
        crate::alertmanager::stack::precheck(am, plan.prometheus.time_scale)?;
    }

    let run_dir = tempfile::Builder::new()
        .prefix("slocheck-run-")
        .tempdir()
        .map_err(Error::io("create a run directory in", std::env::temp_dir()))?;
    if !opts.keep_run_dir {
        crate::signals::remove_on_forced_exit(run_dir.path().to_path_buf());
    }
    let guard = RunDirGuard {
        dir: Some(run_dir),
        keep: opts.keep_run_dir,
    };
    let dir = guard.path();
    session.run_dir = Some(guard);

    let interrupted = |interrupt: &Interrupt| Error::Interrupted(interrupt.exit_code());
    let target_url = env.start_target(&plan).await?;
    let started = env.start_pushgateway(&plan, &dir, cancel).await;
    if cancel.is_cancelled() {
        return Err(interrupted(interrupt));
    }
    started?;
    let (client, timings) = if managed {
        let prepared = rules::prepare(&plan, rule_files, &dir.join("rules"))?;
        session.scaled = prepared.scaled.clone();
        let scaled_paths = prepared.scaled.iter().map(|s| s.scaled.clone()).collect();
        if let Some(am) = &plan.alertmanager {
            let o = crate::alertmanager::StackOptions {
                plan: am,
                bin: opts.alertmanager_bin.as_deref(),
                live_receivers: opts.live_receivers,
                time_scale: plan.prometheus.time_scale,
                run_dir: &dir,
            };
            let started = env.start_alerting(o, cancel).await;
            if cancel.is_cancelled() {
                return Err(interrupted(interrupt));
            }
            started?;
        }
        let client = env
            .start_managed(
                &plan,
                opts.prometheus_bin.clone(),
                dir.clone(),
                scaled_paths,
                &target_url,
                cancel,
            )
            .await;
        if cancel.is_cancelled() {
            return Err(interrupted(interrupt));
        }
        (client?, prepared.timings)
    } else {
        let url = plan
            .prometheus
            .url
            .clone()
            .unwrap_or_else(|| unreachable!("external checked above"));
        let required: Vec<String> = plan
            .expects
            .iter()
            .filter_map(|e| match &e.kind {
                ExpectKind::Alert(a) => Some(a.alert.clone()),
                _ => None,
            })
            .collect();
        let client = env.use_external(&url, &plan, &required).await?;
        (client, rules::timings(&rule_files))
    };
    session.prometheus_url = Some(client.base_url().clone());
    if cancel.is_cancelled() {
        return Err(interrupted(interrupt));
    }

    // Load, watching that the managed Prometheus stays alive meanwhile.
    let live = Arc::new(LiveStats::default());
    let load_cancel = cancel.child_token();
    let progress = progress::spawn(&plan, live.clone(), opts.progress, load_cancel.clone());
    let task = {
        let (plan, url, live, c) = (
            plan.clone(),
            target_url.clone(),
            live.clone(),
            load_cancel.clone(),
        );
        tokio::spawn(async move { load::run(&plan, &url, live, c).await })
    };
    eprintln!(
        "slocheck: load started: {} phases, {}",
        plan.phases.len(),
        crate::timeutil::human(plan.total_duration())
    );
    // The batch job keeps its schedule through the settle period, so the
    // last phase is evaluated too; it stops before verification.
    let cron_stop = cancel.child_token();
    // Any early return below stops the schedule (and its running job) too.
    let _cron_guard = cron_stop.clone().drop_guard();
    let cron = start_evaluation(&plan, env, &target_url, &dir, live.clone(), &cron_stop)?;
    let (record, died) = watch_load(task, env, &load_cancel).await;
    load_cancel.cancel();
    let _ = progress.await;
    let record = record?;
    session.record = Some(record.clone());
    if let Some(e) = died {
        return Err(e);
    }
    if cancel.is_cancelled() {
        return Err(interrupted(interrupt));
    }

    // Let the last phase's samples be scraped and its rules evaluated.
    eprintln!(
        "slocheck: load done; settling {} before verification",
        crate::timeutil::human(plan.prometheus.settle)
    );
    tokio::select! {
        _ = tokio::time::sleep(plan.prometheus.settle) => {}
        _ = cancel.cancelled() => return Err(interrupted(interrupt)),
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
    let until = SystemTime::now();
    eprintln!("slocheck: verifying {} expectations", plan.expects.len());
    let deliveries = env.alerting.as_ref().map(|a| a.deliveries());
    let inputs = verify::Inputs {
        plan: &plan,
        record: &record,
        rules: &timings,
        until,
        deliveries: deliveries.as_ref(),
    };
    let outcome = tokio::select! {
        o = verify::verify(&client, &inputs) => o?,
        _ = cancel.cancelled() => return Err(interrupted(interrupt)),
    };
    session.outcome = Some(outcome);
    if opts.report_dir.is_some() {
        let threshold = report::series::error_threshold(&timings);
        let charts = tokio::select! {
            c = report::series::collect(&client, &plan, &record, until, threshold) => c,
            _ = cancel.cancelled() => return Err(interrupted(interrupt)),
        };
        // Charts are an aid to the reader; without them the verdict stands.
        match charts {
            Ok(c) => session.charts = Some(c),
            Err(e) => eprintln!("slocheck: warning: no chart series for the HTML report: {e}"),
        }
    }
    Ok(())
}

/// With `[model]`: schedules `slocheck evaluate` (this very binary) against
/// the target's prediction log and the run's Pushgateway.
fn start_evaluation(
    plan: &Plan,
    env: &Env,
    target_url: &Url,
    dir: &std::path::Path,
    live: Arc<LiveStats>,
    stop: &CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<crate::evaluate::cron::CronStats>>, Error> {
    let (Some(model), Some(pushgateway)) = (&plan.model, &env.pushgateway_url) else {
        return Ok(None);
    };
    let bin = std::env::current_exe()
        .map_err(|e| Error::Environment(format!("cannot find slocheck's own binary: {e}")))?;
    let secs = |d: Duration| format!("{}ms", d.as_millis());
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
            secs(model.window),
            "--label-delay".into(),
            secs(model.label_delay),
            "--timeout".into(),
            secs(model.evaluate_every.max(Duration::from_secs(2))),
        ],
        every: model.evaluate_every,
        enabled: plan.phases.iter().map(|p| p.evaluate).collect(),
        log: dir.join("evaluate.log"),
    };
    Ok(Some(crate::evaluate::cron::spawn(cfg, live, stop.clone())))
}

type LoadTask = tokio::task::JoinHandle<Result<RunRecord, load::LoadError>>;

/// Waits for the load task. When the managed Prometheus dies meanwhile, the
/// load is stopped at once and its partial record returned with the error,
/// so the report still shows what ran.
async fn watch_load(
    mut task: LoadTask,
    env: &mut Env,
    cancel: &CancellationToken,
) -> (Result<RunRecord, Error>, Option<Error>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut died = None;
    let joined = loop {
        tokio::select! {
            r = &mut task => break r,
            _ = tick.tick(), if died.is_none() => {
                if let Err(e) = env.check_alive() {
                    cancel.cancel();
                    died = Some(e);
                }
            }
        }
    };
    let record = match joined {
        Ok(r) => r.map_err(Error::from),
        Err(e) => Err(Error::Environment(format!(
            "the load engine stopped unexpectedly: {e}"
        ))),
    };
    (record, died)
}

/// Removes the run directory on every exit path unless asked to keep it.
struct RunDirGuard {
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
