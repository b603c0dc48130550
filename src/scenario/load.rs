//! `[load]` and each `[[phase]]` resolved: mode, rates and ramps,
//! concurrency, durations and faults.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use super::ctx::{Ctx, join, positive_duration};
use super::raw::*;
use crate::plan::*;

/// Far above what one load generator can send; catches typos like 1e9.
const MAX_RATE: f64 = 1_000_000.0;

/// `[load]` resolved, plus the defaults phases inherit.
pub(super) struct LoadDefaults {
    pub plan: LoadPlan,
    rate: Option<RawRate>,
}

pub(super) fn resolve_load(l: Option<&S<RawLoad>>, cx: &mut Ctx<'_>) -> Option<LoadDefaults> {
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
    let max_in_flight = resolve_max_in_flight(l.max_in_flight.as_ref(), cx);
    let mode = match mode {
        RawMode::Open => {
            ok &= no_closed_keys(l, cx);
            Some(LoadMode::Open)
        }
        RawMode::Closed => {
            let concurrency = match &l.concurrency {
                Some(c) => cx
                    .positive_u32(c, "load.concurrency", "concurrency")
                    .filter(|&n| within_open_files(n.into(), &c.span(), "load.concurrency", cx))
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

/// Open mode: `concurrency` and `think_time` would be silently ignored.
fn no_closed_keys(l: &RawLoad, cx: &mut Ctx<'_>) -> bool {
    let mut ok = true;
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
    ok
}

/// `load.max_in_flight`: > 0 and servable; 1000 when not given.
fn resolve_max_in_flight(m: Option<&S<i64>>, cx: &mut Ctx<'_>) -> Option<NonZeroUsize> {
    let Some(m) = m else {
        return NonZeroUsize::new(1000);
    };
    let key = "load.max_in_flight";
    match usize::try_from(*m.get_ref())
        .ok()
        .and_then(NonZeroUsize::new)
    {
        Some(n) => within_open_files(n.get() as u64, &m.span(), key, cx).then_some(n),
        None => {
            let msg = format!("max_in_flight must be > 0, got {}", m.get_ref());
            cx.error(&m.span(), key, msg);
            None
        }
    }
}

/// The open-files limit of this process (`ulimit -n`), `None` when it is
/// unlimited or cannot be read.
fn open_files_limit() -> Option<u64> {
    use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit};
    let (soft, _hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    (soft != RLIM_INFINITY).then_some(soft)
}

/// Every connection is an open file, so a concurrency or in-flight bound
/// above the open-files limit cannot be served: a run would fail to connect
/// (or spawn that many workers) instead of measuring the service.
fn within_open_files(n: u64, span: &std::ops::Range<usize>, path: &str, cx: &mut Ctx<'_>) -> bool {
    match open_files_limit() {
        Some(limit) if n > limit => {
            cx.error_hint(
                span,
                path,
                format!(
                    "{n} connections exceed this machine's open-files limit ({limit}, `ulimit -n`)"
                ),
                "every connection is an open file: lower the value, or raise the limit with `ulimit -n`",
            );
            false
        }
        _ => true,
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

pub(super) fn resolve_phase(
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
    let drift = match p.faults.as_ref().and_then(|f| f.get_ref().drift.as_ref()) {
        Some(d) => {
            let r = super::model::resolve_drift(d, &join(path, "faults.drift"), cx);
            ok &= r.is_some();
            r
        }
        None => None,
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
                Some(c) => {
                    let key = join(path, "concurrency");
                    cx.positive_u32(c, &key, "concurrency")
                        .filter(|&n| within_open_files(n.into(), &c.span(), &key, cx))
                        .and_then(NonZeroU32::new)
                }
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
            drift,
            evaluate: p.evaluate.unwrap_or(true),
        }),
        _ => None,
    }
}
