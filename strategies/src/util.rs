//! Small helpers shared by the strategies.

use engine::registry::RegistryError;
use rust_decimal::{Decimal, RoundingStrategy};

/// `value` of parameter `name` must be positive and at most `max`; the
/// bounds of `engine::limits` keep what a strategy computes from its
/// parameters and prices inside `Decimal`'s range.
pub(crate) fn bounded(
    strategy: &str,
    name: &'static str,
    value: Decimal,
    max: Decimal,
) -> Result<(), RegistryError> {
    engine::limits::positive_at_most(name, value, max)
        .map(|_| ())
        .map_err(|e| bad_params(strategy, e.to_string()))
}

/// A price increment must be at least 1e-8 (finer than any venue's) and at
/// most `engine::limits::MAX_PRICE`, so that `price / tick` of any price
/// the loaders accept stays inside `Decimal`'s range in [`round_to_tick`].
pub(crate) fn tick_in_range(strategy: &str, tick: Decimal) -> Result<(), RegistryError> {
    bounded(strategy, "tick", tick, engine::limits::MAX_PRICE)?;
    if tick < Decimal::new(1, 8) {
        return Err(bad_params(
            strategy,
            format!("tick must be at least 0.00000001, got {tick}"),
        ));
    }
    Ok(())
}

/// A `BadParams` error for `strategy`.
pub(crate) fn bad_params(strategy: &str, message: impl Into<String>) -> RegistryError {
    RegistryError::BadParams {
        strategy: strategy.to_owned(),
        message: message.into(),
    }
}

/// Round `price` to the nearest multiple of `tick` (half away from zero).
///
/// Exits computed as a percentage of a price, or from an average, fall
/// between ticks, and venues refuse or adjust prices off the contract's grid;
/// rounding here keeps what the strategy asked for and what the venue works
/// identical. `tick` must be positive (the strategies validate it).
pub(crate) fn round_to_tick(price: Decimal, tick: Decimal) -> Decimal {
    (price / tick).round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero) * tick
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn rounds_to_nearest_tick() {
        assert_eq!(round_to_tick(dec!(114.4104), dec!(0.01)), dec!(114.41));
        assert_eq!(round_to_tick(dec!(10.005), dec!(0.01)), dec!(10.01));
        assert_eq!(round_to_tick(dec!(10.12), dec!(0.25)), dec!(10.00));
        assert_eq!(round_to_tick(dec!(10.13), dec!(0.25)), dec!(10.25));
    }
}
