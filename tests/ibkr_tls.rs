//! The client against the simulator over HTTPS and WSS with a self-signed
//! certificate, as the real CP Gateway ships: refused by default, accepted
//! with the explicit switch on a loopback host.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::time::Duration;

use gateway_sim::{Gateway, GatewayConfig, PacingConfig};
use ibkr::ws::{self, WsConfig, WsMessage};
use ibkr::{ClientConfig, IbkrClient, IbkrError};

#[tokio::test]
async fn self_signed_certificate_needs_the_switch() {
    let gw = Gateway::start(GatewayConfig {
        tls: true,
        speed: 0.0,
        pacing: PacingConfig::off(),
        ..GatewayConfig::default()
    })
    .await
    .expect("simulator with TLS");
    let url = gw.base_url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    // Without the switch the certificate is refused.
    let strict = IbkrClient::new(ClientConfig::with_base_url(url.clone())).expect("client");
    match strict.tickle().await {
        Err(IbkrError::Transport { .. }) => {}
        other => panic!("expected a TLS failure, got {other:?}"),
    }

    // With it, REST and the websocket work.
    let client = IbkrClient::new(ClientConfig {
        accept_invalid_certs: true,
        ..ClientConfig::with_base_url(url)
    })
    .expect("client");
    let t = client.tickle().await.expect("tickle over https");
    assert!(!t.session.is_empty());
    let (wsh, mut rx) = ws::spawn(client.clone(), WsConfig::default(), 64);
    let connected = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(m) = rx.recv().await {
            if matches!(m, WsMessage::Connected { .. }) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(connected, "wss connects with the self-signed certificate");
    wsh.shutdown().await;

    // The switch is refused for a host that is not loopback.
    let remote = IbkrClient::new(ClientConfig {
        accept_invalid_certs: true,
        ..ClientConfig::with_base_url("https://api.ibkr.com/v1/api")
    });
    assert!(matches!(remote, Err(IbkrError::Config(_))));
    gw.shutdown().await;
}
