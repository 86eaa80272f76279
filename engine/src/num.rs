//! Small exact helpers for `Decimal` on the per-bar path.

use std::cmp::Ordering;

use rust_decimal::Decimal;

/// Exact ordering of two decimals. When the scales agree, which is the usual
/// case for prices and equity of one run, it is an integer comparison of the
/// mantissas; otherwise the general (scale-aligning) comparison.
#[inline]
pub fn cmp(a: Decimal, b: Decimal) -> Ordering {
    if a.scale() == b.scale() {
        a.mantissa().cmp(&b.mantissa())
    } else {
        a.cmp(&b)
    }
}

/// `a > b`, exactly; see [`cmp`].
#[inline]
pub fn gt(a: Decimal, b: Decimal) -> bool {
    cmp(a, b) == Ordering::Greater
}

/// `a < b`, exactly; see [`cmp`].
#[inline]
pub fn lt(a: Decimal, b: Decimal) -> bool {
    cmp(a, b) == Ordering::Less
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn agrees_with_decimal_ordering(am in -1_000_000_000i64..1_000_000_000, ascale in 0u32..8,
                                        bm in -1_000_000_000i64..1_000_000_000, bscale in 0u32..8) {
            let a = Decimal::new(am, ascale);
            let b = Decimal::new(bm, bscale);
            prop_assert_eq!(cmp(a, b), a.cmp(&b));
            prop_assert_eq!(cmp(a, a), Ordering::Equal);
        }
    }

    #[test]
    fn negative_zero_equals_zero() {
        let nz = Decimal::new(-0, 2) * Decimal::NEGATIVE_ONE;
        assert_eq!(cmp(nz, Decimal::new(0, 2)), Ordering::Equal);
    }
}
