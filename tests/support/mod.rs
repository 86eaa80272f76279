//! What the end-to-end tests of the live path share: a paused simulator,
//! a broker or policy on it, and the sample's prices. Each test file uses
//! what it needs.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use cpapi::order_ticket::TicketBuilder;
use engine::model::Conid;
use gateway_sim::{Gateway, GatewayConfig, GatewayHandle, PacingConfig};
use ibkr::broker::IbkrBroker;
use ibkr::executor::LiveExecutor;
use ibkr::reply::ReplyPolicy;
use ibkr::{ClientConfig, IbkrClient};

/// The sample's AAPL.
pub(crate) const AAPL: Conid = Conid(265598);

/// The simulator's configuration, paused at `start` (replay speed 0, no
/// pacing): a test moves its clock with `advance`.
pub(crate) fn paused(start: DateTime<Utc>) -> GatewayConfig {
    GatewayConfig {
        speed: 0.0,
        start: Some(start),
        pacing: PacingConfig::off(),
        ..GatewayConfig::default()
    }
}

/// A paused simulator and its account.
pub(crate) async fn gateway(start: DateTime<Utc>) -> (GatewayHandle, String) {
    let cfg = paused(start);
    let account = cfg.account.clone();
    let gw = Gateway::start(cfg).await.expect("simulator starts");
    (gw, account)
}

/// A client of `gw`.
pub(crate) fn client(gw: &GatewayHandle) -> IbkrClient {
    IbkrClient::new(ClientConfig::with_base_url(gw.base_url())).expect("client")
}

/// A reply policy confirming `ids`.
pub(crate) fn policy(ids: &[&str]) -> ReplyPolicy {
    ReplyPolicy {
        auto_confirm: ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>(),
    }
}

/// A broker on `gw` whose run prefixes cOIDs with `prefix`, confirming the
/// price and stop prompts.
pub(crate) fn broker(gw: &GatewayHandle, account: &str, prefix: &str) -> IbkrBroker {
    let exec = LiveExecutor::new(
        client(gw),
        TicketBuilder {
            account: account.to_owned(),
            coid_prefix: prefix.into(),
            ext_operator: "test".into(),
        },
        policy(&["o163", "o10331"]),
    );
    IbkrBroker::new(exec, account)
}

/// The last AAPL close at or before `at` in the sample data.
pub(crate) fn last_close(at: DateTime<Utc>) -> Decimal {
    backtest::data::sample()
        .filter_map(Result::ok)
        .filter(|b| b.conid == AAPL && b.time <= at)
        .last()
        .expect("AAPL bars")
        .close
}
