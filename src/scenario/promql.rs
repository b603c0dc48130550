//! PromQL syntax check for expressions written in scenarios (and, via the
//! lead, anywhere else an expression is accepted).

/// Parses `expr` with promql-parser; the error is one line, suitable after
/// `invalid PromQL: `.
pub fn validate_promql(expr: &str) -> Result<(), String> {
    if expr.trim().is_empty() {
        return Err("expression is empty".to_string());
    }
    // promql-parser may panic on some malformed inputs in older versions;
    // a scenario file must never crash `check`, so contain it.
    let parsed = std::panic::catch_unwind(|| promql_parser::parser::parse(expr));
    match parsed {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(crate::prom::rules::one_line(&e)),
        Err(_) => Err("the PromQL parser could not read this expression".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::validate_promql;

    #[test]
    fn accepts_valid_and_rejects_invalid_expressions() {
        for ok in [
            "up",
            r#"sum(rate(http_requests_total{status=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))"#,
            "histogram_quantile(0.9, sum by (le) (rate(http_request_latency_seconds_bucket[1m])))",
        ] {
            assert_eq!(validate_promql(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "   ",
            "sum(rate(x[1m])",
            "rate(x[1m]) >",
            "{}",
            "foo[5m",
        ] {
            let err = validate_promql(bad).expect_err(bad);
            assert!(!err.contains('\n'), "{err:?}");
        }
    }
}
