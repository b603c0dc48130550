//! Turns a raw scenario into a typed `Plan`: defaults, cross-key checks and
//! relative paths, with every problem located at its key.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;

use super::ScenarioSpans;
use super::ctx::{Ctx, join};
use super::expect::resolve_expects;
use super::load::{resolve_load, resolve_phase};
use super::prometheus::resolve_prometheus;
use super::raw::*;
use super::target::{DEFAULT_BODY, add_content_type, resolve_target};
use super::transport::resolve_transport;
use crate::plan::*;

pub(super) fn resolve(raw: RawScenario, cx: &mut Ctx<'_>) -> Option<(Plan, ScenarioSpans)> {
    let file = cx.file;
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let whole = 0..0;

    let name = match &raw.name {
        Some(n) if n.get_ref().trim().is_empty() => {
            cx.error(&n.span(), "name", "name must not be empty");
            String::new()
        }
        Some(n) => n.get_ref().clone(),
        None => file
            .file_stem()
            .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned()),
    };
    let seed = match &raw.seed {
        Some(s) => u64::try_from(*s.get_ref()).unwrap_or_else(|_| {
            cx.error(
                &s.span(),
                "seed",
                format!("seed must be ≥ 0, got {}", s.get_ref()),
            );
            0
        }),
        None => 1,
    };

    let is_builtin = raw
        .target
        .as_ref()
        .and_then(|t| t.get_ref().url.as_ref())
        .is_none();
    let (target, request) = resolve_target(raw.target.as_ref(), &dir, cx);
    let transport = resolve_transport(raw.target.as_ref(), &dir, cx);
    let (prometheus, rule_spans) = resolve_prometheus(raw.prometheus.as_ref(), &dir, cx);
    let load = resolve_load(raw.load.as_ref(), cx);

    let mut phases = Vec::new();
    match &raw.phase {
        Some(list) if !list.get_ref().is_empty() => {
            let mut seen: HashMap<String, usize> = HashMap::new();
            for (i, p) in list.get_ref().iter().enumerate() {
                let path = format!("phase[{}]", i + 1);
                let pname = p.get_ref().name.get_ref();
                if pname.trim().is_empty() {
                    cx.error(
                        &p.get_ref().name.span(),
                        &join(&path, "name"),
                        "phase name must not be empty",
                    );
                } else if let Some(first) = seen.get(pname) {
                    let line = cx
                        .location(&list.get_ref()[*first].get_ref().name.span())
                        .line;
                    cx.error_hint(
                        &p.get_ref().name.span(),
                        &join(&path, "name"),
                        format!("duplicate phase name \"{pname}\""),
                        &format!(
                            "phase names must be unique; the first \"{pname}\" is on line {line}"
                        ),
                    );
                } else {
                    seen.insert(pname.clone(), i);
                }
                if let Some(phase) = resolve_phase(p.get_ref(), &path, load.as_ref(), cx) {
                    phases.push(phase);
                }
            }
        }
        Some(list) => cx.error_hint(
            &list.span(),
            "phase",
            "scenario has no phases",
            "add at least one [[phase]] table",
        ),
        None => cx.error_hint(
            &whole,
            "phase",
            "scenario has no phases",
            "add at least one [[phase]] table",
        ),
    }

    let phase_names: Vec<&str> = raw
        .phase
        .as_ref()
        .map(|l| {
            l.get_ref()
                .iter()
                .map(|p| p.get_ref().name.get_ref().as_str())
                .collect()
        })
        .unwrap_or_default();
    let (expects, alert_names) =
        resolve_expects(raw.expect.as_deref().unwrap_or(&[]), &phase_names, cx);

    let request = request.map(|mut r| {
        // The built-in model needs a body; an explicit `body = ""` still wins.
        if r.bodies.is_empty()
            && is_builtin
            && !has_body_key(raw.target.as_ref())
            && r.method == http::Method::POST
        {
            r.bodies.push(Bytes::from_static(DEFAULT_BODY.as_bytes()));
            add_content_type(&mut r, "application/json");
        }
        r
    });

    let metrics = super::metrics::resolve_metrics(raw.metrics.as_ref(), cx);
    if let Some(m) = &metrics {
        super::metrics::check_answerable(m, raw.expect.as_deref().unwrap_or(&[]), cx);
    }
    let mut request = request;
    let model = raw.model.as_ref().and_then(|m| {
        let body_file = raw
            .target
            .as_ref()
            .and_then(|t| t.get_ref().request.as_ref())
            .and_then(|r| r.get_ref().body_file.as_ref())
            .map(|f| (dir.join(f.get_ref()), f.get_ref().clone()));
        let file = body_file.as_ref().map(|(p, s)| (p.as_path(), s.as_str()));
        super::model::resolve_model(m, request.as_mut(), file, cx)
    });
    super::model::check_drift_bodies(&raw, request.as_ref(), cx);
    super::model::check_quality_expects(raw.model.is_some(), &raw, cx);

    let slos = super::slo::resolve_slos(raw.slo.as_deref(), metrics.as_ref(), cx);
    let alertmanager =
        super::notified::resolve_alertmanager(raw.alertmanager.as_ref(), &expects, &dir, cx);
    if !cx.diags.is_empty() {
        return None;
    }
    let plan = Plan {
        name,
        source: file.to_path_buf(),
        seed,
        target: target?,
        request: request?,
        prometheus: prometheus?,
        load: load?.plan,
        phases,
        expects,
        allow_inconclusive: raw.allow_inconclusive.unwrap_or(false),
        alertmanager,
        metrics: metrics?,
        transport: transport?,
        model,
        slos,
    };
    let spans = ScenarioSpans {
        file: file.to_path_buf(),
        alert_names,
        rule_files: rule_spans,
    };
    Some((plan, spans))
}

fn has_body_key(t: Option<&S<RawTarget>>) -> bool {
    t.and_then(|t| t.get_ref().request.as_ref())
        .is_some_and(|r| r.get_ref().body.is_some() || r.get_ref().body_file.is_some())
}
