//! A position in one contract: quantity, average cost, realized PnL.

// Fills come from the venue: every operator on them is checked (issue 12).
#![deny(clippy::arithmetic_side_effects)]

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::Conid;

/// A signed position in one contract with its average cost and the PnL it has
/// realized so far. Quantities are signed: negative is short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Contract held.
    pub conid: Conid,
    /// Units held: positive long, negative short, zero flat.
    pub quantity: Decimal,
    /// Average price paid per unit of the open quantity (per share, not per
    /// contract multiplier).
    pub avg_price: Decimal,
    /// PnL realized by closing fills so far, in the contract currency,
    /// multiplier included and commission excluded.
    pub realized_pnl: Decimal,
    /// The contract's multiplier, copied here so PnL needs no contract
    /// lookup; 1 for stocks.
    pub multiplier: Decimal,
}

impl Position {
    /// An empty position: zero quantity, average price and realized PnL.
    pub fn flat(conid: Conid, multiplier: Decimal) -> Self {
        Position {
            conid,
            quantity: Decimal::ZERO,
            avg_price: Decimal::ZERO,
            realized_pnl: Decimal::ZERO,
            multiplier,
        }
    }

    /// True when nothing is held (quantity exactly zero), whatever PnL it
    /// realized before.
    pub fn is_flat(&self) -> bool {
        self.quantity.is_zero()
    }

    /// Apply a fill of `signed_qty` (positive buys) at `price`; returns the PnL
    /// this fill realized (before commission). Average cost only changes when
    /// the position grows; a fill through zero realizes the closed part and
    /// opens the remainder at the fill price.
    ///
    /// An arithmetic overflow (numbers no venue sends) leaves the position
    /// as it was, is logged, and realizes nothing; [`Self::checked_apply_fill`]
    /// reports it instead.
    pub fn apply_fill(&mut self, signed_qty: Decimal, price: Decimal) -> Decimal {
        self.checked_apply_fill(signed_qty, price).unwrap_or_else(|| {
            tracing::error!(conid = %self.conid, %signed_qty, %price, "fill overflows the position arithmetic; ignored");
            Decimal::ZERO
        })
    }

    /// [`Self::apply_fill`] with checked arithmetic: `None` on overflow, and
    /// then the position is unchanged.
    pub fn checked_apply_fill(&mut self, signed_qty: Decimal, price: Decimal) -> Option<Decimal> {
        let old = self.quantity;
        let new = old.checked_add(signed_qty)?;
        let mut avg = self.avg_price;
        let mut realized = Decimal::ZERO;
        if old.is_zero() || old.is_sign_positive() == signed_qty.is_sign_positive() {
            // Opening or adding.
            let cost = avg
                .checked_mul(old.abs())?
                .checked_add(price.checked_mul(signed_qty.abs())?)?;
            avg = cost.checked_div(new.abs())?;
        } else {
            // Reducing, closing or flipping.
            let closed = signed_qty.abs().min(old.abs());
            let per_unit = if old.is_sign_positive() {
                price.checked_sub(avg)?
            } else {
                avg.checked_sub(price)?
            };
            realized = per_unit.checked_mul(closed)?.checked_mul(self.multiplier)?;
            if new.is_zero() {
                avg = Decimal::ZERO;
            } else if new.is_sign_positive() != old.is_sign_positive() {
                avg = price;
            }
        }
        let total = self.realized_pnl.checked_add(realized)?;
        self.quantity = new;
        self.avg_price = avg;
        self.realized_pnl = total;
        Some(realized)
    }

    /// Unrealized PnL at `mark`.
    ///
    /// Saturates at `Decimal`'s bounds instead of overflowing: a report
    /// must not fail on a mark no venue sends.
    pub fn unrealized(&self, mark: Decimal) -> Decimal {
        mark.saturating_sub(self.avg_price)
            .saturating_mul(self.quantity)
            .saturating_mul(self.multiplier)
    }
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
    fn open_add_reduce_flip() {
        let mut p = Position::flat(Conid(1), Decimal::ONE);
        assert_eq!(p.apply_fill(dec!(10), dec!(100)), dec!(0));
        assert_eq!(p.apply_fill(dec!(10), dec!(110)), dec!(0));
        assert_eq!(p.avg_price, dec!(105));
        assert_eq!(p.apply_fill(dec!(-5), dec!(115)), dec!(50));
        assert_eq!(p.quantity, dec!(15));
        assert_eq!(p.avg_price, dec!(105));
        // Flip to short 5 at 100: realize (100-105)*15 = -75.
        assert_eq!(p.apply_fill(dec!(-20), dec!(100)), dec!(-75));
        assert_eq!(p.quantity, dec!(-5));
        assert_eq!(p.avg_price, dec!(100));
        assert_eq!(p.unrealized(dec!(90)), dec!(50));
        assert_eq!(p.realized_pnl, dec!(-25));
    }
}
