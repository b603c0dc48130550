//! SLOs: `slocheck slo rules` writes the committed `rules/slo.yml` and tests
//! that promtool passes, and the three `scenarios/slo-*.toml` verify those
//! burn-rate rules live — each also run against a weakened copy of the rules
//! (thresholds doubled, the low-traffic guard removed) where it must fail
//! naming the expectation that caught it.

mod common;

use std::path::PathBuf;

use common::{Sandbox, apply, dump, repo, require_tool, stdout};

#[test]
fn slo_rules_regenerate_the_committed_file_and_its_tests_pass() {
    let sb = Sandbox::new();
    let out = sb.path().join("slo.yml");
    let o = sb.run(&[
        "slo",
        "rules",
        "slo/ml-service.toml",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    let generated = std::fs::read_to_string(&out).expect("generated rules");
    let committed = std::fs::read_to_string(repo().join("rules/slo.yml")).expect("rules/slo.yml");
    assert_eq!(
        generated, committed,
        "rules/slo.yml is stale: run `slocheck slo rules slo/ml-service.toml --out rules/slo.yml`"
    );
    let tests = std::fs::read_to_string(sb.path().join("slo_test.yml")).expect("tests");
    let committed_tests =
        std::fs::read_to_string(repo().join("rules/slo_test.yml")).expect("rules/slo_test.yml");
    assert_eq!(tests, committed_tests, "rules/slo_test.yml is stale");
    if require_tool(&["promtool"], "ci/setup.sh (Debian package prometheus)").is_some() {
        assert!(stdout(&o).contains("SUCCESS"), "{}", dump(&o));
    }
}

#[test]
fn slo_rules_reject_a_bad_slo_file_with_its_line() {
    let sb = Sandbox::new();
    let bad = sb.write(
        "bad.toml",
        "[[slo]]\nname = \"x\"\nobjective = 99.5\nperiod = \"30d\"\nerors = \"typo\"\n",
    );
    let o = sb.run(&["slo", "rules", bad.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(2), "{}", dump(&o));
    let err = common::stderr(&o);
    assert!(err.contains("bad.toml:5:1: unknown field `erors`"), "{err}");
}

/// A copy of `scenarios/NAME` reading a copy of `rules/slo.yml` with `edits`.
fn with_rules(sb: &Sandbox, name: &str, edits: &[(&str, &str)]) -> PathBuf {
    let rules = std::fs::read_to_string(repo().join("rules/slo.yml")).expect("rules");
    let rules = sb.write("slo-edited.yml", &apply(&rules, edits));
    let scenarios = repo().join("scenarios");
    let text = std::fs::read_to_string(scenarios.join(name)).expect("scenario");
    let text = apply(
        &text,
        &[
            (
                "\"../rules/slo.yml\"",
                &format!("{:?}", rules.display().to_string()),
            ),
            ("\"data/", &format!("\"{}/data/", scenarios.display())),
        ],
    );
    sb.write(name, &text)
}

/// Runs the shipped scenario (must pass), then the weakened copy (must fail
/// with exit 1, naming `caught_by`).
fn passes_then_catches(name: &str, edits: &[(&str, &str)], caught_by: &str) {
    let sb = Sandbox::new();
    let o = sb.run(&["run", &format!("scenarios/{name}"), "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    sb.assert_clean();

    let weakened = with_rules(&sb, name, edits);
    let o = sb.run(&["run", weakened.to_str().expect("utf-8"), "--quiet"]);
    assert_eq!(o.status.code(), Some(1), "{}", dump(&o));
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.contains(caught_by))
        .unwrap_or_else(|| panic!("no line names {caught_by}:\n{out}"));
    assert!(line.contains("FAIL"), "{caught_by} did not fail:\n{out}");
    sb.assert_clean();
}

#[test]
fn slow_slo_fast_burn_pages_and_a_doubled_page_threshold_is_caught() {
    passes_then_catches(
        "slo-fast-burn.toml",
        &[
            ("(14.4 * 0.005)", "(28.8 * 0.005)"),
            ("(6 * 0.005)", "(12 * 0.005)"),
        ],
        "page-fires-and-resolves",
    );
}

#[test]
fn slow_slo_slow_burn_tickets_and_a_doubled_ticket_threshold_is_caught() {
    passes_then_catches(
        "slo-slow-burn.toml",
        &[
            ("(3 * 0.005)", "(6 * 0.005)"),
            ("(1 * 0.005)", "(2 * 0.005)"),
        ],
        "ticket-fires",
    );
}

#[test]
fn slow_slo_low_traffic_stays_silent_and_a_removed_guard_is_caught() {
    passes_then_catches(
        "slo-low-traffic.toml",
        &[(">= 10", ">= 1")],
        "page-stays-silent",
    );
}
