//! The front gate: owns the public MQTT sockets (plain, TLS, WebSocket, secure WebSocket) and
//! relays each connection to the broker's loopback listener, with one deadline from accept to
//! the broker's CONNACK.
//!
//! Why: rmqtt 0.24 reads the first bytes of CONNECT with no deadline, so a client that connects
//! and sends nothing (or a few bytes, or completes TLS or the WebSocket upgrade and then goes
//! quiet) would keep its socket, its task and its file descriptor forever. The gate closes every
//! connection that has not received its CONNACK (accepting or refusing) within the handshake
//! timeout, TLS handshake included. It terminates TLS itself (certificates from `super::tls`,
//! reloaded without rebinding), and opens each relayed connection with a PROXY protocol v2 header
//! so the broker sees the device's own address. The cost is a loopback hop per message and two
//! more file descriptors per connection; `cargo bench --bench gate` measures it.
//!
//! Also here: accepting stops while open descriptors reach the reserve of the budget
//! (`super::fd_limit`), a relay closes both sides as soon as either side closes, and the
//! CONNACK of a login refused for load is made to say "retry later" (`refusal`, ADR 0003).

mod proxy_header;
pub mod refusal;
mod watch;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use nix::errno::Errno;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use self::refusal::Refusals;
use self::watch::{Preamble, Scanner, Watched};
use super::fd_limit::{FdBudget, Held};
use super::tls::CertStore;
use crate::log_throttle::Throttle;
use crate::metrics as m;

/// Relay buffer per direction and connection. Positions are small; a larger burst just takes
/// a few more reads.
const RELAY_BUFFER: usize = 4096;
/// Pending connections the kernel queues on a public socket (capped by `net.core.somaxconn`).
const BACKLOG: u32 = 4096;
/// First and longest waits before accepting again, after a failed accept or while the
/// descriptor reserve is reached.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(500);
/// At most one log line per interval about failed accepts and held-back connections.
static ACCEPT_LOG: Throttle = Throttle::new(Duration::from_secs(10));

/// What a public socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Mqtt,
    WebSocket,
}

impl Transport {
    fn preamble(self) -> Preamble {
        match self {
            Transport::Mqtt => Preamble::None,
            Transport::WebSocket => Preamble::HttpHead,
        }
    }
}

/// One public socket: what it speaks, whether it is TLS, and where the broker listens for it.
#[derive(Clone)]
pub struct Route {
    pub transport: Transport,
    pub tls: Option<Arc<CertStore>>,
    /// The broker's loopback listener for this transport (expects a PROXY header).
    pub upstream: SocketAddr,
    /// From accept to the broker's CONNACK, TLS handshake included.
    pub deadline: Duration,
    /// Descriptors: new connections wait while the reserve is reached.
    pub budget: Arc<FdBudget>,
    /// Load refusals noted by the authentication hook, spelled out in the CONNACK.
    pub refusals: Arc<Refusals>,
}

impl Route {
    fn name(&self) -> &'static str {
        match (self.transport, self.tls.is_some()) {
            (Transport::Mqtt, false) => "mqtt",
            (Transport::Mqtt, true) => "mqtts",
            (Transport::WebSocket, false) => "ws",
            (Transport::WebSocket, true) => "wss",
        }
    }
}

/// A public socket being served; dropping it (or `stop`) closes the socket. Relayed connections
/// go on.
pub struct Gate {
    pub local: SocketAddr,
    task: JoinHandle<()>,
}

impl Gate {
    /// Binds `addr` and starts accepting.
    pub fn bind(addr: SocketAddr, route: Route) -> anyhow::Result<Gate> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .context("cannot create a TCP socket")?;
        // A restart right after a crash must rebind while old connections sit in TIME_WAIT.
        socket.set_reuseaddr(true).context("SO_REUSEADDR")?;
        socket
            .bind(addr)
            .with_context(|| format!("cannot bind {addr}: is the port free?"))?;
        let listener = socket
            .listen(BACKLOG)
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr().context("listener address")?;
        let task = tokio::spawn(accept_loop(listener, local, Arc::new(route)));
        Ok(Gate { local, task })
    }

    /// Stops accepting; the socket closes.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, local: SocketAddr, route: Arc<Route>) {
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        // Keep the reserve: leave new connections in the kernel's backlog until descriptors
        // free up, so that sessions already in, the WAL, the writer and HTTP keep working.
        if !route.budget.has_room() {
            if route.budget.set_paused(true) {
                metrics::counter!(m::ACCEPT_PAUSES).increment(1);
                if let Some(n) = ACCEPT_LOG.hit() {
                    warn!(
                        listener = route.name(),
                        open = route.budget.open_estimate(),
                        limit = route.budget.limit(),
                        events = n,
                        "open files near the limit: new MQTT connections wait (raise LimitNOFILE / compose ulimits nofile)"
                    );
                }
            }
            // Closed connections give their descriptors back to the estimate at once, and the
            // budget's watcher recounts every 500 ms while this close to the limit.
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            continue;
        }
        if route.budget.set_paused(false) {
            debug!(listener = route.name(), "descriptors free again: accepting");
        }
        match listener.accept().await {
            Ok((client, peer)) => {
                backoff = ACCEPT_BACKOFF_MIN;
                let held = route.budget.hold();
                tokio::spawn(serve(client, peer, local, route.clone(), held));
            }
            Err(e) => {
                let reason = match e.raw_os_error() {
                    Some(c) if c == Errno::EMFILE as i32 || c == Errno::ENFILE as i32 => {
                        "descriptors"
                    }
                    _ => "other",
                };
                metrics::counter!(m::ACCEPT_ERRORS, "listener" => route.name(), "reason" => reason)
                    .increment(1);
                if let Some(n) = ACCEPT_LOG.hit() {
                    warn!(error = %e, listener = route.name(), events = n, "cannot accept connections (counted in ingest_accept_errors_total)");
                }
                // Back off instead of spinning on an error that a retry cannot fix at once.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
}

fn failed(route: &Route, reason: &'static str) {
    metrics::counter!(m::HANDSHAKE_FAILURES, "listener" => route.name(), "reason" => reason)
        .increment(1);
}

async fn serve(
    client: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    route: Arc<Route>,
    _held: Held,
) {
    let until = Instant::now() + route.deadline;
    let _ = client.set_nodelay(true);
    // Lets the kernel notice peers that vanished behind a NAT.
    let _ = socket2::SockRef::from(&client).set_keepalive(true);
    match &route.tls {
        None => relay(client, peer, local, &route, until).await,
        Some(store) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(store.current());
            match tokio::time::timeout_at(until, acceptor.accept(client)).await {
                Ok(Ok(tls)) => relay(tls, peer, local, &route, until).await,
                Ok(Err(e)) => {
                    failed(&route, "tls");
                    debug!(%peer, error = %e, "TLS handshake failed");
                }
                Err(_) => {
                    failed(&route, "timeout");
                    debug!(%peer, "TLS handshake not finished within the handshake timeout");
                }
            }
        }
    }
}

async fn relay<C>(client: C, peer: SocketAddr, local: SocketAddr, route: &Route, until: Instant)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let upstream = match open_upstream(peer, local, route.upstream, until).await {
        Ok(s) => s,
        Err(e) => {
            failed(route, "internal");
            warn!(%peer, error = format!("{e:#}"), "cannot reach the broker's internal listener");
            return;
        }
    };
    let scanner =
        Scanner::new(route.transport.preamble()).with_refusals(route.refusals.clone(), peer);
    let answered = scanner.flag();
    let upstream = Watched::new(upstream, scanner);
    let deadline = async {
        tokio::time::sleep_until(until).await;
        if answered.load(Ordering::Relaxed) {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = pipe(client, upstream) => {
            if let Err(e) = r {
                debug!(%peer, error = %e, "connection ended");
            }
        }
        () = deadline => {
            failed(route, "timeout");
            debug!(%peer, "no CONNACK within the handshake timeout: connection closed");
        }
    }
    // A note the CONNACK did not use (the client left first) goes with the connection.
    route.refusals.take(peer);
}

/// Copies both ways until either side closes or fails, then closes both: MQTT has no use for
/// a half-closed connection, and a relay left waiting on the other side would keep three
/// descriptors (CLOSE-WAIT, FIN-WAIT-2) for nothing. What one side sent before closing is
/// passed on first.
async fn pipe<C, U>(client: C, upstream: U) -> std::io::Result<()>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let (client_rx, mut client_tx) = tokio::io::split(client);
    let (upstream_rx, mut upstream_tx) = tokio::io::split(upstream);
    let mut client_rx = tokio::io::BufReader::with_capacity(RELAY_BUFFER, client_rx);
    let mut upstream_rx = tokio::io::BufReader::with_capacity(RELAY_BUFFER, upstream_rx);
    let up = async {
        tokio::io::copy_buf(&mut client_rx, &mut upstream_tx).await?;
        upstream_tx.shutdown().await
    };
    let down = async {
        tokio::io::copy_buf(&mut upstream_rx, &mut client_tx).await?;
        client_tx.shutdown().await
    };
    // The first direction to end decides; dropping the halves closes both sockets.
    tokio::select! {
        r = up => r,
        r = down => r,
    }
}

async fn open_upstream(
    peer: SocketAddr,
    local: SocketAddr,
    upstream: SocketAddr,
    until: Instant,
) -> anyhow::Result<TcpStream> {
    let header = proxy_header::encode(peer, local).context("PROXY header")?;
    let mut s = tokio::time::timeout_at(until, TcpStream::connect(upstream))
        .await
        .context("timed out")?
        .with_context(|| format!("connect {upstream}"))?;
    s.set_nodelay(true).context("TCP_NODELAY")?;
    s.write_all(&header)
        .await
        .context("write the PROXY header")?;
    Ok(s)
}
