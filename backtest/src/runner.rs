//! The backtest loop: replay bars through strategies and the simulated
//! exchange, account for every fill, and record the run.
//!
//! The loop owns the dispatcher, the simulated venue and the report; the
//! path from an intent to an order and back is `engine::router`, the same
//! as live. Per bar the loop does, in order: fire due timers; let the exchange fill
//! orders of the bar's contract (skipped outright when no order is working);
//! book the fills; mark the portfolio at the close and call `on_bar`; hand
//! any intents to the exchange. Equity is recorded once per distinct
//! timestamp, after all bars of that time. Nothing on this path allocates
//! unless an order or a fill happens.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use rust_decimal::Decimal;

use engine::contracts::Contracts;
use engine::dispatch::Dispatcher;
use engine::event::Event;
use engine::forecastex::{economic_fills, Pairing};
use engine::model::{Bar, Contract, Execution, Timestamp};
use engine::portfolio::Portfolio;
use engine::risk::RiskConfig;
use engine::router::{RouteError, Router, Sink};
use engine::strategy::Strategy;

use crate::data::DataError;
use crate::exchange::{ExchangeConfig, SimExchange};
use crate::report::{Recorder, RecorderOptions, ReportError, RunMeta, Summary};
use crate::sim_venue::{at_once, BarVenue, SimVenue, Waited};

/// How a backtest runs.
#[derive(Debug, Clone)]
pub struct BacktestConfig {
    /// Cash the account starts with (default 100 000).
    pub cash: Decimal,
    /// Fill rules, commissions, slippage and the session time zone.
    pub exchange: ExchangeConfig,
    /// Pre-trade risk limits (none by default).
    pub risk: RiskConfig,
    /// Where outputs go; `None` computes the summary only (sweeps, bench).
    pub out_dir: Option<PathBuf>,
    /// ForecastEx YES/NO pairs (from a saved `/trsrv/event/contracts`
    /// answer): their contracts cannot be sold, a buy against the other
    /// side held is netted as the venue does (`B`, then two `N`), and
    /// strategies find the pairs through `Context::event_pair`.
    pub event_pairing: Pairing,
}

impl Default for BacktestConfig {
    fn default() -> Self {
        BacktestConfig {
            cash: Decimal::from(100_000),
            exchange: ExchangeConfig::default(),
            risk: RiskConfig::default(),
            out_dir: None,
            event_pairing: Pairing::default(),
        }
    }
}

/// What the report says the run was.
#[derive(Debug, Clone, Default)]
pub struct RunLabel {
    /// Registry name of the strategy.
    pub strategy: String,
    /// Its parameters as text, for the report.
    pub params: BTreeMap<String, String>,
    /// What was replayed (paths, or `bundled sample`), for the report.
    pub data: String,
}

/// Why a backtest stopped.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// The bars could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The report could not be recorded or written.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// Routing stopped: strategies looping on their own intents, or the
    /// recorder failing on a fill.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// The simulated venue did not complete a request at once (a bug).
    #[error(transparent)]
    Waited(#[from] Waited),
}

impl From<std::convert::Infallible> for BacktestError {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}

/// Progress is reported every this many bars.
pub const PROGRESS_EVERY: u64 = 1 << 16;

/// The report recorder as the router's [`Sink`]: every fill, with a netted
/// ForecastEx exit read as one closed trade ([`economic_fills`]).
struct RecorderSink {
    recorder: Recorder,
    netting: bool,
}

impl RecorderSink {
    fn record(&mut self, e: &Execution) -> Result<(), RouteError> {
        let signed = e.side.signed(e.size);
        self.recorder
            .on_fill(e.time, e.conid, signed, e.price, e.commission)
            .map_err(|err| RouteError::Sink(err.to_string()))
    }
}

impl Sink for RecorderSink {
    fn executions(&mut self, group: &[Execution]) -> Result<(), RouteError> {
        if self.netting && group.len() > 1 {
            for e in economic_fills(group) {
                self.record(&e)?;
            }
        } else {
            for e in group {
                self.record(e)?;
            }
        }
        Ok(())
    }
}

struct Loop<S: Strategy, V: BarVenue> {
    dispatcher: Dispatcher<S>,
    router: Router,
    venue: V,
    sink: RecorderSink,
    events: Vec<Event>,
}

impl<S: Strategy, V: BarVenue> Loop<S, V> {
    /// Route the strategies' intents until they are quiet. Kept out of
    /// line: most bars route nothing, and the per-bar loop stays small.
    #[inline(never)]
    fn route(&mut self) -> Result<(), BacktestError> {
        Ok(at_once(self.router.route(
            &mut self.dispatcher,
            &mut self.venue,
            &mut self.sink,
        ))??)
    }

    /// Daily loss limit: a loss beyond the limit halts trading and cancels
    /// every working order; a new session resets the reference equity.
    /// Only runs when the limit is configured.
    fn check_daily_loss(
        &mut self,
        prev: Timestamp,
        next: Timestamp,
        tz: chrono_tz::Tz,
    ) -> Result<(), BacktestError> {
        at_once(
            self.router
                .check_equity(&mut self.dispatcher, &mut self.venue, &mut self.sink),
        )??;
        let day = |t: Timestamp| t.with_timezone(&tz).date_naive();
        if day(prev) != day(next) {
            // The next session starts from the equity it opens with.
            self.router.start_day(self.dispatcher.portfolio().equity());
        }
        Ok(())
    }

    /// Let the venue fill what `bar` reaches and deliver the reports. Out
    /// of line, like [`Loop::route`].
    #[inline(never)]
    fn fill(&mut self, bar: &Bar) -> Result<(), BacktestError> {
        self.venue.on_bar(bar, &mut self.events);
        if !self.events.is_empty() {
            self.dispatcher.set_time(bar.time);
            at_once(self.router.deliver(
                &mut self.dispatcher,
                &mut self.venue,
                &mut self.sink,
                &mut self.events,
            ))??;
        }
        Ok(())
    }

    /// The per-bar path, always inlined into the replay loop (as are
    /// `Dispatcher::on_bar` and `Portfolio::mark`): the speed of every
    /// backtest should not hang on the compiler's inlining budget.
    #[inline(always)]
    fn on_bar(&mut self, bar: &Bar) -> Result<(), BacktestError> {
        if self.venue.has_orders() {
            self.fill(bar)?;
        }
        self.dispatcher.on_bar(bar);
        if self.dispatcher.outbox().has_intents() {
            self.route()?;
        }
        Ok(())
    }
}

/// Run `strategies` over `bars` (time-ordered) and return the summary; with
/// `cfg.out_dir` set, also write the report files there.
///
/// `progress` is called with the number of bars done every
/// [`PROGRESS_EVERY`] bars.
pub fn run<S, I, E>(
    strategies: Vec<S>,
    contracts: &[Contract],
    bars: I,
    cfg: &BacktestConfig,
    label: RunLabel,
    progress: &mut dyn FnMut(u64),
) -> Result<Summary, BacktestError>
where
    S: Strategy,
    I: IntoIterator<Item = Result<Bar, E>>,
    BacktestError: From<E>,
{
    let mut contracts = Contracts::new(contracts.iter().cloned());
    contracts.mark_events(&cfg.event_pairing);
    // The loop reads fills from events; the exchange need not keep copies.
    let exchange = SimExchange::new(ExchangeConfig {
        keep_executions: 0,
        ..cfg.exchange.clone()
    })
    .with_contracts(contracts.clone());
    let venue = SimVenue::new(exchange, cfg.event_pairing.clone());
    run_on(venue, strategies, &contracts, bars, cfg, label, progress)
}

/// [`run`] on any bar-driven venue: the same loop, the same router.
/// `contracts` is the run's one table, ForecastEx pairs marked
/// ([`Contracts::mark_events`]).
pub fn run_on<V, S, I, E>(
    venue: V,
    strategies: Vec<S>,
    contracts: &Contracts,
    bars: I,
    cfg: &BacktestConfig,
    label: RunLabel,
    progress: &mut dyn FnMut(u64),
) -> Result<Summary, BacktestError>
where
    V: BarVenue,
    S: Strategy,
    I: IntoIterator<Item = Result<Bar, E>>,
    BacktestError: From<E>,
{
    let started = Instant::now();
    let mut portfolio = Portfolio::new(cfg.cash);
    for c in contracts.iter() {
        portfolio.set_multiplier(c.conid, c.multiplier);
    }
    let mut recorder = Recorder::new(
        cfg.cash,
        RecorderOptions {
            out_dir: cfg.out_dir.clone(),
            session_tz: cfg.exchange.session_tz,
            ..RecorderOptions::default()
        },
    )?;
    for c in contracts.iter() {
        recorder.set_multiplier(c.conid, c.multiplier);
    }
    let daily_loss = cfg.risk.global.daily_loss_limit.is_some();
    let mut lp = Loop {
        dispatcher: Dispatcher::new(strategies, portfolio),
        router: Router::new(cfg.risk.clone(), contracts.clone()),
        venue,
        sink: RecorderSink {
            recorder,
            netting: !cfg.event_pairing.is_empty(),
        },
        events: Vec::new(),
    };
    lp.dispatcher.set_event_pairing(cfg.event_pairing.clone());
    // The simulated venue reports in order: no late report to refuse.
    lp.dispatcher.set_finished_memory(0);
    lp.dispatcher.start();
    lp.route()?;

    let mut count: u64 = 0;
    let mut current: Option<Timestamp> = None;
    for item in bars {
        let bar = item?;
        if current != Some(bar.time) {
            if let Some(t) = current {
                let equity = lp.dispatcher.portfolio().equity();
                lp.sink.recorder.on_equity(t, equity)?;
                if daily_loss {
                    lp.check_daily_loss(t, bar.time, cfg.exchange.session_tz)?;
                }
            }
            current = Some(bar.time);
            if lp.dispatcher.next_timer().is_some_and(|t| t <= bar.time) {
                lp.dispatcher.fire_timers(bar.time);
                lp.route()?;
            }
        }
        lp.on_bar(&bar)?;
        count += 1;
        if count.is_multiple_of(PROGRESS_EVERY) {
            progress(count);
        }
    }
    if let Some(t) = current {
        let equity = lp.dispatcher.portfolio().equity();
        lp.sink.recorder.on_equity(t, equity)?;
    }
    lp.dispatcher.stop();
    // Orders placed in on_stop have no bar left to fill on; they are dropped.
    progress(count);
    let final_cash = lp.dispatcher.portfolio().cash();
    let meta = RunMeta {
        strategy: label.strategy,
        params: label.params,
        bars: count,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        final_cash,
        commission_model: cfg.exchange.commission.to_string(),
        data: label.data,
    };
    Ok(lp.sink.recorder.finish(meta)?)
}
