//! One diagnosis: what was checked, the verdict, what was seen, and how to
//! fix it; plus the plain-text rendering of a list of them.

use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// Not checked: a prerequisite failed or an option was not given.
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Short area name: `prometheus`, `target`, `metrics`, `rules`, `panel`.
    pub area: &'static str,
    pub verdict: Verdict,
    /// One line: what was seen.
    pub detail: String,
    /// How to fix it (failures only).
    pub hint: Option<String>,
}

impl Check {
    pub fn pass(area: &'static str, detail: impl Into<String>) -> Check {
        Check {
            area,
            verdict: Verdict::Pass,
            detail: detail.into(),
            hint: None,
        }
    }

    pub fn fail(area: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            area,
            verdict: Verdict::Fail,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn skip(area: &'static str, detail: impl Into<String>) -> Check {
        Check {
            area,
            verdict: Verdict::Skip,
            detail: detail.into(),
            hint: None,
        }
    }
}

/// `PASS  area  detail` lines, hints indented under failures, and a total.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        let tag = match c.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        };
        let _ = writeln!(out, "{tag}  {:<10}  {}", c.area, c.detail);
        if let Some(h) = &c.hint {
            let _ = writeln!(out, "      hint: {h}");
        }
    }
    let count = |v| checks.iter().filter(|c| c.verdict == v).count();
    let _ = writeln!(
        out,
        "doctor: {} passed, {} failed, {} skipped",
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Skip)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_hint_under_failure_and_totals() {
        let text = render(&[
            Check::pass("prometheus", "ready"),
            Check::fail("target", "job x is down", "start it"),
            Check::skip("metrics", "no --target-url"),
        ]);
        assert_eq!(
            text,
            "PASS  prometheus  ready\nFAIL  target      job x is down\n      hint: start it\n\
             SKIP  metrics     no --target-url\ndoctor: 1 passed, 1 failed, 1 skipped\n"
        );
    }
}
