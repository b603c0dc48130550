//! Plain-text per-phase table of a run record, for `slocheck load`'s output.

use std::fmt::Write as _;

use crate::plan::{LoadMode, Plan};
use crate::record::{PhaseRecord, RunRecord};

const HEADER: [&str; 15] = [
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
    "p50/p90/p99 corr",
    "p50/p90/p99 svc",
];

fn quantiles_ms(h: &hdrhistogram::Histogram<u64>) -> String {
    if h.is_empty() {
        return "-".to_string();
    }
    let q = |v: f64| h.value_at_quantile(v) as f64 / 1000.0;
    format!("{:.1}/{:.1}/{:.1}ms", q(0.5), q(0.9), q(0.99))
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
        quantiles_ms(&p.latency_corrected),
        quantiles_ms(&p.latency_service),
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
                .map(|r| r[c].len())
                .chain([header[c].len()])
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::recorder::{Outcome, Recorder};
    use std::time::{Duration, SystemTime};

    #[test]
    fn table_lists_every_phase() {
        let ms = Duration::from_millis;
        let mut r = Recorder::new(Duration::from_secs(2));
        for i in 0..10 {
            r.scheduled += 1;
            r.on_send(ms(i * 100), i == 0, false);
            let status = if i == 0 { 503 } else { 200 };
            r.on_done(ms(i * 100 + 5), Outcome::Response(status), ms(5 + i), ms(5));
        }
        r.on_drop();
        let t = SystemTime::UNIX_EPOCH;
        let rec = RunRecord {
            started_at: t,
            ended_at: t + Duration::from_secs(2),
            phases: vec![r.into_record("baseline".into(), t, t + Duration::from_secs(2))],
            aborted: true,
            transport: Default::default(),
        };
        let table = phase_summary_table(&rec);
        insta::assert_snapshot!(table, @r"
        phase      dur  sent  rps  target  dropped  2xx  4xx  5xx  conn_err  timeout  inj_err  inj_delay  p50/p90/p99 corr  p50/p90/p99 svc
        baseline  2.0s    10  5.0     5.0        1    9    0    1         0        0        1          0   9.0/13.0/14.0ms    5.0/5.0/5.0ms
        (run aborted: the last phase is partial)
        ");
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("phase"), "{table}");
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            &cells[..13],
            [
                "baseline", "2.0s", "10", "5.0", "5.0", "1", "9", "0", "1", "0", "0", "1", "0"
            ]
        );
        assert!(lines[2].contains("aborted"));
    }
}
