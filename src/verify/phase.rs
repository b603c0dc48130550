//! The run's recorded phases as verification sees them, and the one place
//! where the phase names of the scenario are resolved: every later step
//! holds a `PhaseId`, never a name to look up again. Pure.

use std::fmt;

use crate::plan::{AlertExpectation, FaultSpec};

/// One phase's wall-clock window, and whether the target was scraped in it
/// (without scrapes, "the alert did not fire" proves nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseWindow {
    pub name: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub scraped: bool,
    /// Ratio of requests the fault plan failed in this phase.
    pub injected_error_ratio: Option<f64>,
    /// The faults the scenario asked for in this phase.
    pub faults: FaultSpec,
}

/// A recorded phase, resolved once from its name. Only `Phases::resolve`
/// makes one, so it always indexes the `Phases` (and the `RunRecord`
/// phases, which are in the same order) it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PhaseId(usize);

impl PhaseId {
    /// Position in the run's phases (and in `RunRecord::phases`).
    pub fn index(self) -> usize {
        self.0
    }
}

/// A phase the expectation names that is not among the recorded phases
/// (scenario validation makes this rare: a run cut short before it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseMissing(pub String);

impl fmt::Display for PhaseMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "phase \"{}\" did not run", self.0)
    }
}

/// The recorded phases in execution order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Phases(Vec<PhaseWindow>);

impl Phases {
    pub fn new(windows: Vec<PhaseWindow>) -> Phases {
        Phases(windows)
    }

    pub fn resolve(&self, name: &str) -> Result<PhaseId, PhaseMissing> {
        self.0
            .iter()
            .position(|p| p.name == name)
            .map(PhaseId)
            .ok_or_else(|| PhaseMissing(name.to_string()))
    }

    pub fn get(&self, id: PhaseId) -> &PhaseWindow {
        &self.0[id.0]
    }

    /// Every phase's id, in execution order (= `RunRecord::phases` order).
    pub fn ids(&self) -> impl Iterator<Item = PhaseId> + use<> {
        (0..self.0.len()).map(PhaseId)
    }

    pub fn all(&self) -> &[PhaseWindow] {
        &self.0
    }

    /// Start of the first phase (unix ms): the origin of relative times.
    pub fn origin_ms(&self) -> u64 {
        self.0.first().map_or(0, |p| p.start_ms)
    }
}

/// The phases of an alert expectation's clauses, all resolved: a clause
/// cannot be skipped for want of its window.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlertPhases {
    pub silent: Vec<PhaseId>,
    pub fires: Option<PhaseId>,
    pub resolves: Option<PhaseId>,
}

impl AlertPhases {
    /// Resolves every phase the expectation names; the first one missing
    /// makes the whole expectation unjudgeable.
    pub fn resolve(a: &AlertExpectation, phases: &Phases) -> Result<AlertPhases, PhaseMissing> {
        let one = |n: &Option<String>| n.as_deref().map(|n| phases.resolve(n)).transpose();
        Ok(AlertPhases {
            silent: a
                .silent_during
                .iter()
                .map(|n| phases.resolve(n))
                .collect::<Result<_, _>>()?,
            fires: one(&a.fires_during)?,
            resolves: one(&a.resolves_during)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phases() -> Phases {
        let p = |name: &str, a: u64, b: u64| PhaseWindow {
            name: name.into(),
            start_ms: a,
            end_ms: b,
            scraped: true,
            injected_error_ratio: None,
            faults: FaultSpec::default(),
        };
        Phases::new(vec![p("baseline", 10, 20), p("spike", 20, 30)])
    }

    fn alert(silent: &[&str], fires: Option<&str>, resolves: Option<&str>) -> AlertExpectation {
        AlertExpectation {
            alert: "A".into(),
            silent_during: silent.iter().map(|s| s.to_string()).collect(),
            fires_during: fires.map(str::to_string),
            fire_within: None,
            resolves_during: resolves.map(str::to_string),
            resolve_within: None,
        }
    }

    #[test]
    fn names_resolve_once_to_ids() {
        let ph = phases();
        let id = ph.resolve("spike").expect("spike ran");
        assert_eq!(id.index(), 1);
        assert_eq!(ph.get(id).start_ms, 20);
        assert_eq!(ph.origin_ms(), 10);
        assert_eq!(
            ph.resolve("recovery").unwrap_err().to_string(),
            "phase \"recovery\" did not run"
        );
    }

    #[test]
    fn every_alert_clause_resolves_or_none_does() {
        let ph = phases();
        // (silent clauses, fires?, resolves?) or the missing phase.
        type Want = Result<(usize, bool, bool), &'static str>;
        let cases: &[(AlertExpectation, Want)] = &[
            (
                alert(&["baseline"], Some("spike"), None),
                Ok((1, true, false)),
            ),
            (alert(&[], None, None), Ok((0, false, false))),
            (
                alert(&["baseline", "gone"], Some("spike"), None),
                Err("gone"),
            ),
            (alert(&["baseline"], Some("gone"), None), Err("gone")),
            (alert(&[], Some("spike"), Some("recovery")), Err("recovery")),
        ];
        for (a, want) in cases {
            let got = AlertPhases::resolve(a, &ph)
                .map(|r| (r.silent.len(), r.fires.is_some(), r.resolves.is_some()))
                .map_err(|m| m.0);
            assert_eq!(got, want.map_err(str::to_string), "{a:?}");
        }
    }
}
