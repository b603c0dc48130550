//! Turns a raw scenario into a typed `Plan`: defaults, cross-key checks and
//! relative paths, with every problem located at its key.

use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use reqwest::Url;

use super::ctx::{Ctx, join};
use super::expect::resolve_expects;
use super::raw::*;
use super::{Located, ScenarioSpans};
use crate::plan::*;

/// Body sent to the built-in model when the scenario gives none.
pub const DEFAULT_BODY: &str = r#"{"features":[5.1,3.5,1.4,0.2]}"#;
pub const DEFAULT_RULE_FILES: [&str; 2] = ["../rules/recording.yml", "../rules/alerts.yml"];
/// The header the load generator uses to ask the target for a fault.
const FAULT_HEADER: &str = "x-slocheck-fault";
/// Far above what one load generator can send; catches typos like 1e9.
const MAX_RATE: f64 = 1_000_000.0;

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

fn add_content_type(r: &mut RequestTemplate, value: &str) {
    if let Ok(v) = http::HeaderValue::from_str(value) {
        r.headers.push((http::header::CONTENT_TYPE, v));
    }
}

/// Parses an http(s) base URL.
fn parse_url(v: &S<String>, path: &str, cx: &mut Ctx<'_>) -> Option<Url> {
    const HINT: &str = "write it like \"http://127.0.0.1:8000\"";
    match Url::parse(v.get_ref()) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => Some(u),
        Ok(u) => {
            cx.error_hint(
                &v.span(),
                path,
                format!("url must be http or https with a host, got \"{u}\""),
                HINT,
            );
            None
        }
        Err(e) => {
            cx.error_hint(
                &v.span(),
                path,
                format!("invalid url \"{}\": {e}", v.get_ref()),
                HINT,
            );
            None
        }
    }
}

fn positive_duration(v: &S<Dur>, path: &str, cx: &mut Ctx<'_>) -> Option<Duration> {
    let d = v.get_ref().0;
    if d.is_zero() {
        cx.error(&v.span(), path, "duration must be > 0");
        None
    } else {
        Some(d)
    }
}

fn duration_or(
    v: Option<&S<Dur>>,
    default: Duration,
    path: &str,
    cx: &mut Ctx<'_>,
) -> Option<Duration> {
    match v {
        Some(v) => positive_duration(v, path, cx),
        None => Some(default),
    }
}

fn resolve_target(
    t: Option<&S<RawTarget>>,
    dir: &Path,
    cx: &mut Ctx<'_>,
) -> (Option<TargetPlan>, Option<RequestTemplate>) {
    let Some(t) = t.map(S::get_ref) else {
        let request = RequestTemplate {
            method: http::Method::POST,
            path: "/predict".into(),
            headers: Vec::new(),
            bodies: Vec::new(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
        };
        return (Some(TargetPlan::BuiltIn), Some(request));
    };
    let target = match &t.url {
        Some(u) => parse_url(u, "target.url", cx).map(|url| TargetPlan::External { url }),
        None => Some(TargetPlan::BuiltIn),
    };
    let timeout = duration_or(
        t.timeout.as_ref(),
        Duration::from_secs(10),
        "target.timeout",
        cx,
    );
    let connect_timeout = duration_or(
        t.connect_timeout.as_ref(),
        Duration::from_secs(2),
        "target.connect_timeout",
        cx,
    );
    if let (Some(to), Some(ct), Some(span)) = (
        timeout,
        connect_timeout,
        t.connect_timeout.as_ref().map(S::span),
    ) {
        if ct > to {
            cx.error(
                &span,
                "target.connect_timeout",
                format!(
                    "connect_timeout ({}) must not exceed timeout ({})",
                    humantime::format_duration(ct),
                    humantime::format_duration(to)
                ),
            );
        }
    }
    let request = resolve_request(t.request.as_ref().map(S::get_ref), dir, cx);
    let request = match (request, timeout, connect_timeout) {
        (Some(mut r), Some(timeout), Some(connect_timeout)) => {
            r.timeout = timeout;
            r.connect_timeout = connect_timeout;
            Some(r)
        }
        _ => None,
    };
    (target, request)
}

fn resolve_request(
    r: Option<&RawRequest>,
    dir: &Path,
    cx: &mut Ctx<'_>,
) -> Option<RequestTemplate> {
    let mut ok = true;
    let mut out = RequestTemplate {
        method: http::Method::POST,
        path: "/predict".into(),
        headers: Vec::new(),
        bodies: Vec::new(),
        timeout: Duration::ZERO,
        connect_timeout: Duration::ZERO,
    };
    let Some(r) = r else { return Some(out) };
    if let Some(m) = &r.method {
        match http::Method::from_bytes(m.get_ref().to_ascii_uppercase().as_bytes()) {
            Ok(method) if !m.get_ref().is_empty() => out.method = method,
            _ => {
                cx.error_hint(
                    &m.span(),
                    "target.request.method",
                    format!("invalid HTTP method \"{}\"", m.get_ref()),
                    "use GET, POST, PUT, …",
                );
                ok = false;
            }
        }
    }
    if let Some(p) = &r.path {
        if p.get_ref().starts_with('/')
            && http::uri::PathAndQuery::try_from(p.get_ref().as_str()).is_ok()
        {
            out.path = p.get_ref().clone();
        } else {
            cx.error_hint(
                &p.span(),
                "target.request.path",
                format!("invalid request path \"{}\"", p.get_ref()),
                "a path starts with / and may carry a query, e.g. \"/predict?v=2\"",
            );
            ok = false;
        }
    }
    for (key, value) in r.headers.iter().flatten() {
        let path = format!("target.request.headers.{key}");
        let name = http::HeaderName::from_bytes(key.as_bytes());
        let val = http::HeaderValue::from_str(value.get_ref());
        match (name, val) {
            (Ok(n), _) if n.as_str() == FAULT_HEADER => {
                cx.error_hint(
                    &value.span(),
                    &path,
                    format!("header {FAULT_HEADER} is reserved for injected faults"),
                    "describe faults with a phase's faults = { … }",
                );
                ok = false;
            }
            (Ok(n), _) if n == http::header::CONTENT_TYPE && r.content_type.is_some() => {
                cx.error_hint(
                    &value.span(),
                    &path,
                    "content type is set twice",
                    "keep either content_type or headers.content-type",
                );
                ok = false;
            }
            (Ok(n), Ok(v)) => out.headers.push((n, v)),
            (Err(_), _) => {
                cx.error(
                    &value.span(),
                    &path,
                    format!("invalid header name \"{key}\""),
                );
                ok = false;
            }
            (_, Err(_)) => {
                cx.error(
                    &value.span(),
                    &path,
                    format!("invalid header value \"{}\"", value.get_ref()),
                );
                ok = false;
            }
        }
    }
    match (&r.body, &r.body_file) {
        (Some(_), Some(f)) => {
            cx.error_hint(
                &f.span(),
                "target.request.body_file",
                "body and body_file are both set",
                "keep one of them",
            );
            ok = false;
        }
        (Some(b), None) if !b.get_ref().is_empty() => {
            out.bodies.push(Bytes::from(b.get_ref().clone()))
        }
        (None, Some(f)) => match super::body::read_jsonl(&dir.join(f.get_ref()), f.get_ref()) {
            Ok(bodies) => out.bodies = bodies,
            Err(e) => {
                cx.error_hint(
                    &f.span(),
                    "target.request.body_file",
                    e,
                    "one JSON body per line; relative paths start at the scenario's folder",
                );
                ok = false;
            }
        },
        _ => {}
    }
    let has_ct_header = out
        .headers
        .iter()
        .any(|(n, _)| n == http::header::CONTENT_TYPE);
    match &r.content_type {
        Some(ct) => match http::HeaderValue::from_str(ct.get_ref()) {
            Ok(v) => out.headers.push((http::header::CONTENT_TYPE, v)),
            Err(_) => {
                cx.error(
                    &ct.span(),
                    "target.request.content_type",
                    format!("invalid content type \"{}\"", ct.get_ref()),
                );
                ok = false;
            }
        },
        None if !out.bodies.is_empty() && !has_ct_header => {
            add_content_type(&mut out, "application/json")
        }
        None => {}
    }
    ok.then_some(out)
}

fn resolve_prometheus(
    p: Option<&S<RawPrometheus>>,
    dir: &Path,
    cx: &mut Ctx<'_>,
) -> (Option<PrometheusPlan>, Vec<Located>) {
    let span = p.map_or(0..0, S::span);
    let p = p.map(S::get_ref);
    let mut ok = true;
    let url = match p.and_then(|p| p.url.as_ref()) {
        Some(u) => {
            let url = parse_url(u, "prometheus.url", cx);
            ok &= url.is_some();
            url
        }
        None => None,
    };
    let scrape = duration_or(
        p.and_then(|p| p.scrape_interval.as_ref()),
        Duration::from_secs(1),
        "prometheus.scrape_interval",
        cx,
    );
    let eval = duration_or(
        p.and_then(|p| p.evaluation_interval.as_ref()),
        Duration::from_secs(1),
        "prometheus.evaluation_interval",
        cx,
    );
    let mut rule_files = Vec::new();
    let mut rule_spans = Vec::new();
    match p.and_then(|p| p.rule_files.as_ref()) {
        Some(list) => {
            for (i, f) in list.get_ref().iter().enumerate() {
                let path = format!("prometheus.rule_files[{}]", i + 1);
                if f.get_ref().trim().is_empty() {
                    cx.error(&f.span(), &path, "rule file path must not be empty");
                    ok = false;
                    continue;
                }
                rule_files.push(absolute(&dir.join(f.get_ref())));
                rule_spans.push(Located {
                    key_path: path,
                    location: cx.location(&f.span()),
                });
            }
        }
        None => {
            for (i, f) in DEFAULT_RULE_FILES.iter().enumerate() {
                rule_files.push(absolute(&dir.join(f)));
                let key_path = format!("prometheus.rule_files[{}]", i + 1);
                rule_spans.push(Located {
                    key_path,
                    location: cx.location(&span),
                });
            }
        }
    }
    let time_scale = match p.and_then(|p| p.time_scale.as_ref()) {
        Some(t) => {
            let v = *t.get_ref();
            if !(v.is_finite() && v >= 1.0) {
                cx.error_hint(
                    &t.span(),
                    "prometheus.time_scale",
                    format!("time_scale must be ≥ 1, got {v}"),
                    "1 runs the rules as written; 20 turns 5m windows into 15s",
                );
                ok = false;
            } else if v != 1.0 && url.is_some() {
                cx.error_hint(
                    &t.span(),
                    "prometheus.time_scale",
                    "time_scale needs a managed Prometheus",
                    "remove prometheus.url, or load scaled rules into your Prometheus yourself",
                );
                ok = false;
            }
            v
        }
        None => 1.0,
    };
    let job = match p.and_then(|p| p.job.as_ref()) {
        Some(j) => {
            let valid = !j.get_ref().is_empty()
                && j.get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
            if !valid {
                cx.error_hint(
                    &j.span(),
                    "prometheus.job",
                    format!("invalid job name \"{}\"", j.get_ref()),
                    "use letters, digits, _ - . :",
                );
                ok = false;
            }
            j.get_ref().clone()
        }
        None => "slocheck-target".into(),
    };
    let settle = match (p.and_then(|p| p.settle.as_ref()), scrape, eval) {
        (Some(s), _, _) => Some(s.get_ref().0),
        (None, Some(s), Some(e)) => Some(2 * s + 2 * e),
        _ => None,
    };
    let plan = match (ok, scrape, eval, settle) {
        (true, Some(scrape_interval), Some(evaluation_interval), Some(settle)) => {
            Some(PrometheusPlan {
                url,
                scrape_interval,
                evaluation_interval,
                rule_files,
                time_scale,
                job,
                settle,
            })
        }
        _ => None,
    };
    (plan, rule_spans)
}

/// Makes `p` absolute and removes `.`/`..` lexically, so reports show
/// `/repo/rules/alerts.yml` rather than `/repo/scenarios/../rules/alerts.yml`.
fn absolute(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    out.push(c);
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `[load]` resolved, plus the defaults phases inherit.
pub(super) struct LoadDefaults {
    plan: LoadPlan,
    rate: Option<RawRate>,
}

fn resolve_load(l: Option<&S<RawLoad>>, cx: &mut Ctx<'_>) -> Option<LoadDefaults> {
    let Some(l) = l else {
        let plan = LoadPlan {
            mode: LoadMode::Open,
            max_in_flight: NonZeroUsize::new(1000)?,
        };
        return Some(LoadDefaults { plan, rate: None });
    };
    let span = l.span();
    let l = l.get_ref();
    let mut ok = true;
    let mode = l.mode.as_ref().map_or(RawMode::Open, |m| *m.get_ref());
    let rate = match &l.rate {
        Some(r) if mode == RawMode::Closed => {
            cx.error_hint(
                &r.span(),
                "load.rate",
                "rate applies to open mode only",
                "closed mode uses concurrency",
            );
            ok = false;
            None
        }
        Some(r) => {
            ok &= check_rate(r, "load.rate", cx).is_some();
            Some(*r.get_ref())
        }
        None => None,
    };
    let max_in_flight = match &l.max_in_flight {
        Some(m) => match usize::try_from(*m.get_ref())
            .ok()
            .and_then(NonZeroUsize::new)
        {
            Some(n) => Some(n),
            None => {
                cx.error(
                    &m.span(),
                    "load.max_in_flight",
                    format!("max_in_flight must be > 0, got {}", m.get_ref()),
                );
                None
            }
        },
        None => NonZeroUsize::new(1000),
    };
    let mode = match mode {
        RawMode::Open => {
            for (key, span) in [
                ("concurrency", l.concurrency.as_ref().map(S::span)),
                ("think_time", l.think_time.as_ref().map(S::span)),
            ] {
                if let Some(span) = span {
                    cx.error_hint(
                        &span,
                        &join("load", key),
                        format!("{key} applies to closed mode only"),
                        "set mode = \"closed\" or remove it",
                    );
                    ok = false;
                }
            }
            Some(LoadMode::Open)
        }
        RawMode::Closed => {
            let concurrency = match &l.concurrency {
                Some(c) => cx
                    .positive_u32(c, "load.concurrency", "concurrency")
                    .and_then(NonZeroU32::new),
                None => {
                    cx.error_hint(
                        &span,
                        "load.concurrency",
                        "closed mode needs a concurrency",
                        "add concurrency = 10 (workers) to [load]",
                    );
                    None
                }
            };
            let think_time = l
                .think_time
                .as_ref()
                .map_or(Duration::ZERO, |t| t.get_ref().0);
            concurrency.map(|concurrency| LoadMode::Closed {
                concurrency,
                think_time,
            })
        }
    };
    match (ok, mode, max_in_flight) {
        (true, Some(mode), Some(max_in_flight)) => Some(LoadDefaults {
            plan: LoadPlan {
                mode,
                max_in_flight,
            },
            rate,
        }),
        _ => None,
    }
}

fn check_rate(r: &S<RawRate>, path: &str, cx: &mut Ctx<'_>) -> Option<Rate> {
    const HINT: &str = "rates are requests per second; remove the phase or give it a positive rate";
    match *r.get_ref() {
        RawRate::Constant(v) if v > MAX_RATE => {
            cx.error(
                &r.span(),
                path,
                format!("rate must be at most {MAX_RATE}, got {v}"),
            );
            None
        }
        RawRate::Ramp { from, to } if from > MAX_RATE || to > MAX_RATE => {
            cx.error(
                &r.span(),
                path,
                format!("ramp rates must be at most {MAX_RATE}, got from = {from}, to = {to}"),
            );
            None
        }
        RawRate::Constant(v) if v.is_finite() && v > 0.0 => Some(Rate::Constant(v)),
        RawRate::Constant(v) => {
            cx.error_hint(&r.span(), path, format!("rate must be > 0, got {v}"), HINT);
            None
        }
        RawRate::Ramp { from, to }
            if from.is_finite()
                && to.is_finite()
                && from >= 0.0
                && to >= 0.0
                && from + to > 0.0 =>
        {
            Some(Rate::Ramp { from, to })
        }
        RawRate::Ramp { from, to } => {
            cx.error_hint(
                &r.span(),
                path,
                format!("ramp rates must be ≥ 0 and not both 0, got from = {from}, to = {to}"),
                HINT,
            );
            None
        }
    }
}

fn resolve_phase(
    p: &RawPhase,
    path: &str,
    load: Option<&LoadDefaults>,
    cx: &mut Ctx<'_>,
) -> Option<PhasePlan> {
    let mut ok = true;
    let duration = positive_duration(&p.duration, &join(path, "duration"), cx);
    let faults = match &p.faults {
        Some(f) => super::faults::resolve_faults(f.get_ref(), &join(path, "faults"), cx),
        None => Some(FaultSpec::default()),
    };
    // With a broken [load] the mode is unknown: skip mode-dependent checks
    // rather than report errors that follow from the first one.
    let load = load?;
    let (rate, concurrency) = match load.plan.mode {
        LoadMode::Open => {
            if let Some(c) = &p.concurrency {
                cx.error_hint(
                    &c.span(),
                    &join(path, "concurrency"),
                    "concurrency applies to closed mode only",
                    "set [load] mode = \"closed\" or use rate",
                );
                ok = false;
            }
            let rate = match (&p.rate, load.rate) {
                (Some(r), _) => check_rate(r, &join(path, "rate"), cx),
                (None, Some(RawRate::Constant(v))) => Some(Rate::Constant(v)),
                (None, Some(RawRate::Ramp { from, to })) => Some(Rate::Ramp { from, to }),
                (None, None) => {
                    cx.error_hint(
                        &p.name.span(),
                        &join(path, "rate"),
                        "open-mode phase has no rate",
                        "give the phase a rate or set a default rate in [load]",
                    );
                    None
                }
            };
            (rate, None)
        }
        LoadMode::Closed { concurrency, .. } => {
            if let Some(r) = &p.rate {
                cx.error_hint(
                    &r.span(),
                    &join(path, "rate"),
                    "rate applies to open mode only",
                    "closed mode uses concurrency",
                );
                ok = false;
            }
            let c = match &p.concurrency {
                Some(c) => cx
                    .positive_u32(c, &join(path, "concurrency"), "concurrency")
                    .and_then(NonZeroU32::new),
                None => Some(concurrency),
            };
            ok &= c.is_some();
            // Closed mode has no arrival rate; 0 marks "not used".
            (Some(Rate::Constant(0.0)), c)
        }
    };
    match (ok, duration, rate, faults) {
        (true, Some(duration), Some(rate), Some(faults)) => Some(PhasePlan {
            name: p.name.get_ref().clone(),
            duration,
            rate,
            concurrency,
            faults,
        }),
        _ => None,
    }
}
