//! The report renderers on a report saved from one real run of
//! `scenarios/error-spike.toml` (`tests/fixtures/report/error-spike.json`):
//! JSON against the committed schema, JUnit parsed back, Markdown and
//! terminal snapshots, and the HTML's charts, self-containment and a real
//! headless browser.

mod browser;

use std::path::PathBuf;

use slocheck::report::{self, Report, RunStatus, dir::Format, html};
use slocheck::verify::outcome::{ExpectationKind, Verdict};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> Report {
    report::json::load(&repo().join("tests/fixtures/report/error-spike.json"))
        .expect("the fixture is a report")
}

/// The fixture with its spike expectation failed, as a failing run reports it.
fn failing() -> Report {
    let mut r = fixture();
    let e = r
        .expectations
        .iter_mut()
        .find(|e| e.id == "spike-error-ratio")
        .expect("fixture has spike-error-ratio");
    e.verdict = Verdict::Fail;
    e.expected = "5xx ratio in \"spike\" near 50.00% ± 3.00%".into();
    e.reason = "outside the tolerance".into();
    r.status = RunStatus::Failed;
    r.exit_code = 1;
    r.summary.passed -= 1;
    r.summary.failed += 1;
    r
}

/// A run that broke before any load: no phases, no charts.
fn broken() -> Report {
    let mut r = fixture();
    r.status = RunStatus::Error;
    r.exit_code = 3;
    r.error = Some("prometheus not found on PATH (hint: run ci/setup.sh)".into());
    r.phases.clear();
    r.expectations.clear();
    r.alerts.clear();
    r.agreement.clear();
    r.charts = None;
    r.summary = report::Summary {
        passed: 0,
        failed: 0,
        inconclusive: 0,
    };
    r
}

fn render(f: Format, r: &Report) -> String {
    let mut out = Vec::new();
    f.render(r, &mut out).expect("render");
    String::from_utf8(out).expect("utf-8")
}

fn schema_errors(instance: &serde_json::Value) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("schemas/report.schema.json")).expect("schema");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    let v = jsonschema::validator_for(&schema).expect("schema is a valid JSON Schema");
    v.iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn json_of(r: &Report) -> serde_json::Value {
    serde_json::from_str(&render(Format::Json, r)).expect("JSON")
}

#[test]
fn json_matches_the_committed_schema() {
    for (name, r) in [
        ("passed", fixture()),
        ("failed", failing()),
        ("error", broken()),
    ] {
        let errors = schema_errors(&json_of(&r));
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}

#[test]
fn every_expectation_kind_is_in_the_schema() {
    for kind in ExpectationKind::ALL {
        let mut r = fixture();
        r.expectations[0].kind = kind;
        let errors = schema_errors(&json_of(&r));
        assert!(errors.is_empty(), "{kind}: {errors:#?}");
    }
}

#[test]
fn schema_rejects_drift() {
    let mut v = json_of(&fixture());
    v["phases"][0]["p95"] = serde_json::json!(1.0);
    v["expectations"][0]["verdict"] = serde_json::json!("maybe");
    v.as_object_mut().unwrap().remove("summary");
    let errors = schema_errors(&v);
    assert_eq!(errors.len(), 3, "{errors:#?}");
}

#[test]
fn json_round_trips_with_the_chart_series() {
    let r = fixture();
    let c = r
        .charts
        .as_ref()
        .expect("the fixture run collected chart series");
    assert!(c.request_rate.contains_key("2xx") && c.request_rate.contains_key("5xx"));
    assert!(!c.p90.is_empty() && !c.error_ratio.is_empty());
    assert_eq!(c.error_threshold.as_ref().map(|t| t.value), Some(0.05));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("again.json");
    report::json::write_file(&r, &path).unwrap();
    let again = report::json::load(&path).unwrap();
    assert_eq!(json_of(&again), json_of(&r));
}

#[test]
fn junit_parses_back_with_counts_and_failure_text() {
    let r = failing();
    let xml = render(Format::Junit, &r);
    let parsed = quick_junit::Report::deserialize_from_str(&xml).expect("valid JUnit");
    assert_eq!(parsed.test_suites.len(), 1);
    let suite = &parsed.test_suites[0];
    assert_eq!(suite.name.as_str(), "error-spike");
    assert_eq!(suite.tests, r.expectations.len());
    assert_eq!(suite.failures, 1);
    assert_eq!(suite.errors, 0);
    let case = suite
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "spike-error-ratio")
        .expect("one case per expectation");
    match &case.status {
        quick_junit::TestCaseStatus::NonSuccess {
            message,
            description,
            ..
        } => {
            let m = message.as_ref().expect("message").as_str();
            assert!(m.starts_with("observed "), "{m}");
            assert!(
                m.contains("expected 5xx ratio in \"spike\" near 50.00%"),
                "{m}"
            );
            assert!(m.contains("outside the tolerance"), "{m}");
            let d = description.as_ref().expect("evidence").as_str();
            assert!(d.contains("promql: "), "{d}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn junit_of_a_broken_run_has_an_errored_case() {
    let xml = render(Format::Junit, &broken());
    let parsed = quick_junit::Report::deserialize_from_str(&xml).expect("valid JUnit");
    let suite = &parsed.test_suites[0];
    assert_eq!((suite.tests, suite.errors), (1, 1));
    assert!(xml.contains("prometheus not found on PATH"), "{xml}");
}

#[test]
fn markdown_snapshot() {
    insta::assert_snapshot!("failing", render(Format::Markdown, &failing()));
    insta::assert_snapshot!("broken", render(Format::Markdown, &broken()));
}

#[test]
fn terminal_snapshot() {
    let mut out = Vec::new();
    report::terminal::write(&failing(), &mut out, false).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains('\x1b'), "no colour when not asked");
    insta::assert_snapshot!("terminal", text);
    let mut coloured = Vec::new();
    report::terminal::write(&failing(), &mut coloured, true).unwrap();
    assert!(String::from_utf8(coloured).unwrap().contains("\x1b[31m"));
}

/// Byte offsets of `http://` / `https://` that sit inside a tag (an
/// attribute a browser could fetch) rather than in text.
fn urls_in_markup(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for scheme in ["http://", "https://"] {
        for (at, _) in html.match_indices(scheme) {
            let before = &html[..at];
            let open = before.rfind('<');
            let close = before.rfind('>');
            let in_tag = match (open, close) {
                (Some(o), Some(c)) => o > c,
                (Some(_), None) => true,
                _ => false,
            };
            let in_css = before
                .rfind("<style")
                .is_some_and(|s| before.rfind("</style").is_none_or(|e| e < s));
            if in_tag || in_css {
                found.push(html[at.saturating_sub(40)..(at + 40).min(html.len())].to_string());
            }
        }
    }
    found
}

#[test]
fn html_has_one_chart_per_kind_and_fetches_nothing() {
    for r in [fixture(), failing()] {
        let page = render(Format::Html, &r);
        for kind in html::CHARTS {
            let figure = format!("<figure data-chart=\"{kind}\"><svg");
            assert_eq!(page.matches(&figure).count(), 1, "chart {kind}");
        }
        assert_eq!(urls_in_markup(&page), Vec::<String>::new());
        for tag in ["<script", "<link", "<img", "<iframe", "@import", "url("] {
            assert!(!page.contains(tag), "{tag} in the page");
        }
        assert!(page.contains("spike-error-ratio"));
        assert!(
            page.contains("HighErrorRate threshold 5%"),
            "threshold legend"
        );
        assert!(page.contains("Prometheus P90") && page.contains("client P90"));
    }
    let page = render(Format::Html, &failing());
    assert!(page.contains("<td class=\"fail\">fail</td>"));
    assert!(page.contains("outside the tolerance"));
    assert!(
        page.contains("<tr><td>HighErrorRate</td><td class=\"n\">+15.0s</td><td class=\"n\">+30.0s</td><td class=\"n\">+47.0s</td>"),
        "alert timeline table"
    );
}

#[test]
fn url_check_catches_a_fetching_attribute() {
    let bad = "<p>see http://example.invalid</p><img src=\"https://x.invalid/a.png\">";
    assert_eq!(urls_in_markup(bad).len(), 1);
    assert_eq!(
        urls_in_markup("<style>a{background:url(http://x.invalid)}</style>").len(),
        1
    );
}

#[test]
fn html_of_a_broken_run_still_renders() {
    let page = render(Format::Html, &broken());
    assert!(page.contains("ERROR") && page.contains("prometheus not found on PATH"));
    assert!(page.trim_end().ends_with("</html>"));
}

#[test]
fn html_opens_in_headless_chromium_without_console_errors() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    Format::Html.write_file(&failing(), &page).unwrap();
    let shot = dir.path().join("report.png");
    let run = browser::open(&page, &shot);
    assert_eq!(run.console_errors, Vec::<String>::new(), "{}", run.stderr);
    let png = std::fs::read(&shot).expect("a screenshot was written");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "a blank page is not a report ({} bytes)",
        png.len()
    );
    // `SLOCHECK_UPDATE_SCREENSHOT=1` refreshes the README's picture.
    if std::env::var_os("SLOCHECK_UPDATE_SCREENSHOT").is_some() {
        let ok = Format::Html.write_file(&fixture(), &page);
        ok.unwrap();
        let run = browser::open(&page, &shot);
        assert!(run.console_errors.is_empty(), "{}", run.stderr);
        std::fs::copy(&shot, repo().join("docs/report-screenshot.png")).unwrap();
    }
}

#[test]
fn browser_check_sees_a_script_error() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><p>x</p><script>undefinedFunction();</script></body></html>",
    )
    .unwrap();
    let run = browser::open(&page, &dir.path().join("bad.png"));
    assert!(!run.console_errors.is_empty(), "{}", run.stderr);
}
