//! Judge of `notified` expectations: did the firing (and resolved)
//! notification reach the expected receiver within its bound? Read from the
//! webhook recorder's deliveries beside the alert's ALERTS timeline. Pure.

use std::time::Duration;

use super::{Context, Judged};
use crate::alertmanager::config::RECORDER_RECEIVER;
use crate::alertmanager::{Deliveries, Notification};
use crate::plan::NotifiedExpectation;
use crate::timeutil::{human, unix_ms};
use crate::verify::observation::NotifiedObs;
use crate::verify::outcome::{AlertTimeline, QueryEvidence, Verdict};
use crate::verify::queries;

/// Allowance for Prometheus → Alertmanager → recorder hops on a busy machine.
pub const SLACK: Duration = Duration::from_secs(5);
/// Evidence lines kept per expectation.
const MAX_LINES: usize = 12;

/// One alert inside one delivery that matches the expectation's selector.
struct Hit<'a> {
    at_ms: u64,
    receiver: &'a str,
    status: &'a str,
}

/// What one `notified` judgement reads: the expectation, the deliveries
/// that match its selector, and the run's origin for relative times.
struct Case<'a> {
    n: &'a NotifiedExpectation,
    d: &'a Deliveries,
    hits: Vec<Hit<'a>>,
    origin_ms: u64,
    /// `receiver "x"` or `any receiver`.
    to: String,
}

impl Case<'_> {
    /// `+31.2s`: a time relative to the start of the load.
    fn rel(&self, ms: u64) -> String {
        format!("+{:.1}s", ms.saturating_sub(self.origin_ms) as f64 / 1000.0)
    }

    /// Whether a delivery meets the expectation's receiver: the named one,
    /// or any but slocheck's own catch-all in a user's config.
    fn counts(&self, h: &Hit<'_>) -> bool {
        match &self.n.receiver {
            Some(want) => h.receiver == want,
            None => !self.catch_all(h),
        }
    }

    fn catch_all(&self, h: &Hit<'_>) -> bool {
        self.d.user_config && h.receiver == RECORDER_RECEIVER
    }

    fn collected_ms(&self) -> u64 {
        unix_ms(self.d.collected_at)
    }

    /// One line per matching delivery (bounded), or why there was none.
    fn evidence(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .hits
            .iter()
            .take(MAX_LINES)
            .map(|h| {
                format!(
                    "{} {} notification for {} at receiver \"{}\"",
                    self.rel(h.at_ms),
                    h.status,
                    self.n.selector(),
                    h.receiver
                )
            })
            .collect();
        if self.hits.len() > MAX_LINES {
            lines.push(format!("… {} more deliveries", self.hits.len() - MAX_LINES));
        }
        if self.hits.is_empty() {
            lines.push(format!(
                "the recorder got {} notification(s), none for {}",
                self.d.notifications.len(),
                self.n.selector()
            ));
        }
        lines
    }
}

pub fn judge(o: &NotifiedObs<'_>, cx: &Context<'_>) -> Judged {
    let n = o.spec;
    let mut j = Judged::new(n.describe());
    j.queries.push(QueryEvidence {
        promql: queries::alert_states(&n.alert),
        at_ms: o.deliveries.map_or(0, |d| unix_ms(d.collected_at)),
        start_ms: Some(cx.started_at_ms),
        value: None,
    });
    let Some(d) = o.deliveries else {
        j.reason = "no Alertmanager ran, so no delivery could be observed (hint: add an [alertmanager] table or pass --alertmanager)".into();
        return j;
    };
    let case = Case {
        n,
        d,
        hits: matching(n, &d.notifications),
        origin_ms: cx.started_at_ms,
        to: n.receiver.as_ref().map_or_else(
            || "any receiver".to_string(),
            |r| format!("receiver \"{r}\""),
        ),
    };
    j.client = case.evidence();
    let Some(fired) = o.timeline.firing_at_ms else {
        j.verdict = Verdict::Fail;
        j.reason = format!(
            "{} never fired (ALERTS has no firing sample), so no notification was sent",
            n.alert
        );
        return j;
    };
    let eval = cx.plan.prometheus.evaluation_interval;
    let fire_bound = n
        .firing_within
        .unwrap_or(d.timing.group_wait + 2 * eval + SLACK);
    let resolve_bound = n
        .resolved_within
        .unwrap_or(d.timing.group_interval + 2 * eval + SLACK);
    j.expected = expected(n, &case.to, fire_bound, resolve_bound);
    let Some(first) = case
        .hits
        .iter()
        .find(|h| h.status == "firing" && case.counts(h))
    else {
        (j.verdict, j.reason) = not_delivered(&case, fired, fire_bound);
        return j;
    };
    let mut v = Delivered::default();
    v.firing(&case, first, fired, fire_bound);
    v.resolved(&case, first, &o.timeline, resolve_bound);
    j.observed = v.observed.join("; ");
    if !v.failures.is_empty() {
        j.verdict = Verdict::Fail;
        j.reason = v.failures.join("; ");
    } else if let Some(why) = v.inconclusive {
        j.reason = why;
    } else {
        j.verdict = Verdict::Pass;
    }
    j
}

/// Why no firing notification reached the expected receiver: routed
/// elsewhere, dropped by the routing tree, still within its bound when the
/// run ended (inconclusive), or simply missing.
fn not_delivered(c: &Case<'_>, fired: u64, bound: Duration) -> (Verdict, String) {
    let sel = c.n.selector();
    let firing = |h: &&Hit<'_>| h.status == "firing";
    let elsewhere: Vec<String> = unique(
        c.hits
            .iter()
            .filter(firing)
            .filter(|h| !c.counts(h) && !c.catch_all(h))
            .map(|h| h.receiver),
    );
    let seen_by_catch_all = c.hits.iter().filter(firing).find(|h| c.catch_all(h));
    let reason = if !elsewhere.is_empty() {
        format!(
            "{sel} fired at {} but its firing notification went only to {} (hint: check the route's matchers, order and continue)",
            c.rel(fired),
            elsewhere
                .iter()
                .map(|r| format!("\"{r}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else if let Some(h) = seen_by_catch_all {
        format!(
            "{sel} fired at {} and reached Alertmanager (slocheck's catch-all route saw it at {}), but the routing tree delivered it to no receiver with integrations (hint: check the route's matchers and receivers)",
            c.rel(fired),
            c.rel(h.at_ms)
        )
    } else if fired + ms(bound) > c.collected_ms() {
        return (
            Verdict::Inconclusive,
            format!(
                "{sel} fired at {}, and the run ended before the bound of {} elapsed (hint: lengthen the last phase or prometheus.settle)",
                c.rel(fired),
                human(bound)
            ),
        );
    } else {
        format!(
            "{sel} fired at {} but no firing notification reached {} (hint: is the alert's routing matched? see alertmanager.log in the run directory)",
            c.rel(fired),
            c.to
        )
    };
    (Verdict::Fail, reason)
}

/// Findings once the firing notification was delivered.
#[derive(Default)]
struct Delivered {
    observed: Vec<String>,
    failures: Vec<String>,
    inconclusive: Option<String>,
}

impl Delivered {
    /// The firing notification against its bound.
    fn firing(&mut self, c: &Case<'_>, first: &Hit<'_>, fired: u64, bound: Duration) {
        let delay = Duration::from_millis(first.at_ms.saturating_sub(fired));
        self.observed.push(format!(
            "firing delivered to \"{}\" {} after firing (fired {}, delivered {})",
            first.receiver,
            human(delay),
            c.rel(fired),
            c.rel(first.at_ms)
        ));
        self.check_delay("firing", "fired", delay, bound);
    }

    /// A notification later than its bound after the alert's `event`.
    fn check_delay(&mut self, what: &str, event: &str, delay: Duration, bound: Duration) {
        if delay > bound {
            self.failures.push(format!(
                "the {what} notification arrived {} after the alert {event}, over the bound of {}",
                human(delay),
                human(bound)
            ));
        }
    }

    /// The resolved notification, to the receiver that got the firing one:
    /// required when asked for, or when the alert resolved and that
    /// receiver sends resolved notifications.
    fn resolved(&mut self, c: &Case<'_>, first: &Hit<'_>, t: &AlertTimeline, bound: Duration) {
        let n = c.n;
        let sends_resolved =
            c.d.send_resolved
                .get(first.receiver)
                .copied()
                .unwrap_or(true);
        let required =
            n.resolved_within.is_some() || (t.resolved_at_ms.is_some() && sends_resolved);
        if !required {
            let why = if t.resolved_at_ms.is_none() {
                format!("{} did not resolve during the run", n.alert)
            } else {
                format!(
                    "receiver \"{}\" does not send resolved notifications",
                    first.receiver
                )
            };
            self.observed
                .push(format!("resolved notification not required: {why}"));
            return;
        }
        let Some(resolved) = t.resolved_at_ms else {
            self.failures.push(format!(
                "resolved_within is set but {} was still firing when the run ended",
                n.alert
            ));
            return;
        };
        let got = c.hits.iter().find(|h| {
            h.status == "resolved" && h.receiver == first.receiver && h.at_ms >= first.at_ms
        });
        match got {
            Some(h) => {
                let delay = Duration::from_millis(h.at_ms.saturating_sub(resolved));
                self.observed.push(format!(
                    "resolved delivered {} after resolution (resolved {}, delivered {})",
                    human(delay),
                    c.rel(resolved),
                    c.rel(h.at_ms)
                ));
                self.check_delay("resolved", "resolved", delay, bound);
            }
            None if resolved + ms(bound) > c.collected_ms() => {
                self.inconclusive = Some(format!(
                    "{} resolved at {}, and the run ended before the bound of {} for its resolved notification elapsed (hint: lengthen the last phase or prometheus.settle)",
                    n.alert,
                    c.rel(resolved),
                    human(bound)
                ));
            }
            None => self.failures.push(format!(
                "{} resolved at {} but no resolved notification reached \"{}\" within {}",
                n.alert,
                c.rel(resolved),
                first.receiver,
                human(bound)
            )),
        }
    }
}

/// The expectation in words with the bounds actually applied.
fn expected(n: &NotifiedExpectation, to: &str, fire: Duration, resolve: Duration) -> String {
    let how = |given: Option<Duration>| if given.is_some() { "" } else { " (derived)" };
    let resolved = match n.resolved_within {
        Some(_) => format!("resolved within {}", human(resolve)),
        None => format!(
            "resolved within {} (derived) if it resolves and send_resolved is on",
            human(resolve)
        ),
    };
    format!(
        "{} notified to {to}: firing within {}{}; {resolved}",
        n.selector(),
        human(fire),
        how(n.firing_within)
    )
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

fn matching<'a>(n: &NotifiedExpectation, all: &'a [Notification]) -> Vec<Hit<'a>> {
    let mut hits: Vec<Hit<'a>> = all
        .iter()
        .flat_map(|note| {
            note.payload
                .alerts
                .iter()
                .filter(|a| {
                    a.labels.get("alertname") == Some(&n.alert)
                        && n.labels.iter().all(|(k, v)| a.labels.get(k) == Some(v))
                })
                .map(move |a| Hit {
                    at_ms: unix_ms(note.received_at),
                    receiver: note.receiver(),
                    status: a.status.as_str(),
                })
        })
        .collect();
    hits.sort_by_key(|h| h.at_ms);
    hits
}

fn unique<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::SystemTime;

    use super::super::testkit::*;
    use super::*;
    use crate::alertmanager::RouteTiming;
    use crate::alertmanager::payload::{WebhookAlert, WebhookPayload};

    const T0: u64 = 1_700_000_000_000;

    fn at(ms: u64) -> SystemTime {
        crate::timeutil::from_unix_secs_f64((T0 + ms) as f64 / 1000.0)
    }

    fn note(ms: u64, receiver: &str, status: &str, severity: &str) -> Notification {
        Notification {
            received_at: at(ms),
            url_receiver: receiver.into(),
            payload: WebhookPayload {
                version: "4".into(),
                group_key: String::new(),
                status: status.into(),
                receiver: receiver.into(),
                group_labels: BTreeMap::new(),
                common_labels: BTreeMap::new(),
                alerts: vec![WebhookAlert {
                    status: status.into(),
                    labels: BTreeMap::from([
                        ("alertname".into(), "HighErrorRate".into()),
                        ("severity".into(), severity.into()),
                    ]),
                    starts_at: String::new(),
                    ends_at: String::new(),
                }],
            },
        }
    }

    fn timeline(firing: Option<u64>, resolved: Option<u64>) -> AlertTimeline {
        AlertTimeline {
            alert: "HighErrorRate".into(),
            spans: Vec::new(),
            pending_at_ms: None,
            firing_at_ms: firing.map(|f| T0 + f),
            resolved_at_ms: resolved.map(|r| T0 + r),
            api_state_at_end: None,
        }
    }

    fn deliveries(notes: Vec<Notification>, end: u64) -> Deliveries {
        Deliveries {
            notifications: notes,
            timing: RouteTiming {
                group_wait: Duration::from_secs(1),
                group_interval: Duration::from_secs(1),
                repeat_interval: Duration::from_secs(3600),
            },
            send_resolved: BTreeMap::from([
                ("oncall".to_string(), true),
                ("default".to_string(), true),
                ("quiet".to_string(), false),
                (RECORDER_RECEIVER.to_string(), true),
            ]),
            user_config: true,
            collected_at: at(end),
        }
    }

    fn expect(receiver: Option<&str>) -> NotifiedExpectation {
        NotifiedExpectation {
            alert: "HighErrorRate".into(),
            receiver: receiver.map(str::to_string),
            labels: vec![("severity".into(), "critical".into())],
            firing_within: None,
            resolved_within: None,
        }
    }

    /// Judges with evaluation every second and the load started at T0.
    fn judge_at_t0(n: &NotifiedExpectation, t: AlertTimeline, d: Option<&Deliveries>) -> Judged {
        let (plan, rules, ph) = (plan(), BTreeMap::new(), phases());
        let cx = Context {
            started_at_ms: T0,
            ..context(&plan, &rules, &ph)
        };
        let o = NotifiedObs {
            spec: n,
            timeline: t,
            deliveries: d,
        };
        judge(&o, &cx)
    }

    fn run(receiver: Option<&str>, t: AlertTimeline, notes: Vec<Notification>, end: u64) -> Judged {
        judge_at_t0(&expect(receiver), t, Some(&deliveries(notes, end)))
    }

    #[test]
    fn verdicts() {
        let good = vec![
            note(31_000, RECORDER_RECEIVER, "firing", "critical"),
            note(31_200, "oncall", "firing", "critical"),
            note(51_500, "oncall", "resolved", "critical"),
        ];
        let t = timeline(Some(30_000), Some(50_000));
        let cases: Vec<(&str, Judged, Verdict, &str)> = vec![
            (
                "delivered in time",
                run(Some("oncall"), t.clone(), good.clone(), 60_000),
                Verdict::Pass,
                "",
            ),
            (
                "any receiver ignores the catch-all",
                run(None, t.clone(), good[..1].to_vec(), 60_000),
                Verdict::Fail,
                "delivered it to no receiver",
            ),
            (
                "routed elsewhere",
                run(
                    Some("oncall"),
                    t.clone(),
                    vec![note(31_000, "default", "firing", "critical")],
                    60_000,
                ),
                Verdict::Fail,
                "went only to \"default\"",
            ),
            (
                "never fired",
                run(Some("oncall"), timeline(None, None), good.clone(), 60_000),
                Verdict::Fail,
                "never fired",
            ),
            (
                "late firing",
                run(
                    Some("oncall"),
                    t.clone(),
                    vec![
                        note(40_000, "oncall", "firing", "critical"),
                        note(51_000, "oncall", "resolved", "critical"),
                    ],
                    60_000,
                ),
                Verdict::Fail,
                "over the bound of 8s",
            ),
            (
                "labels must match",
                run(
                    Some("oncall"),
                    t.clone(),
                    vec![note(31_000, "oncall", "firing", "warning")],
                    60_000,
                ),
                Verdict::Fail,
                "no firing notification",
            ),
            (
                "resolved missing",
                run(Some("oncall"), t.clone(), good[..2].to_vec(), 60_000),
                Verdict::Fail,
                "no resolved notification",
            ),
            (
                "resolved pending at end",
                run(Some("oncall"), t.clone(), good[..2].to_vec(), 52_000),
                Verdict::Inconclusive,
                "run ended before",
            ),
            (
                "resolved not sent by receiver",
                run(
                    Some("quiet"),
                    t.clone(),
                    vec![note(31_000, "quiet", "firing", "critical")],
                    60_000,
                ),
                Verdict::Pass,
                "",
            ),
            (
                "still firing",
                run(
                    Some("oncall"),
                    timeline(Some(30_000), None),
                    good[..2].to_vec(),
                    60_000,
                ),
                Verdict::Pass,
                "",
            ),
        ];
        for (name, r, verdict, reason) in cases {
            assert_eq!(r.verdict, verdict, "{name}: {r:?}");
            assert!(r.reason.contains(reason), "{name}: {}", r.reason);
            if verdict == Verdict::Fail {
                assert!(!r.reason.is_empty(), "{name}");
            }
        }
    }

    #[test]
    fn without_alertmanager_it_is_inconclusive() {
        let r = judge_at_t0(&expect(None), timeline(Some(1), None), None);
        assert_eq!(r.verdict, Verdict::Inconclusive);
        assert!(r.reason.contains("no Alertmanager ran"), "{}", r.reason);
    }

    #[test]
    fn evidence_names_times_and_receivers() {
        let r = run(
            Some("oncall"),
            timeline(Some(30_000), Some(50_000)),
            vec![
                note(31_200, "oncall", "firing", "critical"),
                note(51_500, "oncall", "resolved", "critical"),
            ],
            60_000,
        );
        assert!(r.client.iter().any(|l| l == "+31.2s firing notification for HighErrorRate{severity=\"critical\"} at receiver \"oncall\""), "{:?}", r.client);
        assert!(r.observed.contains("1.2s after firing"), "{}", r.observed);
        assert!(
            r.observed.contains("1.5s after resolution"),
            "{}",
            r.observed
        );
    }
}
