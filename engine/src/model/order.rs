use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Conid, Timestamp};

/// A value the venue sent that this enum does not know. Kept verbatim so the
/// error message shows what actually arrived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} value {value:?}")]
pub struct UnknownValue {
    pub kind: &'static str,
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
        Buy => "BUY",
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
        Market => "MKT",
        Limit => "LMT",
        Stop => "STP",
        StopLimit => "STOP_LIMIT",
        Trail => "TRAIL",
        TrailLimit => "TRAILLMT",
        MidPrice => "MIDPRICE",
    }
);

code_enum!(
    /// Time in force.
    Tif, "time in force" {
        Day => "DAY",
        Gtc => "GTC",
        Ioc => "IOC",
        Opg => "OPG",
    }
);

code_enum!(
    /// Every value of the spec's "Order Status Value" table.
    OrderStatus, "order status" {
        Inactive => "Inactive",
        PendingSubmit => "PendingSubmit",
        PreSubmitted => "PreSubmitted",
        Submitted => "Submitted",
        Filled => "Filled",
        PendingCancel => "PendingCancel",
        Cancelled => "Cancelled",
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
    #[serde(rename = "amt")]
    Amount,
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
    pub amount: Decimal,
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
    pub id: OrderId,
    pub conid: Conid,
    pub side: Side,
    pub order_type: OrderType,
    pub quantity: Decimal,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub trail: Option<Trail>,
    pub tif: Tif,
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
        if self.quantity <= Decimal::ZERO {
            return Err(format!("quantity must be positive, got {}", self.quantity));
        }
        let need = |what: &str, v: Option<Decimal>| match v {
            Some(p) if p > Decimal::ZERO => Ok(()),
            Some(p) => Err(format!("{what} must be positive, got {p}")),
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
                let t = self
                    .trail
                    .ok_or_else(|| format!("{} order needs a trailing amount", self.order_type))?;
                if t.amount <= Decimal::ZERO {
                    return Err(format!(
                        "trailing amount must be positive, got {}",
                        t.amount
                    ));
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
    pub request: OrderRequest,
    /// The venue's order id once acknowledged.
    pub broker_order_id: Option<String>,
    pub status: OrderStatus,
    pub filled_quantity: Decimal,
    pub avg_fill_price: Option<Decimal>,
    /// Why the venue refused or cancelled it, when it did.
    pub reason: Option<String>,
    /// Index of the strategy that owns the order in its engine.
    pub strategy: usize,
    pub created: Timestamp,
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

    pub fn id(&self) -> OrderId {
        self.request.id
    }

    pub fn remaining(&self) -> Decimal {
        self.request.quantity - self.filled_quantity
    }

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
