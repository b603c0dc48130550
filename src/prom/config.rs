//! The generated `prometheus.yml` of a managed Prometheus: typed structs
//! serialized to YAML, so labels and paths are always quoted correctly.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::rules::format_duration;

#[derive(Debug, Serialize)]
pub struct PromConfig {
    pub global: Global,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rule_files: Vec<String>,
    pub scrape_configs: Vec<ScrapeConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerting: Option<Alerting>,
}

#[derive(Debug, Serialize)]
pub struct Global {
    pub scrape_interval: String,
    pub scrape_timeout: String,
    pub evaluation_interval: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScrapeConfig {
    pub job_name: String,
    pub metrics_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    pub static_configs: Vec<StaticConfig>,
}

/// Prometheus's `tls_config` of a scrape job (the subset slocheck mirrors
/// from the scenario's `[target] tls`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
}

/// How a managed Prometheus scrapes an https target: the scenario's TLS
/// settings, so it trusts (or skips) exactly what the load engine does.
pub type ScrapeTls = crate::plan::TlsPlan;

impl From<&ScrapeTls> for TlsConfig {
    fn from(t: &ScrapeTls) -> TlsConfig {
        let path = |p: &Option<PathBuf>| p.as_deref().map(|p| absolute(p).display().to_string());
        TlsConfig {
            ca_file: path(&t.ca_file),
            cert_file: path(&t.client_cert),
            key_file: path(&t.client_key),
            server_name: t.server_name.clone(),
            insecure_skip_verify: t.insecure,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StaticConfig {
    pub targets: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Alerting {
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

#[derive(Debug, Serialize)]
pub struct AlertmanagerConfig {
    pub static_configs: Vec<StaticConfig>,
}

impl ScrapeConfig {
    /// A further scrape job beside the target's (e.g. the load generator's
    /// own metrics).
    pub fn new(job: &str, targets: &[String], metrics_path: &str) -> ScrapeConfig {
        ScrapeConfig {
            job_name: job.into(),
            metrics_path: metrics_path.into(),
            scheme: None,
            tls_config: None,
            static_configs: vec![StaticConfig {
                targets: targets.to_vec(),
            }],
        }
    }
}

impl PromConfig {
    /// Prometheus refuses a scrape timeout longer than the interval, and its
    /// default (10s) is longer than the short intervals slocheck uses.
    pub fn new(
        scrape_interval: Duration,
        evaluation_interval: Duration,
        job: &str,
        targets: &[String],
        metrics_path: &str,
        rule_files: &[PathBuf],
        alertmanagers: &[String],
    ) -> PromConfig {
        let timeout = scrape_interval.min(Duration::from_secs(10));
        PromConfig {
            global: Global {
                scrape_interval: format_duration(scrape_interval),
                scrape_timeout: format_duration(timeout),
                evaluation_interval: format_duration(evaluation_interval),
            },
            rule_files: rule_files
                .iter()
                .map(|p| absolute(p).display().to_string())
                .collect(),
            scrape_configs: vec![ScrapeConfig {
                job_name: job.into(),
                metrics_path: metrics_path.into(),
                scheme: None,
                tls_config: None,
                static_configs: vec![StaticConfig {
                    targets: targets.to_vec(),
                }],
            }],
            alerting: (!alertmanagers.is_empty()).then(|| Alerting {
                alertmanagers: vec![AlertmanagerConfig {
                    static_configs: vec![StaticConfig {
                        targets: alertmanagers.to_vec(),
                    }],
                }],
            }),
        }
    }

    /// Scrapes over https with `tls` (None: plain http, the default).
    pub fn with_scrape_tls(mut self, tls: Option<ScrapeTls>) -> PromConfig {
        if let Some(tls) = tls {
            for sc in &mut self.scrape_configs {
                sc.scheme = Some("https".into());
                sc.tls_config = Some(TlsConfig::from(&tls));
            }
        }
        self
    }

    pub fn to_yaml(&self) -> Result<String, String> {
        serde_saphyr::to_string(self).map_err(|e| e.to_string())
    }
}

/// Prometheus resolves relative rule paths against its config file, which
/// lives in the run directory; absolute paths keep the user's meaning.
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_config_promtool_accepts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/alerts.yml");
        let cfg = PromConfig::new(
            Duration::from_millis(500),
            Duration::from_secs(1),
            "slocheck-target",
            &["127.0.0.1:8000".into()],
            "/metrics",
            &[rules],
            &["127.0.0.1:9093".into()],
        );
        let yaml = cfg.to_yaml().expect("yaml");
        assert!(yaml.contains("scrape_interval: 500ms"), "{yaml}");
        assert!(yaml.contains("scrape_timeout: 500ms"), "{yaml}");
        let path = dir.path().join("prometheus.yml");
        std::fs::write(&path, &yaml).expect("write");
        if let Ok(promtool) = which::which("promtool") {
            let out = std::process::Command::new(promtool)
                .args(["check", "config"])
                .arg(&path)
                .output()
                .expect("promtool runs");
            assert!(
                out.status.success(),
                "{yaml}\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn https_scrape_mirrors_the_scenario_tls() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.pem");
        let tls = ScrapeTls {
            ca_file: Some(ca.clone()),
            server_name: Some("localhost".into()),
            ..ScrapeTls::default()
        };
        let cfg = PromConfig::new(
            Duration::from_secs(1),
            Duration::from_secs(1),
            "j",
            &["127.0.0.1:8443".into()],
            "/metrics",
            &[],
            &[],
        )
        .with_scrape_tls(Some(tls));
        let yaml = cfg.to_yaml().expect("yaml");
        assert!(yaml.contains("scheme: https"), "{yaml}");
        assert!(
            yaml.contains(&format!("ca_file: {}", ca.display())),
            "{yaml}"
        );
        assert!(yaml.contains("server_name: localhost"), "{yaml}");
        assert!(!yaml.contains("insecure_skip_verify"), "{yaml}");
        let insecure = PromConfig::new(
            Duration::from_secs(1),
            Duration::from_secs(1),
            "j",
            &["127.0.0.1:8443".into()],
            "/metrics",
            &[],
            &[],
        )
        .with_scrape_tls(Some(ScrapeTls {
            insecure: true,
            ..ScrapeTls::default()
        }));
        let yaml = insecure.to_yaml().expect("yaml");
        assert!(yaml.contains("insecure_skip_verify: true"), "{yaml}");
        // promtool accepts it (it checks that ca_file exists).
        std::fs::write(&ca, "").expect("ca");
        let path = dir.path().join("prometheus.yml");
        std::fs::write(&path, &yaml).expect("write");
        if let Ok(promtool) = which::which("promtool") {
            let out = std::process::Command::new(promtool)
                .args(["check", "config"])
                .arg(&path)
                .output()
                .expect("promtool runs");
            assert!(
                out.status.success(),
                "{yaml}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn no_alertmanagers_means_no_alerting_section() {
        let cfg = PromConfig::new(
            Duration::from_secs(15),
            Duration::from_secs(15),
            "j",
            &[],
            "/metrics",
            &[],
            &[],
        );
        let yaml = cfg.to_yaml().expect("yaml");
        assert!(!yaml.contains("alerting"), "{yaml}");
        assert!(yaml.contains("scrape_timeout: 10s"), "{yaml}");
    }
}
