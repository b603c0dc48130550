//! Small conversions between `SystemTime`/`Duration` and the spellings used in
//! PromQL, reports and JSON.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 for times before it).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Seconds since the Unix epoch as Prometheus writes timestamps.
pub fn unix_secs_f64(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub fn from_unix_secs_f64(secs: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(secs.max(0.0))
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-24T23:41:07.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// A PromQL range duration in whole milliseconds (`15000ms`), never zero.
pub fn promql_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

/// Signed offset of `t` from `origin` in seconds (negative when before).
pub fn offset_secs(t: SystemTime, origin: SystemTime) -> f64 {
    match t.duration_since(origin) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// Compact human duration: `850ms`, `12.5s`, `2m05s`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let s = d.as_secs_f64();
        if ms % 1000 == 0 {
            format!("{}s", ms / 1000)
        } else {
            format!("{s:.1}s")
        }
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// Human latency from seconds: `3.2ms`, `310ms`, `1.25s`.
pub fn human_secs(s: f64) -> String {
    if !s.is_finite() {
        return format!("{s}");
    }
    if s < 0.001 {
        format!("{:.0}µs", s * 1e6)
    } else if s < 0.01 {
        format!("{:.2}ms", s * 1e3)
    } else if s < 1.0 {
        format!("{:.1}ms", s * 1e3)
    } else {
        format!("{s:.3}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promql_durations_are_whole_ms_and_never_zero() {
        assert_eq!(promql_duration(Duration::from_secs(15)), "15000ms");
        assert_eq!(promql_duration(Duration::from_micros(10)), "1ms");
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_millis(850)), "850ms");
        assert_eq!(human(Duration::from_secs(12)), "12s");
        assert_eq!(human(Duration::from_millis(12_500)), "12.5s");
        assert_eq!(human(Duration::from_secs(125)), "2m05s");
        assert_eq!(human_secs(0.0032), "3.20ms");
        assert_eq!(human_secs(0.31), "310.0ms");
        assert_eq!(human_secs(1.25), "1.250s");
    }

    #[test]
    fn offsets_are_signed() {
        let t0 = UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(offset_secs(t0 + Duration::from_secs(2), t0), 2.0);
        assert_eq!(offset_secs(t0 - Duration::from_secs(2), t0), -2.0);
    }
}
