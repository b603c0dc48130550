//! TLS, HTTP/2 and address bad input through the real binary: each case is
//! one line naming the URL (or file:line:col) with a hint (snapshot), its
//! documented exit code, no panic, and nothing left behind. Servers are real:
//! the built-in target with certificates the test makes, and Python's
//! standard-library server for "speaks only HTTP/1.1".

mod common;
#[path = "tls_support/mod.rs"]
mod tls_support;

use std::path::Path;

use common::{Sandbox, dump, repo, stderr};

/// stderr with machine-specific parts (paths, ports) replaced.
fn normalized(o: &std::process::Output, port: u16, certs: &Path) -> String {
    stderr(o)
        .replace(&certs.display().to_string(), "<certs>")
        .replace(&repo().display().to_string(), "<repo>")
        .replace(&port.to_string(), "<port>")
}

/// A scenario of one short closed-loop phase against `url` with extra
/// `[target]` lines.
fn scenario(sb: &Sandbox, url: &str, target_lines: &str) -> String {
    let text = format!(
        "[target]\nurl = \"{url}\"\nrequest = {{ method = \"GET\", path = \"/healthz\" }}\n{target_lines}\n\n[prometheus]\nrule_files = []\n\n[load]\nmode = \"closed\"\nconcurrency = 1\n\n[[phase]]\nname = \"p\"\nduration = \"1s\"\n"
    );
    sb.write("tls.toml", &text).display().to_string()
}

/// Runs `slocheck CMD scenario` off the async runtime (the target serves on it).
async fn slocheck(sb: &Sandbox, cmd: &str, file: &str) -> std::process::Output {
    let mut c = sb.command();
    c.args([cmd, file]);
    tokio::task::spawn_blocking(move || c.output().expect("run slocheck"))
        .await
        .expect("join")
}

fn one_line(o: &std::process::Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "{}", dump(o));
    let err = stderr(o);
    assert!(!err.contains("panicked"), "{}", dump(o));
    let errors: Vec<&str> = err.lines().filter(|l| l.contains("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {}", dump(o));
}

fn error_line(s: &str) -> String {
    s.lines()
        .find(|l| l.contains("error:"))
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_problems_exit_3_before_any_phase() {
    let certs = tls_support::certs();
    let dir = certs.dir.path().to_path_buf();
    let good = tls_support::tls_target(&certs.cert, &certs.key).await;
    let expired = tls_support::tls_target(&certs.expired_cert, &certs.expired_key).await;
    let sb = Sandbox::new();
    let ca = certs.ca.display().to_string();
    let other = certs.other_ca.display().to_string();
    let cases = [
        ("unknown_issuer", &good, String::new()),
        (
            "wrong_ca",
            &good,
            format!("tls = {{ ca_file = \"{other}\" }}"),
        ),
        (
            "expired",
            &expired,
            format!("tls = {{ ca_file = \"{ca}\" }}"),
        ),
        (
            "name_mismatch",
            &good,
            format!("tls = {{ ca_file = \"{ca}\", server_name = \"wrong.example\" }}"),
        ),
    ];
    for (name, target, tls) in cases {
        let port = target.addr().port();
        let file = scenario(&sb, &format!("https://127.0.0.1:{port}"), &tls);
        let o = slocheck(&sb, "load", &file).await;
        one_line(&o, 3);
        // Nothing ran: no phase table, no progress.
        assert!(!common::stdout(&o).contains("phase"), "{}", dump(&o));
        insta::assert_snapshot!(name, error_line(&normalized(&o, port, &dir)));
    }
    // `run` stops before starting Prometheus, and leaves no run directory.
    let port = good.addr().port();
    let file = scenario(&sb, &format!("https://127.0.0.1:{port}"), "");
    let o = slocheck(&sb, "run", &file).await;
    one_line(&o, 3);
    assert!(!stderr(&o).contains("starting"), "{}", dump(&o));
    sb.assert_clean();
    good.shutdown().await;
    expired.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_from_an_http1_only_server_exits_3() {
    let Some(python) = common::require_tool(&["python3"], "apt-get install python3") else {
        return;
    };
    let certs = tls_support::certs();
    let dir = certs.dir.path().to_path_buf();
    let sb = Sandbox::new();
    let ca = certs.ca.display().to_string();
    // Over TLS the server's ALPN offers only http/1.1.
    let tls_server = tls_support::h1_only_server(&python, Some((&certs.cert, &certs.key)));
    let file = scenario(
        &sb,
        &format!("https://127.0.0.1:{}", tls_server.port),
        &format!("http_version = \"2\"\ntls = {{ ca_file = \"{ca}\" }}"),
    );
    let o = slocheck(&sb, "load", &file).await;
    one_line(&o, 3);
    insta::assert_snapshot!(
        "h2_alpn_refused",
        error_line(&normalized(&o, tls_server.port, &dir))
    );
    // In cleartext (h2c with prior knowledge) it answers the preface as HTTP/1.x.
    let plain = tls_support::h1_only_server(&python, None);
    let file = scenario(
        &sb,
        &format!("http://127.0.0.1:{}", plain.port),
        "http_version = \"2\"",
    );
    let o = slocheck(&sb, "load", &file).await;
    one_line(&o, 3);
    let line = error_line(&normalized(&o, plain.port, &dir));
    // hyper's own words for the garbled preface answer vary by version:
    // the snapshot keeps ours.
    let (head, rest) = line.split_once(" does not speak HTTP/2: ").expect(&line);
    let hint = rest.rsplit_once(" (hint:").expect(&line).1;
    insta::assert_snapshot!(
        "h2c_refused",
        format!("{head} does not speak HTTP/2: … (hint:{hint}")
    );
    // The same servers serve HTTP/1.1 to the same scenario without the key.
    let file = scenario(&sb, &format!("http://127.0.0.1:{}", plain.port), "");
    let o = slocheck(&sb, "load", &file).await;
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_resolves_to_nothing_exits_3() {
    let sb = Sandbox::new();
    // .invalid never resolves (RFC 2606).
    let file = scenario(&sb, "http://nosuch.invalid:8000", "");
    let o = slocheck(&sb, "load", &file).await;
    one_line(&o, 3);
    let line = error_line(&stderr(&o));
    // The resolver's own words differ between machines (no DNS vs NXDOMAIN).
    let (head, rest) = line.split_once(" does not resolve: ").expect(&line);
    let hint = rest.rsplit_once(" (hint:").expect(&line).1;
    insta::assert_snapshot!(
        "unresolvable",
        format!("{head} does not resolve: … (hint:{hint}")
    );
}

#[test]
fn bad_tls_keys_exit_2_with_file_line_and_column() {
    let certs = tls_support::certs();
    let sb = Sandbox::new();
    let dir = certs.dir.path().to_path_buf();
    let not_pem = sb.write("not.pem", "this is not a certificate\n");
    let cases = [
        (
            "client_cert_missing",
            format!(
                "tls = {{ client_cert = \"{}/missing.pem\", client_key = \"{}\" }}",
                dir.display(),
                certs.key.display()
            ),
        ),
        (
            "client_cert_not_pem",
            format!(
                "tls = {{ client_cert = \"{}\", client_key = \"{}\" }}",
                not_pem.display(),
                certs.key.display()
            ),
        ),
        (
            "client_key_without_cert",
            format!("tls = {{ client_key = \"{}\" }}", certs.key.display()),
        ),
        ("unknown_tls_key", "tls = { verify = false }".to_string()),
        ("bad_http_version", "http_version = \"3\"".to_string()),
        ("connections_with_h1", "connections = 4".to_string()),
        (
            "insecure_and_ca_file",
            format!(
                "tls = {{ insecure = true, ca_file = \"{}\" }}",
                certs.ca.display()
            ),
        ),
    ];
    for (name, lines) in cases {
        let file = scenario(&sb, "https://127.0.0.1:8443", &lines);
        let o = sb.run(&["check", &file]);
        one_line(&o, 2);
        let text = stderr(&o)
            .replace(&dir.display().to_string(), "<certs>")
            .replace(&sb.path().display().to_string(), "<sandbox>");
        insta::assert_snapshot!(name, error_line(&text));
    }
    // tls on a plain-http url is refused too.
    let file = scenario(&sb, "http://127.0.0.1:8000", "tls = { insecure = true }");
    let o = sb.run(&["check", &file]);
    one_line(&o, 2);
    assert!(stderr(&o).contains("not https://"), "{}", dump(&o));
}
