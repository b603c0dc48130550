//! `slocheck run --export-promtool`: a real run of the shipped error-spike
//! scenario becomes a `promtool test rules` file that passes on the rules
//! the run used and fails when the alert rule is mutated (threshold, metric
//! name, `for`): the replay tests the rules, not itself.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Sandbox, apply, dump, require_tool};

/// `promtool test rules DIR/*.yml`, as a user would run it.
fn promtool_test(promtool: &Path, dir: &Path) -> std::process::Output {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read export dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.yml test file in {}", dir.display());
    Command::new(promtool)
        .args(["test", "rules"])
        .args(&files)
        .output()
        .expect("run promtool")
}

/// A copy of the export with one edit applied to its alerting rules.
fn mutated(export: &Path, into: &Path, edit: (&str, &str)) -> PathBuf {
    let dir = into.to_path_buf();
    std::fs::create_dir_all(dir.join("rules")).expect("mkdir");
    for e in std::fs::read_dir(export).expect("read export").flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), dir.join(e.file_name())).expect("copy test");
        }
    }
    for e in std::fs::read_dir(export.join("rules"))
        .expect("read rules")
        .flatten()
    {
        let text = std::fs::read_to_string(e.path()).expect("read rule file");
        let text = if e.file_name() == "alerts.yml" {
            apply(&text, &[edit])
        } else {
            text
        };
        std::fs::write(dir.join("rules").join(e.file_name()), text).expect("write rule file");
    }
    dir
}

#[test]
fn slow_error_spike_export_passes_promtool_and_catches_mutated_rules() {
    let Some(promtool) = require_tool(&["promtool"], "ci/setup.sh (Debian package prometheus)")
    else {
        return;
    };
    let sb = Sandbox::new();
    let export = sb.path().join("export");
    let o = sb.run(&[
        "run",
        "scenarios/error-spike.toml",
        "--export-promtool",
        export.to_str().expect("utf-8"),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    sb.assert_clean();
    let err = common::stderr(&o);
    assert!(
        err.contains("promtool test rules") && err.contains("SUCCESS"),
        "{err}"
    );

    let test_file = export.join("error-spike_test.yml");
    let text = std::fs::read_to_string(&test_file).expect("test file");
    // Readable: expanding notation, a few segments per series, not one
    // number per scrape.
    assert!(text.lines().count() < 400, "{} lines", text.lines().count());
    let status_503 = text
        .lines()
        .skip_while(|l| !(l.contains("http_requests_total") && l.contains("status=\"503\"")))
        .nth(1)
        .expect("503 series values");
    assert!(
        status_503.contains('x') && status_503.split_whitespace().count() < 10,
        "{status_503}"
    );
    for needle in [
        "alert_rule_test:",
        "alertstate=\"pending\"",
        "alertstate=\"firing\"",
        "spike-error-ratio",
        "baseline-p90",
    ] {
        assert!(text.contains(needle), "no {needle:?} in\n{text}");
    }
    // The scaled copies the run loaded, not the originals.
    let alerts = std::fs::read_to_string(export.join("rules/alerts.yml")).expect("rules copy");
    assert!(
        alerts.contains("[15s]") && alerts.contains("for: 15s"),
        "{alerts}"
    );

    let started = std::time::Instant::now();
    let ok = promtool_test(&promtool, &export);
    eprintln!("promtool test rules took {:?}", started.elapsed());
    assert!(ok.status.success(), "{}", dump(&ok));

    for (name, edit) in [
        ("threshold", ("> 0.05", "> 0.5")),
        (
            "metric name",
            (
                "http_requests_total{status=~\"5..\"}",
                "http_requests_totals{status=~\"5..\"}",
            ),
        ),
        (
            "for",
            (
                "for: 15s\n    labels:\n      severity: critical",
                "for: 45s\n    labels:\n      severity: critical",
            ),
        ),
    ] {
        let dir = mutated(
            &export,
            &sb.path().join(format!("mutant-{}", name.replace(' ', "-"))),
            edit,
        );
        let bad = promtool_test(&promtool, &dir);
        assert!(
            !bad.status.success(),
            "promtool passed with the {name} mutated: {}",
            dump(&bad)
        );
        assert!(dump(&bad).contains("FAILED:"), "{}", dump(&bad));
    }
}
