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
use super::model::{self as model_traffic, FeedbackBuffer, ModelTraffic, Reporter};
use super::pacer::{Pacer, batch_budget, peak_rate};
use super::pool::Pool;
use super::recorder::{Outcome, Recorder};
use super::slice::Slice;
use super::timer::{PacerKind, Timer};
use crate::fault_protocol;
use crate::plan::{HttpVersion, LoadMode, Plan};
use crate::record::{GeneratorInfo, RunRecord, TransportRecord, TruthSample};
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
    /// The process's slice of the global schedule (`load --shard`).
    slice: Slice,
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

/// What load threads measured, per phase: one thread's, or several merged
/// (all threads of a process, all processes of a sharded run).
#[derive(Debug, Clone)]
pub struct Part {
    pub recorders: Vec<Recorder>,
    /// The timer that paced the open-loop sends (the fallback's if any
    /// thread fell back).
    pub pacer: PacerKind,
    pub transport: TransportRecord,
    /// Phases started.
    pub reached: usize,
    pub cancelled_at: Option<SystemTime>,
    /// Load threads merged into this part.
    pub threads: usize,
}

/// Shard-local state shared by its tasks (single thread: `Rc` + `RefCell`,
/// never borrowed across an await).
struct Ctx {
    client: Client,
    fault_header: HeaderName,
    faults: RefCell<Vec<PhaseFaults>>,
    recorders: RefCell<Vec<Recorder>>,
    pool: Pool,
    in_flight: Cell<usize>,
    /// Per-phase exported cells (`--metrics-listen`), else None.
    cells: Option<Vec<Arc<PhaseCells>>>,
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
/// wake-ups (each shard wakes for its own share of the schedule). Measured
/// at 15,000 rps against nginx on 2 cores: one shard had the lower lag
/// (p99 90–100 µs against 113–117 µs for two, which share both cores with
/// the target) at 10 % more CPU per request; up to 20,000 rps one shard
/// batches its wakes (`pacer::batch_budget`) and stays under half a core.
const RATE_PER_SHARD: f64 = 20_000.0;

/// Open-loop shards a process sending `rate` requests/s starts, before the
/// core count and `max_in_flight` cap them.
pub(super) fn shards_for_rate(rate: f64) -> usize {
    (rate / RATE_PER_SHARD).ceil().max(1.0) as usize
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

fn shard_count(plan: &Plan, slice: Slice) -> usize {
    let limit = match plan.load.mode {
        LoadMode::Open => {
            let peak = plan
                .phases
                .iter()
                .map(|p| peak_rate(p.rate) / slice.count as f64)
                .fold(0.0, f64::max);
            plan.load.max_in_flight.get().min(shards_for_rate(peak))
        }
        LoadMode::Closed { concurrency, .. } => plan
            .phases
            .iter()
            .map(|p| slice.share_usize(p.concurrency.unwrap_or(concurrency).get() as usize))
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
    let sys0 = SystemTime::now() + START_LEAD;
    let part = run_slice(plan, target, live, cancel, Slice::WHOLE, sys0).await?;
    Ok(finish(plan, sys0, part, Slice::WHOLE))
}

/// Sends `slice`'s share of the plan's schedule, which starts at `start`
/// (wall clock; a start already past is caught up, as an open loop must),
/// and returns what all load threads measured, merged.
pub async fn run_slice(
    plan: &Plan,
    target: Target,
    live: Arc<LiveStats>,
    cancel: CancellationToken,
    slice: Slice,
    start: SystemTime,
) -> Result<Part, LoadError> {
    let model = match ModelTraffic::prepare(plan).map_err(LoadError::Model)? {
        Some(t) => {
            let url = format!(
                "{}{}",
                target.base_url().trim_end_matches('/'),
                model_traffic::FEEDBACK_PATH
            );
            let url = reqwest::Url::parse(&url).map_err(|e| LoadError::Model(e.to_string()))?;
            Some((Arc::new(t), url))
        }
        None => None,
    };
    if plan.phases.is_empty() {
        return Ok(Part {
            recorders: Vec::new(),
            pacer: PacerKind::SleepUntil,
            transport: Client::new(target, 0, 1).record(),
            reached: 0,
            cancelled_at: None,
            threads: 0,
        });
    }
    let mut shards = shard_count(plan, slice);
    if target.version == HttpVersion::Http2 && target.keep_alive {
        // Each load thread owns at least one HTTP/2 connection.
        shards = shards.min(client::h2_connections(&target, shards));
    }
    let counters: Arc<Vec<AtomicU64>> =
        Arc::new(plan.phases.iter().map(|_| AtomicU64::new(0)).collect());
    let sys0 = start;
    let (now, sys_now) = (Instant::now(), SystemTime::now());
    let t0 = match start.duration_since(sys_now) {
        Ok(ahead) => now + ahead,
        Err(late) => now.checked_sub(late.duration()).unwrap_or(now),
    };
    live.set_phase(0, unix_ms(sys0));

    let mut receivers = Vec::with_capacity(shards);
    for index in 0..shards {
        let spec = ShardSpec {
            index,
            shards,
            slice,
            plan: plan.clone(),
            target: target.clone(),
            t0,
            sys0,
            cap: share(
                slice.share_usize(plan.load.max_in_flight.get()),
                shards,
                index,
            )
            .max(1),
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
    Ok(combine(results))
}

/// Merges parts (load threads, or whole processes) phase by phase.
pub fn combine(results: Vec<Part>) -> Part {
    // One fallen-back thread makes the run's pacing the fallback's.
    let pacer = if results.iter().all(|r| r.pacer == PacerKind::Timerfd) {
        PacerKind::Timerfd
    } else {
        PacerKind::SleepUntil
    };
    let reached = results.iter().map(|r| r.reached).max().unwrap_or(0);
    let cancelled_at = results.iter().filter_map(|r| r.cancelled_at).min();
    let threads = results.iter().map(|r| r.threads).sum();
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
    Part {
        // A phase no part recorded cannot follow one that was (each part
        // records every phase it reached).
        recorders: merged.into_iter().map_while(|r| r).collect(),
        pacer,
        transport,
        reached,
        cancelled_at,
        threads,
    }
}

/// The run's record from the merged part of `slice` (the whole schedule
/// once every process's part is merged): phase windows on the absolute
/// timeline from `sys0`, and each phase's planned count of the slice.
pub fn finish(plan: &Plan, sys0: SystemTime, part: Part, slice: Slice) -> RunRecord {
    let offsets = phase_offsets(plan);
    let generator = GeneratorInfo {
        pacer: matches!(plan.load.mode, LoadMode::Open).then(|| part.pacer.as_str().to_string()),
        shards: part.threads,
        cores: cores(),
        missing_shards: Vec::new(),
    };
    let Part {
        recorders,
        transport,
        reached,
        cancelled_at,
        ..
    } = part;
    // Zipped with the plan: a record never holds more phases than it has.
    let phases = (recorders.into_iter().zip(&plan.phases).zip(offsets))
        .enumerate()
        .map(|(i, ((rec, phase), offset))| {
            let start = sys0 + offset;
            let planned_end = start + phase.duration;
            let end = match cancelled_at {
                Some(c) if i + 1 == reached => c.clamp(start, planned_end),
                _ => planned_end,
            };
            let mut record = rec.into_record(phase.name.clone(), start, end);
            if matches!(plan.load.mode, LoadMode::Open) {
                let span = end.duration_since(start).unwrap_or_default();
                let all = Pacer::new(phase.rate, phase.duration).count_until(span);
                record.planned = Some(slice.share_of(all));
            }
            record
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
fn run_shard(spec: ShardSpec, live: Arc<LiveStats>, cancel: CancellationToken) -> Option<Part> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let local = tokio::task::LocalSet::new();
    let names: Vec<&str> = spec.plan.phases.iter().map(|p| p.name.as_str()).collect();
    let cells = live.generator().map(|g| g.cells(spec.index, &names));
    let reporter = match &spec.model {
        Some((traffic, url)) => Some(Reporter {
            traffic: traffic.clone(),
            buffer: Rc::new(FeedbackBuffer::default()),
            http: model_traffic::feedback_client(&spec.plan.transport.tls)?,
            url: url.clone(),
        }),
        None => None,
    };
    let ctx = Rc::new(Ctx {
        client: Client::new(spec.target.clone(), spec.index, spec.shards).in_local_set(),
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
                .map(|p| {
                    let mut r = Recorder::new(p.duration);
                    if let Some(m) = &reporter {
                        r.model = m.traffic.truth();
                    }
                    r
                })
                .collect(),
        ),
        pool: Pool::new(spec.target.version == HttpVersion::Http1 && spec.target.keep_alive),
        in_flight: Cell::new(0),
        cells,
        published: Cell::new(Counts::default()),
        model: reporter,
    });
    let (reached, cancelled_at, pacer) =
        local.block_on(&rt, drive(ctx.clone(), &spec, live, cancel));
    // Abandoned requests hold clones of `ctx`; dropping them first frees it.
    drop(local);
    let recorders = std::mem::take(&mut *ctx.recorders.borrow_mut());
    Some(Part {
        recorders,
        pacer,
        transport: ctx.client.record(),
        reached,
        cancelled_at,
        threads: 1,
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
    let reporter = tokio::task::spawn_local(report_labels(ctx.clone()));
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
                    let c = spec.slice.share_usize(c);
                    for _ in 0..share(c, spec.shards, spec.index) {
                        let counter = spec.counters.clone();
                        tokio::task::spawn_local(closed_worker(
                            ctx.clone(),
                            i,
                            (start, end),
                            think_time,
                            counter,
                            spec.slice,
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
    reporter.abort();
    if cancelled_at.is_none() {
        // The last labels still count; the client's timeout bounds this.
        flush_labels(&ctx).await;
    }
    (reached, cancelled_at, timer.kind())
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

async fn open_phase(
    ctx: &Rc<Ctx>,
    spec: &ShardSpec,
    phase: usize,
    start: Instant,
    timer: &mut Timer,
) {
    let p = &spec.plan.phases[phase];
    let pacer = Pacer::new(p.rate, p.duration);
    let (mut n, stride) = spec.slice.thread_numbers(spec.index, spec.shards);
    let budget = batch_budget(peak_rate(p.rate) / stride as f64);
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
        // The scheduler's lateness ends here; waiting for a connection is
        // the target's slowness (see `pool`) and counts in the latency.
        let released = Instant::now();
        let deadline = released + ctx.client.target.timeout;
        let mut slot = ctx.pool.acquire(&ctx.client, deadline).await;
        one(&ctx, &mut slot, phase, n, Some((due, released)), start).await;
        ctx.pool.release(slot);
        ctx.in_flight.set(ctx.in_flight.get().saturating_sub(1));
    });
}

async fn closed_worker(
    ctx: Rc<Ctx>,
    phase: usize,
    (start, end): (Instant, Instant),
    think: Duration,
    counters: Arc<Vec<AtomicU64>>,
    slice: Slice,
) {
    let mut slot = ctx.pool.take_idle();
    while Instant::now() < end {
        let n = slice.global(counters[phase].fetch_add(1, Relaxed));
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
    ctx.pool.release(slot);
}

/// Request `n` of `phase`, `paced` = (intended, released by the scheduler)
/// in open loop (closed loop has no schedule, so the actual send is the
/// intended one and there is no lag):
/// fault decision, send, record. The one request path both modes share;
/// callers account for it in
/// `in_flight` (the open-loop scheduler must do so before the task runs, or a
/// burst of overdue sends could overshoot the bound).
async fn one(
    ctx: &Ctx,
    slot: &mut Option<Conn>,
    phase: usize,
    n: u64,
    paced: Option<(Instant, Instant)>,
    start: Instant,
) {
    let intended = paced.map(|(due, _)| due);
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
        .map(|m| m.traffic.pick(phase, n, ctx.client.target.body_count()));
    let extra = client::Extra {
        body: pick.as_ref().and_then(|p| p.body.clone()),
        id_header: ctx
            .model
            .as_ref()
            .filter(|_| pick.as_ref().is_some_and(|p| p.label.is_some()))
            .map(|m| m.traffic.id_header.clone()),
    };
    let sent_at = Instant::now();
    let lag = paced.map(|(due, released)| released.saturating_duration_since(due));
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
    let reply = ctx.client.exchange(slot, n, header, extra).await;
    let (outcome, acknowledged) = (reply.outcome, reply.acknowledged);
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
    if let (Some(p), Some(m)) = (pick, &ctx.model) {
        rec.model.drifted += u64::from(p.drifted);
        if let (Some(label), Some(id)) = (p.label, reply.prediction_id) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn open(rate: f64) -> Plan {
        Plan::single_phase("p", LoadMode::Open, rate, Duration::from_secs(1))
    }

    /// One shard per 20,000 rps of peak rate (per process of a sharded
    /// run), capped by the cores and by `max_in_flight`; closed loop: one
    /// per worker, capped by the cores.
    #[test]
    fn shard_count_table() {
        let c = cores();
        let half = Slice::new(0, 2).unwrap();
        let mut capped = open(60_000.0);
        capped.load.max_in_flight = NonZeroUsize::new(1).unwrap();
        let closed = Plan::single_phase(
            "p",
            LoadMode::Closed {
                concurrency: std::num::NonZeroU32::new(50).unwrap(),
                think_time: Duration::ZERO,
            },
            0.0,
            Duration::from_secs(1),
        );
        let cases: Vec<(&str, Plan, Slice, usize)> = vec![
            ("100 rps", open(100.0), Slice::WHOLE, 1),
            ("20k rps, batched", open(20_000.0), Slice::WHOLE, 1),
            ("25k rps", open(25_000.0), Slice::WHOLE, c.min(2)),
            ("40k rps, half of it here", open(40_000.0), half, 1),
            ("60k rps", open(60_000.0), Slice::WHOLE, c.min(3)),
            ("max_in_flight 1", capped, Slice::WHOLE, 1),
            ("closed, 50 workers", closed, Slice::WHOLE, c.min(50)),
        ];
        for (what, plan, slice, want) in cases {
            assert_eq!(shard_count(&plan, slice), want, "{what}");
        }
    }
}
