//! The target's bounded log of recent predictions (id, time, predicted class)
//! and the labels that arrive for them later by prediction id: what the
//! `slocheck evaluate` batch job reads back through `GET /predictions`.
//!
//! Ids are handed out in order under the log's lock, so an entry is found
//! by subtracting the oldest id: no map, no per-entry allocation.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use super::model::{CLASS_NAMES, N_CLASSES};

/// Predictions kept: at 1 000 predictions/s about 100 s of history, ~2.4 MB.
pub const LOG_CAPACITY: usize = 100_000;

/// No label yet.
const NO_LABEL: u8 = u8::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    id: u64,
    unix_ms: u64,
    class: u8,
    label: u8,
}

/// One logged prediction as `GET /predictions` reports it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoggedPrediction {
    pub prediction_id: String,
    /// Unix time of the prediction in seconds (millisecond resolution).
    pub time: f64,
    pub predicted: String,
    /// The true class once feedback arrived, else null.
    pub label: Option<String>,
}

/// How one feedback item was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    Accepted,
    /// The id was never handed out or has left the bounded log.
    UnknownId,
}

#[derive(Debug)]
pub struct PredictionLog {
    inner: Mutex<Ring>,
    capacity: usize,
}

#[derive(Debug)]
struct Ring {
    next_id: u64,
    entries: VecDeque<Entry>,
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Default for PredictionLog {
    fn default() -> Self {
        Self::with_capacity(LOG_CAPACITY)
    }
}

impl PredictionLog {
    pub fn with_capacity(capacity: usize) -> Self {
        PredictionLog {
            inner: Mutex::new(Ring {
                next_id: 1,
                entries: VecDeque::with_capacity(capacity.min(4096)),
            }),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        // Entries are plain values: a panicked holder leaves them consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Logs a prediction of `class_index` now and returns its id.
    pub fn record(&self, class_index: usize) -> u64 {
        self.record_at(class_index, now_unix_ms())
    }

    fn record_at(&self, class_index: usize, unix_ms: u64) -> u64 {
        let mut ring = self.lock();
        let id = ring.next_id;
        ring.next_id += 1;
        if ring.entries.len() == self.capacity {
            ring.entries.pop_front();
        }
        ring.entries.push_back(Entry {
            id,
            unix_ms,
            class: class_index.min(N_CLASSES - 1) as u8,
            label: NO_LABEL,
        });
        id
    }

    /// Attaches the true class to a logged prediction (the latest label wins).
    pub fn label(&self, id: u64, class_index: usize) -> Feedback {
        let mut ring = self.lock();
        let Some(first) = ring.entries.front().map(|e| e.id) else {
            return Feedback::UnknownId;
        };
        match id
            .checked_sub(first)
            .and_then(|i| ring.entries.get_mut(i as usize))
        {
            Some(e) => {
                e.label = class_index.min(N_CLASSES - 1) as u8;
                Feedback::Accepted
            }
            None => Feedback::UnknownId,
        }
    }

    /// Predictions made in `[since_ms, until_ms)`, oldest first.
    pub fn between(&self, since_ms: u64, until_ms: u64) -> Vec<LoggedPrediction> {
        let ring = self.lock();
        // Times are non-decreasing in id order (one lock hands out both), so
        // the window is a contiguous run found by binary search.
        let lo = ring.entries.partition_point(|e| e.unix_ms < since_ms);
        let hi = ring.entries.partition_point(|e| e.unix_ms < until_ms);
        ring.entries
            .range(lo..hi.max(lo))
            .map(|e| LoggedPrediction {
                prediction_id: e.id.to_string(),
                time: e.unix_ms as f64 / 1000.0,
                predicted: CLASS_NAMES[e.class as usize].to_string(),
                label: (e.label != NO_LABEL).then(|| CLASS_NAMES[e.label as usize].to_string()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sequential_and_labels_join_by_id() {
        let log = PredictionLog::with_capacity(10);
        let a = log.record_at(0, 1_000);
        let b = log.record_at(2, 1_500);
        assert_eq!(b, a + 1);
        assert_eq!(log.label(b, 1), Feedback::Accepted);
        assert_eq!(log.label(b + 7, 1), Feedback::UnknownId);
        let all = log.between(0, u64::MAX);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].label, None);
        assert_eq!(all[1].predicted, "virginica");
        assert_eq!(all[1].label.as_deref(), Some("versicolor"));
        assert_eq!(all[1].time, 1.5);
    }

    #[test]
    fn window_is_half_open_and_the_log_is_bounded() {
        let log = PredictionLog::with_capacity(3);
        for t in [100, 200, 300, 400] {
            log.record_at(0, t);
        }
        // The oldest (t = 100, id 1) was evicted: its feedback is unknown.
        assert_eq!(log.label(1, 0), Feedback::UnknownId);
        assert_eq!(log.label(2, 0), Feedback::Accepted);
        let w = log.between(200, 400);
        let ids: Vec<&str> = w.iter().map(|p| p.prediction_id.as_str()).collect();
        assert_eq!(ids, ["2", "3"]);
        assert!(log.between(500, 600).is_empty());
    }
}
