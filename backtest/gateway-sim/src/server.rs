//! The simulator's HTTP server: the accept loop, plain or TLS, with the
//! connection limits of [`ServerLimits`] (issue 12: 300 half-open
//! connections under a low file limit made the simulator unreachable).
//!
//! * **Connection cap**: at most [`ServerLimits::max_connections`] open
//!   connections (websockets included, for as long as they stay open).
//!   One beyond the cap is answered `503` with `{"error": ...}` when it can
//!   be written at once (plain HTTP) and closed.
//! * **Header timeout**: a connection that has not sent a complete request
//!   head within [`ServerLimits::header_timeout`] of the server waiting for
//!   one is closed (hyper's `header_read_timeout`); with TLS the handshake
//!   must also finish within it. This closes half-open connections that
//!   never send anything.
//! * **Body timeout**: a request body not received whole within
//!   [`ServerLimits::body_timeout`] is answered `408` and the connection
//!   closed (see `lib.rs`, which reads bodies before routing; bodies are
//!   limited to [`MAX_BODY`] bytes, `413` beyond).
//! * **Idle timeout**: a kept-alive connection on which nothing was read or
//!   written for [`ServerLimits::idle_timeout`] is shut down gracefully (a
//!   request in flight is answered first).
//! * **Accept errors** (such as running out of file descriptors) are
//!   logged and retried after a short pause, never a hot loop.
//!
//! Restarts: [`ConnControl`] lets the admin API close every open connection
//! and refuse new ones for a while, as a gateway restart does, without
//! giving up the listening socket.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::config::ServerLimits;

/// The largest request body read (the same 2 MiB axum allows by default).
pub(crate) const MAX_BODY: usize = 2 * 1024 * 1024;

/// How long connections closed by a restart get to finish what is in
/// flight before they are dropped.
const RESTART_GRACE: Duration = Duration::from_secs(2);

/// Control over the open connections, shared by the accept loop, every
/// connection task and the admin API.
#[derive(Debug)]
pub(crate) struct ConnControl {
    /// Bumped to close every open connection.
    close_all: watch::Sender<u64>,
    /// While set and in the future, new connections are closed at once.
    down_until: Mutex<Option<Instant>>,
}

impl Default for ConnControl {
    fn default() -> Self {
        ConnControl {
            close_all: watch::channel(0).0,
            down_until: Mutex::new(None),
        }
    }
}

impl ConnControl {
    /// Close every open connection (in-flight requests are answered first,
    /// within a grace period) and refuse new ones for `down_for`.
    pub(crate) fn restart(&self, down_for: Duration) {
        *self.down_until.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now() + down_for);
        self.close_all.send_modify(|g| *g = g.wrapping_add(1));
    }

    fn down(&self) -> bool {
        self.down_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| Instant::now() < t)
    }
}

/// A stream that notes when it last read or wrote, and holds its
/// connection's slot under the cap for as long as it lives (a websocket
/// keeps it after the upgrade).
struct Tracked<S> {
    inner: S,
    last: Arc<AtomicU64>,
    epoch: Instant,
    _slot: OwnedSemaphorePermit,
}

impl<S> Tracked<S> {
    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What one connection task needs.
#[derive(Clone)]
struct ConnSetup {
    app: Router,
    limits: ServerLimits,
    tls: Option<TlsAcceptor>,
    ctl: Arc<ConnControl>,
    stop: watch::Receiver<bool>,
}

/// Accept connections on `listener` until `stop` turns true, each served
/// by HTTP/1.1 with upgrades (the websocket), within `limits`.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: ServerLimits,
    ctl: Arc<ConnControl>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let setup = ConnSetup {
        app,
        limits,
        tls,
        ctl,
        stop: stop.clone(),
    };
    let mut refused_logged = Instant::now() - Duration::from_secs(60);
    loop {
        if *stop.borrow() {
            return;
        }
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors, mostly: give the connections
                    // that hold them time to finish or time out.
                    tracing::warn!("sim gateway: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    return;
                }
                continue;
            }
        };
        if setup.ctl.down() {
            drop(tcp);
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if refused_logged.elapsed() >= Duration::from_secs(5) {
                refused_logged = Instant::now();
                tracing::warn!(
                    "sim gateway: {} connections open, the most allowed: refusing more",
                    setup.limits.max_connections
                );
            }
            if setup.tls.is_none() {
                let body = r#"{"error":"too many connections"}"#;
                let answer = format!(
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.try_write(answer.as_bytes());
            }
            drop(tcp);
            continue;
        };
        tokio::spawn(connection(tcp, peer, slot, setup.clone()));
    }
}

/// Serve one accepted connection.
async fn connection(tcp: TcpStream, peer: SocketAddr, slot: OwnedSemaphorePermit, s: ConnSetup) {
    let epoch = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let io = Tracked {
        inner: tcp,
        last: last.clone(),
        epoch,
        _slot: slot,
    };
    match s.tls.clone() {
        Some(acceptor) => {
            let tls = match tokio::time::timeout(s.limits.header_timeout, acceptor.accept(io)).await
            {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    tracing::debug!("sim gateway: TLS handshake with {peer} failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!("sim gateway: TLS handshake with {peer} timed out");
                    return;
                }
            };
            http(TokioIo::new(tls), peer, &s, &last, epoch).await;
        }
        None => http(TokioIo::new(io), peer, &s, &last, epoch).await,
    }
}

/// HTTP/1.1 on `io` until the client leaves, a timeout closes it, the
/// server stops or a restart closes every connection.
async fn http<I>(io: I, peer: SocketAddr, s: &ConnSetup, last: &AtomicU64, epoch: Instant)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = s.app.clone().map_request(
        move |mut req: axum::extract::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            req
        },
    );
    let svc = TowerToHyperService::new(svc);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(s.limits.header_timeout)
        .keep_alive(true);
    let mut conn = pin!(builder.serve_connection(io, svc).with_upgrades());
    let mut stop = s.stop.clone();
    let mut close_all = s.ctl.close_all.subscribe();
    close_all.mark_unchanged();
    // Shutting down: no more requests on this connection.
    let mut shutting = false;
    // Set when the server stops or restarts: past it, the connection is
    // dropped even with a request still in flight.
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let idle_ms = u64::try_from(epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_sub(last.load(Ordering::Relaxed));
        let idle_left = s
            .limits
            .idle_timeout
            .saturating_sub(Duration::from_millis(idle_ms));
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!("sim gateway: connection from {peer} ended: {e}");
                }
                return;
            }
            _ = tokio::time::sleep(idle_left), if !shutting => {
                if idle_left.is_zero() {
                    // A request in flight is answered first.
                    tracing::debug!("sim gateway: closing idle connection from {peer}");
                    conn.as_mut().graceful_shutdown();
                    shutting = true;
                }
            }
            r = close_all.changed(), if deadline.is_none() => {
                if r.is_ok() {
                    if !shutting {
                        conn.as_mut().graceful_shutdown();
                    }
                    shutting = true;
                    deadline = Some(tokio::time::Instant::now() + RESTART_GRACE);
                }
            }
            r = stop.changed(), if deadline.is_none() => {
                if r.is_err() || *stop.borrow() {
                    if !shutting {
                        conn.as_mut().graceful_shutdown();
                    }
                    shutting = true;
                    deadline = Some(tokio::time::Instant::now() + RESTART_GRACE);
                }
            }
            _ = sleep_until_opt(deadline) => {
                tracing::debug!("sim gateway: dropping connection from {peer}");
                return;
            }
        }
    }
}

/// Sleep until `at`, or forever without one.
async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
