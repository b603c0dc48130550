//! Table-style checks of the cross-key rules, on small inline scenarios.

use std::path::Path;

use super::parse_str;

const PHASE: &str = "[[phase]]\nname = \"a\"\nduration = \"5s\"\nrate = 10\n";

fn err(src: &str) -> String {
    match parse_str(src, Path::new("t.toml")) {
        Ok(_) => panic!("accepted but must be rejected:\n{src}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn cross_key_rules_are_reported_at_the_right_key() {
    let with_phase = |head: &str| format!("{head}\n{PHASE}");
    let with_expect = |exp: &str| {
        format!(
            "{PHASE}\n[[phase]]\nname = \"b\"\nduration = \"5s\"\nrate = 10\n\n[[expect]]\n{exp}\n"
        )
    };
    let cases: Vec<(String, &str)> = vec![
        (with_phase("seed = -1"), "t.toml:1:8: seed: seed must be ≥ 0, got -1"),
        (with_phase("name = \"\""), "t.toml:1:8: name: name must not be empty"),
        (
            with_phase("[target]\nrequest = { body = \"{}\", body_file = \"x.jsonl\" }"),
            "target.request.body_file: body and body_file are both set",
        ),
        (
            with_phase("[target]\nrequest = { content_type = \"a/b\", headers = { Content-Type = \"c/d\" } }"),
            "target.request.headers.Content-Type: content type is set twice",
        ),
        (with_phase("[target]\nrequest = { method = \"P T\" }"), "target.request.method: invalid HTTP method \"P T\""),
        (with_phase("[target]\nrequest = { path = \"predict\" }"), "target.request.path: invalid request path \"predict\""),
        (
            with_phase("[target]\ntimeout = \"1s\"\nconnect_timeout = \"2s\""),
            "target.connect_timeout: connect_timeout (2s) must not exceed timeout (1s)",
        ),
        (with_phase("[target]\ntimeout = \"0s\""), "target.timeout: duration must be > 0"),
        (
            with_phase("[prometheus]\nurl = \"http://127.0.0.1:9090\"\ntime_scale = 20"),
            "prometheus.time_scale: time_scale needs a managed Prometheus",
        ),
        (with_phase("[prometheus]\njob = \"a b\""), "prometheus.job: invalid job name \"a b\""),
        (with_phase("[prometheus]\nrule_files = [\"\"]"), "prometheus.rule_files[1]: rule file path must not be empty"),
        (with_phase("[prometheus]\nscrape_interval = \"1x\""), "prometheus.scrape_interval: invalid duration \"1x\""),
        (
            format!("{PHASE}\n[load]\nmode = \"closed\"\n"),
            "t.toml:6:1: load.concurrency: closed mode needs a concurrency",
        ),
        (with_phase("[load]\nrate = 2000000"), "load.rate: rate must be at most 1000000, got 2000000"),
        (
            "[load]\nmode = \"closed\"\nconcurrency = 2\n[[phase]]\nname = \"a\"\nduration = \"1s\"\nrate = 5\n".into(),
            "phase[1].rate: rate applies to open mode only",
        ),
        (
            "[[phase]]\nname = \"a\"\nduration = \"1s\"\nrate = 5\nconcurrency = 3\n".into(),
            "phase[1].concurrency: concurrency applies to closed mode only",
        ),
        (
            "[[phase]]\nname = \"a\"\nduration = \"1s\"\nrate = 5\nfaults = { status = 500 }\n".into(),
            "phase[1].faults.status: status without error_rate",
        ),
        (
            "[[phase]]\nname = \"a\"\nduration = \"1s\"\nrate = 5\nfaults = { latency_ratio = 0.5 }\n".into(),
            "phase[1].faults.latency_ratio: latency_ratio without delay",
        ),
        (
            "[[phase]]\nname = \"a\"\nduration = \"1s\"\nrate = 5\nfaults = { delay = { uniform = [\"2s\", \"1s\"] } }\n".into(),
            "phase[1].faults.delay: uniform delay needs min ≤ max and max > 0, got [2s, 1s]",
        ),
        (
            "[[phase]]\nname = \"a\"\nduration = \"1s\"\nrate = 5\nfaults = { delay = { exponential = \"1s\", max = \"100ms\" } }\n".into(),
            "phase[1].faults.delay: exponential delay needs mean > 0 and max ≥ mean, got mean 1s, max 100ms",
        ),
        (
            "[[phase]]\nname = \"a\"\nduration = \"1s\"\nrate = 5\nfaults = { delay = { uniform = [\"1s\", \"2s\"], max = \"3s\" } }\n".into(),
            "phase[1].faults.delay: max applies to an exponential delay only",
        ),
        (
            "[[phase]]\nname = \"a\"\nduration = \"1s\"\nrate = 5\nfaults = { delay = \"0s\" }\n".into(),
            "phase[1].faults.delay: delay must be > 0",
        ),
        (
            "[[phase]]\nname = \"a\"\nduration = \"400d\"\nrate = 5\n".into(),
            "phase[1].duration: duration \"400d\" is longer than 365 days",
        ),
        (
            with_expect("alert = \"HighErrorRate\"\nsilent_during = [\"a\"]\nfires_during = \"a\""),
            "expect[1].fires_during: phase \"a\" is also in silent_during",
        ),
        (
            with_expect("alert = \"HighErrorRate\"\nfires_during = \"b\"\nresolves_during = \"a\""),
            "expect[1].resolves_during: phase \"a\" comes before fires_during \"b\"",
        ),
        (
            with_expect("alert = \"High Error\"\nfires_during = \"a\""),
            "expect[1].alert: invalid alert name \"High Error\"",
        ),
        (
            with_expect("alert = \"X\"\nfires_during = \"a\"\nfire_within = \"0s\""),
            "expect[1].fire_within: duration must be > 0",
        ),
        (
            with_expect("latency_quantile = 0.9\nphase = \"a\"\nbelow = 0.25"),
            "expect[1].below: expected a duration string such as \"250ms\", got float 0.25",
        ),
        (
            with_expect("latency_quantile = 0.9\nphase = \"a\"\nbelow = \"1s\"\nabove = \"2s\""),
            "expect[1].above: give only one of below, above, near, between, got below and above",
        ),
        (
            with_expect("latency_quantile = 0.9\nphase = \"a\"\nbetween = [\"2s\", \"1s\"]"),
            "expect[1].between: between needs min ≤ max",
        ),
        (
            with_expect("latency_quantile = 0.9\nphase = \"a\"\nbetween = [\"1s\"]"),
            "expect[1].between: between needs two values [min, max]",
        ),
        (
            with_expect("latency_quantile = 0.9\nphase = \"a\"\ntolerance = \"1s\""),
            "expect[1].tolerance: tolerance without near",
        ),
        (with_expect("latency_quantile = 0.9\nbelow = \"1s\""), "expect[1].phase: missing phase"),
        (
            with_expect("promql = \"up\"\nphase = \"a\"\nnear = 1\ntolerance = -0.5"),
            "expect[1].tolerance: tolerance must be ≥ 0",
        ),
        (with_expect("latency_quantile = 0.9\nphase = \"a\""), "expect[1]: missing bound"),
        (
            with_expect("promql = \"up\"\nphase = \"a\"\nbelow = 1\nsilent_during = [\"a\"]"),
            "expect[1].silent_during: silent_during does not apply to a promql expectation",
        ),
        (
            with_expect("promql = \"up\"\nphase = \"a\"\naggregate = \"median\"\nbelow = 1"),
            "expect[1].aggregate: unknown variant `median`, expected one of `last`, `min`, `max`, `avg`",
        ),
        (
            with_expect("name = \"x\"\npromql = \"up\"\nphase = \"a\"\nbelow = 1\n[[expect]]\nname = \"x\"\npromql = \"up\"\nphase = \"a\"\nbelow = 1"),
            "expect[2].name: duplicate expectation name \"x\"",
        ),
        (with_phase("[target]\nrequest = { headers = { \"a\" = \"\\u0007\" } }"), "invalid header value"),
        (with_phase("allow_inconclusive = 1"), "allow_inconclusive: invalid type: integer `1`, expected true or false"),
        (with_phase("[load]\nrate = \"fast\""), "load.rate: invalid type: string \"fast\", expected requests per second"),
    ];
    for (src, want) in cases {
        let got = err(&src);
        assert!(
            got.contains(want),
            "\nsource:\n{src}\nwant: {want}\ngot:  {got}"
        );
        assert_eq!(
            got.lines().count(),
            1,
            "exactly one problem expected:\n{got}"
        );
    }
}

#[test]
fn error_locations_are_line_and_character_column() {
    let src = format!(
        "# é comment\n{PHASE}\n[[expect]]\nlatency_quantile = 1.5\nphase = \"a\"\nbelow = \"1s\"\n"
    );
    assert_eq!(
        err(&src),
        "t.toml:8:20: expect[1].latency_quantile: quantile must be between 0 and 1 (exclusive), got 1.5 (hint: P90 is 0.9)"
    );
}

#[test]
fn alert_expectation_spans_are_kept_for_checks_against_the_rules() {
    let src = format!(
        "{PHASE}\n[[expect]]\npromql = \"up\"\nphase = \"a\"\nbelow = 1\n\n[[expect]]\n  alert = \"Foo\"\nsilent_during = [\"a\"]\n"
    );
    let loaded = parse_str(&src, Path::new("dir/t.toml")).unwrap_or_else(|e| panic!("{e}"));
    let a = &loaded.spans.alert_names;
    assert_eq!(a.len(), 1);
    assert_eq!(
        (
            a[0].expect_index,
            a[0].key_path.as_str(),
            a[0].name.as_str()
        ),
        (1, "expect[2].alert", "Foo")
    );
    assert_eq!((a[0].location.line, a[0].location.col), (12, 11));
}
