//! `slocheck k8s …`: argument types and the command that writes the
//! generated objects.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::prometheus_rule::{PrometheusRuleSpec, RenderError, render};
use crate::error::Error;
use crate::exit;

#[derive(Debug, Subcommand)]
pub enum K8sCommand {
    /// Print a Prometheus Operator PrometheusRule holding the groups of the given rule files.
    PrometheusRule(PrometheusRuleArgs),
}

#[derive(Debug, Args)]
pub struct PrometheusRuleArgs {
    /// Prometheus rule files (e.g. rules/recording.yml rules/alerts.yml), in order.
    #[arg(required = true, value_name = "RULE_FILE")]
    pub files: Vec<PathBuf>,
    /// metadata.name of the object.
    #[arg(long, default_value = "slocheck-rules")]
    pub name: String,
    /// metadata.namespace (default: none, so kustomize or kubectl decides).
    #[arg(long)]
    pub namespace: Option<String>,
    /// A metadata label, KEY=VALUE; repeatable. The Operator's ruleSelector must match them.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Write here instead of standard output.
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

pub fn run(cmd: K8sCommand) -> Result<u8, Error> {
    match cmd {
        K8sCommand::PrometheusRule(a) => prometheus_rule(a),
    }
}

fn prometheus_rule(a: PrometheusRuleArgs) -> Result<u8, Error> {
    let files = a
        .files
        .iter()
        .map(|p| crate::prom::rules::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut command = String::from("slocheck k8s prometheus-rule");
    for f in &a.files {
        command.push(' ');
        command.push_str(&f.to_string_lossy());
    }
    if a.name != "slocheck-rules" {
        command.push_str(&format!(" --name {}", a.name));
    }
    if let Some(ns) = &a.namespace {
        command.push_str(&format!(" --namespace {ns}"));
    }
    for (k, v) in &a.labels {
        command.push_str(&format!(" --label {k}={v}"));
    }
    let spec = PrometheusRuleSpec {
        name: a.name,
        namespace: a.namespace,
        labels: a.labels.into_iter().collect::<BTreeMap<_, _>>(),
    };
    let yaml = render(&spec, &files, &command).map_err(|e| match e {
        RenderError::Rules(e) => Error::Rules(e),
        e @ RenderError::DuplicateGroup { .. } => Error::Invalid(e.to_string()),
        e @ RenderError::Emit(_) => Error::Environment(e.to_string()),
    })?;
    match &a.output {
        Some(path) => std::fs::write(path, yaml).map_err(Error::io("write", path))?,
        None => {
            // A closed pipe (`| head`) is not an error worth a non-zero exit.
            let _ = std::io::stdout().lock().write_all(yaml.as_bytes());
        }
    }
    Ok(exit::PASS)
}
