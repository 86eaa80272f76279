//! Small helpers shared by the strategies.

use engine::registry::RegistryError;
use rust_decimal::{Decimal, RoundingStrategy};

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
