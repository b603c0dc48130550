//! Sharded runs (`run --shards N`, `coordinate`, `load --shard I/N`) on
//! one machine: real shard processes, a real coordinator, the built-in
//! target and a real managed Prometheus. Whole-scenario tests are `slow_`.

mod common;

use std::time::{Duration, Instant};

use common::{Running, Sandbox, dump, stderr};
use serde_json::Value;

fn prometheus() -> bool {
    common::require_tool(&["prometheus"], "ci/setup.sh").is_some()
}

fn verdicts(r: &Value) -> Vec<(String, String)> {
    (r["expectations"].as_array().expect("expectations").iter())
        .map(|e| {
            (
                e["id"].as_str().unwrap_or("").to_string(),
                e["verdict"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Per phase: (name, sent, scheduled, dropped, injected_errors).
fn phase_counts(r: &Value) -> Vec<(String, u64, u64, u64, u64)> {
    (r["phases"].as_array().expect("phases").iter())
        .map(|p| {
            let n = |k: &str| p[k].as_u64().unwrap_or_else(|| panic!("{k} in {p}"));
            (
                p["name"].as_str().unwrap_or("").to_string(),
                n("sent"),
                n("scheduled"),
                n("dropped"),
                n("injected_errors"),
            )
        })
        .collect()
}

/// The requests error-spike's plan schedules per phase: 150 rps constant
/// over 10 s, 25 s and 20 s.
const PLANNED: [u64; 3] = [1500, 3750, 3000];

/// Live processes whose command line is a shard of this coordinator.
fn shard_pids(coordinator: &str) -> Vec<u32> {
    common::processes_mentioning(&format!("--coordinator {coordinator}"))
        .into_iter()
        .map(|(pid, _)| pid)
        .collect()
}

fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie is dead but not reaped: that is a leak too.
        Ok(stat) => stat.split_whitespace().nth(2).is_none(),
    }
}

fn coordinator_url(line: &str) -> String {
    let at = line.find("http://").expect("url in the line");
    line[at..]
        .split_whitespace()
        .next()
        .expect("url")
        .to_string()
}

#[test]
fn slow_one_and_four_shards_agree_exactly() {
    if !prometheus() {
        return;
    }
    let sb = Sandbox::new();
    let json = sb.path().join("r.json");
    let run = |n: &str| {
        let o = sb.run(&[
            "run",
            "scenarios/error-spike.toml",
            "--shards",
            n,
            "--json",
            json.to_str().unwrap(),
            "--quiet",
        ]);
        let r = common::read_json(&json);
        sb.assert_clean();
        (o, r)
    };
    let (o1, r1) = run("1");
    let (o4, r4) = run("4");
    assert_eq!(o1.status.code(), Some(0), "{}", dump(&o1));
    assert_eq!(o4.status.code(), Some(0), "{}", dump(&o4));
    // Every shard process exited cleanly once its record was accepted.
    assert!(!stderr(&o4).contains("exited with"), "{}", dump(&o4));
    assert_eq!(verdicts(&r1), verdicts(&r4));
    assert_eq!(
        r4["generator"]["shards"].as_u64().map(|s| s >= 4),
        Some(true)
    );

    let (c1, c4) = (phase_counts(&r1), phase_counts(&r4));
    assert_eq!(c1.len(), 3);
    for ((a, b), &plan) in c1.iter().zip(&c4).zip(&PLANNED) {
        assert_eq!(a.0, b.0);
        // The exact seeded fault plan, whichever process sent which request.
        assert_eq!(a.4, b.4, "injected errors of {}", a.0);
        // Merged sent counts are the plan's scheduled counts, none dropped.
        assert_eq!((b.1, b.2, b.3), (plan, plan, 0), "phase {}", b.0);
        assert_eq!((a.1, a.2, a.3), (plan, plan, 0), "phase {}", a.0);
    }
    assert!(c4[1].4 > 0, "the spike injected errors");

    // Prometheus saw the injected ratio, to within one percentage point.
    let spike = (r4["agreement"].as_array().unwrap().iter())
        .find(|a| a["phase"] == "spike")
        .expect("spike row");
    let prom = spike["prometheus_error_ratio"]
        .as_f64()
        .expect("prom ratio");
    let injected = spike["injected_error_ratio"].as_f64().expect("injected");
    assert!(
        (prom - injected).abs() <= 0.01,
        "prometheus {prom} vs injected {injected}"
    );
}

#[test]
fn slow_a_killed_shard_gives_a_partial_verdict_naming_it() {
    if !prometheus() {
        return;
    }
    let sb = Sandbox::new();
    let json = sb.path().join("r.json");
    let mut run = sb.spawn(&[
        "run",
        "scenarios/error-spike.toml",
        "--shards",
        "4",
        "--json",
        json.to_str().unwrap(),
        "--quiet",
    ]);
    let line = run.wait_for("coordinator listening on", Duration::from_secs(60));
    let url = coordinator_url(&line);
    run.wait_for("all 4 shards registered", Duration::from_secs(60));
    let pids = shard_pids(&url);
    assert_eq!(pids.len(), 4, "four shard processes");
    // Mid-run: in the spike.
    std::thread::sleep(Duration::from_secs(15));
    let victim = common::processes_mentioning(&format!("--shard 2/4 --coordinator {url}"));
    assert_eq!(victim.len(), 1, "{victim:?}");
    let pid = nix::unistd::Pid::from_raw(victim[0].0 as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("kill shard 2");
    let (code, err) = run.finish(Duration::from_secs(180));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("shard 2/4 ("), "{err}");
    let r = common::read_json(&json);
    sb.assert_clean();
    for pid in pids {
        assert!(gone(pid), "shard process {pid} left running");
    }
    let by_id = |id: &str| common::expectation(&r, id).clone();
    for id in ["spike-error-ratio", "baseline-p90"] {
        let e = by_id(id);
        assert_eq!(e["verdict"], "inconclusive", "{e}");
        let reason = e["reason"].as_str().unwrap();
        assert!(
            reason.contains("shard 2/4 (") && reason.contains("planned requests) is missing"),
            "{reason}"
        );
    }
    // Prometheus alone judged the alert: that verdict stands.
    assert_eq!(by_id("high-error-rate-lifecycle")["verdict"], "pass");
    let warnings = r["generator"]["warnings"].to_string();
    assert!(warnings.contains("shard 2/4"), "{warnings}");
    assert!(r["agreement"][1]["client_error_ratio"].is_null());
}

/// The built-in target, in process, for shards to preflight against (its
/// runtime serves it while the test thread waits on the binary).
fn target() -> (
    tokio::runtime::Runtime,
    slocheck::target::TargetHandle,
    String,
) {
    use slocheck::target::{TargetConfig, TargetHandle};
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let t = rt
        .block_on(TargetHandle::start(TargetConfig::default()))
        .expect("target");
    let url = t.base_url().to_string();
    (rt, t, url)
}

fn only_error_line(o: &std::process::Output) -> String {
    let err = stderr(o);
    let errors: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one error line: {}", dump(o));
    assert!(errors[0].starts_with("slocheck: error: "), "{}", dump(o));
    errors[0].to_string()
}

#[test]
fn refusals_are_one_line_errors_with_their_exit_codes() {
    if !prometheus() {
        return;
    }
    let sb = Sandbox::new();
    let (rt, tgt, target_url) = target();
    let mut coord = sb.spawn_env(
        &[
            "coordinate",
            "scenarios/error-spike.toml",
            "--shards",
            "2",
            "--listen",
            "127.0.0.1:0",
            "--target-url",
            &target_url,
            "--register-timeout",
            "15s",
            "--quiet",
        ],
        &[("SLOCHECK_COORDINATOR_TOKEN", "right")],
    );
    let line = coord.wait_for("coordinator listening on", Duration::from_secs(60));
    let url = coordinator_url(&line);
    let other = sb.scenario_copy(
        "error-spike.toml",
        None,
        &[("seed = 42", "seed = 42 # edited")],
    );
    let shard = |scenario: &str, extra: &[&str], token: &str| {
        let mut c = sb.command();
        c.args([
            "load",
            scenario,
            "--coordinator",
            &url,
            "--target-url",
            &target_url,
            "--quiet",
        ])
        .args(extra)
        .env("SLOCHECK_COORDINATOR_TOKEN", token);
        c.output().expect("run shard")
    };
    let spike = "scenarios/error-spike.toml";
    let o = shard(spike, &["--shard", "0/2"], "wrong");
    assert_eq!(o.status.code(), Some(3), "{}", dump(&o));
    assert!(only_error_line(&o).contains("refused this shard's token"));
    let o = shard(other.to_str().unwrap(), &["--shard", "0/2"], "right");
    assert_eq!(o.status.code(), Some(2), "{}", dump(&o));
    assert!(only_error_line(&o).contains("another scenario"));
    let o = shard(spike, &["--shard", "1/2", "--seed", "7"], "right");
    assert_eq!(o.status.code(), Some(2), "{}", dump(&o));
    assert!(only_error_line(&o).contains("seed 7"));
    let o = shard(spike, &["--shard", "1/3"], "right");
    assert_eq!(o.status.code(), Some(2), "{}", dump(&o));
    assert!(only_error_line(&o).contains("one of 3 shards"));

    // Nobody acceptable came: the coordinator names both missing shards.
    let (code, err) = coord.finish(Duration::from_secs(90));
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("refused (401)") && err.contains("refused (409)"),
        "{err}"
    );
    assert!(err.contains("shard(s) 0, 1 of 2 never registered"), "{err}");
    rt.block_on(tgt.shutdown());
    sb.assert_clean();
}

#[test]
fn a_coordinator_that_never_starts_is_a_bounded_one_line_error() {
    let sb = Sandbox::new();
    let (rt, tgt, target_url) = target();
    let port = slocheck::process::free_loopback_port().unwrap();
    let dead = format!("http://127.0.0.1:{port}/");
    let began = Instant::now();
    let o = sb.run(&[
        "load",
        "scenarios/error-spike.toml",
        "--shard",
        "0/2",
        "--coordinator",
        &dead,
        "--coordinator-timeout",
        "2s",
        "--target-url",
        &target_url,
        "--quiet",
    ]);
    let took = began.elapsed();
    assert_eq!(o.status.code(), Some(3), "{}", dump(&o));
    assert!(only_error_line(&o).contains(&format!("cannot reach the coordinator at {dead}")));
    assert!(took < Duration::from_secs(30), "gave up after {took:?}");
    rt.block_on(tgt.shutdown());
}

#[test]
fn shard_index_from_the_job_completion_index() {
    let sb = Sandbox::new();
    let run = |env: Option<&str>| {
        let mut c = sb.command();
        c.args([
            "load",
            "scenarios/error-spike.toml",
            "--shard",
            "/4",
            "--quiet",
        ])
        .env_remove("JOB_COMPLETION_INDEX");
        if let Some(v) = env {
            c.env("JOB_COMPLETION_INDEX", v);
        }
        c.output().expect("run")
    };
    let o = run(None);
    assert_eq!(o.status.code(), Some(2), "{}", dump(&o));
    assert!(only_error_line(&o).contains("JOB_COMPLETION_INDEX, which is not set"));
    let o = run(Some("4"));
    assert_eq!(o.status.code(), Some(2), "{}", dump(&o));
    assert!(only_error_line(&o).contains("not below the shard count 4"));
    let o = sb.run(&["load", "scenarios/error-spike.toml", "--shard", "4/4"]);
    assert_eq!(o.status.code(), Some(2), "{}", dump(&o));
    // The generator's metrics are per process: not offered with shards.
    for args in [
        &["load", "scenarios/error-spike.toml", "--shard", "0/2"][..],
        &["run", "scenarios/error-spike.toml", "--shards", "2"][..],
    ] {
        let o = sb.run(&[args, &["--metrics-listen", "127.0.0.1:0"]].concat());
        assert_eq!(o.status.code(), Some(2), "{}", dump(&o));
        assert!(stderr(&o).contains("cannot be used with"), "{}", dump(&o));
    }
}

/// Without a coordinator a shard runs its slice at once: a quarter of a
/// short scenario's schedule, exactly.
#[test]
fn a_standalone_shard_sends_its_slice() {
    let sb = Sandbox::new();
    let scenario = sb.scenario_copy(
        "error-spike.toml",
        None,
        &[
            ("rate = 150", "rate = 40"),
            ("duration = \"10s\"", "duration = \"1s\""),
            ("duration = \"25s\"", "duration = \"1s\""),
            ("duration = \"20s\"", "duration = \"1s\""),
        ],
    );
    let o = sb.run(&[
        "load",
        scenario.to_str().unwrap(),
        "--shard",
        "1/4",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    let out = common::stdout(&o);
    assert!(out.contains("shard 1/4:"), "{out}");
    // 40 requests a second for 1 s is 40 per phase; shard 1 of 4 sends 10.
    for phase in ["baseline", "spike", "recovery"] {
        let row = out
            .lines()
            .find(|l| l.trim_start().starts_with(phase))
            .unwrap_or_else(|| panic!("no row for {phase}: {out}"));
        assert!(row.split_whitespace().any(|c| c == "10"), "{row}");
    }
}

/// The coordinator's other routes: `/healthz` for probes without a token,
/// the Alertmanager webhook recorder only with it.
#[test]
fn coordinator_serves_health_and_the_webhook_recorder_behind_its_token() {
    use slocheck::shard::coordinator::Coordinator;
    use slocheck::shard::wire::Identity;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let coord = Coordinator::start(
            "127.0.0.1:0".parse().unwrap(),
            Identity::new(b"x", 1, 2),
            Some("s3cret".into()),
        )
        .await
        .expect("coordinator");
        let http = reqwest::Client::new();
        let url = |p: &str| format!("{}{p}", coord.url());
        let health = http.get(url("healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let payload = serde_json::json!({
            "version": "4", "status": "firing", "receiver": "slocheck-recorder",
            "alerts": [{"status": "firing", "labels": {"alertname": "HighErrorRate"}}]
        });
        let post = |token: Option<&str>| {
            let mut r = http.post(url("receiver/slocheck-recorder")).json(&payload);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            r.send()
        };
        assert_eq!(post(None).await.unwrap().status(), 401);
        assert_eq!(post(Some("wrong")).await.unwrap().status(), 401);
        assert!(coord.notifications().is_empty());
        assert_eq!(post(Some("s3cret")).await.unwrap().status(), 200);
        let got = coord.notifications();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].url_receiver, "slocheck-recorder");
        // Shard routes want the token too.
        let reg = http
            .post(url("shards/register"))
            .json(&payload)
            .send()
            .await
            .unwrap();
        assert_eq!(reg.status(), 401);
        coord.shutdown().await;
    });
}

/// A non-loopback address without a token is refused before listening.
#[test]
fn coordinator_refuses_a_public_address_without_a_token() {
    use slocheck::shard::coordinator::Coordinator;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let err = rt
        .block_on(Coordinator::start(
            "0.0.0.0:0".parse().unwrap(),
            slocheck::shard::wire::Identity::new(b"x", 1, 2),
            None,
        ))
        .err()
        .expect("refused");
    assert!(err.to_string().contains("without a token"), "{err}");
    assert_eq!(err.exit_code(), 2);
}

/// `coordinate` against a Prometheus and an Alertmanager it did not start
/// (as on a cluster): Alertmanager posts to the coordinator's own webhook
/// recorder with the token, and the `notified` expectation is judged from
/// what arrived there. Two real shard processes send the load.
#[test]
fn slow_coordinate_judges_notified_from_its_own_recorder() {
    use slocheck::alertmanager::launcher::{self as am, ManagedAlertmanager};
    use slocheck::prom::launcher::{self as prom, LaunchConfig, ManagedPrometheus};
    if !prometheus()
        || common::require_tool(&["alertmanager", "prometheus-alertmanager"], "ci/setup.sh")
            .is_none()
    {
        return;
    }
    let sb = Sandbox::new();
    let (rt, tgt, target_url) = target();
    let port = slocheck::process::free_loopback_port().unwrap();
    let am_yaml = format!(
        "route:\n  receiver: oncall\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
         receivers:\n  - name: oncall\n    webhook_configs:\n      - url: http://127.0.0.1:{port}/receiver/oncall\n        send_resolved: true\n        http_config:\n          authorization:\n            credentials: s3cret\n"
    );
    let am_file = sb.write("alertmanager.yml", &am_yaml);
    let rules = sb.write(
        "rules.yml",
        "groups:\n  - name: shards\n    rules:\n      - alert: HighErrorRate\n        expr: sum(rate(http_requests_total{status=~\"5..\"}[5s])) / sum(rate(http_requests_total[5s])) > 0.05\n        labels:\n          severity: critical\n",
    );
    let cancel = tokio_util::sync::CancellationToken::new();
    let run_dir = sb.path().join("stack");
    std::fs::create_dir_all(&run_dir).unwrap();
    let alertmanager = rt
        .block_on(ManagedAlertmanager::start(
            &am::find_binary(None).unwrap(),
            &run_dir,
            &am_yaml,
            &cancel,
        ))
        .expect("alertmanager");
    let target_addr = target_url
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let prometheus = rt
        .block_on(ManagedPrometheus::start(
            LaunchConfig {
                bin: prom::find_binary(None).unwrap(),
                run_dir: run_dir.clone(),
                scrape_interval: Duration::from_secs(1),
                evaluation_interval: Duration::from_secs(1),
                job: "shards".into(),
                targets: vec![target_addr.to_string()],
                metrics_path: "/metrics".into(),
                rule_files: vec![rules.clone()],
                alertmanagers: vec![alertmanager.host_port()],
                extra_jobs: Vec::new(),
                scrape_tls: None,
            },
            &cancel,
        ))
        .expect("prometheus");
    // Like a cluster's Prometheus, it already scrapes the target.
    let targets = format!("{}api/v1/targets", prometheus.url());
    let scraping = Instant::now();
    while !rt
        .block_on(async {
            let body = reqwest::get(&targets).await.ok()?.text().await.ok()?;
            Some(body.contains("\"health\":\"up\""))
        })
        .unwrap_or(false)
    {
        assert!(
            scraping.elapsed() < Duration::from_secs(30),
            "target never scraped"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let data = common::repo().join("scenarios/data/iris.jsonl");
    let scenario = sb.write(
        "notify.toml",
        &format!(
            r#"name = "coordinated-notify"
seed = 7

[target]
request = {{ method = "POST", path = "/predict", body_file = {data:?} }}

[prometheus]
url = "{prom}"
job = "shards"
scrape_interval = "1s"
evaluation_interval = "1s"
rule_files = [{rules:?}]
settle = "12s"

[alertmanager]
config = {am_file:?}

[load]
mode = "open"
rate = 60

[[phase]]
name = "baseline"
duration = "5s"

[[phase]]
name = "spike"
duration = "12s"
faults = {{ error_rate = 0.30, status = 503 }}

[[phase]]
name = "recovery"
duration = "12s"

[[expect]]
name = "paged"
notified = "HighErrorRate"
receiver = "oncall"
labels = {{ severity = "critical" }}
resolved_within = "20s"
"#,
            prom = prometheus.url(),
        ),
    );
    let json = sb.path().join("r.json");
    let listen = format!("127.0.0.1:{port}");
    let coord = sb.spawn_env(
        &[
            "coordinate",
            scenario.to_str().unwrap(),
            "--shards",
            "2",
            "--listen",
            &listen,
            "--target-url",
            &target_url,
            "--json",
            json.to_str().unwrap(),
            "--quiet",
        ],
        &[("SLOCHECK_COORDINATOR_TOKEN", "s3cret")],
    );
    let mut coord = coord;
    coord.wait_for("coordinator listening on", Duration::from_secs(60));
    let url = format!("http://{listen}/");
    let shards: Vec<Running> = (0..2)
        .map(|i| {
            sb.spawn_env(
                &[
                    "load",
                    scenario.to_str().unwrap(),
                    "--shard",
                    &format!("{i}/2"),
                    "--coordinator",
                    &url,
                    "--target-url",
                    &target_url,
                    "--quiet",
                ],
                &[("SLOCHECK_COORDINATOR_TOKEN", "s3cret")],
            )
        })
        .collect();
    let ended: Vec<_> = (shards.into_iter())
        .map(|s| s.finish(Duration::from_secs(120)))
        .collect();
    let (code, err) = coord.finish(Duration::from_secs(120));
    for (c, e) in ended {
        assert_eq!(c, Some(0), "shard: {e}\ncoordinator: {err}");
    }
    let r = common::read_json(&json);
    rt.block_on(async {
        let _ = prometheus.stop().await;
        let _ = alertmanager.stop().await;
        tgt.shutdown().await;
    });
    assert_eq!(code, Some(0), "{err}\n{r}");
    let paged = common::expectation(&r, "paged");
    assert_eq!(paged["verdict"], "pass", "{paged}");
    let observed = paged["observed"].as_str().unwrap();
    assert!(observed.contains("resolved delivered"), "{observed}");
}

/// Ctrl-C during a sharded run: exit 130, and every shard process it
/// started is gone (killed by PID, reaped).
#[test]
fn slow_interrupted_sharded_run_leaves_no_shard_running() {
    if !prometheus() {
        return;
    }
    let sb = Sandbox::new();
    let mut run = sb.spawn(&[
        "run",
        "scenarios/error-spike.toml",
        "--shards",
        "3",
        "--quiet",
    ]);
    let line = run.wait_for("coordinator listening on", Duration::from_secs(60));
    let url = coordinator_url(&line);
    run.wait_for("all 3 shards registered", Duration::from_secs(60));
    let pids = shard_pids(&url);
    assert_eq!(pids.len(), 3, "three shard processes");
    std::thread::sleep(Duration::from_secs(3));
    run.signal(nix::sys::signal::Signal::SIGINT);
    let (code, err) = run.finish(Duration::from_secs(60));
    assert_eq!(code, Some(130), "{err}");
    for pid in pids {
        assert!(gone(pid), "shard process {pid} left running");
    }
    sb.assert_clean();
}

/// The Jobs of `deploy/k8s` call the commands with flags this binary
/// parses: the manifests and the CLI cannot drift apart.
#[test]
fn the_kubernetes_jobs_use_flags_the_cli_accepts() {
    use clap::Parser;
    for (file, command) in [
        ("coordinator.yaml", "coordinate"),
        ("load-job.yaml", "load"),
    ] {
        let path = common::repo().join("deploy/k8s").join(file);
        let text = std::fs::read_to_string(&path).expect("manifest");
        let job = (text.split("\n---"))
            .map(|doc| serde_saphyr::from_str::<Value>(doc).expect("yaml"))
            .find(|d| d["kind"] == "Job")
            .unwrap_or_else(|| panic!("no Job in {file}"));
        let args: Vec<String> = (job["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap_or_else(|| panic!("args in {file}"))
            .iter())
        .map(|a| {
            a.as_str()
                .expect("string arg")
                .replace("$(JOB_COMPLETION_INDEX)", "2")
        })
        .collect();
        assert_eq!(args[0], command, "{file}");
        let parsed = slocheck::cli::Cli::try_parse_from(
            std::iter::once("slocheck".to_string()).chain(args.iter().cloned()),
        );
        assert!(parsed.is_ok(), "{file}: {args:?}: {}", parsed.unwrap_err());
    }
}
