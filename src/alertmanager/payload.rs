//! Alertmanager's webhook payload (version 4) as received, and one recorded
//! notification with its arrival time.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// The JSON body Alertmanager POSTs to a `webhook_config` URL. Unknown
/// fields are ignored so newer Alertmanagers still parse.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub group_key: String,
    /// `firing` or `resolved` (the group's status).
    pub status: String,
    /// The receiver name in the Alertmanager config.
    pub receiver: String,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    pub alerts: Vec<WebhookAlert>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    /// `firing` or `resolved`.
    pub status: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: String,
    #[serde(default)]
    pub ends_at: String,
}

/// One delivery as the recorder saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub received_at: SystemTime,
    /// The `<name>` of the `/receiver/<name>` URL it was posted to.
    pub url_receiver: String,
    pub payload: WebhookPayload,
}

impl Notification {
    /// The receiver this went to: the payload's, which is the config's name.
    pub fn receiver(&self) -> &str {
        if self.payload.receiver.is_empty() {
            &self.url_receiver
        } else {
            &self.payload.receiver
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_alertmanager_v4_body() {
        let body = r#"{"receiver":"oncall","status":"firing","alerts":[{"status":"firing",
          "labels":{"alertname":"HighErrorRate","severity":"critical"},"annotations":{},
          "startsAt":"2026-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"x",
          "fingerprint":"f"}],"groupLabels":{"alertname":"HighErrorRate"},
          "commonLabels":{"alertname":"HighErrorRate"},"commonAnnotations":{},
          "externalURL":"http://127.0.0.1:1","version":"4","groupKey":"{}:{}","truncatedAlerts":0}"#;
        let p: WebhookPayload = serde_json::from_str(body).expect("parses");
        assert_eq!(p.receiver, "oncall");
        assert_eq!(p.alerts[0].labels["severity"], "critical");
        assert_eq!(p.version, "4");
    }
}
