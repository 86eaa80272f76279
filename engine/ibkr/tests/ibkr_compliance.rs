//! CME Rule 536-B: futures orders, cancels and modifies carry
//! `manualIndicator: false` and `extOperator`. Checked on the wire against
//! a small HTTP server on 127.0.0.1 that records what it received (the
//! simulator does not expose the requests it received, so a mock).
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_ibkr as ibkr;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, Uri};
use axum::Router;
use rust_decimal::Decimal;

use cpapi::order_ticket::TicketBuilder;
use engine::model::{Conid, OrderId, OrderRequest, OrderType, SecType, Side, Tif};
use ibkr::executor::LiveExecutor;
use ibkr::reply::ReplyPolicy;
use ibkr::{ClientConfig, IbkrClient};

type Seen = Arc<Mutex<Vec<(Method, String, String)>>>;

async fn record(State(seen): State<Seen>, method: Method, uri: Uri, body: Bytes) -> String {
    seen.lock().unwrap().push((
        method.clone(),
        uri.to_string(),
        String::from_utf8_lossy(&body).into_owned(),
    ));
    if method == Method::DELETE {
        r#"{"msg":"Request was submitted","order_id":7,"conid":1,"account":"U1"}"#.to_owned()
    } else {
        r#"[{"order_id":"7","order_status":"Submitted","encrypt_message":"1"}]"#.to_owned()
    }
}

#[tokio::test]
async fn futures_orders_and_cancels_carry_the_compliance_fields() {
    let seen: Seen = Arc::default();
    let app = Router::new().fallback(record).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client =
        IbkrClient::new(ClientConfig::with_base_url(format!("http://{addr}/v1/api"))).unwrap();
    let exec = LiveExecutor::new(
        client,
        TicketBuilder {
            account: "U1".into(),
            coid_prefix: "f-".into(),
            ext_operator: "desk-7".into(),
        },
        ReplyPolicy::default(),
    );
    let req = OrderRequest {
        id: OrderId(1),
        conid: Conid(495512557),
        side: Side::Buy,
        order_type: OrderType::Limit,
        quantity: Decimal::ONE,
        limit_price: Some(Decimal::new(5000, 0)),
        stop_price: None,
        trail: None,
        tif: Tif::Day,
        outside_rth: false,
        client_order_id: "ibf-1".into(),
        parent: None,
        oca_group: None,
    };
    exec.submit(std::slice::from_ref(&req), |_| SecType::Future)
        .await
        .unwrap();
    exec.cancel("7", &SecType::Future).await.unwrap();
    exec.cancel("8", &SecType::Stock).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let (_, _, body) = &seen[0];
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["orders"][0]["manualIndicator"], false);
    assert_eq!(v["orders"][0]["extOperator"], "desk-7");
    let (m, uri, _) = &seen[1];
    assert_eq!(m, Method::DELETE);
    assert!(
        uri.ends_with("/iserver/account/U1/order/7?manualIndicator=false&extOperator=desk-7"),
        "{uri}"
    );
    let (_, uri, _) = &seen[2];
    assert!(
        uri.ends_with("/iserver/account/U1/order/8"),
        "stocks carry no compliance fields: {uri}"
    );
}
