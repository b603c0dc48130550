//! Drives the phases of a plan at the target: open loop (absolute arrival
//! schedule, bounded in-flight, drops counted) or closed loop (N workers),
//! on one single-threaded runtime per core, and merges what was measured.
//!
//! Each shard (an OS thread with a current-thread runtime) owns its
//! connections, recorders and fault plans outright: no lock and no
//! cross-thread traffic per request. In open mode shard `s` of `k` sends the
//! scheduled requests `n ≡ s (mod k)`; in closed mode the workers are split
//! across shards and draw request numbers from one atomic counter per phase,
//! so fault selection stays exact across the whole phase.

use std::cell::{Cell, RefCell};
use std::num::NonZeroUsize;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

use http::HeaderName;
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::client::{self, ClientError, Conn, Target};
use super::faults::{FAULT_HEADER, PhaseFaults};
use super::live::{Counts, LiveStats};
use super::model::{self as model_traffic, FeedbackBuffer, ModelTraffic, Reporter};
use super::pacer::Pacer;
use super::recorder::Recorder;
use crate::plan::{LoadMode, Plan, Rate};
use crate::record::{RunRecord, TruthSample};
use crate::timeutil::unix_ms;

pub use super::live::LiveSnapshot;

/// Lead time between planning the run and its first send, so every shard
/// thread is up before the schedule starts.
const START_LEAD: Duration = Duration::from_millis(20);
/// How often shards publish their counters to `LiveStats`.
const LIVE_EVERY: Duration = Duration::from_millis(100);
/// Extra wait for in-flight requests after the last phase, beyond the
/// request timeout (which bounds every request anyway).
const DRAIN_GRACE: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("starting load thread {shard} failed")]
    Thread {
        shard: usize,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "load thread {shard} stopped without a result (its runtime failed to start or it panicked)"
    )]
    ShardLost { shard: usize },
    #[error("cannot prepare the model traffic: {0}")]
    Model(String),
}

/// What one shard needs, all owned (it moves into the shard's thread).
struct ShardSpec {
    index: usize,
    shards: usize,
    plan: Plan,
    target: Target,
    t0: Instant,
    sys0: SystemTime,
    /// Open mode: this shard's share of `max_in_flight`.
    cap: usize,
    /// Closed mode: next request number of each phase, shared by all shards.
    counters: Arc<Vec<AtomicU64>>,
    /// With `[model]` or drift: labels, drifted bodies, expected answers.
    model: Option<(Arc<ModelTraffic>, reqwest::Url)>,
}

struct ShardResult {
    recorders: Vec<Recorder>,
    /// Phases this shard started.
    reached: usize,
    cancelled_at: Option<SystemTime>,
}

/// Shard-local state shared by its tasks (single thread: `Rc` + `RefCell`,
/// never borrowed across an await).
struct Ctx {
    target: Target,
    fault_header: HeaderName,
    faults: RefCell<Vec<PhaseFaults>>,
    recorders: RefCell<Vec<Recorder>>,
    idle: RefCell<Vec<Conn>>,
    in_flight: Cell<usize>,
    /// Counters already added to `LiveStats`.
    published: Cell<Counts>,
    model: Option<Reporter>,
}

/// Phase start instants relative to the run start: an absolute timeline, so
/// no drift accumulates across phases.
fn phase_offsets(plan: &Plan) -> Vec<Duration> {
    let mut acc = Duration::ZERO;
    plan.phases
        .iter()
        .map(|p| {
            let start = acc;
            acc += p.duration;
            start
        })
        .collect()
}

fn share(total: usize, shards: usize, index: usize) -> usize {
    total / shards + usize::from(index < total % shards)
}

/// Open-loop rate one shard handles before another core is worth its extra
/// wake-ups (each shard wakes for its own share of the schedule).
const RATE_PER_SHARD: f64 = 10_000.0;

fn shard_count(plan: &Plan) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let limit = match plan.load.mode {
        LoadMode::Open => {
            let peak = plan
                .phases
                .iter()
                .map(|p| match p.rate {
                    Rate::Constant(r) => r,
                    Rate::Ramp { from, to } => from.max(to),
                })
                .fold(0.0, f64::max);
            let by_rate = (peak / RATE_PER_SHARD).ceil().max(1.0) as usize;
            plan.load.max_in_flight.get().min(by_rate)
        }
        LoadMode::Closed { concurrency, .. } => plan
            .phases
            .iter()
            .map(|p| p.concurrency.unwrap_or(concurrency).get() as usize)
            .max()
            .unwrap_or(1),
    };
    cores.min(limit).max(1)
}

/// Run every phase of `plan` once against `base_url`. On `cancel` the load
/// stops within a second: in-flight requests are abandoned, the current
/// phase ends at the cancel time and the record is marked `aborted`.
pub async fn run(
    plan: &Plan,
    base_url: &reqwest::Url,
    live: Arc<LiveStats>,
    cancel: CancellationToken,
) -> Result<RunRecord, LoadError> {
    let target = Target::prepare(base_url, &plan.request).await?;
    let model = match ModelTraffic::prepare(plan).map_err(LoadError::Model)? {
        Some(t) => {
            let url = format!(
                "{}{}",
                base_url.as_str().trim_end_matches('/'),
                model_traffic::FEEDBACK_PATH
            );
            let url = reqwest::Url::parse(&url).map_err(|e| LoadError::Model(e.to_string()))?;
            Some((Arc::new(t), url))
        }
        None => None,
    };
    if plan.phases.is_empty() {
        let now = SystemTime::now();
        return Ok(RunRecord {
            started_at: now,
            ended_at: now,
            phases: Vec::new(),
            aborted: false,
        });
    }
    let shards = shard_count(plan);
    let counters: Arc<Vec<AtomicU64>> =
        Arc::new(plan.phases.iter().map(|_| AtomicU64::new(0)).collect());
    let sys0 = SystemTime::now() + START_LEAD;
    let t0 = Instant::now() + START_LEAD;
    live.set_phase(0, unix_ms(sys0));

    let mut receivers = Vec::with_capacity(shards);
    for index in 0..shards {
        let spec = ShardSpec {
            index,
            shards,
            plan: plan.clone(),
            target: target.clone(),
            t0,
            sys0,
            cap: share(plan.load.max_in_flight.get(), shards, index).max(1),
            counters: counters.clone(),
            model: model.clone(),
        };
        let (tx, rx) = oneshot::channel();
        let (live, cancel) = (live.clone(), cancel.clone());
        std::thread::Builder::new()
            .name(format!("slocheck-load-{index}"))
            .spawn(move || {
                if let Some(result) = run_shard(spec, live, cancel) {
                    let _ = tx.send(result);
                }
            })
            .map_err(|source| LoadError::Thread {
                shard: index,
                source,
            })?;
        receivers.push(rx);
    }

    let mut results = Vec::with_capacity(shards);
    for (shard, rx) in receivers.into_iter().enumerate() {
        results.push(rx.await.map_err(|_| LoadError::ShardLost { shard })?);
    }
    Ok(merge(plan, sys0, results))
}

fn merge(plan: &Plan, sys0: SystemTime, results: Vec<ShardResult>) -> RunRecord {
    let offsets = phase_offsets(plan);
    let reached = results.iter().map(|r| r.reached).max().unwrap_or(0);
    let cancelled_at = results.iter().filter_map(|r| r.cancelled_at).min();
    let mut merged: Vec<Option<Recorder>> = (0..reached).map(|_| None).collect();
    for result in results {
        for (i, rec) in result.recorders.into_iter().take(reached).enumerate() {
            match &mut merged[i] {
                Some(m) => m.merge(&rec),
                slot => *slot = Some(rec),
            }
        }
    }
    let phases = merged
        .into_iter()
        .enumerate()
        .filter_map(|(i, rec)| {
            let phase = &plan.phases[i];
            let start = sys0 + offsets[i];
            let planned_end = start + phase.duration;
            let end = match cancelled_at {
                Some(c) if i + 1 == reached => c.clamp(start, planned_end),
                _ => planned_end,
            };
            Some(rec?.into_record(phase.name.clone(), start, end))
        })
        .collect::<Vec<_>>();
    let ended_at = match cancelled_at {
        Some(c) => c,
        None => SystemTime::now().max(sys0 + plan.total_duration()),
    };
    RunRecord {
        started_at: sys0,
        ended_at,
        phases,
        aborted: cancelled_at.is_some(),
    }
}

/// Body of a shard thread; `None` only if the runtime cannot be built.
fn run_shard(
    spec: ShardSpec,
    live: Arc<LiveStats>,
    cancel: CancellationToken,
) -> Option<ShardResult> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let local = tokio::task::LocalSet::new();
    let reporter = match &spec.model {
        Some((traffic, url)) => Some(Reporter {
            traffic: traffic.clone(),
            buffer: Rc::new(FeedbackBuffer::default()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .no_proxy()
                .build()
                .ok()?,
            url: url.clone(),
        }),
        None => None,
    };
    let ctx = Rc::new(Ctx {
        target: spec.target.clone(),
        fault_header: HeaderName::from_static(FAULT_HEADER),
        faults: RefCell::new(
            spec.plan
                .phases
                .iter()
                .enumerate()
                .map(|(i, p)| PhaseFaults::new(spec.plan.seed, i, &p.faults))
                .collect(),
        ),
        recorders: RefCell::new(
            spec.plan
                .phases
                .iter()
                .map(|p| {
                    let mut r = Recorder::new(p.duration);
                    if let Some(m) = &reporter {
                        r.model = m.traffic.truth();
                    }
                    r
                })
                .collect(),
        ),
        idle: RefCell::new(Vec::new()),
        in_flight: Cell::new(0),
        published: Cell::new(Counts::default()),
        model: reporter,
    });
    let (reached, cancelled_at) = local.block_on(&rt, drive(ctx.clone(), &spec, live, cancel));
    // Abandoned requests hold clones of `ctx`; dropping them first frees it.
    drop(local);
    let recorders = std::mem::take(&mut *ctx.recorders.borrow_mut());
    Some(ShardResult {
        recorders,
        reached,
        cancelled_at,
    })
}

async fn drive(
    ctx: Rc<Ctx>,
    spec: &ShardSpec,
    live: Arc<LiveStats>,
    cancel: CancellationToken,
) -> (usize, Option<SystemTime>) {
    let publisher = tokio::task::spawn_local(publish(
        ctx.clone(),
        spec.t0,
        phase_offsets(&spec.plan),
        live.clone(),
    ));
    let reporter = tokio::task::spawn_local(report_labels(ctx.clone()));
    let offsets = phase_offsets(&spec.plan);
    let mut reached = 0;
    let mut cancelled_at = None;
    for (i, phase) in spec.plan.phases.iter().enumerate() {
        let start = spec.t0 + offsets[i];
        tokio::select! {
            _ = cancel.cancelled() => { cancelled_at = Some(SystemTime::now()); break; }
            _ = sleep_until(start) => {}
        }
        reached = i + 1;
        if spec.index == 0 {
            live.set_phase(i, unix_ms(spec.sys0 + offsets[i]));
        }
        let end = start + phase.duration;
        let phase_run = async {
            match spec.plan.load.mode {
                LoadMode::Open => open_phase(&ctx, spec, i, start).await,
                LoadMode::Closed {
                    concurrency,
                    think_time,
                } => {
                    let c = phase.concurrency.unwrap_or(concurrency).get() as usize;
                    for _ in 0..share(c, spec.shards, spec.index) {
                        let counter = spec.counters.clone();
                        tokio::task::spawn_local(closed_worker(
                            ctx.clone(),
                            i,
                            start,
                            end,
                            think_time,
                            counter,
                        ));
                    }
                }
            }
            sleep_until(end).await;
        };
        tokio::select! {
            _ = cancel.cancelled() => { cancelled_at = Some(SystemTime::now()); break; }
            _ = phase_run => {}
        }
    }
    if cancelled_at.is_none() {
        // Let the last requests finish so the final phase counts them.
        let drain_until = Instant::now() + ctx.target.timeout + DRAIN_GRACE;
        while ctx.in_flight.get() > 0 && Instant::now() < drain_until {
            tokio::select! {
                _ = cancel.cancelled() => { cancelled_at = Some(SystemTime::now()); break; }
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    }
    publisher.abort();
    publish_once(&ctx, &live);
    reporter.abort();
    if cancelled_at.is_none() {
        // The last labels still count; the client's timeout bounds this.
        flush_labels(&ctx).await;
    }
    (reached, cancelled_at)
}

/// Posts the shard's buffered labels every `FEEDBACK_EVERY`, off the
/// request path.
async fn report_labels(ctx: Rc<Ctx>) {
    if ctx.model.as_ref().is_none_or(|m| !m.traffic.has_labels()) {
        return;
    }
    let mut tick = tokio::time::interval(model_traffic::FEEDBACK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        flush_labels(&ctx).await;
    }
}

async fn flush_labels(ctx: &Ctx) {
    let Some(m) = &ctx.model else { return };
    let tally = model_traffic::flush(&m.http, &m.url, &m.traffic, &m.buffer).await;
    let mut recs = ctx.recorders.borrow_mut();
    for (phase, sent, lost) in tally {
        if let Some(r) = recs.get_mut(phase) {
            r.model.feedback_sent += sent;
            r.model.feedback_lost += lost;
        }
    }
}

async fn open_phase(ctx: &Rc<Ctx>, spec: &ShardSpec, phase: usize, start: Instant) {
    let p = &spec.plan.phases[phase];
    let pacer = Pacer::new(p.rate, p.duration);
    let mut n = spec.index as u64;
    while let Some(offset) = pacer.offset(n) {
        let due = start + offset;
        sleep_until(due).await;
        ctx.recorders.borrow_mut()[phase].scheduled += 1;
        if ctx.in_flight.get() >= spec.cap {
            ctx.recorders.borrow_mut()[phase].on_drop();
        } else {
            ctx.in_flight.set(ctx.in_flight.get() + 1);
            let ctx = ctx.clone();
            tokio::task::spawn_local(async move {
                let mut slot = ctx.idle.borrow_mut().pop();
                one(&ctx, &mut slot, phase, n, due, start).await;
                if let Some(conn) = slot {
                    ctx.idle.borrow_mut().push(conn);
                }
                ctx.in_flight.set(ctx.in_flight.get().saturating_sub(1));
            });
        }
        n += spec.shards as u64;
    }
}

async fn closed_worker(
    ctx: Rc<Ctx>,
    phase: usize,
    start: Instant,
    end: Instant,
    think: Duration,
    counters: Arc<Vec<AtomicU64>>,
) {
    let mut slot = ctx.idle.borrow_mut().pop();
    while Instant::now() < end {
        let n = counters[phase].fetch_add(1, Relaxed);
        ctx.recorders.borrow_mut()[phase].scheduled += 1;
        // In closed mode the intended send time is the actual one.
        ctx.in_flight.set(ctx.in_flight.get() + 1);
        one(&ctx, &mut slot, phase, n, Instant::now(), start).await;
        ctx.in_flight.set(ctx.in_flight.get().saturating_sub(1));
        if !think.is_zero() {
            sleep_until((Instant::now() + think).min(end)).await;
        }
    }
    if let Some(conn) = slot {
        ctx.idle.borrow_mut().push(conn);
    }
}

/// Request `n` of `phase`, intended at `intended`: fault decision, send,
/// record. The one request path both modes share; callers account for it in
/// `in_flight` (the open-loop scheduler must do so before the task runs, or a
/// burst of overdue sends could overshoot the bound).
async fn one(
    ctx: &Ctx,
    slot: &mut Option<Conn>,
    phase: usize,
    n: u64,
    intended: Instant,
    start: Instant,
) {
    let decision = {
        let mut faults = ctx.faults.borrow_mut();
        let f = &mut faults[phase];
        (!f.is_empty()).then(|| f.decide(n))
    };
    let (error, delay) = decision
        .as_ref()
        .map_or((false, false), |d| (d.error, d.delay.is_some()));
    let header = decision
        .and_then(|d| d.header)
        .map(|h| (&ctx.fault_header, h));
    let pick = ctx
        .model
        .as_ref()
        .map(|m| m.traffic.pick(phase, n, ctx.target.body_count()));
    let extra = client::Extra {
        body: pick.as_ref().and_then(|p| p.body.clone()),
        id_header: ctx
            .model
            .as_ref()
            .filter(|_| pick.as_ref().is_some_and(|p| p.label.is_some()))
            .map(|m| m.traffic.id_header.clone()),
    };
    let sent_at = Instant::now();
    ctx.recorders.borrow_mut()[phase].on_send(
        sent_at.saturating_duration_since(start),
        error,
        delay,
    );
    let (outcome, id) = client::exchange(&ctx.target, slot, n, header, extra).await;
    let now = Instant::now();
    let mut recs = ctx.recorders.borrow_mut();
    let rec = &mut recs[phase];
    rec.on_done(
        now.saturating_duration_since(start),
        outcome,
        now.saturating_duration_since(intended),
        now.saturating_duration_since(sent_at),
    );
    if let (Some(p), Some(m)) = (pick, &ctx.model) {
        rec.model.drifted += u64::from(p.drifted);
        if let (Some(label), Some(id)) = (p.label, id) {
            // The service logged the prediction somewhere between send and
            // response: the midpoint halves the error at window edges.
            let half = now.saturating_duration_since(sent_at) / 2;
            rec.model.samples.push(TruthSample {
                at_ms: unix_ms(SystemTime::now() - half),
                label,
                expected: p.expected,
            });
            if !m.buffer.push(phase, id, label) {
                rec.model.feedback_lost += 1;
            }
        }
    }
}

fn totals(ctx: &Ctx) -> Counts {
    let recs = ctx.recorders.borrow();
    let mut c = Counts::default();
    for r in recs.iter() {
        let responses = r.responses();
        c.sent += r.sent;
        c.completed += responses + r.connection_errors + r.timeouts;
        c.ok += r.ok();
        c.errors_5xx += r.server_errors();
        c.dropped += r.dropped;
        c.failed += r.connection_errors + r.timeouts;
    }
    c
}

fn publish_once(ctx: &Ctx, live: &LiveStats) {
    let now = totals(ctx);
    live.add(&now.minus(&ctx.published.get()));
    ctx.published.set(now);
}

async fn publish(ctx: Rc<Ctx>, t0: Instant, offsets: Vec<Duration>, live: Arc<LiveStats>) {
    let mut tick = tokio::time::interval(LIVE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        publish_once(&ctx, &live);
        let since = Instant::now().saturating_duration_since(t0);
        let Some(phase) = offsets.iter().rposition(|&o| o <= since) else {
            continue;
        };
        let in_phase = since.saturating_sub(offsets[phase]);
        // The last complete second: the current one is still filling.
        if let Some(prev) = in_phase.checked_sub(Duration::from_secs(1)) {
            let p90 = ctx.recorders.borrow()[phase].second_p90_us(prev);
            if p90 > 0 {
                live.set_p90_us(p90);
            }
        }
    }
}
