//! `report.html`: one self-contained page (inline CSS and SVG, no script, no
//! URL to fetch) with the run's charts over wall-clock time and the
//! expectations table. Prometheus's series come from `Report::charts`, the
//! client's from the phases' per-second counts.

use std::io::{self, Write};

use plotters::style::RGBColor;

use super::chart::{self, Band, Line, Timeline};
use super::{Report, RunStatus};
use crate::timeutil::human_secs;
use crate::verify::outcome::{AlertState, Verdict};

/// The chart kinds, in page order; each is a `<figure data-chart=…>`.
pub const CHARTS: [&str; 4] = ["request-rate", "p90", "error-ratio", "alert-state"];

const PROM: RGBColor = RGBColor(31, 119, 180);
const CLIENT: RGBColor = RGBColor(255, 127, 14);
const THRESHOLD: RGBColor = RGBColor(214, 39, 40);
const CLASS_COLORS: [(&str, RGBColor); 5] = [
    ("1xx", RGBColor(127, 127, 127)),
    ("2xx", RGBColor(44, 160, 44)),
    ("3xx", RGBColor(23, 190, 207)),
    ("4xx", RGBColor(148, 103, 189)),
    ("5xx", RGBColor(214, 39, 40)),
];

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Seconds since the first phase started (the origin of every chart).
struct Clock(u64);

impl Clock {
    fn at(&self, ms: u64) -> f64 {
        (ms as f64 - self.0 as f64) / 1000.0
    }

    fn prom(&self, points: &[(u64, f64)], scale: f64) -> Vec<(f64, f64)> {
        points
            .iter()
            .map(|(t, v)| (self.at(*t), v * scale))
            .filter(|(x, _)| *x >= 0.0)
            .collect()
    }
}

fn timeline(r: &Report, clock: &Clock) -> Timeline {
    let last = r.phases.iter().map(|p| p.end_ms).max().unwrap_or(clock.0);
    let end = r.charts.as_ref().map_or(last, |c| c.end_ms.max(last));
    Timeline {
        end_s: clock.at(end),
        phases: r
            .phases
            .iter()
            .map(|p| (p.name.clone(), clock.at(p.start_ms), clock.at(p.end_ms)))
            .collect(),
    }
}

/// The client's per-second series, each point in the middle of its second.
fn client_series(
    r: &Report,
    clock: &Clock,
    f: impl Fn(&crate::record::SecondStats) -> Option<f64> + Copy,
) -> Vec<(f64, f64)> {
    r.phases
        .iter()
        .flat_map(|p| {
            let start = clock.at(p.start_ms);
            // The last second of a phase is usually partial: its low count
            // would draw as a dip that did not happen.
            let whole = p.duration_seconds.floor() as usize;
            p.per_second
                .iter()
                .take(whole.max(1))
                .enumerate()
                .filter_map(move |(i, s)| Some((start + i as f64 + 0.5, f(s)?)))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn line(label: &str, color: RGBColor, points: Vec<(f64, f64)>) -> Line {
    Line {
        label: label.into(),
        color,
        points,
        dashed: false,
    }
}

fn pct(v: &f64) -> String {
    format!("{:.0}%", v * 100.0)
}

/// Prometheus's response rate per status class beside the client's sends.
fn rate_lines(r: &Report, clock: &Clock) -> Vec<Line> {
    let c = r.charts.as_ref();
    let mut rate: Vec<Line> = CLASS_COLORS
        .iter()
        .filter_map(|(class, color)| {
            let pts = c?.request_rate.get(*class)?;
            Some(line(
                &format!("{class} (Prometheus)"),
                *color,
                clock.prom(pts, 1.0),
            ))
        })
        .collect();
    rate.push(line(
        "sent (client)",
        CLIENT,
        client_series(r, clock, |s| Some(s.sent as f64)),
    ));
    rate
}

fn p90_lines(r: &Report, clock: &Clock) -> Vec<Line> {
    let mut p90 = vec![line(
        "client P90 (corrected, per second)",
        CLIENT,
        client_series(r, clock, |s| (s.p90_us > 0).then(|| s.p90_us as f64 / 1e6)),
    )];
    if let Some(c) = &r.charts {
        p90.insert(
            0,
            line(
                &format!("Prometheus P90 (rate over {})", c.window),
                PROM,
                clock.prom(&c.p90, 1.0),
            ),
        );
    }
    p90
}

/// The 5xx ratio of both sides, with the alert threshold drawn across.
fn error_lines(r: &Report, clock: &Clock, tl: &Timeline) -> Vec<Line> {
    let mut err = vec![line(
        "client 5xx ratio (per second)",
        CLIENT,
        client_series(r, clock, |s| {
            let n = s.ok + s.client_errors + s.server_errors;
            (n > 0).then(|| s.server_errors as f64 / n as f64)
        }),
    )];
    if let Some(c) = &r.charts {
        err.insert(
            0,
            line(
                &format!("Prometheus 5xx ratio (over {})", c.window),
                PROM,
                clock.prom(&c.error_ratio, 1.0),
            ),
        );
        if let Some(t) = &c.error_threshold {
            err.push(Line {
                label: format!("{} threshold {}", t.alert, pct(&t.value)),
                color: THRESHOLD,
                points: vec![(0.0, t.value), (tl.end_s, t.value)],
                dashed: true,
            });
        }
    }
    err
}

fn alert_bands(r: &Report, clock: &Clock, tl: &Timeline) -> Vec<Band> {
    r.alerts
        .iter()
        .map(|a| Band {
            label: a.alert.clone(),
            spans: a
                .spans
                .iter()
                .map(|s| {
                    let color = match s.state {
                        AlertState::Pending => chart::PENDING,
                        AlertState::Firing => chart::FIRING,
                    };
                    let end = s.end_ms.map_or(tl.end_s, |e| clock.at(e));
                    (color, clock.at(s.start_ms).max(0.0), end)
                })
                .collect(),
        })
        .collect()
}

fn charts(r: &Report) -> io::Result<Vec<(&'static str, String)>> {
    let clock = Clock(r.phases.first().map_or(0, |p| p.start_ms));
    let tl = timeline(r, &clock);
    let secs = |v: &f64| human_secs(*v);
    let num = |v: &f64| format!("{v:.0}");
    Ok(vec![
        (
            CHARTS[0],
            chart::lines(
                "Request rate by status class",
                "requests/s",
                &tl,
                &rate_lines(r, &clock),
                &num,
            )?,
        ),
        (
            CHARTS[1],
            chart::lines(
                "P90 latency: client vs Prometheus",
                "P90",
                &tl,
                &p90_lines(r, &clock),
                &secs,
            )?,
        ),
        (
            CHARTS[2],
            chart::lines(
                "5xx ratio vs the alert threshold",
                "5xx share",
                &tl,
                &error_lines(r, &clock, &tl),
                &pct,
            )?,
        ),
        (
            CHARTS[3],
            chart::bands(
                "Alert state (ALERTS series)",
                &tl,
                &alert_bands(r, &clock, &tl),
            )?,
        ),
    ])
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}\
h1{font-size:22px}h2{font-size:18px;margin-top:28px}\
table{border-collapse:collapse;margin:8px 0;font-size:14px}\
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f4f4f4}td.n{text-align:right}\
.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}.inconclusive{color:#9a6700;font-weight:600}\
code{font-size:12px;background:#f6f8fa;padding:1px 3px;word-break:break-all}\
figure{margin:12px 0}figure svg{width:100%;height:auto;border:1px solid #eee}\
.meta{color:#555;font-size:14px}";

pub fn write(r: &Report, mut out: impl Write) -> io::Result<()> {
    let status = match r.status {
        RunStatus::Passed => ("pass", "PASSED"),
        RunStatus::Failed => ("fail", "FAILED"),
        RunStatus::Aborted => ("inconclusive", "ABORTED"),
        RunStatus::Error => ("fail", "ERROR"),
    };
    let title = format!("slocheck {} — {}", r.scenario.name, status.1);
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{}</title><style>{STYLE}</style></head><body>",
        esc(&title)
    )?;
    writeln!(
        out,
        "<h1>slocheck <code>{}</code> — <span class=\"{}\">{}</span> (exit {})</h1>",
        esc(&r.scenario.name),
        status.0,
        status.1,
        r.exit_code
    )?;
    writeln!(
        out,
        "<p class=\"meta\">{} passed, {} failed, {} inconclusive · started {} · time scale ×{} · \
scrape {} ms, evaluation {} ms · Prometheus {} · slocheck {}</p>",
        r.summary.passed,
        r.summary.failed,
        r.summary.inconclusive,
        esc(r.started_at.as_deref().unwrap_or("–")),
        r.scenario.time_scale,
        r.scenario.scrape_interval_ms,
        r.scenario.evaluation_interval_ms,
        esc(r.prometheus.version.as_deref().unwrap_or("unknown")),
        esc(&r.tool.version)
    )?;
    if let Some(e) = &r.error {
        writeln!(out, "<p class=\"fail\">{}</p>", esc(e))?;
    }
    expectations(r, &mut out)?;
    if !r.phases.is_empty() {
        phases(r, &mut out)?;
        alerts(r, &mut out)?;
        writeln!(out, "<h2>Charts</h2>")?;
        if r.charts.is_none() {
            writeln!(
                out,
                "<p class=\"meta\">Prometheus was not queried for series (the run ended before verification): client-side data only.</p>"
            )?;
        }
        for (kind, svg) in charts(r)? {
            writeln!(out, "<figure data-chart=\"{kind}\">{svg}</figure>")?;
        }
    }
    writeln!(out, "</body></html>")
}

fn expectations(r: &Report, out: &mut impl Write) -> io::Result<()> {
    if r.expectations.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "<h2>Expectations</h2><table><tr><th>verdict</th><th>expectation</th><th>expected</th><th>observed</th><th>evidence</th></tr>"
    )?;
    for e in &r.expectations {
        let class = match e.verdict {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        };
        let mut observed = esc(&e.observed);
        if !e.reason.is_empty() {
            observed.push_str(&format!("<br><em>{}</em>", esc(&e.reason)));
        }
        let mut evidence: Vec<String> = e
            .queries
            .iter()
            .map(|q| {
                // A range query (alert states) has no single value.
                let v = q.value.map(|v| format!(" = {v:.6}")).unwrap_or_default();
                format!("<code>{}</code>{v}", esc(&q.promql))
            })
            .collect();
        evidence.extend(e.client.iter().map(|c| esc(c)));
        writeln!(
            out,
            "<tr><td class=\"{class}\">{}</td><td><code>{}</code></td><td>{}</td><td>{observed}</td><td>{}</td></tr>",
            e.verdict.as_str(),
            esc(&e.id),
            esc(&e.expected),
            evidence.join("<br>")
        )?;
    }
    writeln!(out, "</table>")
}

fn alerts(r: &Report, out: &mut impl Write) -> io::Result<()> {
    let Some(origin) = r.phases.first().map(|p| p.start_ms) else {
        return Ok(());
    };
    if r.alerts.is_empty() {
        return Ok(());
    }
    let clock = Clock(origin);
    let at =
        |v: Option<u64>| v.map_or_else(|| "–".to_string(), |ms| format!("{:+.1}s", clock.at(ms)));
    let starts: Vec<String> = r
        .phases
        .iter()
        .map(|p| format!("{} {}", esc(&p.name), at(Some(p.start_ms))))
        .collect();
    writeln!(
        out,
        "<h2>Alert timeline</h2><p class=\"meta\">From the first phase start; {}.</p>\
<table><tr><th>alert</th><th>pending at</th><th>firing at</th><th>resolved at</th><th>state at the end</th></tr>",
        starts.join(", ")
    )?;
    for a in &r.alerts {
        writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(&a.alert),
            at(a.pending_at_ms),
            at(a.firing_at_ms),
            at(a.resolved_at_ms),
            esc(a.api_state_at_end.as_deref().unwrap_or("–"))
        )?;
    }
    writeln!(out, "</table>")
}

fn phases(r: &Report, out: &mut impl Write) -> io::Result<()> {
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or_else(|| "–".into(), f);
    let pct = |v: f64| format!("{:.2}%", v * 100.0);
    writeln!(
        out,
        "<h2>Phases (client side)</h2><table><tr><th>phase</th><th>seconds</th><th>sent</th><th>rps</th>\
<th>dropped</th><th>5xx injected</th><th>5xx observed</th><th>P50</th><th>P90</th><th>P99</th><th>P99.9</th><th>max</th></tr>"
    )?;
    for p in &r.phases {
        let l = &p.latency_corrected;
        writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{:.1}</td><td class=\"n\">{}</td><td class=\"n\">{:.1}</td><td class=\"n\">{}</td>\
<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&p.name),
            p.duration_seconds,
            p.sent,
            p.achieved_rps,
            p.dropped,
            opt(p.injected_error_ratio, &pct),
            opt(p.observed_error_ratio, &pct),
            opt(l.p50, &human_secs),
            opt(l.p90, &human_secs),
            opt(l.p99, &human_secs),
            opt(l.p999, &human_secs),
            opt(l.max, &human_secs),
        )?;
    }
    writeln!(out, "</table>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
