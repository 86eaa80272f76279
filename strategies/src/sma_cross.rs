//! `sma_cross`: the reference moving-average crossover, long only.
//!
//! This is the strategy engines are compared with, so the rule is fixed and
//! deliberately plain. For every bar of a contract:
//!
//! 1. Update a fast and a slow simple moving average of the close.
//! 2. Until `slow` bars of that contract have been seen, do nothing else.
//!    The first bar with both windows full only records which average is
//!    above; a cross needs a previous bar to compare with, so the earliest
//!    possible signal is bar `slow + 1`.
//! 3. Up-cross (previous bar `fast <= slow`, this bar `fast > slow`) and the
//!    account's position in the contract is zero: buy `size` at market.
//! 4. Down-cross (previous bar `fast >= slow`, this bar `fast < slow`) and the
//!    position is long: sell the whole position at market.
//!
//! Nothing else: no shorting, no stops, no re-entry without a fresh cross.
//!
//! Live, the engine warms the strategy up on the last `slow` bars of each
//! contract ([`Strategy::warmup_bars`]): the averages and the previous
//! comparison are then what a backtest has at the first live bar, which
//! can therefore be a cross. Warm-up bars only update the averages.
//!
//! The per-bar path allocates nothing, clones nothing and never divides: the
//! averages are compared as `fast_sum * slow_len` against
//! `slow_sum * fast_len` ([`Sma::cmp_mean`]), which orders exactly like
//! `fast_sum / fast_len` against `slow_sum / slow_len` because both lengths
//! are positive, and is exact where the division would round. The sums are
//! exact integer mantissas ([`crate::indicators::ExactSum`]). Contracts are looked up
//! in a small vector (a strategy trades a handful), checking the previous
//! bar's contract first.

use std::cmp::Ordering;

use engine::model::{Bar, Conid};
use engine::registry::{typed, Params, RegistryError};
use engine::strategy::{Context, Strategy};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::indicators::Sma;
use crate::per_conid::PerConid;
use crate::util::{bad_params, bounded};
use engine::limits::MAX_QUANTITY;

/// Registry name.
pub const NAME: &str = "sma_cross";
/// Registry description.
pub const DESCRIPTION: &str =
    "Long-only SMA crossover: buy `size` when fast crosses above slow, sell all when it crosses below";

/// Parameters of [`SmaCross`]. Every field has a default; unknown fields are
/// an error so a misspelt `slwo=50` does not silently run with `slow=30`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmaCrossParams {
    /// Fast average length in bars.
    pub fast: usize,
    /// Slow average length in bars; must exceed `fast`.
    pub slow: usize,
    /// Quantity bought on an up-cross.
    pub size: Decimal,
}

impl Default for SmaCrossParams {
    fn default() -> Self {
        SmaCrossParams {
            fast: 10,
            slow: 30,
            size: Decimal::ONE_HUNDRED,
        }
    }
}

impl SmaCrossParams {
    /// Reject parameters the rule is not defined for.
    pub fn validate(&self) -> Result<(), RegistryError> {
        if self.fast == 0 {
            return Err(bad_params(NAME, "fast must be at least 1"));
        }
        if self.slow == 0 {
            return Err(bad_params(NAME, "slow must be at least 1"));
        }
        if self.fast >= self.slow {
            return Err(bad_params(
                NAME,
                format!(
                    "fast ({}) must be shorter than slow ({})",
                    self.fast, self.slow
                ),
            ));
        }
        bounded(NAME, "size", self.size, MAX_QUANTITY)
    }
}

/// Per-contract state.
#[derive(Debug, Clone)]
struct Track {
    fast: Sma,
    slow: Sma,
    /// How fast compared with slow on the previous full bar.
    prev: Option<Ordering>,
}

/// The `sma_cross` strategy; see the module documentation for the rule.
#[derive(Debug, Clone)]
pub struct SmaCross {
    params: SmaCrossParams,
    tracks: PerConid<Track>,
}

impl SmaCross {
    /// Build the strategy; fails when [`SmaCrossParams::validate`] does.
    pub fn new(params: SmaCrossParams) -> Result<Self, RegistryError> {
        params.validate()?;
        let sma = |name: &str, n| Sma::new(n).map_err(|e| bad_params(NAME, format!("{name}: {e}")));
        let template = Track {
            fast: sma("fast", params.fast)?,
            slow: sma("slow", params.slow)?,
            prev: None,
        };
        Ok(SmaCross {
            params,
            tracks: PerConid::new(template),
        })
    }

    /// Build from untyped parameters (TOML table or `k=v` pairs).
    pub fn from_params(params: &Params) -> Result<Self, RegistryError> {
        Self::new(typed(NAME, params)?)
    }

    /// The validated parameters the strategy runs with.
    pub fn params(&self) -> &SmaCrossParams {
        &self.params
    }

    /// Current fast and slow averages of `conid`, once both windows are full
    /// (for inspection and tests; the strategy itself never divides).
    pub fn averages(&self, conid: Conid) -> Option<(Decimal, Decimal)> {
        let t = self.tracks.get(conid)?;
        Some((t.fast.value()?, t.slow.value()?))
    }
}

/// Registry factory.
pub fn factory(params: &Params) -> Result<Box<dyn Strategy>, RegistryError> {
    Ok(Box::new(SmaCross::from_params(params)?))
}

impl Strategy for SmaCross {
    fn name(&self) -> &str {
        NAME
    }

    /// `slow` bars: the slow window is full and the previous comparison
    /// recorded, so the first live bar can be a cross, as in a backtest.
    fn warmup_bars(&self) -> usize {
        self.params.slow
    }

    #[inline]
    fn on_bar(&mut self, ctx: &mut Context<'_>, bar: &Bar) {
        let i = self.tracks.slot(bar.conid);
        let t = &mut self.tracks[i];
        t.fast.update(bar.close);
        t.slow.update(bar.close);
        // None until the slow window is full (fast < slow, so the fast one
        // is full by then); exact, division-free comparison of the means.
        let Some(now) = t.fast.cmp_mean(&t.slow) else {
            return;
        };
        let Some(prev) = t.prev.replace(now) else {
            return;
        };
        // History builds the averages; only live bars trade.
        if ctx.is_warming_up() {
            return;
        }
        match (prev, now) {
            // Up-cross, and flat. "Flat" includes no order of ours still
            // working in the contract: live, a fill can arrive bars after
            // the order (in a backtest the order has filled at this bar's
            // open already, so the rule is the same).
            (Ordering::Less | Ordering::Equal, Ordering::Greater)
                if ctx.position(bar.conid).is_zero() && !working(ctx, bar.conid) =>
            {
                ctx.buy(bar.conid, self.params.size);
            }
            // Down-cross: sell whatever long position there is.
            (Ordering::Greater | Ordering::Equal, Ordering::Less) => {
                let held = ctx.position(bar.conid);
                if held > Decimal::ZERO && !working(ctx, bar.conid) {
                    ctx.sell(bar.conid, held);
                }
            }
            _ => {}
        }
    }
}

/// Whether this strategy has an order working in `conid`.
fn working(ctx: &Context<'_>, conid: Conid) -> bool {
    ctx.open_orders().any(|o| o.request.conid == conid)
}
