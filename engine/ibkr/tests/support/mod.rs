//! Shared helpers of the client's tests: the real CP Gateway simulator
//! (`gateway_sim`) on 127.0.0.1, paused, and the client preset for it.
#![allow(dead_code)] // each test file uses its own part
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::time::Duration;

use chrono::{TimeZone, Utc};
use engine::model::{Conid, OrderId, OrderRequest, OrderType, Side, Tif};
use gateway_sim::{Gateway, GatewayConfig, GatewayHandle, PacingConfig};
use ibflow_ibkr::{ClientConfig, IbkrClient};
use rust_decimal::Decimal;

/// A paused simulator (speed 0: replay time moves only through
/// `advance`) at 2023-06-01 14:00 UTC, years of history behind it, pacing
/// enforced exactly with a penalty box longer than any test (a single
/// pacing disagreement fails a call with a 429); `tweak` changes the rest.
pub(crate) async fn start(tweak: impl FnOnce(&mut GatewayConfig)) -> GatewayHandle {
    let mut cfg = GatewayConfig {
        speed: 0.0,
        start: Some(Utc.with_ymd_and_hms(2023, 6, 1, 14, 0, 0).unwrap()),
        pacing: PacingConfig {
            penalty: Duration::from_secs(600),
            ..PacingConfig::default()
        },
        ..GatewayConfig::default()
    };
    tweak(&mut cfg);
    Gateway::start(cfg).await.expect("simulator starts")
}

/// The client preset for the simulator (`ClientConfig::for_simulator`): it
/// paces itself and never waits out a penalty.
pub(crate) fn client(g: &GatewayHandle) -> IbkrClient {
    IbkrClient::new(ClientConfig::for_simulator(g.base_url())).expect("client")
}

/// An order for one unit, DAY, no prices, cOID `ibf-{id}`: tests set the
/// prices and whatever else they need on top.
pub(crate) fn order(id: u64, conid: Conid, side: Side, order_type: OrderType) -> OrderRequest {
    OrderRequest {
        id: OrderId(id),
        conid,
        side,
        order_type,
        quantity: Decimal::ONE,
        limit_price: None,
        stop_price: None,
        trail: None,
        tif: Tif::Day,
        outside_rth: false,
        client_order_id: format!("ibf-{id}"),
        parent: None,
        oca_group: None,
    }
}
