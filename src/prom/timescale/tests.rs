//! Unit tests for the time-scale rewrite: tricky PromQL, rule files, and a
//! round trip of the shipped rules through promtool.

use super::*;
use crate::prom::rules::{load, parse_str};

fn scaled(expr: &str, factor: f64) -> String {
    scale_expr(expr, factor).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn same_tree(a: &str, b: &str) {
    let pa = normalized(parser::parse(a).expect("a parses"));
    let pb = normalized(parser::parse(b).expect("b parses"));
    assert_eq!(pa, pb, "{a}  vs  {b}");
}

#[test]
fn tricky_expressions_scale_and_reparse() {
    let cases = [
        // (input, factor, expected — compared as parse trees, so spacing is free)
        ("rate(x[5m])", 20.0, "rate(x[15s])"),
        (
            "sum(rate(x[5m])) by (le)",
            20.0,
            "sum by (le) (rate(x[15s]))",
        ),
        ("rate(x[5m] offset 10m)", 20.0, "rate(x[15s] offset 30s)"),
        ("x offset -1h", 60.0, "x offset -1m"),
        (
            "rate(x[5m] @ 1609746000)",
            10.0,
            "rate(x[30s] @ 1609746000)",
        ),
        ("rate(x[5m] @ start())", 10.0, "rate(x[30s] @ start())"),
        (
            "max_over_time(rate(x[5m])[30m:1m])",
            10.0,
            "max_over_time(rate(x[30s])[3m:6s])",
        ),
        (
            "max_over_time(rate(x[5m])[30m:])",
            10.0,
            "max_over_time(rate(x[30s])[3m:])",
        ),
        (
            "min_over_time(max_over_time(rate(x[1m])[10m:30s])[1h:5m] offset 1h)",
            60.0,
            "min_over_time(max_over_time(rate(x[1s])[10s:500ms])[1m:5s] offset 1m)",
        ),
        (
            "rate(a[5m]) / rate(b[1h])",
            20.0,
            "rate(a[15s]) / rate(b[3m])",
        ),
        (
            "sum(rate(a[5m])) by (job) / on(job) group_left(team) max(max_over_time(b[10m:])) by (job, team)",
            20.0,
            "sum(rate(a[15s])) by (job) / on(job) group_left(team) max(max_over_time(b[30s:])) by (job, team)",
        ),
        (
            "rate(a[5m]) > bool ignoring(status) rate(b[5m])",
            5.0,
            "rate(a[1m]) > bool ignoring(status) rate(b[1m])",
        ),
        ("x > bool 0.05", 3.0, "x > bool 0.05"),
        (
            "label_replace(rate(x[2m]), \"dst\", \"$1\", \"src\", \"(.*)\")",
            4.0,
            "label_replace(rate(x[30s]), \"dst\", \"$1\", \"src\", \"(.*)\")",
        ),
        (
            r#"rate(x{path=~"/a\\.b|/c.*", s!~"5.."}[5m])"#,
            2.0,
            r#"rate(x{path=~"/a\\.b|/c.*", s!~"5.."}[2m30s])"#,
        ),
        (
            r#"rate(x{q="say \"hi\"\n"}[5m])"#,
            5.0,
            r#"rate(x{q="say \"hi\"\n"}[1m])"#,
        ),
        ("topk(3, rate(x[5m]))", 5.0, "topk(3, rate(x[1m]))"),
        (
            "topk(scalar(max(rate(x[5m]))), y)",
            5.0,
            "topk(scalar(max(rate(x[1m]))), y)",
        ),
        (
            r#"rate({a="1" or c!="3", b=~"2"}[5m])"#,
            5.0,
            r#"rate({a="1" or b=~"2", c!="3"}[1m])"#,
        ),
        (
            "quantile_over_time(0.9, x[5m])",
            5.0,
            "quantile_over_time(0.9, x[1m])",
        ),
        ("-rate(x[5m]) + 1e3 - -2", 5.0, "-rate(x[1m]) + 1e3 - -2"),
        (
            "vector(1) and on() (absent_over_time(x[5m]) or vector(0))",
            5.0,
            "vector(1) and on() (absent_over_time(x[1m]) or vector(0))",
        ),
        ("x == Inf or x != NaN", 5.0, "x == Inf or x != NaN"),
        (
            "{__name__=~\"http_.*\", job=\"a\"}[5m]",
            5.0,
            "{__name__=~\"http_.*\", job=\"a\"}[1m]",
        ),
        (
            "histogram_quantile(0.90, sum(rate(b[5m])) by (le)) > 0.25",
            20.0,
            "histogram_quantile(0.9, sum by (le) (rate(b[15s]))) > 0.25",
        ),
        ("rate(x[7s])", 3.0, "rate(x[2333ms])"),
        ("rate(x[1ms])", 1000.0, "rate(x[1ms])"),
        ("rate(x[5m])", 0.5, "rate(x[10m])"),
    ];
    for (input, factor, expected) in cases {
        let out = scaled(input, factor);
        same_tree(&out, expected);
        // Scaling back up restores every range that did not need rounding.
        if !input.contains("7s") && !input.contains("1ms") {
            same_tree(&scaled(&out, 1.0 / factor), input);
        }
    }
}

#[test]
fn at_timestamps_are_untouched() {
    let out = scaled("x @ 1609746000.123 offset 10m", 10.0);
    assert!(out.contains("@ 1609746000.123"), "{out}");
    assert!(out.contains("offset 1m"), "{out}");
}

#[test]
fn factor_one_is_identity_on_the_tree() {
    for e in [
        "rate(x[5m])",
        "sum(rate(x[5m] offset 1m)) by (a) > 0.1",
        "max_over_time(x[1h:1m])",
    ] {
        same_tree(&scaled(e, 1.0), e);
    }
}

#[test]
fn bad_input_and_factor_are_errors() {
    assert!(matches!(
        scale_expr("sum(", 2.0),
        Err(RulesError::Expr { .. })
    ));
    for f in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(
            matches!(scale_expr("x", f), Err(RulesError::Factor { .. })),
            "{f}"
        );
    }
}

#[test]
fn durations_round_to_ms_with_floor_of_1ms() {
    assert_eq!(
        scale_duration(Duration::from_secs(300), 20.0),
        Duration::from_secs(15)
    );
    assert_eq!(
        scale_duration(Duration::from_secs(1), 3.0),
        Duration::from_millis(333)
    );
    assert_eq!(
        scale_duration(Duration::from_millis(1), 1e9),
        Duration::from_millis(1)
    );
    assert_eq!(scale_duration(Duration::ZERO, 20.0), Duration::ZERO);
    assert_eq!(
        scale_duration(Duration::from_secs(u64::MAX / 4000), 1e-9),
        Duration::from_millis(u64::MAX)
    );
}

const FILE: &str = r#"groups:
  - name: g1
    interval: 1m
    rules:
      - record: r:rate
        expr: sum(rate(x[10m]))
        labels: {team: ml}
      - alert: A
        expr:   rate(x[5m])   > 0.05
        for: 5m
        keep_firing_for: 10m
        labels:
          severity: critical
        annotations:
          summary: "it's {{ $labels.job }}: broken"
          description: "value: {{ $value | humanizePercentage }}\nsecond line"
      - alert: B
        expr: up == 0
"#;

#[test]
fn rule_file_scaling_changes_every_timing_and_keeps_the_rest() {
    let file = parse_str(FILE, Path::new("in.yml")).expect("valid");
    let (yaml, changes) = scale_rule_file(&file, 20.0).expect("scales");
    let back = parse_str(&yaml, Path::new("out.yml")).expect("scaled YAML is a valid rule file");
    let g = &back.groups[0];
    assert_eq!(g.interval, Some(Duration::from_secs(3)));
    let a = back.alert("A").expect("A");
    assert_eq!(a.for_, Duration::from_secs(15));
    assert_eq!(a.keep_firing_for, Duration::from_secs(30));
    same_tree(&a.expr, "rate(x[15s]) > 0.05");
    assert_eq!(a.annotations, file.alert("A").expect("A").annotations);
    assert_eq!(a.labels, file.alert("A").expect("A").labels);
    let b = back.alert("B").expect("B");
    assert!(b.for_.is_zero(), "absent `for` stays absent");
    assert_eq!(
        back.recording_rules().next().map(|r| r.labels.clone()),
        file.recording_rules().next().map(|r| r.labels.clone())
    );

    let fields: Vec<_> = changes
        .iter()
        .map(|c| {
            (
                c.rule.as_str(),
                c.field.as_str(),
                c.original.as_str(),
                c.scaled.as_str(),
            )
        })
        .collect();
    assert!(fields.contains(&("", "interval", "1m", "3s")), "{fields:?}");
    assert!(fields.contains(&("A", "for", "5m", "15s")), "{fields:?}");
    assert!(
        fields.contains(&("A", "keep_firing_for", "10m", "30s")),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("r:rate", "expr", "sum(rate(x[10m]))", "sum(rate(x[30s]))")),
        "{fields:?}"
    );
    assert!(
        fields.iter().any(|f| f.0 == "A" && f.1 == "expr"),
        "{fields:?}"
    );
    assert!(
        !fields.iter().any(|f| f.0 == "B"),
        "B has nothing to scale: {fields:?}"
    );
    assert!(changes.iter().all(|c| c.group == "g1"));
}

#[test]
fn min_range_reports_the_shortest_window() {
    let file = parse_str(FILE, Path::new("in.yml")).expect("valid");
    assert_eq!(min_range(&file), Some(Duration::from_secs(300)));
    assert_eq!(
        expr_min_range("max_over_time(rate(x[1m])[10m:30s])"),
        Some(Duration::from_secs(60))
    );
    assert_eq!(
        expr_max_range("max_over_time(rate(x[1m])[10m:30s])"),
        Some(Duration::from_secs(600))
    );
    assert_eq!(expr_min_range("up == 0"), None);
}

fn shipped() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    vec![root.join("recording.yml"), root.join("alerts.yml")]
}

#[test]
fn write_scaled_never_touches_inputs_and_promtool_accepts_the_copies() {
    let inputs = shipped();
    let before: Vec<_> = inputs
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = write_scaled(&inputs, 20.0, dir.path()).expect("writes");
    let after: Vec<_> = inputs
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    assert_eq!(before, after);
    assert_eq!(out.len(), 2);
    for f in &out {
        assert!(f.scaled.starts_with(dir.path()));
        assert!(!f.changes.is_empty());
    }
    let alerts = load(&out[1].scaled).expect("scaled alerts load");
    let high = alerts.alert("HighErrorRate").expect("HighErrorRate");
    assert_eq!(high.for_, Duration::from_secs(15));
    same_tree(
        &high.expr,
        r#"sum(rate(http_requests_total{status=~"5.."}[15s])) / sum(rate(http_requests_total[15s])) > 0.05"#,
    );
    let paths: Vec<_> = out.iter().map(|f| f.scaled.clone()).collect();
    match promtool_check(&paths) {
        None => eprintln!("promtool not on PATH; skipped the promtool round trip"),
        Some(r) => r.expect("promtool accepts the scaled rules"),
    }
}

#[test]
fn write_scaled_keeps_clashing_names_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    for d in [&a, &b] {
        std::fs::create_dir_all(d).expect("mkdir");
        std::fs::write(d.join("r.yml"), FILE).expect("write");
    }
    let out = write_scaled(
        &[a.join("r.yml"), b.join("r.yml")],
        2.0,
        &dir.path().join("out"),
    )
    .expect("ok");
    assert_ne!(out[0].scaled, out[1].scaled);
    assert!(out.iter().all(|f| f.scaled.exists()));
}

#[test]
fn write_scaled_refuses_to_overwrite_an_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("r.yml");
    std::fs::write(&input, FILE).expect("write");
    let err = write_scaled(std::slice::from_ref(&input), 2.0, dir.path()).expect_err("refused");
    assert!(err.to_string().contains("overwrite"), "{err}");
    assert_eq!(std::fs::read_to_string(&input).expect("read"), FILE);
}

#[test]
fn promtool_rejects_a_broken_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(\n",
    )
    .expect("write");
    if let Some(r) = promtool_check(&[bad]) {
        assert!(r.is_err());
    }
}

#[test]
fn no_rule_files_pass_the_promtool_check() {
    // `rule_files = []` is a valid scenario; promtool refuses an empty list.
    assert_eq!(promtool_check(&[]), Some(Ok(())));
}

#[test]
fn text_that_looks_like_a_duration_is_not_rewritten() {
    let out = scaled(r#"rate(x{status=~"5m..", note="[5m] offset 5m"}[5m])"#, 5.0);
    assert!(out.contains(r#"status=~"5m..""#), "{out}");
    assert!(out.contains(r#"note="[5m] offset 5m""#), "{out}");
    assert!(out.ends_with("[1m])"), "{out}");
}

#[test]
fn good_fixture_scales_and_promtool_accepts_it() {
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules/good/full.yml");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = write_scaled(std::slice::from_ref(&input), 60.0, dir.path()).expect("scales");
    let back = load(&out[0].scaled).expect("reloads");
    let tricky = back.alert("Tricky").expect("Tricky");
    same_tree(
        &tricky.expr,
        r#"max_over_time(rate(x{path=~"/a\\.b|5m.."}[5s] offset 1m)[30s:1s] @ start()) > bool on(job) group_left(team) max by (job, team) (team_info)"#,
    );
    assert_eq!(back.groups[0].interval, Some(Duration::from_millis(500)));
    assert_eq!(back.groups[0].limit, Some(100));
    if let Some(r) = promtool_check(&[out[0].scaled.clone()]) {
        r.expect("promtool accepts the scaled fixture");
    }
}

#[test]
fn ages_compared_with_time_scale_like_durations() {
    same_tree(
        &scaled("time() - push_time_seconds{job=\"e\"} > 900", 30.0),
        "time() - push_time_seconds{job=\"e\"} > 30",
    );
    same_tree(
        &scaled("600 < (time() - max(push_time_seconds))", 20.0),
        "30 < (time() - max(push_time_seconds))",
    );
    // Only ages: other numbers keep their meaning.
    same_tree(&scaled("x - y > 900", 30.0), "x - y > 900");
    same_tree(&scaled("rate(x[5m]) > 0.5", 20.0), "rate(x[15s]) > 0.5");
}
