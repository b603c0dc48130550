//! Per-worker measurements of one phase: latency and scheduler-lag
//! histograms, status and error counters, injected-fault ground truth and a
//! per-second series. Recording
//! never locks, allocates or formats; recorders are merged after the run.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::record::{ModelTruth, PhaseRecord, SecondStats, new_histogram};

/// Quarter-octave buckets from 1 µs: 4 per power of two up to 2^27 µs (> 60 s).
pub(crate) const SECOND_BUCKETS: usize = 4 * 28;

/// One second of a phase: counters and a coarse latency histogram (≤ 19 %
/// bucket width) that is enough for a per-second P90 and merges by addition.
#[derive(Debug, Clone)]
pub struct SecondAcc {
    pub sent: u64,
    pub ok: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub failed: u64,
    pub(crate) buckets: [u32; SECOND_BUCKETS],
}

impl Default for SecondAcc {
    fn default() -> Self {
        Self {
            sent: 0,
            ok: 0,
            client_errors: 0,
            server_errors: 0,
            failed: 0,
            buckets: [0; SECOND_BUCKETS],
        }
    }
}

fn bucket_of(us: u64) -> usize {
    let us = us.max(1);
    let octave = 63 - us.leading_zeros() as usize;
    // Two bits below the leading one select the quarter of the octave.
    let quarter = if octave >= 2 {
        ((us >> (octave - 2)) & 3) as usize
    } else {
        ((us << (2 - octave)) & 3) as usize
    };
    (octave * 4 + quarter).min(SECOND_BUCKETS - 1)
}

/// Upper edge of a bucket, µs: what a per-second P90 reports.
fn bucket_upper(i: usize) -> u64 {
    let (octave, quarter) = (i / 4, (i % 4) as u64);
    let base = 1u64 << octave;
    base + (base * (quarter + 1)) / 4
}

impl SecondAcc {
    fn merge(&mut self, o: &SecondAcc) {
        self.sent += o.sent;
        self.ok += o.ok;
        self.client_errors += o.client_errors;
        self.server_errors += o.server_errors;
        self.failed += o.failed;
        for (a, b) in self.buckets.iter_mut().zip(o.buckets.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    /// P90 of this second's corrected latencies, µs (0 without responses).
    pub fn p90_us(&self) -> u64 {
        let total: u64 = self.buckets.iter().map(|&c| u64::from(c)).sum();
        if total == 0 {
            return 0;
        }
        let rank = (total * 9).div_ceil(10);
        let mut seen = 0;
        for (i, &c) in self.buckets.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return bucket_upper(i);
            }
        }
        bucket_upper(SECOND_BUCKETS - 1)
    }

    fn to_stats(&self) -> SecondStats {
        SecondStats {
            sent: self.sent,
            ok: self.ok,
            client_errors: self.client_errors,
            server_errors: self.server_errors,
            failed: self.failed,
            p90_us: self.p90_us(),
        }
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Response(u16),
    ConnectionError,
    Timeout,
}

/// Measurements of one phase by one worker. All storage is sized when the
/// phase starts (one slot per second of the phase), so memory does not grow
/// with the number of requests.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub scheduled: u64,
    pub sent: u64,
    pub dropped: u64,
    pub connection_errors: u64,
    pub timeouts: u64,
    pub injected_errors: u64,
    pub injected_delays: u64,
    /// Requests that carried a fault header / whose response acknowledged it.
    pub faults_requested: u64,
    pub faults_acknowledged: u64,
    pub(crate) statuses: Box<[u64; 600]>,
    pub(crate) corrected: Histogram<u64>,
    pub(crate) service: Histogram<u64>,
    /// Open loop: actual send − intended send, µs (the generator's own error).
    pub(crate) lag: Histogram<u64>,
    pub(crate) seconds: Vec<SecondAcc>,
    /// With `[model]` only: one small sample per answered prediction (the
    /// exact expected accuracy of any window needs each one).
    pub model: ModelTruth,
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

impl Recorder {
    pub fn new(phase_duration: Duration) -> Self {
        // One extra slot for responses that complete after the phase end.
        let secs = phase_duration.as_secs() as usize + 2;
        Self {
            scheduled: 0,
            sent: 0,
            dropped: 0,
            connection_errors: 0,
            timeouts: 0,
            injected_errors: 0,
            injected_delays: 0,
            faults_requested: 0,
            faults_acknowledged: 0,
            statuses: Box::new([0; 600]),
            corrected: new_histogram(),
            service: new_histogram(),
            lag: new_histogram(),
            seconds: vec![SecondAcc::default(); secs],
            model: ModelTruth::default(),
        }
    }

    fn second(&mut self, since_start: Duration) -> &mut SecondAcc {
        let last = self.seconds.len() - 1;
        let i = (since_start.as_secs() as usize).min(last);
        &mut self.seconds[i]
    }

    /// A request left (or is about to leave) at `since_start` into the phase.
    pub fn on_send(&mut self, since_start: Duration, error: bool, delay: bool) {
        self.sent += 1;
        self.injected_errors += u64::from(error);
        self.injected_delays += u64::from(delay);
        self.faults_requested += u64::from(error || delay);
        self.second(since_start).sent += 1;
    }

    /// The response to a fault request carried the acknowledgement header.
    pub fn on_fault_acknowledged(&mut self) {
        self.faults_acknowledged += 1;
    }

    /// How late an open-loop send left against its schedule.
    pub fn on_lag(&mut self, lag: Duration) {
        // 0 µs is a real value here (on time), unlike for latencies.
        self.lag.saturating_record(micros(lag));
    }

    pub fn on_drop(&mut self) {
        self.dropped += 1;
    }

    /// A request ended at `since_start` into the phase; latencies are from
    /// the intended and from the actual send time.
    pub fn on_done(
        &mut self,
        since_start: Duration,
        outcome: Outcome,
        corrected: Duration,
        service: Duration,
    ) {
        match outcome {
            Outcome::Response(status) => {
                let s = self.second(since_start);
                match status {
                    200..=399 => s.ok += 1,
                    400..=499 => s.client_errors += 1,
                    500..=599 => s.server_errors += 1,
                    _ => {}
                }
                let c = micros(corrected);
                s.buckets[bucket_of(c)] = s.buckets[bucket_of(c)].saturating_add(1);
                if let Some(slot) = self.statuses.get_mut(usize::from(status)) {
                    *slot += 1;
                }
                self.corrected.saturating_record(c.max(1));
                self.service.saturating_record(micros(service).max(1));
            }
            Outcome::ConnectionError => {
                self.connection_errors += 1;
                self.second(since_start).failed += 1;
            }
            Outcome::Timeout => {
                self.timeouts += 1;
                self.second(since_start).failed += 1;
            }
        }
    }

    /// Responses received so far (any status).
    pub fn responses(&self) -> u64 {
        self.statuses.iter().sum()
    }

    pub fn server_errors(&self) -> u64 {
        self.statuses[500..].iter().sum()
    }

    pub fn ok(&self) -> u64 {
        self.statuses[200..400].iter().sum()
    }

    /// Corrected P90 of the given second, µs (for the live display).
    pub fn second_p90_us(&self, since_start: Duration) -> u64 {
        let i = (since_start.as_secs() as usize).min(self.seconds.len() - 1);
        self.seconds[i].p90_us()
    }

    pub fn merge(&mut self, o: &Recorder) {
        self.scheduled += o.scheduled;
        self.sent += o.sent;
        self.dropped += o.dropped;
        self.connection_errors += o.connection_errors;
        self.timeouts += o.timeouts;
        self.injected_errors += o.injected_errors;
        self.injected_delays += o.injected_delays;
        self.faults_requested += o.faults_requested;
        self.faults_acknowledged += o.faults_acknowledged;
        for (a, b) in self.statuses.iter_mut().zip(o.statuses.iter()) {
            *a += b;
        }
        // Same bounds everywhere: adding cannot fail.
        let _ = self.corrected.add(&o.corrected);
        let _ = self.service.add(&o.service);
        let _ = self.lag.add(&o.lag);
        if self.seconds.len() < o.seconds.len() {
            self.seconds.resize(o.seconds.len(), SecondAcc::default());
        }
        for (a, b) in self.seconds.iter_mut().zip(o.seconds.iter()) {
            a.merge(b);
        }
        self.model.merge(&o.model);
    }

    /// The phase's record over `[start, end]`; the per-second series covers
    /// that span, plus one slot of late completions when it holds any.
    pub fn into_record(
        self,
        name: String,
        start: std::time::SystemTime,
        end: std::time::SystemTime,
    ) -> PhaseRecord {
        let mut status_classes = [0u64; 5];
        let mut statuses = Vec::new();
        for (code, &count) in self.statuses.iter().enumerate() {
            if count > 0 {
                if (100..600).contains(&code) {
                    status_classes[code / 100 - 1] += count;
                }
                statuses.push((code as u16, count));
            }
        }
        let secs = end
            .duration_since(start)
            .map(|d| d.as_secs_f64().ceil() as usize)
            .unwrap_or(0);
        // Keep the slot of late completions only when it holds something.
        let mut per_second: Vec<SecondStats> =
            self.seconds.iter().map(SecondAcc::to_stats).collect();
        let keep = per_second
            .iter()
            .rposition(|s| *s != SecondStats::default())
            .map_or(0, |i| i + 1)
            .max(secs.min(per_second.len()));
        per_second.truncate(keep);
        PhaseRecord {
            name,
            start,
            end,
            scheduled: self.scheduled,
            planned: None,
            sent: self.sent,
            dropped: self.dropped,
            status_classes,
            statuses,
            connection_errors: self.connection_errors,
            timeouts: self.timeouts,
            injected_errors: self.injected_errors,
            injected_delays: self.injected_delays,
            faults_requested: self.faults_requested,
            faults_acknowledged: self.faults_acknowledged,
            latency_corrected: self.corrected,
            latency_service: self.service,
            scheduler_lag: self.lag,
            per_second,
            model: self.model,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut prev = 0;
        for us in [1u64, 2, 3, 5, 7, 100, 119, 120, 1000, 65_536, 60_000_000] {
            let b = bucket_of(us);
            assert!(b >= prev);
            prev = b;
            let upper = bucket_upper(b);
            assert!(
                upper >= us && (upper as f64) <= us as f64 * 1.26 + 1.0,
                "{us} -> {upper}"
            );
        }
    }

    #[test]
    fn merge_and_record() {
        let ms = Duration::from_millis;
        let mut a = Recorder::new(Duration::from_secs(2));
        let mut b = Recorder::new(Duration::from_secs(2));
        a.on_send(ms(10), true, false);
        a.on_done(ms(20), Outcome::Response(503), ms(10), ms(5));
        a.on_fault_acknowledged();
        for i in 0..9 {
            b.on_send(ms(1100 + i), false, i == 0);
            b.on_done(ms(1200 + i), Outcome::Response(200), ms(10), ms(10));
        }
        b.on_send(ms(1500), false, false);
        b.on_done(ms(1600), Outcome::Response(200), ms(900), ms(900));
        b.on_send(ms(1700), false, false);
        b.on_done(ms(1900), Outcome::Timeout, ms(200), ms(200));
        b.on_drop();
        a.on_lag(ms(0));
        b.on_lag(Duration::from_micros(40));
        b.on_lag(Duration::from_micros(900));
        a.merge(&b);
        let start = SystemTime::UNIX_EPOCH;
        let r = a.into_record("p".into(), start, start + Duration::from_secs(2));
        assert_eq!(r.sent, 12);
        assert_eq!(r.dropped, 1);
        assert_eq!(r.timeouts, 1);
        assert_eq!((r.injected_errors, r.injected_delays), (1, 1));
        assert_eq!((r.faults_requested, r.faults_acknowledged), (2, 1));
        assert_eq!(r.status_classes, [0, 10, 0, 0, 1]);
        assert_eq!(r.statuses, vec![(200, 10), (503, 1)]);
        assert_eq!(r.per_second.len(), 2);
        assert_eq!(r.per_second[1].sent, 11);
        assert_eq!(r.per_second[1].failed, 1);
        // 9 of 10 at 10 ms: the P90 is the 10 ms bucket, not the 900 ms outlier.
        assert!(
            (10_000..12_000).contains(&r.per_second[1].p90_us),
            "{}",
            r.per_second[1].p90_us
        );
        assert_eq!(r.latency_corrected.len(), 11);
        assert_eq!(r.scheduler_lag.len(), 3);
        assert_eq!(r.scheduler_lag.min(), 0);
        assert!(r.scheduler_lag.max().abs_diff(900) <= 1);
    }
}
