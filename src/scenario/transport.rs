//! `[target]`'s connection keys resolved: `http_version`, `connections`,
//! `keep_alive` and `tls = { … }`. Certificate files are read here, so a
//! missing or non-PEM file is an input error at its key, before anything runs.

use std::num::NonZeroUsize;
use std::path::Path;

use super::ctx::Ctx;
use super::raw::*;
use crate::plan::{HttpVersion, TlsPlan, TransportPlan};

pub(super) fn resolve_transport(
    t: Option<&S<RawTarget>>,
    dir: &Path,
    cx: &mut Ctx<'_>,
) -> Option<TransportPlan> {
    let mut out = TransportPlan::default();
    let Some(t) = t.map(S::get_ref) else {
        return Some(out);
    };
    let errors = cx.diags.len();
    if let Some(v) = &t.http_version {
        match v.get_ref().trim() {
            "1.1" | "1" => out.http_version = HttpVersion::Http1,
            "2" | "2.0" => out.http_version = HttpVersion::Http2,
            other => cx.error_hint(
                &v.span(),
                "target.http_version",
                format!("unknown HTTP version \"{other}\""),
                "use \"1.1\" or \"2\"",
            ),
        }
    }
    if let Some(k) = &t.keep_alive {
        out.keep_alive = *k.get_ref();
    }
    if let Some(c) = &t.connections {
        let n = cx.positive_u32(c, "target.connections", "connections");
        if out.http_version != HttpVersion::Http2 {
            cx.error_hint(
                &c.span(),
                "target.connections",
                "connections applies to http_version = \"2\"",
                "HTTP/1.1 uses one connection per request in flight (bounded by load.max_in_flight or the concurrency)",
            );
        } else if !out.keep_alive {
            cx.error_hint(
                &c.span(),
                "target.connections",
                "connections contradicts keep_alive = false",
                "keep_alive = false opens one connection per request; remove one of the two keys",
            );
        }
        out.connections = n.and_then(|n| NonZeroUsize::new(n as usize));
    }
    let https = t.url.as_ref().is_some_and(|u| {
        u.get_ref()
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("https:")
    });
    if let Some(tls) = &t.tls {
        if !https {
            cx.error_hint(
                &tls.span(),
                "target.tls",
                "tls is set but the target url is not https://",
                "set url = \"https://host:port\" (the built-in target of a run serves plain HTTP)",
            );
        }
        out.tls = resolve_tls(tls.get_ref(), dir, cx);
    }
    (cx.diags.len() == errors).then_some(out)
}

fn resolve_tls(raw: &RawTls, dir: &Path, cx: &mut Ctx<'_>) -> TlsPlan {
    let mut out = TlsPlan {
        insecure: raw.insecure.as_ref().is_some_and(|b| *b.get_ref()),
        ..TlsPlan::default()
    };
    if let Some(ca) = &raw.ca_file {
        let path = dir.join(ca.get_ref());
        match crate::tls::read_certs(&path) {
            Ok(_) => out.ca_file = Some(path),
            Err(e) => cx.error_hint(
                &ca.span(),
                "target.tls.ca_file",
                e.to_string(),
                "a PEM bundle (-----BEGIN CERTIFICATE-----) of the CAs to trust; relative paths start at the scenario's folder",
            ),
        }
        if out.insecure {
            cx.error_hint(
                &ca.span(),
                "target.tls.ca_file",
                "ca_file is set together with insecure = true",
                "insecure skips verification, so the CA is never used: keep one of them",
            );
        }
    }
    match (&raw.client_cert, &raw.client_key) {
        (Some(cert), Some(key)) => {
            let cert_path = dir.join(cert.get_ref());
            let key_path = dir.join(key.get_ref());
            match crate::tls::read_certs(&cert_path) {
                Ok(_) => out.client_cert = Some(cert_path),
                Err(e) => cx.error_hint(
                    &cert.span(),
                    "target.tls.client_cert",
                    e.to_string(),
                    "the client certificate chain as PEM (-----BEGIN CERTIFICATE-----); relative paths start at the scenario's folder",
                ),
            }
            match crate::tls::read_key(&key_path) {
                Ok(_) => out.client_key = Some(key_path),
                Err(e) => cx.error_hint(
                    &key.span(),
                    "target.tls.client_key",
                    e.to_string(),
                    "the client certificate's private key as PEM (-----BEGIN PRIVATE KEY-----)",
                ),
            }
        }
        (Some(only), None) => cx.error_hint(
            &only.span(),
            "target.tls.client_cert",
            "client_cert is set without client_key",
            "set both, or neither",
        ),
        (None, Some(only)) => cx.error_hint(
            &only.span(),
            "target.tls.client_key",
            "client_key is set without client_cert",
            "set both, or neither",
        ),
        (None, None) => {}
    }
    if let Some(name) = &raw.server_name {
        if crate::tls::server_name(name.get_ref()).is_some() {
            out.server_name = Some(name.get_ref().clone());
        } else {
            cx.error_hint(
                &name.span(),
                "target.tls.server_name",
                format!("invalid server name \"{}\"", name.get_ref()),
                "a DNS name such as \"api.example.com\" or an IP address",
            );
        }
    }
    out
}
