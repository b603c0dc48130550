//! The `[metrics]` table: a preset naming the service's metric convention,
//! and keys that describe any other service or override the preset. Every
//! query the spec yields is built and parsed here, so a bad override is a
//! located error before anything runs.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, SeqAccess, Visitor};

use super::ctx::{Ctx, join};
use super::raw::{RawExpect, S};
use crate::metrics::{
    Errors, LatencyKind, MetricQueries, MetricsSpec, Unit, parse_selector, preset, preset_names,
    valid_label_name, valid_metric_name,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    pub preset: Option<S<String>>,
    /// The requests counter, or several whose sum is every request.
    pub requests: Option<S<RawNames>>,
    pub status_label: Option<S<String>>,
    /// Regular expression over `status_label` that means "server error".
    pub server_error: Option<S<String>>,
    /// A separate failure counter (`name` or `name{matchers}`).
    pub error_counter: Option<S<String>>,
    pub latency: Option<S<String>>,
    pub latency_type: Option<S<String>>,
    pub latency_unit: Option<S<String>>,
    pub latency_count: Option<S<String>>,
    /// Matchers added to every selector: `{service="checkout"}`.
    pub selector: Option<S<String>>,
}

/// `requests = "name"` or `requests = ["a", "b"]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawNames(pub Vec<String>);

impl<'de> Deserialize<'de> for RawNames {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawNames;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a metric name or a list of metric names")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawNames, E> {
                Ok(RawNames(vec![s.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNames, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    v.push(s);
                }
                Ok(RawNames(v))
            }
        }
        d.deserialize_any(V)
    }
}

const PATH: &str = "metrics";

/// The spec of `[metrics]` (the tutorial's when absent); None if reported.
pub(super) fn resolve_metrics(
    raw: Option<&S<RawMetrics>>,
    cx: &mut Ctx<'_>,
) -> Option<MetricsSpec> {
    let Some(t) = raw else {
        return Some(MetricsSpec::default());
    };
    let m = t.get_ref();
    let before = cx.diags.len();
    let mut spec = match &m.preset {
        None => MetricsSpec::default(),
        Some(p) => match preset(p.get_ref()) {
            Some(p) => p.spec(),
            None => {
                cx.error_hint(
                    &p.span(),
                    &join(PATH, "preset"),
                    format!("unknown preset \"{}\"", p.get_ref()),
                    &format!(
                        "presets: {}; or describe the service with requests, status_label, server_error, latency keys",
                        preset_names()
                    ),
                );
                return None;
            }
        },
    };
    let name_ok = |v: &S<String>, key: &str, cx: &mut Ctx<'_>| -> Option<String> {
        let n = v.get_ref().trim();
        if valid_metric_name(n) {
            Some(n.to_string())
        } else {
            cx.error_hint(
                &v.span(),
                &join(PATH, key),
                format!("invalid metric name \"{n}\""),
                "metric names match [a-zA-Z_:][a-zA-Z0-9_:]*",
            );
            None
        }
    };
    if let Some(l) = &m.latency {
        if let Some(n) = name_ok(l, "latency", cx) {
            // Accept the histogram as users see it in /metrics.
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(&n);
            spec.latency.metric = base.to_string();
        }
    }
    if let Some(k) = &m.latency_type {
        match LatencyKind::parse(k.get_ref()) {
            Some(k) => spec.latency.kind = k,
            None => cx.error_hint(
                &k.span(),
                &join(PATH, "latency_type"),
                format!("unknown latency_type \"{}\"", k.get_ref()),
                "histogram (quantiles and mean), summary or counter (mean only)",
            ),
        }
    }
    if let Some(u) = &m.latency_unit {
        match Unit::parse(u.get_ref()) {
            Some(u) => spec.latency.unit = u,
            None => cx.error_hint(
                &u.span(),
                &join(PATH, "latency_unit"),
                format!("unknown latency_unit \"{}\"", u.get_ref()),
                "s, ms or us (µs)",
            ),
        }
    }
    if let Some(c) = &m.latency_count {
        spec.latency.count = name_ok(c, "latency_count", cx);
    }
    if let Some(r) = &m.requests {
        let names = &r.get_ref().0;
        if names.is_empty() {
            cx.error_hint(
                &r.span(),
                &join(PATH, "requests"),
                "requests lists no counter",
                "name the requests counter, or \"_count\" for the latency histogram's _count",
            );
        } else if names.len() == 1 && names[0] == "_count" {
            spec.requests.clear();
        } else {
            let mut ok = Vec::new();
            for n in names {
                if valid_metric_name(n) {
                    ok.push(n.clone());
                } else {
                    cx.error_hint(
                        &r.span(),
                        &join(PATH, "requests"),
                        format!("invalid metric name \"{n}\""),
                        "metric names match [a-zA-Z_:][a-zA-Z0-9_:]*",
                    );
                }
            }
            spec.requests = ok;
        }
    }
    match (&m.error_counter, &m.status_label, &m.server_error) {
        (Some(c), Some(other), _) | (Some(c), _, Some(other)) => {
            let _ = c;
            cx.error_hint(
                &other.span(),
                PATH,
                "error_counter and status_label/server_error both describe server errors",
                "keep error_counter for a separate failure counter, or status_label and server_error for a status label",
            );
        }
        (Some(c), None, None) => match parse_selector(c.get_ref(), true) {
            Ok(s) => spec.errors = Errors::Counter(s),
            Err(e) => cx.error_hint(
                &c.span(),
                &join(PATH, "error_counter"),
                format!("invalid error_counter \"{}\": {e}", c.get_ref()),
                "write a counter name, optionally with matchers: tgi_request_failure{err!=\"validation\"}",
            ),
        },
        (None, label, matcher) if label.is_some() || matcher.is_some() => {
            let (mut l, mut mt) = match &spec.errors {
                Errors::Status { label, matcher } => (label.clone(), matcher.clone()),
                Errors::Counter(_) => ("status".to_string(), "5..".to_string()),
            };
            if let Some(v) = label {
                if valid_label_name(v.get_ref()) {
                    l = v.get_ref().clone();
                } else {
                    cx.error_hint(
                        &v.span(),
                        &join(PATH, "status_label"),
                        format!("invalid label name \"{}\"", v.get_ref()),
                        "label names match [a-zA-Z_][a-zA-Z0-9_]*",
                    );
                }
            }
            if let Some(v) = matcher {
                let probe = format!("x{{a=~{}}}", crate::metrics::query::quote(v.get_ref()));
                match promql_parser::parser::parse(&probe) {
                    Ok(_) if !v.get_ref().is_empty() => mt = v.get_ref().clone(),
                    Ok(_) => cx.error_hint(
                        &v.span(),
                        &join(PATH, "server_error"),
                        "server_error must not be empty",
                        "\"5..\" matches \"503\" and \"5xx\"",
                    ),
                    Err(e) => cx.error_hint(
                        &v.span(),
                        &join(PATH, "server_error"),
                        format!("invalid server_error regular expression: {}", e.trim()),
                        "\"5..\" matches \"503\" and \"5xx\"; gRPC: \"UNAVAILABLE|INTERNAL\"",
                    ),
                }
            }
            spec.errors = Errors::Status { label: l, matcher: mt };
        }
        _ => {}
    }
    if let Some(s) = &m.selector {
        match parse_selector(s.get_ref(), false) {
            Ok(sel) if sel.name.is_empty() => spec.selector.extend(sel.matchers),
            Ok(_) => cx.error_hint(
                &s.span(),
                &join(PATH, "selector"),
                "selector must be label matchers only",
                "write it like {service=\"checkout\", reporter=\"destination\"}",
            ),
            Err(e) => cx.error_hint(
                &s.span(),
                &join(PATH, "selector"),
                format!("invalid selector \"{}\": {e}", s.get_ref()),
                "write it like {service=\"checkout\", reporter=\"destination\"}",
            ),
        }
    }
    if spec.latency.kind == LatencyKind::Counter
        && spec.latency.count.is_none()
        && spec.requests.is_empty()
    {
        cx.error_hint(
            &t.span(),
            PATH,
            "a latency counter needs a request count to divide by",
            "set latency_count or requests",
        );
    }
    if cx.diags.len() > before {
        return None;
    }
    // Every query must parse: overrides combine in ways no single key shows.
    let q = MetricQueries::new(&spec, "job");
    let w = std::time::Duration::from_secs(10);
    let mut all = vec![
        q.error_ratio(w),
        q.latency_mean(w),
        q.request_rate_by_class(w),
    ];
    all.extend(q.latency_quantile(0.9, w));
    for e in all {
        if let Err(msg) = promql_parser::parser::parse(&e) {
            cx.error_hint(
                &t.span(),
                PATH,
                format!("these keys give invalid PromQL: {}: {e}", msg.trim()),
                "check the names and matchers in [metrics]",
            );
            return None;
        }
    }
    Some(spec)
}

/// Refuses expectations the convention cannot answer (a quantile from a
/// summary or a time counter), at the expectation's key.
pub(super) fn check_answerable(spec: &MetricsSpec, expects: &[S<RawExpect>], cx: &mut Ctx<'_>) {
    let Some((why, hint)) = spec.quantile_refusal() else {
        return;
    };
    for (i, e) in expects.iter().enumerate() {
        if let Some(q) = &e.get_ref().latency_quantile {
            cx.error_hint(
                &q.span(),
                &format!("expect[{}].latency_quantile", i + 1),
                format!("cannot check a latency quantile: {why}"),
                &hint,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::metrics::{Errors, LatencyKind, MetricsSpec, Selector, Unit, preset};

    fn spec(metrics: &str) -> Result<MetricsSpec, String> {
        let text =
            format!("[metrics]\n{metrics}\n[[phase]]\nname = \"p\"\nduration = \"5s\"\nrate = 1\n");
        crate::scenario::parse_str(&text, Path::new("t.toml"))
            .map(|l| l.plan.metrics)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn no_table_and_an_empty_table_are_the_tutorial() {
        assert_eq!(spec("").unwrap(), MetricsSpec::default());
    }

    #[test]
    fn keys_override_the_preset() {
        let s = spec("preset = \"triton\"\nlatency_unit = \"ms\"\nselector = '{model=\"iris\"}'")
            .unwrap();
        assert_eq!(s.preset, "triton");
        assert_eq!(s.latency.unit, Unit::Millis);
        assert_eq!(s.latency.kind, LatencyKind::Counter);
        assert_eq!(s.selector, vec!["model=\"iris\"".to_string()]);

        let s = spec("preset = \"opentelemetry\"\nrequests = [\"a_total\", \"b_total\"]\nerror_counter = 'fails_total{kind!=\"client\"}'").unwrap();
        assert_eq!(
            s.requests,
            vec!["a_total".to_string(), "b_total".to_string()]
        );
        assert_eq!(
            s.errors,
            Errors::Counter(Selector {
                name: "fails_total".into(),
                matchers: vec!["kind!=\"client\"".into()]
            })
        );

        // A status label on a preset with a failure counter switches it.
        let s = spec("preset = \"tgi\"\nstatus_label = \"code\"").unwrap();
        assert_eq!(
            s.errors,
            Errors::Status {
                label: "code".into(),
                matcher: "5..".into()
            }
        );
        let s = spec("preset = \"istio\"\nrequests = \"_count\"\nlatency = \"x_seconds_bucket\"")
            .unwrap();
        assert!(s.requests.is_empty());
        assert_eq!(s.latency.metric, "x_seconds");
        assert_eq!(s.request_metrics(), vec!["x_seconds_count".to_string()]);
        assert_eq!(
            s.selector,
            preset("istio").unwrap().spec().selector,
            "the preset's own matchers stay"
        );
    }

    #[test]
    fn a_counter_latency_needs_a_count() {
        let e = spec("latency_type = \"counter\"\nrequests = \"_count\"").unwrap_err();
        assert!(
            e.contains("metrics: a latency counter needs a request count"),
            "{e}"
        );
    }
}
