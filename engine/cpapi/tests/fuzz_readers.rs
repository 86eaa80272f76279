//! Fuzz targets for the wire readers of this crate that take outside
//! input whole: saved or downloaded history responses (`/hmds/history`,
//! `/iserver/marketdata/history`) and order-ticket bodies (what the
//! simulator reads from `POST .../orders`, `whatif` and modify).
//!
//! Each reader must return a value or a typed error for any bytes, and
//! what it returns must pass the engine's checks: a bar it accepts is a
//! bar [`Bar::check`] accepts, an order it reads is one
//! [`OrderRequest::validate`] accepts. Case counts: see `support/fuzz.rs`.

extern crate ibflow_cpapi as cpapi;

#[path = "../../../tests/support/fuzz.rs"]
mod fuzz;

use cpapi::history::parse_history;
use cpapi::order_ticket::OrdersBody;
use engine::model::{Conid, OrderId};
use proptest::prelude::*;
use proptest::test_runner::Config;

const HISTORY: &[&str] = &[
    r#"{"startTime":"20231211-04:00:00","startTimeVal":1702285200000,"endTime":"20231211-17:51:20","endTimeVal":1702335080000,"data":[{"t":1702285200000,"o":195.01,"c":194.8,"h":195.01,"l":194.8,"v":1723.0},{"t":1702285260000,"o":"194.8","c":194.9,"h":195.0,"l":194.7,"v":10}],"points":14,"mktDataDelay":0}"#,
    r#"{"serverId":"20477","symbol":"AAPL","text":"APPLE INC","priceFactor":100,"startTime":"20230818-08:00:00","timePeriod":"1d","barLength":86400,"volumeFactor":1,"data":[{"o":173.4,"c":174.7,"h":175.1,"l":171.7,"v":472117.45,"t":1692345600000}],"points":0}"#,
    r#"{"error":"Chart data unavailable"}"#,
];

const TICKETS: &[&str] = &[
    r#"{"orders":[{"acctId":"U1234567","conid":265598,"cOID":"Parent","orderType":"MKT","listingExchange":"SMART","outsideRTH":true,"side":"Buy","referrer":"QuickTrade","tif":"GTC","quantity":50},{"acctId":"U1234567","conid":265598,"orderType":"STP","listingExchange":"SMART","outsideRTH":false,"price":157.30,"side":"Sell","tif":"GTC","quantity":50,"parentId":"Parent"},{"acctId":"U1234567","conid":265598,"orderType":"LMT","listingExchange":"SMART","outsideRTH":false,"price":157.00,"side":"Sell","tif":"GTC","quantity":50,"parentId":"Parent"}]}"#,
    r#"{"orders":[{"acctId":"U1234567","conid":265598,"cOID":"t1","orderType":"TRAILLMT","price":185.5,"auxPrice":186,"trailingAmt":1.5,"trailingType":"amt","side":"SELL","tif":"DAY","quantity":"10","isSingleGroup":true}]}"#,
];

proptest! {
    #![proptest_config(Config { cases: fuzz::cases(4096), failure_persistence: None, ..Config::default() })]

    /// Any body gives bars that pass every check, or an error.
    #[test]
    fn history_bodies(body in fuzz::inputs(HISTORY)) {
        if let Ok(h) = parse_history(Conid(1), &body) {
            for bar in &h.bars {
                prop_assert!(bar.check().is_ok(), "accepted {bar:?}");
            }
        }
    }

    /// Any body gives orders that validate, or an error.
    #[test]
    fn order_ticket_bodies(body in fuzz::inputs(TICKETS)) {
        if let Ok(b) = serde_json::from_slice::<OrdersBody>(&body) {
            for (i, t) in b.orders.iter().enumerate() {
                if let Ok(req) = t.to_request(OrderId(i as u64 + 1), "child", None) {
                    prop_assert!(req.validate().is_ok(), "accepted {req:?}");
                }
            }
        }
    }
}
