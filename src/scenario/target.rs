//! `[target]` and its `request = { … }` resolved: where traffic goes and
//! what each request looks like.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;

use super::ctx::{Ctx, duration_or, parse_url};
use super::raw::*;
use crate::fault_protocol;
use crate::plan::*;

/// Body sent to the built-in model when the scenario gives none.
pub const DEFAULT_BODY: &str = r#"{"features":[5.1,3.5,1.4,0.2]}"#;

pub(super) fn add_content_type(r: &mut RequestTemplate, value: &str) {
    if let Ok(v) = http::HeaderValue::from_str(value) {
        r.headers.push((http::header::CONTENT_TYPE, v));
    }
}

pub(super) fn resolve_target(
    t: Option<&S<RawTarget>>,
    dir: &Path,
    cx: &mut Ctx<'_>,
) -> (Option<TargetPlan>, Option<RequestTemplate>) {
    let Some(t) = t.map(S::get_ref) else {
        let request = RequestTemplate {
            method: http::Method::POST,
            path: "/predict".into(),
            headers: Vec::new(),
            bodies: Vec::new(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
        };
        return (Some(TargetPlan::BuiltIn), Some(request));
    };
    let target = match &t.url {
        Some(u) => parse_url(u, "target.url", cx).map(|url| TargetPlan::External { url }),
        None => Some(TargetPlan::BuiltIn),
    };
    let timeout = duration_or(
        t.timeout.as_ref(),
        Duration::from_secs(10),
        "target.timeout",
        cx,
    );
    let connect_timeout = duration_or(
        t.connect_timeout.as_ref(),
        Duration::from_secs(2),
        "target.connect_timeout",
        cx,
    );
    if let (Some(to), Some(ct), Some(span)) = (
        timeout,
        connect_timeout,
        t.connect_timeout.as_ref().map(S::span),
    ) {
        if ct > to {
            cx.error(
                &span,
                "target.connect_timeout",
                format!(
                    "connect_timeout ({}) must not exceed timeout ({})",
                    humantime::format_duration(ct),
                    humantime::format_duration(to)
                ),
            );
        }
    }
    let request = resolve_request(t.request.as_ref().map(S::get_ref), dir, cx);
    let request = match (request, timeout, connect_timeout) {
        (Some(mut r), Some(timeout), Some(connect_timeout)) => {
            r.timeout = timeout;
            r.connect_timeout = connect_timeout;
            Some(r)
        }
        _ => None,
    };
    (target, request)
}

fn resolve_request(
    r: Option<&RawRequest>,
    dir: &Path,
    cx: &mut Ctx<'_>,
) -> Option<RequestTemplate> {
    let mut ok = true;
    let mut out = RequestTemplate {
        method: http::Method::POST,
        path: "/predict".into(),
        headers: Vec::new(),
        bodies: Vec::new(),
        timeout: Duration::ZERO,
        connect_timeout: Duration::ZERO,
    };
    let Some(r) = r else { return Some(out) };
    if let Some(m) = &r.method {
        match http::Method::from_bytes(m.get_ref().to_ascii_uppercase().as_bytes()) {
            Ok(method) if !m.get_ref().is_empty() => out.method = method,
            _ => {
                cx.error_hint(
                    &m.span(),
                    "target.request.method",
                    format!("invalid HTTP method \"{}\"", m.get_ref()),
                    "use GET, POST, PUT, …",
                );
                ok = false;
            }
        }
    }
    if let Some(p) = &r.path {
        if p.get_ref().starts_with('/')
            && http::uri::PathAndQuery::try_from(p.get_ref().as_str()).is_ok()
        {
            out.path = p.get_ref().clone();
        } else {
            cx.error_hint(
                &p.span(),
                "target.request.path",
                format!("invalid request path \"{}\"", p.get_ref()),
                "a path starts with / and may carry a query, e.g. \"/predict?v=2\"",
            );
            ok = false;
        }
    }
    for (key, value) in r.headers.iter().flatten() {
        let path = format!("target.request.headers.{key}");
        let name = http::HeaderName::from_bytes(key.as_bytes());
        let val = http::HeaderValue::from_str(value.get_ref());
        match (name, val) {
            (Ok(n), _) if n.as_str() == fault_protocol::FAULT_HEADER => {
                cx.error_hint(
                    &value.span(),
                    &path,
                    format!(
                        "header {} is reserved for injected faults",
                        fault_protocol::FAULT_HEADER
                    ),
                    "describe faults with a phase's faults = { … }",
                );
                ok = false;
            }
            (Ok(n), _) if n == http::header::CONTENT_TYPE && r.content_type.is_some() => {
                cx.error_hint(
                    &value.span(),
                    &path,
                    "content type is set twice",
                    "keep either content_type or headers.content-type",
                );
                ok = false;
            }
            (Ok(n), Ok(v)) => out.headers.push((n, v)),
            (Err(_), _) => {
                cx.error(
                    &value.span(),
                    &path,
                    format!("invalid header name \"{key}\""),
                );
                ok = false;
            }
            (_, Err(_)) => {
                cx.error(
                    &value.span(),
                    &path,
                    format!("invalid header value \"{}\"", value.get_ref()),
                );
                ok = false;
            }
        }
    }
    match (&r.body, &r.body_file) {
        (Some(_), Some(f)) => {
            cx.error_hint(
                &f.span(),
                "target.request.body_file",
                "body and body_file are both set",
                "keep one of them",
            );
            ok = false;
        }
        (Some(b), None) if !b.get_ref().is_empty() => {
            out.bodies.push(Bytes::from(b.get_ref().clone()))
        }
        (None, Some(f)) => match super::body::read_jsonl(&dir.join(f.get_ref()), f.get_ref()) {
            Ok(bodies) => out.bodies = bodies,
            Err(e) => {
                cx.error_hint(
                    &f.span(),
                    "target.request.body_file",
                    e,
                    "one JSON body per line; relative paths start at the scenario's folder",
                );
                ok = false;
            }
        },
        _ => {}
    }
    let has_ct_header = out
        .headers
        .iter()
        .any(|(n, _)| n == http::header::CONTENT_TYPE);
    match &r.content_type {
        Some(ct) => match http::HeaderValue::from_str(ct.get_ref()) {
            Ok(v) => out.headers.push((http::header::CONTENT_TYPE, v)),
            Err(_) => {
                cx.error(
                    &ct.span(),
                    "target.request.content_type",
                    format!("invalid content type \"{}\"", ct.get_ref()),
                );
                ok = false;
            }
        },
        None if !out.bodies.is_empty() && !has_ct_header => {
            add_content_type(&mut out, "application/json")
        }
        None => {}
    }
    ok.then_some(out)
}
