//! The order endpoints of the simulated gateway (axum handlers); the desk
//! they work on is [`super::desk`], the JSON they answer [`super::order_json`].
//!
//! * Place (`POST /iserver/account/{acct}/orders`): one request is one batch
//!   (single order, bracket, OCA group). Children name their parent's cOID
//!   (or its order id) in `parentId`; orders with `isSingleGroup: true` and
//!   no `parentId` form one OCA group. Assumption: children are left out of
//!   the group even when they carry `isSingleGroup` (as the spec's OCA
//!   example does), because a parent filling would otherwise cancel its own
//!   exits; bracket siblings cancel each other anyway.
//! * `price`/`auxPrice` mean what the spec's Place Order section says:
//!   LMT/MIDPRICE price = limit (cap); STP/TRAIL price = stop; STOP_LIMIT and
//!   TRAILLMT price = limit, auxPrice = stop.
//! * Precaution prompts (see [`super::prompts`]) hold the batch until every
//!   question is confirmed through `/iserver/reply/{id}`; each reply may
//!   answer the next question. A new order (or modify) before that drops the
//!   held batch, and replying to a dropped or unknown id answers 503.
//!   Declining (`confirmed: false`) discards the batch and answers 200
//!   `{"error": ...}` (assumption: the spec does not show that answer).
//! * Order bodies are read with the engine's [`OrderTicket`] (the same type
//!   the live client sends). Business rejects (unknown conid, fractional
//!   quantity, missing prices, unknown order type, duplicate cOID, wrong
//!   account) answer 200 `{"error": ...}`; bodies that are not JSON or lack
//!   `orderType`/`side`/`tif` answer 400.
//! * Modify: the body's fields replace the original's, fields it leaves out
//!   keep their values; quantity and prices can change, contract, side and
//!   order type cannot.
//! * Timing: an order placed while a bar of its contract is in progress is
//!   handed to the exchange when that bar completes, so its first chance to
//!   fill is the next bar: no fill at a price from before the order existed.
//!   Meanwhile it reports `Submitted` (children `PreSubmitted`).
//! * Cancel: `-1` cancels every open order and answers `order_id` -1,
//!   `conid` -1 and `account` null (the spec's "immediately cancelled"
//!   values); a single cancel answers the order's conid and account.
//! * Server prompts: with [`crate::GatewayConfig::ntf_prompt_above`], a
//!   batch holding an order above that quantity is acknowledged, booked
//!   `PreSubmitted` and held behind an `ntf` prompt answered through
//!   `POST /iserver/notification` (see [`super::notifications`]). A held
//!   order can be modified and cancelled like a staged one.
//! * Live orders: the first call of a session, and any call with
//!   `force=true`, answer an empty `orders` array (the pre-flight the spec
//!   describes); later calls list open orders and those updated on the
//!   current (New York) replay day, active first, then newest first.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono_tz::America::New_York;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use cpapi::order_ticket::OrderTicket;
use cpapi::spelling;
use engine::model::OrderChanges;
use engine::model::{Conid, OrderId, OrderRequest, OrderStatus, Side};

use super::config::Instrument;
use super::desk::{Action, GwOrder, Pending, Staged};
use super::order_json::{grouped, order_json, placed_json, prompt_json, status_json, trade_json};
use super::prompts::{prompts_for, Prompt};
use super::state::{Push, Shared, State as GwState};
use super::wire::{bad_request, dstr, error, ok, truthy};

/// Live orders lists at most this many (the spec's limit).
const MAX_LIVE: usize = 1000;

/// Read one order object with the engine's own wire type
/// ([`OrderTicket`]): numbers may be JSON numbers or strings, unknown fields
/// are ignored. A `conidex` without `conid` (`"265598@SMART"`) supplies the
/// conid.
fn ticket(v: &Value) -> Result<OrderTicket, String> {
    let mut t: OrderTicket =
        serde_json::from_value(v.clone()).map_err(|e| format!("order is malformed: {e}"))?;
    if t.conid.is_none() {
        if let Some(cx) = &t.conidex {
            let id = cx.split('@').next().unwrap_or_default();
            t.conid = Some(
                id.parse::<Conid>()
                    .map_err(|_| format!("conidex {cx:?} does not start with a conid"))?,
            );
        }
    }
    Ok(t)
}

/// The engine request of a ticket, with the simulator's own checks: a
/// known contract and whole shares (the spec: "Only whole share values are
/// supported"). Children without a cOID get an internal one.
fn to_request(
    t: &OrderTicket,
    id: u64,
    oca_group: Option<&str>,
    instruments: &BTreeMap<Conid, Instrument>,
) -> Result<OrderRequest, String> {
    let conid = t.conid.ok_or("order has no conid")?;
    if !instruments.contains_key(&conid) {
        return Err(format!("Invalid contract id {conid}: no such contract"));
    }
    if let Some(q) = t.quantity.filter(|q| !q.fract().is_zero()) {
        return Err(format!(
            "Only whole share quantities are supported, got {}",
            dstr(q)
        ));
    }
    // `to_request` validates: quantities and prices within `engine::limits`.
    t.to_request(OrderId(id), &format!("sim-{id}"), oca_group)
        .map_err(|e| e.to_string())
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/iserver/account/{acct}/orders", post(place))
        .route(
            "/iserver/account/{acct}/order/{id}",
            post(modify).delete(cancel),
        )
        .route("/iserver/reply/{id}", post(reply))
        .route("/iserver/account/orders", get(live_orders))
        .route("/iserver/account/order/status/{id}", get(order_status))
        .route("/iserver/account/trades", get(trades))
        .route("/iserver/questions/suppress", post(suppress))
        .route("/iserver/questions/suppress/reset", post(suppress_reset))
        .route("/iserver/account/{acct}/orders/whatif", post(whatif))
}

/// `POST .../orders/whatif`: the cost and account impact of the batch's
/// first order, nothing placed. Assumptions (no margin model): initial
/// margin is 50% and maintenance 25% of the gross stock position value
/// (Reg T); the order is priced at its limit, else its stop, else the ask
/// (buy) or bid (sell); no precaution prompts, but `warn` carries the
/// no-market-data warning when there is no quote yet.
async fn whatif(State(sh): State<Arc<Shared>>, Path(acct): Path<String>, body: Bytes) -> Response {
    let tickets = match body_tickets(&body) {
        Ok(t) => t,
        Err(e) => return bad_request(e),
    };
    let mut guard = sh.lock();
    let st = &mut *guard;
    super::portfolio::refresh(st, &sh);
    let batch = match build_batch(st, &sh, &acct, &tickets) {
        Ok(b) => b,
        Err(e) => return reject(e),
    };
    let Some((req, _)) = batch.first() else {
        return bad_request("\"orders\" is empty");
    };
    let inst = sh.instrument(req.conid);
    let tick = inst.map(|i| i.tick_size).unwrap_or(Decimal::new(1, 2));
    let currency = inst.map(|i| i.currency.as_str()).unwrap_or("USD");
    let quote = st.market.quote(req.conid, st.clock.now(), tick);
    let price = req
        .limit_price
        .or(req.stop_price)
        .or(quote.as_ref().map(|q| match req.side {
            Side::Buy => q.ask,
            Side::Sell => q.bid,
        }));
    let Some(price) = price else {
        return reject("no price to estimate the order with: no market data yet");
    };
    // The commission model multiplies unchecked: value the order with
    // headroom first (the size limits bound the order's own prices, not a
    // quote from the data).
    if req
        .quantity
        .checked_mul(price)
        .and_then(|v| v.checked_mul(Decimal::from(1_000_000)))
        .is_none()
    {
        return reject("the order's value is beyond what the account can be valued at");
    }
    let fees = &st.desk.venue.exchange().config().commission;
    let commission = fees.charge(req.quantity, price, Decimal::ONE);
    let (pos_now, gross_now, nl) = super::portfolio::exposure(st, req.conid);
    let Some(mut v) = whatif_figures(req, price, commission, currency, (pos_now, gross_now, nl))
    else {
        return reject("the order's value is beyond what the account can be valued at");
    };
    v["warn"] = if quote.is_none() {
        json!("21/You are trying to submit an order without having market data for this instrument. \nIB strongly recommends against this kind of blind trading which may result in \nerroneous or unexpected trades.")
    } else {
        Value::Null
    };
    // The whatif answer has an `error` field of its own: an order beyond
    // buying power is previewed with the reason it would be refused.
    v["error"] = match super::limits::buying_power_refusal(st, &sh, req) {
        Some(why) => json!(why),
        None => Value::Null,
    };
    ok(v)
}

/// The amounts of a whatif answer, every operation checked: `None` when
/// one would overflow (the size limits make that unreachable for orders
/// that passed them; a failure is a reject, never a panic).
fn whatif_figures(
    req: &OrderRequest,
    price: Decimal,
    commission: Decimal,
    currency: &str,
    (pos_now, gross_now, nl): (Decimal, Decimal, Decimal),
) -> Option<Value> {
    let value = req.quantity.checked_mul(price)?;
    let total = value.checked_add(commission)?;
    let signed = req.quantity.checked_mul(req.side.sign())?;
    let pos_after = pos_now.checked_add(signed)?;
    let gross_after = gross_now
        .checked_sub(pos_now.checked_mul(price)?.abs())?
        .checked_add(pos_after.checked_mul(price)?.abs())?;
    let impact = |rate: Decimal| -> Option<Value> {
        let (cur, after) = (gross_now.checked_mul(rate)?, gross_after.checked_mul(rate)?);
        Some(json!({
            "current": grouped(cur, 0),
            "change": grouped(after.checked_sub(cur)?, 0),
            "after": grouped(after, 0),
        }))
    };
    Some(json!({
        "amount": {
            "amount": format!("{} {currency} ({} Shares)", grouped(value, 2), dstr(req.quantity)),
            "commission": format!("{} {currency}", dstr(commission.round_dp(2))),
            "total": format!("{} {currency}", grouped(total, 2)),
        },
        "equity": {
            "current": grouped(nl, 0),
            "change": grouped(-commission, 0),
            "after": grouped(nl.checked_sub(commission)?, 0),
        },
        "initial": impact(super::limits::INITIAL_MARGIN)?,
        "maintenance": impact(super::limits::MAINTENANCE_MARGIN)?,
        "position": {
            "current": dstr(pos_now),
            "change": dstr(signed),
            "after": dstr(pos_after),
        },
        "warn": null,
        "error": null,
    }))
}

fn reject(msg: impl Into<String>) -> Response {
    ok(json!({ "error": msg.into() }))
}

/// The `orders` of a place or whatif body, read with [`OrderTicket`].
fn body_tickets(body: &[u8]) -> Result<Vec<OrderTicket>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let Some(list) = v.get("orders").and_then(Value::as_array) else {
        return Err("body needs an \"orders\" array".to_owned());
    };
    if list.is_empty() {
        return Err("\"orders\" is empty".to_owned());
    }
    list.iter().map(ticket).collect()
}

type Batch = Vec<(OrderRequest, Option<String>)>;

/// Engine requests for a batch, with ids from `next_id` on, parents
/// resolved and the OCA group named; a business reject is the error text.
fn build_batch(
    st: &GwState,
    sh: &Shared,
    acct: &str,
    tickets: &[OrderTicket],
) -> Result<Batch, String> {
    if acct != sh.cfg.account
        || tickets
            .iter()
            .any(|t| t.acct_id.as_deref().is_some_and(|a| a != acct))
    {
        return Err(format!(
            "Account {acct} is not a brokerage account of this user"
        ));
    }
    let first_id = st.desk.next_id;
    let oca = format!("oca-{first_id}");
    let mut batch: Batch = Vec::new();
    for (i, t) in tickets.iter().enumerate() {
        let id = first_id + i as u64;
        let group =
            (t.is_single_group == Some(true) && t.parent_id.is_none()).then_some(oca.as_str());
        let mut req = to_request(t, id, group, &sh.instruments)?;
        if let Some(why) = sh
            .forecast
            .refuse(req.conid, req.side == Side::Sell, st.clock.now())
        {
            return Err(why);
        }
        if let Some(c) = &t.c_oid {
            if st.desk.user_coid_taken(c) || batch.iter().any(|(_, u)| u.as_deref() == Some(c)) {
                return Err(format!(
                    "Order with cOID {c:?} already exists: cOID must be unique"
                ));
            }
        }
        if let Some(p) = &req.parent {
            let p = st.desk.resolve_parent(p);
            let in_batch = batch.iter().any(|(r, _)| r.client_order_id == p);
            if !in_batch && !st.desk.open_by_coid(&p) {
                return Err(format!(
                    "parentId {p:?} names no order of this request or open order"
                ));
            }
            req.parent = Some(p);
        }
        batch.push((req, t.c_oid.clone()));
    }
    Ok(batch)
}

async fn place(State(sh): State<Arc<Shared>>, Path(acct): Path<String>, body: Bytes) -> Response {
    let tickets = match body_tickets(&body) {
        Ok(t) => t,
        Err(e) => return bad_request(e),
    };
    let mut guard = sh.lock();
    let st = &mut *guard;
    sh.pump(st);
    // A new order invalidates a question still waiting for its reply.
    st.desk.pending = None;
    let batch = match build_batch(st, &sh, &acct, &tickets) {
        Ok(b) => b,
        Err(e) => return reject(e),
    };
    super::portfolio::refresh(st, &sh);
    if let Some(why) = batch
        .iter()
        .find_map(|(req, _)| super::limits::buying_power_refusal(st, &sh, req))
    {
        return reject(why);
    }
    let now = st.clock.now();
    let mut asked = HashSet::new();
    let mut questions = VecDeque::new();
    for (req, _) in &batch {
        let Some(inst) = sh.instrument(req.conid) else {
            continue;
        };
        let last = st
            .market
            .quote(req.conid, now, inst.tick_size)
            .map(|q| q.last);
        questions.extend(prompts_for(
            &sh.cfg.prompts,
            &st.desk.suppressed,
            &mut asked,
            req,
            inst,
            last,
        ));
    }
    st.desk.next_id += batch.len() as u64;
    if !questions.is_empty() {
        let p = Pending {
            id: st.desk.reply_id(),
            action: Action::Place(batch),
            questions,
        };
        let r = prompt_json(&p);
        st.desk.pending = Some(p);
        return r;
    }
    submit(st, &sh, batch)
}

/// Book the batch and hand it to the exchange (or stage it behind the bar
/// in progress), or hold it behind an `ntf` server prompt when an order's
/// quantity exceeds [`crate::GatewayConfig::ntf_prompt_above`].
fn submit(st: &mut GwState, sh: &Shared, batch: Vec<(OrderRequest, Option<String>)>) -> Response {
    let now = st.clock.now();
    let hold = super::notifications::prompt_trigger(sh, &batch);
    let ids: Vec<u64> = batch.iter().map(|(r, _)| r.id.0).collect();
    let mut reqs = Vec::with_capacity(batch.len());
    for (req, user_coid) in batch {
        let status = if req.parent.is_some() || hold.is_some() {
            OrderStatus::PreSubmitted
        } else {
            OrderStatus::Submitted
        };
        let g = GwOrder {
            req: req.clone(),
            user_coid,
            status,
            filled: Decimal::ZERO,
            avg_price: None,
            created: now,
            updated: now,
            last_exec: None,
        };
        sh.push(Push::Order(order_json(&g, sh, true)));
        st.desk.orders.insert(req.id.0, g);
        reqs.push(req);
    }
    match hold {
        Some(trigger) => super::notifications::hold(st, sh, &trigger, reqs),
        None => route(st, sh, reqs),
    }
    let placed: Vec<&GwOrder> = ids.iter().filter_map(|id| st.desk.orders.get(id)).collect();
    if let Some(bad) = placed.iter().find(|o| o.status == OrderStatus::Inactive) {
        return reject(format!("order {} rejected by the exchange", bad.id()));
    }
    placed_json(&placed)
}

/// Hand booked orders to the exchange now, or stage them behind the bar of
/// their contract in progress.
pub(crate) fn route(st: &mut GwState, sh: &Shared, reqs: Vec<OrderRequest>) {
    let now = st.clock.now();
    let release = reqs
        .iter()
        .filter_map(|r| st.market.in_progress_end(r.conid, now))
        .max();
    match release {
        Some(at) => st.desk.staged.push(Staged {
            release_at: at,
            batch: reqs,
        }),
        None => {
            // A refused batch shows as its orders' Inactive status.
            let _ = st.desk.place(reqs, now, sh);
        }
    }
}

async fn reply(State(sh): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(confirmed) = v.get("confirmed").and_then(Value::as_bool) else {
        return bad_request("body needs {\"confirmed\": true|false}");
    };
    let mut guard = sh.lock();
    let st = &mut *guard;
    sh.pump(st);
    let matches = st.desk.pending.as_ref().is_some_and(|p| p.id == id);
    if !matches {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("reply id {id} is not awaiting an answer"),
        );
    }
    let Some(mut p) = st.desk.pending.take() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no reply pending");
    };
    if !confirmed {
        return reject("Order was not transmitted: the precaution was declined");
    }
    p.questions.pop_front();
    if !p.questions.is_empty() {
        p.id = st.desk.reply_id();
        let r = prompt_json(&p);
        st.desk.pending = Some(p);
        return r;
    }
    match p.action {
        Action::Place(batch) => submit(st, &sh, batch),
        Action::Modify(id, changes) => apply_modify(st, &sh, id, changes),
    }
}

async fn modify(
    State(sh): State<Arc<Shared>>,
    Path((acct, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(format!("body is not JSON: {e}")),
    };
    if !v.is_object() {
        return bad_request("the body must be one order object");
    }
    let mut guard = sh.lock();
    let st = &mut *guard;
    sh.pump(st);
    st.desk.pending = None;
    if acct != sh.cfg.account {
        return reject(format!(
            "Account {acct} is not a brokerage account of this user"
        ));
    }
    let Some(g_id) = id.parse::<u64>().ok() else {
        return reject(format!("OrderID {id} doesn't exist"));
    };
    let Some(g) = st.desk.orders.get(&g_id) else {
        return reject(format!("OrderID {id} doesn't exist"));
    };
    if g.status.is_terminal() {
        return reject(format!(
            "OrderID {id} is {} and cannot be modified",
            g.status
        ));
    }
    // The body "should mirror the content of the original order": fields it
    // leaves out keep the original's values.
    let mut merged = match serde_json::to_value(OrderTicket::from_request(&g.req, &acct)) {
        Ok(m) => m,
        Err(e) => return reject(e.to_string()),
    };
    if let (Value::Object(m), Value::Object(b)) = (&mut merged, &v) {
        for (k, x) in b {
            m.insert(k.clone(), x.clone());
        }
    }
    let t = match ticket(&merged) {
        Ok(t) => t,
        Err(e) => return bad_request(e),
    };
    let changed = match to_request(&t, g.id(), g.req.oca_group.as_deref(), &sh.instruments) {
        Ok(r) => r,
        Err(e) => return reject(e),
    };
    if changed.conid != g.req.conid
        || changed.side != g.req.side
        || changed.order_type != g.req.order_type
    {
        return reject(
            "modify can change quantity and prices, not the contract, side or order type",
        );
    }
    super::portfolio::refresh(st, &sh);
    // The order's own exposure is not in the position yet: the changed
    // order is checked as a new one would be.
    if let Some(why) = super::limits::buying_power_refusal(st, &sh, &changed) {
        return reject(why);
    }
    let Some(g) = st.desk.orders.get(&g_id) else {
        return reject(format!("OrderID {id} doesn't exist"));
    };
    let changes = OrderChanges {
        quantity: Some(changed.quantity),
        limit_price: changed.limit_price,
        stop_price: changed.stop_price,
    };
    let oid = g.id();
    let now = st.clock.now();
    let mut asked = HashSet::new();
    let questions: VecDeque<Prompt> = match sh.instrument(changed.conid) {
        Some(inst) => {
            let last = st
                .market
                .quote(changed.conid, now, inst.tick_size)
                .map(|q| q.last);
            prompts_for(
                &sh.cfg.prompts,
                &st.desk.suppressed,
                &mut asked,
                &changed,
                inst,
                last,
            )
            .into()
        }
        None => VecDeque::new(),
    };
    if !questions.is_empty() {
        let p = Pending {
            id: st.desk.reply_id(),
            action: Action::Modify(oid, changes),
            questions,
        };
        let r = prompt_json(&p);
        st.desk.pending = Some(p);
        return r;
    }
    apply_modify(st, &sh, oid, changes)
}

fn apply_modify(st: &mut GwState, sh: &Shared, id: u64, changes: OrderChanges) -> Response {
    let now = st.clock.now();
    let staged = st
        .desk
        .staged
        .iter_mut()
        .flat_map(|s| s.batch.iter_mut())
        .chain(st.desk.held.iter_mut().flat_map(|h| h.batch.iter_mut()))
        .find(|r| r.id.0 == id);
    if let Some(req) = staged {
        changes.apply_to(req);
        let req = req.clone();
        if let Some(g) = st.desk.orders.get_mut(&id) {
            g.req = req;
            g.updated = now;
            sh.push(Push::Order(order_json(g, sh, true)));
        }
    } else {
        if let Err(e) = st.desk.modify(id, changes, now, sh) {
            return reject(e.to_string());
        }
    }
    match st.desk.orders.get(&id) {
        Some(g) => placed_json(&[g]),
        None => reject(format!("OrderID {id} doesn't exist")),
    }
}

/// Cancel one order (and, for a parent, its children) wherever it is.
fn cancel_one(st: &mut GwState, sh: &Shared, id: u64) -> Result<(), String> {
    let now = st.clock.now();
    let coid = match st.desk.orders.get(&id) {
        Some(g) if g.status.is_terminal() => {
            return Err(format!(
                "OrderID {id} is {} and cannot be cancelled",
                g.status
            ))
        }
        Some(g) => g.req.client_order_id.clone(),
        None => return Err(format!("OrderID {id} doesn't exist")),
    };
    let mut staged_ids = Vec::new();
    let batches = st
        .desk
        .staged
        .iter_mut()
        .map(|s| &mut s.batch)
        .chain(st.desk.held.iter_mut().map(|h| &mut h.batch));
    for batch in batches {
        batch.retain(|r| {
            let hit = r.id.0 == id || r.parent.as_deref() == Some(coid.as_str());
            if hit {
                staged_ids.push(r.id.0);
            }
            !hit
        });
    }
    // A prompt whose orders are all gone has nothing left to answer.
    st.desk.held.retain(|h| !h.batch.is_empty());
    if staged_ids.is_empty() {
        st.desk.cancel(id, now, sh).map_err(|e| e.to_string())?;
    }
    for sid in staged_ids {
        if let Some(g) = st.desk.orders.get_mut(&sid) {
            g.status = OrderStatus::Cancelled;
            g.updated = now;
            sh.push(Push::Order(order_json(g, sh, true)));
        }
    }
    Ok(())
}

async fn cancel(
    State(sh): State<Arc<Shared>>,
    Path((acct, id)): Path<(String, String)>,
) -> Response {
    let mut guard = sh.lock();
    let st = &mut *guard;
    sh.pump(st);
    if acct != sh.cfg.account {
        return reject(format!(
            "Account {acct} is not a brokerage account of this user"
        ));
    }
    if id.trim() == "-1" {
        let open: Vec<u64> = st
            .desk
            .orders
            .values()
            .filter(|o| !o.status.is_terminal())
            .map(GwOrder::id)
            .collect();
        for oid in open {
            // Children may already be gone with their parent.
            let _ = cancel_one(st, &sh, oid);
        }
        return ok(json!({
            "msg": "Request was submitted",
            "order_id": -1,
            "conid": -1,
            "account": null,
        }));
    }
    let Ok(oid) = id.trim().parse::<u64>() else {
        return reject(format!("OrderID {id} doesn't exist"));
    };
    let conid = st.desk.orders.get(&oid).map(|o| o.req.conid.0);
    match cancel_one(st, &sh, oid) {
        Ok(()) => ok(json!({
            "msg": "Request was submitted",
            "order_id": oid,
            "conid": conid.unwrap_or(-1),
            "account": sh.cfg.account,
        })),
        Err(e) => reject(e),
    }
}

async fn live_orders(
    State(sh): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut guard = sh.lock();
    let st = &mut *guard;
    sh.pump(st);
    let force = truthy(q.get("force").map(String::as_str));
    if force || !st.session.orders_ready {
        st.session.orders_ready = true;
        return ok(json!({ "orders": [], "snapshot": true }));
    }
    let filters: Vec<OrderStatus> = q
        .get("filters")
        .map(|f| {
            f.split(',')
                .filter_map(|s| spelling::order_status(s).ok())
                .collect()
        })
        .unwrap_or_default();
    let today = st.clock.now().with_timezone(&New_York).date_naive();
    let mut list: Vec<&GwOrder> = st
        .desk
        .orders
        .values()
        .filter(|o| {
            !o.status.is_terminal() || o.updated.with_timezone(&New_York).date_naive() == today
        })
        .filter(|o| filters.is_empty() || filters.contains(&o.status))
        .collect();
    list.sort_by_key(|o| (o.status.is_terminal(), std::cmp::Reverse(o.updated), o.id()));
    list.truncate(MAX_LIVE);
    let orders: Vec<Value> = list.iter().map(|o| order_json(o, &sh, false)).collect();
    ok(json!({ "orders": orders, "snapshot": true }))
}

async fn order_status(State(sh): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut guard = sh.lock();
    let st = &mut *guard;
    sh.pump(st);
    let Some(o) = id
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|i| st.desk.orders.get(&i))
    else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("OrderID {id} is not known to this session"),
        );
    };
    ok(status_json(o, &sh))
}

async fn trades(
    State(sh): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let days: i64 = q
        .get("days")
        .and_then(|d| d.trim().parse().ok())
        .unwrap_or(1)
        .clamp(1, 7);
    let mut guard = sh.lock();
    let st = &mut *guard;
    sh.pump(st);
    ok(Value::Array(recent_trades(st, &sh, days)))
}

/// Executions of the last `days` (New York) replay days: the trades list,
/// and the websocket `str` subscription's initial message.
pub(crate) fn recent_trades(st: &GwState, sh: &Shared, days: i64) -> Vec<Value> {
    let today = st.clock.now().with_timezone(&New_York).date_naive();
    let first = today - chrono::Days::new((days.clamp(1, 7) - 1) as u64);
    st.desk
        .trades
        .iter()
        .filter(|e| e.time.with_timezone(&New_York).date_naive() >= first)
        .map(|e| trade_json(e, st.desk.user_ref(e), sh))
        .collect()
}

async fn suppress(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(format!("body is not JSON: {e}")),
    };
    let Some(ids) = v.get("messageIds").and_then(Value::as_array) else {
        return bad_request("body needs a \"messageIds\" array");
    };
    if ids.len() > 51 {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "at most 51 messageIds per request",
        );
    }
    let mut st = sh.lock();
    for id in ids.iter().filter_map(Value::as_str) {
        st.desk.suppressed.insert(id.trim().to_owned());
    }
    ok(json!({ "status": "submitted" }))
}

async fn suppress_reset(State(sh): State<Arc<Shared>>) -> Response {
    sh.lock().desk.suppressed.clear();
    ok(json!({ "status": "submitted" }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn inst() -> BTreeMap<Conid, Instrument> {
        Instrument::sample()
            .into_iter()
            .map(|i| (i.conid, i))
            .collect()
    }

    #[test]
    fn wire_prices_map_to_engine_prices() {
        let p = Some(dec!(185.5));
        let a = Some(dec!(183));
        let cases = [
            ("LMT", (p, None)),
            ("STP", (None, p)),
            ("TRAIL", (None, p)),
            ("STOP_LIMIT", (p, a)),
            ("TRAILLMT", (p, a)),
            ("MIDPRICE", (p, None)),
            ("MKT", (None, None)),
        ];
        for (ty, want) in cases {
            let t = ticket(&json!({"conid": 265598, "orderType": ty, "price": 185.5,
                "auxPrice": 183, "side": "BUY", "tif": "GTC", "quantity": 1,
                "trailingAmt": 1, "trailingType": "amt"}))
            .unwrap();
            let r = to_request(&t, 1, None, &inst()).unwrap();
            assert_eq!((r.limit_price, r.stop_price), want, "{ty}");
        }
    }

    #[test]
    fn tickets_are_read_tolerantly() {
        let t = ticket(&json!({
            "conidex": "265598@SMART", "orderType": "TRAILLMT", "price": "185.50", "auxPrice": 183,
            "side": "BUY", "tif": "GTC", "trailingAmt": 1.0, "trailingType": "amt",
            "quantity": 100, "outsideRth": true, "unknownField": [1, 2]
        }))
        .unwrap();
        assert_eq!(t.conid, Some(Conid(265598)));
        let r = to_request(&t, 7, None, &inst()).unwrap();
        assert!(r.outside_rth);
        assert_eq!(r.limit_price, Some(dec!(185.5)));
        assert_eq!(r.stop_price, Some(dec!(183)));
        assert_eq!(r.trail.unwrap().amount, dec!(1));
        assert_eq!(r.client_order_id, "sim-7");
        assert!(
            ticket(&json!({"conid": "AAPL", "orderType": "MKT", "side": "BUY", "tif": "DAY"}))
                .is_err()
        );
        assert!(ticket(&json!([1])).is_err());
        let frac = ticket(&json!({"conid": 8314, "orderType": "MKT", "side": "SELL", "tif": "DAY", "quantity": 1.5})).unwrap();
        assert!(to_request(&frac, 1, None, &inst())
            .unwrap_err()
            .contains("whole share"));
        let unknown = ticket(
            &json!({"conid": 1, "orderType": "MKT", "side": "SELL", "tif": "DAY", "quantity": 1}),
        )
        .unwrap();
        assert!(to_request(&unknown, 1, None, &inst()).is_err());
    }
}
