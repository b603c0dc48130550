//! The fault protocol held to its shared table
//! (`tests/fixtures/fault-protocol-cases.json`, read by the Python package's
//! tests too): the protocol module's parser, encoder and security rule, the
//! built-in target over real HTTP (status, body, acknowledgement), and the
//! load engine's counts of requested and acknowledged faults against the
//! built-in target with faults on and off. Any of them drifting from the
//! table fails here; the Python package drifting fails its pytest suite.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use serde::Deserialize;
use slocheck::fault_protocol::{self, Fault};
use slocheck::load::{LiveStats, run};
use slocheck::plan::*;
use slocheck::target::{TargetConfig, TargetHandle};
use tokio_util::sync::CancellationToken;

mod common;

#[derive(Deserialize)]
struct Cases {
    headers: Vec<HeaderCase>,
    security: Vec<SecurityCase>,
}

#[derive(Deserialize)]
struct HeaderCase {
    header: String,
    fault: Option<CaseFault>,
    #[serde(default)]
    applied: Option<String>,
}

#[derive(Deserialize)]
struct CaseFault {
    status: Option<u16>,
    delay_us: Option<u64>,
}

#[derive(Deserialize)]
struct SecurityCase {
    peer: Option<IpAddr>,
    token: Option<String>,
    presented: std::collections::BTreeMap<String, String>,
    honoured: bool,
}

fn cases() -> Cases {
    let path = common::repo().join("tests/fixtures/fault-protocol-cases.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("valid table")
}

impl CaseFault {
    fn fault(&self) -> Fault {
        Fault {
            status: self.status,
            delay: self.delay_us.map(Duration::from_micros),
        }
    }
}

#[test]
fn parser_and_encoder_follow_the_table() {
    let cases = cases();
    assert!(cases.headers.len() > 40, "the table lost rows");
    for c in &cases.headers {
        let got = fault_protocol::parse(&c.header);
        match &c.fault {
            None => assert!(
                got.is_err(),
                "{:?} must be malformed, got {got:?}",
                c.header
            ),
            Some(want) => {
                assert_eq!(got.as_ref().ok(), Some(&want.fault()), "{:?}", c.header);
                assert_eq!(
                    Some(want.fault().encode()),
                    c.applied,
                    "canonical form of {:?}",
                    c.header
                );
            }
        }
    }
}

#[test]
fn security_rule_follows_the_table() {
    for c in cases().security {
        let mut headers = HeaderMap::new();
        for (k, v) in &c.presented {
            headers.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        assert_eq!(
            fault_protocol::honoured(c.peer, &headers, c.token.as_deref()),
            c.honoured,
            "peer {:?}, token {:?}, presented {:?}",
            c.peer,
            c.token,
            c.presented
        );
    }
}

fn any_fault() -> impl Strategy<Value = Fault> {
    let status = proptest::option::of(200u16..=599);
    // Whole microseconds up to the limit: what the wire can carry.
    let delay = proptest::option::of((0u64..=60_000_000).prop_map(Duration::from_micros));
    (status, delay)
        .prop_map(|(status, delay)| Fault { status, delay })
        .prop_filter("a fault asks for something", |f| !f.is_empty())
}

proptest! {
    #[test]
    fn encode_then_parse_is_identity(f in any_fault()) {
        let text = f.encode();
        prop_assert_eq!(fault_protocol::parse(&text), Ok(f));
        let value = f.header_value().expect("a header value");
        prop_assert_eq!(fault_protocol::parse_header(&value), Ok(f));
    }

    #[test]
    fn parse_then_encode_is_canonical(
        status in proptest::option::of(200u16..=599),
        n in 0u64..=60,
        unit in prop::sample::select(vec!["s", "ms", "us"]),
        ws in "[ \t]{0,2}",
        delay_first: bool,
    ) {
        let delay = format!("delay{ws}={ws}{n}{unit}");
        let text = match status {
            Some(s) if delay_first => format!("{delay}{ws},{ws}status={s}"),
            Some(s) => format!("status={s}{ws},{ws}{delay}"),
            None => delay,
        };
        let parsed = fault_protocol::parse(&text).expect("valid by construction");
        let again = fault_protocol::parse(&parsed.encode()).expect("canonical parses");
        prop_assert_eq!(again, parsed);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,40}") {
        let _ = fault_protocol::parse(&text);
    }
}

/// The load engine's fault plan speaks the protocol: every header it sends
/// parses to exactly the decision it recorded as ground truth.
#[test]
fn load_engine_headers_parse_to_their_decisions() {
    let spec = faulted_plan().phases[1].faults.clone();
    let mut plan = slocheck::load::faults::PhaseFaults::new(9, 1, &spec);
    let mut seen = std::collections::BTreeSet::new();
    for n in 0..5000 {
        let d = plan.decide(n);
        let want = Fault {
            status: d.error.then_some(503),
            delay: d.delay,
        };
        match d.header {
            None => assert!(want.is_empty(), "request {n}: fault without header"),
            Some(h) => {
                assert_eq!(fault_protocol::parse_header(&h), Ok(want), "request {n}");
                seen.insert(h.to_str().unwrap().to_owned());
            }
        }
    }
    // Status only, delays only and both, over many distinct delays.
    assert!(seen.len() > 30, "{seen:?}");
}

async fn target(cfg: TargetConfig) -> TargetHandle {
    TargetHandle::start(cfg).await.expect("target starts")
}

/// Every row of the table sent to the built-in target over real HTTP: what
/// it answers and acknowledges. Long delays are left to the parser test.
#[tokio::test]
async fn built_in_target_follows_the_table() {
    let t = target(TargetConfig::default()).await;
    let url = t.base_url().join("predict").unwrap();
    let client = reqwest::Client::new();
    for c in cases().headers {
        // HTTP strips surrounding whitespace before any service sees it.
        if c.header.trim_matches([' ', '\t']) != c.header
            || c.fault
                .as_ref()
                .is_some_and(|f| f.delay_us.unwrap_or(0) > 300_000)
        {
            continue;
        }
        let resp = client
            .get(url.clone())
            .header(fault_protocol::FAULT_HEADER, &c.header)
            .send()
            .await
            .expect("answer");
        let status = resp.status().as_u16();
        let ack = resp
            .headers()
            .get(fault_protocol::APPLIED_HEADER)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = resp.text().await.unwrap();
        match &c.fault {
            None => assert_eq!((status, ack), (200, None), "{:?}", c.header),
            Some(f) => {
                assert_eq!(ack, c.applied, "{:?}", c.header);
                let want_status = f.status.unwrap_or(200);
                assert_eq!(status, want_status, "{:?}", c.header);
                if f.status.is_some() {
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                    assert_eq!(
                        v,
                        serde_json::json!({"error": "injected fault", "status": want_status})
                    );
                }
            }
        }
    }
    t.shutdown().await;
}

fn faulted_plan() -> Plan {
    let mut plan = Plan::single_phase("ack", LoadMode::Open, 100.0, Duration::from_secs(1));
    plan.request.path = "/predict".into();
    plan.phases.push(PhasePlan {
        name: "spike".into(),
        duration: Duration::from_secs(2),
        rate: Rate::Constant(100.0),
        concurrency: None,
        faults: FaultSpec {
            error: Some(ErrorFault {
                ratio: 0.2,
                status: 503,
            }),
            latency: Some(LatencyFault {
                ratio: 0.1,
                delay: DelayDist::Uniform {
                    min: Duration::from_millis(1),
                    max: Duration::from_millis(30),
                },
            }),
        },
        drift: None,
        evaluate: true,
    });
    plan
}

async fn load(plan: &Plan, t: &TargetHandle) -> slocheck::record::RunRecord {
    run(
        plan,
        &t.base_url(),
        Arc::new(LiveStats::new()),
        CancellationToken::new(),
    )
    .await
    .expect("load runs")
}

#[tokio::test]
async fn load_engine_counts_requested_and_acknowledged_faults() {
    let plan = faulted_plan();
    let on = target(TargetConfig::default()).await;
    let rec = load(&plan, &on).await;
    on.shutdown().await;
    let (clean, spike) = (&rec.phases[0], &rec.phases[1]);
    assert_eq!((clean.faults_requested, clean.faults_acknowledged), (0, 0));
    // 20 % errors and 10 % delays of 200 requests, some overlapping.
    assert!(
        (50..=62).contains(&spike.faults_requested),
        "{} requested",
        spike.faults_requested
    );
    assert!(spike.faults_requested >= spike.injected_errors.max(spike.injected_delays));
    assert_eq!(spike.faults_acknowledged, spike.faults_requested);
    assert!(!spike.faults_ignored());

    let off = target(TargetConfig {
        faults_enabled: false,
        ..TargetConfig::default()
    })
    .await;
    let rec = load(&plan, &off).await;
    off.shutdown().await;
    let spike = &rec.phases[1];
    assert!(spike.faults_requested > 0);
    assert_eq!(spike.faults_acknowledged, 0);
    assert!(spike.faults_ignored());
    assert_eq!(
        spike.server_errors(),
        0,
        "a target with faults off injected"
    );
}
