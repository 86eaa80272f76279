use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::order::UnknownValue;
use super::{Conid, OrderId, Timestamp};

/// Execution side as reported in trades: bought, sold, or a ForecastEx
/// netting report (`N`) that reduces a position without a trade of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExecSide {
    Bought,
    Sold,
    Netting,
}

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

    pub fn as_wire(self) -> &'static str {
        match self {
            ExecSide::Bought => "B",
            ExecSide::Sold => "S",
            ExecSide::Netting => "N",
        }
    }
}

impl std::str::FromStr for ExecSide {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "B" | "BOT" | "Buy" | "BUY" => Ok(ExecSide::Bought),
            "S" | "SLD" | "Sell" | "SELL" => Ok(ExecSide::Sold),
            "N" => Ok(ExecSide::Netting),
            _ => Err(UnknownValue {
                kind: "execution side",
                value: s.to_owned(),
            }),
        }
    }
}

impl Serialize for ExecSide {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_wire())
    }
}

impl<'de> Deserialize<'de> for ExecSide {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
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
