use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Conid, Timestamp};

/// One OHLCV bar. `time` is the bar's start, as IBKR stamps history bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bar {
    pub conid: Conid,
    pub time: Timestamp,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
}

impl Bar {
    /// True when the prices describe a possible bar: low <= open, close <= high.
    /// Data loaders reject bars that fail this, so the exchange never fills
    /// outside a range that cannot exist.
    pub fn is_consistent(&self) -> bool {
        self.low <= self.high
            && self.low <= self.open
            && self.open <= self.high
            && self.low <= self.close
            && self.close <= self.high
            && !self.volume.is_sign_negative()
    }
}

/// Top of book and last trade for one contract. Fields the venue has not sent
/// yet are `None`; a websocket `smd` delta updates only what changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub conid: Conid,
    pub time: Option<Timestamp>,
    pub bid: Option<Decimal>,
    pub ask: Option<Decimal>,
    pub last: Option<Decimal>,
    pub bid_size: Option<Decimal>,
    pub ask_size: Option<Decimal>,
    pub last_size: Option<Decimal>,
    pub volume: Option<Decimal>,
}

impl Quote {
    /// Mid price when both sides are present.
    pub fn mid(&self) -> Option<Decimal> {
        match (self.bid, self.ask) {
            (Some(b), Some(a)) => Some((b + a) / Decimal::TWO),
            _ => None,
        }
    }
}
