//! The BookTrader price ladder (`sbd` websocket topic), synthesized from a
//! contract's quote.
//!
//! The spec fixes the message shape (`{"topic": "sbd+ACCT+CONID", "data":
//! [{"row", "focus", "price", "bid"?, "ask"?}, ...]}`, every value but `row`
//! and `focus` a string) but not the ladder's depth or where its sizes come
//! from; the simulator has only a top of book, so these are its choices:
//!
//! * Depth: a fixed number of rows ([`LADDER_ROWS`]) one tick apart, the
//!   highest price at row 0, centred on the last price (the last-price row
//!   is row `rows / 2`). When the last is so close to zero that the window
//!   would reach zero or below, it shifts up so the lowest row is one tick:
//!   the row count stays fixed and every price stays positive (a last
//!   below one tick, which no simulated data has, then gets no focus row).
//! * Prices are snapped to the tick grid and written with the tick's number
//!   of decimals (`"192.30"` for a 0.01 tick): consecutive rows differ by
//!   exactly one tick and never by float noise.
//! * Sizes: rows at or below the bid carry `bid`, rows at or above the ask
//!   carry `ask`. The best bid and ask carry the quote's sizes (fields 88 and
//!   85); deeper levels get synthesized sizes that grow by one round lot
//!   (100) per tick of distance. Deterministic, so tests can assert exact
//!   sizes and an unchanged quote gives an unchanged ladder. A missing size
//!   field counts as one round lot. Sizes are whole shares, written without
//!   decimals.
//! * The last-price row has `focus` 1 and `price` `"LASTSIZE @ LAST"` (the
//!   spec's "size @ price" form, field 7059 as the size); every other row
//!   has `focus` 0 and a bare price. The simulator knows one trade only, so
//!   only one row carries a size.
//!
//! One ladder per account per socket (the spec's `ubd+ACCT` names only the
//! account, so a ladder is identified by it): the socket handler in `ws`
//! replaces the previous ladder on a new `sbd` and drops it on `ubd`.

use cpapi::smd::field;
use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Map, Value};

use engine::model::Conid;

/// Rows of a ladder.
pub(crate) const LADDER_ROWS: usize = 20;

/// A round lot: the default size and the size step between depth levels.
const LOT: i64 = 100;

/// The `sbd` message for `conid` from its quote `fields` (market data field
/// ids to strings, as [`super::market::Market::quote_fields`] builds them),
/// or `None` when the quote has no readable last price (field 31).
/// `tick` at or below zero is taken as 0.01 (as the quote synthesis does).
pub(crate) fn ladder_message(
    account: &str,
    conid: Conid,
    fields: &BTreeMap<String, String>,
    tick: Decimal,
    rows: usize,
) -> Option<Value> {
    let tick = if tick > Decimal::ZERO {
        tick.normalize()
    } else {
        Decimal::new(1, 2)
    };
    let num = |k: &str| -> Option<Decimal> { fields.get(k)?.trim().parse::<Decimal>().ok() };
    let last = snap(num(field::LAST)?, tick);
    let bid = num(field::BID).map(|b| snap(b, tick));
    let ask = num(field::ASK).map(|a| snap(a, tick));
    let lot = Decimal::from(LOT);
    let bid_size = num(field::BID_SIZE).unwrap_or(lot);
    let ask_size = num(field::ASK_SIZE).unwrap_or(lot);
    let last_size = num(field::LAST_SIZE).unwrap_or(lot);

    let rows = rows.max(1);
    let focus_row = rows / 2;
    // Lowest row's price: centred, or shifted up to stay positive.
    let below = Decimal::from((rows - 1 - focus_row) as u64);
    let bottom = (last - below * tick).max(tick);
    let top = bottom + Decimal::from((rows - 1) as u64) * tick;

    let data: Vec<Value> = (0..rows)
        .map(|i| {
            let price = top - Decimal::from(i as u64) * tick;
            let focus = price == last;
            let mut o = Map::new();
            o.insert("row".into(), json!(i));
            o.insert("focus".into(), json!(i32::from(focus)));
            let p = fixed(price, tick.scale());
            let text = if focus {
                format!("{} @ {p}", size_text(last_size))
            } else {
                p
            };
            o.insert("price".into(), json!(text));
            if let Some(b) = bid.filter(|&b| price <= b) {
                o.insert(
                    "bid".into(),
                    json!(size_text(depth_size(bid_size, b - price, tick))),
                );
            }
            if let Some(a) = ask.filter(|&a| price >= a) {
                o.insert(
                    "ask".into(),
                    json!(size_text(depth_size(ask_size, price - a, tick))),
                );
            }
            Value::Object(o)
        })
        .collect();
    Some(json!({ "topic": format!("sbd+{account}+{conid}"), "data": data }))
}

/// `p` rounded to the nearest multiple of `tick` (ties to even).
fn snap(p: Decimal, tick: Decimal) -> Decimal {
    (p / tick).round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven) * tick
}

/// Size `distance` (a multiple of `tick`) away from the best price: the
/// best size plus one lot per tick.
fn depth_size(best: Decimal, distance: Decimal, tick: Decimal) -> Decimal {
    let ticks = (distance / tick).round();
    best + ticks * Decimal::from(LOT)
}

/// `d` with exactly `dp` decimals (`192.3` at 2 -> `"192.30"`).
fn fixed(d: Decimal, dp: u32) -> String {
    let mut d = d.round_dp(dp);
    d.rescale(dp);
    d.to_string()
}

/// A size as whole shares.
fn size_text(d: Decimal) -> String {
    d.round().normalize().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn quote(last: &str, bid: &str, ask: &str) -> BTreeMap<String, String> {
        [
            ("31", last),
            ("84", bid),
            ("86", ask),
            ("88", "7"),
            ("85", "9"),
            ("7059", "100"),
            ("55", "AAPL"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn price_of(row: &Value) -> Decimal {
        let p = row["price"].as_str().unwrap();
        let p = p.rsplit(" @ ").next().unwrap();
        p.parse().unwrap()
    }

    fn ladder(q: &BTreeMap<String, String>) -> Value {
        ladder_message("DU1", Conid(265598), q, dec!(0.01), LADDER_ROWS).unwrap()
    }

    #[test]
    fn shape_follows_the_spec() {
        let m = ladder(&quote("192.26", "192.25", "192.27"));
        assert_eq!(m["topic"], "sbd+DU1+265598");
        let data = m["data"].as_array().unwrap();
        assert_eq!(data.len(), LADDER_ROWS);
        for (i, r) in data.iter().enumerate() {
            let o = r.as_object().unwrap();
            for k in o.keys() {
                assert!(
                    ["row", "focus", "price", "bid", "ask"].contains(&k.as_str()),
                    "{k}"
                );
            }
            assert_eq!(r["row"].as_u64(), Some(i as u64));
            assert!(r["focus"].is_i64());
            assert!(r["price"].is_string());
            for k in ["bid", "ask"] {
                if let Some(v) = r.get(k) {
                    assert!(v.as_str().unwrap().parse::<Decimal>().is_ok(), "{r}");
                }
            }
        }
    }

    #[test]
    fn one_focus_row_at_the_last_price() {
        let m = ladder(&quote("192.26", "192.25", "192.27"));
        let data = m["data"].as_array().unwrap();
        let focus: Vec<&Value> = data.iter().filter(|r| r["focus"] == 1).collect();
        assert_eq!(focus.len(), 1);
        assert_eq!(focus[0]["price"], "100 @ 192.26");
        assert_eq!(focus[0]["row"], json!(LADDER_ROWS / 2));
        assert!(focus[0].get("bid").is_none() && focus[0].get("ask").is_none());
        assert!(data.iter().all(|r| r["focus"] == 0 || r["focus"] == 1));
        // Only the focus row carries a size.
        let sized = data
            .iter()
            .filter(|r| r["price"].as_str().unwrap().contains('@'))
            .count();
        assert_eq!(sized, 1);
    }

    #[test]
    fn rows_descend_one_tick_apart_with_the_tick_decimals() {
        let m = ladder(&quote("192.3", "192.29", "192.31"));
        let data = m["data"].as_array().unwrap();
        assert_eq!(data[0]["price"], "192.40");
        for w in data.windows(2) {
            assert_eq!(price_of(&w[0]) - price_of(&w[1]), dec!(0.01));
        }
        assert_eq!(data[LADDER_ROWS / 2]["price"], "100 @ 192.30");
    }

    #[test]
    fn bids_at_or_below_bid_asks_at_or_above_ask() {
        let m = ladder(&quote("50", "49.98", "50.03"));
        for r in m["data"].as_array().unwrap() {
            let p = price_of(r);
            assert_eq!(r.get("bid").is_some(), p <= dec!(49.98), "{r}");
            assert_eq!(r.get("ask").is_some(), p >= dec!(50.03), "{r}");
        }
        let data = m["data"].as_array().unwrap();
        let at = |p: Decimal| data.iter().find(|r| price_of(r) == p).unwrap();
        assert_eq!(at(dec!(49.98))["bid"], "7", "best bid: the quote's size");
        assert_eq!(at(dec!(49.97))["bid"], "107");
        assert_eq!(at(dec!(49.96))["bid"], "207");
        assert_eq!(at(dec!(50.03))["ask"], "9", "best ask: the quote's size");
        assert_eq!(at(dec!(50.05))["ask"], "209");
    }

    #[test]
    fn deterministic_and_tolerant() {
        let q = quote("10", "9.99", "10.01");
        assert_eq!(ladder(&q), ladder(&q));
        // No last: no ladder.
        let mut bad = q.clone();
        bad.insert("31".into(), "n/a".into());
        assert!(ladder_message("A", Conid(1), &bad, dec!(0.01), 20).is_none());
        bad.remove("31");
        assert!(ladder_message("A", Conid(1), &bad, dec!(0.01), 20).is_none());
        // No bid/ask: rows without sizes; zero tick and zero rows are sane.
        let mut thin = q.clone();
        thin.remove("84");
        thin.remove("86");
        let m = ladder_message("A", Conid(1), &thin, Decimal::ZERO, 0).unwrap();
        assert_eq!(
            m["data"],
            json!([{"row": 0, "focus": 1, "price": "100 @ 10.00"}])
        );
    }

    #[test]
    fn near_zero_prices_stay_positive() {
        let m = ladder(&quote("0.03", "0.02", "0.04"));
        let data = m["data"].as_array().unwrap();
        assert_eq!(data.len(), LADDER_ROWS);
        assert!(data.iter().all(|r| price_of(r) > Decimal::ZERO));
        assert_eq!(price_of(&data[LADDER_ROWS - 1]), dec!(0.01));
        assert_eq!(data.iter().filter(|r| r["focus"] == 1).count(), 1);
    }

    #[test]
    fn whole_tick_instruments() {
        let m = ladder_message(
            "A",
            Conid(1),
            &quote("4500.25", "4500", "4500.5"),
            dec!(0.25),
            4,
        )
        .unwrap();
        let prices: Vec<&str> = m["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["price"].as_str().unwrap())
            .collect();
        assert_eq!(prices, ["4500.75", "4500.50", "100 @ 4500.25", "4500.00"]);
    }
}
