//! `slocheck run` against the built-in target serving HTTPS (a certificate
//! the test makes): the managed Prometheus scrapes it with the generated
//! `scheme: https` + `tls_config.ca_file`, and the report carries the
//! transport. Whole run with a real Prometheus: `slow_`.

mod common;
#[path = "tls_support/mod.rs"]
mod tls_support;

use common::{Sandbox, dump, read_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_https_target_is_scraped_with_the_scenarios_ca() {
    if common::require_tool(&["prometheus"], "ci/setup.sh").is_none() {
        return;
    }
    let certs = tls_support::certs();
    let target = tls_support::tls_target(&certs.cert, &certs.key).await;
    let port = target.addr().port();
    let sb = Sandbox::new();
    let scenario = sb.write(
        "https.toml",
        &format!(
            r#"name = "https"
[target]
url = "https://localhost:{port}"
http_version = "2"
request = {{ method = "GET", path = "/predict" }}
tls = {{ ca_file = "{ca}" }}

[prometheus]
scrape_interval = "1s"
evaluation_interval = "1s"
rule_files = ["{rules}/recording.yml", "{rules}/alerts.yml"]
settle = "3s"

[load]
mode = "open"
rate = 50

[[phase]]
name = "steady"
duration = "6s"

[[expect]]
name = "scraped over https"
promql = 'min(up)'
phase = "steady"
aggregate = "min"
above = 0.5

[[expect]]
name = "requests counted by Prometheus"
promql = 'sum(increase(http_requests_total{{path="/predict"}}[30s]))'
phase = "steady"
aggregate = "max"
above = 10
"#,
            ca = certs.ca.display(),
            rules = common::repo().join("rules").display()
        ),
    );
    let json = sb.path().join("report.json");
    let mut cmd = sb.command();
    cmd.args([
        "run",
        scenario.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--quiet",
        "--keep-run-dir",
    ]);
    let o = tokio::task::spawn_blocking(move || cmd.output().expect("run"))
        .await
        .expect("join");
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    let r = read_json(&json);
    let t = &r["transport"];
    assert_eq!(t["http_version"], "2", "{t}");
    assert_eq!(t["tls"], true);
    assert_eq!(t["insecure"], false);
    assert!(t["connections_opened"].as_u64().unwrap() >= 1, "{t}");
    let sent: u64 = r["phases"][0]["sent"].as_u64().unwrap();
    let per: u64 = t["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(per, sent, "{t}");
    // The generated config: https with the scenario's CA.
    let run_dir = std::fs::read_dir(sb.tmp())
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("slocheck-run-"))
        .expect("kept run dir")
        .path();
    let yml = std::fs::read_to_string(run_dir.join("prometheus.yml")).unwrap();
    assert!(yml.contains("scheme: https"), "{yml}");
    assert!(
        yml.contains(&format!("ca_file: {}", certs.ca.display())),
        "{yml}"
    );
    std::fs::remove_dir_all(run_dir).unwrap();
    target.shutdown().await;
}
