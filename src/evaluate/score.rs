//! Pure scoring of (predicted, true label) pairs: accuracy, and recall and
//! precision per class. The batch job scores what the service logged; the
//! generator scores what it expects the model to have answered: one function,
//! so the two numbers beside each other are computed the same way.

use std::collections::BTreeMap;

use crate::plan::QualityMetric;

/// Recall and precision of one class; None where undefined (no true
/// samples of the class, or the class was never predicted).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassScore {
    pub class: String,
    /// Samples whose true label is this class.
    pub support: u64,
    pub recall: Option<f64>,
    pub precision: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scores {
    pub samples: u64,
    /// None without samples.
    pub accuracy: Option<f64>,
    /// Every class seen as a label or a prediction, sorted by name.
    pub classes: Vec<ClassScore>,
}

#[derive(Default)]
struct Tally {
    labelled: u64,
    predicted: u64,
    correct: u64,
}

/// Scores `(predicted, label)` pairs.
pub fn score<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Scores {
    let mut per: BTreeMap<&str, Tally> = BTreeMap::new();
    let (mut samples, mut correct) = (0u64, 0u64);
    for (predicted, label) in pairs {
        samples += 1;
        per.entry(label).or_default().labelled += 1;
        per.entry(predicted).or_default().predicted += 1;
        if predicted == label {
            correct += 1;
            per.entry(label).or_default().correct += 1;
        }
    }
    let ratio = |num: u64, den: u64| (den > 0).then(|| num as f64 / den as f64);
    Scores {
        samples,
        accuracy: ratio(correct, samples),
        classes: per
            .into_iter()
            .map(|(class, t)| ClassScore {
                class: class.to_string(),
                support: t.labelled,
                recall: ratio(t.correct, t.labelled),
                precision: ratio(t.correct, t.predicted),
            })
            .collect(),
    }
}

impl Scores {
    /// The value of one metric; None when undefined or the class is unknown.
    pub fn value(&self, metric: &QualityMetric) -> Option<f64> {
        let class = |name: &str| self.classes.iter().find(|c| c.class == name);
        match metric {
            QualityMetric::Accuracy => self.accuracy,
            QualityMetric::Recall { class: c } => class(c).and_then(|c| c.recall),
            QualityMetric::Precision { class: c } => class(c).and_then(|c| c.precision),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_recall_precision_by_hand() {
        // Truth a a a b b; predicted a a b b a.
        let s = score([("a", "a"), ("a", "a"), ("b", "a"), ("b", "b"), ("a", "b")]);
        assert_eq!(s.samples, 5);
        assert_eq!(s.accuracy, Some(0.6));
        let acc = QualityMetric::Accuracy;
        assert_eq!(s.value(&acc), Some(0.6));
        let ra = QualityMetric::Recall { class: "a".into() };
        let pa = QualityMetric::Precision { class: "a".into() };
        let rb = QualityMetric::Recall { class: "b".into() };
        assert_eq!(s.value(&ra), Some(2.0 / 3.0));
        assert_eq!(s.value(&pa), Some(2.0 / 3.0));
        assert_eq!(s.value(&rb), Some(0.5));
        assert_eq!(s.value(&QualityMetric::Recall { class: "z".into() }), None);
    }

    #[test]
    fn undefined_values_are_none_not_zero() {
        let s = score([("a", "b")]);
        let a = s.classes.iter().find(|c| c.class == "a").unwrap();
        assert_eq!((a.support, a.recall, a.precision), (0, None, Some(0.0)));
        let b = s.classes.iter().find(|c| c.class == "b").unwrap();
        assert_eq!((b.recall, b.precision), (Some(0.0), None));
        assert_eq!(score([]).accuracy, None);
    }
}
