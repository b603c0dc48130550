//! `[[slo]]` in a scenario: the same tables as an SLO file (`crate::slo`),
//! whose error and total queries default to the scenario's `[metrics]`
//! rather than the tutorial preset.

use super::ctx::Ctx;
use super::raw::S;
use crate::metrics::{MetricQueries, MetricsSpec};
use crate::slo::{RawSlo, Slo};

pub(super) fn resolve_slos(
    tables: Option<&[S<RawSlo>]>,
    metrics: Option<&MetricsSpec>,
    cx: &mut Ctx<'_>,
) -> Vec<Slo> {
    let (Some(tables), Some(metrics)) = (tables, metrics) else {
        return Vec::new();
    };
    let defaults = MetricQueries::unscoped(metrics).slo_selectors();
    let mut raw = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        let s = t.get_ref();
        if defaults.is_none() && (s.errors.is_none() || s.total.is_none()) {
            cx.error_hint(
                &t.span(),
                &format!("slo[{}]", i + 1),
                format!(
                    "[metrics] counts requests over several counters ({}), which no single selector sums",
                    metrics.request_metrics().join(", ")
                ),
                "set errors and total, e.g. errors = 'my_failures_total', total = 'my_requests_total'",
            );
            continue;
        }
        raw.push((t.span(), s.clone()));
    }
    if raw.len() < tables.len() {
        return Vec::new();
    }
    match crate::slo::resolve(raw, &defaults.unwrap_or_default()) {
        Ok(slos) => slos,
        Err(bad) => {
            cx.error(&bad.span, &bad.key_path, bad.message);
            Vec::new()
        }
    }
}
