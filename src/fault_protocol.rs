//! The fault protocol's wire format, owned here and only here: the request
//! header that asks for a fault, its grammar and canonical encoding, the
//! acknowledgement header a service answers with, and the security rule that
//! decides whose requests are honoured. The load engine encodes with it, the
//! built-in target parses and acknowledges with it, scenario validation
//! reserves its header names, and docs/fault-protocol.md describes it for
//! other implementations (the Python package in integrations/python is one;
//! tests/fixtures/fault-protocol-cases.json keeps them in step).
//!
//! Grammar (ABNF, RFC 5234; `OWS` is optional spaces or tabs):
//!
//! ```text
//! fault-header = OWS part *( OWS "," OWS part ) OWS
//! part         = status-part / delay-part          ; each key at most once
//! status-part  = "status" OWS "=" OWS 3DIGIT        ; 200..599
//! delay-part   = "delay" OWS "=" OWS 1*DIGIT unit   ; at most 60 s
//! unit         = "us" / "ms" / "s"
//! ```

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use thiserror::Error;

/// Request header that asks for a fault.
pub const FAULT_HEADER: &str = "x-slocheck-fault";
/// Response header of a service that applied the requested fault; its value
/// is the canonical encoding of what was applied.
pub const APPLIED_HEADER: &str = "x-slocheck-fault-applied";
/// Request header carrying the shared token for peers other than the host.
pub const TOKEN_HEADER: &str = "x-slocheck-fault-token";
/// Environment variable holding the shared token, on both sides.
pub const TOKEN_ENV: &str = "SLOCHECK_FAULT_TOKEN";

/// Longest delay a service injects, so a typo cannot hold a connection (and
/// a worker of the load generator) for hours.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

/// Statuses that can be injected. An informational (1xx) status cannot be a
/// final response: a server would send something else than its metrics say.
pub const INJECTABLE_STATUSES: std::ops::RangeInclusive<u16> = 200..=599;

/// The acknowledgement header as a typed name (the hot path compares names,
/// it never builds one).
pub const APPLIED_HEADER_NAME: HeaderName = HeaderName::from_static(APPLIED_HEADER);
/// The request header as a typed name.
pub const FAULT_HEADER_NAME: HeaderName = HeaderName::from_static(FAULT_HEADER);

/// What one request asks the service to do instead of (or before) answering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fault {
    /// Answer with this status without running the handler.
    pub status: Option<u16>,
    /// Wait this long before the handler (or the injected answer).
    pub delay: Option<Duration>,
}

impl Fault {
    pub fn is_empty(&self) -> bool {
        self.status.is_none() && self.delay.is_none()
    }

    /// Canonical encoding: `delay=<d>,status=<s>`, the delay in whole
    /// seconds when it is one (`2s`), else whole milliseconds (`300ms`),
    /// else microseconds (`1500us`); sub-microsecond parts are dropped (no
    /// timer honours them). Empty when there is no fault (send no header).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(24);
        if let Some(d) = self.delay {
            let us = d.as_micros();
            let _ = match (us % 1_000_000, us % 1000) {
                (0, _) => write!(out, "delay={}s", us / 1_000_000),
                (_, 0) => write!(out, "delay={}ms", us / 1000),
                _ => write!(out, "delay={us}us"),
            };
        }
        if let Some(s) = self.status {
            if !out.is_empty() {
                out.push(',');
            }
            let _ = write!(out, "status={s}");
        }
        out
    }

    /// The encoding as a header value; None when there is no fault.
    pub fn header_value(&self) -> Option<HeaderValue> {
        // Digits, letters, '=' and ',' only: always a valid header value.
        (!self.is_empty())
            .then(|| HeaderValue::from_str(&self.encode()).ok())
            .flatten()
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FaultHeaderError {
    #[error(
        "fault header is empty (hint: use `status=503`, `delay=300ms` or both, comma-separated)"
    )]
    Empty,
    #[error("fault header is not ASCII text")]
    NotAscii,
    #[error("fault header part `{part}` is not key=value (hint: `status=503,delay=300ms`)")]
    NotKeyValue { part: String },
    #[error("fault header key `{key}` is unknown (hint: keys are `status` and `delay`)")]
    UnknownKey { key: String },
    #[error("fault header key `{key}` is given twice")]
    Duplicate { key: &'static str },
    #[error(
        "fault header status `{value}` is not a final HTTP status 200..=599 (1xx cannot end a response)"
    )]
    BadStatus { value: String },
    #[error(
        "fault header delay `{value}` is not a whole number with unit us, ms or s (hint: `300ms`, `1s`)"
    )]
    BadDelay { value: String },
    #[error("fault header delay `{value}` is longer than the {max_secs}s limit", max_secs = MAX_DELAY.as_secs())]
    DelayTooLong { value: String },
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Parses a header value per the grammar in the module doc. Keys are
/// lowercase and case-sensitive, like the header's canonical form.
pub fn parse(value: &str) -> Result<Fault, FaultHeaderError> {
    let mut fault = Fault::default();
    if value.trim_matches(is_ows).is_empty() {
        return Err(FaultHeaderError::Empty);
    }
    for raw in value.split(',') {
        let part = raw.trim_matches(is_ows);
        let (key, val) = part
            .split_once('=')
            .ok_or_else(|| FaultHeaderError::NotKeyValue {
                part: part.to_owned(),
            })?;
        let (key, val) = (key.trim_matches(is_ows), val.trim_matches(is_ows));
        match key {
            "status" => {
                if fault.status.is_some() {
                    return Err(FaultHeaderError::Duplicate { key: "status" });
                }
                fault.status = Some(parse_status(val)?);
            }
            "delay" => {
                if fault.delay.is_some() {
                    return Err(FaultHeaderError::Duplicate { key: "delay" });
                }
                fault.delay = Some(parse_delay(val)?);
            }
            other => {
                return Err(FaultHeaderError::UnknownKey {
                    key: other.to_owned(),
                });
            }
        }
    }
    Ok(fault)
}

/// Parses the header as it arrived (bytes, possibly not ASCII).
pub fn parse_header(value: &HeaderValue) -> Result<Fault, FaultHeaderError> {
    parse(value.to_str().map_err(|_| FaultHeaderError::NotAscii)?)
}

fn parse_status(val: &str) -> Result<u16, FaultHeaderError> {
    Some(val)
        .filter(|v| v.len() == 3 && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<u16>().ok())
        .filter(|s| INJECTABLE_STATUSES.contains(s))
        .ok_or_else(|| FaultHeaderError::BadStatus {
            value: val.to_owned(),
        })
}

fn parse_delay(val: &str) -> Result<Duration, FaultHeaderError> {
    let bad = || FaultHeaderError::BadDelay {
        value: val.to_owned(),
    };
    let digits = val.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = val.split_at(digits);
    if number.is_empty() {
        return Err(bad());
    }
    let per_unit_us: u64 = match unit {
        "us" => 1,
        "ms" => 1000,
        "s" => 1_000_000,
        _ => return Err(bad()),
    };
    let too_long = || FaultHeaderError::DelayTooLong {
        value: val.to_owned(),
    };
    // Any number too big for u64 is also far beyond the limit.
    let us = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(per_unit_us))
        .ok_or_else(too_long)?;
    let delay = Duration::from_micros(us);
    if delay > MAX_DELAY {
        return Err(too_long());
    }
    Ok(delay)
}

/// The load generator on the same host connects from 127.0.0.1 (or ::1).
/// Other 127/8 addresses are not trusted: on a shared host they belong to
/// containers, network namespaces or proxies that forward remote traffic.
pub fn is_host_itself(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a == Ipv4Addr::LOCALHOST,
        IpAddr::V6(a) => {
            a == Ipv6Addr::LOCALHOST || a.to_ipv4_mapped() == Some(Ipv4Addr::LOCALHOST)
        }
    }
}

/// Comparison whose time does not depend on where the first mismatch is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// True when `token` is configured and the request presents it, in the
/// `x-slocheck-fault-token` header or as `Authorization: Bearer <token>`.
pub fn presents_token(headers: &HeaderMap, token: Option<&str>) -> bool {
    presents_in(headers, TOKEN_HEADER, "", token)
        || presents_in(
            headers,
            http::header::AUTHORIZATION.as_str(),
            "Bearer ",
            token,
        )
}

/// True when `token` is configured and given as `Authorization: Bearer`.
pub fn presents_bearer(headers: &HeaderMap, token: Option<&str>) -> bool {
    presents_in(
        headers,
        http::header::AUTHORIZATION.as_str(),
        "Bearer ",
        token,
    )
}

/// Some value of header `name`, after `prefix`, equals the token.
fn presents_in(headers: &HeaderMap, name: &str, prefix: &str, token: Option<&str>) -> bool {
    let Some(token) = token else {
        return false;
    };
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix(prefix))
        .any(|given| constant_time_eq(given.trim_matches(is_ows).as_bytes(), token.as_bytes()))
}

/// The security rule: a fault header is honoured from the host itself, or
/// from any peer that presents the configured token. An unknown peer (no
/// socket address) is not the host.
pub fn honoured(peer: Option<IpAddr>, headers: &HeaderMap, token: Option<&str>) -> bool {
    peer.is_some_and(is_host_itself) || presents_token(headers, token)
}

/// The token header a load generator sends, marked sensitive so it never
/// shows in debug output.
pub fn token_header(token: &str) -> Option<(HeaderName, HeaderValue)> {
    let mut value = HeaderValue::from_str(token.trim_matches(is_ows)).ok()?;
    value.set_sensitive(true);
    Some((HeaderName::from_static(TOKEN_HEADER), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn fault(status: Option<u16>, delay: Option<Duration>) -> Fault {
        Fault { status, delay }
    }

    #[test]
    fn parses_each_key_and_both_in_any_order() {
        assert_eq!(parse("status=503"), Ok(fault(Some(503), None)));
        assert_eq!(parse("delay=300ms"), Ok(fault(None, Some(MS(300)))));
        let both = fault(Some(500), Some(MS(200)));
        assert_eq!(parse("delay=200ms,status=500"), Ok(both));
        assert_eq!(parse(" status = 500 ,\tdelay=200ms "), Ok(both));
        assert_eq!(parse("delay=2s"), Ok(fault(None, Some(MS(2000)))));
        assert_eq!(
            parse("delay=1500us"),
            Ok(fault(None, Some(Duration::from_micros(1500))))
        );
    }

    #[test]
    fn rejects_bad_headers_with_the_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("  ", "empty"),
            ("status", "not key=value"),
            ("status=503,", "not key=value"),
            ("colour=red", "`colour` is unknown"),
            ("Status=503", "`Status` is unknown"),
            ("status=99", "200..=599"),
            ("status=100", "200..=599"),
            ("status=600", "200..=599"),
            ("status=0503", "200..=599"),
            ("status=+503", "200..=599"),
            ("delay=soon", "whole number"),
            ("delay=1.5s", "whole number"),
            ("delay=300", "whole number"),
            ("delay=-1ms", "whole number"),
            ("delay=2h", "whole number"),
            ("delay=61s", "limit"),
            ("delay=99999999999999999999999ms", "limit"),
            ("status=500,status=503", "twice"),
        ];
        for (input, want) in cases {
            let err = parse(input).unwrap_err().to_string();
            assert!(
                err.contains(want),
                "{input:?} gave {err:?}, wanted {want:?}"
            );
        }
        let latin1 = HeaderValue::from_bytes(b"status=503\xe9").unwrap();
        assert_eq!(parse_header(&latin1), Err(FaultHeaderError::NotAscii));
    }

    #[test]
    fn encoding_is_canonical() {
        assert_eq!(
            fault(Some(503), Some(MS(300))).encode(),
            "delay=300ms,status=503"
        );
        assert_eq!(fault(Some(503), None).encode(), "status=503");
        assert_eq!(fault(None, Some(MS(2000))).encode(), "delay=2s");
        assert_eq!(
            fault(None, Some(Duration::from_nanos(1_500_999))).encode(),
            "delay=1500us"
        );
        assert_eq!(fault(None, None).encode(), "");
        assert_eq!(fault(None, None).header_value(), None);
    }

    #[test]
    fn security_rule() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let other_loopback: IpAddr = "127.0.0.2".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let none = HeaderMap::new();
        let mut with_token = HeaderMap::new();
        with_token.insert(TOKEN_HEADER, HeaderValue::from_static("t0ken"));
        let mut bearer = HeaderMap::new();
        bearer.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer t0ken"),
        );
        assert!(honoured(Some(local), &none, None));
        assert!(honoured(Some(mapped), &none, None));
        assert!(!honoured(Some(other_loopback), &none, None));
        assert!(!honoured(None, &none, None));
        assert!(!honoured(Some(other_loopback), &with_token, None));
        assert!(honoured(Some(other_loopback), &with_token, Some("t0ken")));
        assert!(honoured(Some(other_loopback), &bearer, Some("t0ken")));
        assert!(!honoured(Some(other_loopback), &with_token, Some("other")));
        let (name, value) = token_header("t0ken").unwrap();
        assert_eq!(name, TOKEN_HEADER);
        assert!(value.is_sensitive());
    }
}
