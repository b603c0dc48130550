//! The target's model: a softmax (multinomial logistic) regression trained at
//! start on the embedded Iris data, deterministically, and run per request.

use thiserror::Error;

/// Iris as shipped by scikit-learn; embedded so the target works from any cwd.
const IRIS_CSV: &str = include_str!("../../scenarios/data/iris.csv");

pub const MODEL_NAME: &str = "iris-logreg-v1";
pub const N_FEATURES: usize = 4;
pub const N_CLASSES: usize = 3;
/// Largest accepted feature magnitude: keeps every logit finite.
pub const MAX_ABS_FEATURE: f64 = 1e6;
pub const CLASS_NAMES: [&str; N_CLASSES] = ["setosa", "versicolor", "virginica"];
/// Names of the input features, in the order the model takes them; the
/// `feature` label of the input-drift metrics.
pub const FEATURE_NAMES: [&str; N_FEATURES] =
    ["sepal_length", "sepal_width", "petal_length", "petal_width"];

/// Index of a class name (`"setosa"` → 0), as labels arrive from feedback.
pub fn class_index(name: &str) -> Option<usize> {
    CLASS_NAMES.iter().position(|c| *c == name)
}

// Fixed schedule and zero init: the same data always gives the same weights.
const ITERATIONS: usize = 1_000;
const LEARNING_RATE: f64 = 0.5;

#[derive(Debug, Clone, Error, PartialEq)]
pub enum ModelError {
    #[error("embedded iris.csv line {line}: {reason}")]
    Data { line: usize, reason: String },
}

/// One labelled row of the training data.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub features: [f64; N_FEATURES],
    pub class_index: usize,
}

/// Parses scikit-learn's iris.csv: a header `n_samples,n_features,class names…`
/// then `f1,f2,f3,f4,class_index` rows.
pub fn parse_iris(csv: &str) -> Result<Vec<Sample>, ModelError> {
    let mut lines = csv.lines().enumerate();
    let (_, header) = lines.next().ok_or_else(|| ModelError::Data {
        line: 1,
        reason: "file is empty".into(),
    })?;
    let header: Vec<&str> = header.split(',').map(str::trim).collect();
    let declared: usize =
        header
            .first()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ModelError::Data {
                line: 1,
                reason: "header does not start with the row count".into(),
            })?;
    if header.get(1).map(|n| n.parse::<usize>()) != Some(Ok(N_FEATURES))
        || header[2..] != CLASS_NAMES
    {
        return Err(ModelError::Data {
            line: 1,
            reason: format!("header must be `N,{N_FEATURES},{}`", CLASS_NAMES.join(",")),
        });
    }
    let mut samples = Vec::with_capacity(declared);
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        samples.push(parse_row(line).map_err(|reason| ModelError::Data {
            line: i + 1,
            reason,
        })?);
    }
    if samples.len() != declared {
        return Err(ModelError::Data {
            line: 1,
            reason: format!("header declares {declared} rows, found {}", samples.len()),
        });
    }
    Ok(samples)
}

fn parse_row(line: &str) -> Result<Sample, String> {
    let cells: Vec<&str> = line.split(',').map(str::trim).collect();
    if cells.len() != N_FEATURES + 1 {
        return Err(format!(
            "expected {} cells, found {}",
            N_FEATURES + 1,
            cells.len()
        ));
    }
    let mut features = [0.0; N_FEATURES];
    for (slot, cell) in features.iter_mut().zip(&cells) {
        *slot = cell
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("feature `{cell}` is not a finite number"))?;
    }
    let class_index = cells[N_FEATURES]
        .parse::<usize>()
        .ok()
        .filter(|c| *c < N_CLASSES)
        .ok_or_else(|| format!("class `{}` is not 0, 1 or 2", cells[N_FEATURES]))?;
    Ok(Sample {
        features,
        class_index,
    })
}

/// A prediction for one feature vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub class_index: usize,
    /// Softmax probabilities, one per class, summing to 1.
    pub scores: [f64; N_CLASSES],
}

impl Prediction {
    pub fn class(&self) -> &'static str {
        CLASS_NAMES[self.class_index]
    }
}

/// Softmax regression on standardised features.
#[derive(Debug, Clone, PartialEq)]
pub struct IrisModel {
    mean: [f64; N_FEATURES],
    std: [f64; N_FEATURES],
    /// Per class: bias then one weight per standardised feature.
    weights: [[f64; N_FEATURES + 1]; N_CLASSES],
}

impl IrisModel {
    /// Trains on the embedded data set.
    pub fn train_embedded() -> Result<IrisModel, ModelError> {
        Ok(Self::train(&parse_iris(IRIS_CSV)?))
    }

    /// Full-batch gradient descent on the mean cross-entropy, from zero weights.
    pub fn train(samples: &[Sample]) -> IrisModel {
        let (mean, std) = standardisation(samples);
        let xs: Vec<[f64; N_FEATURES]> = samples
            .iter()
            .map(|s| standardise(&s.features, &mean, &std))
            .collect();
        let mut weights = [[0.0; N_FEATURES + 1]; N_CLASSES];
        let n = samples.len().max(1) as f64;
        for _ in 0..ITERATIONS {
            let mut grad = [[0.0; N_FEATURES + 1]; N_CLASSES];
            for (x, s) in xs.iter().zip(samples) {
                let p = softmax(&logits(&weights, x));
                for (c, g) in grad.iter_mut().enumerate() {
                    let err = p[c] - if c == s.class_index { 1.0 } else { 0.0 };
                    g[0] += err;
                    for (gj, xj) in g[1..].iter_mut().zip(x) {
                        *gj += err * xj;
                    }
                }
            }
            for (w, g) in weights.iter_mut().zip(&grad) {
                for (wj, gj) in w.iter_mut().zip(g) {
                    *wj -= LEARNING_RATE * gj / n;
                }
            }
        }
        IrisModel { mean, std, weights }
    }

    pub fn predict(&self, features: &[f64; N_FEATURES]) -> Prediction {
        let x = standardise(features, &self.mean, &self.std);
        let scores = softmax(&logits(&self.weights, &x));
        let class_index =
            (1..N_CLASSES).fold(0, |best, c| if scores[c] > scores[best] { c } else { best });
        Prediction {
            class_index,
            scores,
        }
    }

    /// Mean and standard deviation of each feature in the training data: the
    /// reference the input-drift alert compares live inputs with, and the
    /// unit of a drift fault's shift.
    pub fn reference(&self) -> ([f64; N_FEATURES], [f64; N_FEATURES]) {
        (self.mean, self.std)
    }

    /// Fraction of `samples` predicted correctly.
    pub fn accuracy(&self, samples: &[Sample]) -> f64 {
        let right = samples
            .iter()
            .filter(|s| self.predict(&s.features).class_index == s.class_index)
            .count();
        right as f64 / samples.len().max(1) as f64
    }
}

fn standardisation(samples: &[Sample]) -> ([f64; N_FEATURES], [f64; N_FEATURES]) {
    let n = samples.len().max(1) as f64;
    let mut mean = [0.0; N_FEATURES];
    for s in samples {
        for (m, v) in mean.iter_mut().zip(&s.features) {
            *m += v / n;
        }
    }
    let mut std = [0.0; N_FEATURES];
    for s in samples {
        for ((sd, v), m) in std.iter_mut().zip(&s.features).zip(&mean) {
            *sd += (v - m).powi(2) / n;
        }
    }
    // A constant feature would divide by zero; leave it unscaled instead.
    let std = std.map(|var| if var > 0.0 { var.sqrt() } else { 1.0 });
    (mean, std)
}

fn standardise(
    x: &[f64; N_FEATURES],
    mean: &[f64; N_FEATURES],
    std: &[f64; N_FEATURES],
) -> [f64; N_FEATURES] {
    std::array::from_fn(|j| (x[j] - mean[j]) / std[j])
}

fn logits(weights: &[[f64; N_FEATURES + 1]; N_CLASSES], x: &[f64; N_FEATURES]) -> [f64; N_CLASSES] {
    weights.map(|w| w[0] + w[1..].iter().zip(x).map(|(a, b)| a * b).sum::<f64>())
}

fn softmax(z: &[f64; N_CLASSES]) -> [f64; N_CLASSES] {
    // Shift by the max so exp never overflows on extreme (but finite) inputs.
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e = z.map(|v| (v - max).exp());
    let sum: f64 = e.iter().sum();
    e.map(|v| v / sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_data_has_150_rows_50_per_class() {
        let samples = parse_iris(IRIS_CSV).unwrap();
        assert_eq!(samples.len(), 150);
        for c in 0..N_CLASSES {
            assert_eq!(samples.iter().filter(|s| s.class_index == c).count(), 50);
        }
        assert_eq!(samples[0].features, [5.1, 3.5, 1.4, 0.2]);
    }

    #[test]
    fn training_accuracy_is_above_ninety_percent() {
        let samples = parse_iris(IRIS_CSV).unwrap();
        let model = IrisModel::train(&samples);
        let acc = model.accuracy(&samples);
        assert!(acc > 0.9, "training accuracy {acc}");
    }

    #[test]
    fn known_rows_get_their_class_and_scores_sum_to_one() {
        let model = IrisModel::train_embedded().unwrap();
        let setosa = model.predict(&[5.1, 3.5, 1.4, 0.2]);
        assert_eq!(setosa.class(), "setosa");
        assert_eq!(model.predict(&[7.0, 3.2, 4.7, 1.4]).class(), "versicolor");
        assert_eq!(model.predict(&[6.3, 3.3, 6.0, 2.5]).class(), "virginica");
        assert!((setosa.scores.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn training_is_deterministic() {
        assert_eq!(
            IrisModel::train_embedded().unwrap(),
            IrisModel::train_embedded().unwrap()
        );
    }

    #[test]
    fn extreme_finite_inputs_give_finite_scores() {
        let model = IrisModel::train_embedded().unwrap();
        let p = model.predict(&[MAX_ABS_FEATURE, -MAX_ABS_FEATURE, MAX_ABS_FEATURE, 0.0]);
        assert!(p.scores.iter().all(|s| s.is_finite()));
    }

    #[test]
    fn bad_data_names_the_line() {
        let bad = "2,4,setosa,versicolor,virginica\n5.1,3.5,1.4,0.2,0\n5.1,x,1.4,0.2,0\n";
        let err = parse_iris(bad).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        let wrong_header = "2,3,a,b,c\n";
        assert!(parse_iris(wrong_header).is_err());
        let short = "3,4,setosa,versicolor,virginica\n5.1,3.5,1.4,0.2,0\n";
        assert!(
            parse_iris(short)
                .unwrap_err()
                .to_string()
                .contains("declares 3")
        );
    }
}
