//! `slocheck evaluate`: the model-quality batch job, one run per call as a
//! CronJob would start it. It reads the predictions of a time window with
//! their late labels, scores them, and pushes accuracy, per-class recall and
//! precision and the sample count to a Pushgateway.

pub mod cron;
pub mod push;
pub mod score;
pub mod source;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use reqwest::Url;

use crate::error::Error;
use crate::exit;
pub use score::{ClassScore, Scores, score};
use source::{Fields, Location};

/// Arguments of `slocheck evaluate`.
#[derive(Debug, Clone, Args)]
pub struct EvaluateArgs {
    /// Prediction log: the target's `http://HOST:PORT/predictions`, another
    /// URL serving JSON Lines, or a JSON Lines file.
    #[arg(long, value_name = "URL|FILE")]
    pub source: String,
    /// Label log (JSON Lines of id and label) joined to the predictions by id,
    /// for logs that do not carry the label themselves.
    #[arg(long, value_name = "URL|FILE")]
    pub labels: Option<String>,
    /// Pushgateway base URL.
    #[arg(long, value_name = "URL")]
    pub pushgateway: Url,
    /// The `job` grouping label of the pushed metrics.
    #[arg(long, default_value = crate::plan::DEFAULT_EVALUATION_JOB)]
    pub job: String,
    /// Evaluate predictions of this long a window…
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub window: Duration,
    /// …ending this long ago, so labels have had time to arrive.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration)]
    pub label_delay: Duration,
    /// Timeout of each HTTP request (read and push).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Field of the prediction id in the logs.
    #[arg(long, default_value = "prediction_id")]
    pub id_field: String,
    /// Field of the prediction time (unix seconds or RFC 3339).
    #[arg(long, default_value = "time")]
    pub time_field: String,
    /// Field of the predicted class.
    #[arg(long, default_value = "predicted")]
    pub predicted_field: String,
    /// Field of the true label.
    #[arg(long, default_value = "label")]
    pub label_field: String,
    /// Print the pushed metrics.
    #[arg(long, short)]
    pub verbose: bool,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One evaluation: read, join, score, push. Exit 0 on a push (also of zero
/// samples), 3 when a log or the Pushgateway cannot be reached, 2 on a
/// malformed log or arguments.
pub async fn run(a: &EvaluateArgs) -> Result<u8, Error> {
    if a.window.is_zero() {
        return Err(Error::Invalid(
            "--window must be > 0 (hint: e.g. --window 5m)".into(),
        ));
    }
    if a.job.is_empty() || a.job.contains('/') {
        return Err(Error::Invalid(format!(
            "--job \"{}\" is not a usable Pushgateway job name (hint: e.g. --job model-evaluation)",
            a.job
        )));
    }
    let end = unix_now() - a.label_delay.as_secs_f64();
    let start = end - a.window.as_secs_f64();
    let fields = Fields {
        id: a.id_field.clone(),
        time: a.time_field.clone(),
        predicted: a.predicted_field.clone(),
        label: a.label_field.clone(),
    };
    let soft = |e: source::SourceError| match e {
        source::SourceError::Unreachable { .. } => Error::Environment(e.to_string()),
        source::SourceError::Format { .. } => Error::Invalid(e.to_string()),
    };
    let labels = match &a.labels {
        Some(l) => {
            let loc = Location::parse(l);
            let text = source::fetch(&loc, "label log", None, a.timeout)
                .await
                .map_err(soft)?;
            source::parse_labels(&text, &loc, &fields).map_err(soft)?
        }
        None => HashMap::new(),
    };
    let loc = Location::parse(&a.source);
    let text = source::fetch(&loc, "prediction log", Some((start, end)), a.timeout)
        .await
        .map_err(soft)?;
    let joined =
        source::parse_predictions(&text, &loc, &fields, &labels, (start, end)).map_err(soft)?;
    let scores = score(
        joined
            .iter()
            .filter_map(|j| j.label.as_deref().map(|l| (j.predicted.as_str(), l))),
    );
    let text = push::render(&scores, start, end);
    if a.verbose {
        print!("{text}");
    }
    push::push(&a.pushgateway, &a.job, text, a.timeout)
        .await
        .map_err(|e| Error::Environment(e.to_string()))?;
    eprintln!(
        "slocheck evaluate: {} of {} predictions labelled, accuracy {}; pushed to {} (job {})",
        scores.samples,
        joined.len(),
        scores
            .accuracy
            .map_or_else(|| "n/a".into(), |v| format!("{v:.4}")),
        a.pushgateway,
        a.job
    );
    Ok(exit::PASS)
}
