//! The conventions real services export, one preset each, by the names the
//! scenario's `[metrics] preset` accepts. Names and labels were checked
//! against the installed exporters where one installs from PyPI
//! (prometheus-fastapi-instrumentator, starlette_exporter, OpenTelemetry),
//! and against the projects' sources otherwise (see README "Metric presets").

use super::{Errors, Latency, LatencyKind, MetricsSpec, Selector, Unit};

/// Which responses a preset counts as server errors.
#[derive(Debug, Clone, Copy)]
pub enum PresetErrors {
    /// `label =~ matcher` on the requests counter.
    Status(&'static str, &'static str),
    /// A failure counter and its extra matchers.
    Counter(&'static str, &'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub struct Preset {
    pub name: &'static str,
    /// Who exports it, for `doctor`, `init` and the README table.
    pub about: &'static str,
    /// Counters summed for every request; empty: the latency `_count`.
    pub requests: &'static [&'static str],
    pub errors: PresetErrors,
    pub latency: &'static str,
    pub latency_kind: LatencyKind,
    pub unit: Unit,
    /// `LatencyKind::Counter`: the divisor of the time counter.
    pub latency_count: Option<&'static str>,
    /// Matchers every query adds (e.g. Istio's `reporter="destination"`).
    pub selector: &'static [&'static str],
    /// Sample names besides the ones queried that set this convention apart
    /// from a similar one when recognizing a `/metrics` page.
    pub distinctive: &'static [&'static str],
}

impl Preset {
    pub fn spec(&self) -> MetricsSpec {
        MetricsSpec {
            preset: self.name.to_string(),
            requests: self.requests.iter().map(|s| s.to_string()).collect(),
            errors: match self.errors {
                PresetErrors::Status(label, matcher) => Errors::Status {
                    label: label.into(),
                    matcher: matcher.into(),
                },
                PresetErrors::Counter(name, matchers) => Errors::Counter(Selector {
                    name: name.into(),
                    matchers: matchers.iter().map(|m| m.to_string()).collect(),
                }),
            },
            latency: Latency {
                metric: self.latency.into(),
                kind: self.latency_kind,
                unit: self.unit,
                count: self.latency_count.map(str::to_string),
            },
            selector: self.selector.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// gRPC status names that mean the server failed (the codes gRPC-HTTP
/// gateways map to 5xx).
pub const GRPC_SERVER_ERRORS: &str =
    "UNKNOWN|INTERNAL|UNAVAILABLE|DATA_LOSS|UNIMPLEMENTED|DEADLINE_EXCEEDED";

const fn status(
    name: &'static str,
    about: &'static str,
    requests: &'static [&'static str],
    label: &'static str,
    latency: &'static str,
    unit: Unit,
) -> Preset {
    Preset {
        name,
        about,
        requests,
        errors: PresetErrors::Status(label, "5.."),
        latency,
        latency_kind: LatencyKind::Histogram,
        unit,
        latency_count: None,
        selector: &[],
        distinctive: &[],
    }
}

/// Every preset, in the order the README lists them.
pub const PRESETS: &[Preset] = &[
    status(
        "tutorial",
        "slocheck's built-in target / prometheus_client by hand",
        &["http_requests_total"],
        "status",
        "http_request_latency_seconds",
        Unit::Seconds,
    ),
    status(
        "fastapi-instrumentator",
        "prometheus-fastapi-instrumentator (status grouped as \"5xx\")",
        &["http_requests_total"],
        "status",
        "http_request_duration_seconds",
        Unit::Seconds,
    ),
    status(
        "starlette-exporter",
        "starlette_exporter",
        &["starlette_requests_total"],
        "status_code",
        "starlette_request_duration_seconds",
        Unit::Seconds,
    ),
    status(
        "opentelemetry",
        "OpenTelemetry HTTP server metrics, stable semconv (Python: OTEL_SEMCONV_STABILITY_OPT_IN=http)",
        &[],
        "http_response_status_code",
        "http_server_request_duration_seconds",
        Unit::Seconds,
    ),
    status(
        "opentelemetry-legacy",
        "OpenTelemetry HTTP server metrics, old semconv (milliseconds)",
        &[],
        "http_status_code",
        "http_server_duration_milliseconds",
        Unit::Millis,
    ),
    Preset {
        latency_kind: LatencyKind::Summary,
        ..status(
            "micrometer",
            "Micrometer / Spring Boot Actuator (a summary unless percentiles-histogram is on)",
            &[],
            "status",
            "http_server_requests_seconds",
            Unit::Seconds,
        )
    },
    Preset {
        distinctive: &[],
        ..status(
            "go-http-metrics",
            "slok/go-http-metrics",
            &[],
            "code",
            "http_request_duration_seconds",
            Unit::Seconds,
        )
    },
    Preset {
        selector: &["reporter=\"destination\""],
        ..status(
            "istio",
            "Istio / Envoy sidecars (server-side reports, milliseconds)",
            &["istio_requests_total"],
            "response_code",
            "istio_request_duration_milliseconds",
            Unit::Millis,
        )
    },
    status(
        "ingress-nginx",
        "Kubernetes ingress-nginx controller",
        &["nginx_ingress_controller_requests"],
        "status",
        "nginx_ingress_controller_request_duration_seconds",
        Unit::Seconds,
    ),
    status(
        "traefik",
        "Traefik service metrics",
        &["traefik_service_requests_total"],
        "code",
        "traefik_service_request_duration_seconds",
        Unit::Seconds,
    ),
    status(
        "bentoml",
        "BentoML ≥ 1.2 services",
        &["bentoml_service_request_total"],
        "http_response_code",
        "bentoml_service_request_duration_seconds",
        Unit::Seconds,
    ),
    Preset {
        errors: PresetErrors::Counter(
            "ray_serve_num_http_error_requests_total",
            &["error_code=~\"5..\""],
        ),
        ..status(
            "ray-serve",
            "Ray Serve HTTP proxy (milliseconds)",
            &["ray_serve_num_http_requests_total"],
            "",
            "ray_serve_http_request_latency_ms",
            Unit::Millis,
        )
    },
    status(
        "seldon",
        "Seldon Core v1 executor",
        &[],
        "code",
        "seldon_api_executor_server_requests_seconds",
        Unit::Seconds,
    ),
    Preset {
        errors: PresetErrors::Counter("nv_inference_request_failure", &[]),
        latency_kind: LatencyKind::Counter,
        latency_count: Some("nv_inference_request_success"),
        ..status(
            "triton",
            "NVIDIA Triton Inference Server (cumulative microseconds: mean only)",
            &[
                "nv_inference_request_success",
                "nv_inference_request_failure",
            ],
            "",
            "nv_inference_request_duration_us",
            Unit::Micros,
        )
    },
    Preset {
        errors: PresetErrors::Counter("Requests5XX", &[]),
        latency_kind: LatencyKind::Counter,
        latency_count: Some("ts_inference_requests_total"),
        ..status(
            "torchserve",
            "TorchServe (status class in the metric name; cumulative microseconds: mean only)",
            &["Requests2XX", "Requests4XX", "Requests5XX"],
            "",
            "ts_inference_latency_microseconds",
            Unit::Micros,
        )
    },
    Preset {
        errors: PresetErrors::Status("status", GRPC_SERVER_ERRORS),
        ..status(
            "tf-serving",
            "TensorFlow Serving (gRPC status names, microseconds)",
            &[":tensorflow:serving:request_count"],
            "status",
            ":tensorflow:serving:request_latency",
            Unit::Micros,
        )
    },
    Preset {
        errors: PresetErrors::Counter("tgi_request_failure", &["err!=\"validation\""]),
        ..status(
            "tgi",
            "Hugging Face Text Generation Inference",
            &["tgi_request_count"],
            "",
            "tgi_request_duration",
            Unit::Seconds,
        )
    },
    Preset {
        distinctive: &["vllm:request_success_total"],
        ..status(
            "vllm",
            "vLLM OpenAI server (HTTP counter from the instrumentator, engine latency)",
            &["http_requests_total"],
            "status",
            "vllm:e2e_request_latency_seconds",
            Unit::Seconds,
        )
    },
];

pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// clap value parser: a preset name, or an error listing them.
pub fn parse_name(s: &str) -> Result<String, String> {
    preset(s)
        .map(|p| p.name.to_string())
        .ok_or_else(|| format!("unknown preset \"{s}\" (presets: {})", preset_names()))
}

/// `tutorial, fastapi-instrumentator, …` for hints.
pub fn preset_names() -> String {
    PRESETS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_issue_s_presets() {
        let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "tutorial",
                "fastapi-instrumentator",
                "starlette-exporter",
                "opentelemetry",
                "opentelemetry-legacy",
                "micrometer",
                "go-http-metrics",
                "istio",
                "ingress-nginx",
                "traefik",
                "bentoml",
                "ray-serve",
                "seldon",
                "triton",
                "torchserve",
                "tf-serving",
                "tgi",
                "vllm"
            ]
        );
    }

    #[test]
    fn counter_latency_has_a_divisor_and_status_presets_a_label() {
        for p in PRESETS {
            if p.latency_kind == LatencyKind::Counter {
                assert!(
                    p.latency_count.is_some() || !p.requests.is_empty(),
                    "{}",
                    p.name
                );
            }
            if let PresetErrors::Status(label, _) = p.errors {
                assert!(super::super::valid_label_name(label), "{}", p.name);
            }
            assert!(super::super::valid_metric_name(p.latency), "{}", p.name);
        }
    }
}
