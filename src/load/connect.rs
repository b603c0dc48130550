//! Opening one connection to one address of the target: TCP, then TLS when
//! the URL is `https://` (ALPN offered per HTTP version), then the HTTP/1.1
//! or HTTP/2 handshake. The hot path only sees the resulting `Conn`.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsConnector;

use crate::plan::HttpVersion;

/// The request sender of an open connection and the index of the address
/// it goes to (for the per-address counts).
#[derive(Debug)]
pub struct Conn {
    pub(super) sender: Sender,
    pub(super) addr: usize,
}

#[derive(Debug)]
pub(super) enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    /// A clone of a connection shared by the shard's requests.
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Conn {
    pub fn is_closed(&self) -> bool {
        match &self.sender {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }

    /// Another handle on the same HTTP/2 connection (None for HTTP/1.1,
    /// whose connection one request owns at a time).
    pub(super) fn share(&self) -> Option<Conn> {
        match &self.sender {
            Sender::H1(_) => None,
            Sender::H2(s) => Some(Conn {
                sender: Sender::H2(s.clone()),
                addr: self.addr,
            }),
        }
    }
}

/// TLS parameters of an `https://` target, prepared once per run.
#[derive(Clone)]
pub struct Tls {
    pub connector: TlsConnector,
    pub name: ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("name", &self.name).finish()
    }
}

impl Tls {
    pub fn new(config: rustls::ClientConfig, name: ServerName<'static>) -> Tls {
        Tls {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        }
    }
}

/// Why a connection could not be opened (for the preflight's messages; the
/// hot path only counts a connection error).
#[derive(Debug)]
pub enum ConnectError {
    Timeout,
    Tcp(std::io::Error),
    Tls(std::io::Error),
    /// TLS worked but the server did not agree to HTTP/2 by ALPN.
    NoH2 {
        negotiated: Option<String>,
    },
    Http(hyper::Error),
}

/// Where a connection's driver task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// On the runtime (`tokio::spawn`): outside a `LocalSet`, as in the
    /// preflight.
    Runtime,
    /// In the current `LocalSet` (`spawn_local`), beside the requests that
    /// use the connection: a load shard. A response then wakes its request
    /// inside the LocalSet, with no extra turn of the runtime; from a
    /// runtime task every wake took one, and an `epoll_wait` with it
    /// (seen by strace after every response).
    Local,
}

impl Driver {
    fn spawn<F>(self, task: F)
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self {
            Driver::Runtime => drop(tokio::spawn(task)),
            Driver::Local => drop(tokio::task::spawn_local(task)),
        }
    }
}

/// Connects to `addr` and performs the HTTP handshake, all by `deadline`.
pub async fn open(
    addr: SocketAddr,
    index: usize,
    tls: Option<&Tls>,
    version: HttpVersion,
    deadline: Instant,
    driver: Driver,
) -> Result<Conn, ConnectError> {
    let stream = timeout_at(deadline, TcpStream::connect(addr))
        .await
        .map_err(|_| ConnectError::Timeout)?
        .map_err(ConnectError::Tcp)?;
    let _ = stream.set_nodelay(true);
    let sender = match tls {
        None => handshake(stream, version, deadline, driver).await?,
        Some(tls) => {
            let stream = timeout_at(deadline, tls.connector.connect(tls.name.clone(), stream))
                .await
                .map_err(|_| ConnectError::Timeout)?
                .map_err(ConnectError::Tls)?;
            if version == HttpVersion::Http2 {
                let alpn = stream.get_ref().1.alpn_protocol();
                if alpn != Some(crate::tls::ALPN_H2) {
                    return Err(ConnectError::NoH2 {
                        negotiated: alpn.map(|p| String::from_utf8_lossy(p).into_owned()),
                    });
                }
            }
            handshake(stream, version, deadline, driver).await?
        }
    };
    Ok(Conn {
        sender,
        addr: index,
    })
}

async fn handshake<S>(
    stream: S,
    version: HttpVersion,
    deadline: Instant,
    driver: Driver,
) -> Result<Sender, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(stream);
    match version {
        HttpVersion::Http1 => {
            let (sender, conn) = timeout_at(deadline, http1::handshake(io))
                .await
                .map_err(|_| ConnectError::Timeout)?
                .map_err(ConnectError::Http)?;
            // The connection task ends when the sender is dropped or the peer
            // closes.
            driver.spawn(conn);
            Ok(Sender::H1(sender))
        }
        HttpVersion::Http2 => {
            let (sender, conn) = timeout_at(
                deadline,
                http2::Builder::new(TokioExecutor::new()).handshake(io),
            )
            .await
            .map_err(|_| ConnectError::Timeout)?
            .map_err(ConnectError::Http)?;
            // Ends when every sender clone is dropped or the peer closes.
            driver.spawn(conn);
            Ok(Sender::H2(sender))
        }
    }
}
