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
        Bought => "B",
        Sold => "S",
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
    pub execution_id: String,
    /// The engine order this fill belongs to, when it is one of ours.
    pub order_id: Option<OrderId>,
    /// `order_ref`: the cOID the order was placed with.
    pub order_ref: Option<String>,
    pub account: String,
    pub conid: Conid,
    pub side: ExecSide,
    /// Unsigned size.
    pub size: Decimal,
    pub price: Decimal,
    pub commission: Decimal,
    /// Cash effect without commission: size * price * multiplier.
    pub net_amount: Decimal,
    pub time: Timestamp,
}
