//! The generator's side of model quality, prepared once per run: the true
//! label of every body (never sent), drifted copies of the bodies per phase,
//! the class the built-in model must answer for each body sent, and the
//! batched, off-hot-path report of labels to the feedback endpoint.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderName;

use super::faults::DriftSelection;
use crate::plan::{Plan, TargetPlan};
use crate::record::ModelTruth;
use crate::target::model::{CLASS_NAMES, IrisModel};

/// Response header with the prediction id (see the target's router).
pub const PREDICTION_ID_HEADER: &str = "x-prediction-id";
/// Path of the feedback endpoint on the target.
pub const FEEDBACK_PATH: &str = "/feedback";
/// How often a shard posts the labels it collected.
pub const FEEDBACK_EVERY: Duration = Duration::from_millis(200);
/// Labels a shard holds before it drops (and counts) further ones.
pub const FEEDBACK_BUFFER: usize = 50_000;
/// Items per feedback request (the target accepts up to 10 000).
const FEEDBACK_BATCH: usize = 5_000;

/// A label not known to the model (external models only).
const NO_CLASS: u8 = u8::MAX;

#[derive(Debug)]
struct PhaseDrift {
    select: DriftSelection,
    bodies: Vec<Bytes>,
    expected: Option<Vec<u8>>,
}

/// Everything per-request model work needs, read-only during the run.
#[derive(Debug)]
pub struct ModelTraffic {
    classes: Vec<String>,
    /// Per body; empty without `[model]` (drift only).
    labels: Vec<u8>,
    /// Per body, the built-in model's class; None for an external target.
    expected: Option<Vec<u8>>,
    /// Per phase.
    drift: Vec<Option<PhaseDrift>>,
    pub id_header: HeaderName,
}

/// What request `n` of a phase sends and what its answer must be.
#[derive(Debug, Clone)]
pub struct Pick {
    pub body: Option<Bytes>,
    pub drifted: bool,
    /// None without labels.
    pub label: Option<u8>,
    pub expected: Option<u8>,
}

impl ModelTraffic {
    /// None when the plan has neither `[model]` nor drift. The error is a
    /// one-line message about the bodies.
    pub fn prepare(plan: &Plan) -> Result<Option<ModelTraffic>, String> {
        let any_drift = plan.phases.iter().any(|p| p.drift.is_some());
        if plan.model.is_none() && !any_drift {
            return Ok(None);
        }
        let model: Option<&IrisModel> = match plan.target {
            TargetPlan::BuiltIn => Some(
                crate::target::state::shared_model()
                    .map_err(|e| format!("cannot train the built-in model: {e}"))?,
            ),
            TargetPlan::External { .. } => None,
        };
        let mut classes: Vec<String> = match model {
            Some(_) => CLASS_NAMES.iter().map(|c| c.to_string()).collect(),
            None => Vec::new(),
        };
        let mut labels = Vec::new();
        for l in plan.model.iter().flat_map(|m| &m.labels) {
            let i = match classes.iter().position(|c| c == l) {
                Some(i) => i,
                None => {
                    classes.push(l.clone());
                    classes.len() - 1
                }
            };
            labels.push(u8::try_from(i).unwrap_or(NO_CLASS));
        }
        if classes.len() >= usize::from(NO_CLASS) {
            return Err(format!(
                "the labels name {} classes; at most {} are supported",
                classes.len(),
                NO_CLASS - 1
            ));
        }
        let bodies = &plan.request.bodies;
        let predict = |bodies: &[Bytes]| -> Option<Vec<u8>> {
            let m = model?;
            bodies
                .iter()
                .map(|b| crate::scenario::body_features(b).map(|x| m.predict(&x).class_index as u8))
                .collect()
        };
        let expected = predict(bodies);
        let std = crate::target::state::shared_model()
            .map_err(|e| format!("cannot train the built-in model: {e}"))?
            .reference()
            .1;
        let mut drift = Vec::with_capacity(plan.phases.len());
        for (i, p) in plan.phases.iter().enumerate() {
            let Some(d) = p.drift else {
                drift.push(None);
                continue;
            };
            let shifted = bodies
                .iter()
                .enumerate()
                .map(|(n, b)| {
                    shift_body(b, d.shift, &std).ok_or_else(|| {
                        format!(
                            "phase \"{}\": body {} has no four numeric features to drift",
                            p.name,
                            n + 1
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            drift.push(Some(PhaseDrift {
                select: DriftSelection::new(plan.seed, i, d.fraction),
                expected: predict(&shifted),
                bodies: shifted,
            }));
        }
        Ok(Some(ModelTraffic {
            classes,
            labels,
            expected,
            drift,
            id_header: HeaderName::from_static(PREDICTION_ID_HEADER),
        }))
    }

    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    pub fn has_labels(&self) -> bool {
        !self.labels.is_empty()
    }

    /// The body, label and expected answer of request `n` of `phase`: the
    /// same body index as the template's cycling, drifted when selected.
    pub fn pick(&self, phase: usize, n: u64, body_count: usize) -> Pick {
        let idx = if body_count == 0 {
            0
        } else {
            (n % body_count as u64) as usize
        };
        let label = self.labels.get(idx).copied();
        match self.drift.get(phase).and_then(Option::as_ref) {
            Some(d) if d.select.selected(n) => Pick {
                body: d.bodies.get(idx).cloned(),
                drifted: true,
                label,
                expected: d.expected.as_ref().and_then(|e| e.get(idx).copied()),
            },
            _ => Pick {
                body: None,
                drifted: false,
                label,
                expected: self.expected.as_ref().and_then(|e| e.get(idx).copied()),
            },
        }
    }

    /// An empty truth record for one phase of one shard.
    pub fn truth(&self) -> ModelTruth {
        ModelTruth {
            classes: self.classes.clone(),
            ..ModelTruth::default()
        }
    }

    pub fn class_name(&self, i: u8) -> &str {
        self.classes.get(usize::from(i)).map_or("", String::as_str)
    }
}

/// The body with every feature shifted by `shift` standard deviations.
fn shift_body(body: &[u8], shift: f64, std: &[f64; 4]) -> Option<Bytes> {
    let x = crate::scenario::body_features(body)?;
    let mut v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let shifted: Vec<f64> = x.iter().zip(std).map(|(x, s)| x + shift * s).collect();
    v["features"] = serde_json::json!(shifted);
    serde_json::to_vec(&v).ok().map(Bytes::from)
}

/// Labels waiting to be reported by one shard: (phase, prediction id, label).
#[derive(Debug, Default)]
pub struct FeedbackBuffer {
    items: RefCell<Vec<(usize, u64, u8)>>,
}

impl FeedbackBuffer {
    /// False (and nothing kept) when the buffer is full.
    pub fn push(&self, phase: usize, id: u64, label: u8) -> bool {
        let mut items = self.items.borrow_mut();
        if items.len() >= FEEDBACK_BUFFER {
            return false;
        }
        items.push((phase, id, label));
        true
    }

    fn take(&self) -> Vec<(usize, u64, u8)> {
        std::mem::take(&mut *self.items.borrow_mut())
    }
}

/// Posts everything buffered to `url`; returns, per phase index, how many
/// labels were delivered and how many were lost.
pub async fn flush(
    http: &reqwest::Client,
    url: &reqwest::Url,
    traffic: &ModelTraffic,
    buffer: &FeedbackBuffer,
) -> Vec<(usize, u64, u64)> {
    let items = buffer.take();
    let mut tally: Vec<(usize, u64, u64)> = Vec::new();
    for chunk in items.chunks(FEEDBACK_BATCH) {
        let body: Vec<serde_json::Value> = chunk
            .iter()
            .map(|(_, id, label)| {
                serde_json::json!({ "prediction_id": id.to_string(), "label": traffic.class_name(*label) })
            })
            .collect();
        let delivered = match http.post(url.clone()).json(&body).send().await {
            Ok(r) => r.status().is_success(),
            Err(_) => false,
        };
        for (phase, _, _) in chunk {
            match tally.iter_mut().find(|t| t.0 == *phase) {
                Some(t) if delivered => t.1 += 1,
                Some(t) => t.2 += 1,
                None if delivered => tally.push((*phase, 1, 0)),
                None => tally.push((*phase, 0, 1)),
            }
        }
    }
    tally
}

/// A shard's feedback reporter: the buffer the request path fills and the
/// client that drains it.
#[derive(Debug)]
pub struct Reporter {
    pub traffic: std::sync::Arc<ModelTraffic>,
    pub buffer: Rc<FeedbackBuffer>,
    pub http: reqwest::Client,
    pub url: reqwest::Url,
}

/// The client that posts labels to the target's feedback endpoint: verifies
/// an https target exactly as the load engine does (`[target] tls`). None
/// when the TLS settings are unusable (the preflight has already refused
/// those) or the client cannot be built.
pub fn feedback_client(tls: &crate::plan::TlsPlan) -> Option<reqwest::Client> {
    let config = crate::tls::client_config(tls, &[crate::tls::ALPN_HTTP1]).ok()?;
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .use_preconfigured_tls(config)
        .build()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{DriftFault, LoadMode, ModelPlan};

    fn plan(drift: Option<DriftFault>) -> Plan {
        let mut p = Plan::single_phase("m", LoadMode::Open, 10.0, Duration::from_secs(1));
        p.request.bodies = vec![
            Bytes::from_static(br#"{"features":[5.1,3.5,1.4,0.2]}"#),
            Bytes::from_static(br#"{"features":[6.3,3.3,6.0,2.5]}"#),
        ];
        p.model = Some(ModelPlan {
            label_key: "species".into(),
            labels: vec!["setosa".into(), "virginica".into()],
            evaluate_every: Duration::from_secs(1),
            window: Duration::from_secs(5),
            label_delay: Duration::from_secs(1),
            job: "model-evaluation".into(),
            pushgateway_url: None,
        });
        p.phases[0].drift = drift;
        p
    }

    #[test]
    fn labels_and_expected_answers_follow_the_body_cycle() {
        let t = ModelTraffic::prepare(&plan(None)).unwrap().unwrap();
        let a = t.pick(0, 0, 2);
        let b = t.pick(0, 3, 2);
        assert_eq!((a.label, a.expected, a.drifted), (Some(0), Some(0), false));
        assert_eq!((b.label, b.expected), (Some(2), Some(2)));
        assert!(a.body.is_none());
    }

    #[test]
    fn drift_shifts_features_and_changes_the_expected_answer() {
        let d = DriftFault {
            shift: 3.0,
            fraction: 1.0,
        };
        let t = ModelTraffic::prepare(&plan(Some(d))).unwrap().unwrap();
        let p = t.pick(0, 0, 2);
        assert!(p.drifted);
        let x = crate::scenario::body_features(p.body.as_ref().unwrap()).unwrap();
        assert!(x[2] > 1.4 + 2.0, "petal length shifted by 3 sd: {x:?}");
        // A setosa moved 3 sd up every axis is no longer called setosa.
        assert_ne!(p.expected, Some(0));
        assert_eq!(p.label, Some(0));
    }
}
