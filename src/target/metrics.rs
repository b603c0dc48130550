//! The target's Prometheus metrics (prometheus-client registry, label sets,
//! exposition) and the outermost middleware that records every request.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::model::{CLASS_NAMES, FEATURE_NAMES, N_CLASSES, N_FEATURES};

/// Content type of the exposition (Prometheus text format 0.0.4), as
/// documented by prometheus-client for its `prometheus_text` encoder.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Dense between 10 ms and 1 s so a P90 can be judged within one bucket.
pub const LATENCY_BUCKETS: [f64; 26] = [
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.125, 0.15,
    0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0,
];

/// Model compute is microseconds; these resolve it without a long tail.
pub const INFERENCE_BUCKETS: [f64; 10] = [
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.001,
    0.01,
];

const PREDICT_PATH: &str = "/predict";

/// `path` for requests no route matched: keeps cardinality bounded.
pub const UNMATCHED: &str = "unmatched";

/// Statuses of `POST /predict` exported (at 0) from the start, so the first
/// errors of a run are not lost before the first scrape: success, the target's
/// own client errors, and the 5xx faults inject.
pub const PRECREATED_STATUSES: [u16; 8] = [200, 400, 422, 500, 502, 503, 504, 429];

/// Route templates the target serves; known ones are labelled without
/// allocating.
const KNOWN_PATHS: [&str; 6] = [
    PREDICT_PATH,
    "/healthz",
    "/metrics",
    "/admin/faults",
    "/feedback",
    "/predictions",
];

/// Buckets of `model_input_feature_value`: every Iris feature lies in
/// 0–8 cm; half-centimetre steps up to 12 keep a drifted input in range.
pub const FEATURE_BUCKETS: [f64; 24] = [
    0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5,
    10.0, 10.5, 11.0, 11.5, 12.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub path: Cow<'static, str>,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub path: Cow<'static, str>,
    pub method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabels {
    pub class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeatureLabels {
    pub feature: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedbackLabels {
    pub result: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<RouteLabels>,
    in_flight: Gauge,
    inference: Histogram,
    hot: HotSeries,
    /// Per feature, the distribution of inputs: the input-drift signal.
    features: [Histogram; N_FEATURES],
    /// `accepted`, `unknown_id`, `invalid_label`.
    feedback: [Counter; 3],
}

/// Handles to the pre-created `POST /predict` and per-class series: the hot
/// path updates them without a family lookup (lock + label hashing).
struct HotSeries {
    predict_latency: Histogram,
    predict_by_status: [(u16, Counter); PRECREATED_STATUSES.len()],
    by_class: [Counter; N_CLASSES],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
        let in_flight = Gauge::default();
        let predictions = Family::<ClassLabels, Counter>::default();
        let inference = Histogram::new(INFERENCE_BUCKETS);
        // prometheus-client appends `_total` to counters: this is http_requests_total.
        registry.register(
            "http_requests",
            "HTTP requests by route template, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_latency_seconds",
            "HTTP request latency in seconds, including injected delays",
            latency.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being served",
            in_flight.clone(),
        );
        registry.register(
            "model_predictions",
            "Predictions by predicted class",
            predictions.clone(),
        );
        registry.register(
            "model_inference_seconds",
            "Model compute time per prediction in seconds",
            inference.clone(),
        );
        let hot = HotSeries {
            predict_latency: latency.get_or_create_owned(&RouteLabels {
                path: Cow::Borrowed(PREDICT_PATH),
                method: "POST",
            }),
            predict_by_status: PRECREATED_STATUSES.map(|status| {
                let labels = RequestLabels {
                    path: Cow::Borrowed(PREDICT_PATH),
                    method: "POST",
                    status,
                };
                (status, requests.get_or_create_owned(&labels))
            }),
            by_class: CLASS_NAMES
                .map(|class| predictions.get_or_create_owned(&ClassLabels { class })),
        };
        let features_family: HistogramFamily<FeatureLabels> =
            Family::new_with_constructor(|| Histogram::new(FEATURE_BUCKETS));
        registry.register(
            "model_input_feature_value",
            "Values of the model's input features, per feature",
            features_family.clone(),
        );
        let features = FEATURE_NAMES
            .map(|feature| features_family.get_or_create_owned(&FeatureLabels { feature }));
        let feedback_family = Family::<FeedbackLabels, Counter>::default();
        registry.register(
            "model_feedback",
            "Ground-truth labels received by prediction id, by result",
            feedback_family.clone(),
        );
        let feedback = ["accepted", "unknown_id", "invalid_label"]
            .map(|result| feedback_family.get_or_create_owned(&FeedbackLabels { result }));
        Metrics {
            registry,
            requests,
            latency,
            in_flight,
            inference,
            hot,
            features,
            feedback,
        }
    }

    /// Exports the training data's mean and standard deviation per feature
    /// (`model_feature_reference_mean` / `_stddev`): the reference the
    /// input-drift alert compares the live feature means with.
    pub fn register_reference(&mut self, mean: &[f64; N_FEATURES], std: &[f64; N_FEATURES]) {
        type GaugeF = Gauge<f64, std::sync::atomic::AtomicU64>;
        let means = Family::<FeatureLabels, GaugeF>::default();
        let stds = Family::<FeatureLabels, GaugeF>::default();
        for (i, feature) in FEATURE_NAMES.iter().enumerate() {
            means.get_or_create(&FeatureLabels { feature }).set(mean[i]);
            stds.get_or_create(&FeatureLabels { feature }).set(std[i]);
        }
        self.registry.register(
            "model_feature_reference_mean",
            "Mean of each input feature in the training data",
            means,
        );
        self.registry.register(
            "model_feature_reference_stddev",
            "Standard deviation of each input feature in the training data",
            stds,
        );
    }

    /// Prometheus text exposition of every family.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(8 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    pub fn record_request(
        &self,
        path: Cow<'static, str>,
        method: &'static str,
        status: u16,
        secs: f64,
    ) {
        if path == PREDICT_PATH && method == "POST" {
            self.hot.predict_latency.observe(secs);
            if let Some((_, c)) = self
                .hot
                .predict_by_status
                .iter()
                .find(|(s, _)| *s == status)
            {
                c.inc();
                return;
            }
        } else {
            let route = RouteLabels {
                path: path.clone(),
                method,
            };
            self.latency.get_or_create(&route).observe(secs);
        }
        self.requests
            .get_or_create(&RequestLabels {
                path,
                method,
                status,
            })
            .inc();
    }

    pub fn record_features(&self, x: &[f64; N_FEATURES]) {
        for (h, v) in self.features.iter().zip(x) {
            h.observe(*v);
        }
    }

    pub fn record_feedback(&self, accepted: u64, unknown_id: u64, invalid_label: u64) {
        for (c, n) in self
            .feedback
            .iter()
            .zip([accepted, unknown_id, invalid_label])
        {
            c.inc_by(n);
        }
    }

    pub fn record_prediction(&self, class_index: usize, secs: f64) {
        if let Some(c) = self.hot.by_class.get(class_index) {
            c.inc();
        }
        self.inference.observe(secs);
    }
}

/// `path` label: the route template, borrowed when it is one of ours.
pub fn path_label(matched: Option<&MatchedPath>) -> Cow<'static, str> {
    match matched {
        None => Cow::Borrowed(UNMATCHED),
        Some(m) => match KNOWN_PATHS.iter().find(|p| **p == m.as_str()) {
            Some(p) => Cow::Borrowed(p),
            None => Cow::Owned(m.as_str().to_owned()),
        },
    }
}

/// `method` label; non-standard methods share `OTHER` so a client cannot
/// create series at will.
pub fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// Decrements the in-flight gauge even when the client goes away mid-request
/// and the handler future is dropped.
struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Outermost middleware: sees the final status and the whole latency,
/// including any injected delay, so faults are counted like real failures.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let path = path_label(req.extensions().get::<MatchedPath>());
    let method = method_label(req.method());
    metrics.in_flight.inc();
    let _guard = InFlight(&metrics.in_flight);
    let resp = next.run(req).await;
    metrics.record_request(
        path,
        method,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_exact_names_and_precreated_series() {
        let text = Metrics::new().encode().unwrap();
        for want in [
            "# TYPE http_requests_total counter",
            r#"http_requests_total{path="/predict",method="POST",status="503"} 0"#,
            r#"http_requests_total{path="/predict",method="POST",status="500"} 0"#,
            "# TYPE http_request_latency_seconds histogram",
            r#"http_request_latency_seconds_bucket{path="/predict",method="POST",le="0.2"} 0"#,
            r#"http_request_latency_seconds_count{path="/predict",method="POST"} 0"#,
            "http_requests_in_flight 0",
            r#"model_predictions_total{class="virginica"} 0"#,
            "# TYPE model_inference_seconds histogram",
            "# TYPE model_input_feature_value histogram",
            r#"model_input_feature_value_count{feature="petal_width"} 0"#,
            r#"model_feedback_total{result="unknown_id"} 0"#,
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }

    #[test]
    fn recorded_request_moves_counter_and_buckets() {
        let m = Metrics::new();
        m.record_request(Cow::Borrowed("/predict"), "POST", 503, 0.18);
        let text = m.encode().unwrap();
        assert!(
            text.contains(r#"http_requests_total{path="/predict",method="POST",status="503"} 1"#),
            "{text}"
        );
        assert!(text.contains(
            r#"http_request_latency_seconds_bucket{path="/predict",method="POST",le="0.15"} 0"#
        ));
        assert!(text.contains(
            r#"http_request_latency_seconds_bucket{path="/predict",method="POST",le="0.2"} 1"#
        ));
    }

    #[test]
    fn fast_path_and_family_path_count_once_each() {
        let m = Metrics::new();
        m.record_request(Cow::Borrowed("/predict"), "POST", 418, 0.001);
        m.record_request(Cow::Borrowed("/predict"), "POST", 200, 0.001);
        m.record_request(Cow::Borrowed("/predict"), "GET", 200, 0.001);
        m.record_prediction(2, 0.000_01);
        let text = m.encode().unwrap();
        for line in [
            r#"http_requests_total{path="/predict",method="POST",status="418"} 1"#,
            r#"http_requests_total{path="/predict",method="POST",status="200"} 1"#,
            r#"http_requests_total{path="/predict",method="GET",status="200"} 1"#,
            r#"http_request_latency_seconds_count{path="/predict",method="POST"} 2"#,
            r#"http_request_latency_seconds_count{path="/predict",method="GET"} 1"#,
            r#"model_predictions_total{class="virginica"} 1"#,
            "model_inference_seconds_count 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn labels_are_bounded() {
        assert_eq!(path_label(None), UNMATCHED);
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
        assert_eq!(method_label(&Method::POST), "POST");
    }
}
