//! `summary.md`: the result as Markdown tables for a pull request or
//! `$GITHUB_STEP_SUMMARY`; evidence stays in report.json and report.html.

use std::io::{self, Write};

use super::{Report, RunStatus};
use crate::timeutil::human_secs;
use crate::verify::outcome::{ExpectationResult, Verdict};

/// A table cell: pipes and newlines would break the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn verdict(e: &ExpectationResult) -> &'static str {
    match e.verdict {
        Verdict::Pass => "✅ pass",
        Verdict::Fail => "❌ fail",
        Verdict::Inconclusive if e.inconclusive_allowed => "⚠️ inconclusive (allowed)",
        Verdict::Inconclusive => "❌ inconclusive",
    }
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "–".to_string(), f)
}

fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

pub fn write(r: &Report, mut out: impl Write) -> io::Result<()> {
    let status = match r.status {
        RunStatus::Passed => "✅ passed",
        RunStatus::Failed => "❌ failed",
        RunStatus::Aborted => "⚠️ aborted",
        RunStatus::Error => "💥 error",
    };
    writeln!(
        out,
        "## slocheck: `{}` {status} (exit {})\n",
        cell(&r.scenario.name),
        r.exit_code
    )?;
    if let Some(e) = &r.error {
        writeln!(out, "> {}\n", cell(e))?;
    }
    writeln!(
        out,
        "{} passed, {} failed, {} inconclusive · time scale ×{} · Prometheus {}\n",
        r.summary.passed,
        r.summary.failed,
        r.summary.inconclusive,
        r.scenario.time_scale,
        r.prometheus.version.as_deref().unwrap_or("unknown")
    )?;
    if !r.expectations.is_empty() {
        writeln!(out, "| verdict | expectation | expected | observed |")?;
        writeln!(out, "|---|---|---|---|")?;
        for e in &r.expectations {
            let observed = match (e.observed.is_empty(), e.reason.is_empty()) {
                (_, true) => e.observed.clone(),
                (true, false) => e.reason.clone(),
                (false, false) => format!("{} — {}", e.observed, e.reason),
            };
            writeln!(
                out,
                "| {} | `{}` | {} | {} |",
                verdict(e),
                cell(&e.id),
                cell(&e.expected),
                cell(&observed)
            )?;
        }
        writeln!(out)?;
    }
    if !r.phases.is_empty() {
        writeln!(
            out,
            "| phase | seconds | sent | rps | 5xx injected | 5xx observed | P50 | P90 | P99 |"
        )?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for p in &r.phases {
            let l = &p.latency_corrected;
            writeln!(
                out,
                "| {} | {:.1} | {} | {:.1} | {} | {} | {} | {} | {} |",
                cell(&p.name),
                p.duration_seconds,
                p.sent,
                p.achieved_rps,
                opt(p.injected_error_ratio, pct),
                opt(p.observed_error_ratio, pct),
                opt(l.p50, human_secs),
                opt(l.p90, human_secs),
                opt(l.p99, human_secs),
            )?;
        }
        writeln!(out)?;
    }
    alerts(r, &mut out)?;
    match &r.coverage {
        Some(c) => crate::coverage::render::run_markdown(c, &mut out),
        None => Ok(()),
    }
}

fn alerts(r: &Report, out: &mut impl Write) -> io::Result<()> {
    let Some(origin) = r.phases.first().map(|p| p.start_ms) else {
        return Ok(());
    };
    if r.alerts.is_empty() {
        return Ok(());
    }
    let at = |v: Option<u64>| {
        v.map_or_else(
            || "–".to_string(),
            |ms| format!("{:+.1}s", (ms as f64 - origin as f64) / 1000.0),
        )
    };
    writeln!(
        out,
        "| alert (times from the first phase start) | pending | firing | resolved |"
    )?;
    writeln!(out, "|---|---:|---:|---:|")?;
    for a in &r.alerts {
        writeln!(
            out,
            "| {} | {} | {} | {} |",
            cell(&a.alert),
            at(a.pending_at_ms),
            at(a.firing_at_ms),
            at(a.resolved_at_ms)
        )?;
    }
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_the_table() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
