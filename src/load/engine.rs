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
//!
//! Open-loop sends are paced by the shard's own high-resolution timer
//! (`timer`): each wake sends every request that is due by then (catch-up,
//! never skipped) and records how late each left (the scheduler lag).

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

use super::client::{self, Client, ClientError, Target};
use super::connect::Conn;
use super::faults::PhaseFaults;
use super::live::{Counts, LiveStats};
use super::metrics::PhaseCells;
use super::pacer::{Pacer, batch_budget, peak_rate};
use super::recorder::{Outcome, Recorder};
use super::timer::{PacerKind, Timer};
use crate::fault_protocol;
use crate::plan::{HttpVersion, LoadMode, Plan};
use crate::record::{GeneratorInfo, RunRecord, TransportRecord};
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
}

struct ShardResult {
    recorders: Vec<Recorder>,
    /// The timer that paced this shard's open-loop sends.
    pacer: PacerKind,
    transport: TransportRecord,
    /// Phases this shard started.
    reached: usize,
    cancelled_at: Option<SystemTime>,
}

/// Shard-local state shared by its tasks (single thread: `Rc` + `RefCell`,
/// never borrowed across an await).
struct Ctx {
    client: Client,
    fault_header: HeaderName,
    faults: RefCell<Vec<PhaseFaults>>,
    recorders: RefCell<Vec<Recorder>>,
    idle: RefCell<Vec<Conn>>,
    in_flight: Cell<usize>,
    /// Per-phase exported cells (`--metrics-listen`), else None.
    cells: Option<Vec<Arc<PhaseCells>>>,
    /// Counters already added to `LiveStats`.
    published: Cell<Counts>,
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

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

fn shard_count(plan: &Plan) -> usize {
    let limit = match plan.load.mode {
        LoadMode::Open => {
            let peak = plan
                .phases
                .iter()
                .map(|p| peak_rate(p.rate))
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
    cores().min(limit).max(1)
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
    let (target, _skipped) = Target::prepare(base_url, &plan.request, &plan.transport).await?;
    run_prepared(plan, target, live, cancel).await
}

/// `run` with the target already prepared (resolved, preflighted).
pub async fn run_prepared(
    plan: &Plan,
    target: Target,
    live: Arc<LiveStats>,
    cancel: CancellationToken,
) -> Result<RunRecord, LoadError> {
    if plan.phases.is_empty() {
        let now = SystemTime::now();
        return Ok(RunRecord {
            started_at: now,
            ended_at: now,
            phases: Vec::new(),
            aborted: false,
            generator: GeneratorInfo::default(),
            transport: Client::new(target, 0, 1).record(),
        });
    }
    let mut shards = shard_count(plan);
    if target.version == HttpVersion::Http2 && target.keep_alive {
        // Each load thread owns at least one HTTP/2 connection.
        shards = shards.min(client::h2_connections(&target, shards));
    }
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
    let generator = GeneratorInfo {
        // One fallen-back shard makes the run's pacing the fallback's.
        pacer: matches!(plan.load.mode, LoadMode::Open).then(|| {
            let kind = if results.iter().all(|r| r.pacer == PacerKind::Timerfd) {
                PacerKind::Timerfd
            } else {
                PacerKind::SleepUntil
            };
            kind.as_str().to_string()
        }),
        shards: results.len(),
        cores: cores(),
    };
    let reached = results.iter().map(|r| r.reached).max().unwrap_or(0);
    let cancelled_at = results.iter().filter_map(|r| r.cancelled_at).min();
    let mut transport = TransportRecord::default();
    for r in &results {
        transport.merge(&r.transport);
    }
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
            let mut record = rec?.into_record(phase.name.clone(), start, end);
            if matches!(plan.load.mode, LoadMode::Open) {
                let span = end.duration_since(start).unwrap_or_default();
                record.planned = Some(Pacer::new(phase.rate, phase.duration).count_until(span));
            }
            Some(record)
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
        generator,
        transport,
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
    let names: Vec<&str> = spec.plan.phases.iter().map(|p| p.name.as_str()).collect();
    let cells = live.generator().map(|g| g.cells(spec.index, &names));
    let ctx = Rc::new(Ctx {
        client: Client::new(spec.target.clone(), spec.index, spec.shards),
        fault_header: fault_protocol::FAULT_HEADER_NAME,
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
                .map(|p| Recorder::new(p.duration))
                .collect(),
        ),
        idle: RefCell::new(Vec::new()),
        in_flight: Cell::new(0),
        cells,
        published: Cell::new(Counts::default()),
    });
    let (reached, cancelled_at, pacer) =
        local.block_on(&rt, drive(ctx.clone(), &spec, live, cancel));
    // Abandoned requests hold clones of `ctx`; dropping them first frees it.
    drop(local);
    let recorders = std::mem::take(&mut *ctx.recorders.borrow_mut());
    Some(ShardResult {
        recorders,
        pacer,
        transport: ctx.client.record(),
        reached,
        cancelled_at,
    })
}

async fn drive(
    ctx: Rc<Ctx>,
    spec: &ShardSpec,
    live: Arc<LiveStats>,
    cancel: CancellationToken,
) -> (usize, Option<SystemTime>, PacerKind) {
    // Made on the shard's runtime: the timerfd registers with its reactor.
    let mut timer = Timer::new();
    let publisher = tokio::task::spawn_local(publish(
        ctx.clone(),
        spec.t0,
        phase_offsets(&spec.plan),
        live.clone(),
    ));
    let offsets = phase_offsets(&spec.plan);
    let mut reached = 0;
    let mut cancelled_at = None;
    for (i, phase) in spec.plan.phases.iter().enumerate() {
        let start = spec.t0 + offsets[i];
        tokio::select! {
            _ = cancel.cancelled() => { cancelled_at = Some(SystemTime::now()); break; }
            // The pacer's own timer: the first request of a phase is due at its start.
            _ = timer.wait_until(start) => {}
        }
        reached = i + 1;
        if spec.index == 0 {
            live.set_phase(i, unix_ms(spec.sys0 + offsets[i]));
        }
        let end = start + phase.duration;
        let phase_run = async {
            match spec.plan.load.mode {
                LoadMode::Open => open_phase(&ctx, spec, i, start, &mut timer).await,
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
        let drain_until = Instant::now() + ctx.client.target.timeout + DRAIN_GRACE;
        while ctx.in_flight.get() > 0 && Instant::now() < drain_until {
            tokio::select! {
                _ = cancel.cancelled() => { cancelled_at = Some(SystemTime::now()); break; }
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    }
    publisher.abort();
    publish_once(&ctx, &live);
    (reached, cancelled_at, timer.kind())
}

async fn open_phase(
    ctx: &Rc<Ctx>,
    spec: &ShardSpec,
    phase: usize,
    start: Instant,
    timer: &mut Timer,
) {
    let p = &spec.plan.phases[phase];
    let pacer = Pacer::new(p.rate, p.duration);
    let stride = spec.shards as u64;
    let budget = batch_budget(peak_rate(p.rate) / spec.shards as f64);
    let mut n = spec.index as u64;
    while let Some(wake) = pacer.wake_offset(n, stride, budget) {
        timer.wait_until(start + wake).await;
        // Catch up: everything due by now leaves on this wake, however late
        // the wake was; nothing is skipped and nothing leaves early.
        let since = Instant::now().saturating_duration_since(start);
        while let Some(offset) = pacer.offset(n).filter(|&o| o <= since) {
            send_scheduled(ctx, spec.cap, phase, n, start + offset, start);
            n += stride;
        }
    }
}

/// Request `n` is due: spawn it, or count it dropped when the in-flight
/// bound is reached (never waited for: that would close the loop).
fn send_scheduled(ctx: &Rc<Ctx>, cap: usize, phase: usize, n: u64, due: Instant, start: Instant) {
    ctx.recorders.borrow_mut()[phase].scheduled += 1;
    let cells = ctx.cells.as_ref().map(|c| &c[phase]);
    if let Some(c) = cells {
        c.scheduled.fetch_add(1, Relaxed);
    }
    if ctx.in_flight.get() >= cap {
        ctx.recorders.borrow_mut()[phase].on_drop();
        if let Some(c) = cells {
            c.dropped.fetch_add(1, Relaxed);
        }
        return;
    }
    ctx.in_flight.set(ctx.in_flight.get() + 1);
    let ctx = ctx.clone();
    tokio::task::spawn_local(async move {
        let mut slot = ctx.idle.borrow_mut().pop();
        one(&ctx, &mut slot, phase, n, Some(due), start).await;
        if let Some(conn) = slot {
            ctx.idle.borrow_mut().push(conn);
        }
        ctx.in_flight.set(ctx.in_flight.get().saturating_sub(1));
    });
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
        if let Some(c) = &ctx.cells {
            c[phase].scheduled.fetch_add(1, Relaxed);
        }
        ctx.in_flight.set(ctx.in_flight.get() + 1);
        one(&ctx, &mut slot, phase, n, None, start).await;
        ctx.in_flight.set(ctx.in_flight.get().saturating_sub(1));
        if !think.is_zero() {
            sleep_until((Instant::now() + think).min(end)).await;
        }
    }
    if let Some(conn) = slot {
        ctx.idle.borrow_mut().push(conn);
    }
}

/// Request `n` of `phase`, intended at `intended` (open loop; closed loop has
/// no schedule, so the actual send is the intended one and there is no lag):
/// fault decision, send, record. The one request path both modes share;
/// callers account for it in
/// `in_flight` (the open-loop scheduler must do so before the task runs, or a
/// burst of overdue sends could overshoot the bound).
async fn one(
    ctx: &Ctx,
    slot: &mut Option<Conn>,
    phase: usize,
    n: u64,
    intended: Option<Instant>,
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
    let sent_at = Instant::now();
    let lag = intended.map(|i| sent_at.saturating_duration_since(i));
    {
        let mut recs = ctx.recorders.borrow_mut();
        let rec = &mut recs[phase];
        rec.on_send(sent_at.saturating_duration_since(start), error, delay);
        if let Some(lag) = lag {
            rec.on_lag(lag);
        }
    }
    let cells = ctx.cells.as_ref().map(|c| &c[phase]);
    if let Some(c) = cells {
        c.sent.fetch_add(1, Relaxed);
        c.injected_errors.fetch_add(u64::from(error), Relaxed);
        c.injected_delays.fetch_add(u64::from(delay), Relaxed);
        if let Some(lag) = lag {
            c.lag.observe(lag);
        }
    }
    let (outcome, acknowledged) = ctx.client.exchange(slot, n, header).await;
    let now = Instant::now();
    let corrected = now.saturating_duration_since(intended.unwrap_or(sent_at));
    if let Some(c) = cells {
        if let Outcome::Response(_) = outcome {
            c.latency.observe(corrected);
        }
        c.faults_acknowledged
            .fetch_add(u64::from(acknowledged), Relaxed);
    }
    let mut recorders = ctx.recorders.borrow_mut();
    let rec = &mut recorders[phase];
    rec.on_done(
        now.saturating_duration_since(start),
        outcome,
        corrected,
        now.saturating_duration_since(sent_at),
    );
    if acknowledged {
        rec.on_fault_acknowledged();
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
