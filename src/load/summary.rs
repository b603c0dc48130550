//! Plain-text per-phase table of a run record, for `slocheck load`'s output,
//! and the warnings a run prints when the generator's own delay is large.

use std::fmt::Write as _;

use super::engine::shards_for_rate;
use super::pacer::{BATCH_ABOVE_RPS, batch_budget};
use crate::plan::{LoadMode, Plan};
use crate::record::{PhaseRecord, RunRecord};

const HEADER: [&str; 17] = [
    "phase",
    "dur",
    "sent",
    "rps",
    "target",
    "dropped",
    "2xx",
    "4xx",
    "5xx",
    "conn_err",
    "timeout",
    "inj_err",
    "inj_delay",
    "fault_ack",
    "p50/p90/p99 corr",
    "p50/p90/p99 svc",
    "lag p50/p99/max",
];

/// Scheduler-lag P99 above which latency figures carry a visible share of
/// generator delay, and the run says so.
pub const LAG_WARN_P99_US: u64 = 100;

/// One warning per phase whose scheduler-lag P99 exceeds 100 µs, with the
/// likely reason: the fallback pacer, fewer shards than the rate calls for
/// (capped by `max_in_flight`), wake batching by design, or overloaded cores.
pub fn lag_warnings(r: &RunRecord) -> Vec<String> {
    let g = &r.generator;
    r.phases
        .iter()
        .filter(|p| !p.scheduler_lag.is_empty())
        .filter_map(|p| {
            let p99 = p.scheduler_lag.value_at_quantile(0.99);
            if p99 <= LAG_WARN_P99_US {
                return None;
            }
            let shards = g.shards.max(1);
            let per_shard = p.achieved_rps() / shards as f64;
            // The shards the engine would have started for this rate.
            let wanted = shards_for_rate(p.achieved_rps()).min(g.cores.max(1));
            // Batching explains a tail near its budget, not far beyond it.
            let budget_us = batch_budget(per_shard).as_micros() as u64;
            let batching = budget_us > 0;
            let why = if g.pacer.as_deref() == Some("sleep_until") {
                "the portable sleep_until pacer ran (≈ 1 ms granularity: no timerfd here, or SLOCHECK_PACER=sleep_until)".to_string()
            } else if shards < wanted {
                format!(
                    "too few shards: {shards} shard(s) on {} cores sent {per_shard:.0} rps each (raise load.max_in_flight)",
                    g.cores
                )
            } else if batching && p99 <= 2 * (budget_us + LAG_WARN_P99_US) {
                format!(
                    "wake batching: above {BATCH_ABOVE_RPS:.0} rps per shard each wake sends the requests due within {budget_us} µs, so each leaves up to that late by design ({per_shard:.0} rps per shard; more cores spread the rate)"
                )
            } else {
                format!(
                    "overloaded cores: {shards} shard(s) share {} core(s) with the target and other processes (give the generator its own cores, or run the target elsewhere){}",
                    g.cores,
                    if batching {
                        format!("; wake batching adds up to {budget_us} µs of it")
                    } else {
                        String::new()
                    }
                )
            };
            Some(format!(
                "scheduler lag P99 in \"{}\" is {p99} µs (> {LAG_WARN_P99_US} µs): its latency figures include up to that much generator delay; likely cause: {why}",
                p.name
            ))
        })
        .collect()
}

fn lag_us(h: &hdrhistogram::Histogram<u64>) -> String {
    if h.is_empty() {
        return "-".to_string();
    }
    format!(
        "{}/{}/{}µs",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.max()
    )
}

fn quantiles_ms(h: &hdrhistogram::Histogram<u64>) -> String {
    if h.is_empty() {
        return "-".to_string();
    }
    let q = |v: f64| h.value_at_quantile(v) as f64 / 1000.0;
    format!("{:.1}/{:.1}/{:.1}ms", q(0.5), q(0.9), q(0.99))
}

/// `acknowledged/requested`, `-` when the phase asked for no fault.
fn fault_ack(p: &PhaseRecord) -> String {
    if p.faults_requested == 0 {
        "-".to_string()
    } else {
        format!("{}/{}", p.faults_acknowledged, p.faults_requested)
    }
}

fn row(p: &PhaseRecord, target: &str) -> Vec<String> {
    vec![
        p.name.clone(),
        format!("{:.1}s", p.duration_secs()),
        p.sent.to_string(),
        format!("{:.1}", p.achieved_rps()),
        target.to_string(),
        p.dropped.to_string(),
        p.status_classes[1].to_string(),
        p.status_classes[3].to_string(),
        p.status_classes[4].to_string(),
        p.connection_errors.to_string(),
        p.timeouts.to_string(),
        p.injected_errors.to_string(),
        p.injected_delays.to_string(),
        fault_ack(p),
        quantiles_ms(&p.latency_corrected),
        quantiles_ms(&p.latency_service),
        lag_us(&p.scheduler_lag),
    ]
}

/// The table with the target rate taken from the plan (open mode: the mean
/// scheduled rate; closed mode: the number of workers).
pub fn phase_summary_table_for(plan: &Plan, record: &RunRecord) -> String {
    let targets = record
        .phases
        .iter()
        .map(|p| {
            let Some(pp) = plan.phases.iter().find(|pp| pp.name == p.name) else {
                return "-".to_string();
            };
            match plan.load.mode {
                LoadMode::Open => format!(
                    "{:.1}",
                    pp.rate.expected_count(pp.duration) / pp.duration.as_secs_f64().max(1e-9)
                ),
                LoadMode::Closed { concurrency, .. } => {
                    format!("c={}", pp.concurrency.unwrap_or(concurrency))
                }
            }
        })
        .collect::<Vec<_>>();
    render(record, &targets)
}

/// The table from the record alone; the target column is the scheduled
/// count over the phase's duration (the open-loop target rate).
pub fn phase_summary_table(record: &RunRecord) -> String {
    let targets = record
        .phases
        .iter()
        .map(|p| {
            let s = p.duration_secs();
            if s > 0.0 {
                format!("{:.1}", p.scheduled as f64 / s)
            } else {
                "-".to_string()
            }
        })
        .collect::<Vec<_>>();
    render(record, &targets)
}

fn render(record: &RunRecord, targets: &[String]) -> String {
    let header: Vec<String> = HEADER.iter().map(|s| s.to_string()).collect();
    let rows: Vec<Vec<String>> = record
        .phases
        .iter()
        .zip(targets)
        .map(|(p, t)| row(p, t))
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in std::iter::once(&header).chain(rows.iter()) {
        let line = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if i == 0 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ");
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if record.aborted {
        out.push_str("(run aborted: the last phase is partial)\n");
    }
    if let Some(pacer) = &record.generator.pacer {
        let _ = writeln!(
            out,
            "pacer: {pacer}, {} shard(s) on {} core(s)",
            record.generator.shards, record.generator.cores
        );
    }
    for w in lag_warnings(record) {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::recorder::{Outcome, Recorder};
    use crate::record::GeneratorInfo;
    use std::time::{Duration, SystemTime};

    #[test]
    fn table_lists_every_phase() {
        let ms = Duration::from_millis;
        let mut r = Recorder::new(Duration::from_secs(2));
        for i in 0..10 {
            r.scheduled += 1;
            r.on_send(ms(i * 100), i == 0, false);
            r.on_lag(Duration::from_micros(20 + i));
            let status = if i == 0 { 503 } else { 200 };
            r.on_done(ms(i * 100 + 5), Outcome::Response(status), ms(5 + i), ms(5));
            if i == 0 {
                r.on_fault_acknowledged();
            }
        }
        r.on_drop();
        let t = SystemTime::UNIX_EPOCH;
        let rec = RunRecord {
            started_at: t,
            ended_at: t + Duration::from_secs(2),
            phases: vec![r.into_record("baseline".into(), t, t + Duration::from_secs(2))],
            aborted: true,
            generator: GeneratorInfo {
                pacer: Some("timerfd".into()),
                shards: 1,
                cores: 2,
                ..Default::default()
            },
            transport: Default::default(),
        };
        let table = phase_summary_table(&rec);
        insta::assert_snapshot!(table, @r"
        phase      dur  sent  rps  target  dropped  2xx  4xx  5xx  conn_err  timeout  inj_err  inj_delay  fault_ack  p50/p90/p99 corr  p50/p90/p99 svc  lag p50/p99/max
        baseline  2.0s    10  5.0     5.0        1    9    0    1         0        0        1          0        1/1   9.0/13.0/14.0ms    5.0/5.0/5.0ms       24/29/29µs
        (run aborted: the last phase is partial)
        pacer: timerfd, 1 shard(s) on 2 core(s)
        ");
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("phase"), "{table}");
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            &cells[..14],
            [
                "baseline", "2.0s", "10", "5.0", "5.0", "1", "9", "0", "1", "0", "0", "1", "0",
                "1/1"
            ]
        );
        assert!(lines[2].contains("aborted"));
    }

    fn lagged(name: &str, lags_us: &[u64], sent_per_sec: u64) -> PhaseRecord {
        let mut r = Recorder::new(Duration::from_secs(1));
        for i in 0..sent_per_sec {
            r.on_send(Duration::ZERO, false, false);
            let lag = lags_us[i as usize % lags_us.len()];
            r.on_lag(Duration::from_micros(lag));
        }
        let t = SystemTime::UNIX_EPOCH;
        r.into_record(name.into(), t, t + Duration::from_secs(1))
    }

    #[test]
    fn lag_warnings_table() {
        let timerfd = |shards, cores| GeneratorInfo {
            pacer: Some("timerfd".into()),
            shards,
            cores,
            ..Default::default()
        };
        // (phase lags, rate, generator, expected reason; None = no warning)
        let cases: Vec<(&[u64], u64, GeneratorInfo, Option<&str>)> = vec![
            (&[30, 60], 100, timerfd(1, 2), None),
            (&[100], 100, timerfd(1, 2), None),
            (
                &[30, 400],
                100,
                timerfd(2, 2),
                Some("overloaded cores: 2 shard(s) share 2"),
            ),
            // 45,000 rps calls for 3 shards; max_in_flight allowed 1.
            (
                &[500],
                45_000,
                timerfd(1, 4),
                Some("too few shards: 1 shard(s) on 4 cores"),
            ),
            // One shard is what 9,000 rps calls for: not "too few".
            (
                &[500],
                9_000,
                timerfd(1, 4),
                Some("overloaded cores: 1 shard(s) share 4"),
            ),
            // 20,000 rps on one shard batches its wakes on purpose.
            (
                &[90, 250],
                20_000,
                timerfd(1, 2),
                Some("wake batching: above 15000 rps per shard"),
            ),
            // A tail far past the budget is the cores', batching or not.
            (
                &[90, 20_000],
                20_000,
                timerfd(1, 2),
                Some(
                    "overloaded cores: 1 shard(s) share 2 core(s) with the target and other processes (give the generator its own cores, or run the target elsewhere); wake batching adds up to 100",
                ),
            ),
            (
                &[1_500],
                100,
                GeneratorInfo {
                    pacer: Some("sleep_until".into()),
                    shards: 1,
                    cores: 2,
                    ..Default::default()
                },
                Some("sleep_until pacer ran"),
            ),
        ];
        for (lags, rate, generator, want) in cases {
            let t = SystemTime::UNIX_EPOCH;
            let rec = RunRecord {
                started_at: t,
                ended_at: t,
                phases: vec![lagged("spike", lags, rate)],
                aborted: false,
                generator: generator.clone(),
                transport: Default::default(),
            };
            let w = lag_warnings(&rec);
            match want {
                None => assert!(w.is_empty(), "{lags:?}: {w:?}"),
                Some(reason) => {
                    assert_eq!(w.len(), 1, "{lags:?}: {w:?}");
                    assert!(w[0].contains(reason), "{lags:?} {generator:?}: {}", w[0]);
                    assert!(w[0].contains("\"spike\""), "{}", w[0]);
                    assert!(w[0].contains("include"), "{}", w[0]);
                }
            }
        }
    }
}
