//! `[model]` and `faults.drift` resolved: true labels split out of the
//! request bodies (they are never sent), the evaluation batch job's schedule,
//! and the checks that drift can shift the bodies at all.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;

use super::ctx::{Ctx, duration_or, join, parse_url};
use super::raw::{RawDrift, RawModel, RawScenario, S};
use crate::plan::{DEFAULT_EVALUATION_JOB, DriftFault, ModelPlan, RequestTemplate};

/// Largest drift accepted, in standard deviations: beyond it every input is
/// far outside anything the model has seen and the fault says nothing more.
pub const MAX_DRIFT_SHIFT: f64 = 10.0;

/// The key under which a body carries the features the model takes.
pub const FEATURES_KEY: &str = "features";

pub(super) fn resolve_drift(d: &S<RawDrift>, path: &str, cx: &mut Ctx<'_>) -> Option<DriftFault> {
    let r = d.get_ref();
    let shift = *r.shift.get_ref();
    let shift_ok = shift.is_finite() && shift != 0.0 && shift.abs() <= MAX_DRIFT_SHIFT;
    if !shift_ok {
        cx.error_hint(
            &r.shift.span(),
            &join(path, "shift"),
            format!("shift must be non-zero, at most {MAX_DRIFT_SHIFT} in magnitude, got {shift}"),
            "shift is in standard deviations of each feature, e.g. shift = 1.5",
        );
    }
    let fraction = match &r.fraction {
        Some(f) => cx.ratio(f, &join(path, "fraction")),
        None => Some(1.0),
    };
    match (shift_ok, fraction) {
        (true, Some(fraction)) => Some(DriftFault { shift, fraction }),
        _ => None,
    }
}

/// The four features of a body `{"features": [a, b, c, d], …}`, if it is one.
pub fn body_features(body: &[u8]) -> Option<[f64; 4]> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let list = v.get(FEATURES_KEY)?.as_array()?;
    let nums: Vec<f64> = list.iter().filter_map(serde_json::Value::as_f64).collect();
    nums.try_into().ok()
}

/// `[model]`: strips `label_key` from every body (recording it as the true
/// label) and reads the batch job's schedule.
pub(super) fn resolve_model(
    m: &S<RawModel>,
    request: Option<&mut RequestTemplate>,
    body_file: Option<(&Path, &str)>,
    cx: &mut Ctx<'_>,
) -> Option<ModelPlan> {
    let r = m.get_ref();
    let key = r.label_key.get_ref();
    let mut ok = true;
    if key.is_empty() || key == FEATURES_KEY {
        cx.error_hint(
            &r.label_key.span(),
            "model.label_key",
            format!("label_key must name the body key that holds the true label, got \"{key}\""),
            "e.g. label_key = \"species\" for lines like {\"features\": [...], \"species\": \"setosa\"}",
        );
        ok = false;
    }
    let evaluate_every = duration_or(
        r.evaluate_every.as_ref(),
        Duration::from_secs(60),
        "model.evaluate_every",
        cx,
    );
    let window = duration_or(
        r.window.as_ref(),
        Duration::from_secs(300),
        "model.window",
        cx,
    );
    let label_delay = duration_or(
        r.label_delay.as_ref(),
        Duration::from_secs(1),
        "model.label_delay",
        cx,
    );
    for (v, name) in [(&r.evaluate_every, "evaluate_every"), (&r.window, "window")] {
        if let Some(v) = v
            && v.get_ref().0 < Duration::from_millis(100)
        {
            cx.error(&v.span(), &join("model", name), "must be at least 100ms");
            ok = false;
        }
    }
    let job = match &r.job {
        Some(j) if !valid_label_value(j.get_ref()) => {
            cx.error_hint(
                &j.span(),
                "model.job",
                format!("invalid Pushgateway job name \"{}\"", j.get_ref()),
                "use letters, digits, '-', '_' and '.', e.g. \"model-evaluation\"",
            );
            ok = false;
            String::new()
        }
        Some(j) => j.get_ref().clone(),
        None => DEFAULT_EVALUATION_JOB.to_string(),
    };
    let pushgateway_url = match &r.pushgateway_url {
        Some(u) => {
            let url = parse_url(u, "model.pushgateway_url", cx);
            ok &= url.is_some();
            url
        }
        None => None,
    };
    let labels = match (request, body_file) {
        (Some(req), Some((path, shown))) => match split_labels(&mut req.bodies, key, path, shown) {
            Ok(labels) => labels,
            Err(msg) => {
                cx.error_hint(
                    &r.label_key.span(),
                    "model.label_key",
                    msg,
                    "every line of body_file needs the label key, e.g. \"species\": \"setosa\"",
                );
                return None;
            }
        },
        (Some(_), None) => {
            cx.error_hint(
                &m.span(),
                "model",
                "[model] needs labelled bodies from target.request.body_file",
                "set body_file = \"data/iris-labelled.jsonl\" (one JSON body with its label per line)",
            );
            return None;
        }
        (None, _) => return None,
    };
    if !ok {
        return None;
    }
    Some(ModelPlan {
        label_key: key.clone(),
        labels,
        evaluate_every: evaluate_every?,
        window: window?,
        label_delay: label_delay?,
        job,
        pushgateway_url,
    })
}

/// Pushgateway grouping values travel in the URL path: keep them plain.
fn valid_label_value(v: &str) -> bool {
    !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Removes `key` from every body and returns its values, in body order. The
/// error names the file line of the first body without a string label.
fn split_labels(
    bodies: &mut [Bytes],
    key: &str,
    path: &Path,
    shown: &str,
) -> Result<Vec<String>, String> {
    let mut labels = Vec::with_capacity(bodies.len());
    for (i, body) in bodies.iter_mut().enumerate() {
        let mut v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let label = v
            .as_object_mut()
            .and_then(|o| o.remove(key))
            .and_then(|l| match l {
                serde_json::Value::String(s) => Some(s),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
        let Some(label) = label else {
            let line = file_line_of_body(path, i).map_or(String::new(), |l| format!(" line {l}"));
            return Err(format!(
                "body file \"{shown}\"{line} has no string or number \"{key}\""
            ));
        };
        *body = Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
        labels.push(label);
    }
    Ok(labels)
}

/// The 1-based line of the `index`-th non-blank line (bodies skip blanks).
fn file_line_of_body(path: &Path, index: usize) -> Option<usize> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .nth(index)
        .map(|(n, _)| n + 1)
}

/// Every phase with `faults.drift` needs bodies whose features it can shift.
pub(super) fn check_drift_bodies(
    raw: &RawScenario,
    request: Option<&RequestTemplate>,
    cx: &mut Ctx<'_>,
) {
    let Some(request) = request else { return };
    let shiftable =
        !request.bodies.is_empty() && request.bodies.iter().all(|b| body_features(b).is_some());
    if shiftable {
        return;
    }
    for (i, p) in raw.phase.iter().flat_map(|l| l.get_ref()).enumerate() {
        let drift = p
            .get_ref()
            .faults
            .as_ref()
            .and_then(|f| f.get_ref().drift.as_ref());
        if let Some(d) = drift {
            cx.error_hint(
                &d.span(),
                &format!("phase[{}].faults.drift", i + 1),
                "drift needs request bodies with four numeric features, {\"features\": [a, b, c, d]}",
                "send the Iris bodies (body_file = \"data/iris-labelled.jsonl\") or remove drift",
            );
        }
    }
}

/// A `model_quality` expectation needs `[model]`: nothing would be pushed.
pub(super) fn check_quality_expects(has_model: bool, raw: &RawScenario, cx: &mut Ctx<'_>) {
    if has_model {
        return;
    }
    for (i, e) in raw.expect.iter().flatten().enumerate() {
        if let Some(q) = &e.get_ref().model_quality {
            cx.error_hint(
                &q.span(),
                &format!("expect[{}].model_quality", i + 1),
                "model_quality needs a [model] section (labels and the evaluation batch job)",
                "add [model] label_key = \"species\" with a labelled body_file",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_read_from_iris_bodies_only() {
        assert_eq!(
            body_features(br#"{"features":[5.1,3.5,1.4,0.2]}"#),
            Some([5.1, 3.5, 1.4, 0.2])
        );
        assert_eq!(body_features(br#"{"features":[5.1,3.5,1.4]}"#), None);
        assert_eq!(body_features(br#"{"text":"hello"}"#), None);
    }

    #[test]
    fn labels_are_split_out_of_the_bodies() {
        let mut bodies = vec![
            Bytes::from_static(br#"{"features":[1,2,3,4],"species":"setosa"}"#),
            Bytes::from_static(br#"{"species":"virginica","features":[5,6,7,8]}"#),
        ];
        let labels = split_labels(&mut bodies, "species", Path::new("/nonexistent"), "x").unwrap();
        assert_eq!(labels, ["setosa", "virginica"]);
        assert_eq!(&bodies[0][..], br#"{"features":[1,2,3,4]}"#);
        let mut missing = vec![Bytes::from_static(br#"{"features":[1,2,3,4]}"#)];
        let e = split_labels(
            &mut missing,
            "species",
            Path::new("/nonexistent"),
            "x.jsonl",
        )
        .unwrap_err();
        assert_eq!(
            e,
            "body file \"x.jsonl\" has no string or number \"species\""
        );
    }
}
