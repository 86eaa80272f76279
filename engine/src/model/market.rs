use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Conid, Timestamp};
use crate::limits;

/// One OHLCV bar. `time` is the bar's start, as IBKR stamps history bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bar {
    /// Contract the bar describes.
    pub conid: Conid,
    /// Start of the bar's interval, UTC; the bar covers `[time, time + period)`.
    pub time: Timestamp,
    /// First trade price of the interval.
    pub open: Decimal,
    /// Highest price of the interval; never below `low`.
    pub high: Decimal,
    /// Lowest price of the interval.
    pub low: Decimal,
    /// Last price of the interval: what strategies usually mark to.
    pub close: Decimal,
    /// Units traded in the interval (shares or contracts); zero when the
    /// source reports none. Never negative in a consistent bar.
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

    /// Every check a bar from outside must pass before anything trades on
    /// it: a time in 1970 to 2099, positive prices within
    /// [`crate::limits::MAX_PRICE`], a volume within
    /// [`crate::limits::MAX_VOLUME`], and [`Self::is_consistent`]. Both bar
    /// loaders (saved history JSON and CSV) call this, so they refuse the
    /// same things.
    pub fn check(&self) -> Result<(), BarError> {
        limits::time(self.time)?;
        for (field, value) in [
            ("open", self.open),
            ("high", self.high),
            ("low", self.low),
            ("close", self.close),
        ] {
            limits::price(field, value)?;
        }
        limits::at_most("volume", self.volume, limits::MAX_VOLUME)?;
        if !self.is_consistent() {
            return Err(BarError::Inconsistent {
                open: self.open,
                high: self.high,
                low: self.low,
                close: self.close,
                volume: self.volume,
            });
        }
        Ok(())
    }
}

/// Why a bar from a file or the network is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BarError {
    /// A price, the volume or the time is out of bounds.
    #[error(transparent)]
    Limit(#[from] limits::LimitError),
    /// The prices describe no possible bar (a high below the low, ...).
    #[error("inconsistent bar o={open} h={high} l={low} c={close} v={volume}")]
    Inconsistent {
        /// Open.
        open: Decimal,
        /// High.
        high: Decimal,
        /// Low.
        low: Decimal,
        /// Close.
        close: Decimal,
        /// Volume.
        volume: Decimal,
    },
}

/// Top of book and last trade for one contract. Fields the venue has not sent
/// yet are `None`; a websocket `smd` delta updates only what changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// Contract quoted.
    pub conid: Conid,
    /// When the venue stamped the update, UTC; `None` when it did not, and
    /// the receiver's clock is used instead.
    pub time: Option<Timestamp>,
    /// Best bid price.
    pub bid: Option<Decimal>,
    /// Best ask (offer) price.
    pub ask: Option<Decimal>,
    /// Last trade price; bars prefer it over the mid.
    pub last: Option<Decimal>,
    /// Units shown at the best bid.
    pub bid_size: Option<Decimal>,
    /// Units shown at the best ask.
    pub ask_size: Option<Decimal>,
    /// Units of the last trade.
    pub last_size: Option<Decimal>,
    /// Cumulative day volume (not per update): bars take the difference
    /// between the first and last value of their interval.
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
