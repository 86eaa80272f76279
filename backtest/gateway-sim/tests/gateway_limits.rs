//! The HTTP server's timeouts and connection cap (issue 12: 300 half-open
//! connections under a low file limit made the simulator unreachable).
//! Real TCP connections on 127.0.0.1; margins are generous (answers within
//! 10 s of timeouts of 1 s) so the tests hold on a loaded machine.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_gateway_sim as gateway_sim;

mod support;

use std::time::{Duration, Instant};

use gateway_sim::{GatewayHandle, ServerLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GENEROUS: Duration = Duration::from_secs(10);

async fn start(limits: ServerLimits) -> GatewayHandle {
    support::start(|c| c.server = limits).await
}

/// One `GET /v1/api/tickle` on a new connection: the status, or `None`
/// when the connection was refused, closed or reset.
async fn tickle(gw: &GatewayHandle) -> Option<u16> {
    let mut s = TcpStream::connect(gw.addr()).await.ok()?;
    s.write_all(b"GET /v1/api/tickle HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(GENEROUS, s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1)?.parse().ok()
}

/// True when the server closes `s` (EOF or reset) within `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // an answer (408, 503): the close follows
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_neither_block_nor_stay() {
    let gw = start(ServerLimits {
        header_timeout: Duration::from_secs(1),
        max_connections: 16,
        ..ServerLimits::default()
    })
    .await;
    // 200 connections that never finish a request: half send nothing, half
    // a request head without its end.
    let mut idle = Vec::new();
    for i in 0..200 {
        let mut s = TcpStream::connect(gw.addr()).await.unwrap();
        if i % 2 == 1 {
            s.write_all(b"GET /v1/api/tickle HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        idle.push(s);
    }
    // A real request gets its answer (once the header timeout has freed
    // the slots the half-open connections took).
    let started = Instant::now();
    let mut answered = None;
    while started.elapsed() < GENEROUS {
        // 503 (too many connections) while the slots are taken.
        answered = tickle(&gw).await;
        if answered == Some(200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answered, Some(200), "no answer within 10 s");
    // Every half-open connection is closed by the server.
    for (i, s) in idle.iter_mut().enumerate() {
        assert!(
            closed_within(s, GENEROUS).await,
            "connection {i} still open"
        );
    }
    // And the server goes on answering.
    assert_eq!(tickle(&gw).await, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_refused_with_503() {
    let gw = start(ServerLimits {
        max_connections: 4,
        header_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        ..ServerLimits::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(gw.addr()).await.unwrap());
    }
    // Give the server time to accept all four (the machine may be slow).
    let mut status = None;
    let started = Instant::now();
    while started.elapsed() < GENEROUS {
        status = tickle(&gw).await;
        if status == Some(503) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, Some(503), "the fifth connection is refused");
    drop(held);
    let started = Instant::now();
    while started.elapsed() < GENEROUS && tickle(&gw).await != Some(200) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(tickle(&gw).await, Some(200), "slots are freed on close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_answered_408() {
    let gw = start(ServerLimits {
        body_timeout: Duration::from_secs(1),
        ..ServerLimits::default()
    })
    .await;
    let mut s = TcpStream::connect(gw.addr()).await.unwrap();
    s.write_all(
        b"POST /v1/api/iserver/account/DU1234567/orders HTTP/1.1\r\nHost: x\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"orders\"",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(GENEROUS, s.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the connection stayed open past the body timeout"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert_eq!(tickle(&gw).await, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let gw = start(ServerLimits {
        // The header timeout would close it too: make it long, so this
        // shows the idle timeout.
        header_timeout: Duration::from_secs(120),
        idle_timeout: Duration::from_secs(1),
        ..ServerLimits::default()
    })
    .await;
    let mut s = TcpStream::connect(gw.addr()).await.unwrap();
    s.write_all(b"GET /v1/api/tickle HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(GENEROUS, s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Kept alive, then idle: the server closes it.
    assert!(
        closed_within(&mut s, GENEROUS).await,
        "idle connection kept"
    );
}
