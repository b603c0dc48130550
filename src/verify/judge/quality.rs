//! Judge of `model_quality`: the value the batch job pushed for the last
//! evaluation window inside the phase, against a fixed bound or against
//! the generator's expected value for that very window, with both numbers
//! (and the whole phase's) in the evidence. Pure.

use super::{Context, Judged};
use crate::plan::{QualityBound, QualityMetric};
use crate::record::ModelTruth;
use crate::verify::bound;
use crate::verify::observation::{ModelQualityObs, QualityReading};
use crate::verify::outcome::{QueryEvidence, Verdict};

pub fn expected(metric: &QualityMetric, phase: &str, b: &QualityBound) -> String {
    let what = match b {
        QualityBound::Fixed(b) => bound::describe(b, bound::number),
        QualityBound::NearExpected { tolerance } => format!(
            "within ±{} of the generator's expected value",
            bound::number(*tolerance)
        ),
    };
    format!("model {} in \"{phase}\" {what}", metric.describe())
}

/// `+3.2s..+13.2s of "drift"`: a window as offsets from the phase start.
fn window_words(start_ms: u64, end_ms: u64, phase_start_ms: u64, phase: &str) -> String {
    let off = |ms: u64| ms.saturating_sub(phase_start_ms) as f64 / 1000.0;
    format!(
        "+{:.1}s..+{:.1}s of \"{phase}\"",
        off(start_ms),
        off(end_ms)
    )
}

/// The generator's expectation over the whole phase, for context.
fn whole_phase(t: &ModelTruth, sent: u64, metric: &QualityMetric) -> String {
    let value = t
        .expected_scores(0, u64::MAX)
        .and_then(|s| s.value(metric))
        .map_or_else(|| "n/a".into(), bound::number);
    format!(
        "generator expected {} over the whole phase = {value} ({} labelled answers, {} drifted of {sent} sent; {} labels reported, {} lost)",
        metric.describe(),
        t.samples.len(),
        t.drifted,
        t.feedback_sent,
        t.feedback_lost
    )
}

pub fn judge(o: &ModelQualityObs<'_>, cx: &Context<'_>) -> Judged {
    let w = cx.phases.get(o.phase);
    let mut j = Judged::new(expected(o.metric, &w.name, o.bound));
    j.client.push(whole_phase(o.truth, o.sent, o.metric));
    let mut ev = QueryEvidence {
        promql: o.promql.clone(),
        at_ms: o.range_ms.1,
        start_ms: Some(o.range_ms.0),
        value: None,
    };
    let found = match &o.reading {
        QualityReading::Failed(msg) => {
            j.reason = format!("query failed: {msg}");
            j.queries.push(ev);
            return j;
        }
        QualityReading::NoWindow => {
            j.reason = format!(
                "no evaluation window of the batch job lies inside \"{}\" (window {}, every {}; is the phase long enough, did the job run?)",
                w.name,
                crate::timeutil::human(o.window),
                crate::timeutil::human(o.every)
            );
            j.queries.push(ev);
            return j;
        }
        QualityReading::Found(f) => *f,
    };
    ev.at_ms = found.at_ms;
    ev.value = Some(found.value);
    j.queries.push(ev);
    let window = window_words(found.start_ms, found.end_ms, w.start_ms, &w.name);
    let generator = crate::record::expected_scores_in(
        o.run_truth.iter().copied(),
        found.start_ms,
        found.end_ms,
    )
    .map(|s| (s.value(o.metric), s.samples));
    j.client.push(match generator {
        Some((Some(x), n)) => format!(
            "generator expected {} = {} over the same window {window}, {n} labelled answers",
            o.metric.describe(),
            bound::number(x)
        ),
        Some((None, n)) => format!(
            "generator: {} undefined over the same window {window} ({n} labelled answers)",
            o.metric.describe()
        ),
        None => "generator: expected answers unknown (not the built-in model)".into(),
    });
    let samples = found.samples.map_or_else(|| "?".into(), |s| format!("{s}"));
    let v = found.value;
    j.observed = format!(
        "{} (pushed for window {window}, {samples} samples)",
        bound::number(v)
    );
    match o.bound {
        QualityBound::Fixed(b) if bound::holds(v, b) => j.verdict = Verdict::Pass,
        QualityBound::Fixed(b) => {
            j.verdict = Verdict::Fail;
            j.reason = format!(
                "{} is not {}",
                bound::number(v),
                bound::describe(b, bound::number)
            );
        }
        QualityBound::NearExpected { tolerance } => match generator {
            Some((Some(x), _)) if (v - x).abs() <= *tolerance => j.verdict = Verdict::Pass,
            Some((Some(x), _)) => {
                j.verdict = Verdict::Fail;
                j.reason = format!(
                    "{} is {} away from the expected {}, more than {}",
                    bound::number(v),
                    bound::number((v - x).abs()),
                    bound::number(x),
                    bound::number(*tolerance)
                );
            }
            _ => j.reason = "the generator has no expected value for this window".into(),
        },
    }
    j
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::super::testkit::*;
    use super::*;
    use crate::plan::Bound;
    use crate::record::TruthSample;
    use crate::verify::quality::Evaluated;

    /// Spike (10–35 s): 10 answers in 12–22 s, 8 expected right; one more
    /// outside the window, expected wrong.
    fn truth(expected_known: bool) -> ModelTruth {
        let mut samples: Vec<TruthSample> = (0..10)
            .map(|i| TruthSample {
                at_ms: (12 + i) * S,
                label: 0,
                expected: expected_known.then_some(if i < 8 { 0 } else { 1 }),
            })
            .collect();
        samples.push(TruthSample {
            at_ms: 30 * S,
            label: 0,
            expected: expected_known.then_some(1),
        });
        ModelTruth {
            classes: vec!["a".into(), "b".into()],
            samples,
            ..ModelTruth::default()
        }
    }

    fn obs<'a>(
        metric: &'a QualityMetric,
        bound: &'a QualityBound,
        truth: &'a ModelTruth,
        reading: QualityReading,
    ) -> ModelQualityObs<'a> {
        ModelQualityObs {
            metric,
            bound,
            phase: phases().resolve("spike").expect("spike"),
            promql: "model_accuracy{job=\"model-evaluation\"}".into(),
            range_ms: (10 * S, 45 * S),
            reading,
            truth,
            run_truth: vec![truth],
            sent: 11,
            window: Duration::from_secs(10),
            every: Duration::from_secs(2),
        }
    }

    fn found(value: f64) -> QualityReading {
        QualityReading::Found(Evaluated {
            at_ms: 24 * S,
            value,
            start_ms: 12 * S,
            end_ms: 22 * S,
            samples: Some(10.0),
        })
    }

    #[test]
    fn bounds_against_the_pushed_value_and_the_generator() {
        let (plan, rules, ph) = (plan(), BTreeMap::new(), phases());
        let cx = context(&plan, &rules, &ph);
        let acc = QualityMetric::Accuracy;
        let near = QualityBound::NearExpected { tolerance: 0.02 };
        let above = QualityBound::Fixed(Bound::Above(0.9));
        let (known, unknown) = (truth(true), truth(false));
        let cases = [
            (&near, &known, found(0.81), Verdict::Pass, ""),
            (
                &near,
                &known,
                found(0.7),
                Verdict::Fail,
                "away from the expected 0.8000",
            ),
            (
                &near,
                &unknown,
                found(0.8),
                Verdict::Inconclusive,
                "no expected value",
            ),
            (&above, &unknown, found(0.95), Verdict::Pass, ""),
            (
                &above,
                &known,
                found(0.8),
                Verdict::Fail,
                "0.8000 is not above 0.9000",
            ),
            (
                &above,
                &known,
                QualityReading::NoWindow,
                Verdict::Inconclusive,
                "no evaluation window",
            ),
            (
                &near,
                &known,
                QualityReading::Failed("bad".into()),
                Verdict::Inconclusive,
                "query failed: bad",
            ),
        ];
        for (b, t, reading, verdict, reason) in cases {
            let j = judge(&obs(&acc, b, t, reading.clone()), &cx);
            assert_eq!(j.verdict, verdict, "{reading:?}: {j:?}");
            assert!(j.reason.contains(reason), "{reading:?}: {}", j.reason);
        }
    }

    #[test]
    fn late_answers_of_the_previous_phase_count_in_the_window() {
        let (plan, rules, ph) = (plan(), BTreeMap::new(), phases());
        let cx = context(&plan, &rules, &ph);
        let acc = QualityMetric::Accuracy;
        let near = QualityBound::NearExpected { tolerance: 0.001 };
        let spike = truth(true);
        // Ten right answers of "baseline" that a stalled client only got
        // back at 12–13 s, inside the evaluated window: 18 of 20 right.
        let baseline = ModelTruth {
            classes: spike.classes.clone(),
            samples: (0..10)
                .map(|i| TruthSample {
                    at_ms: 12 * S + i * 100,
                    label: 1,
                    expected: Some(1),
                })
                .collect(),
            ..ModelTruth::default()
        };
        let mut o = obs(&acc, &near, &spike, found(0.9));
        o.run_truth = vec![&baseline, &spike];
        let j = judge(&o, &cx);
        assert_eq!(j.verdict, Verdict::Pass, "{j:?}");
    }

    #[test]
    fn evidence_puts_prometheus_and_the_generator_side_by_side() {
        let (plan, rules, ph) = (plan(), BTreeMap::new(), phases());
        let cx = context(&plan, &rules, &ph);
        let acc = QualityMetric::Accuracy;
        let near = QualityBound::NearExpected { tolerance: 0.02 };
        let t = truth(true);
        let j = judge(&obs(&acc, &near, &t, found(0.8)), &cx);
        assert_eq!(j.queries[0].value, Some(0.8));
        assert_eq!(j.queries[0].at_ms, 24 * S);
        assert_eq!(
            j.observed,
            "0.8000 (pushed for window +2.0s..+12.0s of \"spike\", 10 samples)"
        );
        assert!(
            j.client[1].starts_with("generator expected accuracy = 0.8000 over the same window"),
            "{:?}",
            j.client
        );
        assert!(
            j.client[0].contains("over the whole phase = 0.7273"),
            "{:?}",
            j.client
        );
        assert_eq!(
            j.expected,
            "model accuracy in \"spike\" within ±0.0200 of the generator's expected value"
        );
    }
}
