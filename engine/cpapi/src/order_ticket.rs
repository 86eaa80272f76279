//! The JSON body of one order on `POST /iserver/account/{accountId}/orders`
//! (and on modify and whatif), exactly as the spec's "Place Order" section
//! names the fields, and its mapping to and from [`OrderRequest`].
//!
//! The wire overloads `price` and `auxPrice`; the engine does not:
//!
//! | orderType  | `price`            | `auxPrice`  | trailing            |
//! |------------|--------------------|-------------|---------------------|
//! | MKT        | -                  | -           | -                   |
//! | LMT        | limit              | -           | -                   |
//! | STP        | stop               | -           | -                   |
//! | STOP_LIMIT | limit              | stop        | -                   |
//! | TRAIL      | stop (initial)     | -           | trailingAmt/Type    |
//! | TRAILLMT   | limit              | stop        | trailingAmt/Type    |
//! | MIDPRICE   | price cap (option) | -           | -                   |
//!
//! Bracket children carry `parentId` (the parent's cOID) and no `cOID` of
//! their own, as the spec's "Bracket Orders & OCA Groups" asks; members of
//! an OCA group carry `isSingleGroup: true`.
//!
//! Prices and quantities go out as JSON numbers (integral values without a
//! fraction, `50` not `50.0`) and are read back from numbers or strings.
//!
//! # The cOID: who placed an order
//!
//! The gateway refuses a cOID already used within 24 hours, and echoes it
//! back as `order_ref` on orders and trades: it is the only thing that tells
//! one bot's orders and fills from another's on a shared account. Every
//! cOID ibflow sends has four dot-separated parts:
//!
//! ```text
//! {bot}.{run}.{strategy}.{engine}      e.g.  k3x9.0f7qz2mc.1.ibf-12
//! ```
//!
//! * `bot`: 1 to 8 characters `[0-9a-z]`, the bot's identity, stable
//!   across restarts (configured, or kept in the bot's store): a restarted
//!   bot recognises its earlier runs' orders by it
//!   ([`TicketBuilder::bot_prefix`], [`CoidParts::parse`]).
//! * `run`: 8 base-36 digits of OS randomness drawn at start (41 bits):
//!   two bots started in the same second, or one bot restarted, never send
//!   the same cOID (the old prefix, the start second in base 36, made two
//!   bots started together refuse each other's orders as duplicates and
//!   count each other's fills).
//! * `strategy`: the index of the strategy that placed it, base 36
//!   ([`tag_strategy`]), so a restart can attribute an earlier run's order
//!   and its fills.
//! * `engine`: the engine's own id of the order (`ibf-{n}`).
//!
//! `{bot}.{run}.` is the run's [`TicketBuilder::coid_prefix`]; the broker
//! tags the engine's cOID with the strategy. A cOID is at most
//! [`MAX_COID_LEN`] characters (8 + 1 + 8 + 1 + 13 + 1 + 24; the spec sets
//! no limit, this keeps it short). Bracket children carry no cOID on the
//! wire (the spec), only their parent's as `parentId`.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize, Serializer};

use crate::lenient::opt_decimal;
use crate::spelling;
use engine::model::{
    Conid, OrderId, OrderRequest, OrderType, SecType, Trail, TrailUnit, UnknownValue,
};

/// One order of a place/modify/whatif body. Unknown fields are ignored when
/// reading, so a client sending extra keys is not refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct OrderTicket {
    /// `acctId`: one of the accounts of `/iserver/accounts`; the gateway picks
    /// the first when absent. [`OrderTicket::from_request`] always sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acct_id: Option<String>,
    /// The contract. Sending `conid` SMART-routes the order even when
    /// `conidex` is also sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conid: Option<Conid>,
    /// `conidex`: `conid@EXCHANGE` for a directly routed order, or a combo
    /// spec. ibflow never sends it, and [`OrderTicket::to_request`] refuses a
    /// ticket that has only this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conidex: Option<String>,
    /// Required on futures and futures options (CME Rule 536-B).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_indicator: Option<bool>,
    /// `extOperator`: the person in charge of the API session; required with
    /// `manualIndicator` on futures and futures options (CME Rule 536-B).
    /// Filled from [`TicketBuilder::ext_operator`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext_operator: Option<String>,
    /// `secType` as `"conid:TYPE"`; ibflow does not send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sec_type: Option<String>,
    /// `cOID`: the client order id, unique within 24 hours; echoed back as
    /// `order_ref` on orders and trades. Bracket children carry none.
    #[serde(default, rename = "cOID", skip_serializing_if = "Option::is_none")]
    pub c_oid: Option<String>,
    /// `parentId`: on a bracket child only, the parent's `cOID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// `orderType`: `LMT`, `MKT`, `STP`, `STOP_LIMIT`, `MIDPRICE`, `TRAIL`,
    /// `TRAILLMT` (see [`crate::spelling::ticket_order_type`]). Required.
    pub order_type: String,
    /// `listingExchange`: the routing exchange; ibflow always sends `SMART`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing_exchange: Option<String>,
    /// `isSingleGroup`: the order belongs to the batch's OCA group (one fill
    /// cancels the others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_single_group: Option<bool>,
    /// The spec spells it `outsideRTH` in the field list and `outsideRth` in
    /// one example; both are read.
    #[serde(
        default,
        rename = "outsideRTH",
        alias = "outsideRth",
        skip_serializing_if = "Option::is_none"
    )]
    pub outside_rth: Option<bool>,
    /// `price`: limit price, stop price, or price cap depending on the type (see
    /// the table in the module doc).
    #[serde(
        default,
        deserialize_with = "opt_decimal",
        serialize_with = "ser_opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub price: Option<Decimal>,
    /// `auxPrice`: the stop price of `STOP_LIMIT` and `TRAILLMT` orders.
    #[serde(
        default,
        deserialize_with = "opt_decimal",
        serialize_with = "ser_opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub aux_price: Option<Decimal>,
    /// `side`: `BUY` or `SELL`. Required.
    pub side: String,
    /// `ticker`: the underlying symbol; informational, ibflow does not send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticker: Option<String>,
    /// `tif`: `DAY`, `GTC`, `IOC`, `OPG` (`PAX` for crypto). Required.
    pub tif: String,
    /// `trailingAmt`: the trail, in price units or percent per `trailingType`.
    /// Required for `TRAIL` and `TRAILLMT`.
    #[serde(
        default,
        deserialize_with = "opt_decimal",
        serialize_with = "ser_opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub trailing_amt: Option<Decimal>,
    /// `trailingType`: `"amt"` or `"%"`; read as `"amt"` when an amount comes
    /// without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trailing_type: Option<String>,
    /// `referrer`: a free custom order reference; ibflow does not send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// `quantity`: the number of units. Required by the engine (only whole
    /// shares, per the spec).
    #[serde(
        default,
        deserialize_with = "opt_decimal",
        serialize_with = "ser_opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub quantity: Option<Decimal>,
    /// `cashQty`: a monetary size instead of `quantity` (crypto and forex only).
    /// Read but not supported: a ticket with no `quantity` is refused.
    #[serde(
        default,
        deserialize_with = "opt_decimal",
        serialize_with = "ser_opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub cash_qty: Option<Decimal>,
    /// `fxQty`: the amount of a currency conversion order, instead of
    /// `quantity`. Not supported, as `cashQty`.
    #[serde(
        default,
        deserialize_with = "opt_decimal",
        serialize_with = "ser_opt_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub fx_qty: Option<Decimal>,
    /// `useAdaptive`: submit through the Price Management Algo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_adaptive: Option<bool>,
    /// `isCcyConv`: a currency conversion order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_ccy_conv: Option<bool>,
    /// `allocationMethod`: allocation of a financial advisor's group order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_method: Option<String>,
    /// `strategy`: the IB Algo to use (`Vwap`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// `strategyParameters`: the algo's parameters, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy_parameters: Option<serde_json::Value>,
}

/// `{"orders": [...]}`: the body of a place or whatif request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct OrdersBody {
    /// The orders of one batch: a single order, a bracket (parent first), or
    /// an OCA group. The spec does not allow unrelated orders in one body.
    pub orders: Vec<OrderTicket>,
}

/// Why a ticket cannot become an engine order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// A spelling (`orderType`, `side`, `tif`) the engine does not know.
    #[error(transparent)]
    Unknown(#[from] UnknownValue),
    /// Only `conidex` names the contract.
    #[error("order has no conid (conidex-only orders are not supported)")]
    NoConid,
    /// No `quantity` (a `cashQty` or `fxQty` order).
    #[error("order has no quantity (cashQty and fxQty orders are not supported)")]
    NoQuantity,
    /// `trailingType` other than `amt` or `%`.
    #[error("trailingType {0:?} is neither \"amt\" nor \"%\"")]
    TrailingType(String),
    /// The order read back fails [`OrderRequest::validate`] (a limit order
    /// without a limit price, ...).
    #[error("{0}")]
    Invalid(String),
}

/// Decimal as a JSON number: an integer when integral, else the shortest
/// float that reads back to the same digits.
fn ser_opt_number<S: Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        None => s.serialize_none(),
        Some(d) if d.fract().is_zero() => match d.to_i64() {
            Some(i) => s.serialize_i64(i),
            None => s.serialize_f64(d.to_f64().unwrap_or(f64::NAN)),
        },
        Some(d) => match d.to_f64() {
            Some(f) => s.serialize_f64(f),
            None => Err(serde::ser::Error::custom(format!(
                "{d} is not representable"
            ))),
        },
    }
}

impl OrderTicket {
    /// The wire form of `req` for account `account`. `is_child` and OCA
    /// membership come from the request's `parent` and `oca_group`.
    pub fn from_request(req: &OrderRequest, account: &str) -> Self {
        let (price, aux_price) = match req.order_type {
            OrderType::Market => (None, None),
            OrderType::Limit | OrderType::MidPrice => (req.limit_price, None),
            OrderType::Stop | OrderType::Trail => (req.stop_price, None),
            OrderType::StopLimit | OrderType::TrailLimit => (req.limit_price, req.stop_price),
        };
        let is_child = req.parent.is_some();
        OrderTicket {
            acct_id: Some(account.to_owned()),
            conid: Some(req.conid),
            c_oid: (!is_child).then(|| req.client_order_id.clone()),
            parent_id: req.parent.clone(),
            order_type: spelling::ticket_order_type(req.order_type).to_owned(),
            listing_exchange: Some("SMART".to_owned()),
            is_single_group: req.oca_group.as_ref().map(|_| true),
            outside_rth: Some(req.outside_rth),
            price,
            aux_price,
            side: spelling::ticket_side(req.side).to_owned(),
            tif: spelling::ticket_tif(req.tif).to_owned(),
            trailing_amt: req.trail.map(|t| t.amount),
            trailing_type: req.trail.map(|t| t.unit.as_wire().to_owned()),
            quantity: Some(req.quantity),
            ..OrderTicket::default()
        }
    }

    /// Read a ticket back into an engine order request with engine id `id`.
    /// `client_order_id` falls back to `fallback_coid` for children (which
    /// carry none on the wire); `oca_group` names the batch's group when
    /// `isSingleGroup` is set.
    pub fn to_request(
        &self,
        id: OrderId,
        fallback_coid: &str,
        oca_group: Option<&str>,
    ) -> Result<OrderRequest, TicketError> {
        let order_type = spelling::order_type(&self.order_type)?;
        let side = spelling::side(&self.side)?;
        let tif = spelling::tif(&self.tif)?;
        let conid = self.conid.ok_or(TicketError::NoConid)?;
        let quantity = self.quantity.ok_or(TicketError::NoQuantity)?;
        let (limit_price, stop_price) = match order_type {
            OrderType::Market => (None, None),
            OrderType::Limit | OrderType::MidPrice => (self.price, None),
            OrderType::Stop | OrderType::Trail => (None, self.price),
            OrderType::StopLimit | OrderType::TrailLimit => (self.price, self.aux_price),
        };
        let trail = match self.trailing_amt {
            None => None,
            Some(amount) => {
                // An amount without a type is an amount.
                let unit = match self.trailing_type.as_deref() {
                    None => TrailUnit::Amount,
                    Some(t) => TrailUnit::from_wire(t)
                        .ok_or_else(|| TicketError::TrailingType(t.to_owned()))?,
                };
                Some(Trail { amount, unit })
            }
        };
        let req = OrderRequest {
            id,
            conid,
            side,
            order_type,
            quantity,
            limit_price,
            stop_price,
            trail,
            tif,
            outside_rth: self.outside_rth.unwrap_or(false),
            client_order_id: self
                .c_oid
                .clone()
                .unwrap_or_else(|| fallback_coid.to_owned()),
            parent: self.parent_id.clone(),
            oca_group: if self.is_single_group == Some(true) {
                oca_group.map(str::to_owned)
            } else {
                None
            },
        };
        req.validate().map_err(TicketError::Invalid)?;
        Ok(req)
    }
}

impl OrdersBody {
    /// One batch (single order, bracket or OCA group) as the request body.
    pub fn from_batch(batch: &[OrderRequest], account: &str) -> Self {
        OrdersBody {
            orders: batch
                .iter()
                .map(|r| OrderTicket::from_request(r, account))
                .collect(),
        }
    }
}

/// Builds request bodies for one account.
#[derive(Debug, Clone)]
pub struct TicketBuilder {
    /// The account the bodies are for: `acctId` of every ticket.
    pub account: String,
    /// Prepended to every cOID and parentId; unique per engine run (for
    /// example the run's start time), so ids never repeat within 24 hours.
    pub coid_prefix: String,
    /// `extOperator` for futures and futures options orders.
    pub ext_operator: String,
}

/// Longest bot id: the part of every cOID that names the bot.
pub const MAX_BOT_ID_LEN: usize = 8;

/// Digits of the random run id in every cOID (base 36: 41 bits).
pub const RUN_ID_LEN: usize = 8;

/// Longest cOID ibflow sends (see the module doc).
pub const MAX_COID_LEN: usize = 56;

/// Why a bot id cannot be used in a cOID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bot id {0:?}: expected 1 to 8 characters of 0-9 and a-z")]
pub struct BadBotId(pub String);

/// Whether `id` can name a bot in a cOID: 1 to [`MAX_BOT_ID_LEN`]
/// characters of `[0-9a-z]` (no separator, so a cOID parses back).
pub fn valid_bot_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_BOT_ID_LEN && base36_digits(id)
}

/// Only `[0-9a-z]`: the digits [`base36`] writes.
fn base36_digits(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

/// Whether `run` is a run id of [`TicketBuilder::unique_prefix`]:
/// exactly [`RUN_ID_LEN`] characters of `[0-9a-z]`.
fn valid_run_id(run: &str) -> bool {
    run.len() == RUN_ID_LEN && base36_digits(run)
}

/// `n` in base 36 (`0-9a-z`), at least `width` digits (zero-padded).
pub fn base36(mut n: u64, width: usize) -> String {
    let mut digits = Vec::new();
    loop {
        let d = (n % 36) as u8;
        digits.push(if d < 10 { b'0' + d } else { b'a' + d - 10 });
        n /= 36;
        if n == 0 && digits.len() >= width {
            break;
        }
    }
    digits.reverse();
    String::from_utf8_lossy(&digits).into_owned()
}

/// The engine cOID of an order of strategy `strategy`: `{strategy}.{coid}`,
/// the strategy in base 36. The broker sends this (after the run prefix),
/// so the venue's `order_ref` names the strategy.
pub fn tag_strategy(strategy: usize, coid: &str) -> String {
    format!("{}.{coid}", base36(strategy as u64, 1))
}

/// A cOID read back into its parts (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoidParts<'a> {
    /// The bot that placed it.
    pub bot: &'a str,
    /// The run of that bot.
    pub run: &'a str,
    /// The strategy index within that run.
    pub strategy: usize,
    /// The engine's id of the order in that run (`ibf-{n}`).
    pub engine: &'a str,
}

impl<'a> CoidParts<'a> {
    /// Split a cOID ibflow sent; `None` for anything else (an order placed
    /// in TWS, by another program, or by an ibflow older than this format).
    pub fn parse(coid: &'a str) -> Option<Self> {
        if coid.len() > MAX_COID_LEN {
            return None;
        }
        let mut it = coid.splitn(4, '.');
        let bot = it.next()?;
        let run = it.next()?;
        let strategy = it.next()?;
        let engine = it.next()?;
        if !valid_bot_id(bot) || !valid_run_id(run) || engine.is_empty() || strategy.is_empty() {
            return None;
        }
        let strategy = usize::from_str_radix(strategy, 36).ok()?;
        Some(CoidParts {
            bot,
            run,
            strategy,
            engine,
        })
    }
}

impl TicketBuilder {
    /// The cOID prefix of one run of bot `bot`: `{bot}.{run}.`, `run` the
    /// low 41 bits of `random` in 8 base-36 digits. `random` must come
    /// from the OS (a clock would repeat for two bots started together).
    pub fn unique_prefix(bot: &str, random: u64) -> Result<String, BadBotId> {
        if !valid_bot_id(bot) {
            return Err(BadBotId(bot.to_owned()));
        }
        // 36^8 > 2^41: the run id always has exactly 8 digits.
        let run = base36(random & ((1 << 41) - 1), RUN_ID_LEN);
        Ok(format!("{bot}.{run}."))
    }

    /// What every cOID of this bot starts with, whatever the run: `{bot}.`
    /// for a prefix of [`TicketBuilder::unique_prefix`]; the whole prefix
    /// otherwise (a hand-made prefix names one run only).
    pub fn bot_prefix(&self) -> &str {
        let p = self.coid_prefix.as_str();
        // Read per execution: parsed in place, nothing allocated.
        let unique = p
            .strip_suffix('.')
            .and_then(|head| head.split_once('.'))
            .is_some_and(|(bot, run)| valid_bot_id(bot) && valid_run_id(run));
        match p.find('.') {
            Some(i) if unique => &p[..=i],
            _ => p,
        }
    }

    /// A prefix derived from the run's start time (seconds, base 36).
    /// Two runs started in the same second get the same prefix: kept for
    /// tests and tools that need a predictable one; a bot uses
    /// [`TicketBuilder::unique_prefix`].
    pub fn run_prefix(started: engine::model::Timestamp) -> String {
        format!("{}-", base36(started.timestamp().max(0) as u64, 1))
    }

    /// The body for `batch`. `sec_type` tells futures apart.
    pub fn body(&self, batch: &[OrderRequest], sec_type: impl Fn(Conid) -> SecType) -> OrdersBody {
        let orders = batch
            .iter()
            .map(|r| {
                let mut t = OrderTicket::from_request(r, &self.account);
                t.c_oid = t.c_oid.map(|c| format!("{}{c}", self.coid_prefix));
                t.parent_id = t.parent_id.map(|p| format!("{}{p}", self.coid_prefix));
                if matches!(sec_type(r.conid), SecType::Future | SecType::FutureOption) {
                    t.manual_indicator = Some(false);
                    t.ext_operator = Some(self.ext_operator.clone());
                }
                t
            })
            .collect();
        OrdersBody { orders }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::model::{Side, Tif};
    use rust_decimal_macros::dec;

    fn req(id: u64, ty: OrderType, side: Side) -> OrderRequest {
        OrderRequest {
            id: OrderId(id),
            conid: Conid(265598),
            side,
            order_type: ty,
            quantity: dec!(50),
            limit_price: None,
            stop_price: None,
            trail: None,
            tif: Tif::Gtc,
            outside_rth: false,
            client_order_id: format!("ibf-{id}"),
            parent: None,
            oca_group: None,
        }
    }

    /// The spec's bracket example, field by field (values aside from the
    /// referrer and outsideRTH flags, which the engine does not set).
    #[test]
    fn bracket_matches_the_spec_example() {
        let parent = req(1, OrderType::Market, Side::Buy);
        let stop = OrderRequest {
            stop_price: Some(dec!(157.30)),
            parent: Some("ibf-1".into()),
            ..req(2, OrderType::Stop, Side::Sell)
        };
        let tp = OrderRequest {
            limit_price: Some(dec!(157.00)),
            parent: Some("ibf-1".into()),
            ..req(3, OrderType::Limit, Side::Sell)
        };
        let body = OrdersBody::from_batch(&[parent, stop, tp], "U1234567");
        let v = serde_json::to_value(&body).unwrap();
        let o = v["orders"].as_array().unwrap();
        assert_eq!(o[0]["cOID"], "ibf-1");
        assert_eq!(o[0]["orderType"], "MKT");
        assert_eq!(o[0]["side"], "BUY");
        assert_eq!(o[0]["quantity"], 50);
        assert!(o[0].get("parentId").is_none() && o[0].get("price").is_none());
        for child in &o[1..] {
            assert_eq!(child["parentId"], "ibf-1");
            assert!(child.get("cOID").is_none(), "children carry no cOID");
            assert_eq!(child["acctId"], "U1234567");
            assert_eq!(child["conid"], 265598);
            assert_eq!(child["tif"], "GTC");
            assert_eq!(child["listingExchange"], "SMART");
        }
        assert_eq!(
            (o[1]["orderType"].as_str(), o[1]["price"].as_f64()),
            (Some("STP"), Some(157.3))
        );
        assert_eq!(
            (o[2]["orderType"].as_str(), o[2]["price"].as_f64()),
            (Some("LMT"), Some(157.0))
        );
        assert!(o.iter().all(|x| x.get("isSingleGroup").is_none()));
    }

    #[test]
    fn oca_members_carry_is_single_group() {
        let mut a = req(1, OrderType::Stop, Side::Buy);
        a.stop_price = Some(dec!(101));
        a.oca_group = Some("g".into());
        let mut b = req(2, OrderType::Stop, Side::Sell);
        b.stop_price = Some(dec!(99));
        b.oca_group = Some("g".into());
        let v = serde_json::to_value(OrdersBody::from_batch(&[a, b], "U1")).unwrap();
        for o in v["orders"].as_array().unwrap() {
            assert_eq!(o["isSingleGroup"], true);
        }
    }

    #[test]
    fn price_fields_round_trip_for_every_type() {
        let trail = Some(Trail {
            amount: dec!(1.5),
            unit: TrailUnit::Percent,
        });
        let cases = [
            OrderRequest {
                ..req(1, OrderType::Market, Side::Buy)
            },
            OrderRequest {
                limit_price: Some(dec!(185.5)),
                ..req(2, OrderType::Limit, Side::Buy)
            },
            OrderRequest {
                stop_price: Some(dec!(180)),
                ..req(3, OrderType::Stop, Side::Sell)
            },
            OrderRequest {
                limit_price: Some(dec!(186)),
                stop_price: Some(dec!(185.5)),
                ..req(4, OrderType::StopLimit, Side::Buy)
            },
            OrderRequest {
                trail,
                stop_price: Some(dec!(183)),
                ..req(5, OrderType::Trail, Side::Sell)
            },
            OrderRequest {
                trail,
                limit_price: Some(dec!(185.5)),
                stop_price: Some(dec!(183)),
                ..req(6, OrderType::TrailLimit, Side::Sell)
            },
            OrderRequest {
                limit_price: Some(dec!(10.25)),
                ..req(7, OrderType::MidPrice, Side::Buy)
            },
        ];
        for r in cases {
            let t = OrderTicket::from_request(&r, "U1");
            let json = serde_json::to_string(&t).unwrap();
            let back: OrderTicket = serde_json::from_str(&json).unwrap();
            let r2 = back.to_request(r.id, "x", None).unwrap();
            assert_eq!(r2, r, "{json}");
        }
        let stp_lmt = serde_json::to_value(OrderTicket::from_request(
            &OrderRequest {
                limit_price: Some(dec!(186)),
                stop_price: Some(dec!(185.5)),
                ..req(4, OrderType::StopLimit, Side::Buy)
            },
            "U1",
        ))
        .unwrap();
        assert_eq!(stp_lmt["price"], 186);
        assert_eq!(stp_lmt["auxPrice"].as_f64(), Some(185.5));
    }

    /// The spec's TRAILLMT example body, with its extra fields, reads into a
    /// valid engine order.
    #[test]
    fn reads_the_spec_place_order_example() {
        let body = r#"{"orders": [{
          "acctId": "U1234567", "conid": 265598, "conidex": "265598@SMART",
          "manualIndicator": true, "extOperator": "person1234", "secType": "265598:STK",
          "cOID": "AAPL-BUY-100", "parentId": null, "orderType": "TRAILLMT",
          "listingExchange": "ISLAND", "isSingleGroup": false, "outsideRth": true,
          "price": 185.50, "auxPrice": 183, "side": "BUY", "ticker": "AAPL", "tif": "GTC",
          "trailingAmt": 1.00, "trailingType": "amt", "referrer": "QuickTrade",
          "quantity": 100, "useAdaptive": false, "isCcyConv": false, "strategy": "Vwap",
          "strategyParameters": {"MaxPctVol":"0.1","StartTime":"14:00:00 EST","EndTime":"15:00:00 EST","AllowPastEndTime":true},
          "someFutureField": 1
        }]}"#;
        let b: OrdersBody = serde_json::from_str(body).unwrap();
        let r = b.orders[0]
            .to_request(OrderId(9), "fallback", Some("g"))
            .unwrap();
        assert_eq!(r.order_type, OrderType::TrailLimit);
        assert_eq!(
            (r.limit_price, r.stop_price),
            (Some(dec!(185.5)), Some(dec!(183)))
        );
        assert_eq!(
            r.trail,
            Some(Trail {
                amount: dec!(1),
                unit: TrailUnit::Amount
            })
        );
        assert_eq!(r.client_order_id, "AAPL-BUY-100");
        assert!(r.outside_rth);
        assert_eq!(r.oca_group, None, "isSingleGroup false");
        assert_eq!(r.quantity, dec!(100));
    }

    #[test]
    fn bad_tickets_are_clear_errors() {
        let t = OrderTicket {
            order_type: "FOK".into(),
            side: "BUY".into(),
            tif: "DAY".into(),
            conid: Some(Conid(1)),
            quantity: Some(dec!(1)),
            ..Default::default()
        };
        assert!(t
            .to_request(OrderId(1), "x", None)
            .unwrap_err()
            .to_string()
            .contains("FOK"));
        let t = OrderTicket {
            order_type: "LMT".into(),
            side: "BUY".into(),
            tif: "DAY".into(),
            conid: Some(Conid(1)),
            quantity: Some(dec!(1)),
            ..Default::default()
        };
        assert!(matches!(
            t.to_request(OrderId(1), "x", None),
            Err(TicketError::Invalid(_))
        ));
        let t = OrderTicket {
            order_type: "MKT".into(),
            side: "BUY".into(),
            tif: "DAY".into(),
            quantity: Some(dec!(1)),
            ..Default::default()
        };
        assert_eq!(
            t.to_request(OrderId(1), "x", None),
            Err(TicketError::NoConid)
        );
    }
}

#[cfg(test)]
mod ticket_builder_tests {
    use super::*;
    use chrono::TimeZone;
    use engine::model::{OrderId, OrderType, Side, Tif};
    use rust_decimal_macros::dec;

    #[test]
    fn tickets_prefix_coids_and_mark_futures() {
        let req = |id: u64, parent: Option<&str>| OrderRequest {
            id: OrderId(id),
            conid: Conid(id as i64),
            side: Side::Buy,
            order_type: OrderType::Market,
            quantity: dec!(1),
            limit_price: None,
            stop_price: None,
            trail: None,
            tif: Tif::Day,
            outside_rth: false,
            client_order_id: format!("ibf-{id}"),
            parent: parent.map(str::to_owned),
            oca_group: None,
        };
        let started = chrono::Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let b = TicketBuilder {
            account: "U1".into(),
            coid_prefix: TicketBuilder::run_prefix(started),
            ext_operator: "bot-1".into(),
        };
        assert_eq!(b.coid_prefix, "s6k2o0-");
        let body = b.body(&[req(1, None), req(2, Some("ibf-1"))], |c| {
            if c == Conid(2) {
                SecType::Future
            } else {
                SecType::Stock
            }
        });
        assert_eq!(body.orders[0].c_oid.as_deref(), Some("s6k2o0-ibf-1"));
        assert_eq!(body.orders[1].parent_id.as_deref(), Some("s6k2o0-ibf-1"));
        assert_eq!(body.orders[1].c_oid, None);
        assert_eq!(body.orders[0].manual_indicator, None);
        assert_eq!(body.orders[1].manual_indicator, Some(false));
        assert_eq!(body.orders[1].ext_operator.as_deref(), Some("bot-1"));
        // Stable: the same batch gives the same body (safe to retry).
        let again = b.body(&[req(1, None), req(2, Some("ibf-1"))], |_| SecType::Stock);
        assert_eq!(again.orders[0].c_oid, body.orders[0].c_oid);
    }

    #[test]
    fn unique_prefixes_parse_back_and_never_repeat() {
        let a = TicketBuilder::unique_prefix("k3x9", 0).unwrap();
        assert_eq!(a, "k3x9.00000000.");
        let b = TicketBuilder::unique_prefix("k3x9", u64::MAX).unwrap();
        assert_eq!(b.len(), a.len(), "{b}");
        assert_ne!(a, b);
        let coid = format!("{b}{}", tag_strategy(37, "ibf-12"));
        let p = CoidParts::parse(&coid).unwrap();
        assert_eq!((p.bot, p.strategy, p.engine), ("k3x9", 37, "ibf-12"));
        let longest = format!(
            "{}{}",
            TicketBuilder::unique_prefix("abcdefgh", u64::MAX).unwrap(),
            tag_strategy(usize::MAX, &format!("ibf-{}", u64::MAX))
        );
        assert!(longest.len() <= MAX_COID_LEN, "{longest}");
        assert!(CoidParts::parse(&longest).is_some());
        for bad in ["", "UPPER", "has.dot", "toolongid", "a-b"] {
            assert!(TicketBuilder::unique_prefix(bad, 1).is_err(), "{bad}");
        }
        for other in ["Order123", "s6k2o0-ibf-1", "a.b.c.d", "bot.0000000.1.x"] {
            assert_eq!(CoidParts::parse(other), None, "{other}");
        }
        let builder = TicketBuilder {
            account: "U1".into(),
            coid_prefix: a.clone(),
            ext_operator: "x".into(),
        };
        assert_eq!(builder.bot_prefix(), "k3x9.");
        let legacy = TicketBuilder {
            coid_prefix: "e2e-".into(),
            ..builder
        };
        assert_eq!(legacy.bot_prefix(), "e2e-");
    }
}
