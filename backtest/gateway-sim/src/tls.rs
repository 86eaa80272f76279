//! `--tls`: HTTPS and WSS with a self-signed certificate generated at start,
//! as the real gateway serves `https://localhost:5000` with a certificate
//! no one signed. The certificate names `localhost` and `127.0.0.1`; its DER
//! bytes are on the handle so a test client can trust exactly it. TLS is
//! rustls with the ring provider; the server (`server.rs`) does the
//! handshake.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// A server-side TLS setup and the certificate it presents.
pub(crate) struct SelfSigned {
    pub acceptor: TlsAcceptor,
    pub cert_der: Vec<u8>,
}

pub(crate) fn self_signed() -> Result<SelfSigned, String> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("cannot generate a certificate: {e}"))?;
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .map_err(|e| format!("TLS setup: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(SelfSigned {
        acceptor: TlsAcceptor::from(Arc::new(cfg)),
        cert_der: cert.to_vec(),
    })
}
