//! The JSON the simulated gateway renders for orders and executions: live
//! orders and `sor` objects, the order status endpoint, trades and `str`
//! records, place/reply answers and prompts, and whatif money. Every
//! spelling (order types, statuses, TIF, sides) comes from
//! `cpapi::spelling`, the table the client reads with.

use axum::http::StatusCode;
use axum::response::Response;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use cpapi::spelling;
use engine::model::{ExecSide, Execution, OrderStatus, Side};

use super::config::Instrument;
use super::desk::{GwOrder, Pending};
use super::state::Shared;
use super::wire::{dstr, epoch_ms, error, num, ok, qty_str, utc_compact, yymmdd};

/// `1977.6` -> `"1,977.60"` (`dp` decimals, thousands grouped), as the
/// whatif example formats money.
pub(crate) fn grouped(d: Decimal, dp: u32) -> String {
    let text = format!("{:.*}", dp as usize, d.round_dp(dp).abs());
    let (int, frac) = text.split_once('.').unwrap_or((text.as_str(), ""));
    let mut out = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    if d.is_sign_negative() && !d.round_dp(dp).is_zero() {
        out.insert(0, '-');
    }
    out
}

pub(crate) fn prompt_json(p: &Pending) -> Response {
    match p.questions.front() {
        Some(q) => ok(json!([{
            "id": p.id,
            "message": [q.text],
            "isSuppressed": false,
            "messageIds": [q.message_id],
        }])),
        None => error(StatusCode::INTERNAL_SERVER_ERROR, "no question pending"),
    }
}

pub(crate) fn placed_json(orders: &[&GwOrder]) -> Response {
    ok(Value::Array(
        orders
            .iter()
            .map(|o| {
                json!({
                    "order_id": o.id().to_string(),
                    "order_status": spelling::status_name(o.status),
                    "encrypt_message": "1",
                })
            })
            .collect(),
    ))
}

/// "Sold 5 Market, GTC" (filled) or "Buy 10 Limit 150, Day" (working).
fn description(o: &GwOrder, symbol: Option<&str>) -> String {
    let done = o.status == OrderStatus::Filled;
    let side = match (o.req.side, done) {
        (Side::Buy, true) => "Bought",
        (Side::Sell, true) => "Sold",
        (Side::Buy, false) => "Buy",
        (Side::Sell, false) => "Sell",
    };
    let mut s = format!("{side} {}", dstr(o.req.quantity));
    if let Some(sym) = symbol {
        s.push(' ');
        s.push_str(sym);
    }
    s.push(' ');
    s.push_str(spelling::listed_order_type(o.req.order_type));
    if let Some(p) = o.req.limit_price.or(o.req.stop_price) {
        s.push_str(&format!(" {}", dstr(p)));
    }
    s.push_str(", ");
    s.push_str(spelling::described_tif(o.req.tif));
    s
}

/// "5" when all of 5 are filled, else "filled/total" ("0/5"), as the
/// spec's live order and sor examples show.
fn size_and_fills(o: &GwOrder) -> String {
    if o.filled == o.req.quantity {
        dstr(o.req.quantity)
    } else {
        format!("{}/{}", dstr(o.filled), dstr(o.req.quantity))
    }
}

/// A live order (`/iserver/account/orders`), or a websocket `sor` object
/// when `sor` is set (there `price` is a number, as the sor section types
/// it; the live orders list carries it as a string).
pub(crate) fn order_json(o: &GwOrder, sh: &Shared, sor: bool) -> Value {
    let inst = sh.instrument(o.req.conid);
    let symbol = inst
        .map(|i| i.symbol.clone())
        .unwrap_or_else(|| o.req.conid.to_string());
    let mut v = json!({
        "acct": sh.cfg.account,
        "conidex": o.req.conid.to_string(),
        "conid": o.req.conid.0,
        "account": sh.cfg.account,
        "orderId": o.id(),
        "cashCcy": inst.map(|i| i.currency.as_str()).unwrap_or("USD"),
        "sizeAndFills": size_and_fills(o),
        "orderDesc": description(o, None),
        "description1": symbol,
        "ticker": symbol,
        "secType": inst.map(|i| i.sec_type.as_str()).unwrap_or("STK"),
        "listingExchange": inst.map(Instrument::listing_detail).unwrap_or_default(),
        "remainingQuantity": num(o.req.quantity - o.filled),
        "filledQuantity": num(o.filled),
        "totalSize": num(o.req.quantity),
        "companyName": inst.map(|i| i.company_name.as_str()).unwrap_or(""),
        "status": spelling::status_name(o.status),
        "order_ccp_status": spelling::status_name(o.status),
        "origOrderType": spelling::orig_order_type(o.req.order_type),
        "supportsTaxOpt": "1",
        "orderType": spelling::listed_order_type(o.req.order_type),
        "bgColor": "#FFFFFF",
        "fgColor": "#000000",
        "timeInForce": spelling::ticket_tif(o.req.tif),
        "side": spelling::ticket_side(o.req.side),
    });
    if let Some(p) = o.avg_price {
        v["avgPrice"] = json!(dstr(p));
    }
    if let Some(t) = o.last_exec {
        v["lastExecutionTime"] = json!(yymmdd(t));
        v["lastExecutionTime_r"] = json!(epoch_ms(t));
    }
    if let Some(r) = &o.user_coid {
        v["order_ref"] = json!(r);
    }
    if let Some(p) = o.req.limit_price.or(o.req.stop_price) {
        v["price"] = if sor { num(p) } else { json!(dstr(p)) };
    }
    if let (Some(_), Some(s)) = (o.req.limit_price, o.req.stop_price) {
        v["auxPrice"] = json!(dstr(s));
    }
    if let Some(p) = &o.req.parent {
        v["parentId"] = json!(p);
    }
    v
}

pub(crate) fn status_json(o: &GwOrder, sh: &Shared) -> Value {
    let inst = sh.instrument(o.req.conid);
    let symbol = inst
        .map(|i| i.symbol.clone())
        .unwrap_or_else(|| o.req.conid.to_string());
    let done = o.status.is_terminal();
    let ccp = match o.status {
        OrderStatus::Filled => "2",
        OrderStatus::Cancelled => "4",
        OrderStatus::Inactive => "8",
        OrderStatus::PreSubmitted => "0",
        _ => "1",
    };
    let status_text = match o.status {
        OrderStatus::Filled => "Order Filled",
        OrderStatus::Cancelled => "Order Cancelled",
        OrderStatus::Inactive => "Order Inactive",
        OrderStatus::PreSubmitted => "Order PreSubmitted",
        _ => "Order Submitted",
    };
    let exit_price = o.avg_price.or(o.req.limit_price).or(o.req.stop_price);
    let mut v = json!({
        "sub_type": null,
        "request_id": o.id().to_string(),
        "server_id": "0",
        "order_id": o.id(),
        "conidex": o.req.conid.to_string(),
        "conid": o.req.conid.0,
        "symbol": symbol,
        "side": spelling::short_side(o.req.side),
        "contract_description_1": symbol,
        "listing_exchange": inst.map(Instrument::listing_detail).unwrap_or_default(),
        "option_acct": "c",
        "company_name": inst.map(|i| i.company_name.as_str()).unwrap_or(""),
        "size": qty_str(o.req.quantity - o.filled),
        "total_size": qty_str(o.req.quantity),
        "currency": inst.map(|i| i.currency.as_str()).unwrap_or("USD"),
        "account": sh.cfg.account,
        "order_type": spelling::orig_order_type(o.req.order_type),
        "cum_fill": qty_str(o.filled),
        "order_status": spelling::status_name(o.status),
        "order_ccp_status": ccp,
        "order_status_description": status_text,
        "tif": spelling::ticket_tif(o.req.tif),
    });
    let more = json!({
        "fg_color": "#FFFFFF",
        "bg_color": "#000000",
        "order_not_editable": done,
        "editable_fields": "",
        "cannot_cancel_order": done,
        "deactivate_order": false,
        "sec_type": inst.map(|i| i.sec_type.as_str()).unwrap_or("STK"),
        "available_chart_periods": "#R|1",
        "order_description": description(o, None),
        "order_description_with_contract": description(o, Some(&symbol)),
        "alert_active": 1,
        "child_order_type": "0",
        "order_clearing_account": sh.cfg.account,
        "size_and_fills": size_and_fills(o),
        "exit_strategy_display_price": exit_price.map(dstr).unwrap_or_default(),
        "exit_strategy_chart_description": match o.avg_price {
            Some(p) => format!("{} {} @ {}", if o.req.side == Side::Buy { "Bought" } else { "Sold" }, dstr(o.filled), dstr(p)),
            None => description(o, None),
        },
        "average_price": o.avg_price.map(dstr).unwrap_or_default(),
        "exit_strategy_tool_availability": "1",
        "allowed_duplicate_opposite": true,
        "order_time": yymmdd(o.created),
    });
    if let (Value::Object(m), Value::Object(x)) = (&mut v, more) {
        m.extend(x);
    }
    v
}

/// One execution as `/iserver/account/trades` and the `str` topic show it.
pub(crate) fn trade_json(e: &Execution, order_ref: Option<&str>, sh: &Shared) -> Value {
    let inst = sh.instrument(e.conid);
    let symbol = inst
        .map(|i| i.symbol.clone())
        .unwrap_or_else(|| e.conid.to_string());
    let exchange = inst
        .map(|i| i.execution_exchange.clone())
        .unwrap_or_default();
    let side = spelling::trade_side(e.side);
    let verb = match e.side {
        ExecSide::Bought => "Bought",
        ExecSide::Sold => "Sold",
        ExecSide::Netting => "Netted",
    };
    let mut v = json!({
        "execution_id": e.execution_id,
        "symbol": symbol,
        "supports_tax_opt": "1",
        "side": side,
        "order_description": format!("{verb} {} @ {} on {exchange}", dstr(e.size), dstr(e.price)),
        "trade_time": utc_compact(e.time),
        "trade_time_r": epoch_ms(e.time),
        "size": num(e.size),
        "price": dstr(e.price),
        "submitter": sh.cfg.username,
        "exchange": exchange,
        "commission": dstr(e.commission.round_dp(2)),
        "net_amount": num(e.net_amount),
        "account": e.account,
        "accountCode": e.account,
        "account_allocation_name": e.account,
        "company_name": inst.map(|i| i.company_name.as_str()).unwrap_or(""),
        "contract_description_1": symbol,
        "sec_type": inst.map(|i| i.sec_type.as_str()).unwrap_or("STK"),
        "listing_exchange": inst.map(Instrument::listing_detail).unwrap_or_default(),
        "conid": e.conid.0,
        "conidEx": e.conid.to_string(),
        "clearing_id": "IB",
        "clearing_name": "IB",
        "liquidation_trade": "0",
        "is_event_trading": if sh.forecast.is_event(e.conid) { "1" } else { "0" },
    });
    if let Some(r) = order_ref {
        v["order_ref"] = json!(r);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn money_is_grouped() {
        assert_eq!(grouped(dec!(1977.6), 2), "1,977.60");
        assert_eq!(grouped(dec!(215415594.4), 0), "215,415,594");
        assert_eq!(grouped(dec!(-1), 0), "-1");
        assert_eq!(grouped(dec!(652), 0), "652");
        assert_eq!(grouped(dec!(-0.2), 0), "0");
    }
}
