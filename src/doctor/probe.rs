//! The live checks of `slocheck doctor`: Prometheus readiness, scrape
//! targets, the target's `/metrics`, rule health, and every dashboard panel
//! query, each turned into a `Check` with a specific hint.

use std::time::{Duration, SystemTime};

use reqwest::Url;

use super::check::{Check, Verdict};
use super::dashboard::{self, PanelQuery, Variables};
use super::exposition;
use crate::metrics::MetricsSpec;
use crate::metrics::recognize::recognize;
use crate::prom::{PromClient, PromError, TargetInfo};

/// Is Prometheus there and ready to serve queries?
pub async fn prometheus(client: &PromClient) -> Check {
    let url = client.base_url();
    match client.ready().await {
        Ok(()) => {
            let version = client
                .build_version()
                .await
                .map(|v| format!(" (version {v})"))
                .unwrap_or_default();
            Check::pass("prometheus", format!("{url} is ready{version}"))
        }
        Err(e) => Check::fail(
            "prometheus",
            format!("{url} is not usable: {}", first_line(&e.to_string())),
            "start Prometheus or point --prometheus-url at it (compose: http://localhost:9090; `slocheck demo` prints its URL)",
        ),
    }
}

/// One check per active scrape target (of `job` when given).
pub async fn targets(client: &PromClient, job: Option<&str>) -> Vec<Check> {
    let all = match client.targets().await {
        Ok(t) => t,
        Err(e) => {
            return vec![Check::fail(
                "target",
                format!("cannot list scrape targets: {}", first_line(&e.to_string())),
                "check that --prometheus-url is a Prometheus server",
            )];
        }
    };
    let mine: Vec<&TargetInfo> = all
        .iter()
        .filter(|t| job.is_none_or(|j| t.job == j))
        .collect();
    if mine.is_empty() {
        let which = job.map(|j| format!(" with job {j:?}")).unwrap_or_default();
        return vec![Check::fail(
            "target",
            format!("prometheus scrapes no target{which}"),
            "add a scrape_configs entry for the service to prometheus.yml (in compose use the service name, e.g. target:8000) and reload Prometheus",
        )];
    }
    mine.into_iter().map(target).collect()
}

fn target(t: &TargetInfo) -> Check {
    let what = format!("job {:?} at {}", t.job, t.scrape_url);
    match t.health.as_str() {
        "up" => Check::pass("target", format!("{what} is up")),
        "down" => Check::fail(
            "target",
            format!("{what} is DOWN: {}", t.last_error),
            tls_hint(&t.last_error).map_or_else(|| down_hint(&t.scrape_url), str::to_string),
        ),
        _ => Check::skip(
            "target",
            format!(
                "{what} has not been scraped yet (Prometheus applies new targets within one scrape interval)"
            ),
        ),
    }
}

/// Scrape errors of https targets, as Prometheus (Go) words them.
pub fn tls_hint(last_error: &str) -> Option<&'static str> {
    if last_error.contains("server gave HTTP response to HTTPS client") {
        Some("the target serves plain http: use scheme: http in the scrape config (or serve TLS)")
    } else if last_error.contains("certificate signed by unknown authority") {
        Some(
            "Prometheus does not trust the target's certificate: set tls_config.ca_file to the CA that signed it (or insecure_skip_verify: true)",
        )
    } else if last_error.contains("certificate has expired") {
        Some("the target's certificate has expired: renew it")
    } else if last_error.contains("x509: certificate is valid for")
        || last_error.contains("doesn't contain any IP SANs")
    {
        Some(
            "the certificate does not name the scraped host: scrape by a name it lists, or set tls_config.server_name",
        )
    } else if last_error.contains("malformed HTTP response") && last_error.contains("\\x15\\x03") {
        Some("the target serves TLS: use scheme: https in the scrape config")
    } else {
        None
    }
}

/// The seed's "Target DOWN" cases: `localhost` inside a container is the
/// container itself, and `host.docker.internal` does not resolve on Linux
/// without an extra host entry.
pub fn down_hint(scrape_url: &str) -> String {
    let host = Url::parse(scrape_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    if host == "localhost" || host.starts_with("127.") || host == "[::1]" {
        "check that the service listens on that port; if Prometheus runs in a container, localhost is the Prometheus container itself: use the compose service name (e.g. target:8000) or host.docker.internal".into()
    } else if host == "host.docker.internal" {
        "on Linux host.docker.internal only resolves with `extra_hosts: [\"host.docker.internal:host-gateway\"]`; inside compose prefer the service name (e.g. target:8000), and make the service listen on 0.0.0.0, not 127.0.0.1".into()
    } else {
        format!(
            "check that the service runs and listens on {host} on a non-loopback address (0.0.0.0 inside a container), and that the name resolves from Prometheus"
        )
    }
}

/// The target's `/metrics`: reachable, not empty, parseable, and carrying
/// the required families. The flag says whether the target answered at all.
/// Fetches and parses `/metrics` below `target` (verifying an https target
/// as `tls` says): the URL read and its samples, or the failed check and
/// whether anything answered.
pub async fn fetch_metrics(
    target: &Url,
    tls: &crate::plan::TlsPlan,
) -> Result<(Url, exposition::Exposition), (Check, bool)> {
    let url = if target.path().ends_with("/metrics") {
        target.clone()
    } else {
        match target.join("metrics") {
            Ok(u) => u,
            Err(e) => {
                return Err((
                    Check::fail(
                        "metrics",
                        format!("cannot build the metrics URL from {target}: {e}"),
                        "pass --target-url as the service's base URL, e.g. http://127.0.0.1:8000",
                    ),
                    false,
                ));
            }
        }
    };
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy();
    if url.scheme() == "https" {
        // The same verification as the load engine: --target-ca-file or
        // the system roots, or none with --target-insecure.
        match crate::tls::client_config(tls, &[crate::tls::ALPN_HTTP1]) {
            Ok(config) => builder = builder.use_preconfigured_tls(config),
            Err(e) => {
                return Err((
                    Check::fail(
                        "metrics",
                        format!("cannot verify {url}: {e}"),
                        "pass --target-ca-file with a PEM CA bundle, or --target-insecure",
                    ),
                    false,
                ));
            }
        }
    }
    let fetched = async {
        let http = builder.build()?;
        let resp = http.get(url.clone()).send().await?;
        let status = resp.status();
        Ok::<_, reqwest::Error>((status, resp.text().await?))
    }
    .await;
    let (status, body) = match fetched {
        Ok(r) => r,
        Err(e) => {
            // reqwest's own text ("client error (Connect)") hides the cause.
            let mut cause = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                cause = s.to_string();
                src = s.source();
            }
            let hint = if cause.contains("certificate") {
                "the service's certificate is not trusted: pass --target-ca-file with the CA that signed it (the one Prometheus's tls_config.ca_file names), or --target-insecure"
            } else if url.scheme() == "https"
                && (cause.contains("InvalidContentType") || cause.contains("corrupt message"))
            {
                "the service speaks plain http on that port: use an http:// --target-url"
            } else {
                "start the service (`slocheck target`) or fix --target-url"
            };
            return Err((
                Check::fail("metrics", format!("{url} is unreachable: {cause}"), hint),
                false,
            ));
        }
    };
    let fail = |detail: String, hint: &str| Err((Check::fail("metrics", detail, hint), true));
    if !status.is_success() {
        return fail(
            format!("{url} answered HTTP {status}"),
            "serve the Prometheus exposition on GET /metrics (or pass the right --target-url)",
        );
    }
    if body.trim().is_empty() {
        return fail(
            format!("{url} is empty"),
            "the service registers no metrics: install the metrics middleware and register the collectors with the registry /metrics serves (multi-worker servers need a multiprocess-aware registry)",
        );
    }
    match exposition::parse(&body) {
        Ok(exp) => Ok((url, exp)),
        Err(e) => fail(
            format!("{url} is not in the Prometheus text format: {e}"),
            "expose metrics with a Prometheus client library rather than by hand",
        ),
    }
}

/// Checks the families of the chosen convention (`preset`), or of the one
/// the page is recognized as, and says which `[metrics] preset` fits.
pub async fn metrics(
    target: &Url,
    preset: Option<&MetricsSpec>,
    tls: &crate::plan::TlsPlan,
) -> (Vec<Check>, bool) {
    let (url, exp) = match fetch_metrics(target, tls).await {
        Ok(r) => r,
        Err((check, answered)) => return (vec![check], answered),
    };
    let mut checks = vec![Check::pass(
        "metrics",
        format!("{url} serves {} sample names", exp.samples.len()),
    )];
    let seen = recognize(&exp.samples);
    let spec = match (preset, seen.first()) {
        (Some(spec), best) => {
            let fits = best.is_none_or(|b| b.name == spec.preset)
                || seen.iter().any(|p| p.name == spec.preset);
            if !fits && let Some(b) = best {
                checks.push(Check::fail(
                    "metrics",
                    format!(
                        "{url} looks like {} (preset \"{}\"), not preset \"{}\"",
                        b.about, b.name, spec.preset
                    ),
                    format!(
                        "use `[metrics] preset = \"{}\"` (doctor --preset {})",
                        b.name, b.name
                    ),
                ));
            }
            spec.clone()
        }
        (None, Some(b)) => {
            checks.push(Check::pass(
                "metrics",
                format!(
                    "this looks like {}: use `[metrics] preset = \"{}\"`",
                    b.about, b.name
                ),
            ));
            b.spec()
        }
        (None, None) => {
            checks.push(Check::fail(
                "metrics",
                format!("{url} matches no known metric convention"),
                format!(
                    "describe it in the scenario's [metrics] table (requests, status_label, server_error, latency, latency_unit) or pick a preset: {}",
                    crate::metrics::preset_names()
                ),
            ));
            MetricsSpec::default()
        }
    };
    checks.extend(exposition::check_required(&exp, &spec, url.as_str()));
    (checks, true)
}

/// Rule health as Prometheus reports it after evaluating each rule.
pub async fn rules(client: &PromClient) -> Vec<Check> {
    let rules = match client.rules().await {
        Ok(r) => r,
        Err(e) => {
            return vec![Check::fail(
                "rules",
                format!("cannot list rules: {}", first_line(&e.to_string())),
                "check that --prometheus-url is a Prometheus server",
            )];
        }
    };
    if rules.is_empty() {
        return vec![Check::fail(
            "rules",
            "prometheus has no rules loaded",
            "list the rule files under rule_files in prometheus.yml (e.g. rules/recording.yml, rules/alerts.yml) and reload Prometheus",
        )];
    }
    let mut out: Vec<Check> = rules
        .iter()
        .filter(|r| r.health == "err")
        .map(|r| {
            Check::fail(
                "rules",
                format!(
                    "rule {} (group {}) fails to evaluate: {}",
                    r.name, r.group, r.last_error
                ),
                "fix the rule's expression; `promtool check rules` cannot catch evaluation-time errors such as many-to-many matching, so unit-test it with `promtool test rules`",
            )
        })
        .collect();
    if out.is_empty() {
        let pending = rules.iter().filter(|r| r.health == "unknown").count();
        let note = if pending > 0 {
            format!(" ({pending} not evaluated yet)")
        } else {
            String::new()
        };
        out.push(Check::pass(
            "rules",
            format!("{} rules loaded, none failing{note}", rules.len()),
        ));
    }
    out
}

/// Runs every panel query; an empty one is explained metric by metric.
pub async fn panels(client: &PromClient, queries: &[PanelQuery], vars: &Variables) -> Vec<Check> {
    let mut out = Vec::with_capacity(queries.len());
    for q in queries {
        out.push(panel(client, q, vars).await);
    }
    out
}

async fn panel(client: &PromClient, q: &PanelQuery, vars: &Variables) -> Check {
    let label = q.label();
    let expr = match dashboard::substitute(&q.expr, vars) {
        Ok(e) => e,
        Err(e) => {
            return Check::fail(
                "panel",
                format!("{label}: {e}"),
                "doctor knows $__rate_interval, $__interval, $__range (= --rate-interval) and $job (= --job); see 'slocheck doctor' in README.md",
            );
        }
    };
    let now = SystemTime::now();
    let samples = match client.query(&expr, now).await {
        Ok(s) => s,
        Err(PromError::Query { message, .. }) => {
            return Check::fail(
                "panel",
                format!("{label}: prometheus rejects {expr}: {message}"),
                "fix the panel's query in the dashboard JSON",
            );
        }
        Err(e) => {
            return Check::fail(
                "panel",
                format!("{label}: cannot run {expr}: {}", first_line(&e.to_string())),
                "check that Prometheus is reachable",
            );
        }
    };
    if !samples.is_empty() {
        return Check::pass("panel", format!("{label}: {} series", samples.len()));
    }
    let selectors = match dashboard::selectors(&expr) {
        Ok(s) => s,
        Err(e) => {
            return Check::fail(
                "panel",
                format!("{label}: {expr} returns no series and does not parse here: {e}"),
                "fix the panel's query in the dashboard JSON",
            );
        }
    };
    let mut missing = Vec::new();
    for s in &selectors {
        if has_series(client, &s.promql, now).await {
            continue;
        }
        let bare = match &s.name {
            Some(n) if *n != s.promql && has_series(client, n, now).await => {
                format!(
                    "{} (metric {n} exists, but not with these labels)",
                    s.promql
                )
            }
            _ => s.promql.clone(),
        };
        missing.push(bare);
    }
    if missing.is_empty() {
        Check::fail(
            "panel",
            format!("{label}: {expr} returns no series although every metric in it has series"),
            format!(
                "rate() needs two samples inside the window: send traffic for at least {} (e.g. `slocheck load scenarios/demo.toml --loop`), or widen --rate-interval; else check the label matchers",
                vars.window()
            ),
        )
    } else {
        Check::fail(
            "panel",
            format!(
                "{label}: {expr} returns no series; no series for {}",
                missing.join(", ")
            ),
            "make the target export that metric with those labels and let Prometheus scrape it (check the target and metrics lines above); counters that only appear after the first request need traffic or pre-created label sets",
        )
    }
}

async fn has_series(client: &PromClient, selector: &str, at: SystemTime) -> bool {
    client
        .query(&format!("count({selector})"), at)
        .await
        .is_ok_and(|s| !s.is_empty())
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// No failure among the checks.
pub fn all_pass(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.verdict != Verdict::Fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_hint_names_the_docker_pitfalls() {
        assert!(
            down_hint("http://localhost:8000/metrics")
                .contains("localhost is the Prometheus container itself")
        );
        assert!(down_hint("http://127.0.0.1:8000/metrics").contains("target:8000"));
        assert!(down_hint("http://host.docker.internal:8000/metrics").contains("host-gateway"));
        assert!(down_hint("http://target:8000/metrics").contains("0.0.0.0"));
    }
}
