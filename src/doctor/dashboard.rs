//! Grafana dashboard JSON as doctor reads it: every panel query, its Grafana
//! variables substituted so Prometheus can run it, and the metric selectors
//! inside it (to tell which metric an empty panel lacks).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use promql_parser::parser::{self, Expr};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("cannot read dashboards in {}: {source} (hint: pass --dashboards DIR with Grafana dashboard JSON files)", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not valid JSON: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{} is not a Grafana dashboard: it has no \"panels\" list", path.display())]
    NotDashboard { path: PathBuf },
    #[error("no dashboard JSON files in {} (hint: pass --dashboards DIR)", path.display())]
    Empty { path: PathBuf },
}

/// One query of one panel, as written in the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelQuery {
    pub dashboard: String,
    pub panel: String,
    pub ref_id: String,
    pub expr: String,
}

impl PanelQuery {
    /// `dashboard / panel [refId]`, how a user finds it in Grafana.
    pub fn label(&self) -> String {
        format!("{} / {} [{}]", self.dashboard, self.panel, self.ref_id)
    }
}

/// Every `*.json` in `dir` (not recursive; provisioning YAML is ignored).
pub fn load_dir(dir: &Path) -> Result<Vec<PanelQuery>, DashboardError> {
    let read = |source| DashboardError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(DashboardError::Empty {
            path: dir.to_path_buf(),
        });
    }
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|source| DashboardError::Read {
            path: f.clone(),
            source,
        })?;
        let json: Value = serde_json::from_str(&text).map_err(|source| DashboardError::Json {
            path: f.clone(),
            source,
        })?;
        out.extend(queries(&json).ok_or(DashboardError::NotDashboard { path: f })?);
    }
    Ok(out)
}

/// The queries of every panel, including panels nested in collapsed rows.
pub fn queries(dashboard: &Value) -> Option<Vec<PanelQuery>> {
    let title = dashboard
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or("untitled")
        .to_string();
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = dashboard.get("panels")?.as_array()?.iter().collect();
    stack.reverse();
    while let Some(p) = stack.pop() {
        if let Some(nested) = p.get("panels").and_then(Value::as_array) {
            stack.extend(nested.iter().rev());
        }
        let panel = p
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("untitled")
            .to_string();
        for t in p
            .get("targets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(expr) = t.get("expr").and_then(Value::as_str) else {
                continue;
            };
            out.push(PanelQuery {
                dashboard: title.clone(),
                panel: panel.clone(),
                ref_id: t
                    .get("refId")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
                expr: expr.to_string(),
            });
        }
    }
    Some(out)
}

/// Values doctor gives Grafana's variables. Grafana computes the interval
/// ones from the panel width and time range; doctor has neither, so they all
/// become one window long enough for two scrapes.
#[derive(Debug, Clone)]
pub struct Variables {
    values: BTreeMap<String, String>,
    window: String,
}

impl Variables {
    /// `$__rate_interval`, `$__interval`, `$__range` → `window`;
    /// `$__interval_ms`, `$__range_ms` → its milliseconds; `$__range_s` → its
    /// seconds; `$job` → `job` (a regex; `.+` = all jobs, Grafana's "All").
    pub fn new(window: std::time::Duration, job: &str) -> Variables {
        let w = crate::prom::rules::format_duration(window);
        let mut m = BTreeMap::new();
        for name in ["__rate_interval", "__interval", "__range"] {
            m.insert(name.to_string(), w.clone());
        }
        let ms = window.as_millis().to_string();
        m.insert("__interval_ms".into(), ms.clone());
        m.insert("__range_ms".into(), ms);
        m.insert("__range_s".into(), window.as_secs().to_string());
        m.insert("job".into(), job.to_string());
        Variables {
            values: m,
            window: w,
        }
    }

    /// The window the interval variables stand for, in PromQL spelling.
    pub fn window(&self) -> &str {
        &self.window
    }
}

/// Replaces `$name`, `${name}`, `${name:format}` and `[[name]]`; errors with
/// the first variable it has no value for.
pub fn substitute(expr: &str, vars: &Variables) -> Result<String, String> {
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(i) = rest.find(['$', '[']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let (name, len) = if let Some(b) = tail.strip_prefix("${") {
            let end = b.find('}').ok_or("unterminated ${ in the query")?;
            let name = b[..end].split(':').next().unwrap_or_default();
            (Some(name), end + 3)
        } else if let Some(b) = tail.strip_prefix("[[") {
            match b.find("]]") {
                Some(end) => (
                    Some(b[..end].split(':').next().unwrap_or_default()),
                    end + 4,
                ),
                None => (None, 1),
            }
        } else if let Some(b) = tail.strip_prefix('$') {
            let end = b
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(b.len());
            (Some(&b[..end]), end + 1)
        } else {
            (None, 1)
        };
        match name {
            // `$1` is a regex back-reference (label_replace), not a variable.
            Some(n) if !n.is_empty() && !n.starts_with(|c: char| c.is_ascii_digit()) => {
                let v = vars.values.get(n).ok_or_else(|| {
                    format!("uses the Grafana variable ${n}, which doctor cannot substitute")
                })?;
                out.push_str(v);
            }
            _ => out.push_str(&tail[..len]),
        }
        rest = &tail[len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The metric selectors of a query, each as PromQL (`name{matchers}`), in
/// order of appearance, without duplicates.
pub fn selectors(expr: &str) -> Result<Vec<Selector>, String> {
    let mut ast = parser::parse(expr)?;
    let mut out: Vec<Selector> = Vec::new();
    crate::prom::timescale::visit_mut(&mut ast, &mut |node| {
        let vs = match node {
            Expr::VectorSelector(vs) => vs.clone(),
            Expr::MatrixSelector(ms) => ms.vs.clone(),
            _ => return,
        };
        let mut bare = vs.clone();
        bare.offset = None;
        bare.at = None;
        let s = Selector {
            name: bare.name.clone(),
            promql: Expr::VectorSelector(bare).to_string(),
        };
        if !out.contains(&s) {
            out.push(s);
        }
    });
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub name: Option<String>,
    /// Instant-vector form, ready for `count(…)`.
    pub promql: String,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn vars() -> Variables {
        Variables::new(Duration::from_secs(60), ".+")
    }

    #[test]
    fn substitutes_every_spelling() {
        let got = substitute(
            "rate(x{job=~\"$job\",a=\"${job:regex}\",b=\"[[job]]\"}[$__rate_interval]) * $__range_s",
            &vars(),
        )
        .unwrap();
        assert_eq!(got, "rate(x{job=~\".+\",a=\".+\",b=\".+\"}[1m]) * 60");
    }

    #[test]
    fn leaves_promql_brackets_and_dollars_alone() {
        let q = "sum(rate(x[5m])) > 0 and on() vector($__interval_ms)";
        assert_eq!(
            substitute(q, &vars()).unwrap(),
            "sum(rate(x[5m])) > 0 and on() vector(60000)"
        );
        let lr = "label_replace(x, \"a\", \"$1\", \"b\", \"(.*)\")";
        assert_eq!(substitute(lr, &vars()).unwrap(), lr);
    }

    #[test]
    fn unknown_variable_is_named() {
        assert_eq!(
            substitute("up{instance=\"$instance\"}", &vars()).unwrap_err(),
            "uses the Grafana variable $instance, which doctor cannot substitute"
        );
    }

    #[test]
    fn selectors_of_a_ratio_without_duplicates() {
        let s = selectors(
            "sum(rate(a{s=~\"5..\"}[1m] offset 1m)) / sum(rate(a[1m])) + sum(rate(a[2m]))",
        )
        .unwrap();
        let p: Vec<_> = s.iter().map(|s| s.promql.as_str()).collect();
        assert_eq!(p, vec!["a{s=~\"5..\"}", "a"]);
        assert_eq!(s[1].name.as_deref(), Some("a"));
    }

    #[test]
    fn nested_row_panels_are_found() {
        let d: Value = serde_json::json!({"title": "D", "panels": [
            {"title": "row", "type": "row", "panels": [
                {"title": "inner", "targets": [{"refId": "A", "expr": "up"}]}]},
            {"title": "outer", "targets": [{"refId": "B", "expr": "x"}, {"refId": "C"}]}]});
        let q = queries(&d).unwrap();
        let labels: Vec<_> = q.iter().map(PanelQuery::label).collect();
        assert_eq!(labels, vec!["D / inner [A]", "D / outer [B]"]);
        assert!(queries(&serde_json::json!({"title": "x"})).is_none());
    }
}
