//! promtool's expanding series notation (`a+bxN`, `_xN`) for values sampled on
//! a regular grid, so an exported series reads as a handful of straight
//! segments instead of one number per scrape. Pure.

/// How far a value inside a segment may sit from the straight line through
/// the segment's exact start: 10 % of the series' typical (median) change
/// per grid step. A count (whole numbers only) may always be off by 1: a
/// counter scraped every second at 150 rps may then drift by 15 requests
/// (0.1 s of traffic) inside a segment, which moves a rate over a window of
/// N steps by under 2/N %. A fractional series (a ratio, seconds) has no
/// such floor, and its typical change is that of the steps where it changed
/// at all: a pushed accuracy stays flat between pushes, and its replay must
/// still cross 0.9 where the run's did.
pub fn tolerance(values: &[Option<f64>]) -> f64 {
    let mut incs: Vec<f64> = values
        .windows(2)
        .filter_map(|w| Some((w[1]? - w[0]?).abs()))
        .collect();
    let whole = values.iter().flatten().all(|v| v.fract() == 0.0);
    if !whole {
        incs.retain(|&d| d > 0.0);
    }
    if incs.is_empty() {
        return if whole { 1.0 } else { 0.0 };
    }
    incs.sort_by(f64::total_cmp);
    let median = incs[incs.len() / 2];
    if whole {
        (0.1 * median).max(1.0)
    } else {
        0.1 * median
    }
}

/// Encodes `values` (one per grid step, `None` = no sample) as promtool input
/// notation. Every segment starts at an exact value; inside it values stay
/// within `tol` of the line. Missing samples become `_` runs.
///
/// A series that never falls (a counter) never falls in the notation either:
/// slopes round down and each segment ends at or below its last sample, so
/// the next segment's exact start is never below the previous segment's end. A
/// fall of even 0.001 would be a counter reset to `rate()`, adding the whole
/// counter to one window.
pub fn encode(values: &[Option<f64>], tol: f64) -> String {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    let counter = present.windows(2).all(|w| w[0] <= w[1]);
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let Some(start) = values[i] else {
            let mut j = i;
            while j + 1 < values.len() && values[j + 1].is_none() {
                j += 1;
            }
            let n = j - i + 1;
            out.push(if n == 1 {
                "_".to_string()
            } else {
                format!("_x{n}")
            });
            i = j + 1;
            continue;
        };
        // Longest run from i whose points all lie near one line.
        let mut end = i;
        let mut slope = 0.0;
        while end + 1 < values.len() {
            let Some(next) = values[end + 1] else { break };
            let raw = (next - start) / (end + 1 - i) as f64;
            let cand = if counter {
                (raw * 1000.0).floor() / 1000.0
            } else {
                round_slope(raw)
            };
            let fits = line(start, cand, end + 1 - i)
                .zip(&values[i..=end + 1])
                .all(|(l, v)| v.is_some_and(|v| (l - v).abs() <= tol))
                && (!counter || line(start, cand, end + 1 - i).last() <= Some(next));
            if !fits {
                break;
            }
            end += 1;
            slope = cand;
        }
        let n = end - i;
        out.push(if n == 0 {
            number(start)
        } else if slope < 0.0 {
            format!("{}-{}x{n}", number(start), number(-slope))
        } else {
            format!("{}+{}x{n}", number(start), number(slope))
        });
        i = end + 1;
    }
    out.join(" ")
}

/// The `n + 1` values of `a+bxn` as promtool expands them: by repeated
/// addition, whose rounding can differ from `a + b·k` in the last bit.
fn line(a: f64, b: f64, n: usize) -> impl Iterator<Item = f64> {
    std::iter::successors(Some(a), move |v| Some(v + b)).take(n + 1)
}

/// Slopes keep three decimals: enough for any rate a person reads, and the
/// tolerance check runs on the rounded value, so rounding cannot break it.
fn round_slope(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// Shortest text that reads back as the same float (`150`, `0.25`, `1e-06`).
pub fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Inf".into() } else { "-Inf".into() }
    } else if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Expands notation written by [`encode`] back into values (for tests and
/// for checking an export before it is written).
pub fn decode(text: &str) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for tok in text.split_whitespace() {
        if tok == "_" {
            out.push(None);
        } else if let Some(n) = tok.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| format!("bad token {tok:?}"))?;
            out.extend(std::iter::repeat_n(None, n));
        } else if let Some((head, n)) = tok.rsplit_once('x') {
            let n: usize = n.parse().map_err(|_| format!("bad token {tok:?}"))?;
            // The sign between start and slope is the last + or - that is
            // not the start's own sign or an exponent's.
            let bytes = head.as_bytes();
            let at = (1..bytes.len())
                .rev()
                .find(|&k| (bytes[k] == b'+' || bytes[k] == b'-') && bytes[k - 1] != b'e')
                .ok_or_else(|| format!("bad token {tok:?}"))?;
            let a: f64 = head[..at]
                .parse()
                .map_err(|_| format!("bad token {tok:?}"))?;
            let b: f64 = head[at..]
                .parse()
                .map_err(|_| format!("bad token {tok:?}"))?;
            out.extend(line(a, b, n).map(Some));
        } else {
            out.push(Some(tok.parse().map_err(|_| format!("bad token {tok:?}"))?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(v: &[f64]) -> Vec<Option<f64>> {
        v.iter().copied().map(Some).collect()
    }

    #[test]
    fn straight_counter_is_one_segment() {
        let v = some(&[0.0, 150.0, 300.0, 450.0, 600.0]);
        assert_eq!(encode(&v, 1.0), "0+150x4");
    }

    #[test]
    fn rate_change_starts_a_new_segment_at_an_exact_value() {
        let v = some(&[0.0, 10.0, 20.0, 30.0, 130.0, 230.0, 330.0]);
        assert_eq!(encode(&v, 1.0), "0+10x3 130+100x2");
    }

    #[test]
    fn jitter_within_tolerance_is_smoothed_and_beyond_it_is_kept() {
        let v = some(&[0.0, 151.0, 299.0, 450.0]);
        assert_eq!(encode(&v, 2.0), "0+150x3");
        assert_eq!(encode(&v, 0.5), "0+151x1 299+151x1");
    }

    #[test]
    fn a_counter_never_falls_between_segments() {
        // 4220 + 3 × 35.667 = 4327.001 would sit above the next exact start,
        // 4327: a counter reset to rate(). Slopes round down for counters.
        let v = some(&[4220.0, 4256.0, 4291.0, 4327.0, 4327.0, 4397.0, 4432.0]);
        let back = decode(&encode(&v, 4.0)).unwrap();
        let back: Vec<f64> = back.into_iter().flatten().collect();
        assert!(back.windows(2).all(|w| w[0] <= w[1]), "{back:?}");
        let fractions = some(&[0.0, 0.1, 0.2, 0.3, 0.3, 0.7]);
        let back: Vec<f64> = decode(&encode(&fractions, 0.05))
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        assert!(back.windows(2).all(|w| w[0] <= w[1]), "{back:?}");
    }

    #[test]
    fn missing_samples_become_blank_runs() {
        let v = vec![None, None, None, Some(0.0), Some(0.0), None, Some(5.0)];
        assert_eq!(encode(&v, 1.0), "_x3 0+0x1 _ 5");
    }

    #[test]
    fn falling_gauge_and_fractions() {
        let v = some(&[1.0, 0.75, 0.5, 0.25]);
        assert_eq!(encode(&v, 0.001), "1-0.25x3");
    }

    #[test]
    fn decode_is_the_inverse_within_tolerance() {
        let v: Vec<Option<f64>> = (0..60)
            .map(|k| {
                if k < 3 {
                    None
                } else {
                    Some((k * 150 + (k * 7) % 5) as f64)
                }
            })
            .collect();
        let tol = tolerance(&v);
        let back = decode(&encode(&v, tol)).unwrap();
        assert_eq!(back.len(), v.len());
        for (a, b) in v.iter().zip(&back) {
            match (a, b) {
                (Some(a), Some(b)) => assert!((a - b).abs() <= tol + 1e-9, "{a} vs {b}"),
                (None, None) => {}
                _ => panic!("blank mismatch"),
            }
        }
        assert!(
            encode(&v, tol).split(' ').count() < 10,
            "{}",
            encode(&v, tol)
        );
    }

    #[test]
    fn decode_reads_signs_and_exponents() {
        assert_eq!(
            decode("-1+2x2 1e-06").unwrap(),
            vec![Some(-1.0), Some(1.0), Some(3.0), Some(1e-06)]
        );
        assert!(decode("1+x").is_err());
    }

    #[test]
    fn tolerance_follows_the_typical_increase() {
        assert_eq!(tolerance(&some(&[0.0, 150.0, 300.0, 450.0])), 15.0);
        assert_eq!(tolerance(&some(&[0.0, 0.0, 0.0])), 1.0);
        assert_eq!(tolerance(&[]), 1.0);
        // A pushed ratio: flat between pushes, then a step of 0.05.
        let accuracy = some(&[0.98, 0.98, 0.93, 0.93, 0.88, 0.88]);
        assert!((tolerance(&accuracy) - 0.005).abs() < 1e-9);
        let back = decode(&encode(&accuracy, tolerance(&accuracy))).unwrap();
        assert!(back[4].is_some_and(|v| v < 0.9), "{back:?}");
    }
}
