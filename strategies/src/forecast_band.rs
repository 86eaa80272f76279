//! `forecast_band`: trade one ForecastEx strike on its YES probability.
//!
//! ForecastEx contracts cannot be sold: a position is closed by buying the
//! other side of the same strike, and the venue nets the two. This strategy
//! shows that round trip with [`Context::buy_event`] and
//! [`Context::exit_event`].
//!
//! Rule, evaluated at each bar close of the strike's YES contract (the
//! strike is the one `conid`, its YES or its NO contract, belongs to):
//!
//! * The engine must know the strike (`Context::event_pair`): a backtest
//!   given `--event-contracts`, or a live run on a gateway listing it.
//!   Without it the strategy places nothing.
//! * Enter when the strike is flat, none of this strategy's orders is
//!   working, and the YES close is at or below `buy_below`: buy `size` YES
//!   with a limit at the close (event contracts trade as limit orders on a
//!   probability price).
//! * Exit when long YES (net), nothing is working, and the YES close is at
//!   or above `take_profit`, or at or below `stop_below` when that is set:
//!   buy the held quantity of NO with a limit at `payout - close` (the NO
//!   price that mirrors the YES close); the venue nets YES against NO.
//!
//! It never holds NO on purpose: a NO position left over (netting not yet
//! reported) only blocks new entries until it is gone.

use engine::forecastex::{NetPosition, Right};
use engine::model::{Bar, Conid, Order};
use engine::registry::{typed, Params, RegistryError};
use engine::strategy::{Context, Strategy};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::tracker::OrderTracker;
use crate::util::{bad_params, bounded};
use engine::limits::MAX_QUANTITY;

/// Registry name.
pub const NAME: &str = "forecast_band";
/// Registry description.
pub const DESCRIPTION: &str =
    "ForecastEx: buy YES at or below a probability, exit by buying NO (netted) at a target or stop";

/// Parameters of [`ForecastBand`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForecastBandParams {
    /// A contract of the strike to trade (its YES or its NO conid).
    /// Default: the YES contract of the simulator's sample HORC strike
    /// (762089343, the spec's example record).
    pub conid: i64,
    /// Enter at a YES close at or below this price.
    pub buy_below: Decimal,
    /// Exit at a YES close at or above this price.
    pub take_profit: Decimal,
    /// Also exit at a YES close at or below this price (off when absent).
    pub stop_below: Option<Decimal>,
    /// Contracts bought per entry.
    pub size: Decimal,
}

impl Default for ForecastBandParams {
    fn default() -> Self {
        ForecastBandParams {
            conid: 762089343,
            buy_below: Decimal::new(40, 2),
            take_profit: Decimal::new(60, 2),
            stop_below: None,
            size: Decimal::TEN,
        }
    }
}

impl ForecastBandParams {
    /// Refuse parameters the rule cannot trade: a positive `conid`, a
    /// positive whole `size`, `0 < buy_below < take_profit`, and when set
    /// `0 < stop_below < buy_below`. Whether the conid names a known strike
    /// is only known at [`Strategy::on_start`].
    pub fn validate(&self) -> Result<(), RegistryError> {
        if self.conid <= 0 {
            return Err(bad_params(
                NAME,
                format!(
                    "conid must be a YES or NO conid of the strike (see `ibflow gateway event-contracts`), got {}",
                    self.conid
                ),
            ));
        }
        bounded(NAME, "size", self.size, MAX_QUANTITY)?;
        if !self.size.fract().is_zero() {
            return Err(bad_params(
                NAME,
                format!("size must be a positive whole number, got {}", self.size),
            ));
        }
        if self.buy_below <= Decimal::ZERO || self.take_profit <= self.buy_below {
            return Err(bad_params(
                NAME,
                format!(
                    "need 0 < buy_below < take_profit, got {} and {}",
                    self.buy_below, self.take_profit
                ),
            ));
        }
        if let Some(stop) = self.stop_below {
            if stop <= Decimal::ZERO || stop >= self.buy_below {
                return Err(bad_params(
                    NAME,
                    format!("stop_below must be between 0 and buy_below, got {stop}"),
                ));
            }
        }
        Ok(())
    }
}

/// The `forecast_band` strategy; see the module documentation for the rule.
#[derive(Debug, Clone)]
pub struct ForecastBand {
    params: ForecastBandParams,
    working: OrderTracker,
}

impl ForecastBand {
    /// Build the strategy; fails when [`ForecastBandParams::validate`] does.
    pub fn new(params: ForecastBandParams) -> Result<Self, RegistryError> {
        params.validate()?;
        Ok(ForecastBand {
            params,
            working: OrderTracker::new(),
        })
    }

    /// Build from untyped parameters (a config section or `--param`s):
    /// missing keys take their defaults, unknown keys are refused.
    pub fn from_params(params: &Params) -> Result<Self, RegistryError> {
        Self::new(typed(NAME, params)?)
    }

    /// The validated parameters the strategy runs with.
    pub fn params(&self) -> &ForecastBandParams {
        &self.params
    }
}

/// Registry factory.
pub fn factory(params: &Params) -> Result<Box<dyn Strategy>, RegistryError> {
    Ok(Box::new(ForecastBand::from_params(params)?))
}

impl Strategy for ForecastBand {
    fn name(&self) -> &str {
        NAME
    }

    // No indicator: `warmup_bars` stays 0. History another strategy of the
    // run asked for never reaches it (the dispatcher gives each strategy
    // only the bars it asked for); the guard below is for drivers that
    // deliver it anyway.

    fn on_start(&mut self, ctx: &mut Context<'_>) {
        if ctx.event_pair(Conid(self.params.conid)).is_none() {
            tracing::warn!(
                conid = self.params.conid,
                "forecast_band: the engine knows no ForecastEx strike with this conid \
                 (backtest: --event-contracts FILE); it will not trade"
            );
        }
    }

    fn on_bar(&mut self, ctx: &mut Context<'_>, bar: &Bar) {
        if ctx.is_warming_up() {
            return;
        }
        let Some(pair) = ctx.event_pair(Conid(self.params.conid)) else {
            return;
        };
        if bar.conid != pair.yes || !self.working.is_empty() {
            return;
        }
        let p = &self.params;
        let close = bar.close;
        match ctx.event_position(pair).net() {
            NetPosition::Flat if close <= p.buy_below && close > Decimal::ZERO => {
                let id = ctx.buy_event(pair, Right::Yes, p.size, close);
                self.working.track(id);
            }
            NetPosition::Yes(held) => {
                let stop = p.stop_below.is_some_and(|s| close <= s);
                let limit = pair.payout - close;
                if (close >= p.take_profit || stop) && limit > Decimal::ZERO {
                    let id = ctx.exit_event(pair, Right::Yes, held, limit);
                    self.working.track(id);
                }
            }
            _ => {}
        }
    }

    fn on_order_update(&mut self, _ctx: &mut Context<'_>, order: &Order) {
        self.working.on_update(order);
    }
}
