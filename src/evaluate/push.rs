//! The batch job's result as Prometheus text, pushed to a Pushgateway with
//! `PUT /metrics/job/<job>`: the whole group is replaced, so a class or an
//! accuracy that is undefined in this window disappears instead of
//! lingering from an older run.

use std::fmt::Write as _;
use std::time::Duration;

use reqwest::Url;

use super::score::Scores;
use super::source::innermost;

/// Metric names of the contract (docs/model-quality.md).
pub const ACCURACY: &str = "model_accuracy";
pub const RECALL: &str = "model_recall";
pub const PRECISION: &str = "model_precision";
pub const SAMPLES: &str = "model_evaluation_samples";
pub const WINDOW_START: &str = "model_evaluation_window_start_seconds";
pub const WINDOW_END: &str = "model_evaluation_window_end_seconds";

/// Escapes a label value for the text format.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition of one evaluation over `[start, end]` (unix seconds).
pub fn render(s: &Scores, start: f64, end: f64) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, rows: Vec<(Option<&str>, f64)>| {
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (class, v) in rows {
            match class {
                Some(c) => {
                    let _ = writeln!(out, "{name}{{class=\"{}\"}} {v}", label_value(c));
                }
                None => {
                    let _ = writeln!(out, "{name} {v}");
                }
            }
        }
    };
    gauge(
        ACCURACY,
        "Share of labelled predictions in the evaluation window that were right",
        s.accuracy.map(|a| (None, a)).into_iter().collect(),
    );
    gauge(
        RECALL,
        "Per true class, the share of its samples predicted as that class",
        s.classes
            .iter()
            .filter_map(|c| c.recall.map(|r| (Some(c.class.as_str()), r)))
            .collect(),
    );
    gauge(
        PRECISION,
        "Per predicted class, the share of those predictions that were right",
        s.classes
            .iter()
            .filter_map(|c| c.precision.map(|p| (Some(c.class.as_str()), p)))
            .collect(),
    );
    gauge(
        SAMPLES,
        "Labelled predictions in the evaluation window",
        vec![(None, s.samples as f64)],
    );
    gauge(
        WINDOW_START,
        "Start of the evaluation window (unix seconds)",
        vec![(None, start)],
    );
    gauge(
        WINDOW_END,
        "End of the evaluation window (unix seconds)",
        vec![(None, end)],
    );
    out
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(
        "pushgateway {url} is unreachable: {reason} (hint: start it, e.g. prometheus-pushgateway, or check --pushgateway)"
    )]
    Unreachable { url: String, reason: String },
    #[error("pushgateway {url} refused the push: HTTP {status}: {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
}

/// `PUT <base>/metrics/job/<job>` with `text`.
pub async fn push(base: &Url, job: &str, text: String, timeout: Duration) -> Result<(), PushError> {
    let url = format!(
        "{}/metrics/job/{}",
        base.as_str().trim_end_matches('/'),
        job
    );
    let unreachable = |reason: String| PushError::Unreachable {
        url: base.to_string(),
        reason,
    };
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| unreachable(e.to_string()))?;
    let resp = http
        .put(&url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )
        .body(text)
        .send()
        .await
        .map_err(|e| unreachable(innermost(&e)))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    Err(PushError::Refused {
        url,
        status: status.as_u16(),
        body: crate::prom::rules::one_line(&body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::score;

    #[test]
    fn undefined_values_are_left_out() {
        let s = score([("a", "a"), ("a", "b")]);
        let text = render(&s, 10.0, 20.5);
        assert!(text.contains("model_accuracy 0.5\n"), "{text}");
        assert!(text.contains("model_recall{class=\"a\"} 1\n"), "{text}");
        assert!(text.contains("model_recall{class=\"b\"} 0\n"), "{text}");
        assert!(
            text.contains("model_precision{class=\"a\"} 0.5\n"),
            "{text}"
        );
        // b was never predicted: no precision for it.
        assert!(!text.contains("model_precision{class=\"b\"}"), "{text}");
        assert!(text.contains("model_evaluation_samples 2\n"));
        assert!(text.contains("model_evaluation_window_end_seconds 20.5\n"));
        let empty = render(&score([]), 0.0, 1.0);
        assert!(!empty.contains("model_accuracy"), "{empty}");
        assert!(empty.contains("model_evaluation_samples 0\n"));
    }
}
