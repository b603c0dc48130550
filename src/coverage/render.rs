//! Coverage tables for the terminal, Markdown and HTML reports. Each takes
//! plain data and writes; the run and suite reports call them.

use std::io::{self, Write};

use super::{RunCoverage, SuiteCoverage};

fn mark(b: bool) -> &'static str {
    if b { "yes" } else { "-" }
}

/// `Rule coverage` section of one run's terminal summary.
pub fn run_terminal(c: &RunCoverage, out: &mut dyn Write) -> io::Result<()> {
    if c.alerts.is_empty() && c.recording.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nRule coverage")?;
    if !c.alerts.is_empty() {
        writeln!(
            out,
            "  {:<24} {:>8} {:>8} {:>8} {:>9}",
            "alert", "pending", "firing", "resolved", "reached"
        )?;
        for a in &c.alerts {
            writeln!(
                out,
                "  {:<24} {:>8} {:>8} {:>8} {:>9}",
                a.alert,
                mark(a.pending),
                mark(a.firing),
                mark(a.resolved),
                a.reached()
            )?;
        }
    }
    for r in &c.recording {
        writeln!(
            out,
            "  record {:<40} {}",
            r.record,
            if r.produced {
                "produced series"
            } else {
                "NO SERIES"
            }
        )?;
    }
    Ok(())
}

/// The suite's coverage table (terminal).
pub fn suite_terminal(c: &SuiteCoverage, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "\nRule coverage (suite)")?;
    for a in &c.alerts {
        writeln!(
            out,
            "  {:<10} {}",
            if a.firing_in.is_empty() {
                "NOT FIRED"
            } else {
                "fired"
            },
            a.words()
        )?;
    }
    for r in &c.recording {
        if r.produced_in.is_empty() {
            writeln!(
                out,
                "  {:<10} record {} produced no series in any scenario",
                "NO SERIES", r.record
            )?;
        } else {
            writeln!(
                out,
                "  {:<10} record {} in {}",
                "produced",
                r.record,
                r.produced_in.join(", ")
            )?;
        }
    }
    Ok(())
}

/// One run's coverage as a Markdown section.
pub fn run_markdown(c: &RunCoverage, out: &mut dyn Write) -> io::Result<()> {
    if c.alerts.is_empty() && c.recording.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n### Rule coverage\n")?;
    writeln!(
        out,
        "| rule | kind | pending | firing | resolved | reached |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|")?;
    for a in &c.alerts {
        writeln!(
            out,
            "| `{}` | alert | {} | {} | {} | {} |",
            a.alert,
            mark(a.pending),
            mark(a.firing),
            mark(a.resolved),
            a.reached()
        )?;
    }
    for r in &c.recording {
        writeln!(
            out,
            "| `{}` | record | | | | {} |",
            r.record,
            if r.produced {
                "produced series"
            } else {
                "**no series**"
            }
        )?;
    }
    Ok(())
}

/// The suite's coverage as a Markdown section.
pub fn suite_markdown(c: &SuiteCoverage, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "\n## Rule coverage\n")?;
    writeln!(
        out,
        "| rule | kind | pending in | firing in | resolved in |"
    )?;
    writeln!(out, "|---|---|---|---|---|")?;
    let list = |v: &[String]| {
        if v.is_empty() {
            "**never**".to_string()
        } else {
            v.join(", ")
        }
    };
    for a in &c.alerts {
        writeln!(
            out,
            "| `{}` | alert | {} | {} | {} |",
            a.alert,
            list(&a.pending_in),
            list(&a.firing_in),
            list(&a.resolved_in)
        )?;
    }
    for r in &c.recording {
        writeln!(
            out,
            "| `{}` | record | produced in {} | | |",
            r.record,
            list(&r.produced_in)
        )?;
    }
    Ok(())
}

/// One run's coverage as an HTML section.
pub fn run_html(c: &RunCoverage, out: &mut dyn Write) -> io::Result<()> {
    if c.alerts.is_empty() && c.recording.is_empty() {
        return Ok(());
    }
    let esc = crate::report::html::esc;
    writeln!(out, "<h2>Rule coverage</h2>\n<table class=\"coverage\">")?;
    writeln!(
        out,
        "<tr><th>rule</th><th>kind</th><th>pending</th><th>firing</th><th>resolved</th><th>reached</th></tr>"
    )?;
    for a in &c.alerts {
        writeln!(
            out,
            "<tr class=\"{}\"><td><code>{}</code></td><td>alert</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if a.silent() { "silent" } else { "covered" },
            esc(&a.alert),
            mark(a.pending),
            mark(a.firing),
            mark(a.resolved),
            a.reached()
        )?;
    }
    for r in &c.recording {
        writeln!(
            out,
            "<tr class=\"{}\"><td><code>{}</code></td><td>record</td><td colspan=\"3\"></td><td>{}</td></tr>",
            if r.produced { "covered" } else { "silent" },
            esc(&r.record),
            if r.produced {
                "produced series"
            } else {
                "no series"
            }
        )?;
    }
    writeln!(out, "</table>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::{AlertCoverage, RecordingCoverage, merge};

    fn cov() -> RunCoverage {
        RunCoverage {
            alerts: vec![AlertCoverage {
                alert: "HighErrorRate".into(),
                file: "a.yml".into(),
                pending: true,
                firing: true,
                resolved: false,
            }],
            recording: vec![RecordingCoverage {
                record: "job:x".into(),
                file: "r.yml".into(),
                produced: false,
            }],
        }
    }

    fn text(f: impl Fn(&mut dyn Write) -> io::Result<()>) -> String {
        let mut v = Vec::new();
        f(&mut v).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn tables_show_states_and_missing_series() {
        let c = cov();
        let t = text(|o| run_terminal(&c, o));
        assert!(
            t.contains("HighErrorRate") && t.contains("firing") && t.contains("NO SERIES"),
            "{t}"
        );
        let m = text(|o| run_markdown(&c, o));
        assert!(
            m.contains("| `HighErrorRate` | alert | yes | yes | - | firing |"),
            "{m}"
        );
        let h = text(|o| run_html(&c, o));
        assert!(h.contains("<code>job:x</code></td><td>record</td>"), "{h}");
        let s = merge([("error-spike", &c)]);
        let st = text(|o| suite_terminal(&s, o));
        assert!(st.contains("HighErrorRate fired in error-spike"), "{st}");
        let sm = text(|o| suite_markdown(&s, o));
        assert!(
            sm.contains("| `job:x` | record | produced in **never** | | |"),
            "{sm}"
        );
    }
}
