//! Seeded per-request fault plan: which request of a phase is asked to fail
//! (status fault) and/or to be slow (latency fault), and the header that asks
//! (encoded by `crate::fault_protocol`, the wire format's one owner).
//!
//! Selection is stratified, not binomial: the request stream (shifted by a
//! seeded offset) is cut into consecutive periods of `1/ratio` requests
//! (integer boundaries `floor(j/ratio)`), and exactly one request of each
//! period, at a seeded uniformly random position, is selected. Any run of `m`
//! consecutive requests thus holds `m·ratio` selected ones within ±2, so the
//! injected ratio of a phase is the configured one to within two requests,
//! while positions are random (no fixed stride that could line up with body
//! cycling or with the other fault). The error and latency faults use
//! independent keys. Same seed and phase, same selection; another seed,
//! another one. Delays of random distributions are sampled from a ChaCha
//! stream positioned at the request index, so a request's fault never depends
//! on which worker sends it or when.

use std::collections::HashMap;
use std::time::Duration;

use http::HeaderValue;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::fault_protocol::Fault;
use crate::plan::{DelayDist, FaultSpec};

/// Bound on cached header values for sampled delays (one per distinct ms).
const MAX_CACHED_DELAYS: usize = 4096;

/// What the plan asks of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub error: bool,
    pub delay: Option<Duration>,
    /// The `x-slocheck-fault` value, when any fault applies.
    pub header: Option<HeaderValue>,
}

/// Fault plan of one phase. Cheap to clone: each worker owns one.
#[derive(Debug, Clone)]
pub struct PhaseFaults {
    error: Option<(Selector, u16)>,
    latency: Option<(Selector, DelayDist)>,
    rng: ChaCha8Rng,
    /// Header values for faults with a fixed text (status only, fixed delay).
    status_only: Option<HeaderValue>,
    fixed_delay: Option<HeaderValue>,
    fixed_delay_status: Option<HeaderValue>,
    /// Sampled delays are whole milliseconds, so values repeat: cache them.
    sampled: HashMap<(u64, bool), HeaderValue>,
}

/// A 64-bit mix (splitmix64's finaliser): per-period randomness without
/// keeping any state, so decisions are order independent.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One fault's selection rule: ratio, seeded offset and key.
#[derive(Debug, Clone, Copy)]
struct Selector {
    ratio: f64,
    offset: u64,
    key: u64,
}

impl Selector {
    /// First request index of period `j`.
    fn period_start(&self, j: u64) -> u64 {
        (j as f64 / self.ratio).floor() as u64
    }

    fn selected(&self, n: u64) -> bool {
        if self.ratio <= 0.0 {
            return false;
        }
        if self.ratio >= 1.0 {
            return true;
        }
        let k = n.wrapping_add(self.offset);
        // The period holding k: floor(k·ratio), corrected for float rounding.
        let mut j = (k as f64 * self.ratio).floor() as u64;
        while j > 0 && self.period_start(j) > k {
            j -= 1;
        }
        while self.period_start(j + 1) <= k {
            j += 1;
        }
        let (lo, hi) = (self.period_start(j), self.period_start(j + 1));
        let len = hi.saturating_sub(lo).max(1);
        lo + mix(self.key ^ j) % len == k
    }
}

/// Whole milliseconds: the header's unit.
fn whole_ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// The header value through the protocol's one encoder.
fn header_text(delay_ms: Option<u64>, status: Option<u16>) -> HeaderValue {
    let fault = Fault {
        status,
        delay: delay_ms.map(Duration::from_millis),
    };
    fault
        .header_value()
        .unwrap_or_else(|| HeaderValue::from_static(""))
}

impl PhaseFaults {
    pub fn new(seed: u64, phase_index: usize, spec: &FaultSpec) -> Self {
        let mut seed_bytes = [0u8; 32];
        seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
        seed_bytes[8..16].copy_from_slice(&(phase_index as u64).to_le_bytes());
        seed_bytes[16..].copy_from_slice(b"slocheck-faults!");
        let mut rng = ChaCha8Rng::from_seed(seed_bytes);
        // Offsets below 2^32 keep `n + offset` exact in an f64.
        let mut draw = |ratio: f64| Selector {
            ratio,
            offset: rng.next_u64() >> 32,
            key: rng.next_u64(),
        };
        let error = spec.error.map(|e| (draw(e.ratio), e.status));
        let latency = spec.latency.map(|l| (draw(l.ratio), l.delay));
        // Sampling streams start well past the words used for the offsets.
        rng.set_stream(1);

        let status = error.map(|e| e.1);
        let fixed_ms = match latency.map(|l| l.1) {
            Some(DelayDist::Fixed(d)) => Some(whole_ms(d)),
            _ => None,
        };
        Self {
            error,
            latency,
            rng,
            status_only: status.map(|s| header_text(None, Some(s))),
            fixed_delay: fixed_ms.map(|d| header_text(Some(d), None)),
            fixed_delay_status: fixed_ms
                .zip(status)
                .map(|(d, s)| header_text(Some(d), Some(s))),
            sampled: HashMap::new(),
        }
    }

    /// True when the phase injects nothing (the fast path skips the header).
    pub fn is_empty(&self) -> bool {
        self.error.is_none() && self.latency.is_none()
    }

    /// The decision for request `n` of the phase (deterministic in `n`).
    pub fn decide(&mut self, n: u64) -> Decision {
        let error = self.error.is_some_and(|(sel, _)| sel.selected(n));
        let dist = self
            .latency
            .and_then(|(sel, dist)| sel.selected(n).then_some(dist));
        let Some(dist) = dist else {
            let header = if error {
                self.status_only.clone()
            } else {
                None
            };
            return Decision {
                error,
                delay: None,
                header,
            };
        };
        if let DelayDist::Fixed(d) = dist {
            let header = if error {
                self.fixed_delay_status.clone()
            } else {
                self.fixed_delay.clone()
            };
            return Decision {
                error,
                delay: Some(Duration::from_millis(whole_ms(d))),
                header,
            };
        }
        let ms = self.sample_ms(n, dist);
        let status = if error { self.error.map(|e| e.1) } else { None };
        let header = match self.sampled.get(&(ms, error)) {
            Some(h) => h.clone(),
            None => {
                let h = header_text(Some(ms), status);
                if self.sampled.len() < MAX_CACHED_DELAYS {
                    self.sampled.insert((ms, error), h.clone());
                }
                h
            }
        };
        Decision {
            error,
            delay: Some(Duration::from_millis(ms)),
            header: Some(header),
        }
    }

    fn uniform01(&mut self, n: u64) -> f64 {
        // Two 32-bit words per request: the stream position is the index.
        self.rng.set_word_pos(u128::from(n) * 2);
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn sample_ms(&mut self, n: u64, dist: DelayDist) -> u64 {
        match dist {
            DelayDist::Fixed(d) => whole_ms(d),
            DelayDist::Uniform { min, max } => {
                let (lo, hi) = (whole_ms(min), whole_ms(max).max(whole_ms(min)));
                let u = self.uniform01(n);
                lo + ((hi - lo + 1) as f64 * u).floor().min((hi - lo) as f64) as u64
            }
            DelayDist::Exponential { mean, max } => {
                let u = self.uniform01(n);
                let x = -(1.0 - u).ln() * mean.as_secs_f64() * 1000.0;
                (x.round() as u64).min(whole_ms(max))
            }
        }
    }
}

/// Which requests of a phase carry drifted features (`faults.drift`): the
/// same stratified, seeded selection as the status and latency faults, from
/// a stream of its own, so adding drift never moves the other faults.
#[derive(Debug, Clone, Copy)]
pub struct DriftSelection(Selector);

impl DriftSelection {
    pub fn new(seed: u64, phase_index: usize, fraction: f64) -> Self {
        let mut seed_bytes = [0u8; 32];
        seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
        seed_bytes[8..16].copy_from_slice(&(phase_index as u64).to_le_bytes());
        seed_bytes[16..].copy_from_slice(b"slocheck-drift!!");
        let mut rng = ChaCha8Rng::from_seed(seed_bytes);
        DriftSelection(Selector {
            ratio: fraction,
            offset: rng.next_u64() >> 32,
            key: rng.next_u64(),
        })
    }

    /// Whether request `n` of the phase is drifted (deterministic in `n`).
    pub fn selected(&self, n: u64) -> bool {
        self.0.selected(n)
    }
}

#[cfg(test)]
mod drift_tests {
    use super::DriftSelection;

    #[test]
    fn drift_fraction_is_exact_and_seeded() {
        let d = DriftSelection::new(42, 1, 0.6);
        let picked: Vec<bool> = (0..5000).map(|n| d.selected(n)).collect();
        let count = picked.iter().filter(|x| **x).count() as f64;
        assert!((count - 3000.0).abs() <= 2.0, "{count}");
        let other: Vec<bool> = (0..5000)
            .map(|n| DriftSelection::new(43, 1, 0.6).selected(n))
            .collect();
        assert_ne!(picked, other);
        assert!((0..100).all(|n| DriftSelection::new(1, 0, 1.0).selected(n)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{ErrorFault, LatencyFault};

    fn spec(err: f64, lat: f64, delay: DelayDist) -> FaultSpec {
        FaultSpec {
            error: (err > 0.0).then_some(ErrorFault {
                ratio: err,
                status: 503,
            }),
            latency: (lat > 0.0).then_some(LatencyFault { ratio: lat, delay }),
        }
    }

    fn fixed(ms: u64) -> DelayDist {
        DelayDist::Fixed(Duration::from_millis(ms))
    }

    fn pattern(seed: u64, phase: usize, s: &FaultSpec, n: u64) -> Vec<Decision> {
        let mut f = PhaseFaults::new(seed, phase, s);
        (0..n).map(|i| f.decide(i)).collect()
    }

    #[test]
    fn ratios_are_exact_over_any_window() {
        for ratio in [0.01, 0.05, 0.2, 0.333, 0.5, 0.97] {
            let s = spec(ratio, ratio / 2.0, fixed(300));
            let d = pattern(42, 1, &s, 10_000);
            for (start, len) in [(0usize, 10_000usize), (17, 1000), (5000, 333)] {
                let w = &d[start..start + len];
                let errs = w.iter().filter(|x| x.error).count() as f64;
                let delays = w.iter().filter(|x| x.delay.is_some()).count() as f64;
                assert!(
                    (errs - len as f64 * ratio).abs() <= 1.0,
                    "ratio {ratio}: {errs} of {len}"
                );
                assert!((delays - len as f64 * ratio / 2.0).abs() <= 1.0);
            }
        }
    }

    #[test]
    fn the_two_faults_are_independent() {
        // 20 % errors and 10 % delays: about 2 % of requests get both.
        let d = pattern(42, 1, &spec(0.2, 0.1, fixed(20)), 20_000);
        let both = d.iter().filter(|x| x.error && x.delay.is_some()).count();
        assert!((250..550).contains(&both), "both faults on {both} of 20000");
        // No fixed stride: gaps between errors vary.
        let idx: Vec<usize> = d
            .iter()
            .enumerate()
            .filter(|(_, x)| x.error)
            .map(|(i, _)| i)
            .collect();
        let gaps: std::collections::HashSet<usize> = idx.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.len() > 5, "{gaps:?}");
    }

    #[test]
    fn same_seed_same_plan_other_seed_other_plan() {
        let s = spec(
            0.1,
            0.1,
            DelayDist::Uniform {
                min: Duration::from_millis(10),
                max: Duration::from_millis(900),
            },
        );
        assert_eq!(pattern(7, 0, &s, 2000), pattern(7, 0, &s, 2000));
        assert_ne!(pattern(7, 0, &s, 2000), pattern(8, 0, &s, 2000));
        assert_ne!(pattern(7, 0, &s, 2000), pattern(7, 1, &s, 2000));
    }

    #[test]
    fn decision_does_not_depend_on_call_order() {
        let s = spec(
            0.3,
            0.3,
            DelayDist::Exponential {
                mean: Duration::from_millis(100),
                max: Duration::from_secs(2),
            },
        );
        let forward = pattern(3, 2, &s, 500);
        let mut f = PhaseFaults::new(3, 2, &s);
        for i in (0..500u64).rev() {
            assert_eq!(f.decide(i), forward[i as usize], "request {i}");
        }
    }

    #[test]
    fn header_values_are_canonical() {
        let cases = [
            (spec(1.0, 0.0, fixed(300)), "status=503"),
            (spec(0.0, 1.0, fixed(300)), "delay=300ms"),
            (spec(1.0, 1.0, fixed(1500)), "delay=1500ms,status=503"),
        ];
        for (s, want) in cases {
            let got = PhaseFaults::new(1, 0, &s).decide(0).header;
            assert_eq!(got, Some(HeaderValue::from_static(want)));
        }
        assert_eq!(
            PhaseFaults::new(1, 0, &FaultSpec::default())
                .decide(0)
                .header,
            None
        );
    }

    #[test]
    fn sampled_delays_stay_in_range() {
        let uni = spec(
            0.0,
            1.0,
            DelayDist::Uniform {
                min: Duration::from_millis(100),
                max: Duration::from_millis(200),
            },
        );
        let exp = spec(
            0.0,
            1.0,
            DelayDist::Exponential {
                mean: Duration::from_millis(50),
                max: Duration::from_millis(400),
            },
        );
        let u = pattern(5, 0, &uni, 5000);
        assert!(
            u.iter()
                .all(|d| (100..=200).contains(&d.delay.unwrap().as_millis()))
        );
        let e = pattern(5, 0, &exp, 5000);
        let mean = e
            .iter()
            .map(|d| d.delay.unwrap().as_millis() as f64)
            .sum::<f64>()
            / 5000.0;
        assert!(e.iter().all(|d| d.delay.unwrap().as_millis() <= 400));
        assert!((40.0..60.0).contains(&mean), "exponential mean {mean}");
        let h = e[0].header.as_ref().unwrap().to_str().unwrap();
        assert_eq!(h, format!("delay={}ms", e[0].delay.unwrap().as_millis()));
    }
}
