//! Runs the evaluation batch job the way a Kubernetes CronJob would: a
//! separate `slocheck evaluate` process every `evaluate_every` while the
//! scenario runs, skipped in phases with `evaluate = false` (a stopped job),
//! each run bounded in time and killed on cancellation.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::process::{ManagedChild, log_file, log_tail};

/// What the schedule needs; `args` follow `evaluate` on the command line.
#[derive(Debug, Clone)]
pub struct CronConfig {
    pub bin: PathBuf,
    pub args: Vec<String>,
    pub every: Duration,
    /// Per phase, in order: its duration and whether the job runs during
    /// it. After the last phase (the settle period) the last one's setting
    /// holds.
    pub phases: Vec<(Duration, bool)>,
    /// Every run appends its output here (None: discarded).
    pub log: Option<PathBuf>,
}

impl CronConfig {
    /// Whether the job runs `elapsed` after the load started.
    fn enabled_at(&self, elapsed: Duration) -> bool {
        let mut end = Duration::ZERO;
        for (d, on) in &self.phases {
            end += *d;
            if elapsed < end {
                return *on;
            }
        }
        self.phases.last().is_none_or(|p| p.1)
    }
}

/// How the scheduled runs went, for the run's messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CronStats {
    pub runs: u64,
    pub skipped: u64,
    pub failures: u64,
    pub last_error: Option<String>,
}

/// Starts the schedule as the load starts (phases are timed from here);
/// the task ends (and reports) when `stop` fires.
pub fn spawn(cfg: CronConfig, stop: CancellationToken) -> JoinHandle<CronStats> {
    tokio::spawn(async move {
        let mut stats = CronStats::default();
        let started = tokio::time::Instant::now();
        let mut tick = tokio::time::interval_at(started + cfg.every, cfg.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return stats,
                _ = tick.tick() => {}
            }
            if !cfg.enabled_at(started.elapsed()) {
                stats.skipped += 1;
                continue;
            }
            stats.runs += 1;
            if let Err(e) = run_once(&cfg, &stop).await {
                stats.failures += 1;
                stats.last_error = Some(e);
            }
        }
    })
}

/// One run of the batch job; the error is its last log line.
async fn run_once(cfg: &CronConfig, stop: &CancellationToken) -> Result<(), String> {
    let mut cmd = Command::new(&cfg.bin);
    cmd.arg("evaluate").args(&cfg.args).stdin(Stdio::null());
    match &cfg.log {
        Some(log) => {
            let (out, err) =
                log_file(log).map_err(|e| format!("cannot open {}: {e}", log.display()))?;
            cmd.stdout(out).stderr(err);
        }
        None => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    let mut child =
        ManagedChild::spawn(cmd).map_err(|e| format!("cannot start {}: {e}", cfg.bin.display()))?;
    // A run that outlives its slot would overlap the next one.
    let deadline = tokio::time::Instant::now() + cfg.every.max(Duration::from_secs(5));
    loop {
        match child.succeeded() {
            Some(true) => return Ok(()),
            Some(false) => {
                let status = child.exited().unwrap_or_default();
                let last = cfg.log.as_deref().map(|l| log_tail(l, 1));
                return Err(format!("{status}: {}", last.unwrap_or_default()));
            }
            None => {}
        }
        tokio::select! {
            _ = stop.cancelled() => {
                let _ = child.stop(Duration::from_secs(1)).await;
                return Ok(());
            }
            _ = tokio::time::sleep_until(deadline) => {
                let _ = child.stop(Duration::from_secs(1)).await;
                return Err("timed out".into());
            }
            _ = tokio::time::sleep(Duration::from_millis(25)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(bin: &str, enabled: bool, dir: &std::path::Path) -> CronConfig {
        CronConfig {
            bin: PathBuf::from(bin),
            args: vec![],
            every: Duration::from_millis(100),
            phases: vec![(Duration::from_secs(60), enabled)],
            log: Some(dir.join("evaluate.log")),
        }
    }

    async fn schedule(c: CronConfig) -> CronStats {
        let stop = CancellationToken::new();
        let task = spawn(c, stop.clone());
        tokio::time::sleep(Duration::from_millis(450)).await;
        stop.cancel();
        task.await.expect("schedule task")
    }

    #[tokio::test]
    async fn runs_on_schedule_counts_failures_and_skips_stopped_phases() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = schedule(cfg("true", true, dir.path())).await;
        assert!(ok.runs >= 2, "{ok:?}");
        assert_eq!((ok.failures, ok.skipped), (0, 0), "{ok:?}");
        let failing = schedule(cfg("false", true, dir.path())).await;
        assert!(failing.runs >= 2, "{failing:?}");
        assert_eq!(failing.failures, failing.runs, "{failing:?}");
        assert!(
            failing
                .last_error
                .is_some_and(|e| e.contains("exit code 1"))
        );
        let stopped = schedule(cfg("true", false, dir.path())).await;
        assert_eq!(stopped.runs, 0, "{stopped:?}");
        assert!(stopped.skipped >= 2, "{stopped:?}");
    }

    #[test]
    fn phases_switch_the_job_on_and_off_by_elapsed_time() {
        let c = CronConfig {
            bin: PathBuf::from("true"),
            args: vec![],
            every: Duration::from_secs(1),
            phases: vec![
                (Duration::from_secs(10), true),
                (Duration::from_secs(5), false),
                (Duration::from_secs(5), true),
            ],
            log: None,
        };
        let at = |s: f64| c.enabled_at(Duration::from_secs_f64(s));
        assert!(at(0.0) && at(9.9));
        assert!(!at(10.0) && !at(14.9));
        assert!(
            at(15.0) && at(25.0),
            "the settle period follows the last phase"
        );
    }
}
