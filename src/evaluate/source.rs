//! Where the batch job reads predictions and labels: the built-in target's
//! `GET /predictions` (already joined), or a user's JSON Lines prediction log
//! (file or URL) with configurable field names, optionally joined with a
//! separate label log by prediction id.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;
use serde_json::Value;

/// Field names of a prediction log line; defaults are the target's format.
#[derive(Debug, Clone)]
pub struct Fields {
    pub id: String,
    pub time: String,
    pub predicted: String,
    pub label: String,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            id: "prediction_id".into(),
            time: "time".into(),
            predicted: "predicted".into(),
            label: "label".into(),
        }
    }
}

/// A log to read: an `http(s)://` URL or a file path.
#[derive(Debug, Clone)]
pub enum Location {
    Url(Url),
    File(PathBuf),
}

impl Location {
    pub fn parse(s: &str) -> Location {
        match Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Location::Url(u),
            _ => Location::File(PathBuf::from(s)),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Url(u) => write!(f, "{u}"),
            Location::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {what} {location}: {reason}")]
    Unreachable {
        what: &'static str,
        location: String,
        reason: String,
    },
    #[error("{what} {location} line {line}: {reason} (hint: {hint})")]
    Format {
        what: &'static str,
        location: String,
        line: usize,
        reason: String,
        hint: String,
    },
}

/// One prediction with its true label, if known.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    pub time: f64,
    pub predicted: String,
    pub label: Option<String>,
}

/// Fetches the text of `loc`. For a URL, `since`/`until` are passed as query
/// parameters so the target returns only the window.
pub async fn fetch(
    loc: &Location,
    what: &'static str,
    window: Option<(f64, f64)>,
    timeout: Duration,
) -> Result<String, SourceError> {
    let unreachable = |reason: String| SourceError::Unreachable {
        what,
        location: loc.to_string(),
        reason,
    };
    match loc {
        Location::File(p) => std::fs::read_to_string(p).map_err(|e| unreachable(e.to_string())),
        Location::Url(u) => {
            let mut url = u.clone();
            if let Some((since, until)) = window {
                url.query_pairs_mut()
                    .append_pair("since", &format!("{since:.3}"))
                    .append_pair("until", &format!("{until:.3}"));
            }
            let http = reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .map_err(|e| unreachable(e.to_string()))?;
            let resp = http
                .get(url)
                .send()
                .await
                .map_err(|e| unreachable(innermost(&e)))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(unreachable(format!("HTTP {status}")));
            }
            resp.text().await.map_err(|e| unreachable(innermost(&e)))
        }
    }
}

/// reqwest's own text hides the cause ("error sending request").
pub fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

fn field_text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A time as unix seconds: a number, or an RFC 3339 string.
fn field_time(v: &Value, key: &str) -> Option<f64> {
    match v.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => humantime::parse_rfc3339_weak(s)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64()),
        _ => None,
    }
}

/// Parses a prediction log; `labels` (id → label) fills in labels missing
/// from the log itself. Lines outside `[since, until)` are skipped.
pub fn parse_predictions(
    text: &str,
    loc: &Location,
    fields: &Fields,
    labels: &HashMap<String, String>,
    window: (f64, f64),
) -> Result<Vec<Joined>, SourceError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String, hint: String| SourceError::Format {
            what: "prediction log",
            location: loc.to_string(),
            line: i + 1,
            reason,
            hint,
        };
        let v: Value = serde_json::from_str(line)
            .map_err(|e| bad(format!("not JSON ({e})"), "one JSON object per line".into()))?;
        let time = field_time(&v, &fields.time).ok_or_else(|| {
            bad(
                format!("no time in \"{}\"", fields.time),
                "unix seconds or RFC 3339; name the field with --time-field".into(),
            )
        })?;
        if !(window.0..window.1).contains(&time) {
            continue;
        }
        let predicted = field_text(&v, &fields.predicted).ok_or_else(|| {
            bad(
                format!("no predicted class in \"{}\"", fields.predicted),
                "name the field with --predicted-field".into(),
            )
        })?;
        let label = field_text(&v, &fields.label)
            .or_else(|| field_text(&v, &fields.id).and_then(|id| labels.get(&id).cloned()));
        out.push(Joined {
            time,
            predicted,
            label,
        });
    }
    Ok(out)
}

/// Parses a label log: JSON Lines of `{id field, label field}`.
pub fn parse_labels(
    text: &str,
    loc: &Location,
    fields: &Fields,
) -> Result<HashMap<String, String>, SourceError> {
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| SourceError::Format {
            what: "label log",
            location: loc.to_string(),
            line: i + 1,
            reason: format!("not JSON ({e})"),
            hint: "one JSON object per line".into(),
        })?;
        match (field_text(&v, &fields.id), field_text(&v, &fields.label)) {
            (Some(id), Some(label)) => {
                out.insert(id, label);
            }
            _ => {
                return Err(SourceError::Format {
                    what: "label log",
                    location: loc.to_string(),
                    line: i + 1,
                    reason: format!("needs \"{}\" and \"{}\"", fields.id, fields.label),
                    hint: "name them with --id-field and --label-field".into(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_format_and_custom_fields_and_a_separate_label_log() {
        let loc = Location::parse("preds.jsonl");
        let text = concat!(
            r#"{"prediction_id":"1","time":100.5,"predicted":"setosa","label":"setosa"}"#,
            "\n",
            r#"{"prediction_id":"2","time":101,"predicted":"setosa","label":null}"#,
            "\n",
            r#"{"prediction_id":"3","time":300,"predicted":"virginica","label":"setosa"}"#,
        );
        let p = parse_predictions(
            text,
            &loc,
            &Fields::default(),
            &HashMap::new(),
            (100.0, 200.0),
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].label.as_deref(), Some("setosa"));
        assert_eq!(p[1].label, None);

        let fields = Fields {
            id: "rid".into(),
            time: "ts".into(),
            predicted: "y_hat".into(),
            label: "y".into(),
        };
        let preds = r#"{"rid":7,"ts":"1970-01-01T00:02:00Z","y_hat":"cat"}"#;
        let labels = parse_labels(r#"{"rid":"7","y":"dog"}"#, &loc, &fields).unwrap();
        let p = parse_predictions(preds, &loc, &fields, &labels, (0.0, 1e9)).unwrap();
        assert_eq!(p[0].time, 120.0);
        assert_eq!(p[0].label.as_deref(), Some("dog"));
    }

    #[test]
    fn bad_lines_name_the_line_and_the_field() {
        let loc = Location::parse("p.jsonl");
        let e = parse_predictions(
            "{\"time\":1,\"predicted\":\"a\"}\n{\"predicted\":\"a\"}",
            &loc,
            &Fields::default(),
            &HashMap::new(),
            (0.0, 10.0),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("prediction log p.jsonl line 2: no time in \"time\""),
            "{e}"
        );
        assert!(matches!(
            Location::parse("http://127.0.0.1:1/predictions"),
            Location::Url(_)
        ));
    }
}
