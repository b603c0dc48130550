//! Service level objectives and their multi-window, multi-burn-rate alerts
//! (Google SRE workbook, "Alerting on SLOs"): the SLO file model, the rule
//! file generator (`rules`), the promtool unit tests generated beside it
//! (`unittest`) and `slocheck slo rules` (`cmd`).

pub mod bounds;
pub mod cmd;
pub mod rules;
pub mod unittest;

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;
use crate::scenario::Location;

/// The windows whose error ratio is recorded, shortest first.
pub const WINDOWS: [Duration; 7] = [
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(3600),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(24 * 3600),
    Duration::from_secs(3 * 24 * 3600),
];

/// One long/short window pair of a burn-rate alert: it holds when the error
/// ratio over both windows exceeds `factor` × the error budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnWindow {
    pub long: Duration,
    pub short: Duration,
    /// Share of the period's budget spent within `long` at this burn rate
    /// (workbook: 2 % in 1h, 5 % in 6h, 10 % in 1d, 10 % in 3d).
    pub budget_share: f64,
}

impl BurnWindow {
    /// The burn-rate factor over a `period`: 14.4, 6, 3 and 1 for 30 days.
    pub fn factor(&self, period: Duration) -> f64 {
        let f = self.budget_share * period.as_secs_f64() / self.long.as_secs_f64();
        (f * 1000.0).round() / 1000.0
    }
}

const fn pair(long_s: u64, short_s: u64, budget_share: f64) -> BurnWindow {
    BurnWindow {
        long: Duration::from_secs(long_s),
        short: Duration::from_secs(short_s),
        budget_share,
    }
}

/// Page: 14.4× over 1h and 5m, or 6× over 6h and 30m (30-day period).
pub const PAGE: [BurnWindow; 2] = [pair(3600, 300, 0.02), pair(6 * 3600, 1800, 0.05)];
/// Ticket: 3× over 1d and 2h, or 1× over 3d and 6h (30-day period).
pub const TICKET: [BurnWindow; 2] = [
    pair(24 * 3600, 2 * 3600, 0.10),
    pair(3 * 24 * 3600, 6 * 3600, 0.10),
];

/// A validated SLO.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    pub name: String,
    /// Percent of good events, e.g. 99.5.
    pub objective: f64,
    pub period: Duration,
    /// Counter selectors of failed and of all events.
    pub errors: String,
    pub total: String,
    /// Fewer errors than this within an alert's long window never alert:
    /// at a few requests per window, a handful of errors is a huge ratio
    /// and no evidence of a burning budget (the workbook's advice for
    /// low-traffic services).
    pub min_errors: u32,
}

impl Slo {
    /// The error budget as a ratio (0.005 for 99.5 %).
    pub fn budget(&self) -> f64 {
        ((100.0 - self.objective) / 100.0 * 1e9).round() / 1e9
    }
}

/// The metrics an SLO file's `[[slo]]` counts when it names none: the
/// default (`tutorial`) metrics preset's, `http_requests_total{status}`. An
/// `[[slo]]` in a scenario counts its `[metrics]` instead.
pub fn default_selectors() -> (String, String) {
    crate::metrics::MetricQueries::unscoped(&crate::metrics::MetricsSpec::default())
        .slo_selectors()
        .expect("the tutorial preset counts requests in one counter")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    slo: Vec<toml::Spanned<RawSlo>>,
}

/// One `[[slo]]` table as written, in an SLO file or a scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlo {
    pub name: String,
    pub objective: f64,
    pub period: String,
    #[serde(default)]
    pub errors: Option<String>,
    #[serde(default)]
    pub total: Option<String>,
    #[serde(default)]
    pub min_errors: Option<u32>,
}

/// Default for [`Slo::min_errors`].
pub const DEFAULT_MIN_ERRORS: u32 = 10;

/// Reads an SLO file (`[[slo]]` tables).
pub fn load(path: &Path) -> Result<Vec<Slo>, Error> {
    let text = std::fs::read_to_string(path).map_err(Error::io("read the SLO file", path))?;
    parse_str(&text, path)
}

/// Parses SLO file text; `path` is for messages.
pub fn parse_str(text: &str, path: &Path) -> Result<Vec<Slo>, Error> {
    let at = |offset: usize| Location::from_offset(text, offset);
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let loc = e.span().map(|s| format!(":{}", at(s.start))).unwrap_or_default();
        Error::Invalid(format!(
            "{}{loc}: {} (hint: an SLO file holds [[slo]] tables with name, objective, period and optionally errors, total, min_errors)",
            path.display(),
            e.message().trim()
        ))
    })?;
    if raw.slo.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no [[slo]] table (hint: add one with name, objective and period)",
            path.display()
        )));
    }
    let tables: Vec<(std::ops::Range<usize>, RawSlo)> = raw
        .slo
        .into_iter()
        .map(|s| (s.span(), s.into_inner()))
        .collect();
    resolve(tables, &default_selectors()).map_err(|bad| {
        Error::Invalid(format!(
            "{}:{}: {}: {}",
            path.display(),
            at(bad.span.start),
            bad.key_path,
            bad.message
        ))
    })
}

/// What is wrong with an `[[slo]]` table: where, which key, why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadSlo {
    /// The table's span in the file.
    pub span: std::ops::Range<usize>,
    /// e.g. `slo[2].objective`.
    pub key_path: String,
    pub message: String,
}

/// Validates `[[slo]]` tables (with their spans); `defaults` are the error
/// and total selectors of the service's metrics, used where a table names
/// none.
pub fn resolve(
    tables: Vec<(std::ops::Range<usize>, RawSlo)>,
    defaults: &(String, String),
) -> Result<Vec<Slo>, BadSlo> {
    let mut out = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (i, (span, s)) in tables.into_iter().enumerate() {
        let bad = |field: &str, message: String| BadSlo {
            span: span.clone(),
            key_path: format!("slo[{}].{field}", i + 1),
            message,
        };
        let valid_name = !s.name.is_empty()
            && s.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_name {
            return Err(bad(
                "name",
                format!(
                    "invalid SLO name {:?} (hint: letters, digits, - _ .)",
                    s.name
                ),
            ));
        }
        if !names.insert(s.name.clone()) {
            return Err(bad("name", format!("duplicate SLO name {:?}", s.name)));
        }
        if !(s.objective.is_finite() && s.objective > 0.0 && s.objective < 100.0) {
            return Err(bad(
                "objective",
                format!(
                    "objective must be a percentage between 0 and 100 (exclusive), got {} (hint: 99.5 means 99.5 % good events)",
                    s.objective
                ),
            ));
        }
        let period = crate::prom::rules::parse_duration(&s.period).map_err(|e| {
            bad(
                "period",
                format!("{e} (hint: a Prometheus duration such as \"30d\")"),
            )
        })?;
        if period < Duration::from_secs(3 * 24 * 3600) {
            return Err(bad(
                "period",
                "period must be at least 3d, the longest alert window (hint: \"30d\" or \"28d\")"
                    .into(),
            ));
        }
        let errors = s.errors.unwrap_or_else(|| defaults.0.clone());
        let total = s.total.unwrap_or_else(|| defaults.1.clone());
        for (field, sel) in [("errors", &errors), ("total", &total)] {
            match promql_parser::parser::parse(sel) {
                Ok(promql_parser::parser::Expr::VectorSelector(_)) => {}
                Ok(_) => {
                    return Err(bad(
                        field,
                        format!(
                            "{sel:?} is not a series selector (hint: name a counter, e.g. http_requests_total{{status=~\"5..\"}}; slocheck wraps it in rate())"
                        ),
                    ));
                }
                Err(e) => return Err(bad(field, format!("invalid PromQL {sel:?}: {}", e.trim()))),
            }
        }
        let slo = Slo {
            name: s.name,
            objective: s.objective,
            period,
            errors,
            total,
            min_errors: s.min_errors.unwrap_or(DEFAULT_MIN_ERRORS),
        };
        let page = PAGE[0].factor(period) * slo.budget();
        if page >= 1.0 {
            return Err(bad(
                "objective",
                format!(
                    "with objective {} the page threshold ({}× the budget) is an error ratio of {page:.3}, which can never be exceeded (hint: objectives below ~93 % need other alerting)",
                    slo.objective,
                    PAGE[0].factor(period)
                ),
            ));
        }
        out.push(slo);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Vec<Slo>, String> {
        parse_str(t, Path::new("slo.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn workbook_factors_for_thirty_days() {
        let p = Duration::from_secs(30 * 24 * 3600);
        let f: Vec<f64> = PAGE.iter().chain(&TICKET).map(|w| w.factor(p)).collect();
        assert_eq!(f, vec![14.4, 6.0, 3.0, 1.0]);
    }

    #[test]
    fn defaults_come_from_the_service_metrics() {
        let s = parse("[[slo]]\nname = \"a\"\nobjective = 99.5\nperiod = \"30d\"\n").unwrap();
        assert_eq!(s[0].errors, "http_requests_total{status=~\"5..\"}");
        assert_eq!(s[0].total, "http_requests_total");
        assert_eq!(s[0].budget(), 0.005);
        assert_eq!(s[0].min_errors, DEFAULT_MIN_ERRORS);
    }

    #[test]
    fn bad_input_names_file_line_and_key() {
        let e = parse("[[slo]]\nname = \"a\"\nobjective = 120\nperiod = \"30d\"\n").unwrap_err();
        assert!(
            e.starts_with("slo.toml:1:1: slo[1].objective: objective must be"),
            "{e}"
        );
        let e = parse("[[slo]]\nname = \"a\"\nobjective = 99\nperiod = \"30d\"\ntypo = 1\n")
            .unwrap_err();
        assert!(e.starts_with("slo.toml:5:1: unknown field `typo`"), "{e}");
        let e = parse("[[slo]]\nname = \"a\"\nobjective = 99\nperiod = \"1d\"\n").unwrap_err();
        assert!(
            e.contains("slo[1].period: period must be at least 3d"),
            "{e}"
        );
        let e = parse(
            "[[slo]]\nname = \"a\"\nobjective = 99\nperiod = \"30d\"\nerrors = \"rate(x[5m])\"\n",
        )
        .unwrap_err();
        assert!(e.contains("is not a series selector"), "{e}");
        let e = parse("[[slo]]\nname = \"a\"\nobjective = 90\nperiod = \"30d\"\n").unwrap_err();
        assert!(e.contains("can never be exceeded"), "{e}");
        assert!(parse("").unwrap_err().contains("missing field `slo`"));
    }
}
