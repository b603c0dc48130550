//! Metric conventions: which counters, status labels and latency series a
//! service exports (a preset, or explicit `[metrics]` keys), and every PromQL
//! question slocheck asks about them, built in one place (`query`). `doctor`
//! and `init` recognize a convention from a live `/metrics` (`recognize`);
//! `rules` rewrites the seed's recording and alerting rules for one.

pub mod preset;
pub mod query;
pub mod recognize;
pub mod rules;

pub use preset::{PRESETS, Preset, preset, preset_names};
pub use query::MetricQueries;

/// The unit a latency series is exported in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Millis,
    Micros,
}

impl Unit {
    /// Parses the scenario spelling: `s`, `ms`, `us` or `µs`.
    pub fn parse(s: &str) -> Option<Unit> {
        match s {
            "s" => Some(Unit::Seconds),
            "ms" => Some(Unit::Millis),
            "us" | "µs" => Some(Unit::Micros),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Unit::Seconds => "s",
            Unit::Millis => "ms",
            Unit::Micros => "µs",
        }
    }

    /// A value in this unit, in seconds (histogram `le` bounds, sums).
    pub fn to_seconds(self, v: f64) -> f64 {
        match self {
            Unit::Seconds => v,
            Unit::Millis => v / 1e3,
            Unit::Micros => v / 1e6,
        }
    }

    /// What a PromQL value in this unit is divided by to read as seconds.
    fn divisor(self) -> Option<&'static str> {
        match self {
            Unit::Seconds => None,
            Unit::Millis => Some("1000"),
            Unit::Micros => Some("1000000"),
        }
    }
}

/// How the latency is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyKind {
    /// `_bucket`/`_sum`/`_count`: quantiles and the mean.
    Histogram,
    /// `_sum`/`_count` (client-side quantiles cannot be aggregated): mean only.
    Summary,
    /// A cumulative time counter divided by a request counter: mean only.
    Counter,
}

impl LatencyKind {
    pub fn parse(s: &str) -> Option<LatencyKind> {
        match s {
            "histogram" => Some(LatencyKind::Histogram),
            "summary" => Some(LatencyKind::Summary),
            "counter" => Some(LatencyKind::Counter),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LatencyKind::Histogram => "histogram",
            LatencyKind::Summary => "summary",
            LatencyKind::Counter => "counter",
        }
    }
}

/// A metric name with optional extra matchers, e.g.
/// `tgi_request_failure{err!="validation"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub name: String,
    /// Matchers as written (`err!="validation"`), already validated.
    pub matchers: Vec<String>,
}

impl Selector {
    pub fn name(name: &str) -> Selector {
        Selector {
            name: name.to_string(),
            matchers: Vec::new(),
        }
    }
}

/// Which responses are server errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Errors {
    /// Requests whose `label` matches the regular expression `matcher`
    /// (`5..` matches both `"503"` and a grouped `"5xx"`).
    Status { label: String, matcher: String },
    /// A separate counter of failed requests.
    Counter(Selector),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latency {
    /// Base name: the histogram or summary without `_bucket`/`_sum`/`_count`,
    /// or the cumulative time counter itself.
    pub metric: String,
    pub kind: LatencyKind,
    pub unit: Unit,
    /// `Counter` only: what the time counter is divided by (None: the
    /// requests counter).
    pub count: Option<String>,
}

/// One service's metric convention, resolved from a preset and overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSpec {
    /// The preset it started from (`tutorial` by default).
    pub preset: String,
    /// Counters whose sum is every request; empty: the latency histogram's
    /// (or summary's) `_count`.
    pub requests: Vec<String>,
    pub errors: Errors,
    pub latency: Latency,
    /// Extra matchers added to every selector (`service="checkout"`).
    pub selector: Vec<String>,
}

impl Default for MetricsSpec {
    /// The tutorial's hand-written names (`http_requests_total{status}`,
    /// `http_request_latency_seconds`): what every scenario without
    /// `[metrics]` uses.
    fn default() -> Self {
        preset("tutorial")
            .map(|p| p.spec())
            .expect("the tutorial preset exists")
    }
}

impl MetricsSpec {
    /// The requests counters, or the latency's `_count` when there is none.
    pub fn request_metrics(&self) -> Vec<String> {
        if self.requests.is_empty() {
            vec![format!("{}_count", self.latency.metric)]
        } else {
            self.requests.clone()
        }
    }

    pub fn has_quantiles(&self) -> bool {
        self.latency.kind == LatencyKind::Histogram
    }

    /// Why `latency_quantile` cannot be answered, with what to do instead.
    pub fn quantile_refusal(&self) -> Option<(String, String)> {
        let l = &self.latency;
        match l.kind {
            LatencyKind::Histogram => None,
            LatencyKind::Summary => Some((
                format!(
                    "{} is a summary without buckets: Prometheus cannot compute a quantile from it (preset \"{}\")",
                    l.metric, self.preset
                ),
                if self.preset == "micrometer" {
                    "enable percentiles-histogram (management.metrics.distribution.percentiles-histogram.http.server.requests=true) and set [metrics] latency_type = \"histogram\", or use latency_mean".to_string()
                } else {
                    "export a histogram and set [metrics] latency_type = \"histogram\", or use latency_mean".to_string()
                },
            )),
            LatencyKind::Counter => Some((
                format!(
                    "{} is a cumulative time counter: it gives the mean latency, not a quantile (preset \"{}\")",
                    l.metric, self.preset
                ),
                "use latency_mean = { phase = \"…\", below = \"…\" }".to_string(),
            )),
        }
    }

    /// One line saying what is read, for `check` and `init`.
    pub fn describe(&self) -> String {
        let errors = match &self.errors {
            Errors::Status { label, matcher } => format!("{label}=~\"{matcher}\""),
            Errors::Counter(s) => format!("failures from {}", query::render_selector(s, &[])),
        };
        let requests = if self.requests.is_empty() {
            format!("{}_count", self.latency.metric)
        } else {
            self.requests.join(" + ")
        };
        let mut s = format!(
            "metrics: preset \"{}\": requests {requests}, server errors {errors}, latency {} ({}, {})",
            self.preset,
            self.latency.metric,
            self.latency.kind.name(),
            self.latency.unit.name()
        );
        if !self.selector.is_empty() {
            s.push_str(&format!(
                ", every selector adds {{{}}}",
                self.selector.join(",")
            ));
        }
        s
    }
}

/// A valid Prometheus metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn valid_metric_name(n: &str) -> bool {
    n.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn valid_label_name(n: &str) -> bool {
    n.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses `name{a="b", c!~"d"}` (or `{…}` alone when `name_required` is
/// false) with the PromQL parser and returns its name and matchers.
pub fn parse_selector(text: &str, name_required: bool) -> Result<Selector, String> {
    use promql_parser::parser::{self, Expr};
    let t = text.trim();
    let probe = if t.starts_with('{') {
        if name_required {
            return Err("expected a metric name, e.g. \"tgi_request_failure\"".into());
        }
        format!("slocheck_probe{t}")
    } else {
        t.to_string()
    };
    let expr = parser::parse(&probe).map_err(|e| e.trim().to_string())?;
    let Expr::VectorSelector(vs) = expr else {
        return Err("expected a selector like name{label=\"value\"}".into());
    };
    let name = vs.name.clone().unwrap_or_default();
    let matchers = vs
        .matchers
        .matchers
        .iter()
        .filter(|m| m.name != "__name__")
        .map(|m| format!("{}{}{}", m.name, m.op, query::quote(&m.value)))
        .collect();
    Ok(Selector {
        name: if t.starts_with('{') {
            String::new()
        } else {
            name
        },
        matchers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_and_render() {
        let s = parse_selector("tgi_request_failure{err!=\"validation\"}", true).unwrap();
        assert_eq!(s.name, "tgi_request_failure");
        assert_eq!(s.matchers, vec!["err!=\"validation\"".to_string()]);
        let s = parse_selector("{service=\"checkout\", reporter=~\"dest.*\"}", false).unwrap();
        assert_eq!(s.name, "");
        assert_eq!(
            s.matchers,
            vec![
                "service=\"checkout\"".to_string(),
                "reporter=~\"dest.*\"".to_string()
            ]
        );
        assert!(parse_selector("{a=\"b\"}", true).is_err());
        assert!(parse_selector("rate(x[5m])", true).is_err());
        assert!(parse_selector("x{a=~\"(\"}", true).is_err());
    }

    #[test]
    fn units_scale_to_seconds() {
        assert_eq!(Unit::parse("µs"), Some(Unit::Micros));
        assert_eq!(Unit::parse("us"), Some(Unit::Micros));
        assert_eq!(Unit::Millis.to_seconds(250.0), 0.25);
        assert_eq!(Unit::Micros.to_seconds(1500.0), 0.0015);
        assert_eq!(Unit::parse("min"), None);
    }

    #[test]
    fn the_default_is_the_tutorial() {
        let d = MetricsSpec::default();
        assert_eq!(d.preset, "tutorial");
        assert_eq!(d.request_metrics(), vec!["http_requests_total".to_string()]);
        assert!(d.has_quantiles());
    }
}
