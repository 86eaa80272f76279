//! Round-trip trades built from the stream of fills.
//!
//! Definitions (quoted by the README):
//!
//! * A **trade** is a round trip in one conid: it opens when the position
//!   leaves zero and closes when the position returns to zero. Adding to the
//!   position or reducing it without reaching zero stays inside the trade.
//! * A fill that **flips** the sign of the position (long 10, sell 15) closes
//!   the trade with the part that brings the position to zero (10) and opens
//!   a new trade, at the same time and price, with the remainder (short 5).
//!   The fill's commission is split between the two pro rata by quantity
//!   (10/15 to the closing trade, the rest to the new one, so the two parts
//!   add up exactly to the fill's commission).
//! * `qty` is the total quantity entered (the sum of the absolute sizes of
//!   the fills that opened or added to the position), which is also the total
//!   quantity exited.
//! * `entry_price` / `exit_price` are the volume-weighted average prices of
//!   the entry and the exit fills.
//! * `commission` is the total commission charged to the trade (a positive
//!   number is a cost).
//! * `pnl` is the realized PnL net of the trade's commission:
//!   `(exit_price - entry_price) * qty * multiplier - commission` for a long,
//!   the opposite price difference for a short.
//! * Trades still open when the run finishes are **not** written to
//!   `trades.csv` and not counted in the statistics: their PnL is unrealized
//!   and is already part of the final equity. The summary reports how many
//!   were left open.
//!
//! Memory: only the currently open trade of each conid is kept, in a small
//! vector searched linearly (a strategy trades a handful of contracts).

use engine::model::{Conid, Timestamp};
use rust_decimal::Decimal;
use serde::Serialize;

use super::ReportError;

/// Direction of a round-trip trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TradeSide {
    /// Opened by a buy: the position was positive.
    Long,
    /// Opened by a sell: the position was negative.
    Short,
}

impl TradeSide {
    /// `long` / `short`, as written in `trades.csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            TradeSide::Long => "long",
            TradeSide::Short => "short",
        }
    }

    fn direction(self) -> Decimal {
        match self {
            TradeSide::Long => Decimal::ONE,
            TradeSide::Short => Decimal::NEGATIVE_ONE,
        }
    }
}

/// A completed round trip: one row of `trades.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClosedTrade {
    /// Time of the fill that opened the trade.
    pub entry_time: Timestamp,
    /// Time of the fill that brought the position back to zero (or flipped it).
    pub exit_time: Timestamp,
    /// The contract traded.
    pub conid: Conid,
    /// Long or short.
    pub side: TradeSide,
    /// Total quantity entered (always positive).
    pub qty: Decimal,
    /// VWAP of the entry fills.
    pub entry_price: Decimal,
    /// VWAP of the exit fills.
    pub exit_price: Decimal,
    /// Realized PnL net of `commission`.
    pub pnl: Decimal,
    /// Total commission of the trade.
    pub commission: Decimal,
}

/// The trade currently open in one conid. Sums rather than averages, so the
/// VWAPs are exact until the final division.
#[derive(Debug, Clone, Copy)]
struct OpenTrade {
    side: TradeSide,
    entry_time: Timestamp,
    entry_qty: Decimal,
    entry_notional: Decimal,
    exit_qty: Decimal,
    exit_notional: Decimal,
    commission: Decimal,
}

impl OpenTrade {
    fn new(side: TradeSide, entry_time: Timestamp) -> Self {
        OpenTrade {
            side,
            entry_time,
            entry_qty: Decimal::ZERO,
            entry_notional: Decimal::ZERO,
            exit_qty: Decimal::ZERO,
            exit_notional: Decimal::ZERO,
            commission: Decimal::ZERO,
        }
    }

    /// Absolute size still open.
    fn open_qty(&self) -> Decimal {
        self.entry_qty - self.exit_qty
    }

    fn enter(
        &mut self,
        qty: Decimal,
        price: Decimal,
        commission: Decimal,
    ) -> Result<(), ReportError> {
        self.entry_qty = add(self.entry_qty, qty)?;
        self.entry_notional = add(self.entry_notional, mul(qty, price)?)?;
        self.commission = add(self.commission, commission)?;
        Ok(())
    }

    fn exit(
        &mut self,
        qty: Decimal,
        price: Decimal,
        commission: Decimal,
    ) -> Result<(), ReportError> {
        self.exit_qty = add(self.exit_qty, qty)?;
        self.exit_notional = add(self.exit_notional, mul(qty, price)?)?;
        self.commission = add(self.commission, commission)?;
        Ok(())
    }

    fn close(
        self,
        conid: Conid,
        multiplier: Decimal,
        exit_time: Timestamp,
    ) -> Result<ClosedTrade, ReportError> {
        let gross = mul(
            mul(
                sub(self.exit_notional, self.entry_notional)?,
                self.side.direction(),
            )?,
            multiplier,
        )?;
        Ok(ClosedTrade {
            entry_time: self.entry_time,
            exit_time,
            conid,
            side: self.side,
            qty: self.entry_qty.normalize(),
            entry_price: div(self.entry_notional, self.entry_qty)?.normalize(),
            exit_price: div(self.exit_notional, self.exit_qty)?.normalize(),
            pnl: sub(gross, self.commission)?.normalize(),
            commission: self.commission.normalize(),
        })
    }
}

#[derive(Debug, Clone)]
struct Slot {
    conid: Conid,
    multiplier: Decimal,
    open: Option<OpenTrade>,
}

/// Builds round-trip trades from fills; see the module documentation for
/// the definitions.
#[derive(Debug, Clone, Default)]
pub struct TradeBook {
    slots: Vec<Slot>,
}

impl TradeBook {
    /// No positions and no trades.
    pub fn new() -> Self {
        TradeBook::default()
    }

    fn slot_mut(&mut self, conid: Conid) -> &mut Slot {
        let idx = match self.slots.iter().position(|s| s.conid == conid) {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    conid,
                    multiplier: Decimal::ONE,
                    open: None,
                });
                self.slots.len() - 1
            }
        };
        &mut self.slots[idx]
    }

    /// Contract multiplier of `conid` used for trade PnL (default 1).
    pub fn set_multiplier(&mut self, conid: Conid, multiplier: Decimal) {
        self.slot_mut(conid).multiplier = multiplier;
    }

    /// Signed position of `conid` as seen by the trade book.
    pub fn position(&self, conid: Conid) -> Decimal {
        self.slots
            .iter()
            .find(|s| s.conid == conid)
            .and_then(|s| s.open.as_ref())
            .map(|t| t.open_qty() * t.side.direction())
            .unwrap_or(Decimal::ZERO)
    }

    /// Number of trades currently open (one per conid at most).
    pub fn open_trades(&self) -> usize {
        self.slots.iter().filter(|s| s.open.is_some()).count()
    }

    /// Applies one fill; returns the trade it closed, if any (a fill closes
    /// at most one trade, even when it flips the position).
    pub fn apply(
        &mut self,
        time: Timestamp,
        conid: Conid,
        signed_qty: Decimal,
        price: Decimal,
        commission: Decimal,
    ) -> Result<Option<ClosedTrade>, ReportError> {
        if signed_qty.is_zero() {
            return Err(ReportError::ZeroFill { conid, time });
        }
        let fill_side = if signed_qty.is_sign_positive() {
            TradeSide::Long
        } else {
            TradeSide::Short
        };
        let qty = signed_qty.abs();
        let slot = self.slot_mut(conid);
        let multiplier = slot.multiplier;
        match slot.open.as_mut() {
            None => {
                let mut trade = OpenTrade::new(fill_side, time);
                trade.enter(qty, price, commission)?;
                slot.open = Some(trade);
                Ok(None)
            }
            Some(trade) if trade.side == fill_side => {
                trade.enter(qty, price, commission)?;
                Ok(None)
            }
            Some(trade) => {
                let open_qty = trade.open_qty();
                if qty < open_qty {
                    trade.exit(qty, price, commission)?;
                    return Ok(None);
                }
                if qty == open_qty {
                    trade.exit(qty, price, commission)?;
                    let closed = trade.close(conid, multiplier, time)?;
                    slot.open = None;
                    return Ok(Some(closed));
                }
                // Flip: close with `open_qty`, open the rest the other way.
                let closing_commission = div(mul(commission, open_qty)?, qty)?;
                let opening_commission = sub(commission, closing_commission)?;
                trade.exit(open_qty, price, closing_commission)?;
                let closed = trade.close(conid, multiplier, time)?;
                let mut next = OpenTrade::new(fill_side, time);
                next.enter(qty - open_qty, price, opening_commission)?;
                slot.open = Some(next);
                Ok(Some(closed))
            }
        }
    }
}

fn add(a: Decimal, b: Decimal) -> Result<Decimal, ReportError> {
    a.checked_add(b).ok_or(ReportError::Overflow("trade sum"))
}

fn sub(a: Decimal, b: Decimal) -> Result<Decimal, ReportError> {
    a.checked_sub(b)
        .ok_or(ReportError::Overflow("trade difference"))
}

fn mul(a: Decimal, b: Decimal) -> Result<Decimal, ReportError> {
    a.checked_mul(b)
        .ok_or(ReportError::Overflow("trade product"))
}

fn div(a: Decimal, b: Decimal) -> Result<Decimal, ReportError> {
    a.checked_div(b)
        .ok_or(ReportError::Overflow("trade average"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    fn t(h: u32) -> Timestamp {
        chrono::Utc
            .with_ymd_and_hms(2024, 1, 2, h, 0, 0)
            .single()
            .expect("valid time")
    }

    const C: Conid = Conid(265598);

    #[test]
    fn open_add_partial_exit_close() -> Result<(), ReportError> {
        let mut book = TradeBook::new();
        assert_eq!(book.apply(t(1), C, dec!(10), dec!(100), dec!(1))?, None);
        assert_eq!(book.apply(t(2), C, dec!(10), dec!(110), dec!(1))?, None);
        assert_eq!(book.apply(t(3), C, dec!(-5), dec!(120), dec!(0.5))?, None);
        assert_eq!(book.position(C), dec!(15));
        let closed = book
            .apply(t(4), C, dec!(-15), dec!(100), dec!(1.5))?
            .expect("closed");
        assert_eq!(book.position(C), dec!(0));
        assert_eq!(book.open_trades(), 0);
        assert_eq!(closed.entry_time, t(1));
        assert_eq!(closed.exit_time, t(4));
        assert_eq!(closed.side, TradeSide::Long);
        assert_eq!(closed.qty, dec!(20));
        assert_eq!(closed.entry_price, dec!(105));
        // (5*120 + 15*100) / 20 = 105
        assert_eq!(closed.exit_price, dec!(105));
        assert_eq!(closed.commission, dec!(4));
        // Gross 2100 - 2100 = 0, net -4.
        assert_eq!(closed.pnl, dec!(-4));
        Ok(())
    }

    #[test]
    fn flip_splits_commission_pro_rata() -> Result<(), ReportError> {
        let mut book = TradeBook::new();
        book.apply(t(1), C, dec!(10), dec!(100), dec!(1))?;
        let closed = book
            .apply(t(2), C, dec!(-40), dec!(110), dec!(4))?
            .expect("flip closes");
        assert_eq!(closed.side, TradeSide::Long);
        assert_eq!(closed.qty, dec!(10));
        assert_eq!(closed.commission, dec!(2));
        assert_eq!(closed.pnl, dec!(98));
        assert_eq!(book.position(C), dec!(-30));
        let short = book
            .apply(t(3), C, dec!(30), dec!(105), dec!(0))?
            .expect("closed short");
        assert_eq!(short.side, TradeSide::Short);
        assert_eq!(short.entry_time, t(2));
        assert_eq!(short.qty, dec!(30));
        assert_eq!(short.entry_price, dec!(110));
        assert_eq!(short.exit_price, dec!(105));
        assert_eq!(short.commission, dec!(3));
        assert_eq!(short.pnl, dec!(147));
        Ok(())
    }

    #[test]
    fn uneven_split_adds_up_exactly() -> Result<(), ReportError> {
        let mut book = TradeBook::new();
        book.apply(t(1), C, dec!(1), dec!(10), dec!(0))?;
        let first = book
            .apply(t(2), C, dec!(-3), dec!(10), dec!(1))?
            .expect("flip");
        let second = book
            .apply(t(3), C, dec!(2), dec!(10), dec!(0))?
            .expect("close");
        assert_eq!(first.commission + second.commission, dec!(1));
        Ok(())
    }

    #[test]
    fn multiplier_scales_pnl_and_conids_are_independent() -> Result<(), ReportError> {
        let mut book = TradeBook::new();
        book.set_multiplier(Conid(1), dec!(50));
        book.apply(t(1), Conid(1), dec!(-2), dec!(4000), dec!(2))?;
        book.apply(t(1), Conid(2), dec!(5), dec!(10), dec!(0))?;
        let es = book
            .apply(t(2), Conid(1), dec!(2), dec!(3990), dec!(2))?
            .expect("closed");
        assert_eq!(es.pnl, dec!(996));
        assert_eq!(book.position(Conid(2)), dec!(5));
        assert_eq!(book.open_trades(), 1);
        Ok(())
    }

    #[test]
    fn zero_fill_is_rejected() {
        let mut book = TradeBook::new();
        assert!(matches!(
            book.apply(t(1), C, dec!(0), dec!(1), dec!(0)),
            Err(ReportError::ZeroFill { .. })
        ));
    }
}
