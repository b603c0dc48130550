//! The CI examples in `ci/examples/` are real files a user copies: they parse
//! as YAML, run the gate with `--report-dir`, and publish the JUnit and HTML
//! files that `--report-dir` writes, also when the gate fails.

use std::path::PathBuf;

use serde_json::Value;
use slocheck::report::dir;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(name: &str) -> Value {
    let path = repo().join("ci/examples").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()))
}

const GATE: &str = "slocheck run scenarios/error-spike.toml --report-dir out";

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Every repository file a CI line names must exist.
fn assert_files_exist(commands: &[String]) {
    for c in commands {
        for word in c.split_whitespace() {
            if word.starts_with("ci/") || word.starts_with("scenarios/") {
                assert!(
                    repo().join(word).exists(),
                    "{word} (in {c:?}) does not exist"
                );
            }
        }
    }
}

fn out(name: &str) -> String {
    format!("out/{name}")
}

#[test]
fn github_actions_workflow_runs_the_gate_and_publishes_reports() {
    let w = yaml("github-actions.yml");
    let steps = w["jobs"]["slo-gate"]["steps"]
        .as_array()
        .expect("jobs.slo-gate.steps");
    let runs: Vec<String> = steps
        .iter()
        .filter_map(|s| s["run"].as_str().map(str::to_string))
        .collect();
    assert!(runs.iter().any(|r| r == "ci/setup.sh"), "{runs:?}");
    assert!(runs.iter().any(|r| r.contains(GATE)), "{runs:?}");
    assert_files_exist(&runs);

    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .expect("an upload-artifact step");
    assert_eq!(
        upload["if"], "${{ !cancelled() }}",
        "published on failure too"
    );
    let paths = upload["with"]["path"].as_str().unwrap_or_default();
    for f in [dir::HTML, dir::JUNIT, dir::JSON, dir::MARKDOWN] {
        assert!(
            paths.lines().any(|l| l.trim() == out(f)),
            "{f} not uploaded: {paths}"
        );
    }
    let junit = steps
        .iter()
        .find(|s| s["with"]["report_paths"].is_string())
        .expect("a JUnit report step");
    assert_eq!(junit["with"]["report_paths"], out(dir::JUNIT));
    assert_eq!(junit["if"], "${{ !cancelled() }}");
}

#[test]
fn gitlab_job_runs_the_gate_and_publishes_reports() {
    let j = &yaml("gitlab-ci.yml")["slo-gate"];
    let script = strings(&j["script"]);
    assert_eq!(script.first().map(String::as_str), Some("ci/setup.sh"));
    assert!(script.iter().any(|r| r.contains(GATE)), "{script:?}");
    assert_files_exist(&script);
    let a = &j["artifacts"];
    assert_eq!(a["when"], "always", "published on failure too");
    assert_eq!(a["reports"]["junit"], out(dir::JUNIT));
    let paths = strings(&a["paths"]);
    for f in [dir::HTML, dir::JUNIT, dir::JSON, dir::MARKDOWN] {
        assert!(paths.contains(&out(f)), "{f} not kept: {paths:?}");
    }
}

#[test]
fn ci_test_script_installs_the_browser() {
    let text = std::fs::read_to_string(repo().join("ci/test.sh")).unwrap();
    // `ci/setup.sh TOOL…` installs what the tests need; Chromium among them.
    assert!(
        text.lines().any(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some("ci/setup.sh") && words.any(|w| w == "chromium")
        }),
        "{text}"
    );
}
