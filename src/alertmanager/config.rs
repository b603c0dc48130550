//! The Alertmanager config slocheck runs: generated (everything to the
//! recorder) or the user's own, rewritten so its routing tree is tested as
//! written while every receiver delivers to the recorder. Works on a generic
//! YAML value tree (serde-saphyr into `serde_json::Value`), never on text.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::error::AmError;
use super::receiver::receiver_url;
use crate::prom::rules::{format_duration, parse_duration};

/// The receiver slocheck adds: a catch-all `continue: true` route sends every
/// alert here too, so a delivery that the user's tree sends nowhere is still
/// visible as evidence.
pub const RECORDER_RECEIVER: &str = "slocheck-recorder";

/// Alertmanager's own defaults for a route that does not set them.
const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(300);
const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);
const TIMING_KEYS: [&str; 3] = ["group_wait", "group_interval", "repeat_interval"];

/// Grouping delays as Alertmanager will apply them (already time-scaled);
/// the longest anywhere in the tree, so bounds derived from them hold for
/// every route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteTiming {
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
}

/// A ready-to-write Alertmanager config and what slocheck knows about it.
#[derive(Debug, Clone, PartialEq)]
pub struct AmConfig {
    pub yaml: String,
    pub timing: RouteTiming,
    /// Receiver name → whether it sends resolved notifications.
    pub send_resolved: BTreeMap<String, bool>,
    /// What was changed in the user's file, one line each (empty when generated).
    pub rewritten: Vec<String>,
}

/// Short delays suitable for tests: the first notification ~1 s after an
/// alert fires, the resolved one ~1 s after it resolves.
pub fn generated(recorder: SocketAddr) -> Result<AmConfig, AmError> {
    let timing = RouteTiming {
        group_wait: Duration::from_secs(1),
        group_interval: Duration::from_secs(1),
        repeat_interval: Duration::from_secs(3600),
    };
    let tree = json!({
        "route": {
            "receiver": RECORDER_RECEIVER,
            "group_by": ["alertname"],
            "group_wait": format_duration(timing.group_wait),
            "group_interval": format_duration(timing.group_interval),
            "repeat_interval": format_duration(timing.repeat_interval),
        },
        "receivers": [recorder_receiver(recorder)],
    });
    Ok(AmConfig {
        yaml: emit(&tree)?,
        timing,
        send_resolved: BTreeMap::from([(RECORDER_RECEIVER.to_string(), true)]),
        rewritten: Vec::new(),
    })
}

fn recorder_receiver(recorder: SocketAddr) -> Value {
    json!({
        "name": RECORDER_RECEIVER,
        "webhook_configs": [{ "url": receiver_url(recorder, RECORDER_RECEIVER), "send_resolved": true }],
    })
}

fn emit(tree: &Value) -> Result<String, AmError> {
    serde_saphyr::to_string(tree).map_err(|e| AmError::ConfigEmit(e.to_string()))
}

/// Rewrites the user's config at `path` (its text is `text`):
/// - every route's `group_wait` / `group_interval` / `repeat_interval` is
///   divided by `time_scale` (the root gets Alertmanager's defaults first);
/// - every receiver's integrations (`*_configs`) are replaced by one
///   webhook to `/receiver/<name>` on the recorder, keeping `send_resolved`
///   as the replaced integrations had it; with `live`, the integrations stay
///   and the webhook is added beside them;
/// - a `slocheck-recorder` receiver and a first child route to it with
///   `continue: true` are added;
/// - relative `templates` paths are made absolute.
pub fn rewrite(
    text: &str,
    path: &Path,
    recorder: SocketAddr,
    time_scale: f64,
    live: bool,
) -> Result<AmConfig, AmError> {
    let shape = |message: String| AmError::ConfigShape {
        path: path.to_path_buf(),
        message,
    };
    let mut tree: Value = serde_saphyr::from_str(text).map_err(|e| AmError::ConfigParse {
        path: path.to_path_buf(),
        message: crate::prom::rules::one_line(&e.to_string()),
    })?;
    let root = tree
        .as_object_mut()
        .ok_or_else(|| shape("the file is not a YAML mapping".into()))?;
    let mut rewritten = Vec::new();

    let route = root
        .get_mut("route")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| {
            shape("has no route mapping (hint: Alertmanager needs a root route)".into())
        })?;
    let defaults = [
        DEFAULT_GROUP_WAIT,
        DEFAULT_GROUP_INTERVAL,
        DEFAULT_REPEAT_INTERVAL,
    ];
    for (key, d) in TIMING_KEYS.iter().zip(defaults) {
        route
            .entry(key.to_string())
            .or_insert_with(|| Value::String(format_duration(d)));
    }
    let mut longest = [Duration::ZERO; 3];
    scale_route(route, time_scale, "route", &mut longest).map_err(shape)?;
    if time_scale != 1.0 {
        rewritten.push(format!(
            "group_wait, group_interval and repeat_interval of every route divided by time_scale {time_scale}"
        ));
    }
    let children = route
        .entry("routes")
        .or_insert_with(|| Value::Array(Vec::new()));
    let children = children
        .as_array_mut()
        .ok_or_else(|| shape("route.routes is not a list".into()))?;
    children.insert(
        0,
        json!({ "receiver": RECORDER_RECEIVER, "continue": true }),
    );
    rewritten.push(format!(
        "route.routes[0] added: receiver {RECORDER_RECEIVER}, continue: true (sees every alert)"
    ));

    let receivers = root
        .get_mut("receivers")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| shape("has no receivers list".into()))?;
    let mut send_resolved = BTreeMap::new();
    for r in receivers.iter_mut() {
        let r = r
            .as_object_mut()
            .ok_or_else(|| shape("a receiver is not a mapping".into()))?;
        let name = r
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| shape("a receiver has no name".into()))?
            .to_string();
        if name == RECORDER_RECEIVER {
            return Err(shape(format!(
                "receiver name {RECORDER_RECEIVER} is reserved by slocheck (hint: rename it)"
            )));
        }
        let (resolved, note) = rewrite_receiver(r, &name, recorder, live);
        if let Some(note) = note {
            rewritten.push(note);
        }
        send_resolved.insert(name, resolved);
    }
    receivers.push(recorder_receiver(recorder));
    send_resolved.insert(RECORDER_RECEIVER.to_string(), true);

    if let (Some(dir), Some(templates)) = (
        path.parent(),
        root.get_mut("templates").and_then(Value::as_array_mut),
    ) {
        for t in templates.iter_mut() {
            if let Some(s) = t.as_str()
                && Path::new(s).is_relative()
            {
                *t = Value::String(std::path::absolute(dir.join(s)).map_or_else(
                    |_| dir.join(s).display().to_string(),
                    |p| p.display().to_string(),
                ));
            }
        }
    }
    Ok(AmConfig {
        yaml: emit(&tree)?,
        timing: RouteTiming {
            group_wait: longest[0],
            group_interval: longest[1],
            repeat_interval: longest[2],
        },
        send_resolved,
        rewritten,
    })
}

/// Scales the timing keys of `route` and its children, tracking the longest.
fn scale_route(
    route: &mut Map<String, Value>,
    scale: f64,
    at: &str,
    longest: &mut [Duration; 3],
) -> Result<(), String> {
    for (i, key) in TIMING_KEYS.iter().enumerate() {
        let Some(v) = route.get_mut(*key) else {
            continue;
        };
        let text = v
            .as_str()
            .ok_or_else(|| format!("{at}.{key} is not a duration string"))?;
        let d = parse_duration(text).map_err(|e| format!("{at}.{key}: {e}"))?;
        let scaled = d.div_f64(scale).max(Duration::from_millis(1));
        longest[i] = longest[i].max(scaled);
        *v = Value::String(format_duration(scaled));
    }
    if let Some(children) = route.get_mut("routes").and_then(Value::as_array_mut) {
        for (i, c) in children.iter_mut().enumerate() {
            let c = c
                .as_object_mut()
                .ok_or_else(|| format!("{at}.routes[{i}] is not a mapping"))?;
            scale_route(c, scale, &format!("{at}.routes[{i}]"), longest)?;
        }
    }
    Ok(())
}

/// Integrations whose `send_resolved` defaults to false in Alertmanager.
const RESOLVED_OFF_BY_DEFAULT: [&str; 3] = ["email_configs", "slack_configs", "wechat_configs"];

/// Points one receiver at the recorder; returns whether it sends resolved
/// notifications and a note of what changed.
fn rewrite_receiver(
    r: &mut Map<String, Value>,
    name: &str,
    recorder: SocketAddr,
    live: bool,
) -> (bool, Option<String>) {
    let integrations: Vec<String> = r
        .keys()
        .filter(|k| k.ends_with("_configs"))
        .cloned()
        .collect();
    if integrations.is_empty() {
        // A receiver without integrations drops notifications in production;
        // keeping it that way is what tests the routing tree as written.
        return (false, None);
    }
    let mut resolved = false;
    for key in &integrations {
        let default = !RESOLVED_OFF_BY_DEFAULT.contains(&key.as_str());
        for cfg in r.get(key).and_then(Value::as_array).into_iter().flatten() {
            resolved |= cfg
                .get("send_resolved")
                .and_then(Value::as_bool)
                .unwrap_or(default);
        }
    }
    let hook = json!({ "url": receiver_url(recorder, name), "send_resolved": resolved });
    if live {
        match r.get_mut("webhook_configs").and_then(Value::as_array_mut) {
            Some(list) => list.push(hook),
            None => {
                r.insert("webhook_configs".into(), Value::Array(vec![hook]));
            }
        }
        return (
            resolved,
            Some(format!(
                "receiver {name}: recorder webhook added beside its integrations (live)"
            )),
        );
    }
    for key in &integrations {
        r.remove(key);
    }
    r.insert("webhook_configs".into(), Value::Array(vec![hook]));
    (
        resolved,
        Some(format!(
            "receiver {name}: {} replaced by the recorder webhook",
            integrations.join(", ")
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:9999".parse().expect("addr")
    }

    const USER: &str = r#"
global:
  slack_api_url: https://hooks.slack.com/services/T/B/X
route:
  receiver: default
  group_by: [alertname]
  group_wait: 30s
  routes:
    - receiver: oncall-critical
      matchers: ['severity="critical"']
      group_interval: 2m
receivers:
  - name: default
    email_configs:
      - to: team@example.com
  - name: oncall-critical
    slack_configs:
      - channel: '#oncall'
        send_resolved: true
    msteams_configs:
      - webhook_url: https://example.webhook.office.com/x
  - name: blackhole
templates: ['tmpl/*.tmpl']
"#;

    #[test]
    fn rewrite_replaces_integrations_scales_timing_and_adds_the_catch_all() {
        let c = rewrite(USER, Path::new("/etc/am/am.yml"), addr(), 20.0, false).expect("ok");
        let back: Value = serde_saphyr::from_str(&c.yaml).expect("re-parses");
        let route = &back["route"];
        assert_eq!(route["group_wait"], "1s500ms");
        assert_eq!(route["group_interval"], "15s");
        assert_eq!(route["repeat_interval"], "12m");
        assert_eq!(route["routes"][0]["receiver"], RECORDER_RECEIVER);
        assert_eq!(route["routes"][0]["continue"], true);
        assert_eq!(route["routes"][1]["group_interval"], "6s");
        assert_eq!(route["routes"][1]["matchers"][0], "severity=\"critical\"");
        let oncall = &back["receivers"][1];
        assert!(oncall.get("slack_configs").is_none(), "{}", c.yaml);
        assert!(oncall.get("msteams_configs").is_none(), "{}", c.yaml);
        assert_eq!(
            oncall["webhook_configs"][0]["url"],
            "http://127.0.0.1:9999/receiver/oncall-critical"
        );
        assert!(back["receivers"][2].get("webhook_configs").is_none());
        assert_eq!(back["templates"][0], "/etc/am/tmpl/*.tmpl");
        assert!(c.send_resolved["oncall-critical"]);
        assert!(!c.send_resolved["default"]);
        assert!(!c.send_resolved["blackhole"]);
        assert_eq!(c.timing.group_wait, Duration::from_millis(1500));
        assert_eq!(c.timing.group_interval, Duration::from_secs(15));
        assert!(!c.yaml.contains("hooks.slack.com/services/T/B/X\n  slack"));
    }

    #[test]
    fn live_keeps_integrations_and_adds_the_webhook() {
        let c = rewrite(USER, Path::new("am.yml"), addr(), 1.0, true).expect("ok");
        let back: Value = serde_saphyr::from_str(&c.yaml).expect("re-parses");
        let oncall = &back["receivers"][1];
        assert_eq!(oncall["slack_configs"][0]["channel"], "#oncall");
        assert_eq!(oncall["webhook_configs"].as_array().map(Vec::len), Some(1));
        assert_eq!(back["route"]["group_wait"], "30s");
    }

    #[test]
    fn rejects_files_that_are_not_alertmanager_configs() {
        let p = Path::new("am.yml");
        let e = rewrite("- a\n- b\n", p, addr(), 1.0, false).expect_err("list");
        assert!(e.to_string().contains("not a YAML mapping"), "{e}");
        let e = rewrite("receivers: []\n", p, addr(), 1.0, false).expect_err("no route");
        assert!(e.to_string().contains("has no route"), "{e}");
        let e = rewrite(
            "route: {group_wait: soon}\nreceivers: []\n",
            p,
            addr(),
            1.0,
            false,
        )
        .expect_err("bad duration");
        assert!(e.to_string().contains("route.group_wait"), "{e}");
        let e = rewrite("route: [\n", p, addr(), 1.0, false).expect_err("syntax");
        assert!(
            e.to_string()
                .starts_with("reading alertmanager config am.yml"),
            "{e}"
        );
    }

    #[test]
    fn generated_config_routes_everything_to_the_recorder() {
        let c = generated(addr()).expect("ok");
        assert!(c.yaml.contains("group_wait: 1s"), "{}", c.yaml);
        assert!(c.yaml.contains("/receiver/slocheck-recorder"), "{}", c.yaml);
    }
}
