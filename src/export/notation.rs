//! promtool's expanding series notation (`a+bxN`, `_xN`) for values sampled on
//! a regular grid, so an exported series reads as a handful of straight
//! segments instead of one number per scrape. Pure.

/// How far a value inside a segment may sit from the straight line through
/// the segment's exact start: 10 % of the series' typical (median) increase
/// per grid step, and never less than 1. A counter scraped every second at
/// 150 rps may then drift by 15 requests (0.1 s of traffic) inside a segment,
/// which moves a rate over a window of N steps by under 2/N %.
pub fn tolerance(values: &[Option<f64>]) -> f64 {
    let mut incs: Vec<f64> = values
        .windows(2)
        .filter_map(|w| Some((w[1]? - w[0]?).abs()))
        .collect();
    if incs.is_empty() {
        return 1.0;
    }
    incs.sort_by(f64::total_cmp);
    let median = incs[incs.len() / 2];
    (0.1 * median).max(1.0)
}

/// Encodes `values` (one per grid step, `None` = no sample) as promtool input
/// notation. Every segment starts at an exact value; inside it values stay
/// within `tol` of the line. Missing samples become `_` runs.
pub fn encode(values: &[Option<f64>], tol: f64) -> String {
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
            let cand = round_slope((next - start) / (end + 1 - i) as f64);
            let fits = (i..=end + 1).all(|k| {
                values[k].is_some_and(|v| (start + cand * (k - i) as f64 - v).abs() <= tol)
            });
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
            out.extend((0..=n).map(|k| Some(a + b * k as f64)));
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
    }
}
