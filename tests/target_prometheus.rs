//! The target scraped by a real Prometheus: the exposition parses, counters
//! rate, and the seed's P90 expression sees the injected delay.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use slocheck::fault_protocol::Fault;
use slocheck::target::{TargetConfig, TargetHandle};

const SCRAPE_JOB: &str = "slocheck-target";

/// Kills and reaps Prometheus on every path out of the test, panics included.
struct PrometheusGuard {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Drop for PrometheusGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PrometheusGuard {
    fn start(dir: &Path, target: SocketAddr) -> PrometheusGuard {
        let bin = which::which("prometheus").expect(
            "prometheus not found on PATH (hint: run ci/setup.sh or apt-get install prometheus)",
        );
        // Reserve-and-release: Prometheus binds it a moment later.
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: {SCRAPE_JOB}\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        PrometheusGuard { child, addr, log }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Instant query; `None` when the result vector is empty.
    async fn query(&self, client: &reqwest::Client, expr: &str) -> Option<f64> {
        let url = format!("http://{}/api/v1/query", self.addr);
        let resp: Value = client
            .get(url)
            .query(&[("query", expr)])
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        assert_eq!(resp["status"], "success", "{expr}: {resp}");
        let value = resp["data"]["result"].get(0)?["value"][1].as_str()?;
        value.parse().ok()
    }

    /// Polls `expr` every 250 ms until `ok(value)`, at most `limit`.
    async fn wait_for(
        &self,
        client: &reqwest::Client,
        expr: &str,
        limit: Duration,
        ok: impl Fn(f64) -> bool,
    ) -> f64 {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.query(client, expr).await;
            if let Some(v) = v.filter(|v| ok(*v)) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{expr} was {v:?} after {limit:?}; prometheus log:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_prometheus_scrapes_target_and_sees_injected_delay() {
    let dir = tempfile::tempdir().unwrap();
    let target = TargetHandle::start(TargetConfig::default()).await.unwrap();
    let prom = PrometheusGuard::start(dir.path(), target.addr());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    // Ready, then a first scrape of the pre-created zero series before load,
    // so rate() sees the whole increase.
    let up = format!(r#"up{{job="{SCRAPE_JOB}"}}"#);
    prom.wait_for(&client, &up, Duration::from_secs(15), |v| v == 1.0)
        .await;

    // 40 req/s for 8 s; 3 in 10 delayed 200 ms, 1 in 20 answered 503.
    let url = target.base_url().join("predict").unwrap();
    let delayed = Fault {
        status: None,
        delay: Some(Duration::from_millis(200)),
    }
    .encode();
    let failed = Fault {
        status: Some(503),
        delay: None,
    }
    .encode();
    let start = tokio::time::Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for n in 0..320u32 {
        tokio::time::sleep_until(start + Duration::from_millis(25) * n).await;
        let mut req = client
            .post(url.clone())
            .body(r#"{"features":[6.3,3.3,6.0,2.5]}"#);
        if n % 10 < 3 {
            req = req.header("x-slocheck-fault", &delayed);
        } else if n % 20 == 5 {
            req = req.header("x-slocheck-fault", &failed);
        }
        sends.spawn(async move { req.send().await.map(|r| r.status().as_u16()) });
    }
    let mut statuses = std::collections::BTreeMap::new();
    while let Some(res) = sends.join_next().await {
        *statuses.entry(res.unwrap().unwrap()).or_insert(0u32) += 1;
    }
    assert_eq!(statuses, [(200, 304), (503, 16)].into_iter().collect());

    // Everything sent is counted once the next scrape lands.
    let total = r#"sum(http_requests_total{path="/predict",method="POST"})"#;
    prom.wait_for(&client, total, Duration::from_secs(10), |v| v == 320.0)
        .await;
    let errors = r#"sum(http_requests_total{path="/predict",status="503"})"#;
    assert_eq!(prom.query(&client, errors).await, Some(16.0));
    let rate = prom
        .query(&client, "sum(rate(http_requests_total[20s]))")
        .await
        .unwrap();
    assert!(rate > 0.0, "rate {rate}");

    // 30 % of requests take just over 200 ms, so the 90th percentile ranks
    // among them: the bucket (0.2, 0.25].
    let p90 =
        "histogram_quantile(0.90, sum(rate(http_request_latency_seconds_bucket[20s])) by (le))";
    let p90 = prom.query(&client, p90).await.unwrap();
    assert!(
        (0.2..=0.25).contains(&p90),
        "P90 {p90} outside the bucket holding 0.2 s"
    );
    let p50 =
        "histogram_quantile(0.50, sum(rate(http_request_latency_seconds_bucket[20s])) by (le))";
    let p50 = prom.query(&client, p50).await.unwrap();
    assert!(p50 < 0.2, "P50 {p50}: undelayed requests should be fast");

    drop(prom);
    target.shutdown().await;
}
