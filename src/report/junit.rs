//! `junit.xml`: one test case per expectation, so a CI system lists each SLO
//! check beside the unit tests. A run that broke before verification is one
//! errored `run` case, so the CI page never shows an empty green suite.

use std::io::{self, Write};
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report as Junit, TestCase, TestCaseStatus, TestSuite};

use super::{Report, RunStatus};
use crate::verify::outcome::{ExpectationResult, Verdict};

/// The one-line failure message: observed against expected, and why.
pub fn failure_message(e: &ExpectationResult) -> String {
    let observed = if e.observed.is_empty() {
        "no data"
    } else {
        &e.observed
    };
    let mut m = format!("observed {observed}; expected {}", e.expected);
    if !e.reason.is_empty() {
        m.push_str(" (");
        m.push_str(&e.reason);
        m.push(')');
    }
    m
}

/// The evidence under the message: the queries and the client's numbers.
fn evidence(e: &ExpectationResult) -> String {
    let mut out = String::new();
    for q in &e.queries {
        let v = q.value.map(|v| format!(" = {v}")).unwrap_or_default();
        out.push_str(&format!("promql: {}{v}\n", q.promql));
    }
    for c in &e.client {
        out.push_str(&format!("client: {c}\n"));
    }
    out
}

fn case(e: &ExpectationResult, class: &str) -> TestCase {
    let mut status = match e.verdict {
        Verdict::Pass => TestCaseStatus::success(),
        Verdict::Inconclusive if e.inconclusive_allowed => TestCaseStatus::skipped(),
        Verdict::Fail | Verdict::Inconclusive => {
            TestCaseStatus::non_success(NonSuccessKind::Failure)
        }
    };
    status
        .set_message(failure_message(e))
        .set_type(e.verdict.as_str())
        .set_description(evidence(e));
    let mut c = TestCase::new(e.id.as_str(), status);
    c.set_classname(class);
    c.set_system_out(format!("{}\n{}", e.expected, evidence(e)));
    c
}

/// One run as one `<testsuite>` (a suite of runs writes one per scenario).
pub fn suite(r: &Report) -> TestSuite {
    let class = format!("slocheck.{}", r.scenario.name);
    let mut s = TestSuite::new(r.scenario.name.as_str());
    let secs: f64 = r.phases.iter().map(|p| p.duration_seconds).sum();
    s.set_time(Duration::from_secs_f64(secs.max(0.0)));
    s.add_test_cases(r.expectations.iter().map(|e| case(e, &class)));
    if matches!(r.status, RunStatus::Error | RunStatus::Aborted) {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        let what = if r.status == RunStatus::Aborted {
            "run interrupted".to_string()
        } else {
            r.error.clone().unwrap_or_else(|| "run failed".into())
        };
        status
            .set_message(format!("{what} (exit {})", r.exit_code))
            .set_type("error");
        let mut c = TestCase::new("run", status);
        c.set_classname(class.as_str());
        s.add_test_case(c);
    }
    s
}

pub fn write(r: &Report, out: impl Write) -> io::Result<()> {
    let mut report = Junit::new("slocheck");
    report.add_test_suite(suite(r));
    report.serialize(out).map_err(io::Error::other)
}
