//! What shards and the coordinator say to each other (JSON over HTTP): the
//! run's identity, registration and the start announcement, and a shard's
//! record — per-phase counters and its HDR histograms in hdrhistogram's V2
//! serialization (base64). Pure: encoding, decoding and identity checks.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};

use crate::load::Part;
use crate::load::recorder::{Recorder, SECOND_BUCKETS, SecondAcc};
use crate::load::timer::PacerKind;
use crate::plan::HttpVersion;
use crate::record::{ModelTruth, TransportRecord};

/// Routes of the coordinator.
pub const REGISTER_PATH: &str = "/shards/register";
pub const RECORD_PATH: &str = "/shards/record";
/// Environment variable holding the bearer token of both sides.
pub const TOKEN_ENV: &str = "SLOCHECK_COORDINATOR_TOKEN";

/// Which run a shard belongs to: every shard and the coordinator must agree
/// on all of it, or the merged record would mix different schedules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// SHA-256 (hex) of the scenario file's bytes.
    pub scenario_digest: String,
    /// The fault plan's seed (after `--seed`).
    pub seed: u64,
    pub shards: u64,
}

impl Identity {
    pub fn new(scenario_bytes: &[u8], seed: u64, shards: u64) -> Identity {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, scenario_bytes);
        let scenario_digest = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        Identity {
            scenario_digest,
            seed,
            shards,
        }
    }

    /// Why a shard of identity `other` (claiming `index`) does not belong to
    /// this run, in one line; None when it does.
    pub fn mismatch(&self, other: &Identity, index: u64) -> Option<String> {
        if other.scenario_digest != self.scenario_digest {
            let short = |d: &str| d.chars().take(12).collect::<String>();
            return Some(format!(
                "shard {index} runs another scenario (digest {}…, the coordinator's is {}…)",
                short(&other.scenario_digest),
                short(&self.scenario_digest)
            ));
        }
        if other.seed != self.seed {
            return Some(format!(
                "shard {index} uses seed {}, the coordinator seed {}",
                other.seed, self.seed
            ));
        }
        if other.shards != self.shards {
            return Some(format!(
                "shard {index} is one of {} shards, the coordinator expects {}",
                other.shards, self.shards
            ));
        }
        if index >= self.shards {
            return Some(format!(
                "shard index {index} is not below the shard count {}",
                self.shards
            ));
        }
        None
    }
}

/// `POST /shards/register`: sent again until the start is announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    pub identity: Identity,
    pub index: u64,
    /// Random per process: a second process claiming the same index is a
    /// duplicate, the same process asking again is not.
    pub instance: u64,
}

/// The answer: the start (unix ms) once all shards registered, else None
/// (ask again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    pub start_unix_ms: Option<u64>,
    pub registered: u64,
    pub shards: u64,
}

/// A refusal's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub error: String,
}

/// `POST /shards/record`: what one shard measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub identity: Identity,
    pub index: u64,
    pub instance: u64,
    pub start_unix_ms: u64,
    pub reached: usize,
    pub cancelled_at_unix_ms: Option<u64>,
    pub threads: usize,
    /// `timerfd` or `sleep_until`.
    pub pacer: String,
    pub transport: TransportWire,
    pub phases: Vec<PhaseWire>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportWire {
    /// `1.1` or `2`.
    pub http_version: String,
    pub tls: bool,
    pub insecure: bool,
    pub keep_alive: bool,
    pub connections_opened: u64,
    pub addresses: Vec<(std::net::SocketAddr, u64)>,
}

/// One phase's recorder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseWire {
    pub scheduled: u64,
    pub sent: u64,
    pub dropped: u64,
    pub connection_errors: u64,
    pub timeouts: u64,
    pub injected_errors: u64,
    pub injected_delays: u64,
    pub faults_requested: u64,
    pub faults_acknowledged: u64,
    /// Non-zero counts by status code.
    pub statuses: Vec<(u16, u64)>,
    /// V2-serialized HDR histograms, base64.
    pub latency_corrected: String,
    pub latency_service: String,
    pub scheduler_lag: String,
    pub seconds: Vec<SecondWire>,
    pub model: ModelTruth,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondWire {
    pub sent: u64,
    pub ok: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub failed: u64,
    /// The coarse per-second latency buckets (see `load::recorder`).
    pub buckets: Vec<u32>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WireError {
    #[error("histogram {what} of phase {phase}: {msg}")]
    Histogram {
        what: &'static str,
        phase: usize,
        msg: String,
    },
    #[error("phase {phase}: {msg}")]
    Phase { phase: usize, msg: String },
}

fn encode_hist(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    // Serializing into a Vec cannot fail for the crate-wide bounds.
    let _ = V2Serializer::new().serialize(h, &mut buf);
    B64.encode(buf)
}

fn decode_hist(s: &str, what: &'static str, phase: usize) -> Result<Histogram<u64>, WireError> {
    let err = |msg: String| WireError::Histogram { what, phase, msg };
    let bytes = B64.decode(s).map_err(|e| err(e.to_string()))?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| err(format!("{e:?}")))?;
    // Merging needs the crate-wide bounds: re-add into a fresh histogram.
    let mut out = crate::record::new_histogram();
    out.add(&h).map_err(|e| err(format!("{e:?}")))?;
    Ok(out)
}

impl PhaseWire {
    pub fn of(r: &Recorder) -> PhaseWire {
        PhaseWire {
            scheduled: r.scheduled,
            sent: r.sent,
            dropped: r.dropped,
            connection_errors: r.connection_errors,
            timeouts: r.timeouts,
            injected_errors: r.injected_errors,
            injected_delays: r.injected_delays,
            faults_requested: r.faults_requested,
            faults_acknowledged: r.faults_acknowledged,
            statuses: (r.statuses.iter().enumerate())
                .filter(|(_, n)| **n > 0)
                .map(|(code, n)| (code as u16, *n))
                .collect(),
            latency_corrected: encode_hist(&r.corrected),
            latency_service: encode_hist(&r.service),
            scheduler_lag: encode_hist(&r.lag),
            seconds: (r.seconds.iter())
                .map(|s| SecondWire {
                    sent: s.sent,
                    ok: s.ok,
                    client_errors: s.client_errors,
                    server_errors: s.server_errors,
                    failed: s.failed,
                    buckets: s.buckets.to_vec(),
                })
                .collect(),
            model: r.model.clone(),
        }
    }

    pub fn to_recorder(&self, phase: usize) -> Result<Recorder, WireError> {
        let mut r = Recorder::new(std::time::Duration::ZERO);
        r.scheduled = self.scheduled;
        r.sent = self.sent;
        r.dropped = self.dropped;
        r.connection_errors = self.connection_errors;
        r.timeouts = self.timeouts;
        r.injected_errors = self.injected_errors;
        r.injected_delays = self.injected_delays;
        r.faults_requested = self.faults_requested;
        r.faults_acknowledged = self.faults_acknowledged;
        for &(code, n) in &self.statuses {
            let slot = r
                .statuses
                .get_mut(usize::from(code))
                .ok_or(WireError::Phase {
                    phase,
                    msg: format!("status {code} out of range"),
                })?;
            *slot = n;
        }
        r.corrected = decode_hist(&self.latency_corrected, "latency_corrected", phase)?;
        r.service = decode_hist(&self.latency_service, "latency_service", phase)?;
        r.lag = decode_hist(&self.scheduler_lag, "scheduler_lag", phase)?;
        r.seconds = (self.seconds.iter())
            .map(|s| {
                let buckets: [u32; SECOND_BUCKETS] =
                    s.buckets
                        .as_slice()
                        .try_into()
                        .map_err(|_| WireError::Phase {
                            phase,
                            msg: format!(
                                "{} per-second buckets, expected {SECOND_BUCKETS}",
                                s.buckets.len()
                            ),
                        })?;
                Ok(SecondAcc {
                    sent: s.sent,
                    ok: s.ok,
                    client_errors: s.client_errors,
                    server_errors: s.server_errors,
                    failed: s.failed,
                    buckets,
                })
            })
            .collect::<Result<_, WireError>>()?;
        if r.seconds.is_empty() {
            r.seconds.push(SecondAcc::default());
        }
        r.model = self.model.clone();
        Ok(r)
    }
}

fn unix_ms_to_time(ms: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)
}

impl ShardRecord {
    /// The record of shard `index` for what its threads measured.
    pub fn of(
        identity: Identity,
        index: u64,
        instance: u64,
        start_unix_ms: u64,
        part: &Part,
    ) -> ShardRecord {
        let t = &part.transport;
        ShardRecord {
            identity,
            index,
            instance,
            start_unix_ms,
            reached: part.reached,
            cancelled_at_unix_ms: part.cancelled_at.map(crate::timeutil::unix_ms),
            threads: part.threads,
            pacer: part.pacer.as_str().to_string(),
            transport: TransportWire {
                http_version: t.http_version.as_str().to_string(),
                tls: t.tls,
                insecure: t.insecure,
                keep_alive: t.keep_alive,
                connections_opened: t.connections_opened,
                addresses: t.addresses.clone(),
            },
            phases: part.recorders.iter().map(PhaseWire::of).collect(),
        }
    }

    /// Back to the engine's part, ready to merge with the other shards'.
    pub fn to_part(&self) -> Result<Part, WireError> {
        let pacer = if self.pacer == PacerKind::Timerfd.as_str() {
            PacerKind::Timerfd
        } else {
            PacerKind::SleepUntil
        };
        let t = &self.transport;
        Ok(Part {
            recorders: (self.phases.iter().enumerate())
                .map(|(i, p)| p.to_recorder(i))
                .collect::<Result<_, _>>()?,
            pacer,
            transport: TransportRecord {
                http_version: if t.http_version == HttpVersion::Http2.as_str() {
                    HttpVersion::Http2
                } else {
                    HttpVersion::Http1
                },
                tls: t.tls,
                insecure: t.insecure,
                keep_alive: t.keep_alive,
                connections_opened: t.connections_opened,
                addresses: t.addresses.clone(),
            },
            reached: self.reached.min(self.phases.len()),
            cancelled_at: self.cancelled_at_unix_ms.map(unix_ms_to_time),
            threads: self.threads,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::recorder::Outcome;
    use std::time::{Duration, UNIX_EPOCH};

    fn recorder(errors: u64) -> Recorder {
        let ms = Duration::from_millis;
        let mut r = Recorder::new(Duration::from_secs(3));
        for i in 0..50 {
            let error = i < errors;
            r.on_send(ms(i * 40), error, i == 7);
            let status = if error { 503 } else { 200 };
            r.on_done(
                ms(i * 40 + 5),
                Outcome::Response(status),
                ms(5 + i),
                ms(4 + i),
            );
            r.on_lag(Duration::from_micros(i * 3));
        }
        r.on_send(ms(2100), false, false);
        r.on_done(ms(2900), Outcome::Timeout, ms(800), ms(800));
        r.on_drop();
        r.on_fault_acknowledged();
        r
    }

    fn part() -> Part {
        Part {
            recorders: vec![recorder(0), recorder(10)],
            pacer: PacerKind::Timerfd,
            transport: TransportRecord {
                http_version: HttpVersion::Http2,
                tls: true,
                insecure: false,
                keep_alive: true,
                connections_opened: 3,
                addresses: vec![("127.0.0.1:8000".parse().unwrap(), 101)],
            },
            reached: 2,
            cancelled_at: Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)),
            threads: 2,
        }
    }

    /// Through JSON and back: the same record, histogram for histogram.
    #[test]
    fn record_round_trip_keeps_everything() {
        let id = Identity::new(b"name = \"x\"", 42, 4);
        let rec = ShardRecord::of(id, 1, 77, 1_700_000_000_000, &part());
        let json = serde_json::to_string(&rec).unwrap();
        let back: ShardRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rec);
        let p = back.to_part().unwrap();
        let orig = part();
        assert_eq!(p.reached, 2);
        assert_eq!(p.threads, 2);
        assert_eq!(p.pacer, PacerKind::Timerfd);
        assert_eq!(p.transport, orig.transport);
        assert_eq!(p.cancelled_at, orig.cancelled_at);
        for (a, b) in p.recorders.iter().zip(&orig.recorders) {
            assert_eq!(
                (a.sent, a.scheduled, a.dropped),
                (b.sent, b.scheduled, b.dropped)
            );
            assert_eq!(
                (a.injected_errors, a.injected_delays),
                (b.injected_errors, b.injected_delays)
            );
            assert_eq!(a.faults_acknowledged, b.faults_acknowledged);
            assert_eq!(a.timeouts, b.timeouts);
            assert_eq!(a.statuses[..], b.statuses[..]);
            assert_eq!(a.corrected, b.corrected);
            assert_eq!(a.service, b.service);
            assert_eq!(a.lag, b.lag);
            assert_eq!(a.seconds.len(), b.seconds.len());
            for (x, y) in a.seconds.iter().zip(&b.seconds) {
                assert_eq!(
                    (x.sent, x.ok, x.failed, x.buckets),
                    (y.sent, y.ok, y.failed, y.buckets)
                );
            }
        }
        // Merged after the trip as before it.
        let start = UNIX_EPOCH;
        let mut a = p.recorders[0].clone();
        a.merge(&p.recorders[1]);
        let r = a.into_record("p".into(), start, start + Duration::from_secs(3));
        assert_eq!(r.sent, 102);
        assert_eq!(r.injected_errors, 10);
        assert_eq!(r.statuses, vec![(200, 90), (503, 10)]);
        assert_eq!(r.latency_corrected.len(), 100);
    }

    #[test]
    fn damaged_records_are_refused_not_panicked_on() {
        let id = Identity::new(b"x", 1, 2);
        let mut rec = ShardRecord::of(id, 0, 1, 0, &part());
        rec.phases[1].latency_service = "not base64!".into();
        let e = rec.to_part().unwrap_err();
        assert!(e.to_string().contains("latency_service of phase 1"), "{e}");
        rec.phases[1].latency_service = B64.encode(b"\x01\x02");
        assert!(rec.to_part().is_err());
        let mut rec = ShardRecord::of(Identity::new(b"x", 1, 2), 0, 1, 0, &part());
        rec.phases[0].seconds[0].buckets.pop();
        assert!(rec.to_part().unwrap_err().to_string().contains("buckets"));
        rec.phases[0].seconds[0].buckets.push(0);
        rec.phases[0].statuses.push((999, 1));
        assert!(rec.to_part().unwrap_err().to_string().contains("999"));
    }

    #[test]
    fn identity_checks_name_what_differs() {
        let me = Identity::new(b"scenario A", 42, 4);
        assert_eq!(me.mismatch(&me.clone(), 3), None);
        assert_eq!(
            me,
            Identity::new(b"scenario A", 42, 4),
            "the digest is stable"
        );
        let other = Identity::new(b"scenario B", 42, 4);
        assert!(me.mismatch(&other, 1).unwrap().contains("another scenario"));
        let seed = Identity {
            seed: 7,
            ..me.clone()
        };
        assert!(me.mismatch(&seed, 1).unwrap().contains("seed 7"));
        let count = Identity {
            shards: 2,
            ..me.clone()
        };
        assert!(me.mismatch(&count, 1).unwrap().contains("one of 2 shards"));
        assert!(me.mismatch(&me.clone(), 4).unwrap().contains("not below"));
        assert_eq!(me.scenario_digest.len(), 64);
    }
}
