//! Runs the evaluation batch job the way a Kubernetes CronJob would: a
//! separate `slocheck evaluate` process every `evaluate_every` while the
//! scenario runs, skipped in phases with `evaluate = false` (a stopped job),
//! each run bounded in time and killed on cancellation.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::load::LiveStats;
use crate::process::{ManagedChild, log_file, log_tail};

/// What the schedule needs; `args` follow `evaluate` on the command line.
#[derive(Debug, Clone)]
pub struct CronConfig {
    pub bin: PathBuf,
    pub args: Vec<String>,
    pub every: Duration,
    /// Per phase index: whether the job runs during it.
    pub enabled: Vec<bool>,
    /// Every run appends its output here.
    pub log: PathBuf,
}

/// How the scheduled runs went, for the run's messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CronStats {
    pub runs: u64,
    pub skipped: u64,
    pub failures: u64,
    pub last_error: Option<String>,
}

/// Starts the schedule; the task ends (and reports) when `stop` fires.
pub fn spawn(
    cfg: CronConfig,
    live: Arc<LiveStats>,
    stop: CancellationToken,
) -> JoinHandle<CronStats> {
    tokio::spawn(async move {
        let mut stats = CronStats::default();
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + cfg.every, cfg.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return stats,
                _ = tick.tick() => {}
            }
            let phase = live.snapshot().phase;
            if !cfg.enabled.get(phase).copied().unwrap_or(true) {
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
    let (out, err) =
        log_file(&cfg.log).map_err(|e| format!("cannot open {}: {e}", cfg.log.display()))?;
    let mut cmd = Command::new(&cfg.bin);
    cmd.arg("evaluate")
        .args(&cfg.args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let mut child =
        ManagedChild::spawn(cmd).map_err(|e| format!("cannot start {}: {e}", cfg.bin.display()))?;
    // A run that outlives its slot would overlap the next one.
    let deadline = tokio::time::Instant::now() + cfg.every.max(Duration::from_secs(5));
    loop {
        match child.succeeded() {
            Some(true) => return Ok(()),
            Some(false) => {
                let status = child.exited().unwrap_or_default();
                return Err(format!("{status}: {}", log_tail(&cfg.log, 1)));
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
            enabled: vec![enabled],
            log: dir.join("evaluate.log"),
        }
    }

    async fn schedule(c: CronConfig) -> CronStats {
        let stop = CancellationToken::new();
        let task = spawn(c, Arc::new(LiveStats::default()), stop.clone());
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
}
