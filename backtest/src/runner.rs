//! The backtest loop: replay bars through strategies and the simulated
//! exchange, account for every fill, and record the run.
//!
//! Per bar the loop does, in order: fire due timers; let the exchange fill
//! orders of the bar's contract (skipped outright when no order is working);
//! book the fills; mark the portfolio at the close and call `on_bar`; hand
//! any intents to the exchange. Equity is recorded once per distinct
//! timestamp, after all bars of that time. Nothing on this path allocates
//! unless an order or a fill happens.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use rust_decimal::Decimal;

use engine::dispatch::Dispatcher;
use engine::event::Event;
use engine::forecastex::{economic_fills, Pairing};
use engine::model::{Bar, Contract, Timestamp};
use engine::portfolio::Portfolio;
use engine::risk::{RiskConfig, RiskEngine, TradingState};
use engine::strategy::{Intent, Strategy};
use engine::venue::OrderChanges;

use crate::data::DataError;
use crate::exchange::{ExchangeConfig, SimExchange};
use crate::report::{Recorder, RecorderOptions, ReportError, RunMeta, Summary};

/// How a backtest runs.
#[derive(Debug, Clone)]
pub struct BacktestConfig {
    pub cash: Decimal,
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
    pub strategy: String,
    pub params: BTreeMap<String, String>,
    pub data: String,
}

/// Why a backtest stopped.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("strategy kept emitting intents in reaction to its own orders ({0} rounds at {1}); stopping")]
    IntentLoop(usize, Timestamp),
}

impl From<std::convert::Infallible> for BacktestError {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}

/// Rounds of intent -> order update -> intent allowed at one instant.
const MAX_INTENT_ROUNDS: usize = 1000;

/// Progress is reported every this many bars.
pub const PROGRESS_EVERY: u64 = 1 << 16;

struct Loop<S: Strategy> {
    dispatcher: Dispatcher<S>,
    risk: RiskEngine,
    /// Contracts, for the risk engine's notional and security-type checks.
    contracts: Vec<Contract>,
    exchange: SimExchange,
    recorder: Recorder,
    events: Vec<Event>,
    intents: Vec<(usize, Intent)>,
}

impl<S: Strategy> Loop<S> {
    /// Book and deliver what the exchange produced.
    fn deliver(&mut self) -> Result<(), BacktestError> {
        let netting = !self.dispatcher.event_pairing().is_empty();
        for ev in self.events.drain(..) {
            match ev {
                Event::Execution(fill) if netting => {
                    // The exchange reports the fill; the venue's netting
                    // reports follow it, each delivered before the next.
                    let reports = {
                        let d = &self.dispatcher;
                        let p = d.portfolio();
                        d.event_pairing().venue_reports(fill, |c| p.quantity(c))
                    };
                    // The report reads a netted exit as one closed trade.
                    for e in economic_fills(&reports) {
                        self.recorder.on_fill(
                            e.time,
                            e.conid,
                            e.side.signed(e.size),
                            e.price,
                            e.commission,
                        )?;
                    }
                    for e in reports {
                        self.dispatcher.dispatch(&Event::Execution(e));
                    }
                }
                ev => {
                    if let Event::Execution(e) = &ev {
                        let signed = e.side.signed(e.size);
                        self.recorder
                            .on_fill(e.time, e.conid, signed, e.price, e.commission)?;
                    }
                    self.dispatcher.dispatch(&ev);
                }
            }
        }
        Ok(())
    }

    /// Hand intents to the exchange until the strategies are quiet.
    fn route_intents(&mut self) -> Result<(), BacktestError> {
        let mut rounds = 0;
        while self.dispatcher.outbox().has_intents() {
            rounds += 1;
            if rounds > MAX_INTENT_ROUNDS {
                return Err(BacktestError::IntentLoop(rounds, self.dispatcher.now()));
            }
            self.intents
                .extend(self.dispatcher.outbox().drain_intents());
            let now = self.dispatcher.now();
            for (strategy, intent) in self.intents.drain(..) {
                let intent = match self.risk.screen(
                    strategy,
                    intent,
                    now,
                    self.dispatcher.portfolio(),
                    self.dispatcher.orders(),
                    &self.contracts,
                ) {
                    Ok(i) => i,
                    Err(refused) => {
                        self.events
                            .extend(refused.into_iter().map(Event::OrderUpdate));
                        continue;
                    }
                };
                let result = match intent {
                    Intent::Place(batch) => {
                        self.exchange.place(strategy, batch, now, &mut self.events)
                    }
                    Intent::Cancel(id) => self.exchange.cancel(id, now, &mut self.events),
                    Intent::Modify {
                        id,
                        quantity,
                        limit_price,
                        stop_price,
                    } => self.exchange.modify(
                        id,
                        OrderChanges {
                            quantity,
                            limit_price,
                            stop_price,
                        },
                        now,
                        &mut self.events,
                    ),
                };
                if let Err(e) = result {
                    tracing::debug!(strategy, error = %e, "intent refused by the simulated exchange");
                }
            }
            self.deliver()?;
        }
        Ok(())
    }

    /// Daily loss limit: a new session resets the reference equity; a loss
    /// beyond the limit halts trading and cancels every working order.
    /// Only runs when the limit is configured.
    fn check_daily_loss(
        &mut self,
        prev: Timestamp,
        next: Timestamp,
        equity: Decimal,
        tz: chrono_tz::Tz,
    ) -> Result<(), BacktestError> {
        if self.risk.on_equity(equity) {
            let now = self.dispatcher.now();
            let ids: Vec<_> = self.exchange.orders().map(|o| o.id()).collect();
            for id in ids {
                // Children go with their parents; an id already gone is fine.
                let _ = self.exchange.cancel(id, now, &mut self.events);
            }
            self.deliver()?;
        }
        let day = |t: Timestamp| t.with_timezone(&tz).date_naive();
        if day(prev) != day(next) {
            // The next session starts from the equity it opens with.
            self.risk.start_day(equity);
            if self.risk.state() == TradingState::Halted {
                tracing::warn!("trading stays halted into the next session");
            }
        }
        Ok(())
    }

    #[inline]
    fn on_bar(&mut self, bar: &Bar) -> Result<(), BacktestError> {
        if self.exchange.has_orders() {
            self.exchange.on_bar(bar, &mut self.events);
            if !self.events.is_empty() {
                self.dispatcher.set_time(bar.time);
                self.deliver()?;
                self.route_intents()?;
            }
        }
        self.dispatcher.on_bar(bar);
        if self.dispatcher.outbox().has_intents() {
            self.route_intents()?;
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
    let started = Instant::now();
    let mut portfolio = Portfolio::new(cfg.cash);
    // The loop reads fills from events; the exchange need not keep copies.
    let mut exchange = SimExchange::new(ExchangeConfig {
        keep_executions: 0,
        ..cfg.exchange.clone()
    });
    let contracts: Vec<Contract> = contracts
        .iter()
        .map(|c| {
            let mut c = c.clone();
            cfg.event_pairing.mark_contract(&mut c);
            c
        })
        .collect();
    for c in &contracts {
        portfolio.set_multiplier(c.conid, c.multiplier);
        exchange.add_contract(c);
    }
    let mut recorder = Recorder::new(
        cfg.cash,
        RecorderOptions {
            out_dir: cfg.out_dir.clone(),
            session_tz: cfg.exchange.session_tz,
            ..RecorderOptions::default()
        },
    )?;
    for c in &contracts {
        recorder.set_multiplier(c.conid, c.multiplier);
    }
    let daily_loss = cfg.risk.global.daily_loss_limit.is_some();
    let mut lp = Loop {
        dispatcher: Dispatcher::new(strategies, portfolio),
        risk: RiskEngine::new(cfg.risk.clone()),
        contracts,
        exchange,
        recorder,
        events: Vec::new(),
        intents: Vec::new(),
    };
    lp.dispatcher.set_event_pairing(cfg.event_pairing.clone());
    lp.dispatcher.start();
    lp.route_intents()?;

    let mut count: u64 = 0;
    let mut current: Option<Timestamp> = None;
    for item in bars {
        let bar = item?;
        if current != Some(bar.time) {
            if let Some(t) = current {
                let equity = lp.dispatcher.portfolio().equity();
                lp.recorder.on_equity(t, equity)?;
                if daily_loss {
                    lp.check_daily_loss(t, bar.time, equity, cfg.exchange.session_tz)?;
                }
            }
            current = Some(bar.time);
            if lp.dispatcher.next_timer().is_some_and(|t| t <= bar.time) {
                lp.dispatcher.fire_timers(bar.time);
                lp.route_intents()?;
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
        lp.recorder.on_equity(t, equity)?;
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
    Ok(lp.recorder.finish(meta)?)
}
