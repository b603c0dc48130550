//! Reads the shape of an alert expression — its threshold and its window —
//! so the verifier can derive when the alert may fire and resolve.

use std::time::Duration;

use promql_parser::parser::token::{T_GTE, T_GTR, T_LSS, T_LTE};
use promql_parser::parser::{self, Expr};

/// What an alert compares against and over how long a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertShape {
    /// The scalar of a top-level `expr > θ` / `expr >= θ` (or `θ < expr`).
    pub threshold: Option<f64>,
    /// The largest range window (range selector or subquery) in the expression.
    pub window: Option<Duration>,
    /// `q` when the compared side is `histogram_quantile(q, …)`: a latency
    /// alert, which crosses its threshold once more than `1 − q` of the
    /// window's requests are slower than it.
    pub quantile: Option<f64>,
}

/// Never fails: a shape it cannot read is reported as unknown (`None`s), and
/// the caller decides whether an unknown bound is acceptable.
pub fn alert_shape(expr: &str) -> AlertShape {
    let Ok(ast) = parser::parse(expr) else {
        return AlertShape {
            threshold: None,
            window: None,
            quantile: None,
        };
    };
    AlertShape {
        threshold: threshold(&ast),
        window: super::timescale::expr_max_range(expr),
        quantile: compared(&ast).and_then(quantile),
    }
}

/// The non-scalar side of a top-level comparison.
fn compared(expr: &Expr) -> Option<&Expr> {
    match expr {
        Expr::Paren(p) => compared(&p.expr),
        Expr::Binary(b) => {
            let op = b.op.id();
            if op == T_GTR || op == T_GTE {
                Some(&b.lhs)
            } else if op == T_LSS || op == T_LTE {
                Some(&b.rhs)
            } else {
                None
            }
        }
        _ => None,
    }
}

fn quantile(expr: &Expr) -> Option<f64> {
    match expr {
        Expr::Paren(p) => quantile(&p.expr),
        Expr::Call(c) if c.func.name == "histogram_quantile" => {
            c.args.args.first().and_then(|a| number(a))
        }
        _ => None,
    }
}

fn threshold(expr: &Expr) -> Option<f64> {
    match expr {
        Expr::Paren(p) => threshold(&p.expr),
        Expr::Binary(b) => {
            let op = b.op.id();
            if op == T_GTR || op == T_GTE {
                number(&b.rhs)
            } else if op == T_LSS || op == T_LTE {
                number(&b.lhs)
            } else {
                None
            }
        }
        _ => None,
    }
}

fn number(expr: &Expr) -> Option<f64> {
    match expr {
        Expr::NumberLiteral(n) => Some(n.val),
        Expr::Paren(p) => number(&p.expr),
        Expr::Unary(u) => number(&u.expr).map(|v| -v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(expr: &str) -> (Option<f64>, Option<u64>) {
        let s = alert_shape(expr);
        (s.threshold, s.window.map(|d| d.as_millis() as u64))
    }

    #[test]
    fn shipped_alerts() {
        assert_eq!(
            shape(
                r#"sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.05"#
            ),
            (Some(0.05), Some(300_000))
        );
        assert_eq!(
            shape("histogram_quantile(0.90, sum(rate(b[5m])) by (le)) > 0.25"),
            (Some(0.25), Some(300_000))
        );
        assert_eq!(
            alert_shape("histogram_quantile(0.90, sum(rate(b[5m])) by (le)) > 0.25").quantile,
            Some(0.9)
        );
        assert_eq!(
            alert_shape("(histogram_quantile(0.99, sum by (le) (rate(b[1m])))) >= 1").quantile,
            Some(0.99)
        );
        assert_eq!(
            alert_shape("sum(rate(x[5m])) / sum(rate(y[5m])) > 0.05").quantile,
            None
        );
    }

    #[test]
    fn table() {
        let cases: &[(&str, Option<f64>, Option<u64>)] = &[
            ("x >= 3", Some(3.0), None),
            ("(rate(x[1m]) > (0.1))", Some(0.1), Some(60_000)),
            ("0.2 < rate(x[2m])", Some(0.2), Some(120_000)),
            ("x > -1", Some(-1.0), None),
            ("x > bool 0.5", Some(0.5), None),
            ("rate(x[1m]) < 0.1", None, Some(60_000)),
            ("x > y", None, None),
            ("x == 0", None, None),
            ("up", None, None),
            (
                "max_over_time(rate(x[1m])[1h:1m]) > 2",
                Some(2.0),
                Some(3_600_000),
            ),
            ("rate(a[5m]) > 1 and rate(b[10m]) > 2", None, Some(600_000)),
            ("sum(", None, None),
            ("", None, None),
        ];
        for (expr, t, w) in cases {
            assert_eq!(shape(expr), (*t, *w), "{expr}");
        }
    }
}
