//! TLS shared by the load client, the built-in target and scenario
//! validation: PEM files, rustls configurations (one crypto provider,
//! aws-lc-rs, the one reqwest already uses), and certificate errors in words.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};

use crate::plan::TlsPlan;

/// ALPN protocol ids.
pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} holds no PEM private key", path.display())]
    NoKey { path: PathBuf },
    #[error(
        "no usable system root certificates (hint: install ca-certificates, or set tls.ca_file)"
    )]
    NoSystemRoots,
    #[error("the client certificate {} does not match its key: {reason}", cert.display())]
    ClientAuth { cert: PathBuf, reason: String },
    #[error("the certificate {} does not match its key: {reason}", cert.display())]
    ServerCert { cert: PathBuf, reason: String },
    #[error("rustls refused the configuration: {0}")]
    Config(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Every certificate of a PEM file, at least one.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let text = std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&text)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let text = std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|_| TlsError::NoKey {
        path: path.to_path_buf(),
    })
}

/// The client side: system roots unless `ca_file`, no verification when
/// `insecure`, a client certificate when given; `alpn` offered in order.
pub fn client_config(tls: &TlsPlan, alpn: &[&[u8]]) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = if tls.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(
                provider.signature_verification_algorithms,
            )))
    } else {
        let mut roots = RootCertStore::empty();
        match &tls.ca_file {
            Some(ca) => {
                for cert in read_certs(ca)? {
                    roots.add(cert).map_err(|e| TlsError::Read {
                        path: ca.clone(),
                        reason: format!("not a usable CA certificate: {e}"),
                    })?;
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
                if roots.is_empty() {
                    return Err(TlsError::NoSystemRoots);
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
            .map_err(|e| TlsError::ClientAuth {
                cert: cert.clone(),
                reason: e.to_string(),
            })?,
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// The built-in target's side: one certificate chain and key, ALPN h2 then
/// http/1.1 (the server speaks both).
pub fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(read_certs(cert)?, read_key(key)?)
        .map_err(|e| TlsError::ServerCert {
            cert: cert.to_path_buf(),
            reason: e.to_string(),
        })?;
    config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
    Ok(config)
}

/// A TLS name from a URL host or `server_name` (DNS name or IP address).
pub fn server_name(host: &str) -> Option<ServerName<'static>> {
    ServerName::try_from(host.trim_matches(['[', ']']).to_string()).ok()
}

/// Why a handshake failed, in the words a user searches for, plus a hint;
/// `None` when the cause is not a certificate problem.
pub fn certificate_problem(err: &std::io::Error) -> Option<(String, &'static str)> {
    let rustls::Error::InvalidCertificate(cert) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())?
    else {
        return None;
    };
    const TRUST: &str =
        "set tls.ca_file to the CA that signed it, or tls.insecure = true to skip verification";
    Some(match cert {
        CertificateError::UnknownIssuer => ("unknown issuer".into(), TRUST),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => (
            "certificate expired".into(),
            "renew the server's certificate (or tls.insecure = true to skip verification)",
        ),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
            "certificate not valid yet".into(),
            "check the clocks of both machines",
        ),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => (
            "name mismatch (the certificate is not valid for this host)".into(),
            "connect with a host name the certificate names, or set tls.server_name",
        ),
        CertificateError::BadSignature => ("bad signature".into(), TRUST),
        CertificateError::Revoked => (
            "certificate revoked".into(),
            "the server needs a new certificate",
        ),
        other => (format!("{other:?}"), TRUST),
    })
}

/// `insecure = true`: accepts any certificate, still checks that the server
/// holds the key it presents (signatures), so the connection is TLS, just
/// unauthenticated.
#[derive(Debug)]
struct NoVerify(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_schemes()
    }
}
