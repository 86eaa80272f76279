//! Portfolio endpoints: positions (paged), summary, ledger, and the
//! partitioned PnL, from the account the venue books
//! ([`backtest::sim_venue::SimVenue::books`]).
//!
//! The account starts with [`super::GatewayConfig::initial_cash`] in USD and
//! no positions; positions are marked at the current synthesized last
//! price. Assumptions where the spec is silent: excess liquidity equals net
//! liquidation (no margin model); daily PnL is measured from the equity at
//! the first request of the current New York replay day; `mv` is the market
//! value of stock positions; summary carries a subset of the 45-135 keys the
//! spec mentions (account code, net liquidation, cash, settled cash,
//! available funds, buying power, equity with loan, gross position value,
//! unrealized and realized PnL).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::NaiveDate;
use chrono_tz::America::New_York;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use engine::model::Conid;
use engine::portfolio::Portfolio;

use super::state::{Shared, State as GwState};
use super::wire::{bad_request, epoch_ms, num, ok};

/// What the simulator keeps beside the venue's books (positions, cash and
/// marks are the venue's: [`backtest::sim_venue::SimVenue::books`]).
#[derive(Debug, Default)]
pub(crate) struct Books {
    /// The New York replay day and the equity at its first request: the
    /// base of the daily PnL.
    day: Option<(NaiveDate, Decimal)>,
}

/// The position in `conid`, the gross position value at the marks, and
/// the equity: what an order's what-if preview starts from.
pub(crate) fn exposure(st: &GwState, conid: Conid) -> (Decimal, Decimal, Decimal) {
    let Some(p) = st.desk.venue.books() else {
        return (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    };
    // Checked: a product beyond `Decimal` counts as the largest value,
    // which refuses every opening order rather than panicking.
    let gross = p
        .positions()
        .filter(|x| !x.is_flat())
        .try_fold(Decimal::ZERO, |acc, x| {
            let mark = p.mark_price(x.conid).unwrap_or(x.avg_price);
            x.quantity
                .checked_mul(mark)
                .and_then(|v| v.checked_mul(x.multiplier))
                .and_then(|v| acc.checked_add(v.abs()))
        })
        .unwrap_or(Decimal::MAX);
    (p.quantity(conid), gross, p.equity())
}

/// Mark positions to the current quotes and roll the daily PnL base.
pub(crate) fn refresh(st: &mut GwState, sh: &Shared) {
    sh.pump(st);
    let now = st.clock.now();
    let held: Vec<_> = st
        .desk
        .venue
        .books()
        .into_iter()
        .flat_map(Portfolio::positions)
        .filter(|p| !p.is_flat())
        .map(|p| p.conid)
        .collect();
    for conid in held {
        let tick = sh
            .instrument(conid)
            .map(|i| i.tick_size)
            .unwrap_or(Decimal::new(1, 2));
        if let (Some(q), Some(p)) = (st.market.quote(conid, now, tick), st.desk.venue.books_mut()) {
            p.mark(conid, q.last);
        }
    }
    let today = now.with_timezone(&New_York).date_naive();
    let Some(equity) = st.desk.venue.books().map(Portfolio::equity) else {
        return;
    };
    if st.desk.books.day.is_none_or(|(d, _)| d != today) {
        st.desk.books.day = Some((today, equity));
    }
}

#[derive(Default)]
struct Figures {
    nl: Decimal,
    cash: Decimal,
    mv: Decimal,
    upl: Decimal,
    rpl: Decimal,
    dpl: Decimal,
}

fn figures(st: &GwState) -> Figures {
    // Every booked position is marked (a fill marks at its price), so the
    // portfolio's own totals are the account's figures.
    let Some(p) = st.desk.venue.books() else {
        return Figures::default();
    };
    let snap = p.snapshot();
    let nl = snap.equity;
    Figures {
        nl,
        cash: snap.cash,
        mv: snap.equity - snap.cash,
        upl: snap.unrealized_pnl,
        rpl: snap.realized_pnl,
        dpl: st
            .desk
            .books
            .day
            .map_or(Decimal::ZERO, |(_, base)| nl - base),
    }
}

/// The monetary account summary values, by their `ssd` key names;
/// `/portfolio/{acct}/summary` uses the same names in lower case.
fn summary_values(f: &Figures) -> [(&'static str, Decimal); 10] {
    [
        ("NetLiquidation", f.nl),
        ("TotalCashValue", f.cash),
        ("SettledCash", f.cash),
        ("AvailableFunds", f.nl),
        ("ExcessLiquidity", f.nl),
        ("BuyingPower", f.nl),
        ("EquityWithLoanValue", f.nl),
        ("GrossPositionValue", f.mv.abs()),
        ("UnrealizedPnL", f.upl),
        ("RealizedPnL", f.rpl),
    ]
}

/// The `{acct}.Core` PnL row of `/iserver/account/pnl/partitioned` (and of
/// the `spl` topic, which names excess liquidity `uel` instead of `el`).
pub(crate) fn pnl_row(st: &GwState, spl: bool) -> Value {
    let f = figures(st);
    let mut v = json!({
        "rowType": 1,
        "dpl": num(f.dpl.round_dp(2)),
        "nl": num(f.nl.round_dp(2)),
        "upl": num(f.upl.round_dp(2)),
        "mv": num(f.mv.round_dp(2)),
    });
    v[if spl { "uel" } else { "el" }] = num(f.nl.round_dp(2));
    v
}

/// The websocket `spl` message.
pub(crate) fn spl_message(st: &GwState, account: &str) -> Value {
    let key = format!("{account}.Core");
    json!({ "topic": "spl", "args": { key: pnl_row(st, true) } })
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/portfolio/{acct}/positions/{page}", get(positions))
        .route("/portfolio/{acct}/position/{conid}", get(position_of))
        .route("/portfolio/{acct}/summary", get(summary))
        .route("/portfolio/{acct}/ledger", get(ledger))
        .route("/iserver/account/pnl/partitioned", get(pnl))
}

/// The refusal for an account that is not the simulated one.
fn unknown_account(sh: &Shared, acct: &str) -> Option<Response> {
    (acct != sh.cfg.account).then(|| bad_request(format!("account {acct} is not known")))
}

async fn positions(
    State(sh): State<Arc<Shared>>,
    Path((acct, page)): Path<(String, String)>,
) -> Response {
    if let Some(r) = unknown_account(&sh, &acct) {
        return r;
    }
    let Ok(page) = page.trim().parse::<usize>() else {
        return bad_request(format!("page {page:?} is not a number"));
    };
    let mut guard = sh.lock();
    let st = &mut *guard;
    refresh(st, &sh);
    let Some(p) = st.desk.venue.books() else {
        return ok(Value::Array(Vec::new()));
    };
    let list: Vec<Value> = p
        .positions()
        .filter(|p| !p.is_flat())
        .skip(page.saturating_mul(100))
        .take(100)
        .map(|pos| position_row(&sh, p, pos))
        .collect();
    ok(Value::Array(list))
}

/// One position as `/portfolio/{acct}/positions` and `.../position/{conid}`
/// show it.
fn position_row(sh: &Shared, p: &Portfolio, pos: &engine::model::Position) -> Value {
    let inst = sh.instrument(pos.conid);
    let mark = p.mark_price(pos.conid).unwrap_or(pos.avg_price);
    let mut row = json!({
        "acctId": sh.cfg.account,
        "conid": pos.conid.0,
        "contractDesc": inst.map(|i| i.symbol.clone()).unwrap_or_else(|| pos.conid.to_string()),
        "position": num(pos.quantity),
        "mktPrice": num(mark),
        "mktValue": num((pos.quantity * mark * pos.multiplier).round_dp(2)),
        "currency": inst.map(|i| i.currency.as_str()).unwrap_or("USD"),
        "avgCost": num(pos.avg_price * pos.multiplier),
        "avgPrice": num(pos.avg_price),
        "realizedPnl": num(pos.realized_pnl.round_dp(2)),
        "unrealizedPnl": num(pos.unrealized(mark).round_dp(2)),
        "exchs": null,
        "expiry": null,
        "putOrCall": null,
        "multiplier": null,
        "strike": 0.0,
        "exerciseStyle": null,
        "conExchMap": [],
        "assetClass": inst.map(|i| i.sec_type.as_str()).unwrap_or("STK"),
        "undConid": 0,
        "model": ""
    });
    if let Some(pair) = sh.forecast.pair(pos.conid) {
        // Event contracts are options on the market's index.
        row["contractDesc"] = json!(sh.forecast.short_description(pos.conid));
        row["putOrCall"] = json!(if pair.yes == pos.conid { "C" } else { "P" });
        row["strike"] = num(pair.strike);
        row["undConid"] = json!(pair.underlying.0);
        row["expiry"] = json!(pair.expiration);
    }
    row
}

/// `/portfolio/{acct}/position/{conid}`: the position in one contract, as a
/// list (empty when flat), rows as in the positions list.
async fn position_of(
    State(sh): State<Arc<Shared>>,
    Path((acct, conid)): Path<(String, String)>,
) -> Response {
    if let Some(r) = unknown_account(&sh, &acct) {
        return r;
    }
    let Ok(conid) = conid.trim().parse::<engine::model::Conid>() else {
        return bad_request(format!("conid {conid:?} is not a number"));
    };
    let mut guard = sh.lock();
    let st = &mut *guard;
    refresh(st, &sh);
    // The spec: the first request answers the position only; later ones
    // add the contract's information and rules.
    let first = st.session.position_seen.insert(conid);
    let Some(p) = st.desk.venue.books() else {
        return ok(Value::Array(Vec::new()));
    };
    let list: Vec<Value> = p
        .positions()
        .filter(|x| x.conid == conid && !x.is_flat())
        .map(|pos| {
            let mut row = position_row(&sh, p, pos);
            // This endpoint types two keys unlike the positions list (as
            // the spec's examples do): multiplier a number (0 when none),
            // strike a string.
            row["multiplier"] = if pos.multiplier == Decimal::ONE {
                json!(0.0)
            } else {
                num(pos.multiplier)
            };
            row["strike"] = json!(sh
                .forecast
                .pair(conid)
                .map_or_else(|| "0".to_owned(), |pair| super::wire::dstr(pair.strike)));
            if let (false, Some(inst), Some(obj)) =
                (first, sh.instrument(conid), row.as_object_mut())
            {
                if let Value::Object(info) = super::accounts::secdef_entry(inst) {
                    for (k, v) in info {
                        obj.entry(k).or_insert(v);
                    }
                }
            }
            row
        })
        .collect();
    ok(Value::Array(list))
}

async fn summary(State(sh): State<Arc<Shared>>, Path(acct): Path<String>) -> Response {
    if let Some(r) = unknown_account(&sh, &acct) {
        return r;
    }
    let mut guard = sh.lock();
    let st = &mut *guard;
    refresh(st, &sh);
    let f = figures(st);
    let ts = epoch_ms(st.clock.now());
    let entry = |amount: Decimal| {
        json!({
            "amount": num(amount.round_dp(2)),
            "currency": "USD",
            "isNull": false,
            "timestamp": ts,
            "value": null,
            "severity": 0
        })
    };
    let mut m = Map::new();
    m.insert(
        "accountcode".into(),
        json!({
            "amount": 0.0, "currency": null, "isNull": false, "timestamp": ts,
            "value": sh.cfg.account, "severity": 0
        }),
    );
    for (k, v) in summary_values(&f) {
        m.insert(k.to_ascii_lowercase(), entry(v));
    }
    ok(Value::Object(m))
}

async fn ledger(State(sh): State<Arc<Shared>>, Path(acct): Path<String>) -> Response {
    if let Some(r) = unknown_account(&sh, &acct) {
        return r;
    }
    let mut guard = sh.lock();
    let st = &mut *guard;
    refresh(st, &sh);
    let f = figures(st);
    let ts = st.clock.now().timestamp();
    let one = |ccy: &str| {
        json!({
            "commoditymarketvalue": 0.0,
            "futuremarketvalue": 0.0,
            "settledcash": num(f.cash.round_dp(2)),
            "exchangerate": 1,
            "sessionid": 1,
            "cashbalance": num(f.cash.round_dp(2)),
            "corporatebondsmarketvalue": 0.0,
            "warrantsmarketvalue": 0.0,
            "netliquidationvalue": num(f.nl.round_dp(2)),
            "interest": 0.0,
            "unrealizedpnl": num(f.upl.round_dp(2)),
            "stockmarketvalue": num(f.mv.round_dp(2)),
            "moneyfunds": 0.0,
            "currency": ccy,
            "realizedpnl": num(f.rpl.round_dp(2)),
            "funds": 0.0,
            "acctcode": sh.cfg.account,
            "issueroptionsmarketvalue": 0.0,
            "key": "LedgerList",
            "timestamp": ts,
            "severity": 0,
            "stockoptionmarketvalue": 0.0,
            "futuresonlypnl": 0.0,
            "tbondsmarketvalue": 0.0,
            "futureoptionmarketvalue": 0.0,
            "cashbalancefxsegment": 0.0,
            "secondkey": ccy,
            "tbillsmarketvalue": 0.0,
            "endofbundle": 1,
            "dividends": 0.0
        })
    };
    ok(json!({ "USD": one("USD"), "BASE": one("BASE") }))
}

async fn pnl(State(sh): State<Arc<Shared>>) -> Response {
    let mut guard = sh.lock();
    let st = &mut *guard;
    refresh(st, &sh);
    let key = format!("{}.Core", sh.cfg.account);
    ok(json!({ "upnl": { key: pnl_row(st, false) } }))
}

/// Keep only `fields` (plus `key` and `timestamp`, always sent) when given.
fn filter_fields(mut o: Map<String, Value>, fields: &[String]) -> Value {
    if !fields.is_empty() {
        o.retain(|k, _| k == "key" || k == "timestamp" || fields.iter().any(|f| f == k));
    }
    Value::Object(o)
}

/// The websocket `ssd` message: one object per account summary key, each
/// key also with the `-S` (securities segment) suffix. `keys` and `fields`
/// filter as the topic's parameters do. Assumption: the message carries a
/// `topic` (`ssd+ACCT`) beside the spec's `result`, so clients can route it.
pub(crate) fn ssd_message(
    st: &GwState,
    account: &str,
    keys: &[String],
    fields: &[String],
) -> Value {
    let f = figures(st);
    let ts = st.clock.now().timestamp_millis();
    let money = summary_values(&f);
    let mut out = Vec::new();
    let wanted = |k: &str| keys.is_empty() || keys.iter().any(|x| x == k);
    if wanted("AccountCode") {
        let mut o = Map::new();
        o.insert("key".into(), json!("AccountCode"));
        o.insert("value".into(), json!(account));
        o.insert("severity".into(), json!(0));
        o.insert("timestamp".into(), json!(ts));
        out.push(filter_fields(o, fields));
    }
    for (name, v) in money {
        for key in [name.to_owned(), format!("{name}-S")] {
            if !wanted(&key) {
                continue;
            }
            let mut o = Map::new();
            o.insert("key".into(), json!(key));
            o.insert("currency".into(), json!("USD"));
            o.insert("monetaryValue".into(), num(v.round_dp(2)));
            o.insert("severity".into(), json!(0));
            o.insert("timestamp".into(), json!(ts));
            out.push(filter_fields(o, fields));
        }
    }
    json!({ "topic": format!("ssd+{account}"), "result": out })
}

/// The websocket `sld` message: `LedgerListBASE` and `LedgerListUSD` (the
/// account holds only USD). Sent whole every period (assumption: the spec's
/// "blank entry when unchanged" optimisation is not reproduced).
pub(crate) fn sld_message(
    st: &GwState,
    account: &str,
    keys: &[String],
    fields: &[String],
) -> Value {
    let f = figures(st);
    let ts = st.clock.now().timestamp();
    let mut out = Vec::new();
    for ccy in ["BASE", "USD"] {
        let key = format!("LedgerList{ccy}");
        if !keys.is_empty() && !keys.contains(&key) {
            continue;
        }
        let mut o = Map::new();
        for (k, v) in [
            ("acctCode", json!(account)),
            ("cashbalance", num(f.cash.round_dp(2))),
            ("cashBalanceFXSegment", json!(0.0)),
            ("commodityMarketValue", json!(0.0)),
            ("corporateBondsMarketValue", json!(0.0)),
            ("key", json!(key)),
            ("dividends", json!(0.0)),
            ("exchangeRate", json!(1.0)),
            ("funds", json!(0.0)),
            ("marketValue", num(f.mv.round_dp(2))),
            ("optionMarketValue", json!(0.0)),
            ("interest", json!(0.0)),
            ("issueOptionsMarketValue", json!(0.0)),
            ("moneyFunds", json!(0.0)),
            ("netLiquidationValue", num(f.nl.round_dp(2))),
            ("realizedPnl", num(f.rpl.round_dp(2))),
            ("unrealizedPnl", num(f.upl.round_dp(2))),
            ("secondKey", json!(ccy)),
            ("settledCash", num(f.cash.round_dp(2))),
            ("severity", json!(0)),
            ("stockMarketValue", num(f.mv.round_dp(2))),
            ("tBillsMarketValue", json!(0.0)),
            ("tBondsMarketValue", json!(0.0)),
            ("warrantsMarketValue", json!(0.0)),
            ("timestamp", json!(ts)),
        ] {
            o.insert(k.into(), v);
        }
        out.push(filter_fields(o, fields));
    }
    json!({ "topic": format!("sld+{account}"), "result": out })
}
