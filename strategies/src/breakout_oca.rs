//! `breakout_oca`: trade a break of the recent range in either direction,
//! whichever comes first.
//!
//! Rule, per contract, evaluated at each bar close:
//!
//! * Keep the highest high and the lowest low of the last `lookback` bars,
//!   the bar that just closed included: these are the levels the *next* bars
//!   have to break. Nothing happens before `lookback` bars were seen.
//! * When the account is flat in the contract and none of the orders this
//!   strategy placed in it is still working, place one OCA group of two
//!   DAY stop entries, `size` each, with GTC exits:
//!   - buy stop at `high + tick`, with a sell take-profit limit at
//!     `entry * (1 + take_profit_pct / 100)` and a sell stop-loss at
//!     `entry * (1 - stop_loss_pct / 100)`;
//!   - sell stop at `low - tick`, with a buy take-profit limit at
//!     `entry * (1 - take_profit_pct / 100)` and a buy stop-loss at
//!     `entry * (1 + stop_loss_pct / 100)`.
//!
//!   Exit prices are rounded to the nearest multiple of `tick`. The sell leg
//!   is left out when its entry or take-profit would not be a positive price
//!   (a contract trading within a few ticks of zero).
//! * The first entry to trigger cancels the other entry and its exits (OCA);
//!   its own exits then work as a bracket. Because the entries are DAY, an
//!   untriggered pair expires at the session close, and the strategy places
//!   a new pair at the levels of the first bar close after the venue reports
//!   the expiry.
//!
//! Live, the engine warms the range up on the last `lookback` bars of each
//! contract ([`Strategy::warmup_bars`]), so the first live bar can place the
//! pair; warm-up bars only update the range.
//!
//! "Working" is known from the ids the strategy placed and the order updates
//! it receives (see [`OrderTracker`]), not from the order book alone: the
//! book learns of an order only when the venue acknowledges it, which would
//! leave a window for placing the same pair twice.

use engine::model::{Bar, Conid, Order, Side, Tif};
use engine::registry::{typed, Params, RegistryError};
use engine::strategy::{Context, Exits, OrderSpec, Strategy};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::indicators::{Highest, Lowest};
use crate::per_conid::PerConid;
use crate::tracker::OrderTracker;
use crate::util::{bad_params, bounded, round_to_tick, tick_in_range};
use engine::limits::MAX_QUANTITY;

/// Registry name.
pub const NAME: &str = "breakout_oca";
/// Registry description.
pub const DESCRIPTION: &str =
    "OCA pair of DAY stop entries one tick outside the N-bar range, each bracketed by GTC take-profit and stop-loss";

/// Parameters of [`BreakoutOca`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakoutOcaParams {
    /// Bars in the range whose break is traded.
    pub lookback: usize,
    /// Quantity of each entry.
    pub size: Decimal,
    /// Take-profit distance from the entry price, in percent.
    pub take_profit_pct: Decimal,
    /// Stop-loss distance from the entry price, in percent.
    pub stop_loss_pct: Decimal,
    /// Price increment: entries sit one tick outside the range, exits are
    /// rounded to it.
    pub tick: Decimal,
}

impl Default for BreakoutOcaParams {
    fn default() -> Self {
        BreakoutOcaParams {
            lookback: 20,
            size: Decimal::ONE_HUNDRED,
            take_profit_pct: Decimal::from(4),
            stop_loss_pct: Decimal::TWO,
            tick: Decimal::new(1, 2),
        }
    }
}

impl BreakoutOcaParams {
    /// Refuse parameters the rule cannot trade: `lookback`, `size` and
    /// `tick` must be positive, and both percentages strictly between 0 and
    /// 100 (so every exit price stays positive).
    pub fn validate(&self) -> Result<(), RegistryError> {
        if self.lookback == 0 {
            return Err(bad_params(NAME, "lookback must be at least 1"));
        }
        bounded(NAME, "size", self.size, MAX_QUANTITY)?;
        tick_in_range(NAME, self.tick)?;
        // Below 100% so the short leg's take-profit and the long leg's
        // stop-loss stay positive prices.
        for (name, v) in [
            ("take_profit_pct", self.take_profit_pct),
            ("stop_loss_pct", self.stop_loss_pct),
        ] {
            if v <= Decimal::ZERO || v >= Decimal::ONE_HUNDRED {
                return Err(bad_params(
                    NAME,
                    format!("{name} must be between 0 and 100 (exclusive), got {v}"),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Track {
    high: Highest,
    low: Lowest,
    working: OrderTracker,
}

/// The `breakout_oca` strategy; see the module documentation for the rule.
#[derive(Debug, Clone)]
pub struct BreakoutOca {
    params: BreakoutOcaParams,
    /// `1 + tp/100`, `1 - sl/100`, `1 - tp/100`, `1 + sl/100`, computed once.
    long_tp: Decimal,
    long_sl: Decimal,
    short_tp: Decimal,
    short_sl: Decimal,
    tracks: PerConid<Track>,
}

impl BreakoutOca {
    /// Build the strategy; fails when [`BreakoutOcaParams::validate`] does.
    pub fn new(params: BreakoutOcaParams) -> Result<Self, RegistryError> {
        params.validate()?;
        let err = |e: crate::indicators::BadPeriod| bad_params(NAME, format!("lookback: {e}"));
        let template = Track {
            high: Highest::new(params.lookback).map_err(err)?,
            low: Lowest::new(params.lookback).map_err(err)?,
            working: OrderTracker::new(),
        };
        let tp = params.take_profit_pct / Decimal::ONE_HUNDRED;
        let sl = params.stop_loss_pct / Decimal::ONE_HUNDRED;
        Ok(BreakoutOca {
            long_tp: Decimal::ONE + tp,
            long_sl: Decimal::ONE - sl,
            short_tp: Decimal::ONE - tp,
            short_sl: Decimal::ONE + sl,
            params,
            tracks: PerConid::new(template),
        })
    }

    /// Build from untyped parameters (a config section or `--param`s):
    /// missing keys take their defaults, unknown keys are refused.
    pub fn from_params(params: &Params) -> Result<Self, RegistryError> {
        Self::new(typed(NAME, params)?)
    }

    /// The validated parameters the strategy runs with.
    pub fn params(&self) -> &BreakoutOcaParams {
        &self.params
    }

    /// Orders this strategy placed in `conid` that are still working.
    pub fn working(&self, conid: Conid) -> &[engine::model::OrderId] {
        self.tracks
            .get(conid)
            .map(|t| t.working.ids())
            .unwrap_or(&[])
    }

    /// The OCA legs for a range `[low, high]`.
    fn legs(&self, conid: Conid, high: Decimal, low: Decimal) -> Vec<(OrderSpec, Exits)> {
        let p = &self.params;
        let mut legs = Vec::with_capacity(2);
        let buy = high + p.tick;
        legs.push((
            OrderSpec::stop(conid, Side::Buy, p.size, buy).tif(Tif::Day),
            Exits {
                take_profit: Some(round_to_tick(buy * self.long_tp, p.tick)),
                stop_loss: Some(round_to_tick(buy * self.long_sl, p.tick)),
            },
        ));
        let sell = low - p.tick;
        let sell_tp = round_to_tick(sell * self.short_tp, p.tick);
        if sell > Decimal::ZERO && sell_tp > Decimal::ZERO {
            legs.push((
                OrderSpec::stop(conid, Side::Sell, p.size, sell).tif(Tif::Day),
                Exits {
                    take_profit: Some(sell_tp),
                    stop_loss: Some(round_to_tick(sell * self.short_sl, p.tick)),
                },
            ));
        }
        legs
    }
}

/// Registry factory.
pub fn factory(params: &Params) -> Result<Box<dyn Strategy>, RegistryError> {
    Ok(Box::new(BreakoutOca::from_params(params)?))
}

impl Strategy for BreakoutOca {
    fn name(&self) -> &str {
        NAME
    }

    /// `lookback` bars: the range is known at the first live bar.
    fn warmup_bars(&self) -> usize {
        self.params.lookback
    }

    fn on_bar(&mut self, ctx: &mut Context<'_>, bar: &Bar) {
        let i = self.tracks.slot(bar.conid);
        let t = &mut self.tracks[i];
        t.high.update(bar.high);
        t.low.update(bar.low);
        // History builds the range; only live bars place orders.
        if ctx.is_warming_up() {
            return;
        }
        let (Some(high), Some(low)) = (t.high.value(), t.low.value()) else {
            return;
        };
        if !t.working.is_empty() || !ctx.position(bar.conid).is_zero() {
            return;
        }
        let legs = self.legs(bar.conid, high, low);
        let placed = ctx.oca(legs);
        let t = &mut self.tracks[i];
        for ids in &placed {
            t.working.track_bracket(ids);
        }
    }

    fn on_order_update(&mut self, _ctx: &mut Context<'_>, order: &Order) {
        if let Some(t) = self.tracks.get_mut(order.request.conid) {
            t.working.on_update(order);
        }
    }
}
