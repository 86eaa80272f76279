//! `mean_reversion`: buy a close below the lower Bollinger band and aim for
//! the mean.
//!
//! Rule, per contract, evaluated at each bar close:
//!
//! * Update Bollinger bands of the close: middle = SMA of the last `period`
//!   closes, lower = middle - `k` * population standard deviation of those
//!   closes (the bar that just closed included). Nothing happens before
//!   `period` bars were seen.
//! * Enter when all of these hold:
//!   - the account position in the contract is zero,
//!   - none of the orders this strategy placed in the contract is working
//!     (so a market order that has not filled yet is not doubled on the next
//!     bar),
//!   - `close < lower` (strictly: a window of identical closes has zero
//!     width and never triggers).
//! * The entry is a bracket: buy `size` at market, with
//!   - a sell take-profit limit at the middle band, rounded to the nearest
//!     `tick`, and
//!   - a sell stop-loss at `close * (1 - stop_loss_pct / 100)`, rounded to
//!     the nearest `tick`.
//!
//!   All three are GTC: a reversion trade may take several sessions. When
//!   rounding leaves the take-profit at or below the close (a band narrower
//!   than half a tick), or the stop-loss at or above it (a close of a few
//!   ticks), the bracket would make no sense and no order is sent.
//!
//! Live, the engine warms the bands up on the last `period` bars of each
//! contract ([`Strategy::warmup_bars`]), so the first live bar can enter;
//! warm-up bars only update the bands.
//!
//! Exits are fixed when the entry is placed; the strategy does not move them
//! as the bands move. It enters again only after the position is flat and
//! both exits are done.

use engine::model::{Bar, Conid, Order, Side};
use engine::registry::{typed, Params, RegistryError};
use engine::strategy::{Context, Exits, OrderSpec, Strategy};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::indicators::Bollinger;
use crate::per_conid::PerConid;
use crate::tracker::OrderTracker;
use crate::util::{bad_params, bounded, round_to_tick, tick_in_range};
use engine::limits::MAX_QUANTITY;

/// Registry name.
pub const NAME: &str = "mean_reversion";
/// Registry description.
pub const DESCRIPTION: &str =
    "Buy a close below the lower Bollinger band, take profit at the middle band, stop a percent below";

/// Parameters of [`MeanReversion`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeanReversionParams {
    /// Bollinger window in bars.
    pub period: usize,
    /// Band width in standard deviations.
    pub k: Decimal,
    /// Quantity bought per entry.
    pub size: Decimal,
    /// Stop-loss distance below the entry bar's close, in percent.
    pub stop_loss_pct: Decimal,
    /// Price increment exits are rounded to.
    pub tick: Decimal,
}

impl Default for MeanReversionParams {
    fn default() -> Self {
        MeanReversionParams {
            period: 20,
            k: Decimal::TWO,
            size: Decimal::ONE_HUNDRED,
            stop_loss_pct: Decimal::TWO,
            tick: Decimal::new(1, 2),
        }
    }
}

impl MeanReversionParams {
    /// Refuse parameters the rule cannot trade: `period` of at least 2 (one
    /// close has no spread), positive `k`, `size` and `tick`, and
    /// `stop_loss_pct` strictly between 0 and 100.
    pub fn validate(&self) -> Result<(), RegistryError> {
        // One close has no spread: the band would never open.
        if self.period < 2 {
            return Err(bad_params(
                NAME,
                format!("period must be at least 2, got {}", self.period),
            ));
        }
        // k scales a standard deviation: a thousand of them is no band.
        bounded(NAME, "k", self.k, Decimal::ONE_THOUSAND)?;
        bounded(NAME, "size", self.size, MAX_QUANTITY)?;
        tick_in_range(NAME, self.tick)?;
        if self.stop_loss_pct <= Decimal::ZERO || self.stop_loss_pct >= Decimal::ONE_HUNDRED {
            return Err(bad_params(
                NAME,
                format!(
                    "stop_loss_pct must be between 0 and 100 (exclusive), got {}",
                    self.stop_loss_pct
                ),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Track {
    bands: Bollinger,
    working: OrderTracker,
}

/// The `mean_reversion` strategy; see the module documentation for the rule.
#[derive(Debug, Clone)]
pub struct MeanReversion {
    params: MeanReversionParams,
    /// `1 - stop_loss_pct / 100`.
    stop_factor: Decimal,
    tracks: PerConid<Track>,
}

impl MeanReversion {
    /// Build the strategy; fails when [`MeanReversionParams::validate`] does.
    pub fn new(params: MeanReversionParams) -> Result<Self, RegistryError> {
        params.validate()?;
        let template = Track {
            bands: Bollinger::new(params.period, params.k)
                .map_err(|e| bad_params(NAME, format!("period: {e}")))?,
            working: OrderTracker::new(),
        };
        Ok(MeanReversion {
            stop_factor: Decimal::ONE - params.stop_loss_pct / Decimal::ONE_HUNDRED,
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
    pub fn params(&self) -> &MeanReversionParams {
        &self.params
    }

    /// Orders this strategy placed in `conid` that are still working.
    pub fn working(&self, conid: Conid) -> &[engine::model::OrderId] {
        self.tracks
            .get(conid)
            .map(|t| t.working.ids())
            .unwrap_or(&[])
    }
}

/// Registry factory.
pub fn factory(params: &Params) -> Result<Box<dyn Strategy>, RegistryError> {
    Ok(Box::new(MeanReversion::from_params(params)?))
}

impl Strategy for MeanReversion {
    fn name(&self) -> &str {
        NAME
    }

    /// The Bollinger window, `period` bars: the bands are full at the first
    /// live bar.
    fn warmup_bars(&self) -> usize {
        self.params.period
    }

    fn on_bar(&mut self, ctx: &mut Context<'_>, bar: &Bar) {
        let i = self.tracks.slot(bar.conid);
        let t = &mut self.tracks[i];
        t.bands.update(bar.close);
        // History builds the bands; only live bars trade.
        if ctx.is_warming_up() {
            return;
        }
        if !t.working.is_empty() || !ctx.position(bar.conid).is_zero() {
            return;
        }
        let Some(bands) = t.bands.bands() else {
            return;
        };
        let close = bar.close;
        if close >= bands.lower || close <= Decimal::ZERO {
            return;
        }
        let tick = self.params.tick;
        let take_profit = round_to_tick(bands.middle, tick);
        let stop_loss = round_to_tick(close * self.stop_factor, tick);
        if take_profit <= close || stop_loss >= close || stop_loss <= Decimal::ZERO {
            return;
        }
        let ids = ctx.bracket(
            OrderSpec::market(bar.conid, Side::Buy, self.params.size),
            Exits {
                take_profit: Some(take_profit),
                stop_loss: Some(stop_loss),
            },
        );
        t.working.track_bracket(&ids);
    }

    fn on_order_update(&mut self, _ctx: &mut Context<'_>, order: &Order) {
        if let Some(t) = self.tracks.get_mut(order.request.conid) {
            t.working.on_update(order);
        }
    }
}
