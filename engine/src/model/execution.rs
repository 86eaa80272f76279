use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::order::UnknownValue;
use super::{Conid, OrderId, Timestamp};
use std::fmt;

super::order::code_enum!(
    /// Execution side as reported in trades: bought, sold, or a ForecastEx
    /// netting report (`N`) that reduces a position without a trade of its
    /// own. Codes are the trades' `B`/`S`/`N`; other spellings are
    /// `cpapi::spelling::exec_side`'s.
    ExecSide, "execution side" {
        /// A buy fill: adds to the position.
        Bought => "B",
        /// A sell fill: reduces the position.
        Sold => "S",
        /// A ForecastEx netting report: the venue closed a YES against a NO
        /// of the same strike; it reduces this leg like a sale.
        Netting => "N",
    }
);

impl ExecSide {
    /// How an execution of `size` changes the quantity of its own conid:
    /// `B` adds, `S` and `N` (netting) reduce. Every position in the engine
    /// (portfolio, store, ForecastEx netting, reports) counts it this way.
    #[inline]
    pub fn signed(self, size: Decimal) -> Decimal {
        match self {
            ExecSide::Bought => size,
            ExecSide::Sold | ExecSide::Netting => -size,
        }
    }
}

/// One execution report. `execution_id` is the venue's key and is unique:
/// the store and the bus use it to drop duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    /// The venue's execution id (`execution_id` in CP API trades). Unique:
    /// a report seen twice is the same fill and is counted once.
    pub execution_id: String,
    /// The engine order this fill belongs to, when it is one of ours.
    pub order_id: Option<OrderId>,
    /// `order_ref`: the cOID the order was placed with.
    pub order_ref: Option<String>,
    /// IBKR account id the fill was booked to (e.g. `DU1234567`).
    pub account: String,
    /// Contract filled. For ForecastEx a netting report carries the conid
    /// of the leg it reduces.
    pub conid: Conid,
    /// Bought, sold, or netted; [`ExecSide::signed`] turns `size` into a
    /// position change.
    pub side: ExecSide,
    /// Unsigned size.
    pub size: Decimal,
    /// Fill price per unit, in the contract currency (per share, not times
    /// the multiplier).
    pub price: Decimal,
    /// Commission charged for this fill, as a positive cost in the contract
    /// currency; zero when the venue has not reported it.
    pub commission: Decimal,
    /// Cash effect without commission: size * price * multiplier.
    pub net_amount: Decimal,
    /// When the venue executed the fill, UTC.
    pub time: Timestamp,
}
