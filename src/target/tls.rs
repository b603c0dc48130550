//! The built-in target's TLS listener: accepts TCP, runs each handshake in
//! its own task (a slow or silent client never holds up the others) and
//! hands finished TLS streams to axum, which then serves HTTP/1.1 or HTTP/2
//! on them (ALPN offers both).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A handshake that has not finished by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    /// Handshakes in progress; aborted when the listener is dropped.
    pending: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: rustls::ServerConfig) -> TlsListener {
        TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            pending: JoinSet::new(),
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let acceptor = self.acceptor.clone();
                        self.pending.spawn(async move {
                            let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                            // A failed handshake (wrong CA on the client, a
                            // plain-HTTP client) is the client's problem.
                            Some((tls.await.ok()?.ok()?, peer))
                        });
                    }
                    // Out of file descriptors and the like: back off as
                    // axum's own TCP listener does.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                },
                Some(done) = self.pending.join_next(), if !self.pending.is_empty() => {
                    if let Ok(Some(ready)) = done {
                        return ready;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
