//! Collects located diagnostics while a raw scenario is resolved, so every
//! problem in a file is reported at once (promtool-style); plus the value
//! checks shared by several tables.

use std::ops::Range;
use std::path::Path;

use super::error::{Diagnostic, Location};
use std::time::Duration;

use reqwest::Url;

use super::raw::{Dur, S};

pub(super) struct Ctx<'a> {
    pub text: &'a str,
    pub file: &'a Path,
    pub diags: Vec<Diagnostic>,
}

impl<'a> Ctx<'a> {
    pub fn new(text: &'a str, file: &'a Path) -> Self {
        Ctx {
            text,
            file,
            diags: Vec::new(),
        }
    }

    pub fn location(&self, span: &Range<usize>) -> Location {
        Location::from_offset(self.text, span.start)
    }

    pub fn diagnostic(
        &self,
        span: &Range<usize>,
        path: &str,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: self.file.to_path_buf(),
            location: self.location(span),
            key_path: path.to_string(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn error(&mut self, span: &Range<usize>, path: &str, message: impl Into<String>) {
        let d = self.diagnostic(span, path, message);
        self.diags.push(d);
    }

    pub fn error_hint(
        &mut self,
        span: &Range<usize>,
        path: &str,
        message: impl Into<String>,
        hint: &str,
    ) {
        let d = self.diagnostic(span, path, message).with_hint(hint);
        self.diags.push(d);
    }

    /// A positive integer that fits `u32`, or a diagnostic.
    pub fn positive_u32(&mut self, v: &S<i64>, path: &str, what: &str) -> Option<u32> {
        let n = *v.get_ref();
        match u32::try_from(n) {
            Ok(n) if n > 0 => Some(n),
            _ if n <= 0 => {
                self.error(&v.span(), path, format!("{what} must be > 0, got {n}"));
                None
            }
            _ => {
                let max = u32::MAX;
                self.error(
                    &v.span(),
                    path,
                    format!("{what} must be at most {max}, got {n}"),
                );
                None
            }
        }
    }

    /// A ratio in [0, 1], or a diagnostic.
    pub fn ratio(&mut self, v: &S<f64>, path: &str) -> Option<f64> {
        let r = *v.get_ref();
        if (0.0..=1.0).contains(&r) {
            Some(r)
        } else {
            self.error_hint(
                &v.span(),
                path,
                format!("ratio must be between 0 and 1, got {r}"),
                "write 20 % as 0.2",
            );
            None
        }
    }
}

/// Joins key path pieces: `path("phase[2]", "rate")` → `phase[2].rate`.
pub(super) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Parses an http(s) base URL.
pub(super) fn parse_url(v: &S<String>, path: &str, cx: &mut Ctx<'_>) -> Option<Url> {
    const HINT: &str = "write it like \"http://127.0.0.1:8000\"";
    match Url::parse(v.get_ref()) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => Some(u),
        Ok(u) => {
            cx.error_hint(
                &v.span(),
                path,
                format!("url must be http or https with a host, got \"{u}\""),
                HINT,
            );
            None
        }
        Err(e) => {
            cx.error_hint(
                &v.span(),
                path,
                format!("invalid url \"{}\": {e}", v.get_ref()),
                HINT,
            );
            None
        }
    }
}

pub(super) fn positive_duration(v: &S<Dur>, path: &str, cx: &mut Ctx<'_>) -> Option<Duration> {
    let d = v.get_ref().0;
    if d.is_zero() {
        cx.error(&v.span(), path, "duration must be > 0");
        None
    } else {
        Some(d)
    }
}

pub(super) fn duration_or(
    v: Option<&S<Dur>>,
    default: Duration,
    path: &str,
    cx: &mut Ctx<'_>,
) -> Option<Duration> {
    match v {
        Some(v) => positive_duration(v, path, cx),
        None => Some(default),
    }
}
