//! The generator's own error, end to end against a real local HTTP server on
//! 127.0.0.1:0: an open-loop run records the scheduler lag of every send and
//! names its pacer; the report (JSON and terminal) and `slocheck load`'s
//! table carry lag p50/p99/max per phase; the `--metrics-listen` exporter
//! serves the same counts over HTTP. No bound on the lag itself: the machine
//! may be busy.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use slocheck::load::metrics::GeneratorMetrics;
use slocheck::load::{LiveStats, exporter, phase_summary_table, run};
use slocheck::plan::*;
use slocheck::record::RunRecord;
use slocheck::report::{self, Report, RunData, RunStatus};
use tokio_util::sync::CancellationToken;

async fn server() -> reqwest::Url {
    let app = Router::new().fallback(|| async { "ok" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn plan(mode: LoadMode) -> Plan {
    let mut plan = Plan::single_phase("baseline", mode, 200.0, Duration::from_millis(1500));
    let mut spike = plan.phases[0].clone();
    spike.name = "spike".into();
    spike.rate = Rate::Ramp {
        from: 200.0,
        to: 600.0,
    };
    plan.phases.push(spike);
    plan
}

async fn go(plan: &Plan, generator: &Arc<GeneratorMetrics>) -> RunRecord {
    let url = server().await;
    let live = Arc::new(LiveStats::default().with_generator(Some(generator)));
    run(plan, &url, live, CancellationToken::new())
        .await
        .expect("load run")
}

fn report_of(plan: &Plan, record: &RunRecord) -> Report {
    let run = RunData {
        record: Some(record),
        ..RunData::default()
    };
    Report::new(plan, &run, RunStatus::Passed, 0, None)
}

/// Sum over shards of one exported sample of `phase`.
fn exported(text: &str, metric: &str, phase: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(metric) && l.contains(&format!("phase=\"{phase}\"")))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_records_lag_of_every_send_and_reports_it() {
    let plan = plan(LoadMode::Open);
    let generator = Arc::new(GeneratorMetrics::new());
    let rec = go(&plan, &generator).await;
    assert_eq!(rec.phases.len(), 2);
    if cfg!(target_os = "linux") && std::env::var("SLOCHECK_PACER").is_err() {
        assert_eq!(rec.generator.pacer.as_deref(), Some("timerfd"));
    }
    assert!(rec.generator.shards >= 1 && rec.generator.cores >= 1);
    for p in &rec.phases {
        assert!(p.sent > 0, "{}: nothing sent", p.name);
        assert_eq!(
            p.scheduler_lag.len(),
            p.sent,
            "{}: one lag per send",
            p.name
        );
        assert_eq!(p.planned.map(|n| n >= p.sent), Some(true), "{}", p.name);
        let (p50, p99) = (
            p.scheduler_lag.value_at_quantile(0.5),
            p.scheduler_lag.value_at_quantile(0.99),
        );
        assert!(p50 <= p99 && p99 <= p.scheduler_lag.max(), "{}", p.name);
    }

    // report.json: lag_us per phase, equal to the record's histogram.
    let r = report_of(&plan, &rec);
    let mut json = Vec::new();
    report::json::write(&r, &mut json).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    for (i, p) in rec.phases.iter().enumerate() {
        let lag = &v["phases"][i]["lag_us"];
        assert_eq!(lag["count"], p.sent, "{lag}");
        assert_eq!(lag["p99"], p.scheduler_lag.value_at_quantile(0.99), "{lag}");
        assert_eq!(lag["max"], p.scheduler_lag.max(), "{lag}");
        assert!(lag["p50"].is_u64(), "{lag}");
    }
    assert_eq!(
        v["generator"]["pacer"],
        serde_json::json!(rec.generator.pacer)
    );
    let warnings = v["generator"]["warnings"].as_array().expect("warnings");
    let high = rec
        .phases
        .iter()
        .filter(|p| p.scheduler_lag.value_at_quantile(0.99) > 100)
        .count();
    assert_eq!(
        warnings.len(),
        high,
        "one warning per phase over 100 µs: {warnings:?}"
    );

    // The terminal summary prints the lag line of each phase and the pacer.
    let mut out = Vec::new();
    report::terminal::write(&r, &mut out, false).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches("scheduler lag p50").count(), 2, "{text}");
    assert!(text.contains("pacer "), "{text}");
    // So does `slocheck load`'s table.
    let table = phase_summary_table(&rec);
    assert!(table.contains("lag p50/p99/max"), "{table}");
    assert!(table.contains("pacer: "), "{table}");

    // The exporter, over real HTTP, serves what the record counted.
    let stop = CancellationToken::new();
    let addr = exporter::serve(
        "127.0.0.1:0".parse().unwrap(),
        generator.clone(),
        stop.clone(),
    )
    .await
    .expect("exporter");
    let body = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .unwrap();
    stop.cancel();
    for p in &rec.phases {
        let sent = exported(&body, "slocheck_generator_requests_sent_total", &p.name);
        let lags = exported(
            &body,
            "slocheck_generator_scheduler_lag_seconds_count",
            &p.name,
        );
        let scheduled = exported(
            &body,
            "slocheck_generator_requests_scheduled_total",
            &p.name,
        );
        assert_eq!(sent, p.sent as f64, "{}:\n{body}", p.name);
        assert_eq!(lags, p.sent as f64, "{}", p.name);
        assert_eq!(scheduled, p.scheduled as f64, "{}", p.name);
        let latency = exported(
            &body,
            "slocheck_generator_client_latency_seconds_count",
            &p.name,
        );
        assert_eq!(latency, p.responses() as f64, "{}", p.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_has_no_schedule_hence_no_lag() {
    let plan = plan(LoadMode::Closed {
        concurrency: std::num::NonZeroU32::new(2).unwrap(),
        think_time: Duration::from_millis(20),
    });
    let generator = Arc::new(GeneratorMetrics::new());
    let rec = go(&plan, &generator).await;
    assert_eq!(rec.generator.pacer, None);
    let r = report_of(&plan, &rec);
    for (p, pr) in rec.phases.iter().zip(&r.phases) {
        assert!(p.sent > 0);
        assert!(p.scheduler_lag.is_empty(), "{}", p.name);
        assert_eq!(p.planned, None);
        assert_eq!((pr.lag_us.count, pr.lag_us.p99), (0, None));
    }
    let g = r.generator.expect("generator section");
    assert!(g.warnings.is_empty(), "{:?}", g.warnings);
    // The exporter still counts sends in closed mode.
    let text = exporter::encode(&generator).unwrap();
    let sent: f64 = rec
        .phases
        .iter()
        .map(|p| exported(&text, "slocheck_generator_requests_sent_total", &p.name))
        .sum();
    assert_eq!(sent, rec.phases.iter().map(|p| p.sent).sum::<u64>() as f64);
}
