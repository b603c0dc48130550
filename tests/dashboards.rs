//! The shipped Grafana dashboards: structure, templated datasource, every
//! panel expression valid PromQL after variable substitution, provisioning
//! files that point at them; and, against a real Prometheus scraping the
//! built-in target under load, every panel query returning data.

mod common;

use std::time::{Duration, Instant};

use serde_json::Value;
use slocheck::doctor::{self, DoctorOptions, dashboard};

fn dashboard_json() -> Value {
    let path = common::repo().join("dashboards/ml-service.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read dashboard")).expect("JSON")
}

#[test]
fn dashboard_has_the_seed_panels_on_the_templated_datasource() {
    let d = dashboard_json();
    assert!(d["schemaVersion"].as_u64().expect("schemaVersion") >= 36);
    assert!(d["uid"].is_string() && d["title"].is_string());
    let vars = d["templating"]["list"].as_array().expect("templating");
    let ds = vars
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("datasource variable");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    assert!(vars.iter().any(|v| v["name"] == "job"));

    let panels = d["panels"].as_array().expect("panels");
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for want in [
        "Request rate by status",
        "Latency P50 / P90 / P99",
        "5xx error ratio",
        "HighErrorRate alert state",
        "Requests in flight",
        "Predictions by class",
        "load generator",
        "Generator: intended vs achieved rate",
        "Generator: scheduler lag P50 / P99",
        "Client vs server P90",
    ] {
        assert!(
            titles.contains(&want),
            "missing panel {want:?} in {titles:?}"
        );
    }
    let templated = serde_json::json!({"type": "prometheus", "uid": "${datasource}"});
    let mut ids = Vec::new();
    for p in panels {
        ids.push(p["id"].as_u64().expect("panel id"));
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"], templated, "panel {}", p["title"]);
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {} has no query", p["title"]);
        for t in targets {
            assert_eq!(t["datasource"], templated, "target of {}", p["title"]);
            assert!(t["refId"].is_string() && t["expr"].is_string());
        }
        for k in ["h", "w", "x", "y"] {
            assert!(p["gridPos"][k].is_u64(), "gridPos.{k} of {}", p["title"]);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), panels.len(), "panel ids must be unique");

    // The seed's expressions and the 5 % threshold line.
    let exprs: Vec<String> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    assert!(exprs.iter().any(|e| e.starts_with(
        "histogram_quantile(0.90, sum by (le) (rate(http_request_latency_seconds_bucket"
    )));
    let ratio = panels
        .iter()
        .find(|p| p["title"] == "5xx error ratio")
        .expect("ratio panel");
    let steps = ratio["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .expect("steps");
    assert!(steps.iter().any(|s| s["value"] == 0.05), "{steps:?}");
    assert_eq!(
        ratio["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"],
        "line"
    );
}

#[test]
fn every_panel_expression_parses_after_substitution() {
    let queries = dashboard::load_dir(&common::repo().join("dashboards")).expect("load");
    assert!(queries.len() >= 8, "{queries:?}");
    let vars = dashboard::Variables::new(Duration::from_secs(60), ".+");
    for q in &queries {
        let expr =
            dashboard::substitute(&q.expr, &vars).unwrap_or_else(|e| panic!("{}: {e}", q.label()));
        assert!(!expr.contains('$'), "{}: {expr}", q.label());
        promql_parser::parser::parse(&expr)
            .unwrap_or_else(|e| panic!("{}: {e}: {expr}", q.label()));
        let sel = dashboard::selectors(&expr).expect("selectors");
        assert!(!sel.is_empty(), "{} queries no metric", q.label());
    }
}

#[test]
fn provisioning_points_grafana_at_the_dashboards_and_prometheus() {
    let root = common::repo().join("dashboards/provisioning");
    let ds: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(root.join("datasources/prometheus.yml")).expect("read"),
    )
    .expect("datasource YAML");
    assert_eq!(ds["apiVersion"], 1);
    let d = &ds["datasources"][0];
    assert_eq!(d["type"], "prometheus");
    assert_eq!(d["url"], "${PROMETHEUS_URL}");
    assert_eq!(d["isDefault"], true);

    let prov: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(root.join("dashboards/slocheck.yml")).expect("read"),
    )
    .expect("provider YAML");
    let p = &prov["providers"][0];
    assert_eq!(p["type"], "file");
    assert_eq!(p["options"]["path"], "${SLOCHECK_DASHBOARDS}");
}

/// Built-in target + managed Prometheus + real traffic (raw requests and
/// slocheck's own generator, whose `--metrics-listen` exporter Prometheus
/// scrapes as a second job), then doctor's panel check over the shipped
/// dashboards: every panel must show data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_every_panel_has_data_under_load() {
    use slocheck::load::{self, LiveStats, exporter, metrics::GeneratorMetrics};
    use slocheck::plan::{LoadMode, Plan};
    use slocheck::prom::config::ScrapeConfig;
    use slocheck::prom::{LaunchConfig, ManagedPrometheus, find_binary};
    use slocheck::target::{TargetConfig, TargetHandle};
    use std::sync::Arc;
    use tokio_util::sync::CancellationToken;

    let run_dir = tempfile::tempdir().expect("run dir");
    let target = TargetHandle::start(TargetConfig::default())
        .await
        .expect("target");
    let url = target.base_url();
    let generator = Arc::new(GeneratorMetrics::new());
    let stop = CancellationToken::new();
    let exporter = exporter::serve(
        "127.0.0.1:0".parse().expect("addr"),
        generator.clone(),
        stop.clone(),
    )
    .await
    .expect("generator exporter");
    let cfg = LaunchConfig {
        bin: find_binary(None).expect("prometheus on PATH"),
        run_dir: run_dir.path().to_path_buf(),
        scrape_interval: Duration::from_secs(1),
        evaluation_interval: Duration::from_secs(1),
        job: "slocheck-target".into(),
        targets: vec![target.addr().to_string()],
        metrics_path: "/metrics".into(),
        rule_files: vec![
            common::repo().join("rules/recording.yml"),
            common::repo().join("rules/alerts.yml"),
        ],
        alertmanagers: vec![],
        extra_jobs: vec![ScrapeConfig::new(
            exporter::JOB,
            &[exporter.to_string()],
            "/metrics",
        )],
        scrape_tls: None,
    };
    let cancel = CancellationToken::new();
    // Open-loop load for at most the test's 60 s budget, stopped at the end.
    let mut plan = Plan::single_phase("panels", LoadMode::Open, 50.0, Duration::from_secs(60));
    plan.request.path = "/predict".into();
    let live = Arc::new(LiveStats::default().with_generator(Some(&generator)));
    let load = tokio::spawn({
        let (url, stop) = (url.clone(), stop.clone());
        async move { load::run(&plan, &url, live, stop).await }
    });
    let prom = ManagedPrometheus::start(cfg, &cancel)
        .await
        .expect("prometheus");
    let opts = DoctorOptions {
        prometheus_url: prom.url().clone(),
        target_url: Some(url.clone()),
        dashboards: Some(common::repo().join("dashboards")),
        job: Some("slocheck-target".into()),
        target_tls: Default::default(),
        rate_interval: Duration::from_secs(60),
        preset: None,
    };
    let http = reqwest::Client::new();
    let predict = url.join("predict").expect("url");
    let started = Instant::now();
    let mut last = String::new();
    let mut passed = false;
    // Traffic in bursts until every panel has data (bounded: 60 s).
    while started.elapsed() < Duration::from_secs(60) {
        for i in 0..20 {
            let body = format!("{{\"features\":[5.1,3.5,{}.4,0.2]}}", i % 6);
            let _ = http.post(predict.clone()).body(body).send().await;
        }
        let d = doctor::diagnose(&opts).await.expect("diagnose");
        last = doctor::check::render(&d.checks);
        if d.exit_code() == 0 {
            passed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.cancel();
    let _ = load.await;
    prom.stop().await.expect("stop prometheus");
    target.shutdown().await;
    assert!(passed, "not every check passed within 60 s:\n{last}");
    let panels = last
        .lines()
        .filter(|l| l.starts_with("PASS  panel"))
        .count();
    assert!(panels >= 12, "{last}");
    assert!(!last.contains("SKIP"), "{last}");
}
