//! The terminal summary: phases with the client's numbers, one row per
//! expectation with its evidence, the alert timeline and how Prometheus and
//! the client agree. Colour only on a terminal, and never with NO_COLOR.

use std::io::{self, IsTerminal, Write};

use super::{PhaseReport, Report, RunStatus};
use crate::timeutil::human_secs;
use crate::verify::outcome::{ExpectationResult, Verdict};

/// Colour when stdout is a terminal and NO_COLOR is unset or empty.
pub fn use_color() -> bool {
    color_wanted(io::stdout().is_terminal(), std::env::var_os("NO_COLOR"))
}

/// The rule of <https://no-color.org>: any non-empty NO_COLOR turns colour off.
fn color_wanted(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

struct Paint(bool);

impl Paint {
    fn verdict(&self, v: Verdict) -> String {
        let (code, text) = match v {
            Verdict::Pass => ("32", "PASS"),
            Verdict::Fail => ("31", "FAIL"),
            Verdict::Inconclusive => ("33", "INCONCLUSIVE"),
        };
        self.wrap(code, &format!("{text:<12}"))
    }

    fn wrap(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn bold(&self, text: &str) -> String {
        self.wrap("1", text)
    }
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".to_string())
}

fn ratio(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

pub fn write(r: &Report, out: &mut impl Write, color: bool) -> io::Result<()> {
    let p = Paint(color);
    let status = match r.status {
        RunStatus::Passed => p.wrap("32;1", "PASSED"),
        RunStatus::Failed => p.wrap("31;1", "FAILED"),
        RunStatus::Aborted => p.wrap("33;1", "ABORTED"),
        RunStatus::Error => p.wrap("31;1", "ERROR"),
    };
    writeln!(out)?;
    writeln!(
        out,
        "{} {} — {status} (exit {})",
        p.bold("slocheck run"),
        r.scenario.name,
        r.exit_code
    )?;
    if r.scenario.time_scale != 1.0 {
        let changes: usize = r.rules.iter().map(|f| f.changes.len()).sum();
        writeln!(
            out,
            "time scale ×{}: {changes} durations in {} rule file(s) divided (see report.json \"rules\")",
            r.scenario.time_scale,
            r.rules.len()
        )?;
    }
    phases(r, out, &p)?;
    if !r.expectations.is_empty() {
        writeln!(out, "\n{}", p.bold("Expectations"))?;
        let origin = r.phases.first().map(|ph| ph.start_ms);
        for e in &r.expectations {
            expectation(e, origin, out, &p)?;
        }
    }
    alerts(r, out, &p)?;
    agreement(r, out, &p)?;
    if let Some(c) = &r.coverage {
        crate::coverage::render::run_terminal(c, out)?;
    }
    writeln!(
        out,
        "\n{} passed, {} failed, {} inconclusive",
        r.summary.passed, r.summary.failed, r.summary.inconclusive
    )?;
    Ok(())
}

fn phases(r: &Report, out: &mut impl Write, p: &Paint) -> io::Result<()> {
    if r.phases.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n{}", p.bold("Phases (client side)"))?;
    writeln!(
        out,
        "  {:<12} {:>7} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9}",
        "phase", "secs", "sent", "rps", "drop", "2xx", "5xx", "err", "P50", "P90", "P99"
    )?;
    for ph in &r.phases {
        phase_row(ph, out)?;
    }
    if let Some(t) = &r.transport {
        writeln!(out, "  {}", t.describe())?;
    }
    generator(r, out, p)
}

/// Which pacer ran, and why the generator's own delay matters when it does.
fn generator(r: &Report, out: &mut impl Write, p: &Paint) -> io::Result<()> {
    let Some(g) = &r.generator else {
        return Ok(());
    };
    if let Some(pacer) = &g.pacer {
        writeln!(
            out,
            "  pacer {pacer}, {} shard(s) on {} core(s)",
            g.shards, g.cores
        )?;
    }
    for w in &g.warnings {
        writeln!(out, "  {} {w}", p.wrap("33", "warning:"))?;
    }
    Ok(())
}

fn phase_row(ph: &PhaseReport, out: &mut impl Write) -> io::Result<()> {
    let c = |k: &str| ph.status_classes.get(k).copied().unwrap_or(0);
    let l = &ph.latency_corrected;
    writeln!(
        out,
        "  {:<12} {:>7.1} {:>8} {:>8.1} {:>7} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9}",
        ph.name,
        ph.duration_seconds,
        ph.sent,
        ph.achieved_rps,
        ph.dropped,
        c("2xx"),
        c("5xx"),
        ph.connection_errors + ph.timeouts,
        opt(l.p50, human_secs),
        opt(l.p90, human_secs),
        opt(l.p99, human_secs),
    )?;
    if let (Some(p50), Some(p99), Some(max)) = (ph.lag_us.p50, ph.lag_us.p99, ph.lag_us.max) {
        writeln!(
            out,
            "  {:<12} scheduler lag p50 {p50} µs, p99 {p99} µs, max {max} µs",
            ""
        )?;
    }
    if ph.injected_errors + ph.injected_delays > 0 || c("5xx") > 0 {
        writeln!(
            out,
            "  {:<12} 5xx injected {} ({}), observed {} ({}); {} delays injected; {} of {} faults acknowledged",
            "",
            ph.injected_errors,
            opt(ph.injected_error_ratio, ratio),
            c("5xx"),
            opt(ph.observed_error_ratio, ratio),
            ph.injected_delays,
            ph.faults_acknowledged,
            ph.faults_requested,
        )?;
    }
    Ok(())
}

/// `+12.0s` from the first phase start, the origin of every time shown.
fn rel(ms: u64, origin: u64) -> String {
    format!("{:+.1}s", (ms as f64 - origin as f64) / 1000.0)
}

fn expectation(
    e: &ExpectationResult,
    origin: Option<u64>,
    out: &mut impl Write,
    p: &Paint,
) -> io::Result<()> {
    writeln!(out, "  {} {}", p.verdict(e.verdict), p.bold(&e.id))?;
    writeln!(out, "  {:<12} expected: {}", "", e.expected)?;
    if !e.observed.is_empty() {
        writeln!(out, "  {:<12} observed: {}", "", e.observed)?;
    }
    if !e.reason.is_empty() {
        let allowed = if e.inconclusive_allowed {
            " (allowed)"
        } else {
            ""
        };
        writeln!(out, "  {:<12} why: {}{allowed}", "", e.reason)?;
    }
    for q in &e.queries {
        let value = q.value.map(|v| format!(" = {v}")).unwrap_or_default();
        let window = match (origin, q.start_ms) {
            (Some(o), Some(s)) => format!(" (range {}..{})", rel(s, o), rel(q.at_ms, o)),
            (Some(o), None) => format!(" (at {})", rel(q.at_ms, o)),
            (None, _) => String::new(),
        };
        writeln!(out, "  {:<12} promql{window}: {}{value}", "", q.promql)?;
    }
    for c in &e.client {
        writeln!(out, "  {:<12} {c}", "")?;
    }
    Ok(())
}

fn alerts(r: &Report, out: &mut impl Write, p: &Paint) -> io::Result<()> {
    let Some(origin) = r.phases.first().map(|ph| ph.start_ms) else {
        return Ok(());
    };
    if r.alerts.is_empty() {
        return Ok(());
    }
    let rel = |ms: u64| rel(ms, origin);
    let starts: Vec<String> = r
        .phases
        .iter()
        .map(|ph| format!("{} {}", ph.name, rel(ph.start_ms)))
        .collect();
    writeln!(
        out,
        "\n{} (from the first phase start; {})",
        p.bold("Alert timeline"),
        starts.join(", ")
    )?;
    for a in &r.alerts {
        let at = |v: Option<u64>| v.map(rel).unwrap_or_else(|| "-".into());
        writeln!(
            out,
            "  {:<20} pending {}  firing {}  resolved {}",
            a.alert,
            at(a.pending_at_ms),
            at(a.firing_at_ms),
            at(a.resolved_at_ms)
        )?;
    }
    Ok(())
}

fn agreement(r: &Report, out: &mut impl Write, p: &Paint) -> io::Result<()> {
    if r.agreement.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n{}", p.bold("Agreement (Prometheus vs client)"))?;
    writeln!(
        out,
        "  {:<12} {:>10} {:>10} {:>10} {:>7}   {:>10} {:>10} {:>10}  same bucket",
        "phase", "injected", "client", "prom", "Δpp", "P90 corr", "P90 svc", "prom P90"
    )?;
    for a in &r.agreement {
        let delta = match (a.prometheus_error_ratio, a.injected_error_ratio) {
            (Some(p), Some(i)) => format!("{:.2}", (p - i) * 100.0),
            _ => "-".into(),
        };
        let same = match a.p90_same_bucket {
            Some(true) => "yes".to_string(),
            Some(false) => match a.p90_bucket {
                Some((lo, hi)) => format!("no (prom in {}..{})", human_secs(lo), human_secs(hi)),
                None => "no".into(),
            },
            None => "-".into(),
        };
        writeln!(
            out,
            "  {:<12} {:>10} {:>10} {:>10} {:>7}   {:>10} {:>10} {:>10}  {same}",
            a.phase,
            opt(a.injected_error_ratio, ratio),
            opt(a.client_error_ratio, ratio),
            opt(a.prometheus_error_ratio, ratio),
            delta,
            opt(a.client_p90_seconds, human_secs),
            opt(a.client_service_p90_seconds, human_secs),
            opt(a.prometheus_p90_seconds, human_secs),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(color_wanted(true, None));
        assert!(color_wanted(true, Some("".into())));
        assert!(!color_wanted(true, Some("1".into())));
        assert!(!color_wanted(false, None));
    }
}
