//! Expectations → pass / fail / inconclusive with evidence, in two steps:
//!
//! 1. [`observe`] asks every question: PromQL over each phase's exact
//!    wall-clock window (built by [`queries`]), the ALERTS timelines, the
//!    client's record, the webhook recorder's deliveries. It resolves each
//!    phase name once ([`phase`]) and yields typed [`observation`]s.
//! 2. [`judge`] decides, purely: `expectation + observation -> verdict with
//!    evidence` ([`outcome`]), table-tested without a Prometheus.
//!
//! # Adding an expectation kind
//!
//! After the scenario side (`plan::ExpectKind` variant, parsing,
//! validation):
//!
//! 1. `observation.rs`: a struct `FooObs<'a>` holding the expectation's
//!    resolved parts (bounds by reference, phases as `PhaseId`) and what was
//!    measured (`PhaseQuery`, `Reading`, client numbers…), and a variant
//!    `Observation::Foo(FooObs)`.
//! 2. `observe/mod.rs`: an arm in `Observer::expectation` that resolves the
//!    phases (`Observation::PhaseMissing` when one did not run) and asks
//!    Prometheus through a `queries` function.
//! 3. `judge/`: `fn foo(o: &FooObs, cx: &Context) -> Judged` with a table
//!    test, an arm in `judge::one`, and the expected-text arm in
//!    `judge::expected`.
//! 4. `outcome::ExpectationKind`: the variant (serialised as the scenario
//!    key, listed in `ALL`) and the same string in
//!    `schemas/report.schema.json` (`tests/report_render.rs` holds the schema
//!    to `ALL`).
//!
//! Rules that cut across kinds (e.g. "no data is inconclusive") belong in
//! `judge::one`, which sees every observation.

pub mod alert;
pub mod bound;
pub mod judge;
pub mod observation;
pub mod observe;
pub mod outcome;
pub mod phase;
pub mod quality;
pub mod queries;

use crate::prom::{PromClient, PromError};
pub use observe::Inputs;
use outcome::Outcome;

/// Observes, then judges, every expectation of the plan.
pub async fn verify(client: &PromClient, inp: &Inputs<'_>) -> Result<Outcome, PromError> {
    let observations = observe::observe(client, inp).await?;
    Ok(judge::judge(&observations, inp.plan, inp.rules))
}
