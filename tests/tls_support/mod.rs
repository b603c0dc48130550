//! Certificates the TLS and HTTP/2 tests make for themselves (rcgen): a CA
//! and a leaf for `localhost`/127.0.0.1/::1 it signs, an unrelated CA, an
//! expired leaf, and a self-signed one; plus the built-in target serving TLS.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, date_time_ymd};
use slocheck::target::{TargetConfig, TargetHandle, TargetTls};

pub struct Certs {
    pub dir: tempfile::TempDir,
    /// The CA that signed `cert`.
    pub ca: PathBuf,
    /// A CA that signed nothing here: the "wrong CA".
    pub other_ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Signed by `ca`, valid 2020-01-01 … 2021-01-01.
    pub expired_cert: PathBuf,
    pub expired_key: PathBuf,
}

fn ca(name: &str) -> (Issuer<'static, KeyPair>, String) {
    let key = KeyPair::generate().expect("ca key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("self-signed CA");
    (Issuer::new(params, key), cert.pem())
}

fn leaf(issuer: &Issuer<'_, KeyPair>, expired: bool) -> (String, String) {
    let key = KeyPair::generate().expect("leaf key");
    let mut params = CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])
    .expect("leaf params");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    if expired {
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2021, 1, 1);
    }
    let cert = params.signed_by(&key, issuer).expect("signed leaf");
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write pem");
    p
}

pub fn certs() -> Certs {
    let dir = tempfile::Builder::new()
        .prefix("slocheck-certs-")
        .tempdir()
        .expect("temp dir");
    let d = dir.path();
    let (issuer, ca_pem) = ca("slocheck test CA");
    let (_, other_pem) = ca("some other CA");
    let (cert, key) = leaf(&issuer, false);
    let (old_cert, old_key) = leaf(&issuer, true);
    Certs {
        ca: write(d, "ca.pem", &ca_pem),
        other_ca: write(d, "other-ca.pem", &other_pem),
        cert: write(d, "cert.pem", &cert),
        key: write(d, "key.pem", &key),
        expired_cert: write(d, "expired.pem", &old_cert),
        expired_key: write(d, "expired-key.pem", &old_key),
        dir,
    }
}

/// The built-in target on 127.0.0.1:0 serving TLS with `cert`/`key`.
pub async fn tls_target(cert: &Path, key: &Path) -> TargetHandle {
    TargetHandle::start(TargetConfig {
        tls: Some(TargetTls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        }),
        ..TargetConfig::default()
    })
    .await
    .expect("TLS target starts")
}

/// The built-in target on 127.0.0.1:0, plain HTTP (it speaks h2c too).
pub async fn plain_target() -> TargetHandle {
    TargetHandle::start(TargetConfig::default())
        .await
        .expect("target starts")
}

/// A Python standard-library HTTP/1.x server (no HTTP/2 at all), with TLS
/// when `tls` names a certificate and key; killed on drop.
pub struct H1OnlyServer {
    child: std::process::Child,
    pub port: u16,
}

impl Drop for H1OnlyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const H1_SERVER: &str = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200); self.send_header("content-length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
if len(sys.argv) == 3:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    ctx.set_alpn_protocols(["http/1.1"])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

pub fn h1_only_server(python: &Path, tls: Option<(&Path, &Path)>) -> H1OnlyServer {
    use std::io::BufRead;
    let mut cmd = std::process::Command::new(python);
    cmd.arg("-c").arg(H1_SERVER);
    if let Some((cert, key)) = tls {
        cmd.arg(cert).arg(key);
    }
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port line");
    let port = line.trim().parse().expect("port number");
    H1OnlyServer { child, port }
}
