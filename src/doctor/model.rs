//! The model-quality metric families doctor knows: which come from the
//! evaluation batch job through a Pushgateway and which from the service
//! itself, so an empty model-quality panel gets the hint that fixes it.

/// Pushed by the evaluation batch job (`slocheck evaluate` or the user's own).
pub const PUSHED: [&str; 7] = [
    "model_accuracy",
    "model_recall",
    "model_precision",
    "model_evaluation_samples",
    "model_evaluation_window_start_seconds",
    "model_evaluation_window_end_seconds",
    "push_time_seconds",
];

/// Exported by the service next to its request metrics.
pub const EXPORTED: [&str; 3] = [
    "model_input_feature_value",
    "model_feature_reference_mean",
    "model_feature_reference_stddev",
];

fn base(selector: &str) -> &str {
    let name = selector.split(['{', '[', ' ']).next().unwrap_or(selector);
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

/// The hint for a panel whose missing selectors are model-quality families.
pub fn hint(missing: &[String]) -> Option<&'static str> {
    if missing.iter().any(|m| PUSHED.contains(&base(m))) {
        Some(
            "these are pushed by the evaluation batch job: run `slocheck evaluate --source <service>/predictions --pushgateway <url>` on a schedule (or push your own model_accuracy), and scrape the Pushgateway with honor_labels: true so job=\"model-evaluation\" survives; see docs/model-quality.md",
        )
    } else if missing.iter().any(|m| EXPORTED.contains(&base(m))) {
        Some(
            "the service must export the input-drift histograms model_input_feature_value{feature} and its training reference model_feature_reference_mean/_stddev{feature} (the built-in target does); see docs/model-quality.md",
        )
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_and_exported_families_get_their_hints() {
        let pushed = hint(&["model_accuracy{job=\"model-evaluation\"}".into()]).unwrap();
        assert!(pushed.contains("honor_labels"), "{pushed}");
        let exported = hint(&["model_input_feature_value_sum{job=~\".+\"}".into()]).unwrap();
        assert!(
            exported.contains("model_feature_reference_mean"),
            "{exported}"
        );
        assert_eq!(hint(&["http_requests_total".into()]), None);
    }
}
