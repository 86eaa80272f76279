//! What the simulated gateway refuses at the door, before an order reaches
//! the exchange: sizes and prices beyond sane limits, and orders beyond the
//! account's buying power (issue 12).
//!
//! Why at the door: the exchange and the account books do their arithmetic
//! in `Decimal`, whose range ends near 7.9e28. One order of 10^27 shares
//! used to be accepted, then overflowed the books when it filled inside the
//! replay ticker, killing the ticker and wedging the simulated exchange for
//! good (every later pump re-panicked on the same order). Quantities and
//! prices are bounded by `engine::limits` (at most 1e10 shares, prices at
//! most 1e12), checked by `OrderRequest::validate` when a ticket is read,
//! the same bounds as every other edge of ibflow; every product the
//! exchange and the books form stays inside `Decimal`'s range.
//!
//! The answer is the spec's *Order Reject Object*: HTTP 200 with
//! `{"error": "..."}` ("an order is placed that can not be completed based
//! on account details such as trading permissions or funds"), the same
//! shape as the simulator's other business rejects.
//!
//! Buying power, as the simulator models it (assumptions, the spec has no
//! margin model): the account is a Reg T margin account with an initial
//! margin of 50% of the gross position value (the rate the whatif preview
//! shows). An order that opens or increases a position (long or short) is
//! refused when the gross position value after it, at the order's price
//! (its limit, else its stop, else the current last price, else the
//! contract's first bar open before any bar has completed), would need more
//! initial margin than the account's equity (net liquidation), i.e. when
//! the gross position value would exceed twice the equity. Orders that only
//! reduce or close a position are never refused for funds. Other working
//! orders are not counted (the real gateway counts them; the simulator
//! checks each order against the filled position only), so several resting
//! orders can together exceed the limit, but none of them alone, and no
//! quantity or price can be large enough to overflow the books.

use rust_decimal::Decimal;

use engine::model::OrderRequest;

use super::state::{Shared, State};
use super::wire::dstr;

/// Initial margin rate of the Reg T model (see the module doc); whatif
/// previews with it too.
pub(crate) const INITIAL_MARGIN: Decimal = Decimal::from_parts(5, 0, 0, false, 1);

/// Maintenance margin rate of the Reg T model, for whatif.
pub(crate) const MAINTENANCE_MARGIN: Decimal = Decimal::from_parts(25, 0, 0, false, 2);

/// The price the buying-power check values `req` at, if there is one.
pub(crate) fn reference_price(st: &State, sh: &Shared, req: &OrderRequest) -> Option<Decimal> {
    if let Some(p) = req.limit_price.or(req.stop_price) {
        return Some(p.abs());
    }
    let tick = sh
        .instrument(req.conid)
        .map(|i| i.tick_size)
        .unwrap_or(Decimal::new(1, 2));
    let now = st.clock.now();
    st.market
        .quote(req.conid, now, tick)
        .map(|q| q.last)
        .or_else(|| st.market.first_open(req.conid))
        .map(|p| p.abs())
}

/// Why `req` is beyond the account's buying power, if it is (see the
/// module doc for the model). Arithmetic is checked: a product that would
/// overflow is a refusal, never a panic.
pub(crate) fn buying_power_refusal(st: &State, sh: &Shared, req: &OrderRequest) -> Option<String> {
    let Some(price) = reference_price(st, sh, req) else {
        // No price to value it at (a contract without bars): it cannot
        // fill either; the size limits bound it.
        return None;
    };
    let (pos, gross_now, equity) = super::portfolio::exposure(st, req.conid);
    let too_big = || {
        Some(format!(
            "Order of {} shares at {} exceeds the account's buying power",
            dstr(req.quantity),
            dstr(price)
        ))
    };
    let Some(signed) = req.quantity.checked_mul(req.side.sign()) else {
        return too_big();
    };
    let Some(after) = pos.checked_add(signed) else {
        return too_big();
    };
    let opening = after.abs() - pos.abs();
    if opening <= Decimal::ZERO {
        return None;
    }
    let Some(gross_after) = opening
        .checked_mul(price)
        .and_then(|v| v.checked_add(gross_now))
    else {
        return too_big();
    };
    let Some(margin) = gross_after.checked_mul(INITIAL_MARGIN) else {
        return too_big();
    };
    if margin > equity {
        return Some(format!(
            "Your order is not accepted because your Equity with Loan Value of {} USD \
             is insufficient to cover the Initial Margin requirement of {} USD \
             (order of {} shares at {}; buying power is twice the equity)",
            dstr(equity.round_dp(2)),
            dstr(margin.round_dp(2)),
            dstr(req.quantity),
            dstr(price)
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_what_they_say() {
        assert_eq!(INITIAL_MARGIN, Decimal::new(5, 1));
    }
}
