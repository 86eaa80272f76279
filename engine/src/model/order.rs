use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Conid, Timestamp};
use crate::limits;

/// A value the venue sent that this enum does not know. Kept verbatim so the
/// error message shows what actually arrived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} value {value:?}")]
pub struct UnknownValue {
    /// Which enum refused it, e.g. `order status`.
    pub kind: &'static str,
    /// The text that arrived, verbatim.
    pub value: String,
}

/// Enums with one engine code per variant.
///
/// The code is the engine's own spelling: `Display`, serde (journal, golden
/// files) and the store's TEXT columns use it, and [`from_code`] reads back
/// exactly what [`code`] wrote. It is deliberately not a wire parser: the
/// gateway spells these values differently per endpoint (`LMT`, `Limit`,
/// `LIMIT`...), and every such spelling, in both directions, lives in
/// `cpapi::spelling`.
///
/// [`code`]: OrderType::code
/// [`from_code`]: OrderType::from_code
macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident, $kind:literal { $($(#[$vm:meta])* $variant:ident => $code:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The engine's code of this value (see the module docs).
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            /// The value whose [`code`](Self::code) is exactly `s`.
            pub fn from_code(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($code => Ok($name::$variant),)+
                    _ => Err(UnknownValue { kind: $kind, value: s.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::from_code(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use code_enum;

code_enum!(
    /// Order side.
    Side, "side" {
        /// Buy: opens or adds to a long, reduces a short.
        Buy => "BUY",
        /// Sell: reduces a long, opens or adds to a short.
        Sell => "SELL",
    }
);

impl Side {
    /// +1 for buys, -1 for sells: multiply a quantity by this to sign it.
    pub fn sign(self) -> Decimal {
        match self {
            Side::Buy => Decimal::ONE,
            Side::Sell => Decimal::NEGATIVE_ONE,
        }
    }

    /// The side that closes a position opened on this side: what exits
    /// and bracket children use.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

code_enum!(
    /// The order types the engine trades (the CP Web API's order ticket
    /// types).
    OrderType, "order type" {
        /// Fill now at whatever the market pays; no price fields.
        Market => "MKT",
        /// Fill at `limit_price` or better.
        Limit => "LMT",
        /// Becomes a market order once the market trades through `stop_price`.
        Stop => "STP",
        /// Becomes a limit order at `limit_price` once the market trades
        /// through `stop_price`.
        StopLimit => "STOP_LIMIT",
        /// A stop that follows the market by `trail`, only ever in the
        /// trader's favour.
        Trail => "TRAIL",
        /// A trailing stop that becomes a limit order when triggered; the
        /// limit keeps the initial distance between `stop_price` and
        /// `limit_price`.
        TrailLimit => "TRAILLMT",
        /// IBKR's MidPrice order: pegged to the midpoint, capped by
        /// `limit_price` when one is given.
        MidPrice => "MIDPRICE",
    }
);

code_enum!(
    /// Time in force.
    Tif, "time in force" {
        /// Expires at the end of the trading day if not filled.
        Day => "DAY",
        /// Good till cancelled: works across sessions until filled or
        /// cancelled.
        Gtc => "GTC",
        /// Immediate or cancel: what cannot fill at once is cancelled (the
        /// backtest gives it one bar).
        Ioc => "IOC",
        /// At the opening: takes part in the open auction only, and is
        /// cancelled if it does not fill there.
        Opg => "OPG",
    }
);

code_enum!(
    /// Every value of the spec's "Order Status Value" table.
    OrderStatus, "order status" {
        /// Refused or deactivated by IBKR or the engine (risk, validation,
        /// outside hours); `reason` says why. Terminal.
        Inactive => "Inactive",
        /// Sent, not yet acknowledged by the venue.
        PendingSubmit => "PendingSubmit",
        /// Accepted but held by IBKR: a bracket child waiting for its
        /// parent, or a simulated order not yet triggered.
        PreSubmitted => "PreSubmitted",
        /// Working at the exchange; may be partly filled.
        Submitted => "Submitted",
        /// Completely filled. Terminal.
        Filled => "Filled",
        /// Cancel requested, not yet confirmed; the order can still fill.
        PendingCancel => "PendingCancel",
        /// Cancelled, with any fills before that kept. Terminal.
        Cancelled => "Cancelled",
        /// Working, but IBKR attached a warning to it (e.g. a price far from
        /// the market); treated as live.
        WarnState => "WarnState",
    }
);

impl OrderStatus {
    /// Filled, cancelled and inactive (rejected) orders never change again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Filled | OrderStatus::Cancelled | OrderStatus::Inactive
        )
    }
}

/// Unit of a trailing amount (`trailingType`: `amt` or `%`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrailUnit {
    /// `amount` is a price distance in the contract currency.
    #[serde(rename = "amt")]
    Amount,
    /// `amount` is a percentage of the reference price (`1` means 1%).
    #[serde(rename = "%")]
    Percent,
}

impl TrailUnit {
    /// `trailingType` on the wire (and in the store): `amt` or `%`. The
    /// one spelling both directions use, so it stays with the type.
    pub fn as_wire(self) -> &'static str {
        match self {
            TrailUnit::Amount => "amt",
            TrailUnit::Percent => "%",
        }
    }

    /// The unit spelled `s` (`amt` or `%`, exactly); `None` for anything
    /// else.
    pub fn from_wire(s: &str) -> Option<TrailUnit> {
        match s {
            "amt" => Some(TrailUnit::Amount),
            "%" => Some(TrailUnit::Percent),
            _ => None,
        }
    }
}

/// Trailing distance of a TRAIL / TRAILLMT order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trail {
    /// Distance from the best price seen; positive. Its meaning depends on
    /// `unit`.
    pub amount: Decimal,
    /// Whether `amount` is a price distance or a percentage.
    pub unit: TrailUnit,
}

impl Trail {
    /// Distance from the reference price `extreme`.
    pub fn offset(&self, extreme: Decimal) -> Decimal {
        match self.unit {
            TrailUnit::Amount => self.amount,
            TrailUnit::Percent => extreme * self.amount / Decimal::ONE_HUNDRED,
        }
    }
}

/// Engine-assigned order id, unique within one engine run. The broker's own
/// id and the customer order id (cOID) are kept beside it on [`Order`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(pub u64);

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a strategy asks for: one order, before any venue has seen it.
///
/// Price fields follow the engine's meaning, not the wire's overloaded
/// `price`/`auxPrice`: `limit_price` is always the limit, `stop_price`
/// always the trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    /// Engine id, assigned when the strategy submits.
    pub id: OrderId,
    /// Contract to trade.
    pub conid: Conid,
    /// Buy or sell.
    pub side: Side,
    /// Order type; it decides which price fields are required
    /// (see [`Self::validate`]).
    pub order_type: OrderType,
    /// Total units to trade, unsigned and positive; `side` gives the
    /// direction.
    pub quantity: Decimal,
    /// Limit price for `LMT`, `STOP_LIMIT` and `TRAILLMT`, and the
    /// optional cap of a `MIDPRICE` order; `None` otherwise.
    pub limit_price: Option<Decimal>,
    /// Trigger price for `STP` and `STOP_LIMIT`. For `TRAIL` the
    /// optional initial stop; for `TRAILLMT` the required initial stop.
    pub stop_price: Option<Decimal>,
    /// Trailing distance, required by `TRAIL` and `TRAILLMT` only.
    pub trail: Option<Trail>,
    /// Time in force.
    pub tif: Tif,
    /// `outsideRTH`: allow the order to work in extended hours. Risk then
    /// checks the all-sessions schedule instead of the liquid hours.
    pub outside_rth: bool,
    /// Customer order id (`cOID`). Children of a bracket name their parent's.
    pub client_order_id: String,
    /// `parentId`: the parent's cOID for bracket children.
    pub parent: Option<String>,
    /// OCA group name; orders sharing it cancel each other on the first fill.
    pub oca_group: Option<String>,
}

impl OrderRequest {
    /// Check the fields each order type needs, so that a malformed intent is
    /// refused before it reaches any venue.
    pub fn validate(&self) -> Result<(), String> {
        limits::quantity("quantity", self.quantity).map_err(|e| e.to_string())?;
        // Any price given is checked, even one the order type ignores: it
        // is still stored, journaled and shown.
        for (what, v) in [
            ("limit price", self.limit_price),
            ("stop price", self.stop_price),
            ("trailing amount", self.trail.map(|t| t.amount)),
        ] {
            if let Some(p) = v {
                limits::price(what, p).map_err(|e| e.to_string())?;
            }
        }
        let need = |what: &str, v: Option<Decimal>| match v {
            Some(_) => Ok(()),
            None => Err(format!("{} order needs a {what}", self.order_type)),
        };
        match self.order_type {
            OrderType::Market | OrderType::MidPrice => Ok(()),
            OrderType::Limit => need("limit price", self.limit_price),
            OrderType::Stop => need("stop price", self.stop_price),
            OrderType::StopLimit => {
                need("stop price", self.stop_price)?;
                need("limit price", self.limit_price)
            }
            OrderType::Trail | OrderType::TrailLimit => {
                if self.trail.is_none() {
                    return Err(format!("{} order needs a trailing amount", self.order_type));
                }
                if self.order_type == OrderType::TrailLimit {
                    need("limit price", self.limit_price)?;
                    need("stop price", self.stop_price)?;
                }
                Ok(())
            }
        }
    }
}

/// An order as the engine tracks it: the request plus what the venue said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// What the strategy asked for; modifies change it in place.
    pub request: OrderRequest,
    /// The venue's order id once acknowledged.
    pub broker_order_id: Option<String>,
    /// Last status the venue (or the engine, on a rejection) reported.
    pub status: OrderStatus,
    /// Cumulative units filled so far, unsigned; never shrinks.
    pub filled_quantity: Decimal,
    /// Average price of the fills so far; `None` until the first fill.
    pub avg_fill_price: Option<Decimal>,
    /// Why the venue refused or cancelled it, when it did.
    pub reason: Option<String>,
    /// Index of the strategy that owns the order in its engine.
    pub strategy: usize,
    /// When the engine first tracked the order, UTC; updates keep it.
    pub created: Timestamp,
    /// When the last status or fill arrived, UTC.
    pub updated: Timestamp,
}

impl Order {
    /// An order refused before any venue worked it: status `Inactive` with
    /// the reason, as the strategy sees every rejection.
    pub fn rejected(
        request: OrderRequest,
        strategy: usize,
        now: Timestamp,
        reason: impl Into<String>,
    ) -> Self {
        Order {
            request,
            broker_order_id: None,
            status: OrderStatus::Inactive,
            filled_quantity: Decimal::ZERO,
            avg_fill_price: None,
            reason: Some(reason.into()),
            strategy,
            created: now,
            updated: now,
        }
    }

    /// The engine id, from the request.
    pub fn id(&self) -> OrderId {
        self.request.id
    }

    /// Units still to fill: requested minus filled. Zero once filled;
    /// still positive for a cancelled, partly filled order.
    pub fn remaining(&self) -> Decimal {
        self.request.quantity - self.filled_quantity
    }

    /// True until the status is terminal (filled, cancelled, inactive).
    pub fn is_open(&self) -> bool {
        !self.status.is_terminal()
    }
}

/// Changes to a working order; `None` keeps the current value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrderChanges {
    /// New total quantity.
    pub quantity: Option<Decimal>,
    /// New limit price.
    pub limit_price: Option<Decimal>,
    /// New stop (trigger) price.
    pub stop_price: Option<Decimal>,
}

impl OrderChanges {
    /// Write the given values into `req`, keeping the rest.
    pub fn apply_to(&self, req: &mut OrderRequest) {
        if let Some(q) = self.quantity {
            req.quantity = q;
        }
        if self.limit_price.is_some() {
            req.limit_price = self.limit_price;
        }
        if self.stop_price.is_some() {
            req.stop_price = self.stop_price;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_exactly() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::from_code(s.code()), Ok(*s));
        }
        assert_eq!(OrderStatus::ALL.len(), 8);
        assert!(OrderStatus::from_code("Bogus").is_err());
        // Codes are not a wire parser: other spellings are cpapi's.
        assert!(OrderType::from_code("Limit").is_err());
        assert_eq!(OrderType::TrailLimit.code(), "TRAILLMT");
        assert_eq!(OrderType::ALL.len(), 7);
        assert_eq!(Tif::ALL.len(), 4);
        let json = serde_json::to_string(&OrderType::MidPrice).unwrap();
        assert_eq!(json, "\"MIDPRICE\"");
        let err = serde_json::from_str::<Tif>("\"FOK\"").unwrap_err();
        assert!(err.to_string().contains("FOK"));
        assert_eq!(
            serde_json::from_str::<Side>("\"SELL\"").unwrap(),
            Side::Sell
        );
    }
}
