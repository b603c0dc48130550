//! Live progress of a load run on stderr (indicatif bar on a terminal, a line
//! every few seconds otherwise), refreshed on its own timer from atomics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::load::{LiveSnapshot, LiveStats};
use crate::plan::Plan;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Tty,
    Plain,
    Quiet,
}

const TTY_EVERY: Duration = Duration::from_millis(250);
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Rates between two snapshots: what the display shows.
struct View {
    phase: String,
    elapsed: Duration,
    total: Duration,
    rps: f64,
    snap: LiveSnapshot,
}

impl View {
    fn line(&self) -> String {
        format!(
            "{} {:.0}s/{:.0}s  {:.0} rps  in-flight {}  5xx {}  dropped {}  failed {}  p90 {:.1}ms",
            self.phase,
            self.elapsed.as_secs_f64(),
            self.total.as_secs_f64(),
            self.rps,
            self.snap.in_flight,
            self.snap.errors_5xx,
            self.snap.dropped,
            self.snap.failed,
            self.snap.p90_us as f64 / 1000.0,
        )
    }
}

struct Tracker {
    names: Vec<String>,
    total: Duration,
    started: Instant,
    last: (Instant, u64),
}

impl Tracker {
    fn new(plan: &Plan, live: &LiveStats) -> Self {
        let now = Instant::now();
        Self {
            names: plan.phases.iter().map(|p| p.name.clone()).collect(),
            total: plan.total_duration(),
            started: now,
            last: (now, live.snapshot().sent),
        }
    }

    fn view(&mut self, live: &LiveStats) -> View {
        let snap = live.snapshot();
        let now = Instant::now();
        let dt = now.duration_since(self.last.0).as_secs_f64();
        let rps = if dt > 0.0 {
            snap.sent.saturating_sub(self.last.1) as f64 / dt
        } else {
            0.0
        };
        self.last = (now, snap.sent);
        View {
            phase: self.names.get(snap.phase).cloned().unwrap_or_default(),
            elapsed: elapsed_in_pass(now.duration_since(self.started), self.total),
            total: self.total,
            rps,
            snap,
        }
    }
}

/// Time into the pass as shown: a display outlives its pass by up to a tick
/// (and a loop starts a new display per pass), so the last line of a
/// 55 s pass reads `55s/55s`, never wrapped round to `0s/55s`.
fn elapsed_in_pass(since_start: Duration, total: Duration) -> Duration {
    since_start.min(total)
}

/// Start the display; it stops when `cancel` fires (cancel a child token to
/// stop the display without stopping the load).
pub fn spawn(
    plan: &Plan,
    live: Arc<LiveStats>,
    mode: ProgressMode,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    let mut tracker = Tracker::new(plan, &live);
    tokio::spawn(async move {
        let every = match mode {
            ProgressMode::Quiet => return,
            ProgressMode::Tty => TTY_EVERY,
            ProgressMode::Plain => PLAIN_EVERY,
        };
        let bar = (mode == ProgressMode::Tty).then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(tracker.total.as_millis() as u64),
                ProgressDrawTarget::stderr(),
            );
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            let view = tracker.view(&live);
            match &bar {
                Some(bar) => {
                    bar.set_position(view.elapsed.as_millis() as u64);
                    bar.set_message(view.line());
                }
                None => eprintln!("{}", view.line()),
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let open = crate::plan::LoadMode::Open;
        let mut plan = Plan::single_phase("p", open, 1.0, Duration::from_secs(10));
        plan.phases[0].name = "only".into();
        plan
    }

    #[tokio::test]
    async fn display_stops_on_cancel_and_quiet_shows_nothing() {
        let live = Arc::new(LiveStats::new());
        let quiet = spawn(
            &plan(),
            live.clone(),
            ProgressMode::Quiet,
            CancellationToken::new(),
        );
        tokio::time::timeout(Duration::from_secs(1), quiet)
            .await
            .unwrap()
            .unwrap();
        for mode in [ProgressMode::Plain, ProgressMode::Tty] {
            let cancel = CancellationToken::new();
            let h = spawn(&plan(), live.clone(), mode, cancel.clone());
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(!h.is_finished(), "{mode:?} display ended on its own");
            cancel.cancel();
            tokio::time::timeout(Duration::from_secs(1), h)
                .await
                .unwrap()
                .unwrap();
        }
    }

    #[test]
    fn elapsed_stops_at_the_end_of_the_pass() {
        let total = Duration::from_secs(55);
        for (since, want) in [(0, 0), (30, 30), (55, 55), (56, 55), (110, 55)] {
            let got = elapsed_in_pass(Duration::from_secs(since), total);
            assert_eq!(got, Duration::from_secs(want), "{since}s into a 55s pass");
        }
        // The plain line a display prints at the very end of a pass.
        let mut t = Tracker::new(&plan(), &LiveStats::new());
        t.started -= Duration::from_secs(10);
        let line = t.view(&LiveStats::new()).line();
        assert!(line.starts_with("only 10s/10s "), "{line}");
    }

    #[test]
    fn line_shows_the_counters() {
        let v = View {
            phase: "spike".into(),
            elapsed: Duration::from_secs(3),
            total: Duration::from_secs(70),
            rps: 199.6,
            snap: LiveSnapshot {
                in_flight: 4,
                errors_5xx: 12,
                p90_us: 12_340,
                ..Default::default()
            },
        };
        assert_eq!(
            v.line(),
            "spike 3s/70s  200 rps  in-flight 4  5xx 12  dropped 0  failed 0  p90 12.3ms"
        );
    }
}
