//! Reads Prometheus rule files into typed, validated structs (strict YAML,
//! every `expr` parsed as PromQL) so mistakes surface before any traffic runs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// Why a rule file could not be read, parsed, validated or rewritten.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read rule file {}: {} (hint: paths are relative to the scenario file)", path.display(), io_text(source))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}{}: invalid rule file YAML: {message}", path.display(), line_suffix(*line))]
    Yaml {
        path: PathBuf,
        line: Option<u64>,
        message: String,
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    #[error("{}{}: {at}: {message}", path.display(), line_suffix(*line))]
    Invalid {
        path: PathBuf,
        line: Option<u64>,
        at: RuleAt,
        message: String,
    },
    #[error("invalid PromQL {expr:?}: {message}")]
    Expr { expr: String, message: String },
    #[error("cannot scale by time_scale {factor}: it must be a finite number > 0")]
    Factor { factor: f64 },
    #[error("cannot write scaled rule file {}: {}", path.display(), io_text(source))]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serialize scaled rule file for {}: {message}", path.display())]
    Serialize { path: PathBuf, message: String },
}

/// Where in a rule file a problem is: the group and, when known, the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleAt {
    pub group: String,
    pub rule: Option<(RuleKindName, String)>,
}

/// Whether a rule records a series or raises an alert; printed as the YAML key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKindName {
    Record,
    Alert,
}

impl fmt::Display for RuleAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "group {:?}", self.group)?;
        match &self.rule {
            Some((RuleKindName::Record, name)) => write!(f, ", record {name:?}"),
            Some((RuleKindName::Alert, name)) => write!(f, ", alert {name:?}"),
            None => Ok(()),
        }
    }
}

fn line_suffix(line: Option<u64>) -> String {
    line.map(|l| format!(":{l}")).unwrap_or_default()
}

/// The OS message without Rust's " (os error N)" tail, which helps nobody.
pub(crate) fn io_text(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// A parsed, validated rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFile {
    pub path: PathBuf,
    pub groups: Vec<RuleGroup>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroup {
    pub name: String,
    /// `None`: the global evaluation interval applies.
    pub interval: Option<Duration>,
    pub limit: Option<u64>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    Recording(RecordingRule),
    Alert(AlertRule),
}

impl Rule {
    pub fn name(&self) -> &str {
        match self {
            Rule::Recording(r) => &r.name,
            Rule::Alert(a) => &a.name,
        }
    }

    pub fn expr(&self) -> &str {
        match self {
            Rule::Recording(r) => &r.expr,
            Rule::Alert(a) => &a.expr,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordingRule {
    pub name: String,
    pub expr: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub name: String,
    pub expr: String,
    /// Zero when the rule has no `for` (fires on the first true evaluation).
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl RuleFile {
    pub fn alerts(&self) -> impl Iterator<Item = &AlertRule> {
        self.rules().filter_map(|r| match r {
            Rule::Alert(a) => Some(a),
            Rule::Recording(_) => None,
        })
    }

    pub fn recording_rules(&self) -> impl Iterator<Item = &RecordingRule> {
        self.rules().filter_map(|r| match r {
            Rule::Recording(r) => Some(r),
            Rule::Alert(_) => None,
        })
    }

    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.groups.iter().flat_map(|g| g.rules.iter())
    }

    pub fn alert(&self, name: &str) -> Option<&AlertRule> {
        self.alerts().find(|a| a.name == name)
    }
}

// The raw serde model mirrors Prometheus' own rule-file schema; it is turned
// into the typed structs above once, in `resolve`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Spanned<String>,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    record: Option<Spanned<String>>,
    #[serde(default)]
    alert: Option<Spanned<String>>,
    expr: Spanned<String>,
    #[serde(default, rename = "for")]
    for_: Option<Spanned<String>>,
    #[serde(default)]
    keep_firing_for: Option<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Reads, parses and validates one rule file.
pub fn load(path: &Path) -> Result<RuleFile, RulesError> {
    let text =
        crate::input::read_to_string(path, crate::input::Pipes::Refused).map_err(|source| {
            RulesError::Read {
                path: path.to_path_buf(),
                source,
            }
        })?;
    parse_str(&text, path)
}

/// Parses rule-file text; `path` is only used in error messages.
pub fn parse_str(text: &str, path: &Path) -> Result<RuleFile, RulesError> {
    let raw: RawFile = serde_saphyr::from_str(text).map_err(|e| {
        let message = e.without_snippet().to_string();
        let message = message.lines().next().unwrap_or("").trim();
        // The line is already in the prefix; the column adds noise.
        let message = match message.rfind(" at line ") {
            Some(i) => &message[..i],
            None => message,
        }
        .to_string();
        RulesError::Yaml {
            path: path.to_path_buf(),
            line: e.location().map(|l| l.line()),
            message,
            source: Box::new(e),
        }
    })?;
    resolve(raw, path)
}

fn resolve(raw: RawFile, path: &Path) -> Result<RuleFile, RulesError> {
    let invalid = |line: u64, at: RuleAt, message: String| RulesError::Invalid {
        path: path.to_path_buf(),
        line: Some(line),
        at,
        message,
    };
    let mut groups = Vec::with_capacity(raw.groups.len());
    let mut seen_groups = std::collections::BTreeSet::new();
    for g in raw.groups {
        let group_at = RuleAt {
            group: g.name.value.clone(),
            rule: None,
        };
        let group_line = g.name.referenced.line();
        if g.name.value.is_empty() {
            return Err(invalid(group_line, group_at, "group name is empty".into()));
        }
        if !seen_groups.insert(g.name.value.clone()) {
            return Err(invalid(
                group_line,
                group_at,
                "group name is used twice in this file".into(),
            ));
        }
        let interval = match &g.interval {
            Some(text) => Some(
                parse_nonzero_duration(text)
                    .map_err(|m| invalid(group_line, group_at.clone(), format!("interval: {m}")))?,
            ),
            None => None,
        };
        let mut rules = Vec::with_capacity(g.rules.len());
        for r in g.rules {
            rules.push(resolve_rule(r, &g.name.value, &invalid)?);
        }
        groups.push(RuleGroup {
            name: g.name.value,
            interval,
            limit: g.limit,
            rules,
        });
    }
    Ok(RuleFile {
        path: path.to_path_buf(),
        groups,
    })
}

fn resolve_rule(
    r: RawRule,
    group: &str,
    invalid: &dyn Fn(u64, RuleAt, String) -> RulesError,
) -> Result<Rule, RulesError> {
    let expr_line = r.expr.referenced.line();
    let (kind, name) = match (r.record, r.alert) {
        (Some(rec), None) => (RuleKindName::Record, rec),
        (None, Some(alert)) => (RuleKindName::Alert, alert),
        (Some(rec), Some(_)) => {
            let at = RuleAt {
                group: group.into(),
                rule: Some((RuleKindName::Record, rec.value)),
            };
            return Err(invalid(
                rec.referenced.line(),
                at,
                "a rule has either `record` or `alert`, not both".into(),
            ));
        }
        (None, None) => {
            let at = RuleAt {
                group: group.into(),
                rule: None,
            };
            return Err(invalid(
                expr_line,
                at,
                "rule has neither `record` nor `alert` (hint: add `alert: Name` or `record: level:metric:operation`)".into(),
            ));
        }
    };
    let at = RuleAt {
        group: group.into(),
        rule: Some((kind, name.value.clone())),
    };
    if name.value.trim().is_empty() {
        return Err(invalid(name.referenced.line(), at, "name is empty".into()));
    }
    if r.expr.value.trim().is_empty() {
        return Err(invalid(expr_line, at, "expr is empty".into()));
    }
    if let Err(message) = promql_parser::parser::parse(&r.expr.value) {
        return Err(invalid(
            expr_line,
            at,
            format!("invalid PromQL: {}", one_line(&message)),
        ));
    }
    let duration = |field: &str, value: Option<Spanned<String>>| -> Result<Duration, RulesError> {
        match value {
            None => Ok(Duration::ZERO),
            Some(s) => parse_duration(&s.value)
                .map_err(|m| invalid(s.referenced.line(), at.clone(), format!("{field}: {m}"))),
        }
    };
    match kind {
        RuleKindName::Record => {
            for (field, given) in [
                ("for", r.for_.is_some()),
                ("keep_firing_for", r.keep_firing_for.is_some()),
                ("annotations", !r.annotations.is_empty()),
            ] {
                if given {
                    return Err(invalid(
                        name.referenced.line(),
                        at,
                        format!("`{field}` is only allowed on alerting rules"),
                    ));
                }
            }
            Ok(Rule::Recording(RecordingRule {
                name: name.value,
                expr: r.expr.value,
                labels: r.labels,
            }))
        }
        RuleKindName::Alert => {
            let for_ = duration("for", r.for_)?;
            let keep_firing_for = duration("keep_firing_for", r.keep_firing_for)?;
            Ok(Rule::Alert(AlertRule {
                name: name.value,
                expr: r.expr.value,
                for_,
                keep_firing_for,
                labels: r.labels,
                annotations: r.annotations,
            }))
        }
    }
}

/// A Prometheus duration (`5m`, `1h30m`, `250ms`, `0s`): units y w d h m s ms,
/// each at most once, largest first — the grammar of Prometheus' model.ParseDuration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let bad = || format!("invalid duration {text:?} (hint: write e.g. 30s, 5m, 1h30m)");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut millis: u64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let after = &rest[digits..];
        let unit_len = if after.starts_with("ms") {
            2
        } else {
            after.chars().next().map_or(0, char::len_utf8)
        };
        let unit = &after[..unit_len];
        let idx = UNITS[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .map(|i| i + next_unit)
            .ok_or_else(bad)?;
        millis = n
            .checked_mul(UNITS[idx].1)
            .and_then(|v| v.checked_add(millis))
            .ok_or_else(bad)?;
        next_unit = idx + 1;
        rest = &after[unit_len..];
    }
    Ok(Duration::from_millis(millis))
}

fn parse_nonzero_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err(format!("invalid duration {text:?}: must be greater than 0"));
    }
    Ok(d)
}

/// Formats a duration the way Prometheus writes it (`5m`, `1m30s`, `750ms`).
pub fn format_duration(d: Duration) -> String {
    promql_parser::util::display_duration(&d)
}

pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RuleFile, RulesError> {
        parse_str(text, Path::new("rules/alerts.yml"))
    }

    #[test]
    fn loads_the_shipped_rules() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let alerts = load(&root.join("alerts.yml")).expect("alerts.yml is valid");
        let high = alerts.alert("HighErrorRate").expect("HighErrorRate exists");
        assert_eq!(high.for_, Duration::from_secs(300));
        assert_eq!(high.labels["severity"], "critical");
        assert_eq!(high.annotations["summary"], "High 5xx error rate");
        assert!(alerts.alert("HighLatencyP90").is_some());
        let rec = load(&root.join("recording.yml")).expect("recording.yml is valid");
        let names: Vec<_> = rec.recording_rules().map(|r| r.name.as_str()).collect();
        assert!(names.contains(&"job:http_request_duration_seconds:p90"));
        assert!(names.contains(&"job:http_requests:error_ratio_rate5m"));
        assert_eq!(rec.alerts().count(), 0);
    }

    #[test]
    fn parses_all_fields() {
        let f = parse(
            "groups:\n- name: g\n  interval: 30s\n  limit: 10\n  rules:\n  - alert: A\n    expr: up == 0\n    for: 1m30s\n    keep_firing_for: 2m\n    labels: {severity: page}\n    annotations: {summary: down}\n  - record: r:up\n    expr: sum(up)\n    labels: {team: x}\n",
        )
        .expect("valid");
        let g = &f.groups[0];
        assert_eq!(g.interval, Some(Duration::from_secs(30)));
        assert_eq!(g.limit, Some(10));
        let a = f.alert("A").expect("alert A");
        assert_eq!(a.for_, Duration::from_secs(90));
        assert_eq!(a.keep_firing_for, Duration::from_secs(120));
        assert_eq!(
            f.recording_rules()
                .next()
                .map(|r| r.labels["team"].as_str()),
            Some("x")
        );
    }

    #[test]
    fn invalid_promql_names_file_group_rule_and_line() {
        let err = parse(
            "groups:\n  - name: mlops-alerts\n    rules:\n      - alert: HighErrorRate\n        expr: sum(rate(x[5m]) > \n",
        )
        .expect_err("bad PromQL");
        let text = err.to_string();
        assert!(
            text.starts_with(
                "rules/alerts.yml:5: group \"mlops-alerts\", alert \"HighErrorRate\": invalid PromQL: "
            ),
            "{text}"
        );
        assert!(!text.contains('\n'), "{text}");
    }

    #[test]
    fn unknown_field_is_rejected_with_line() {
        let err = parse("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        fore: 5m\n")
            .expect_err("unknown field");
        let text = err.to_string();
        assert!(
            text.starts_with("rules/alerts.yml:6: invalid rule file YAML"),
            "{text}"
        );
        assert!(text.contains("fore"), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }

    #[test]
    fn unknown_group_field_is_rejected() {
        let err =
            parse("groups:\n  - name: g\n    intervall: 1m\n    rules: []\n").expect_err("unknown");
        assert!(err.to_string().contains("intervall"), "{err}");
    }

    #[test]
    fn bad_durations_name_the_field() {
        let err = parse("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        for: 5 minutes\n")
            .expect_err("bad for");
        let text = err.to_string();
        assert!(
            text.contains("group \"g\", alert \"A\": for: invalid duration \"5 minutes\""),
            "{text}"
        );
        assert!(text.starts_with("rules/alerts.yml:6:"), "{text}");

        let err =
            parse("groups:\n  - name: g\n    interval: 0s\n    rules: []\n").expect_err("zero");
        assert!(
            err.to_string()
                .contains("group \"g\": interval: invalid duration \"0s\": must be greater than 0"),
            "{err}"
        );
    }

    #[test]
    fn durations_follow_prometheus_grammar() {
        let ok = [
            ("0s", 0),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("250ms", 250),
            ("1m1s1ms", 61_001),
            ("2w", 1_209_600_000),
            ("1y", 31_536_000_000),
        ];
        for (text, ms) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        for text in [
            "",
            "5",
            "m",
            "5 m",
            "1s1m",
            "1.5m",
            "-1s",
            "5mm",
            "1ms1s",
            "99999999999999999999y",
        ] {
            assert!(parse_duration(text).is_err(), "{text:?} should be rejected");
        }
    }

    #[test]
    fn alert_without_for_has_zero_for() {
        let f = parse("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        for: 0s\n      - alert: B\n        expr: up == 0\n")
            .expect("valid");
        assert!(f.alerts().all(|a| a.for_.is_zero()));
    }

    #[test]
    fn record_and_alert_are_exclusive_and_required() {
        let both = parse("groups:\n  - name: g\n    rules:\n      - alert: A\n        record: r\n        expr: up\n")
            .expect_err("both");
        assert!(both.to_string().contains("not both"), "{both}");
        let none = parse("groups:\n  - name: g\n    rules:\n      - expr: up\n").expect_err("none");
        assert!(
            none.to_string().contains("neither `record` nor `alert`"),
            "{none}"
        );
    }

    #[test]
    fn recording_rule_rejects_alert_only_fields() {
        let err = parse("groups:\n  - name: g\n    rules:\n      - record: r\n        expr: up\n        for: 1m\n")
            .expect_err("for on record");
        assert!(
            err.to_string()
                .contains("`for` is only allowed on alerting rules"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_group_is_rejected() {
        let err = parse("groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n")
            .expect_err("dup");
        assert!(
            err.to_string()
                .contains("rules/alerts.yml:4: group \"g\": group name is used twice"),
            "{err}"
        );
    }

    #[test]
    fn missing_file_has_hint_and_no_os_error_noise() {
        let err = load(Path::new("rules/x.yml")).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "cannot read rule file rules/x.yml: No such file or directory (hint: paths are relative to the scenario file)"
        );
        assert!(std::error::Error::source(&err).is_some());
    }

    fn fixture(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/rules")
            .join(rel)
    }

    #[test]
    fn good_fixtures_load() {
        let f = load(&fixture("good/full.yml")).expect("valid fixture");
        assert_eq!(f.rules().count(), 3);
        assert_eq!(
            f.alert("TargetDown").map(|a| a.keep_firing_for),
            Some(Duration::from_secs(120))
        );
    }

    /// The user-facing text of every bad fixture, paths relative to the
    /// fixture folder so the snapshot is machine-independent.
    #[test]
    fn bad_fixture_messages() {
        let dir = fixture("bad");
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .expect("fixture dir")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        names.sort();
        let mut report = String::new();
        for name in names {
            let text = std::fs::read_to_string(dir.join(&name)).expect("read fixture");
            let err = parse_str(&text, &Path::new("bad").join(&name))
                .expect_err("bad fixture is rejected");
            report.push_str(&format!("{err}\n"));
        }
        insta::assert_snapshot!(report);
    }

    #[test]
    fn not_yaml_is_an_error_not_a_panic() {
        for text in [
            "",
            "groups: [",
            "- a\n- b\n",
            "groups:\n  - name: [1, 2]\n",
            "\u{0}\u{1}",
        ] {
            assert!(parse(text).is_err(), "{text:?} should be rejected");
        }
    }
}
