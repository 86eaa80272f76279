//! Cash, positions and equity, updated from executions and marked to the
//! latest price. Shared by backtest and live so that both report PnL the same
//! way.

// Prices, quantities and cash here come from files, flags and the network:
// every operator on them is checked (issue 12). Where one cannot overflow,
// an `allow` with its reason says why.
#![deny(clippy::arithmetic_side_effects)]

use rust_decimal::Decimal;
use serde::Serialize;

use crate::model::{Conid, Execution, Position};

#[derive(Debug, Clone)]
struct Slot {
    position: Position,
    mark: Option<Decimal>,
    /// quantity * mark * multiplier, kept so equity is O(1) per price update.
    market_value: Decimal,
    /// quantity * multiplier, so a mark is one multiplication.
    units: Decimal,
}

/// Account state as seen by the engine.
///
/// Positions live in a small vector: a strategy trades a handful of
/// contracts, and a linear scan over a few entries beats hashing on the
/// per-bar path.
#[derive(Debug, Clone)]
pub struct Portfolio {
    cash: Decimal,
    initial_cash: Decimal,
    commissions: Decimal,
    realized: Decimal,
    /// Cash plus every slot's market value, maintained incrementally so that
    /// reading equity (once per timestamp) costs nothing.
    equity: Decimal,
    slots: Vec<Slot>,
}

/// A point-in-time copy of the account totals, for reports and the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AccountSnapshot {
    /// Cash after every fill and commission.
    pub cash: Decimal,
    /// Cash plus positions at their latest marks.
    pub equity: Decimal,
    /// PnL realized by closing fills since the start, before commission.
    pub realized_pnl: Decimal,
    /// Open positions at their latest marks against their average cost;
    /// positions never marked count zero.
    pub unrealized_pnl: Decimal,
    /// Total commission paid since the start, as a positive cost.
    pub commissions: Decimal,
}

/// Why an account's report cannot become a portfolio.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// A position's value is beyond what can be accounted for exactly.
    #[error("position in {0}: value out of range")]
    OutOfRange(Conid),
    /// The same contract was reported twice.
    #[error("position in {0} reported twice")]
    Duplicate(Conid),
}

impl Portfolio {
    /// A flat account holding `cash` (the backtest's starting balance):
    /// no positions, equity equal to cash.
    pub fn new(cash: Decimal) -> Self {
        Portfolio {
            cash,
            initial_cash: cash,
            commissions: Decimal::ZERO,
            realized: Decimal::ZERO,
            equity: cash,
            slots: Vec::new(),
        }
    }

    /// The account a venue reports: `cash`, and each position at its
    /// average cost, marked at the given price (its average cost when
    /// none). A restarted engine starts from what the account holds, not
    /// from an invented balance. Fails on a value too large to account
    /// for (a position's value beyond `Decimal`'s range).
    pub fn from_account(
        cash: Decimal,
        positions: impl IntoIterator<Item = (Position, Option<Decimal>)>,
    ) -> Result<Self, AccountError> {
        let mut p = Portfolio::new(cash);
        for (position, mark) in positions {
            let conid = position.conid;
            let price = mark.unwrap_or(position.avg_price);
            let units = position
                .quantity
                .checked_mul(position.multiplier)
                .ok_or(AccountError::OutOfRange(conid))?;
            let value = units
                .checked_mul(price)
                .ok_or(AccountError::OutOfRange(conid))?;
            let equity = p
                .equity
                .checked_add(value)
                .ok_or(AccountError::OutOfRange(conid))?;
            let slot = p.slot_mut(conid);
            if !slot.position.quantity.is_zero() {
                return Err(AccountError::Duplicate(conid));
            }
            slot.position = position;
            slot.units = units;
            slot.mark = Some(price);
            slot.market_value = value;
            p.equity = equity;
        }
        Ok(p)
    }

    /// Cash in the account currency: the starting cash, less what fills
    /// bought, plus what they sold, less commissions. May go negative
    /// (margin); risk limits, not the portfolio, stop that.
    pub fn cash(&self) -> Decimal {
        self.cash
    }

    /// The cash the portfolio started with, for returns and reports.
    pub fn initial_cash(&self) -> Decimal {
        self.initial_cash
    }

    /// Cash plus every position marked at its latest price.
    pub fn equity(&self) -> Decimal {
        self.equity
    }

    /// Realized PnL of every contract since the start, multiplier
    /// included, commissions excluded (see [`Self::commissions`]).
    pub fn realized_pnl(&self) -> Decimal {
        self.realized
    }

    /// Total commission paid since the start, as a positive number.
    pub fn commissions(&self) -> Decimal {
        self.commissions
    }

    /// The position in `conid`, possibly flat; `None` when the contract
    /// has never traded or been marked.
    pub fn position(&self, conid: Conid) -> Option<&Position> {
        self.slots
            .iter()
            .find(|s| s.position.conid == conid)
            .map(|s| &s.position)
    }

    /// Signed quantity held in `conid` (zero when none).
    pub fn quantity(&self, conid: Conid) -> Decimal {
        self.position(conid)
            .map(|p| p.quantity)
            .unwrap_or(Decimal::ZERO)
    }

    /// Every contract the portfolio knows, flat ones included (a contract
    /// that was only marked, or was closed): filter with
    /// [`Position::is_flat`] for holdings.
    pub fn positions(&self) -> impl Iterator<Item = &Position> {
        self.slots.iter().map(|s| &s.position)
    }

    /// Latest price of `conid` (bar close, quote, fill or account report);
    /// `None` before the first one. Risk uses it to value new orders.
    pub fn mark_price(&self, conid: Conid) -> Option<Decimal> {
        self.slots
            .iter()
            .find(|s| s.position.conid == conid)
            .and_then(|s| s.mark)
    }

    /// Register the multiplier of a contract before it trades (default 1).
    /// A multiplier that cannot value the position held is logged and
    /// ignored.
    pub fn set_multiplier(&mut self, conid: Conid, multiplier: Decimal) {
        let slot = self.slot_mut(conid);
        match slot.position.quantity.checked_mul(multiplier) {
            Some(units) => {
                slot.position.multiplier = multiplier;
                slot.units = units;
            }
            None => overflow(conid, "multiplier", multiplier),
        }
    }

    fn slot_mut(&mut self, conid: Conid) -> &mut Slot {
        let idx = match self.slots.iter().position(|s| s.position.conid == conid) {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    position: Position::flat(conid, Decimal::ONE),
                    mark: None,
                    market_value: Decimal::ZERO,
                    units: Decimal::ZERO,
                });
                #[allow(clippy::arithmetic_side_effects, reason = "just pushed: len >= 1")]
                let last = self.slots.len() - 1;
                last
            }
        };
        &mut self.slots[idx]
    }

    /// Record the latest price of `conid`. Hot path: one lookup, and a
    /// multiplication only when a position is open.
    #[inline(always)]
    pub fn mark(&mut self, conid: Conid, price: Decimal) {
        let i = match self.slots.iter().position(|s| s.position.conid == conid) {
            Some(i) => i,
            // First price of a contract: remember it (risk checks need the
            // last price even without a position).
            None => {
                self.slot_mut(conid);
                #[allow(clippy::arithmetic_side_effects, reason = "just pushed: len >= 1")]
                let last = self.slots.len() - 1;
                last
            }
        };
        let slot = &mut self.slots[i];
        slot.mark = Some(price);
        if !slot.units.is_zero() {
            // Checked: a mark is a price from outside. On overflow the
            // position keeps its last value (and the log says why).
            let Some((mv, equity)) = slot.units.checked_mul(price).and_then(|mv| {
                let equity = self
                    .equity
                    .checked_add(mv.checked_sub(slot.market_value)?)?;
                Some((mv, equity))
            }) else {
                return overflow(conid, "mark", price);
            };
            self.equity = equity;
            slot.market_value = mv;
        }
    }

    /// Apply an execution: cash, position, realized PnL and commission.
    /// Netting (`N`) reports close their side like a sale at the given
    /// price: a ForecastEx YES and NO of one strike together are worth the
    /// payout, and the venue's two `N` reports of a netted pair carry prices
    /// that add up to it ([`crate::forecastex::venue_executions`]), so the
    /// pair's cash comes back and realized PnL is the pair's true PnL.
    ///
    /// Returns the PnL the execution realized. One whose arithmetic
    /// overflows (sizes and prices no venue sends) changes nothing and is
    /// logged; [`Self::checked_apply`] reports it instead.
    pub fn apply(&mut self, exec: &Execution) -> Decimal {
        self.checked_apply(exec).unwrap_or_else(|_| {
            overflow(exec.conid, "execution", exec.price);
            Decimal::ZERO
        })
    }

    /// [`Self::apply`], all or nothing: on an overflow anywhere the
    /// portfolio is left as it was and the error names the contract.
    pub fn checked_apply(&mut self, exec: &Execution) -> Result<Decimal, AccountError> {
        let out_of_range = AccountError::OutOfRange(exec.conid);
        let signed = exec.side.signed(exec.size);
        let slot = self.slot_mut(exec.conid);
        let multiplier = slot.position.multiplier;
        let mut position = slot.position.clone();
        let old_mv = slot.market_value;
        let mut step = || -> Option<_> {
            let realized = position.checked_apply_fill(signed, exec.price)?;
            let units = position.quantity.checked_mul(multiplier)?;
            let mv = units.checked_mul(exec.price)?;
            let flow = signed.checked_mul(exec.price)?.checked_mul(multiplier)?;
            let outflow = flow.checked_add(exec.commission)?;
            let cash = self.cash.checked_sub(outflow)?;
            let equity = self
                .equity
                .checked_add(mv.checked_sub(old_mv)?)?
                .checked_sub(outflow)?;
            let commissions = self.commissions.checked_add(exec.commission)?;
            let total_realized = self.realized.checked_add(realized)?;
            Some((
                realized,
                units,
                mv,
                cash,
                equity,
                commissions,
                total_realized,
            ))
        };
        let (realized, units, mv, cash, equity, commissions, total_realized) =
            step().ok_or(out_of_range)?;
        let slot = self.slot_mut(exec.conid);
        slot.position = position;
        // The fill is the most recent trade we know of: mark at it.
        slot.mark = Some(exec.price);
        slot.units = units;
        slot.market_value = mv;
        self.cash = cash;
        self.equity = equity;
        self.commissions = commissions;
        self.realized = total_realized;
        Ok(realized)
    }

    /// The account totals now, unrealized PnL computed at the latest marks.
    pub fn snapshot(&self) -> AccountSnapshot {
        // Saturating: a report of values beyond range shows the bound
        // rather than failing (the accounting itself never got there).
        let unrealized = self
            .slots
            .iter()
            .filter_map(|s| s.mark.map(|m| s.position.unrealized(m)))
            .fold(Decimal::ZERO, Decimal::saturating_add);
        AccountSnapshot {
            cash: self.cash,
            equity: self.equity(),
            realized_pnl: self.realized,
            unrealized_pnl: unrealized,
            commissions: self.commissions,
        }
    }
}

/// An input the accounting cannot represent: logged where it happened,
/// out of line so the per-bar path stays small.
#[cold]
#[inline(never)]
fn overflow(conid: Conid, what: &str, value: Decimal) {
    tracing::error!(%conid, what, %value, "value out of range for the accounting; ignored");
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    reason = "tests work out expected values by hand"
)]
mod tests {
    use super::*;
    use crate::model::{ExecSide, Timestamp};
    use rust_decimal_macros::dec;

    fn exec(side: ExecSide, size: Decimal, price: Decimal, commission: Decimal) -> Execution {
        Execution {
            execution_id: "x".into(),
            order_id: None,
            order_ref: None,
            account: "U1".into(),
            conid: Conid(7),
            side,
            size,
            price,
            commission,
            net_amount: size.saturating_mul(price),
            time: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn equity_is_cash_plus_marked_positions() {
        let mut p = Portfolio::new(dec!(10000));
        p.apply(&exec(ExecSide::Bought, dec!(10), dec!(100), dec!(1)));
        assert_eq!(p.cash(), dec!(8999));
        assert_eq!(p.equity(), dec!(9999));
        p.mark(Conid(7), dec!(110));
        assert_eq!(p.equity(), dec!(10099));
        let r = p.apply(&exec(ExecSide::Sold, dec!(10), dec!(120), dec!(1)));
        assert_eq!(r, dec!(200));
        assert_eq!(p.equity(), p.cash());
        assert_eq!(p.cash(), dec!(10198));
        assert_eq!(p.snapshot().commissions, dec!(2));
    }

    /// An execution no venue sends (a size whose value leaves `Decimal`'s
    /// range) is refused whole: cash, equity and the position stay as
    /// they were, and nothing panics; marks beyond range keep the last
    /// value.
    #[test]
    fn an_execution_beyond_range_changes_nothing() {
        let mut p = Portfolio::new(dec!(10000));
        p.apply(&exec(ExecSide::Bought, dec!(10), dec!(100), dec!(1)));
        let before = p.clone();
        let huge = exec(ExecSide::Bought, Decimal::MAX, dec!(100), dec!(1));
        assert_eq!(
            p.checked_apply(&huge),
            Err(AccountError::OutOfRange(Conid(7)))
        );
        assert_eq!(p.apply(&huge), Decimal::ZERO);
        assert_eq!(p.snapshot(), before.snapshot());
        assert_eq!(p.position(Conid(7)), before.position(Conid(7)));
        p.mark(Conid(7), Decimal::MAX);
        assert_eq!(p.equity(), before.equity());
        p.mark(Conid(7), dec!(110));
        assert_eq!(p.equity(), dec!(10099));
    }

    /// Long 100 YES at 0.50; buy 10 NO at 0.40; the venue nets 10 YES at
    /// 0.60 and 10 NO at 0.40: the pair's 1.00 each comes back as cash and
    /// the realized PnL is +1.00 (10 YES bought at 0.50, worth 0.60).
    #[test]
    fn netting_a_forecastex_pair_releases_its_payout() {
        let (yes, no) = (Conid(1), Conid(2));
        let on = |conid, side, size, price| Execution {
            conid,
            ..exec(side, size, price, Decimal::ZERO)
        };
        let mut p = Portfolio::new(dec!(1000));
        p.apply(&on(yes, ExecSide::Bought, dec!(100), dec!(0.50)));
        p.apply(&on(no, ExecSide::Bought, dec!(10), dec!(0.40)));
        assert_eq!(p.cash(), dec!(946));
        p.apply(&on(yes, ExecSide::Netting, dec!(10), dec!(0.60)));
        p.apply(&on(no, ExecSide::Netting, dec!(10), dec!(0.40)));
        assert_eq!(p.cash(), dec!(956));
        assert_eq!(p.quantity(yes), dec!(90));
        assert_eq!(p.quantity(no), dec!(0));
        assert_eq!(p.snapshot().realized_pnl, dec!(1.00));
        // 90 YES marked at the implied 0.60.
        assert_eq!(p.equity(), dec!(1010));
    }
}
