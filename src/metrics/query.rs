//! Every PromQL question about a service's metrics, built from its
//! `MetricsSpec` so reports, `check`, charts and generated rules show exactly
//! what was asked. Selectors carry the scrape job (when there is one) and the
//! spec's extra matchers; latency is always answered in seconds.

use std::time::Duration;

use super::{Errors, LatencyKind, MetricsSpec, Selector};
use crate::timeutil::promql_duration;

/// Escapes a label value for a PromQL double-quoted string.
pub fn quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `name{m1,m2}`; a name PromQL's lexer may not take as an identifier
/// (TF Serving's leading `:`) goes into `__name__`.
pub fn render_selector(s: &Selector, more: &[String]) -> String {
    let mut m: Vec<String> = more.to_vec();
    m.extend(s.matchers.iter().cloned());
    selector(std::slice::from_ref(&s.name), &m)
}

fn selector(names: &[String], matchers: &[String]) -> String {
    let mut m = Vec::new();
    let bare = match names {
        [one] if !one.starts_with(':') => Some(one.as_str()),
        [one] => {
            m.push(format!("__name__={}", quote(one)));
            None
        }
        many => {
            m.push(format!("__name__=~{}", quote(&many.join("|"))));
            None
        }
    };
    m.extend(matchers.iter().cloned());
    match (bare, m.is_empty()) {
        (Some(n), true) => n.to_string(),
        (Some(n), false) => format!("{n}{{{}}}", m.join(",")),
        (None, _) => format!("{{{}}}", m.join(",")),
    }
}

/// How counters are read: `increase` over a phase window (verification,
/// charts) or `rate` (rules, as the seed writes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Increase,
    Rate,
}

impl Func {
    fn name(self) -> &'static str {
        match self {
            Func::Increase => "increase",
            Func::Rate => "rate",
        }
    }
}

/// The queries of one spec, restricted to one scrape job (or none, for
/// rules that run wherever the user deploys them).
#[derive(Debug, Clone)]
pub struct MetricQueries {
    spec: MetricsSpec,
    job: Option<String>,
}

impl MetricQueries {
    pub fn new(spec: &MetricsSpec, job: &str) -> MetricQueries {
        MetricQueries {
            spec: spec.clone(),
            job: Some(job.to_string()),
        }
    }

    /// Without a job matcher: for rule files.
    pub fn unscoped(spec: &MetricsSpec) -> MetricQueries {
        MetricQueries {
            spec: spec.clone(),
            job: None,
        }
    }

    pub fn spec(&self) -> &MetricsSpec {
        &self.spec
    }

    /// Job first, then the spec's selector, then `extra`.
    fn matchers(&self, extra: &[String]) -> Vec<String> {
        let mut m: Vec<String> = self
            .job
            .iter()
            .map(|j| format!("job={}", quote(j)))
            .collect();
        m.extend(self.spec.selector.iter().cloned());
        m.extend(extra.iter().cloned());
        m
    }

    fn sel(&self, names: &[String], extra: &[String]) -> String {
        selector(names, &self.matchers(extra))
    }

    /// Failed and all requests as one counter selector each, as an SLO
    /// counts them (`[[slo]]` defaults to these); None when requests are
    /// several counters, which no single selector sums.
    pub fn slo_selectors(&self) -> Option<(String, String)> {
        let [total] = &self.spec.request_metrics()[..] else {
            return None;
        };
        let total = std::slice::from_ref(total);
        let errors = match &self.spec.errors {
            Errors::Status { label, matcher } => {
                self.sel(total, &[format!("{label}=~{}", quote(matcher))])
            }
            Errors::Counter(s) => self.sel(std::slice::from_ref(&s.name), &s.matchers),
        };
        Some((errors, self.sel(total, &[])))
    }

    fn sum(&self, f: Func, sel: String, w: &str) -> String {
        format!("sum({}({sel}[{w}]))", f.name())
    }

    /// The sum over several counters. Each is summed on its own: `rate`
    /// drops the metric name, so counters with equal labels (TorchServe's
    /// `Requests2XX`/`Requests5XX`) would collide in one selector. A counter
    /// without series yet counts as 0 rather than emptying the sum.
    fn sum_of(&self, f: Func, names: &[String], extra: &[String], w: &str) -> String {
        match names {
            [one] => self.sum(f, self.sel(std::slice::from_ref(one), extra), w),
            many => {
                let terms: Vec<String> = many
                    .iter()
                    .map(|n| {
                        format!(
                            "({} or vector(0))",
                            self.sum(f, self.sel(std::slice::from_ref(n), extra), w)
                        )
                    })
                    .collect();
                format!("({})", terms.join(" + "))
            }
        }
    }

    fn requests(&self, f: Func, w: &str) -> String {
        self.sum_of(f, &self.spec.request_metrics(), &[], w)
    }

    fn errors(&self, f: Func, w: &str) -> String {
        match &self.spec.errors {
            Errors::Status { label, matcher } => self.sum_of(
                f,
                &self.spec.request_metrics(),
                &[format!("{label}=~{}", quote(matcher))],
                w,
            ),
            Errors::Counter(s) => {
                self.sum(f, self.sel(std::slice::from_ref(&s.name), &s.matchers), w)
            }
        }
    }

    fn in_seconds(&self, expr: String) -> String {
        match self.spec.latency.unit.divisor() {
            None => expr,
            Some(d) => format!("{expr} / {d}"),
        }
    }

    fn series(&self, suffix: &str) -> Vec<String> {
        vec![format!("{}{suffix}", self.spec.latency.metric)]
    }

    /// Server-error share of all requests over `window`. `or vector(0)`
    /// keeps a run with no error series at all from reading as "no data".
    pub fn error_ratio(&self, window: Duration) -> String {
        let w = promql_duration(window);
        format!(
            "({} or vector(0)) / {}",
            self.errors(Func::Increase, &w),
            self.requests(Func::Increase, &w)
        )
    }

    /// The seed's rule form: `sum(rate(errors[w])) / sum(rate(all[w]))`
    /// (NaN, not 0, without traffic).
    pub fn error_ratio_rule(&self, w: &str) -> String {
        format!(
            "{} / {}",
            self.errors(Func::Rate, w),
            self.requests(Func::Rate, w)
        )
    }

    /// Requests per second, the seed's rule form.
    pub fn request_rate_rule(&self, w: &str) -> String {
        self.requests(Func::Rate, w)
    }

    /// Quantile `q` of the latency histogram over exactly `window` before
    /// the evaluation time, in seconds; None when the convention has no
    /// histogram (`MetricsSpec::quantile_refusal` says why).
    pub fn latency_quantile(&self, q: f64, window: Duration) -> Option<String> {
        if !self.spec.has_quantiles() {
            return None;
        }
        let bucket = self.sel(&self.series("_bucket"), &[]);
        Some(self.in_seconds(format!(
            "histogram_quantile({q}, sum by (le) (rate({bucket}[{}])))",
            promql_duration(window)
        )))
    }

    /// The seed's rule form of a quantile: `histogram_quantile(0.90,
    /// sum(rate(x_bucket[5m])) by (le))`, in seconds or (for an alert whose
    /// threshold is written in the exported unit) as exported.
    pub fn latency_quantile_rule(&self, q: &str, w: &str, seconds: bool) -> Option<String> {
        if !self.spec.has_quantiles() {
            return None;
        }
        let bucket = self.sel(&self.series("_bucket"), &[]);
        let e = format!("histogram_quantile({q}, sum(rate({bucket}[{w}])) by (le))");
        Some(if seconds { self.in_seconds(e) } else { e })
    }

    fn mean(&self, f: Func, w: &str, seconds: bool) -> String {
        let l = &self.spec.latency;
        let (total, count) = match l.kind {
            LatencyKind::Histogram | LatencyKind::Summary => {
                (self.series("_sum"), self.series("_count"))
            }
            LatencyKind::Counter => {
                let count = match &l.count {
                    Some(c) => vec![c.clone()],
                    None => self.spec.request_metrics(),
                };
                (self.series(""), count)
            }
        };
        let e = format!(
            "{} / {}",
            self.sum_of(f, &total, &[], w),
            self.sum_of(f, &count, &[], w)
        );
        if seconds { self.in_seconds(e) } else { e }
    }

    /// Mean latency over `window` in seconds; every convention has one.
    pub fn latency_mean(&self, window: Duration) -> String {
        self.mean(Func::Increase, &promql_duration(window), true)
    }

    /// The rule form of the mean, in seconds or as exported.
    pub fn latency_mean_rule(&self, w: &str, seconds: bool) -> String {
        self.mean(Func::Rate, w, seconds)
    }

    /// The histogram's bucket bounds (`le`, in the exported unit); None
    /// without a histogram.
    pub fn bucket_bounds(&self) -> Option<String> {
        self.spec
            .has_quantiles()
            .then(|| format!("count by (le) ({})", self.sel(&self.series("_bucket"), &[])))
    }

    /// A bucket bound as exported, in seconds.
    pub fn le_seconds(&self, le: f64) -> f64 {
        self.spec.latency.unit.to_seconds(le)
    }

    /// Response rate per class over `window`: `2xx`, `5xx`, … from a numeric
    /// status label; the status itself for named ones (gRPC); `5xx` and
    /// `other` for a separate failure counter.
    pub fn request_rate_by_class(&self, window: Duration) -> String {
        let w = promql_duration(window);
        let reqs = self.sel(&self.spec.request_metrics(), &[]);
        match &self.spec.errors {
            Errors::Status { label, matcher }
                if matcher.starts_with(|c: char| c.is_ascii_digit()) =>
            {
                format!(
                    "sum by (class) (label_replace(rate({reqs}[{w}]), \"class\", \"${{1}}xx\", {}, \"(.).*\"))",
                    quote(label)
                )
            }
            Errors::Status { label, .. } => format!(
                "sum by (class) (label_replace(rate({reqs}[{w}]), \"class\", \"$1\", {}, \"(.*)\"))",
                quote(label)
            ),
            Errors::Counter(_) => {
                let errors = self.errors(Func::Rate, &w);
                let all = self.requests(Func::Rate, &w);
                format!(
                    "label_replace({errors}, \"class\", \"5xx\", \"\", \"\") or label_replace({all} - {errors}, \"class\", \"other\", \"\", \"\")"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{PRESETS, preset};

    fn q(name: &str) -> MetricQueries {
        MetricQueries::new(&preset(name).unwrap().spec(), "j")
    }

    #[test]
    fn tutorial_queries_are_the_seed_s() {
        let w = Duration::from_secs(25);
        let t = q("tutorial");
        assert_eq!(
            t.latency_quantile(0.9, w).unwrap(),
            "histogram_quantile(0.9, sum by (le) (rate(http_request_latency_seconds_bucket{job=\"j\"}[25000ms])))"
        );
        assert_eq!(
            t.error_ratio(w),
            "(sum(increase(http_requests_total{job=\"j\",status=~\"5..\"}[25000ms])) or vector(0)) / sum(increase(http_requests_total{job=\"j\"}[25000ms]))"
        );
        let r = MetricQueries::unscoped(t.spec());
        assert_eq!(
            r.error_ratio_rule("5m"),
            "sum(rate(http_requests_total{status=~\"5..\"}[5m])) / sum(rate(http_requests_total[5m]))"
        );
        assert_eq!(
            r.latency_quantile_rule("0.90", "5m", true).unwrap(),
            "histogram_quantile(0.90, sum(rate(http_request_latency_seconds_bucket[5m])) by (le))"
        );
    }

    #[test]
    fn conventions_change_names_units_and_shapes() {
        let w = Duration::from_secs(10);
        assert_eq!(
            q("istio").latency_quantile(0.5, w).unwrap(),
            "histogram_quantile(0.5, sum by (le) (rate(istio_request_duration_milliseconds_bucket{job=\"j\",reporter=\"destination\"}[10000ms]))) / 1000"
        );
        assert_eq!(
            q("opentelemetry").error_ratio(w),
            "(sum(increase(http_server_request_duration_seconds_count{job=\"j\",http_response_status_code=~\"5..\"}[10000ms])) or vector(0)) / sum(increase(http_server_request_duration_seconds_count{job=\"j\"}[10000ms]))"
        );
        assert_eq!(
            q("triton").error_ratio(w),
            "(sum(increase(nv_inference_request_failure{job=\"j\"}[10000ms])) or vector(0)) / ((sum(increase(nv_inference_request_success{job=\"j\"}[10000ms])) or vector(0)) + (sum(increase(nv_inference_request_failure{job=\"j\"}[10000ms])) or vector(0)))"
        );
        assert_eq!(
            q("triton").latency_mean(w),
            "sum(increase(nv_inference_request_duration_us{job=\"j\"}[10000ms])) / sum(increase(nv_inference_request_success{job=\"j\"}[10000ms])) / 1000000"
        );
        assert_eq!(q("triton").latency_quantile(0.9, w), None);
        assert_eq!(
            q("tgi").error_ratio(w),
            "(sum(increase(tgi_request_failure{job=\"j\",err!=\"validation\"}[10000ms])) or vector(0)) / sum(increase(tgi_request_count{job=\"j\"}[10000ms]))"
        );
        assert_eq!(
            q("tf-serving").bucket_bounds().unwrap(),
            "count by (le) ({__name__=\":tensorflow:serving:request_latency_bucket\",job=\"j\"})"
        );
        assert_eq!(q("micrometer").bucket_bounds(), None);
        assert_eq!(q("opentelemetry-legacy").le_seconds(250.0), 0.25);
    }

    #[test]
    fn every_query_of_every_preset_parses() {
        let w = Duration::from_millis(12_345);
        for p in PRESETS {
            for m in [
                MetricQueries::new(&p.spec(), "we\"ird"),
                MetricQueries::unscoped(&p.spec()),
            ] {
                let mut all = vec![
                    m.error_ratio(w),
                    m.error_ratio_rule("5m"),
                    m.request_rate_rule("5m"),
                    m.latency_mean(w),
                    m.latency_mean_rule("5m", true),
                    m.latency_mean_rule("5m", false),
                    m.request_rate_by_class(w),
                ];
                all.extend(m.latency_quantile(0.99, w));
                all.extend(m.latency_quantile_rule("0.90", "5m", true));
                all.extend(m.latency_quantile_rule("0.90", "5m", false));
                all.extend(m.bucket_bounds());
                for e in all {
                    promql_parser::parser::parse(&e)
                        .unwrap_or_else(|err| panic!("{}: {e}: {err}", p.name));
                }
            }
        }
    }
}
