//! Delivered load in the verdict: the `load` expectation kind is validated
//! with located messages, and a whole `slocheck run` (built-in target, real
//! managed Prometheus, `--metrics-listen`) judges it, turns a would-be pass
//! over a starved phase into inconclusive, and lets Prometheus scrape the
//! generator's own metrics as a second job.

mod common;

use common::{Sandbox, dump, read_json};
use slocheck::plan::{ExpectKind, LoadExpectation};
use slocheck::scenario;

const PHASES: &str = r#"
[[phase]]
name = "steady"
duration = "5s"
rate = 10
"#;

#[test]
fn load_expectation_keys_table() {
    let sb = Sandbox::new();
    let ok = sb.write(
        "ok.toml",
        &format!(
            "{PHASES}\n[[expect]]\nload = {{ phase = \"steady\", min_achieved_ratio = 0.99, max_dropped = 0 }}\n"
        ),
    );
    let plan = scenario::load(&ok).expect("valid").plan;
    assert_eq!(
        plan.expects[0].kind,
        ExpectKind::Load(LoadExpectation {
            phase: "steady".into(),
            min_achieved_ratio: Some(0.99),
            max_dropped: Some(0),
        })
    );
    // (the load table, a fragment the one-line error must contain)
    let bad = [
        (
            "{ phase = \"steady\" }",
            "expect[1].load: load expectation checks nothing",
        ),
        (
            "{ phase = \"steady\", min_achieved_ratio = 1.5 }",
            "expect[1].load.min_achieved_ratio: min_achieved_ratio 1.5 is not in [0, 1]",
        ),
        (
            "{ phase = \"spike\", max_dropped = 0 }",
            "expect[1].load.phase: unknown phase \"spike\"",
        ),
        ("{ phase = \"steady\", max_dropped = -1 }", "max_dropped"),
        ("{ phase = \"steady\", min_ratio = 0.9 }", "min_ratio"),
    ];
    for (i, (table, want)) in bad.iter().enumerate() {
        let path = sb.write(
            &format!("bad{i}.toml"),
            &format!("{PHASES}\n[[expect]]\nload = {table}\n"),
        );
        let err = scenario::load(&path).expect_err(table).to_string();
        assert!(err.contains(want), "{table}: {err}");
        assert!(err.starts_with(&path.display().to_string()), "{err}");
    }
    // A key of another kind beside `load` is refused with the load hint.
    let mixed = sb.write(
        "mixed.toml",
        &format!(
            "{PHASES}\n[[expect]]\nload = {{ phase = \"steady\", max_dropped = 0 }}\nbelow = 1\n"
        ),
    );
    let err = scenario::load(&mixed).expect_err("mixed").to_string();
    assert!(
        err.contains("below does not apply to a load expectation"),
        "{err}"
    );
}

#[test]
fn slow_run_gates_on_delivered_load_and_scrapes_the_generator() {
    if common::require_tool(&["prometheus"], "ci/setup.sh").is_none() {
        return;
    }
    let sb = Sandbox::new();
    // "starved": every request is delayed 300 ms and at most 4 are in
    // flight, so about 13 of the 40 requests/s can be sent: a third of the
    // schedule, whatever the machine's speed.
    let scenario = sb.write(
        "delivered.toml",
        &r#"
name = "delivered"
seed = 3

[target]
request = { method = "GET", path = "/predict" }

[prometheus]
scrape_interval = "1s"
evaluation_interval = "1s"
settle = "3s"
rule_files = [RULES]

[load]
mode = "open"
rate = 10
max_in_flight = 4

[[phase]]
name = "steady"
duration = "6s"

[[phase]]
name = "starved"
duration = "6s"
rate = 40
faults = { delay = "300ms" }

[[expect]]
name = "steady-delivered"
load = { phase = "steady", min_achieved_ratio = 0.9 }

[[expect]]
name = "starved-errors"
error_ratio = { phase = "starved", below = 0.5 }

[[expect]]
name = "generator-scraped"
promql = 'sum(slocheck_generator_requests_sent_total{job="slocheck-generator"})'
phase = "steady"
aggregate = "last"
above = 0
"#
        .replace(
            "RULES",
            &format!("{:?}", common::repo().join("rules/recording.yml")),
        ),
    );
    let json = sb.path().join("report.json");
    let o = sb.run(&[
        "run",
        scenario.to_str().unwrap(),
        "--metrics-listen",
        "127.0.0.1:0",
        "--json",
        json.to_str().unwrap(),
        "--quiet",
    ]);
    let r = read_json(&json);
    sb.assert_clean();
    assert_eq!(o.status.code(), Some(1), "{}", dump(&o));
    let by_id = |id: &str| {
        r["expectations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .unwrap_or_else(|| panic!("no {id}: {r}"))
            .clone()
    };
    let steady = by_id("steady-delivered");
    assert_eq!(steady["verdict"], "pass", "{steady}");
    assert_eq!(steady["kind"], "load");
    let starved = by_id("starved-errors");
    assert_eq!(starved["verdict"], "inconclusive", "{starved}");
    assert!(
        starved["reason"]
            .as_str()
            .unwrap()
            .contains("delivered only"),
        "{starved}"
    );
    let scraped = by_id("generator-scraped");
    assert_eq!(scraped["verdict"], "pass", "{scraped}");
    // Lag per phase and the pacer are in the report and on the terminal.
    for ph in r["phases"].as_array().unwrap() {
        assert!(ph["lag_us"]["p99"].is_u64(), "{ph}");
    }
    assert!(r["generator"]["pacer"].is_string(), "{}", r["generator"]);
    let out = common::stdout(&o);
    let phases = out.split("Expectations").next().unwrap_or_default();
    assert_eq!(phases.matches("scheduler lag p50").count(), 2, "{out}");
    assert!(common::stderr(&o).contains("generator metrics at http://127.0.0.1:"));
}
