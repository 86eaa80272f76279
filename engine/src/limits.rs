//! How large a price, a quantity or a time from outside may be.
//!
//! `Decimal` holds about 7.9e28 and panics when an operator overflows it.
//! Prices, quantities and times reach the engine from bar files, flags,
//! strategies' parameters and the network; each edge checks them against
//! the bounds here, so that what gets past it cannot overflow the
//! arithmetic behind it:
//!
//! * a price is positive and at most [`MAX_PRICE`] (1e12: a thousand times
//!   the dearest listed share, and far beyond any index or future);
//! * a quantity is positive and at most [`MAX_QUANTITY`] (1e10 shares or
//!   contracts in one order: more than any exchange's order size limit);
//! * so one fill's notional, price × quantity, is at most 1e22, and times a
//!   contract multiplier of up to 1e6 still fits with room for sums.
//!
//! Those bounds are the first line. The accounting behind them still uses
//! checked operations ([`crate::portfolio`]), because sums of many fills,
//! or values that enter without passing an edge, could go further.
//!
//! Assumption, not in the API reference: prices are positive. Instruments
//! whose prices can be zero or negative (calendar spreads, some energy
//! futures in 2020) are not supported by the bar loaders or the order
//! checks; their bars are refused with an error naming the field.

// Prices, quantities and cash here come from files, flags and the network:
// every operator on them is checked (issue 12). Where one cannot overflow,
// an `allow` with its reason says why.
#![deny(clippy::arithmetic_side_effects)]

use chrono::TimeZone;
use rust_decimal::Decimal;

use crate::model::Timestamp;

/// Largest price a bar, an order or a fill may carry.
pub const MAX_PRICE: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0);

/// Largest quantity one order may ask for.
pub const MAX_QUANTITY: Decimal = Decimal::from_parts(0x540B_E400, 0x2, 0, false, 0);

/// Largest volume one bar may report (a thousand times [`MAX_QUANTITY`]:
/// a day of a very liquid market is many orders).
pub const MAX_VOLUME: Decimal = Decimal::from_parts(0x4E72_A000, 0x918, 0, false, 0);

/// A price, quantity or time outside what the engine accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// A value that must be positive was zero or negative.
    #[error("{field} must be positive, got {value}")]
    NotPositive {
        /// Which value (`close`, `quantity`, `limit price`, ...).
        field: &'static str,
        /// What it was.
        value: Decimal,
    },
    /// A value beyond its bound.
    #[error("{field} {value} is beyond the limit of {max}")]
    TooLarge {
        /// Which value.
        field: &'static str,
        /// What it was.
        value: Decimal,
        /// The bound it broke.
        max: Decimal,
    },
    /// A time before 1970 or after 2099.
    #[error("time {0} is outside 1970-01-01 to 2099-12-31")]
    Time(Timestamp),
}

/// `value` when it is a price the engine can trade: positive, at most
/// [`MAX_PRICE`].
pub fn price(field: &'static str, value: Decimal) -> Result<Decimal, LimitError> {
    positive_at_most(field, value, MAX_PRICE)
}

/// `value` when it is an order quantity the engine can trade: positive, at
/// most [`MAX_QUANTITY`].
pub fn quantity(field: &'static str, value: Decimal) -> Result<Decimal, LimitError> {
    positive_at_most(field, value, MAX_QUANTITY)
}

/// `value` when it is positive and at most `max`.
pub fn positive_at_most(
    field: &'static str,
    value: Decimal,
    max: Decimal,
) -> Result<Decimal, LimitError> {
    if value <= Decimal::ZERO {
        return Err(LimitError::NotPositive { field, value });
    }
    at_most(field, value, max)
}

/// `value` when it is at most `max` (zero and below allowed).
pub fn at_most(field: &'static str, value: Decimal, max: Decimal) -> Result<Decimal, LimitError> {
    if value > max {
        return Err(LimitError::TooLarge { field, value, max });
    }
    Ok(value)
}

/// `time` when it lies in 1970 to 2099: market data from before the epoch
/// (a negative epoch value read as 1969) or from the next century is a
/// corrupt field, not history.
pub fn time(time: Timestamp) -> Result<Timestamp, LimitError> {
    let latest = chrono::Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).single();
    if time < Timestamp::UNIX_EPOCH || latest.is_none_or(|l| time >= l) {
        return Err(LimitError::Time(time));
    }
    Ok(time)
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    reason = "tests work out expected values by hand"
)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn the_bounds_are_the_documented_values() {
        assert_eq!(MAX_PRICE, dec!(1_000_000_000_000));
        assert_eq!(MAX_QUANTITY, dec!(10_000_000_000));
        assert_eq!(MAX_VOLUME, dec!(10_000_000_000_000));
        // One fill's notional at the bounds, times a large multiplier, fits
        // with room for a few hundred thousand such sums.
        let notional = MAX_PRICE * MAX_QUANTITY * dec!(1_000_000);
        assert!(notional.checked_mul(dec!(7)).is_some());
    }

    #[test]
    fn prices_and_quantities_outside_the_bounds_are_refused() {
        assert!(price("close", dec!(0.0001)).is_ok());
        assert!(price("close", MAX_PRICE).is_ok());
        assert_eq!(
            price("close", dec!(-50)),
            Err(LimitError::NotPositive {
                field: "close",
                value: dec!(-50)
            })
        );
        assert!(price("close", Decimal::ZERO).is_err());
        let e = quantity("size", dec!(1e27)).unwrap_err().to_string();
        assert!(e.contains("size") && e.contains("10000000000"), "{e}");
    }

    #[test]
    fn times_before_1970_or_after_2099_are_refused() {
        let t = |ms| crate::model::from_epoch_ms(ms).unwrap();
        assert!(time(t(0)).is_ok());
        assert!(time(t(1_702_285_200_000)).is_ok());
        assert_eq!(time(t(-5)), Err(LimitError::Time(t(-5))));
        assert!(time(t(4_102_444_800_000)).is_err()); // 2100-01-01
        assert!(time(t(4_102_444_799_999)).is_ok());
    }
}
