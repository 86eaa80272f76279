//! Example ibflow strategies, each registered by name.
//!
//! * [`sma_cross`]: the reference long-only moving-average crossover.
//! * [`breakout_oca`]: an OCA pair of bracketed DAY stop entries outside the
//!   recent range.
//! * [`mean_reversion`]: buy below the lower Bollinger band, exit at the mean.
//! * [`forecast_band`]: ForecastEx, buy YES at a low probability and exit by
//!   buying NO (the venue nets the two).
//!
//! Each strategy module has its exact rule in its documentation, a typed
//! parameter struct (defaults for every field, unknown fields refused) and a
//! `factory` for the [`StrategyRegistry`]. The building blocks they share are
//! public too: [`indicators`] (allocation-free incremental indicators) and
//! [`tracker`] (which of a strategy's orders are still working).

pub mod breakout_oca;
pub mod forecast_band;
pub mod indicators;
pub mod mean_reversion;
pub mod per_conid;
pub mod sma_cross;
pub mod tracker;
mod util;

use engine::registry::StrategyRegistry;

pub use breakout_oca::{BreakoutOca, BreakoutOcaParams};
pub use forecast_band::{ForecastBand, ForecastBandParams};
pub use mean_reversion::{MeanReversion, MeanReversionParams};
pub use sma_cross::{SmaCross, SmaCrossParams};

/// Add every strategy of this crate to `registry`.
pub fn register_all(registry: &mut StrategyRegistry) {
    registry.register(sma_cross::NAME, sma_cross::DESCRIPTION, sma_cross::factory);
    registry.register(
        breakout_oca::NAME,
        breakout_oca::DESCRIPTION,
        breakout_oca::factory,
    );
    registry.register(
        forecast_band::NAME,
        forecast_band::DESCRIPTION,
        forecast_band::factory,
    );
    registry.register(
        mean_reversion::NAME,
        mean_reversion::DESCRIPTION,
        mean_reversion::factory,
    );
}

/// A registry holding every strategy of this crate.
pub fn registry() -> StrategyRegistry {
    let mut r = StrategyRegistry::new();
    register_all(&mut r);
    r
}

/// The README's code examples compile and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
