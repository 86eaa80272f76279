//! The live executor against the CP Gateway simulator over real HTTP on
//! 127.0.0.1: a bracket becomes three live orders through its prompts, a
//! two-prompt chain is confirmed by policy, an unlisted prompt is declined
//! and nothing is placed.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;

use cpapi::order_ticket::TicketBuilder;
use engine::model::{OrderId, OrderRequest, OrderType, SecType, Side, Tif};
use gateway_sim::{Gateway, GatewayConfig};
use ibkr::executor::{LiveExecutor, SubmitError};
use ibkr::reply::ReplyPolicy;
use ibkr::{ClientConfig, IbkrClient};

mod support;

use support::{last_close, paused, policy, AAPL};

fn order(
    id: u64,
    side: Side,
    ty: OrderType,
    price: Option<Decimal>,
    parent: Option<u64>,
) -> OrderRequest {
    OrderRequest {
        id: OrderId(id),
        conid: AAPL,
        side,
        order_type: ty,
        quantity: Decimal::from(50),
        limit_price: if ty == OrderType::Limit { price } else { None },
        stop_price: if ty == OrderType::Stop { price } else { None },
        trail: None,
        tif: Tif::Gtc,
        outside_rth: false,
        client_order_id: format!("ibf-{id}"),
        parent: parent.map(|p| format!("ibf-{p}")),
        oca_group: None,
    }
}

/// A paused simulator without pacing or prompts and an executor whose
/// client gives up after 300 ms, its cOIDs prefixed with `prefix`.
async fn impatient(prefix: &str) -> (gateway_sim::GatewayHandle, LiveExecutor, String) {
    let cfg = GatewayConfig {
        prompts: Vec::new(),
        ..paused(Utc.with_ymd_and_hms(2023, 6, 1, 14, 0, 0).unwrap())
    };
    let account = cfg.account.clone();
    let gw = Gateway::start(cfg).await.expect("simulator starts");
    let client = IbkrClient::new(ClientConfig {
        timeout: std::time::Duration::from_millis(300),
        ..ClientConfig::with_base_url(gw.base_url())
    })
    .expect("client");
    let builder = TicketBuilder {
        account: account.clone(),
        coid_prefix: prefix.into(),
        ext_operator: "test".into(),
    };
    let exec = LiveExecutor::new(client, builder, ReplyPolicy::default());
    (gw, exec, account)
}

/// How many live orders carry `order_ref`.
async fn copies(exec: &LiveExecutor, order_ref: &str) -> usize {
    let live = exec.live_orders().await.expect("live orders");
    live.iter()
        .filter(|o| o.order_ref.as_deref() == Some(order_ref))
        .count()
}

#[tokio::test]
async fn bracket_through_prompts_and_declines() {
    let start = Utc.with_ymd_and_hms(2023, 6, 1, 14, 0, 0).unwrap();
    let cfg = paused(start);
    let account = cfg.account.clone();
    let gw = Gateway::start(cfg).await.expect("simulator starts");
    let client = || IbkrClient::new(ClientConfig::with_base_url(gw.base_url())).expect("client");
    let builder = TicketBuilder {
        account: account.clone(),
        coid_prefix: TicketBuilder::run_prefix(start),
        ext_operator: "test".into(),
    };
    let px = last_close(start);
    let pct = |p: i64| px * Decimal::new(100 + p, 2);

    // Bracket: the stop-loss child raises o10331 (stop order); allowed.
    let exec = LiveExecutor::new(client(), builder.clone(), policy(&["o10331"]));
    let bracket = [
        order(1, Side::Buy, OrderType::Market, None, None),
        order(2, Side::Sell, OrderType::Limit, Some(pct(1)), Some(1)),
        order(3, Side::Sell, OrderType::Stop, Some(pct(-1)), Some(1)),
    ];
    let placed = exec
        .submit(&bracket, |_| SecType::Stock)
        .await
        .expect("bracket placed");
    assert_eq!(placed.confirmed, ["o10331"]);
    let statuses: Vec<_> = placed
        .acks
        .iter()
        .map(|a| a.order_status.clone().unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["Submitted", "PreSubmitted", "PreSubmitted"]);
    for ack in &placed.acks {
        let id = ack.order_id.clone().expect("order id");
        let st = exec.client().order_status(&id).await.expect("order status");
        assert_eq!(st.conid, AAPL, "{id}");
    }

    // A stop 10% away: o163 (far from market), then o10331; both allowed.
    let exec2 = LiveExecutor::new(client(), builder.clone(), policy(&["o163", "o10331"]));
    let far = [order(4, Side::Sell, OrderType::Stop, Some(pct(-10)), None)];
    let placed = exec2
        .submit(&far, |_| SecType::Stock)
        .await
        .expect("placed after two prompts");
    assert_eq!(placed.confirmed, ["o163", "o10331"]);
    assert_eq!(placed.acks.len(), 1);

    // Only o10331 allowed: the o163 prompt is declined, nothing is placed.
    let far = [order(5, Side::Sell, OrderType::Stop, Some(pct(-10)), None)];
    match exec.submit(&far, |_| SecType::Stock).await {
        Err(SubmitError::Declined { unexpected, .. }) => assert_eq!(unexpected, ["o163"]),
        other => panic!("expected a declined prompt, got {other:?}"),
    }
    let live = exec.live_orders().await.expect("live orders");
    assert_eq!(live.len(), 4, "the declined order was not placed");
    let refs: Vec<_> = live.iter().filter_map(|o| o.order_ref.clone()).collect();
    assert!(
        refs.contains(&format!("{}ibf-1", builder.coid_prefix)),
        "{refs:?}"
    );
    assert!(
        !refs.contains(&format!("{}ibf-5", builder.coid_prefix)),
        "{refs:?}"
    );
    gw.shutdown().await;
}

/// A submission whose answer never arrives (the client times out while the
/// gateway is slow) is looked up by cOID before anything is retried: the
/// order exists exactly once afterwards.
#[tokio::test]
async fn timed_out_submission_is_found_not_duplicated() {
    let (gw, exec, account) = impatient("to-").await;
    // Placing is slow: the answer comes after the client gave up.
    gw.delay_path(
        &format!("/iserver/account/{account}/orders"),
        std::time::Duration::from_secs(1),
    );
    let batch = [order(
        1,
        Side::Buy,
        OrderType::Limit,
        Some(Decimal::ONE),
        None,
    )];
    let first = exec.submit(&batch, |_| SecType::Stock).await;
    gw.clear_faults();
    let placed_once = match first {
        Ok(p) => {
            assert!(
                p.recovered,
                "the ack was lost, so it must come from the lookup"
            );
            true
        }
        Err(SubmitError::Venue(ibkr::IbkrError::Transport { .. })) => false,
        Err(other) => panic!("unexpected error {other:?}"),
    };
    if !placed_once {
        // Not found: only then is a retry safe.
        exec.submit(&batch, |_| SecType::Stock)
            .await
            .expect("retry");
    }
    assert_eq!(copies(&exec, "to-ibf-1").await, 1);
    gw.shutdown().await;
}

/// The gateway placed the order but its answer was lost (the client gave
/// up waiting): the executor finds the order by its cOID and reports it
/// placed, recovered, and places nothing twice.
#[tokio::test]
async fn lost_answer_is_recovered_from_the_live_orders() {
    let (gw, exec, account) = impatient("lost-").await;
    gw.delay_answer_path(
        &format!("/iserver/account/{account}/orders"),
        std::time::Duration::from_secs(2),
    );
    let batch = [order(
        1,
        Side::Buy,
        OrderType::Limit,
        Some(Decimal::ONE),
        None,
    )];
    let placed = exec
        .submit(&batch, |_| SecType::Stock)
        .await
        .expect("found by cOID, not an error");
    assert!(placed.recovered, "{placed:?}");
    gw.clear_faults();
    assert_eq!(copies(&exec, "lost-ibf-1").await, 1);
    gw.shutdown().await;
}
