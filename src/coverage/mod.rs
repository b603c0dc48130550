//! Rule coverage: for every alerting rule in the loaded rule files, whether a
//! run (and a suite of runs) saw it pending, firing and resolved, or never;
//! for every recording rule, whether it produced a series. `observe` asks
//! Prometheus; merging, the `--require-coverage` gate and the tables are pure.

mod observe;
pub mod render;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use observe::observe;

/// Coverage of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunCoverage {
    pub alerts: Vec<AlertCoverage>,
    pub recording: Vec<RecordingCoverage>,
}

/// What one alerting rule did during one run. Silent = neither pending nor
/// firing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertCoverage {
    pub alert: String,
    /// The rule file as the scenario names it.
    pub file: String,
    pub pending: bool,
    pub firing: bool,
    /// Fired, then stopped firing before the end of the observed range.
    pub resolved: bool,
}

impl AlertCoverage {
    pub fn silent(&self) -> bool {
        !self.pending && !self.firing
    }

    /// The furthest lifecycle state reached, in words.
    pub fn reached(&self) -> &'static str {
        if self.resolved {
            "resolved"
        } else if self.firing {
            "firing"
        } else if self.pending {
            "pending"
        } else {
            "silent"
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingCoverage {
    pub record: String,
    pub file: String,
    pub produced: bool,
}

/// Coverage of a suite: per rule, the scenarios that reached each state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SuiteCoverage {
    pub alerts: Vec<SuiteAlert>,
    pub recording: Vec<SuiteRecording>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteAlert {
    pub alert: String,
    pub file: String,
    /// Scenarios whose rule files hold this alert.
    pub loaded_in: Vec<String>,
    pub pending_in: Vec<String>,
    pub firing_in: Vec<String>,
    pub resolved_in: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteRecording {
    pub record: String,
    pub file: String,
    pub loaded_in: Vec<String>,
    pub produced_in: Vec<String>,
}

/// How far every alert must get somewhere in the suite (`--require-coverage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Level {
    /// At least pending.
    Pending,
    /// Firing.
    Firing,
    /// Firing, then resolved.
    Resolved,
}

/// Merges the runs' coverage (scenario name, coverage) into the suite's.
pub fn merge<'a>(runs: impl IntoIterator<Item = (&'a str, &'a RunCoverage)>) -> SuiteCoverage {
    let mut alerts: BTreeMap<(String, String), SuiteAlert> = BTreeMap::new();
    let mut recording: BTreeMap<(String, String), SuiteRecording> = BTreeMap::new();
    for (scenario, c) in runs {
        let s = scenario.to_string();
        for a in &c.alerts {
            let e = alerts
                .entry((a.alert.clone(), a.file.clone()))
                .or_insert_with(|| SuiteAlert {
                    alert: a.alert.clone(),
                    file: a.file.clone(),
                    loaded_in: vec![],
                    pending_in: vec![],
                    firing_in: vec![],
                    resolved_in: vec![],
                });
            e.loaded_in.push(s.clone());
            for (hit, list) in [
                (a.pending, &mut e.pending_in),
                (a.firing, &mut e.firing_in),
                (a.resolved, &mut e.resolved_in),
            ] {
                if hit {
                    list.push(s.clone());
                }
            }
        }
        for r in &c.recording {
            let e = recording
                .entry((r.record.clone(), r.file.clone()))
                .or_insert_with(|| SuiteRecording {
                    record: r.record.clone(),
                    file: r.file.clone(),
                    loaded_in: vec![],
                    produced_in: vec![],
                });
            e.loaded_in.push(s.clone());
            if r.produced {
                e.produced_in.push(s.clone());
            }
        }
    }
    SuiteCoverage {
        alerts: alerts.into_values().collect(),
        recording: recording.into_values().collect(),
    }
}

impl SuiteAlert {
    fn reached(&self, level: Level) -> &[String] {
        match level {
            Level::Pending => {
                if self.pending_in.is_empty() {
                    &self.firing_in
                } else {
                    &self.pending_in
                }
            }
            Level::Firing => &self.firing_in,
            Level::Resolved => &self.resolved_in,
        }
    }

    /// `HighErrorRate fired in error-spike, latency-spike` /
    /// `ModelAccuracyLow never exercised`.
    pub fn words(&self) -> String {
        let list = |v: &[String]| v.join(", ");
        if !self.resolved_in.is_empty() {
            format!(
                "{} fired and resolved in {}",
                self.alert,
                list(&self.resolved_in)
            )
        } else if !self.firing_in.is_empty() {
            format!("{} fired in {}", self.alert, list(&self.firing_in))
        } else if !self.pending_in.is_empty() {
            format!("{} only pending in {}", self.alert, list(&self.pending_in))
        } else {
            format!("{} never exercised", self.alert)
        }
    }
}

/// The `--require-coverage` gate: Err with one line naming every alert and
/// how far it got, when one of them never reached `level`.
pub fn require(c: &SuiteCoverage, level: Level) -> Result<(), String> {
    let short = c.alerts.iter().any(|a| a.reached(level).is_empty());
    if !short {
        return Ok(());
    }
    let what = match level {
        Level::Pending => "was pending",
        Level::Firing => "fired",
        Level::Resolved => "fired and resolved",
    };
    let missing: Vec<&str> = c
        .alerts
        .iter()
        .filter(|a| a.reached(level).is_empty())
        .map(|a| a.alert.as_str())
        .collect();
    Err(format!(
        "rule coverage: {} never {what} in any scenario ({})",
        missing.join(", "),
        c.alerts
            .iter()
            .map(SuiteAlert::words)
            .collect::<Vec<_>>()
            .join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(name: &str, pending: bool, firing: bool, resolved: bool) -> AlertCoverage {
        AlertCoverage {
            alert: name.into(),
            file: "rules/alerts.yml".into(),
            pending,
            firing,
            resolved,
        }
    }

    fn run(alerts: Vec<AlertCoverage>, produced: bool) -> RunCoverage {
        RunCoverage {
            alerts,
            recording: vec![RecordingCoverage {
                record: "job:x".into(),
                file: "rules/recording.yml".into(),
                produced,
            }],
        }
    }

    #[test]
    fn merge_lists_scenarios_per_state() {
        let a = run(
            vec![
                alert("HighErrorRate", true, true, true),
                alert("HighLatencyP90", false, false, false),
            ],
            true,
        );
        let b = run(
            vec![
                alert("HighErrorRate", false, false, false),
                alert("HighLatencyP90", true, true, false),
            ],
            false,
        );
        let s = merge([("error-spike", &a), ("latency-spike", &b)]);
        assert_eq!(s.alerts[0].alert, "HighErrorRate");
        assert_eq!(s.alerts[0].resolved_in, vec!["error-spike"]);
        assert_eq!(s.alerts[0].loaded_in, vec!["error-spike", "latency-spike"]);
        assert_eq!(s.alerts[1].firing_in, vec!["latency-spike"]);
        assert!(s.alerts[1].resolved_in.is_empty());
        assert_eq!(s.recording[0].produced_in, vec!["error-spike"]);
    }

    #[test]
    fn require_names_what_fired_where_and_what_never_did() {
        let a = run(
            vec![
                alert("HighLatencyP90", true, true, false),
                alert("ModelAccuracyLow", false, false, false),
            ],
            true,
        );
        let s = merge([("latency-spike", &a)]);
        let err = require(&s, Level::Firing).unwrap_err();
        assert_eq!(
            err,
            "rule coverage: ModelAccuracyLow never fired in any scenario (HighLatencyP90 fired in latency-spike; ModelAccuracyLow never exercised)"
        );
        assert!(
            require(&s, Level::Resolved)
                .unwrap_err()
                .contains("HighLatencyP90, ModelAccuracyLow never fired and resolved")
        );
        let only = merge([(
            "latency-spike",
            &run(vec![alert("HighLatencyP90", true, true, false)], true),
        )]);
        assert!(require(&only, Level::Firing).is_ok());
        assert!(require(&only, Level::Pending).is_ok());
    }

    #[test]
    fn reached_state_in_words() {
        assert_eq!(alert("A", false, false, false).reached(), "silent");
        assert!(alert("A", false, false, false).silent());
        assert_eq!(alert("A", true, false, false).reached(), "pending");
        assert_eq!(alert("A", true, true, true).reached(), "resolved");
    }
}
