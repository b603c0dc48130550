//! Rewrites rule files for `time_scale`: every time window in the PromQL
//! (range selectors, subquery ranges and steps, offsets) and every rule
//! timing (`for`, `keep_firing_for`, group `interval`) is divided by the
//! factor, through the PromQL AST — never by text substitution.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use promql_parser::parser::{self, Expr, Offset};
use serde::Serialize;

use super::rules::{Rule, RuleFile, RulesError, format_duration, one_line};

/// One value the rewrite changed, for the run report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScaledChange {
    pub group: String,
    /// Rule name; empty for a group-level field (`interval`).
    pub rule: String,
    /// `expr`, `for`, `keep_firing_for` or `interval`.
    pub field: String,
    pub original: String,
    pub scaled: String,
}

/// A scaled copy written for one input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScaledFile {
    pub original: PathBuf,
    pub scaled: PathBuf,
    pub changes: Vec<ScaledChange>,
}

fn check_factor(factor: f64) -> Result<(), RulesError> {
    if factor.is_finite() && factor > 0.0 {
        Ok(())
    } else {
        Err(RulesError::Factor { factor })
    }
}

/// `d / factor`, rounded to whole milliseconds and never below 1 ms (Prometheus
/// rejects zero ranges). Zero stays zero: "no `for`" must not become 1 ms.
pub fn scale_duration(d: Duration, factor: f64) -> Duration {
    if d.is_zero() {
        return d;
    }
    let ms = (d.as_secs_f64() * 1000.0 / factor).round();
    // Saturating: a tiny factor on a huge range must not wrap around.
    let ms = if ms >= u64::MAX as f64 {
        u64::MAX
    } else {
        ms as u64
    };
    Duration::from_millis(ms.max(1))
}

/// Divides every range, subquery step and offset in `expr` by `factor` and
/// prints the result as PromQL. `@` timestamps are absolute and stay as they are.
pub fn scale_expr(expr: &str, factor: f64) -> Result<String, RulesError> {
    check_factor(factor)?;
    let mut ast = parse(expr)?;
    scale_ast(&mut ast, factor);
    let printed = ast.to_string();
    // The printer is promql-parser's; refuse to hand Prometheus anything that
    // does not read back as the very tree we built.
    let ast = normalized(ast);
    match parser::parse(&printed).map(normalized) {
        Ok(back) if back == ast => Ok(printed),
        Ok(_) => Err(RulesError::Expr {
            expr: expr.into(),
            message: format!("rewritten form {printed:?} does not parse back to the same query"),
        }),
        Err(m) => Err(RulesError::Expr {
            expr: expr.into(),
            message: format!(
                "rewritten form {printed:?} is not valid PromQL: {}",
                one_line(&m)
            ),
        }),
    }
}

fn parse(expr: &str) -> Result<Expr, RulesError> {
    parser::parse(expr).map_err(|m| RulesError::Expr {
        expr: expr.into(),
        message: one_line(&m),
    })
}

fn scale_offset(offset: &mut Option<Offset>, factor: f64) {
    if let Some(o) = offset {
        *o = match o {
            Offset::Pos(d) => Offset::Pos(scale_duration(*d, factor)),
            Offset::Neg(d) => Offset::Neg(scale_duration(*d, factor)),
        };
    }
}

/// Visits every node of the tree, parents first. promql-parser's own walker
/// skips an aggregation's parameter (`topk(scalar(…[5m]), …)`), so this one
/// is ours.
pub(crate) fn visit_mut(expr: &mut Expr, f: &mut dyn FnMut(&mut Expr)) {
    f(expr);
    match expr {
        Expr::Aggregate(a) => {
            if let Some(p) = &mut a.param {
                visit_mut(p, f);
            }
            visit_mut(&mut a.expr, f);
        }
        Expr::Unary(u) => visit_mut(&mut u.expr, f),
        Expr::Binary(b) => {
            visit_mut(&mut b.lhs, f);
            visit_mut(&mut b.rhs, f);
        }
        Expr::Paren(p) => visit_mut(&mut p.expr, f),
        Expr::Subquery(s) => visit_mut(&mut s.expr, f),
        Expr::Call(c) => c.args.args.iter_mut().for_each(|a| visit_mut(a, f)),
        Expr::MatrixSelector(_)
        | Expr::VectorSelector(_)
        | Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::Extension(_) => {}
    }
}

fn scale_ast(expr: &mut Expr, factor: f64) {
    visit_mut(expr, &mut |node| match node {
        Expr::Subquery(s) => {
            s.range = scale_duration(s.range, factor);
            // No step: the subquery uses the evaluation interval, which the
            // caller scales in the Prometheus config, not here.
            if let Some(step) = &mut s.step {
                *step = scale_duration(*step, factor);
            }
            scale_offset(&mut s.offset, factor);
        }
        Expr::VectorSelector(vs) => scale_offset(&mut vs.offset, factor),
        Expr::MatrixSelector(ms) => {
            ms.range = scale_duration(ms.range, factor);
            scale_offset(&mut ms.vs.offset, factor);
        }
        // `time() - push_time_seconds > 900`: the number is an age in
        // seconds, a duration like any range, so it is scaled too.
        Expr::Binary(b) if b.op.is_comparison_operator() => {
            let number = if is_age(&b.lhs) {
                &mut b.rhs
            } else if is_age(&b.rhs) {
                &mut b.lhs
            } else {
                return;
            };
            if let Expr::NumberLiteral(n) = &mut **number {
                n.val /= factor;
            }
        }
        _ => {}
    });
}

/// `time() - x`, possibly in parentheses: an age in seconds.
fn is_age(e: &Expr) -> bool {
    match e {
        Expr::Paren(p) => is_age(&p.expr),
        Expr::Binary(b) if b.op.to_string() == "-" => {
            matches!(&*b.lhs, Expr::Call(c) if c.func.name == "time")
        }
        _ => false,
    }
}

/// The tree with label matchers in a fixed order: the printer may reorder
/// them, which changes nothing a query means.
pub(crate) fn normalized(mut expr: Expr) -> Expr {
    visit_mut(&mut expr, &mut |node| {
        let matchers = match node {
            Expr::VectorSelector(vs) => &mut vs.matchers,
            Expr::MatrixSelector(ms) => &mut ms.vs.matchers,
            _ => return,
        };
        matchers.matchers.sort_by_key(|m| m.to_string());
        for group in &mut matchers.or_matchers {
            group.sort_by_key(|m| m.to_string());
        }
    });
    expr
}

fn ranges(expr: &str) -> Vec<Duration> {
    let mut out = Vec::new();
    if let Ok(mut ast) = parser::parse(expr) {
        visit_mut(&mut ast, &mut |node| match node {
            Expr::Subquery(s) => out.push(s.range),
            Expr::MatrixSelector(ms) => out.push(ms.range),
            _ => {}
        });
    }
    out
}

/// The shortest range window (range selector or subquery range) in `expr`.
pub fn expr_min_range(expr: &str) -> Option<Duration> {
    ranges(expr).into_iter().min()
}

/// The longest range window in `expr` (used for alert timing bounds).
pub(crate) fn expr_max_range(expr: &str) -> Option<Duration> {
    ranges(expr).into_iter().max()
}

/// The shortest range window over every rule in the file, so the caller can
/// refuse a `time_scale` that leaves fewer than two scrapes per window.
pub fn min_range(file: &RuleFile) -> Option<Duration> {
    file.rules().filter_map(|r| expr_min_range(r.expr())).min()
}

// The serialized form mirrors Prometheus' rule-file schema; fields that were
// absent stay absent so the copy reads like the original.
#[derive(Serialize)]
struct OutFile<'a> {
    groups: Vec<OutGroup<'a>>,
}

/// One rule group as written back to YAML (scaled copies, PrometheusRule).
#[derive(Serialize)]
pub(crate) struct OutGroup<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u64>,
    rules: Vec<OutRule<'a>>,
}

#[derive(Serialize)]
pub(crate) struct OutRule<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<&'a str>,
    expr: String,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    for_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_firing_for: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<&'a BTreeMap<String, String>>,
}

/// A rule as written back, with the given (possibly rewritten) expression
/// and timings.
fn out_rule(
    r: &Rule,
    expr: String,
    for_: Option<String>,
    keep_firing_for: Option<String>,
) -> OutRule<'_> {
    match r {
        Rule::Recording(rec) => OutRule {
            record: Some(&rec.name),
            alert: None,
            expr,
            for_: None,
            keep_firing_for: None,
            labels: &rec.labels,
            annotations: None,
        },
        Rule::Alert(a) => OutRule {
            record: None,
            alert: Some(&a.name),
            expr,
            for_,
            keep_firing_for,
            labels: &a.labels,
            annotations: (!a.annotations.is_empty()).then_some(&a.annotations),
        },
    }
}

/// The groups of a rule file exactly as written (expressions verbatim), for
/// wrapping them into another document such as a PrometheusRule.
pub(crate) fn verbatim_groups(file: &RuleFile) -> Vec<OutGroup<'_>> {
    let timing = |d: Duration| (!d.is_zero()).then(|| format_duration(d));
    file.groups
        .iter()
        .map(|g| OutGroup {
            name: &g.name,
            interval: g.interval.map(format_duration),
            limit: g.limit,
            rules: g
                .rules
                .iter()
                .map(|r| match r {
                    Rule::Recording(_) => out_rule(r, r.expr().to_string(), None, None),
                    Rule::Alert(a) => {
                        out_rule(r, a.expr.clone(), timing(a.for_), timing(a.keep_firing_for))
                    }
                })
                .collect(),
        })
        .collect()
}

/// Scales a whole rule file; returns the new YAML and every change made.
pub fn scale_rule_file(
    file: &RuleFile,
    factor: f64,
) -> Result<(String, Vec<ScaledChange>), RulesError> {
    check_factor(factor)?;
    let mut changes = Vec::new();
    let mut groups = Vec::with_capacity(file.groups.len());
    for g in &file.groups {
        let mut note = |rule: &str, field: &str, original: String, scaled: String| {
            if original != scaled {
                changes.push(ScaledChange {
                    group: g.name.clone(),
                    rule: rule.into(),
                    field: field.into(),
                    original,
                    scaled,
                });
            }
        };
        let interval = g.interval.map(|d| {
            let scaled = format_duration(scale_duration(d, factor));
            note("", "interval", format_duration(d), scaled.clone());
            scaled
        });
        let mut rules = Vec::with_capacity(g.rules.len());
        for r in &g.rules {
            let expr = scale_expr(r.expr(), factor).map_err(|e| RulesError::Invalid {
                path: file.path.clone(),
                line: None,
                at: super::rules::RuleAt {
                    group: g.name.clone(),
                    rule: Some((
                        match r {
                            Rule::Recording(_) => super::rules::RuleKindName::Record,
                            Rule::Alert(_) => super::rules::RuleKindName::Alert,
                        },
                        r.name().into(),
                    )),
                },
                message: format!("cannot scale: {e}"),
            })?;
            // Compare against the canonical print of the unscaled query, so
            // whitespace-only differences are not reported as changes.
            let canonical = scale_expr(r.expr(), 1.0).unwrap_or_else(|_| r.expr().to_string());
            if canonical != expr {
                note(r.name(), "expr", r.expr().to_string(), expr.clone());
            }
            let mut timing = |field: &str, d: Duration| -> Option<String> {
                if d.is_zero() {
                    return None;
                }
                let scaled = format_duration(scale_duration(d, factor));
                note(r.name(), field, format_duration(d), scaled.clone());
                Some(scaled)
            };
            rules.push(match r {
                Rule::Recording(_) => out_rule(r, expr, None, None),
                Rule::Alert(a) => out_rule(
                    r,
                    expr,
                    timing("for", a.for_),
                    timing("keep_firing_for", a.keep_firing_for),
                ),
            });
        }
        groups.push(OutGroup {
            name: &g.name,
            interval,
            limit: g.limit,
            rules,
        });
    }
    let yaml = serde_saphyr::to_string(&OutFile { groups }).map_err(|e| RulesError::Serialize {
        path: file.path.clone(),
        message: one_line(&e.to_string()),
    })?;
    let header = format!(
        "# Generated by slocheck from {} with time_scale {factor}: every window and\n# rule timing divided by {factor}. Do not edit; edit the original.\n",
        file.path.display()
    );
    Ok((header + &yaml, changes))
}

/// Loads each file, writes its scaled copy into `out_dir` (never touching the
/// inputs) and reports what changed. Output names keep the input file name;
/// a clash between two inputs gets a numeric prefix.
pub fn write_scaled(
    files: &[PathBuf],
    factor: f64,
    out_dir: &Path,
) -> Result<Vec<ScaledFile>, RulesError> {
    check_factor(factor)?;
    std::fs::create_dir_all(out_dir).map_err(|source| RulesError::Write {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let mut used = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(files.len());
    for (i, path) in files.iter().enumerate() {
        let file = super::rules::load(path)?;
        let (yaml, changes) = scale_rule_file(&file, factor)?;
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("rules-{i}.yml"));
        let name = if used.insert(base.clone()) {
            base
        } else {
            format!("{i}-{base}")
        };
        used.insert(name.clone());
        let scaled = out_dir.join(name);
        if same_file(path, &scaled) {
            return Err(RulesError::Write {
                path: scaled,
                source: std::io::Error::other("output would overwrite the original rule file"),
            });
        }
        std::fs::write(&scaled, yaml).map_err(|source| RulesError::Write {
            path: scaled.clone(),
            source,
        })?;
        out.push(ScaledFile {
            original: path.clone(),
            scaled,
            changes,
        });
    }
    Ok(out)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Runs `promtool check rules` on `paths`. `None` when promtool is not on
/// PATH; `Some(Err(output))` when it rejects a file.
pub fn promtool_check(paths: &[PathBuf]) -> Option<Result<(), String>> {
    // No rule files is valid (a scenario may check only latency and errors);
    // promtool itself would refuse the empty argument list.
    if paths.is_empty() {
        return Some(Ok(()));
    }
    promtool(
        ["check".as_ref(), "rules".as_ref()]
            .into_iter()
            .chain(paths.iter().map(|p| p.as_os_str())),
    )
}

/// Runs `promtool ARGS…`: `None` when promtool is not installed, its output
/// as the error when it refuses.
pub fn promtool<'a>(
    args: impl IntoIterator<Item = &'a std::ffi::OsStr>,
) -> Option<Result<(), String>> {
    let bin = which::which("promtool").ok()?;
    Some(match Command::new(bin).args(args).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
        .trim()
        .to_string()),
        Err(e) => Err(format!("cannot run promtool: {e}")),
    })
}

#[cfg(test)]
mod tests;
