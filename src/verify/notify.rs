//! `notified` expectations judged from the recorder's deliveries and the
//! alert's ALERTS timeline: did the firing (and resolved) notification reach
//! the expected receiver within its bound? Pure: no I/O.

use std::time::{Duration, SystemTime};

use super::outcome::{AlertTimeline, ExpectationResult, QueryEvidence, Verdict};
use super::queries;
pub use crate::alertmanager::Deliveries;
use crate::alertmanager::Notification;
#[cfg(test)]
use crate::alertmanager::RouteTiming;
use crate::alertmanager::config::RECORDER_RECEIVER;
use crate::plan::{Expectation, NotifiedExpectation};
use crate::timeutil::{human, unix_ms};

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

pub fn judge(
    e: &Expectation,
    n: &NotifiedExpectation,
    t: &AlertTimeline,
    d: Option<&Deliveries>,
    eval: Duration,
    origin: SystemTime,
) -> ExpectationResult {
    let mut r = super::result(e, "notified", n.describe());
    r.queries.push(QueryEvidence {
        promql: queries::alert_states(&n.alert),
        at_ms: d.map_or(0, |d| unix_ms(d.collected_at)),
        start_ms: Some(unix_ms(origin)),
        value: None,
    });
    let Some(d) = d else {
        r.reason = "no Alertmanager ran, so no delivery could be observed (hint: add an [alertmanager] table or pass --alertmanager)".into();
        return r;
    };
    let o = unix_ms(origin);
    let rel = |ms: u64| format!("+{:.1}s", ms.saturating_sub(o) as f64 / 1000.0);
    let hits = matching(n, &d.notifications);
    for h in hits.iter().take(MAX_LINES) {
        r.client.push(format!(
            "{} {} notification for {} at receiver \"{}\"",
            rel(h.at_ms),
            h.status,
            n.selector(),
            h.receiver
        ));
    }
    if hits.len() > MAX_LINES {
        r.client
            .push(format!("… {} more deliveries", hits.len() - MAX_LINES));
    }
    if hits.is_empty() {
        r.client.push(format!(
            "the recorder got {} notification(s), none for {}",
            d.notifications.len(),
            n.selector()
        ));
    }
    let counts = |h: &Hit<'_>| match &n.receiver {
        Some(want) => h.receiver == want,
        None => !(d.user_config && h.receiver == RECORDER_RECEIVER),
    };
    let to = n.receiver.as_ref().map_or_else(
        || "any receiver".to_string(),
        |r| format!("receiver \"{r}\""),
    );

    let Some(fired) = t.firing_at_ms else {
        r.verdict = Verdict::Fail;
        r.reason = format!(
            "{} never fired (ALERTS has no firing sample), so no notification was sent",
            n.alert
        );
        return r;
    };
    let fire_bound = n
        .firing_within
        .unwrap_or(d.timing.group_wait + 2 * eval + SLACK);
    let resolve_bound = n
        .resolved_within
        .unwrap_or(d.timing.group_interval + 2 * eval + SLACK);
    r.expected = expected(n, &to, fire_bound, resolve_bound);
    let first = hits.iter().find(|h| h.status == "firing" && counts(h));
    let Some(first) = first else {
        let catch_all = |h: &&Hit<'_>| d.user_config && h.receiver == RECORDER_RECEIVER;
        let elsewhere: Vec<String> = unique(
            hits.iter()
                .filter(|h| h.status == "firing" && !counts(h) && !catch_all(h))
                .map(|h| h.receiver),
        );
        let seen_by_catch_all = hits.iter().find(|h| h.status == "firing" && catch_all(h));
        r.verdict = Verdict::Fail;
        r.reason = if !elsewhere.is_empty() {
            format!(
                "{} fired at {} but its firing notification went only to {} (hint: check the route's matchers, order and continue)",
                n.selector(),
                rel(fired),
                elsewhere
                    .iter()
                    .map(|r| format!("\"{r}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else if let Some(h) = seen_by_catch_all {
            format!(
                "{} fired at {} and reached Alertmanager (slocheck's catch-all route saw it at {}), but the routing tree delivered it to no receiver with integrations (hint: check the route's matchers and receivers)",
                n.selector(),
                rel(fired),
                rel(h.at_ms)
            )
        } else if fired + ms(fire_bound) > unix_ms(d.collected_at) {
            r.verdict = Verdict::Inconclusive;
            format!(
                "{} fired at {}, and the run ended before the bound of {} elapsed (hint: lengthen the last phase or prometheus.settle)",
                n.selector(),
                rel(fired),
                human(fire_bound)
            )
        } else {
            format!(
                "{} fired at {} but no firing notification reached {to} (hint: is the alert's routing matched? see alertmanager.log in the run directory)",
                n.selector(),
                rel(fired)
            )
        };
        return r;
    };
    let fire_delay = Duration::from_millis(first.at_ms.saturating_sub(fired));
    let mut observed = vec![format!(
        "firing delivered to \"{}\" {} after firing (fired {}, delivered {})",
        first.receiver,
        human(fire_delay),
        rel(fired),
        rel(first.at_ms)
    )];
    let mut failures = Vec::new();
    if fire_delay > fire_bound {
        failures.push(format!(
            "the firing notification arrived {} after the alert fired, over the bound of {}",
            human(fire_delay),
            human(fire_bound)
        ));
    }

    let sends_resolved = d.send_resolved.get(first.receiver).copied().unwrap_or(true);
    let required = n.resolved_within.is_some() || (t.resolved_at_ms.is_some() && sends_resolved);
    let mut inconclusive = None;
    if !required {
        let why = if t.resolved_at_ms.is_none() {
            format!("{} did not resolve during the run", n.alert)
        } else {
            format!(
                "receiver \"{}\" does not send resolved notifications",
                first.receiver
            )
        };
        observed.push(format!("resolved notification not required: {why}"));
    } else if let Some(resolved) = t.resolved_at_ms {
        let bound = resolve_bound;
        let got = hits.iter().find(|h| {
            h.status == "resolved" && h.receiver == first.receiver && h.at_ms >= first.at_ms
        });
        match got {
            Some(h) => {
                let delay = Duration::from_millis(h.at_ms.saturating_sub(resolved));
                observed.push(format!(
                    "resolved delivered {} after resolution (resolved {}, delivered {})",
                    human(delay),
                    rel(resolved),
                    rel(h.at_ms)
                ));
                if delay > bound {
                    failures.push(format!(
                        "the resolved notification arrived {} after the alert resolved, over the bound of {}",
                        human(delay),
                        human(bound)
                    ));
                }
            }
            None if resolved + ms(bound) > unix_ms(d.collected_at) => {
                inconclusive = Some(format!(
                    "{} resolved at {}, and the run ended before the bound of {} for its resolved notification elapsed (hint: lengthen the last phase or prometheus.settle)",
                    n.alert,
                    rel(resolved),
                    human(bound)
                ));
            }
            None => failures.push(format!(
                "{} resolved at {} but no resolved notification reached \"{}\" within {}",
                n.alert,
                rel(resolved),
                first.receiver,
                human(bound)
            )),
        }
    } else {
        failures.push(format!(
            "resolved_within is set but {} was still firing when the run ended",
            n.alert
        ));
    }
    r.observed = observed.join("; ");
    if !failures.is_empty() {
        r.verdict = Verdict::Fail;
        r.reason = failures.join("; ");
    } else if let Some(why) = inconclusive {
        r.reason = why;
    } else {
        r.verdict = Verdict::Pass;
    }
    r
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
    use super::*;
    use crate::alertmanager::payload::{WebhookAlert, WebhookPayload};
    use std::collections::BTreeMap;

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

    fn expect(receiver: Option<&str>) -> (Expectation, NotifiedExpectation) {
        let n = NotifiedExpectation {
            alert: "HighErrorRate".into(),
            receiver: receiver.map(str::to_string),
            labels: vec![("severity".into(), "critical".into())],
            firing_within: None,
            resolved_within: None,
        };
        let e = Expectation {
            id: "n".into(),
            kind: crate::plan::ExpectKind::Notified(n.clone()),
            allow_inconclusive: false,
        };
        (e, n)
    }

    fn run(
        receiver: Option<&str>,
        t: AlertTimeline,
        notes: Vec<Notification>,
        end: u64,
    ) -> ExpectationResult {
        let (e, n) = expect(receiver);
        let d = deliveries(notes, end);
        judge(&e, &n, &t, Some(&d), Duration::from_secs(1), at(0))
    }

    #[test]
    fn verdicts() {
        let good = vec![
            note(31_000, RECORDER_RECEIVER, "firing", "critical"),
            note(31_200, "oncall", "firing", "critical"),
            note(51_500, "oncall", "resolved", "critical"),
        ];
        let t = timeline(Some(30_000), Some(50_000));
        let cases: Vec<(&str, ExpectationResult, Verdict, &str)> = vec![
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
        let (e, n) = expect(None);
        let r = judge(
            &e,
            &n,
            &timeline(Some(1), None),
            None,
            Duration::from_secs(1),
            at(0),
        );
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
