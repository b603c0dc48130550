//! `[[expect]]` tables resolved into `Expectation`s: exactly one kind per
//! table, bounds typed by kind, phase names checked against the phases.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use super::ctx::{Ctx, join};
use super::raw::{Dur, RawAggregate, RawExpect, S, parse_duration};
use super::{AlertRef, validate_promql};
use crate::plan::*;

const KINDS: &str =
    "latency_quantile, error_ratio, alert, notified, promql, latency_mean, load, model_quality";

pub(super) fn resolve_expects(
    list: &[S<RawExpect>],
    phases: &[&str],
    cx: &mut Ctx<'_>,
) -> (Vec<Expectation>, Vec<AlertRef>) {
    let mut out = Vec::new();
    let mut alerts = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (i, e) in list.iter().enumerate() {
        let path = format!("expect[{}]", i + 1);
        let span = e.span();
        let e = e.get_ref();
        let id = match &e.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                cx.error(&n.span(), &join(&path, "name"), "name must not be empty");
                continue;
            }
            Some(n) => n.get_ref().clone(),
            None => path.clone(),
        };
        if let Some(line) = ids.get(&id) {
            let at = e.name.as_ref().map_or(span.clone(), S::span);
            cx.error_hint(
                &at,
                &join(&path, "name"),
                format!("duplicate expectation name \"{id}\""),
                &format!("names must be unique; the first \"{id}\" is on line {line}"),
            );
            continue;
        }
        ids.insert(
            id.clone(),
            cx.location(&e.name.as_ref().map_or(span.clone(), S::span))
                .line,
        );

        let kinds: Vec<(&str, Range<usize>)> = [
            ("latency_quantile", e.latency_quantile.as_ref().map(S::span)),
            ("error_ratio", e.error_ratio.as_ref().map(S::span)),
            ("alert", e.alert.as_ref().map(S::span)),
            ("notified", e.notified.as_ref().map(S::span)),
            ("promql", e.promql.as_ref().map(S::span)),
            ("latency_mean", e.latency_mean.as_ref().map(S::span)),
            ("load", e.load.as_ref().map(S::span)),
            ("model_quality", e.model_quality.as_ref().map(S::span)),
        ]
        .into_iter()
        .filter_map(|(k, s)| s.map(|s| (k, s)))
        .collect();
        let kind = match kinds.as_slice() {
            [(k, _)] => *k,
            [] => {
                cx.error_hint(
                    &span,
                    &path,
                    format!("expectation must have exactly one of {KINDS}"),
                    "add e.g. latency_quantile = 0.9, phase = \"baseline\", below = \"250ms\"",
                );
                continue;
            }
            [(a, _), (b, s), ..] => {
                cx.error_hint(
                    s,
                    &path,
                    format!("expectation must have exactly one of {KINDS}, got {a} and {b}"),
                    "split it into two [[expect]] tables",
                );
                continue;
            }
        };
        if !check_keys_apply(e, kind, &path, cx) {
            continue;
        }
        let kind = match kind {
            "latency_quantile" => latency(e, &path, &span, phases, cx),
            "error_ratio" => error_ratio(e, &path, phases, cx),
            "latency_mean" => latency_mean(e, &path, phases, cx),
            "alert" => alert(e, &path, &span, phases, cx).map(|a| {
                let written = (e.alert.as_ref(), "alert");
                alerts.extend(alert_ref(written, &path, &a.alert, out.len(), cx));
                ExpectKind::Alert(a)
            }),
            "notified" => super::notified::resolve(e, &path, cx).map(|n| {
                let written = (e.notified.as_ref(), "notified");
                alerts.extend(alert_ref(written, &path, &n.alert, out.len(), cx));
                ExpectKind::Notified(n)
            }),
            "load" => load(e, &path, phases, cx),
            "model_quality" => model_quality(e, &path, phases, cx),
            _ => promql(e, &path, &span, phases, cx),
        };
        if let Some(kind) = kind {
            out.push(Expectation {
                id,
                kind,
                allow_inconclusive: e.allow_inconclusive.unwrap_or(false),
            });
        }
    }
    (out, alerts)
}

/// Where expectation `expect_index` names alert `name` (under `written`'s
/// key), so the name can be checked against the rule files once they are read.
fn alert_ref(
    written: (Option<&S<String>>, &str),
    path: &str,
    name: &str,
    expect_index: usize,
    cx: &Ctx<'_>,
) -> Option<AlertRef> {
    let (value, key) = written;
    value.map(|v| AlertRef {
        expect_index,
        key_path: join(path, key),
        name: name.to_string(),
        location: cx.location(&v.span()),
    })
}

/// Reports keys that mean nothing for the expectation's kind; false if any.
fn check_keys_apply(e: &RawExpect, kind: &str, path: &str, cx: &mut Ctx<'_>) -> bool {
    let keys = [
        ("phase", e.phase.as_ref().map(S::span)),
        ("aggregate", e.aggregate.as_ref().map(S::span)),
        ("below", e.below.as_ref().map(S::span)),
        ("above", e.above.as_ref().map(S::span)),
        ("near", e.near.as_ref().map(S::span)),
        ("tolerance", e.tolerance.as_ref().map(S::span)),
        ("between", e.between.as_ref().map(S::span)),
        ("silent_during", e.silent_during.as_ref().map(S::span)),
        ("fires_during", e.fires_during.as_ref().map(S::span)),
        ("fire_within", e.fire_within.as_ref().map(S::span)),
        ("resolves_during", e.resolves_during.as_ref().map(S::span)),
        ("resolve_within", e.resolve_within.as_ref().map(S::span)),
        ("receiver", e.receiver.as_ref().map(S::span)),
        ("labels", e.labels.as_ref().map(S::span)),
        ("firing_within", e.firing_within.as_ref().map(S::span)),
        ("resolved_within", e.resolved_within.as_ref().map(S::span)),
    ];
    let bounds = ["phase", "below", "above", "near", "tolerance", "between"];
    let allowed: &[&str] = match kind {
        "latency_quantile" => &bounds,
        "alert" => &[
            "silent_during",
            "fires_during",
            "fire_within",
            "resolves_during",
            "resolve_within",
        ],
        "notified" => &["receiver", "labels", "firing_within", "resolved_within"],
        "promql" => &[
            "phase",
            "aggregate",
            "below",
            "above",
            "near",
            "tolerance",
            "between",
        ],
        _ => &[],
    };
    let hint = match kind {
        "model_quality" => {
            "put phase and the bound inside: model_quality = { metric = \"accuracy\", phase = \"drift\", below = 0.9 }"
                .to_string()
        }
        "error_ratio" => {
            "put phase and the bound inside: error_ratio = { phase = \"spike\", below = 0.01 }"
                .to_string()
        }
        "latency_mean" => {
            "put phase and the bound inside: latency_mean = { phase = \"baseline\", below = \"200ms\" }"
                .to_string()
        }
        "load" => "put phase and the bounds inside: load = { phase = \"spike\", min_achieved_ratio = 0.99, max_dropped = 0 }"
            .to_string(),
        _ => format!(
            "keys of {} {kind} expectation: {}",
            article(kind),
            allowed.join(", ")
        ),
    };
    let mut ok = true;
    for (key, s) in keys {
        if let Some(s) = s {
            if !allowed.contains(&key) {
                cx.error_hint(
                    &s,
                    &join(path, key),
                    format!(
                        "{key} does not apply to {} {kind} expectation",
                        article(kind)
                    ),
                    &hint,
                );
                ok = false;
            }
        }
    }
    ok
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn phase_ref(
    v: Option<&S<String>>,
    path: &str,
    at: &Range<usize>,
    phases: &[&str],
    cx: &mut Ctx<'_>,
) -> Option<String> {
    let Some(v) = v else {
        cx.error_hint(
            at,
            path,
            "missing phase",
            "name the phase this expectation looks at",
        );
        return None;
    };
    if phases.contains(&v.get_ref().as_str()) {
        Some(v.get_ref().clone())
    } else {
        cx.error_hint(
            &v.span(),
            path,
            format!("unknown phase \"{}\"", v.get_ref()),
            &format!("phases: {}", unique(phases).join(", ")),
        );
        None
    }
}

/// The bound keys of one table, whichever table they live in.
/// The bound keys of any raw expectation table that has them
/// (`below`, `above`, `near`, `tolerance`, `between`).
macro_rules! bound_keys {
    ($r:expr) => {
        BoundKeys {
            below: $r.below.as_ref(),
            above: $r.above.as_ref(),
            near: $r.near.as_ref(),
            tolerance: $r.tolerance.as_ref(),
            between: $r.between.as_ref(),
        }
    };
}

struct BoundKeys<'a> {
    below: Option<&'a S<toml::Value>>,
    above: Option<&'a S<toml::Value>>,
    near: Option<&'a S<toml::Value>>,
    tolerance: Option<&'a S<toml::Value>>,
    between: Option<&'a S<toml::Value>>,
}

impl<'a> BoundKeys<'a> {
    fn of_expect(e: &'a RawExpect) -> Self {
        bound_keys!(e)
    }
}

/// Converts one bound value; the error is the message after the key path.
type Conv<T> = fn(&toml::Value) -> Result<T, String>;

fn bound<T: PartialOrd + Copy + Default>(
    k: &BoundKeys<'_>,
    path: &str,
    at: &Range<usize>,
    conv: Conv<T>,
    example: &str,
    cx: &mut Ctx<'_>,
) -> Option<Bound<T>> {
    let present: Vec<(&str, &S<toml::Value>)> = [
        ("below", k.below),
        ("above", k.above),
        ("near", k.near),
        ("between", k.between),
    ]
    .into_iter()
    .filter_map(|(n, v)| v.map(|v| (n, v)))
    .collect();
    let one = |name: &str, v: &S<toml::Value>, cx: &mut Ctx<'_>| match conv(v.get_ref()) {
        Ok(x) => Some(x),
        Err(e) => {
            cx.error(&v.span(), &join(path, name), e);
            None
        }
    };
    if let (Some(t), None) = (k.tolerance, k.near) {
        cx.error_hint(
            &t.span(),
            &join(path, "tolerance"),
            "tolerance without near",
            "use it with near, e.g. near = 0.2, tolerance = 0.03",
        );
        return None;
    }
    match present.as_slice() {
        [] => {
            cx.error_hint(
                at,
                path,
                "missing bound: give one of below, above, near (with tolerance), between",
                example,
            );
            None
        }
        [("below", v)] => one("below", v, cx).map(Bound::Below),
        [("above", v)] => one("above", v, cx).map(Bound::Above),
        [("near", v)] => {
            let Some(t) = k.tolerance else {
                cx.error_hint(
                    &v.span(),
                    &join(path, "near"),
                    "near without tolerance",
                    "add tolerance, e.g. tolerance = 0.03",
                );
                return None;
            };
            let value = one("near", v, cx);
            let tolerance = one("tolerance", t, cx);
            if tolerance.is_some_and(|t| t < T::default()) {
                cx.error(&t.span(), &join(path, "tolerance"), "tolerance must be ≥ 0");
                return None;
            }
            Some(Bound::Near {
                value: value?,
                tolerance: tolerance?,
            })
        }
        [(_, v)] => {
            let items = match v.get_ref() {
                toml::Value::Array(items) if items.len() == 2 => items,
                _ => {
                    cx.error_hint(
                        &v.span(),
                        &join(path, "between"),
                        "between needs two values [min, max]",
                        example,
                    );
                    return None;
                }
            };
            let (min, max) = match (conv(&items[0]), conv(&items[1])) {
                (Ok(min), Ok(max)) => (min, max),
                (Err(e), _) | (_, Err(e)) => {
                    cx.error(&v.span(), &join(path, "between"), e);
                    return None;
                }
            };
            if min > max {
                cx.error(&v.span(), &join(path, "between"), "between needs min ≤ max");
                return None;
            }
            Some(Bound::Between { min, max })
        }
        [(a, _), (b, v), ..] => {
            cx.error_hint(
                &v.span(),
                &join(path, b),
                format!("give only one of below, above, near, between, got {a} and {b}"),
                "use between = [min, max] for a range",
            );
            None
        }
    }
}

fn type_name(v: &toml::Value) -> &'static str {
    v.type_str()
}

fn conv_duration(v: &toml::Value) -> Result<Duration, String> {
    match v {
        toml::Value::String(s) => parse_duration(s),
        other => Err(format!(
            "expected a duration string such as \"250ms\", got {} {other}",
            type_name(other)
        )),
    }
}

fn conv_number(v: &toml::Value) -> Result<f64, String> {
    match v {
        toml::Value::Integer(i) => Ok(*i as f64),
        toml::Value::Float(f) if f.is_finite() => Ok(*f),
        other => Err(format!(
            "expected a number, got {} {other}",
            type_name(other)
        )),
    }
}

fn conv_ratio(v: &toml::Value) -> Result<f64, String> {
    let r = conv_number(v)?;
    if (0.0..=1.0).contains(&r) {
        Ok(r)
    } else {
        Err(format!(
            "ratio must be between 0 and 1, got {r} (hint: write 1 % as 0.01)"
        ))
    }
}

fn latency(
    e: &RawExpect,
    path: &str,
    at: &Range<usize>,
    phases: &[&str],
    cx: &mut Ctx<'_>,
) -> Option<ExpectKind> {
    let q = e.latency_quantile.as_ref()?;
    let quantile = *q.get_ref();
    let qok = quantile > 0.0 && quantile < 1.0;
    if !qok {
        cx.error_hint(
            &q.span(),
            &join(path, "latency_quantile"),
            format!("quantile must be between 0 and 1 (exclusive), got {quantile}"),
            "P90 is 0.9",
        );
    }
    let phase = phase_ref(e.phase.as_ref(), &join(path, "phase"), at, phases, cx);
    let bound = bound(
        &BoundKeys::of_expect(e),
        path,
        at,
        conv_duration,
        "below = \"250ms\"",
        cx,
    );
    if !qok {
        return None;
    }
    Some(ExpectKind::LatencyQuantile {
        quantile,
        phase: phase?,
        bound: bound?,
    })
}

fn error_ratio(e: &RawExpect, path: &str, phases: &[&str], cx: &mut Ctx<'_>) -> Option<ExpectKind> {
    let t = e.error_ratio.as_ref()?;
    let path = join(path, "error_ratio");
    let r = t.get_ref();
    let phase = phase_ref(Some(&r.phase), &join(&path, "phase"), &t.span(), phases, cx);
    let keys = bound_keys!(r);
    let bound = bound(&keys, &path, &t.span(), conv_ratio, "below = 0.01", cx);
    Some(ExpectKind::ErrorRatio {
        phase: phase?,
        bound: bound?,
    })
}

/// `latency_mean = { phase, below/above/near/between }` with durations.
fn latency_mean(
    e: &RawExpect,
    path: &str,
    phases: &[&str],
    cx: &mut Ctx<'_>,
) -> Option<ExpectKind> {
    let t = e.latency_mean.as_ref()?;
    let path = join(path, "latency_mean");
    let r = t.get_ref();
    let phase = phase_ref(Some(&r.phase), &join(&path, "phase"), &t.span(), phases, cx);
    let keys = bound_keys!(r);
    let bound = bound(
        &keys,
        &path,
        &t.span(),
        conv_duration,
        "below = \"200ms\"",
        cx,
    );
    Some(ExpectKind::LatencyMean {
        phase: phase?,
        bound: bound?,
    })
}

fn load(e: &RawExpect, path: &str, phases: &[&str], cx: &mut Ctx<'_>) -> Option<ExpectKind> {
    let t = e.load.as_ref()?;
    let path = join(path, "load");
    let r = t.get_ref();
    let phase = phase_ref(Some(&r.phase), &join(&path, "phase"), &t.span(), phases, cx);
    let ratio = match &r.min_achieved_ratio {
        Some(v) if !(v.get_ref().is_finite() && (0.0..=1.0).contains(v.get_ref())) => {
            cx.error_hint(
                &v.span(),
                &join(&path, "min_achieved_ratio"),
                format!("min_achieved_ratio {} is not in [0, 1]", v.get_ref()),
                "a share of the phase's schedule, e.g. 0.99",
            );
            return None;
        }
        v => v.as_ref().map(|v| *v.get_ref()),
    };
    let dropped = r.max_dropped.as_ref().map(|v| *v.get_ref());
    if ratio.is_none() && dropped.is_none() {
        cx.error_hint(
            &t.span(),
            &path,
            "load expectation checks nothing",
            "give min_achieved_ratio, max_dropped or both, e.g. min_achieved_ratio = 0.99, max_dropped = 0",
        );
        return None;
    }
    Some(ExpectKind::Load(LoadExpectation {
        phase: phase?,
        min_achieved_ratio: ratio,
        max_dropped: dropped,
    }))
}

/// Metric names a `model_quality` expectation accepts.
pub const QUALITY_METRICS: &str = "accuracy, recall, precision";

fn model_quality(
    e: &RawExpect,
    path: &str,
    phases: &[&str],
    cx: &mut Ctx<'_>,
) -> Option<ExpectKind> {
    let t = e.model_quality.as_ref()?;
    let path = join(path, "model_quality");
    let r = t.get_ref();
    let phase = phase_ref(Some(&r.phase), &join(&path, "phase"), &t.span(), phases, cx);
    let class = r.class.as_ref().map(|c| c.get_ref().clone());
    let metric = match (r.metric.get_ref().as_str(), class) {
        ("accuracy", None) => Some(QualityMetric::Accuracy),
        ("recall", Some(class)) => Some(QualityMetric::Recall { class }),
        ("precision", Some(class)) => Some(QualityMetric::Precision { class }),
        ("accuracy", Some(_)) => {
            let at = r.class.as_ref().map_or(t.span(), S::span);
            cx.error_hint(
                &at,
                &join(&path, "class"),
                "class does not apply to accuracy",
                "use metric = \"recall\" or \"precision\" for one class",
            );
            None
        }
        ("recall" | "precision", None) => {
            cx.error_hint(
                &r.metric.span(),
                &join(&path, "class"),
                format!("metric \"{}\" needs a class", r.metric.get_ref()),
                "add class = \"setosa\" (a label value of the data)",
            );
            None
        }
        (other, _) => {
            cx.error_hint(
                &r.metric.span(),
                &join(&path, "metric"),
                format!("unknown model-quality metric \"{other}\""),
                &format!("metrics: {QUALITY_METRICS}"),
            );
            None
        }
    };
    let near_expected = matches!(
        r.near.as_ref().map(S::get_ref),
        Some(toml::Value::String(s)) if s == "expected"
    );
    let bound = if near_expected {
        match r.tolerance.as_ref() {
            Some(tv) => match conv_ratio(tv.get_ref()) {
                Ok(tolerance) => Some(QualityBound::NearExpected { tolerance }),
                Err(msg) => {
                    cx.error(&tv.span(), &join(&path, "tolerance"), msg);
                    None
                }
            },
            None => {
                cx.error_hint(
                    &t.span(),
                    &join(&path, "near"),
                    "near without tolerance",
                    "add tolerance, e.g. tolerance = 0.02",
                );
                None
            }
        }
    } else {
        let keys = bound_keys!(r);
        bound(
            &keys,
            &path,
            &t.span(),
            conv_ratio,
            "above = 0.9, or near = \"expected\", tolerance = 0.02",
            cx,
        )
        .map(QualityBound::Fixed)
    };
    Some(ExpectKind::ModelQuality {
        metric: metric?,
        phase: phase?,
        bound: bound?,
    })
}

fn alert(
    e: &RawExpect,
    path: &str,
    at: &Range<usize>,
    phases: &[&str],
    cx: &mut Ctx<'_>,
) -> Option<AlertExpectation> {
    let name = e.alert.as_ref()?;
    let n = name.get_ref();
    let mut ok = check_alert_name(name, &join(path, "alert"), cx);
    let mut silent = Vec::new();
    for (i, p) in e.silent_during.iter().flat_map(|s| s.get_ref()).enumerate() {
        match phase_ref(
            Some(p),
            &format!("{path}.silent_during[{}]", i + 1),
            at,
            phases,
            cx,
        ) {
            Some(p) => silent.push(p),
            None => ok = false,
        }
    }
    let mut during = |key: &str, v: Option<&S<String>>, cx: &mut Ctx<'_>| -> Option<String> {
        let v = v?;
        let p = phase_ref(Some(v), &join(path, key), at, phases, cx);
        ok &= p.is_some();
        if p.as_ref().is_some_and(|p| silent.contains(p)) {
            cx.error_hint(
                &v.span(),
                &join(path, key),
                format!("phase \"{}\" is also in silent_during", v.get_ref()),
                "an alert cannot be silent and active in the same phase",
            );
            ok = false;
        }
        p
    };
    let fires_during = during("fires_during", e.fires_during.as_ref(), cx);
    let resolves_during = during("resolves_during", e.resolves_during.as_ref(), cx);
    if let (Some(f), Some(r), Some(rs)) = (&fires_during, &resolves_during, &e.resolves_during) {
        let fi = phases.iter().position(|p| p == f);
        let ri = phases.iter().position(|p| p == r);
        if ri < fi {
            cx.error(
                &rs.span(),
                &join(path, "resolves_during"),
                format!("phase \"{r}\" comes before fires_during \"{f}\""),
            );
            ok = false;
        }
    }
    let mut within = |key: &str,
                      v: Option<&S<Dur>>,
                      phase_key: Option<&S<String>>,
                      phase_ok: bool,
                      cx: &mut Ctx<'_>| {
        let v = v?;
        let needs = if key == "fire_within" {
            "fires_during"
        } else {
            "resolves_during"
        };
        if phase_key.is_none() {
            cx.error_hint(
                &v.span(),
                &join(path, key),
                format!("{key} without {needs}"),
                &format!("add {needs} = \"<phase>\""),
            );
            ok = false;
            return None;
        }
        if !phase_ok {
            return None; // the phase is already reported
        }
        if v.get_ref().0.is_zero() {
            cx.error(&v.span(), &join(path, key), "duration must be > 0");
            ok = false;
        }
        Some(v.get_ref().0)
    };
    let fire_within = within(
        "fire_within",
        e.fire_within.as_ref(),
        e.fires_during.as_ref(),
        fires_during.is_some(),
        cx,
    );
    let resolve_within = within(
        "resolve_within",
        e.resolve_within.as_ref(),
        e.resolves_during.as_ref(),
        resolves_during.is_some(),
        cx,
    );
    if silent.is_empty()
        && e.silent_during.is_none()
        && e.fires_during.is_none()
        && e.resolves_during.is_none()
    {
        cx.error_hint(
            at,
            path,
            format!("alert expectation for \"{n}\" checks nothing"),
            "add silent_during, fires_during and/or resolves_during",
        );
        ok = false;
    }
    ok.then(|| AlertExpectation {
        alert: n.clone(),
        silent_during: silent,
        fires_during,
        fire_within,
        resolves_during,
        resolve_within,
    })
}

/// An alert name as Prometheus allows it (a metric name); false if reported.
pub(super) fn check_alert_name(name: &S<String>, path: &str, cx: &mut Ctx<'_>) -> bool {
    let n = name.get_ref();
    let valid = n
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if !valid {
        cx.error_hint(
            &name.span(),
            path,
            format!("invalid alert name \"{n}\""),
            "use the alert: name from the rule file",
        );
    }
    valid
}

fn promql(
    e: &RawExpect,
    path: &str,
    at: &Range<usize>,
    phases: &[&str],
    cx: &mut Ctx<'_>,
) -> Option<ExpectKind> {
    let expr = e.promql.as_ref()?;
    let valid = match validate_promql(expr.get_ref()) {
        Ok(()) => true,
        Err(msg) => {
            cx.error_hint(
                &expr.span(),
                &join(path, "promql"),
                format!("invalid PromQL: {msg}"),
                "try the expression in the Prometheus UI first",
            );
            false
        }
    };
    let phase = phase_ref(e.phase.as_ref(), &join(path, "phase"), at, phases, cx);
    let aggregate = match e.aggregate.as_ref().map(|a| *a.get_ref()) {
        None | Some(RawAggregate::Avg) => Aggregate::Avg,
        Some(RawAggregate::Last) => Aggregate::Last,
        Some(RawAggregate::Min) => Aggregate::Min,
        Some(RawAggregate::Max) => Aggregate::Max,
    };
    let bound = bound(
        &BoundKeys::of_expect(e),
        path,
        at,
        conv_number,
        "below = 0.5",
        cx,
    );
    if !valid {
        return None;
    }
    Some(ExpectKind::PromQl {
        expr: expr.get_ref().clone(),
        phase: phase?,
        aggregate,
        bound: bound?,
    })
}

/// Phase names in order without repeats (duplicates are reported elsewhere).
fn unique<'a>(phases: &[&'a str]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for p in phases {
        if !out.contains(p) {
            out.push(p);
        }
    }
    out
}
