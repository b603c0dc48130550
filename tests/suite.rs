//! `slocheck run A B --jobs 2`: two shipped scenarios as one suite, side by
//! side, with one exit code, one JUnit file holding a testsuite per scenario,
//! and rule coverage across both, gated by `--require-coverage firing`.

mod common;

use common::{Sandbox, dump, read_json, stdout};

#[test]
fn slow_suite_runs_concurrently_reports_each_and_gates_on_coverage() {
    let sb = Sandbox::new();
    let reports = sb.path().join("reports");
    let o = sb.run(&[
        "run",
        "scenarios/baseline.toml",
        "scenarios/error-spike.toml",
        "--jobs",
        "2",
        "--require-coverage",
        "firing",
        "--report-dir",
        reports.to_str().expect("utf-8"),
        "--quiet",
    ]);
    sb.assert_clean();
    // Both scenarios pass on their own terms; the suite fails only because
    // HighLatencyP90 never fired in either of them.
    assert_eq!(o.status.code(), Some(1), "{}", dump(&o));
    let out = stdout(&o);
    assert!(out.contains("2 scenario(s): 2 passed"), "{out}");
    assert!(
        out.contains("HighErrorRate fired and resolved in error-spike")
            && out.contains("HighLatencyP90 never exercised"),
        "{out}"
    );

    let suite = read_json(&reports.join("suite.json"));
    let runs = suite["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    for r in runs {
        assert_eq!(r["exit_code"], 0, "{r}");
        for e in r["report"]["expectations"]
            .as_array()
            .expect("expectations")
        {
            assert_eq!(
                e["verdict"], "pass",
                "verdict changed when run concurrently: {e}"
            );
        }
    }
    assert!(
        suite["coverage_failure"]
            .as_str()
            .is_some_and(|m| m.contains("HighLatencyP90 never fired")),
        "{}",
        suite["coverage_failure"]
    );
    // Each scenario keeps its own report folder.
    for name in ["baseline", "error-spike"] {
        let r = read_json(&reports.join(name).join("report.json"));
        assert!(
            r["coverage"]["alerts"].is_array(),
            "{name}: {}",
            r["coverage"]
        );
    }

    let junit = std::fs::read_to_string(reports.join("junit.xml")).expect("junit");
    for suite_name in [
        "testsuite name=\"baseline\"",
        "testsuite name=\"error-spike\"",
        "testsuite name=\"rule-coverage\"",
    ] {
        assert!(junit.contains(suite_name), "no {suite_name} in {junit}");
    }
    let md = std::fs::read_to_string(reports.join("summary.md")).expect("summary");
    assert!(
        md.contains("## Rule coverage") && md.contains("`HighLatencyP90`"),
        "{md}"
    );
}
