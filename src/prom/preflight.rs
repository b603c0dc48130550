//! Pre-flight for an external Prometheus: before any traffic, prove the API
//! answers, the target is scraped and up, and the rules the scenario relies
//! on are loaded — and say everything that is missing at once.

use super::client::PromClient;
use super::error::PromError;

/// `job_or_target` matches a target's job label or its `host:port` / scrape
/// URL; `required_rules` are alert or recording-rule names.
pub async fn preflight(
    client: &PromClient,
    job_or_target: &str,
    required_rules: &[String],
) -> Result<(), PromError> {
    client.build_version().await?;
    let targets = client.targets().await?;
    let rules = client.rules().await?;
    let mut missing = Vec::new();

    let mine: Vec<_> = targets
        .iter()
        .filter(|t| t.job == job_or_target || t.scrape_url.contains(job_or_target))
        .collect();
    if mine.is_empty() {
        let known: Vec<_> = targets
            .iter()
            .map(|t| format!("{} ({})", t.job, t.scrape_url))
            .collect();
        missing.push(format!(
            "no active target matches {job_or_target:?} (targets: {})",
            if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            }
        ));
    } else if !mine.iter().any(|t| t.health == "up") {
        let detail: Vec<_> = mine
            .iter()
            .map(|t| {
                let why = if t.last_error.is_empty() {
                    "not scraped yet".into()
                } else {
                    t.last_error.clone()
                };
                format!("{} is {}: {why}", t.scrape_url, t.health)
            })
            .collect();
        missing.push(format!(
            "target {job_or_target:?} is not up ({})",
            detail.join("; ")
        ));
    }

    let absent: Vec<&str> = required_rules
        .iter()
        .filter(|name| !rules.iter().any(|r| &r.name == *name))
        .map(String::as_str)
        .collect();
    if !absent.is_empty() {
        missing.push(format!(
            "rules not loaded: {} (hint: add the rule files to the prometheus config and reload it)",
            absent.join(", ")
        ));
    }
    for r in rules
        .iter()
        .filter(|r| required_rules.contains(&r.name) && r.health == "err")
    {
        missing.push(format!(
            "rule {} fails to evaluate: {}",
            r.name, r.last_error
        ));
    }

    if missing.is_empty() {
        Ok(())
    } else {
        Err(PromError::Preflight {
            url: client.base_url().to_string(),
            missing,
        })
    }
}
