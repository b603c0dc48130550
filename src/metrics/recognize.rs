//! What a convention looks like on a `/metrics` page (the families and
//! labels its queries need), and which preset a page matches.

use std::collections::{BTreeMap, BTreeSet};

use super::{Errors, LatencyKind, MetricsSpec, PRESETS, Preset};

/// A metric family the queries read, as the samples Prometheus stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    pub name: String,
    /// `counter`, `histogram` or `summary` (the `# TYPE`).
    pub kind: &'static str,
    /// Sample name → labels it must carry.
    pub samples: Vec<(String, Vec<String>)>,
    /// A failure counter: many exporters create its series only at the
    /// first failure, so a healthy service may not show it yet.
    pub optional: bool,
}

/// The families `spec`'s queries read, each once.
pub fn families(spec: &MetricsSpec) -> Vec<Family> {
    let status: Vec<String> = match &spec.errors {
        Errors::Status { label, .. } => vec![label.clone()],
        Errors::Counter(_) => vec![],
    };
    let mut out: Vec<Family> = Vec::new();
    let mut add = |f: Family| {
        if !out.iter().any(|o| o.name == f.name) {
            out.push(f);
        }
    };
    for r in &spec.requests {
        add(Family {
            name: r.clone(),
            kind: "counter",
            samples: vec![(r.clone(), status.clone())],
            optional: false,
        });
    }
    if let Errors::Counter(s) = &spec.errors {
        add(Family {
            name: s.name.clone(),
            kind: "counter",
            samples: vec![(s.name.clone(), vec![])],
            optional: !spec.requests.contains(&s.name),
        });
    }
    let l = &spec.latency;
    // Without a requests counter, the latency `_count` carries the status.
    let count_labels = if spec.requests.is_empty() {
        status.clone()
    } else {
        vec![]
    };
    let s = |suffix: &str, labels: Vec<String>| (format!("{}{suffix}", l.metric), labels);
    add(match l.kind {
        LatencyKind::Histogram => Family {
            name: l.metric.clone(),
            kind: "histogram",
            samples: vec![
                s("_bucket", vec!["le".into()]),
                s("_sum", vec![]),
                s("_count", count_labels),
            ],
            optional: false,
        },
        LatencyKind::Summary => Family {
            name: l.metric.clone(),
            kind: "summary",
            samples: vec![s("_sum", vec![]), s("_count", count_labels)],
            optional: false,
        },
        LatencyKind::Counter => Family {
            name: l.metric.clone(),
            kind: "counter",
            samples: vec![s("", vec![])],
            optional: false,
        },
    });
    if let (LatencyKind::Counter, Some(c)) = (l.kind, &l.count) {
        add(Family {
            name: c.clone(),
            kind: "counter",
            samples: vec![(c.clone(), vec![])],
            optional: false,
        });
    }
    out
}

/// True when every sample `families` needs is there with its labels.
fn matches(samples: &BTreeMap<String, BTreeSet<String>>, fams: &[Family]) -> bool {
    fams.iter()
        .filter(|f| !f.optional)
        .flat_map(|f| f.samples.iter())
        .all(|(name, labels)| {
            samples
                .get(name)
                .is_some_and(|have| labels.iter().all(|l| have.contains(l)))
        })
}

/// The presets a page's samples (name → label names) match, best first: a
/// convention whose every queried family is present; the one that needs
/// more families (it is more specific) wins.
pub fn recognize(samples: &BTreeMap<String, BTreeSet<String>>) -> Vec<&'static Preset> {
    let mut found: Vec<(usize, usize, &Preset)> = PRESETS
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let fams = families(&p.spec());
            let distinct = p.distinctive.iter().all(|d| samples.contains_key(*d));
            (distinct && matches(samples, &fams)).then(|| {
                let n: usize = fams
                    .iter()
                    .filter(|f| !f.optional)
                    .map(|f| f.samples.len())
                    .sum();
                (n + p.distinctive.len(), i, p)
            })
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    found.into_iter().map(|(_, _, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(lines: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        lines
            .iter()
            .map(|(n, l)| (n.to_string(), l.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    const HIST: &[&str] = &["le"];

    #[test]
    fn each_convention_is_told_apart() {
        let instrumentator = page(&[
            ("http_requests_total", &["handler", "method", "status"]),
            (
                "http_request_duration_seconds_bucket",
                &["handler", "le", "method"],
            ),
            ("http_request_duration_seconds_sum", &["handler", "method"]),
            (
                "http_request_duration_seconds_count",
                &["handler", "method"],
            ),
        ]);
        assert_eq!(recognize(&instrumentator)[0].name, "fastapi-instrumentator");

        let mut vllm = instrumentator.clone();
        vllm.extend(page(&[
            ("vllm:e2e_request_latency_seconds_bucket", HIST),
            ("vllm:e2e_request_latency_seconds_sum", &[]),
            ("vllm:e2e_request_latency_seconds_count", &[]),
            ("vllm:request_success_total", &["finished_reason"]),
        ]));
        assert_eq!(recognize(&vllm)[0].name, "vllm");

        let triton = page(&[
            ("nv_inference_request_success", &["model", "version"]),
            (
                "nv_inference_request_failure",
                &["model", "reason", "version"],
            ),
            ("nv_inference_request_duration_us", &["model", "version"]),
        ]);
        assert_eq!(recognize(&triton)[0].name, "triton");

        let otel = page(&[
            (
                "http_server_request_duration_seconds_bucket",
                &["http_response_status_code", "le"],
            ),
            (
                "http_server_request_duration_seconds_sum",
                &["http_response_status_code"],
            ),
            (
                "http_server_request_duration_seconds_count",
                &["http_response_status_code"],
            ),
        ]);
        assert_eq!(recognize(&otel)[0].name, "opentelemetry");

        let go = page(&[
            (
                "http_request_duration_seconds_bucket",
                &["code", "handler", "le"],
            ),
            ("http_request_duration_seconds_sum", &["code", "handler"]),
            ("http_request_duration_seconds_count", &["code", "handler"]),
        ]);
        assert_eq!(recognize(&go)[0].name, "go-http-metrics");

        assert!(recognize(&page(&[("up", &[])])).is_empty());
    }

    #[test]
    fn every_preset_recognizes_its_own_families() {
        for p in PRESETS {
            let fams = families(&p.spec());
            let mut s: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (n, l) in fams.iter().flat_map(|f| f.samples.iter()) {
                s.entry(n.clone()).or_default().extend(l.iter().cloned());
            }
            for d in p.distinctive {
                s.entry(d.to_string()).or_default();
            }
            assert_eq!(recognize(&s)[0].name, p.name, "{s:?}");
        }
    }
}
