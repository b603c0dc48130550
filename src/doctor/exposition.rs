//! The target's `/metrics` as Prometheus would read it: a small parser of the
//! text exposition format and the check that the families the chosen metric
//! convention's queries (or the seed's dashboards and rules) need are there
//! with the right type and labels.

use std::collections::{BTreeMap, BTreeSet};

use super::check::Check;
use crate::metrics::MetricsSpec;
use crate::metrics::recognize::{Family, families};

/// Sample names and label names seen, plus each family's declared type.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Exposition {
    /// Sample name → every label name it carries on some sample.
    pub samples: BTreeMap<String, BTreeSet<String>>,
    /// `# TYPE` name → type.
    pub types: BTreeMap<String, String>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

pub fn parse(text: &str) -> Result<Exposition, ParseError> {
    let mut out = Exposition::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let err = |message: String| ParseError {
            line: i + 1,
            message,
        };
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let mut words = rest.split_whitespace();
            if words.next() == Some("TYPE") {
                match (words.next(), words.next()) {
                    (Some(name), Some(kind)) => {
                        out.types.insert(name.to_string(), kind.to_string());
                    }
                    _ => return Err(err(format!("malformed TYPE line {line:?}"))),
                }
            }
            continue;
        }
        let (name, labels) = sample(line).map_err(err)?;
        out.samples.entry(name).or_default().extend(labels);
    }
    Ok(out)
}

/// Name and label names of one sample line; checks the value is a number.
fn sample(line: &str) -> Result<(String, Vec<String>), String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or_else(|| format!("sample without a value: {line:?}"))?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let (names, after) = label_names(body)?;
        labels = names;
        rest = after;
    }
    let value = rest
        .split_whitespace()
        .next()
        .ok_or_else(|| format!("sample {name} has no value"))?;
    if value.parse::<f64>().is_err() {
        return Err(format!("sample {name} has a non-numeric value {value:?}"));
    }
    Ok((name.to_string(), labels))
}

/// Label names inside `{…}`; returns the text after the closing brace.
/// Values are skipped honouring `\"` and `\\` escapes.
fn label_names(body: &str) -> Result<(Vec<String>, &str), String> {
    let mut names = Vec::new();
    let mut s = body.trim_start();
    loop {
        if let Some(after) = s.strip_prefix('}') {
            return Ok((names, after));
        }
        let eq = s.find('=').ok_or("label without '='")?;
        names.push(s[..eq].trim().to_string());
        s = s[eq + 1..]
            .trim_start()
            .strip_prefix('"')
            .ok_or("label value is not quoted")?;
        let mut escaped = false;
        let close = s
            .char_indices()
            .find(|&(_, c)| {
                let end = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                end
            })
            .map(|(i, _)| i)
            .ok_or("unterminated label value")?;
        s = s[close + 1..].trim_start();
        s = s.strip_prefix(',').unwrap_or(s).trim_start();
    }
}

/// A family the seed's PromQL needs, as the samples Prometheus stores.
struct Required {
    family: &'static str,
    kind: &'static str,
    /// Sample name → labels it must carry.
    samples: &'static [(&'static str, &'static [&'static str])],
}

const REQUIRED: [Required; 2] = [
    Required {
        family: "http_requests_total",
        kind: "counter",
        samples: &[("http_requests_total", &["path", "method", "status"])],
    },
    Required {
        family: "http_request_latency_seconds",
        kind: "histogram",
        samples: &[
            (
                "http_request_latency_seconds_bucket",
                &["path", "method", "le"],
            ),
            ("http_request_latency_seconds_sum", &["path", "method"]),
            ("http_request_latency_seconds_count", &["path", "method"]),
        ],
    },
];

/// One check per family the convention's queries read. The tutorial's
/// families are checked with every label the seed's dashboards group by.
pub fn check_required(exp: &Exposition, spec: &MetricsSpec, url: &str) -> Vec<Check> {
    if *spec == MetricsSpec::default() {
        return REQUIRED
            .iter()
            .map(|r| {
                let f = Family {
                    name: r.family.to_string(),
                    kind: r.kind,
                    samples: r
                        .samples
                        .iter()
                        .map(|(n, l)| (n.to_string(), l.iter().map(|s| s.to_string()).collect()))
                        .collect(),
                    optional: false,
                };
                check_family(exp, &f, url)
            })
            .collect();
    }
    families(spec)
        .iter()
        .map(|f| check_family(exp, f, url))
        .collect()
}

fn check_family(exp: &Exposition, r: &Family, url: &str) -> Check {
    let declared = exp
        .types
        .get(&r.name)
        .or_else(|| exp.types.get(r.name.trim_end_matches("_total")));
    if let Some(kind) = declared
        && kind != r.kind
    {
        return Check::fail(
            "metrics",
            format!("{} is a {kind} at {url}, expected a {}", r.name, r.kind),
            format!(
                "register {} as a {} so rate() and histogram_quantile() work",
                r.name, r.kind
            ),
        );
    }
    let mut problems = Vec::new();
    for (name, labels) in &r.samples {
        match exp.samples.get(name) {
            None => problems.push(format!("no {name} samples")),
            Some(have) => {
                let missing: Vec<_> = labels.iter().filter(|l| !have.contains(*l)).collect();
                if !missing.is_empty() {
                    let list: Vec<_> = missing.iter().map(|l| l.to_string()).collect();
                    problems.push(format!("{name} lacks label(s) {}", list.join(", ")));
                }
            }
        }
    }
    if problems.is_empty() {
        return Check::pass(
            "metrics",
            format!("{} ({}) exported with its labels", r.name, r.kind),
        );
    }
    let labels: BTreeSet<&str> = r
        .samples
        .iter()
        .flat_map(|(_, l)| l.iter().map(String::as_str))
        .filter(|l| *l != "le")
        .collect();
    let absent = r.samples.iter().all(|(n, _)| !exp.samples.contains_key(n));
    if absent && r.optional {
        return Check::pass(
            "metrics",
            format!(
                "{} ({}) not exported yet: its series appear with the first failure",
                r.name, r.kind
            ),
        );
    }
    let detail = if absent {
        format!("metric family {} is missing at {url}", r.name)
    } else {
        format!("{} at {url}: {}", r.name, problems.join("; "))
    };
    Check::fail(
        "metrics",
        detail,
        format!(
            "the service must export {} {} with labels {{{}}}; the dashboards and rules query it by these names",
            r.kind,
            r.name,
            labels.into_iter().collect::<Vec<_>>().join(",")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "# HELP http_requests Requests.\n# TYPE http_requests counter\n\
        http_requests_total{path=\"/predict\",method=\"POST\",status=\"200\"} 3\n\
        # TYPE http_request_latency_seconds histogram\n\
        http_request_latency_seconds_sum{path=\"/predict\",method=\"POST\"} 0.5\n\
        http_request_latency_seconds_count{path=\"/predict\",method=\"POST\"} 3\n\
        http_request_latency_seconds_bucket{le=\"+Inf\",path=\"/predict\",method=\"POST\"} 3\n\
        # EOF\n";

    #[test]
    fn parses_names_labels_and_types() {
        let e = parse(GOOD).unwrap();
        assert_eq!(e.types["http_requests"], "counter");
        let l = &e.samples["http_requests_total"];
        assert!(l.contains("path") && l.contains("status"));
        assert!(
            check_required(&e, &MetricsSpec::default(), "u")
                .iter()
                .all(|c| c.verdict == super::super::check::Verdict::Pass)
        );
    }

    #[test]
    fn label_values_with_escapes_and_commas() {
        let e = parse("m{a=\"x\\\"},y\",b=\"\"} 1 1700000000\nn NaN\no +Inf\n").unwrap();
        assert_eq!(
            e.samples["m"].iter().cloned().collect::<Vec<_>>(),
            vec!["a".to_string(), "b".to_string()]
        );
        assert!(e.samples.contains_key("n") && e.samples.contains_key("o"));
    }

    #[test]
    fn rejects_malformed_lines_with_their_number() {
        assert_eq!(parse("ok 1\nbad{a=\"x} 1\n").unwrap_err().line, 2);
        assert!(parse("m{a=\"x\"} twelve\n").is_err());
        assert!(parse("m{a} 1\n").is_err());
        assert!(parse("justaname\n").is_err());
    }

    #[test]
    fn missing_family_and_missing_label_are_named() {
        let e = parse("http_requests_total{path=\"/\",method=\"GET\"} 1\n").unwrap();
        let checks = check_required(&e, &MetricsSpec::default(), "http://t/metrics");
        assert!(
            checks[0].detail.contains("lacks label(s) status"),
            "{checks:?}"
        );
        assert_eq!(
            checks[1].detail,
            "metric family http_request_latency_seconds is missing at http://t/metrics"
        );
        assert!(checks[1].hint.as_deref().unwrap().contains("{method,path}"));
    }

    #[test]
    fn wrong_type_is_reported() {
        let e = parse("# TYPE http_request_latency_seconds summary\n").unwrap();
        let c = &check_required(&e, &MetricsSpec::default(), "u")[1];
        assert!(c.detail.contains("is a summary"), "{c:?}");
    }
}
