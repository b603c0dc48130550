//! Every shipped scenario and good fixture loads, and resolves to the values
//! the file says (durations, ramps, faults, expectations, defaults).

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use slocheck::plan::*;
use slocheck::scenario::{self, DEFAULT_BODY, Loaded};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Loads `scenarios/<file>`. The shipped JSONL data belongs to the target
/// module; until it is present, the scenario is staged in a temporary copy
/// of `scenarios/` beside the fixtures' small iris file.
fn load_shipped(file: &str) -> (Loaded, Option<tempfile::TempDir>) {
    let dir = Path::new(REPO).join("scenarios");
    if dir.join("data/iris.jsonl").exists() {
        let loaded = scenario::load(&dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        return (loaded, None);
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let staged = tmp.path().join("scenarios");
    std::fs::create_dir_all(staged.join("data")).expect("staging dir");
    std::fs::copy(dir.join(file), staged.join(file)).expect("copy scenario");
    std::fs::copy(
        Path::new(REPO).join("tests/fixtures/good/data/iris.jsonl"),
        staged.join("data/iris.jsonl"),
    )
    .expect("copy data");
    let loaded = scenario::load(&staged.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    (loaded, Some(tmp))
}

fn load_fixture(file: &str) -> Loaded {
    let path = Path::new("tests/fixtures/good").join(file);
    scenario::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_scenario_and_good_fixture_loads() {
    let shipped = toml_files(&Path::new(REPO).join("scenarios"));
    let names: Vec<_> = shipped
        .iter()
        .filter_map(|p| p.file_name()?.to_str())
        .collect();
    for want in [
        "error-spike.toml",
        "baseline.toml",
        "latency-spike.toml",
        "demo.toml",
        "closed-loop.toml",
    ] {
        assert!(names.contains(&want), "scenarios/{want} missing");
    }
    for name in names {
        let (loaded, _tmp) = load_shipped(name);
        assert!(!loaded.plan.phases.is_empty());
        assert!(
            loaded.plan.bodies_ok(),
            "{name}: the built-in model needs bodies"
        );
    }
    let good = toml_files(Path::new("tests/fixtures/good"));
    assert!(good.len() >= 4);
    for path in good {
        scenario::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

trait BodiesOk {
    fn bodies_ok(&self) -> bool;
}

impl BodiesOk for Plan {
    fn bodies_ok(&self) -> bool {
        self.target != TargetPlan::BuiltIn || !self.request.bodies.is_empty()
    }
}

#[test]
fn error_spike_resolves_to_the_main_ci_scenario() {
    let (Loaded { plan, spans }, _tmp) = load_shipped("error-spike.toml");
    assert_eq!(plan.name, "error-spike");
    assert_eq!(plan.seed, 42);
    assert_eq!(plan.target, TargetPlan::BuiltIn);
    assert_eq!(plan.prometheus.url, None);
    assert_eq!(plan.prometheus.time_scale, 20.0);
    assert_eq!(plan.prometheus.settle, secs(4));
    let rules: Vec<_> = plan
        .prometheus
        .rule_files
        .iter()
        .map(|p| p.strip_prefix(REPO).ok())
        .collect();
    let rules_dir = plan.prometheus.rule_files[0]
        .parent()
        .expect("rule file folder");
    assert!(rules_dir.ends_with("rules"), "{}", rules_dir.display());
    assert!(rules_dir.is_absolute() && !rules_dir.components().any(|c| c.as_os_str() == ".."));
    assert_eq!(rules.len(), 2);
    let phases: Vec<_> = plan
        .phases
        .iter()
        .map(|p| (p.name.as_str(), p.duration, p.rate))
        .collect();
    assert_eq!(
        phases,
        [
            ("baseline", secs(10), Rate::Constant(150.0)),
            ("spike", secs(25), Rate::Constant(150.0)),
            ("recovery", secs(20), Rate::Constant(150.0)),
        ]
    );
    assert!(plan.phases[0].faults.is_empty() && plan.phases[2].faults.is_empty());
    assert_eq!(
        plan.phases[1].faults.error,
        Some(ErrorFault {
            ratio: 0.2,
            status: 503
        })
    );
    assert_eq!(plan.expects.len(), 3);
    assert_eq!(
        plan.expects[0].kind,
        ExpectKind::LatencyQuantile {
            quantile: 0.9,
            phase: "baseline".into(),
            bound: Bound::Below(ms(250))
        }
    );
    assert_eq!(
        plan.expects[1].kind,
        ExpectKind::ErrorRatio {
            phase: "spike".into(),
            bound: Bound::Near {
                value: 0.2,
                tolerance: 0.03
            }
        }
    );
    assert_eq!(
        plan.expects[2].kind,
        ExpectKind::Alert(AlertExpectation {
            alert: "HighErrorRate".into(),
            silent_during: vec!["baseline".into()],
            fires_during: Some("spike".into()),
            fire_within: None,
            resolves_during: Some("recovery".into()),
            resolve_within: None,
        })
    );
    assert_eq!(spans.alert_names.len(), 1);
    let a = &spans.alert_names[0];
    assert_eq!(
        (a.expect_index, a.key_path.as_str(), a.name.as_str()),
        (2, "expect[3].alert", "HighErrorRate")
    );
    let text = std::fs::read_to_string(Path::new(REPO).join("scenarios/error-spike.toml"))
        .expect("scenario text");
    let line = text
        .lines()
        .position(|l| l.starts_with("alert = \"HighErrorRate\""))
        .expect("alert line")
        + 1;
    assert_eq!((a.location.line, a.location.col), (line, 9));
    let d = spans.diagnostic(
        &a.key_path,
        a.location,
        "unknown alert \"X\"",
        Some("alerts: Y"),
    );
    assert!(d.to_string().ends_with(&format!(
        "error-spike.toml:{line}:9: expect[3].alert: unknown alert \"X\" (hint: alerts: Y)"
    )));
}

#[test]
fn timeline_of_error_spike() {
    let (loaded, tmp) = load_shipped("error-spike.toml");
    let mut text = scenario::timeline(&loaded.plan);
    if let Some(tmp) = &tmp {
        text = text.replace(&tmp.path().display().to_string(), "[repo]");
    }
    text = text.replace(REPO, "[repo]");
    // The body count depends on the shipped data file, not on this module.
    let count = loaded.plan.request.bodies.len();
    text = text.replace(&format!("{count} bodies (cycled)"), "[n] bodies (cycled)");
    insta::assert_snapshot!(text);
}

#[test]
fn minimal_file_takes_every_default() {
    let plan = load_fixture("minimal.toml").plan;
    assert_eq!(plan.name, "minimal");
    assert_eq!(plan.seed, 1);
    assert!(!plan.allow_inconclusive);
    assert_eq!(plan.target, TargetPlan::BuiltIn);
    let r = &plan.request;
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/predict"));
    assert_eq!(
        r.bodies,
        vec![bytes::Bytes::from_static(DEFAULT_BODY.as_bytes())]
    );
    assert_eq!(r.headers.len(), 1);
    assert_eq!(
        (r.headers[0].0.as_str(), r.headers[0].1.to_str().ok()),
        ("content-type", Some("application/json"))
    );
    assert_eq!((r.timeout, r.connect_timeout), (secs(10), secs(2)));
    let p = &plan.prometheus;
    assert_eq!(
        (p.url.clone(), p.scrape_interval, p.evaluation_interval),
        (None, secs(1), secs(1))
    );
    assert_eq!(
        (p.time_scale, p.job.as_str(), p.settle),
        (1.0, "slocheck-target", secs(4))
    );
    let fixtures = std::path::absolute("tests/fixtures").expect("absolute path");
    assert_eq!(
        p.rule_files,
        vec![
            fixtures.join("rules/recording.yml"),
            fixtures.join("rules/alerts.yml")
        ]
    );
    assert_eq!(
        plan.load,
        LoadPlan {
            mode: LoadMode::Open,
            max_in_flight: NonZeroUsize::new(1000).expect("1000")
        }
    );
    assert_eq!(
        plan.phases,
        vec![PhasePlan {
            name: "only".into(),
            duration: secs(5),
            rate: Rate::Constant(10.0),
            concurrency: None,
            faults: FaultSpec::default(),
            drift: None,
            evaluate: true,
        }]
    );
    assert!(plan.expects.is_empty());
}

#[test]
fn everything_fixture_resolves_every_key() {
    let Loaded { plan, spans } = load_fixture("everything.toml");
    assert!(plan.allow_inconclusive);
    assert_eq!(plan.seed, 9);
    let r = &plan.request;
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("PUT", "/v2/predict?x=1")
    );
    assert_eq!(r.bodies.len(), 3);
    let headers: Vec<_> = r
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap_or("?")))
        .collect();
    assert_eq!(
        headers,
        [
            ("authorization", "Bearer t"),
            ("x-team", "ml"),
            ("content-type", "application/x-ndjson")
        ]
    );
    assert_eq!((r.timeout, r.connect_timeout), (secs(3), ms(500)));
    let p = &plan.prometheus;
    assert_eq!(
        (p.scrape_interval, p.evaluation_interval, p.settle),
        (secs(2), ms(500), secs(7))
    );
    assert_eq!((p.time_scale, p.job.as_str()), (12.5, "ml-api"));
    assert!(p.rule_files[0].ends_with("tests/fixtures/good/rules/a.yml"));
    assert_eq!(spans.rule_files.len(), 1);
    assert_eq!(spans.rule_files[0].key_path, "prometheus.rule_files[1]");
    assert_eq!(plan.load.max_in_flight.get(), 64);

    let ph = &plan.phases;
    assert_eq!(
        (ph[0].duration, ph[0].rate),
        (secs(90), Rate::Constant(40.0))
    );
    assert_eq!(
        ph[1].rate,
        Rate::Ramp {
            from: 0.0,
            to: 100.5
        }
    );
    assert_eq!(
        ph[1].faults.error,
        Some(ErrorFault {
            ratio: 0.1,
            status: 503
        })
    );
    assert_eq!(
        ph[2].faults.error,
        Some(ErrorFault {
            ratio: 1.0,
            status: 500
        })
    );
    assert_eq!(
        ph[2].faults.latency,
        Some(LatencyFault {
            ratio: 0.25,
            delay: DelayDist::Uniform {
                min: Duration::ZERO,
                max: secs(1)
            }
        })
    );
    assert_eq!(
        ph[3].faults.latency,
        Some(LatencyFault {
            ratio: 1.0,
            delay: DelayDist::Exponential {
                mean: ms(100),
                max: secs(1)
            }
        })
    );

    let ids: Vec<_> = plan.expects.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "expect[1]",
            "p50-near",
            "expect[3]",
            "expect[4]",
            "expect[5]",
            "expect[6]",
            "expect[7]"
        ]
    );
    assert!(plan.expects[1].allow_inconclusive && !plan.expects[0].allow_inconclusive);
    let kinds: Vec<_> = plan.expects.iter().map(|e| e.kind.clone()).collect();
    assert_eq!(
        kinds[0],
        ExpectKind::LatencyQuantile {
            quantile: 0.99,
            phase: "warm".into(),
            bound: Bound::Between {
                min: ms(10),
                max: secs(1)
            }
        }
    );
    assert_eq!(
        kinds[1],
        ExpectKind::LatencyQuantile {
            quantile: 0.5,
            phase: "tail".into(),
            bound: Bound::Near {
                value: ms(100),
                tolerance: ms(20)
            }
        }
    );
    assert_eq!(
        kinds[2],
        ExpectKind::ErrorRatio {
            phase: "spike".into(),
            bound: Bound::Above(0.9)
        }
    );
    assert_eq!(
        kinds[3],
        ExpectKind::ErrorRatio {
            phase: "ramp".into(),
            bound: Bound::Between {
                min: 0.05,
                max: 0.15
            }
        }
    );
    assert_eq!(
        kinds[4],
        ExpectKind::Alert(AlertExpectation {
            alert: "HighErrorRate".into(),
            silent_during: vec!["warm".into()],
            fires_during: Some("spike".into()),
            fire_within: Some(secs(30)),
            resolves_during: Some("tail".into()),
            resolve_within: Some(secs(40)),
        })
    );
    assert_eq!(
        kinds[5],
        ExpectKind::PromQl {
            expr: r#"sum(rate(http_requests_total{status=~"5.."}[30s]))"#.into(),
            phase: "spike".into(),
            aggregate: Aggregate::Max,
            bound: Bound::Above(100.0),
        }
    );
    assert_eq!(
        kinds[6],
        ExpectKind::PromQl {
            expr: "up".into(),
            phase: "warm".into(),
            aggregate: Aggregate::Avg,
            bound: Bound::Near {
                value: 1.0,
                tolerance: 0.0
            },
        }
    );
    assert_eq!(spans.alert_names[0].expect_index, 4);
}

#[test]
fn external_closed_loop_fixture() {
    let plan = load_fixture("external.toml").plan;
    match &plan.target {
        TargetPlan::External { url } => assert_eq!(url.as_str(), "http://127.0.0.1:8000/"),
        other => panic!("expected an external target, got {other:?}"),
    }
    assert_eq!(plan.request.method, http::Method::GET);
    assert!(plan.request.bodies.is_empty() && plan.request.headers.is_empty());
    assert_eq!(
        plan.prometheus.url.as_ref().map(|u| u.as_str()),
        Some("http://127.0.0.1:9090/")
    );
    assert_eq!(
        plan.prometheus.rule_files,
        vec![PathBuf::from("/etc/prometheus/alerts.yml")]
    );
    let four = NonZeroU32::new(4).expect("4");
    assert_eq!(
        plan.load.mode,
        LoadMode::Closed {
            concurrency: four,
            think_time: Duration::ZERO
        }
    );
    assert_eq!(plan.phases[0].concurrency, Some(four));
}

#[test]
fn shipped_closed_loop_and_demo_resolve_ramps_and_delays() {
    let (closed, _t1) = load_shipped("closed-loop.toml");
    let eight = NonZeroU32::new(8).expect("8");
    assert_eq!(
        closed.plan.load.mode,
        LoadMode::Closed {
            concurrency: eight,
            think_time: ms(10)
        }
    );
    let conc: Vec<_> = closed
        .plan
        .phases
        .iter()
        .map(|p| p.concurrency.map(NonZeroU32::get))
        .collect();
    assert_eq!(conc, [Some(8), Some(16), Some(8)]);
    assert_eq!(
        closed.plan.phases[1].faults.latency,
        Some(LatencyFault {
            ratio: 0.2,
            delay: DelayDist::Uniform {
                min: ms(100),
                max: ms(400)
            }
        })
    );
    let (demo, _t2) = load_shipped("demo.toml");
    let rates: Vec<_> = demo.plan.phases.iter().map(|p| p.rate).collect();
    assert_eq!(
        rates,
        [
            Rate::Constant(50.0),
            Rate::Ramp {
                from: 50.0,
                to: 200.0
            },
            Rate::Constant(200.0),
            Rate::Constant(200.0),
            Rate::Ramp {
                from: 200.0,
                to: 50.0
            },
        ]
    );
    assert_eq!(
        demo.plan.phases[3].faults.latency,
        Some(LatencyFault {
            ratio: 0.3,
            delay: DelayDist::Exponential {
                mean: ms(200),
                max: secs(2)
            }
        })
    );
    assert!(demo.plan.expects.is_empty());
}

#[test]
fn inline_body_and_phase_rate_override() {
    let plan = load_fixture("inline-body.toml").plan;
    assert_eq!(
        plan.request.bodies,
        vec![bytes::Bytes::from_static(br#"{"features":[1,2,3,4]}"#)]
    );
    let rates: Vec<_> = plan.phases.iter().map(|p| p.rate).collect();
    assert_eq!(rates, [Rate::Constant(5.0), Rate::Constant(7.0)]);
}
