//! The one path from a strategy's intent to a venue, and from a venue's
//! reports back to the strategies: used by the backtest and the live
//! engine alike, so the two cannot drift.
//!
//! ```text
//! Dispatcher outbox --intents--> Router::route --risk--> Venue::{place,cancel,modify}
//!        ^                                                    |
//!        |                      events (order updates, fills) |
//!        +------ Router::deliver <----------------------------+---- later reports
//!                     |                                             (next bar, sor/str)
//!                     v
//!                   Sink (report recorder, journal)
//! ```
//!
//! * Every intent passes [`RiskEngine::screen`]; a refused placement
//!   reaches its strategy as an `Inactive` update with the reason, and
//!   never reaches the venue.
//! * A venue's refusal of a placement reaches the strategy the same way
//!   (the venue reports each refused order as `Inactive`).
//! * Reports are folded into the dispatcher's [`crate::working_orders`]
//!   (one order state machine): a repeated or stale update reaches nobody.
//! * Executions are handed to the [`Sink`] in venue groups (a fill and the
//!   ForecastEx netting reports that follow it), then booked and delivered
//!   to the owning strategy.
//! * Strategies react to what they hear; routing repeats until they are
//!   quiet, at most [`Router::MAX_ROUNDS`] rounds at one instant (a
//!   strategy that keeps answering its own orders is a bug, stopped with
//!   [`RouteError::IntentLoop`]).
//! * The daily loss limit ([`Router::check_equity`]) halts trading and
//!   cancels every working order.

use std::future::Future;
use std::pin::pin;
use std::task::{Context as TaskContext, Poll, Waker};

use crate::contracts::Contracts;
use crate::dispatch::Dispatcher;
use crate::event::Event;
use crate::model::{ExecSide, Execution, Order, OrderId, Timestamp};
use crate::risk::{RiskConfig, RiskEngine, TradingState};
use crate::strategy::{Intent, Strategy};
use crate::venue::{Venue, VenueError};

/// Why routing stopped.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// Strategies kept emitting intents in reaction to their own orders.
    #[error("strategies kept emitting intents in reaction to their own orders ({rounds} rounds at {at}); stopping")]
    IntentLoop {
        /// Rounds routed at that instant.
        rounds: usize,
        /// The instant.
        at: Timestamp,
    },
    /// The sink could not record what happened (a report file, say).
    #[error("recording the run: {0}")]
    Sink(String),
}

/// What sees every order change and execution the router delivers, before
/// the strategies do: the backtest's report recorder, the live journal.
///
/// Recording is synchronous; [`Sink::flush`] makes it durable. The router
/// flushes after each delivery, before it sends the venue anything new, so
/// no order a strategy places in reaction to a report reaches the venue
/// before that report is recorded. (A crash between a strategy hearing a
/// report and the flush loses nothing the venue knows: the restart
/// reconciles the journal with the venue.)
pub trait Sink {
    /// An order changed; `order` is its new state.
    fn order(&mut self, _order: &Order) -> Result<(), RouteError> {
        Ok(())
    }

    /// One venue report group: a fill and the ForecastEx netting reports
    /// (`N`) that follow it, or one execution alone.
    fn executions(&mut self, group: &[Execution]) -> Result<(), RouteError>;

    /// Make what was recorded since the last flush durable.
    fn flush(&mut self) -> impl Future<Output = Result<(), RouteError>> + Send {
        std::future::ready(Ok(()))
    }
}

/// Counters of what the router did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RouteStats {
    /// Batches the venue accepted.
    pub placed: u64,
    /// Intents refused by risk.
    pub rejected: u64,
    /// Requests the venue refused.
    pub venue_refused: u64,
    /// Executions delivered.
    pub executions: u64,
    /// Order updates that changed an order.
    pub order_updates: u64,
}

/// Risk and the intent loop, between a dispatcher and a venue.
#[derive(Debug)]
pub struct Router {
    risk: RiskEngine,
    contracts: Contracts,
    intents: Vec<(usize, Intent)>,
    events: Vec<Event>,
    executions: Vec<Execution>,
    stats: RouteStats,
}

impl Router {
    /// Rounds of intent -> report -> intent allowed at one instant.
    pub const MAX_ROUNDS: usize = 1000;

    /// A router screening with `risk`; `contracts` tell risk security types
    /// and multipliers.
    pub fn new(risk: RiskConfig, contracts: Contracts) -> Self {
        Router {
            risk: RiskEngine::new(risk),
            contracts,
            intents: Vec::new(),
            events: Vec::new(),
            executions: Vec::new(),
            stats: RouteStats::default(),
        }
    }

    /// The risk engine (trading state, hours, kill switch).
    pub fn risk(&self) -> &RiskEngine {
        &self.risk
    }

    /// The risk engine, to set trading hours or halt.
    pub fn risk_mut(&mut self) -> &mut RiskEngine {
        &mut self.risk
    }

    /// What the router did so far.
    pub fn stats(&self) -> RouteStats {
        self.stats
    }

    /// Route the strategies' intents until they are quiet.
    pub async fn route<S, V, K>(
        &mut self,
        d: &mut Dispatcher<S>,
        venue: &mut V,
        sink: &mut K,
    ) -> Result<(), RouteError>
    where
        S: Strategy,
        V: Venue,
        K: Sink,
    {
        let mut rounds = 0;
        while d.outbox().has_intents() {
            rounds += 1;
            if rounds > Self::MAX_ROUNDS {
                return Err(RouteError::IntentLoop {
                    rounds,
                    at: d.now(),
                });
            }
            self.intents.extend(d.outbox().drain_intents());
            let now = d.now();
            let mut intents = std::mem::take(&mut self.intents);
            for (strategy, intent) in intents.drain(..) {
                let intent = match self.risk.screen(
                    strategy,
                    intent,
                    now,
                    d.portfolio(),
                    d.orders(),
                    &self.contracts,
                ) {
                    Ok(i) => i,
                    Err(refused) => {
                        self.stats.rejected += 1;
                        self.events
                            .extend(refused.into_iter().map(Event::OrderUpdate));
                        continue;
                    }
                };
                self.submit(strategy, intent, now, venue).await;
            }
            self.intents = intents;
            self.deliver_pending(d, sink).await?;
        }
        Ok(())
    }

    /// Deliver reports that arrived from the venue on their own (fills on
    /// a bar, websocket updates), then route what strategies ask in
    /// reaction. `events` is drained.
    pub async fn deliver<S, V, K>(
        &mut self,
        d: &mut Dispatcher<S>,
        venue: &mut V,
        sink: &mut K,
        events: &mut Vec<Event>,
    ) -> Result<(), RouteError>
    where
        S: Strategy,
        V: Venue,
        K: Sink,
    {
        self.events.append(events);
        self.deliver_pending(d, sink).await?;
        self.route(d, venue, sink).await
    }

    /// Check the daily loss limit against the portfolio's equity; when
    /// this halts trading, every working order is cancelled. Returns
    /// whether it halted.
    pub async fn check_equity<S, V, K>(
        &mut self,
        d: &mut Dispatcher<S>,
        venue: &mut V,
        sink: &mut K,
    ) -> Result<bool, RouteError>
    where
        S: Strategy,
        V: Venue,
        K: Sink,
    {
        if !self.risk.on_equity(d.portfolio().equity()) {
            return Ok(false);
        }
        self.cancel_all(d, venue, sink).await?;
        Ok(true)
    }

    /// A new session: the daily loss limit counts from `equity`.
    pub fn start_day(&mut self, equity: rust_decimal::Decimal) {
        self.risk.start_day(equity);
        if self.risk.state() == TradingState::Halted {
            tracing::warn!("trading stays halted into the next session");
        }
    }

    /// Kill switch: halt trading and cancel every working order.
    pub async fn kill<S, V, K>(
        &mut self,
        reason: &str,
        d: &mut Dispatcher<S>,
        venue: &mut V,
        sink: &mut K,
    ) -> Result<(), RouteError>
    where
        S: Strategy,
        V: Venue,
        K: Sink,
    {
        self.risk.kill(reason);
        self.cancel_all(d, venue, sink).await
    }

    /// Orderly stop: halt and cancel every working order, as the kill
    /// switch does, without raising the alarm.
    pub async fn shutdown<S, V, K>(
        &mut self,
        d: &mut Dispatcher<S>,
        venue: &mut V,
        sink: &mut K,
    ) -> Result<(), RouteError>
    where
        S: Strategy,
        V: Venue,
        K: Sink,
    {
        tracing::info!("shutting down: cancelling working orders, trading halted");
        self.risk.halt_quietly("shutdown");
        self.cancel_all(d, venue, sink).await
    }

    /// Cancel every working order, deliver the answers, and route what the
    /// strategies say to that (risk refuses new orders while halted).
    pub async fn cancel_all<S, V, K>(
        &mut self,
        d: &mut Dispatcher<S>,
        venue: &mut V,
        sink: &mut K,
    ) -> Result<(), RouteError>
    where
        S: Strategy,
        V: Venue,
        K: Sink,
    {
        let working: Vec<OrderId> = d.orders().open().map(Order::id).collect();
        let now = d.now();
        for id in working {
            self.submit(usize::MAX, Intent::Cancel(id), now, venue)
                .await;
        }
        self.deliver_pending(d, sink).await?;
        self.route(d, venue, sink).await
    }

    /// One approved intent to the venue. A refused placement comes back
    /// to its strategy as `Inactive` updates with the venue's reason.
    async fn submit<V: Venue>(
        &mut self,
        strategy: usize,
        intent: Intent,
        now: Timestamp,
        venue: &mut V,
    ) {
        match intent {
            Intent::Place(batch) => {
                // A venue that refuses a batch reports each of its orders as
                // `Inactive` with the reason (the `Venue::place` contract).
                match venue.place(strategy, batch, now, &mut self.events).await {
                    Ok(()) => self.stats.placed += 1,
                    Err(e) => self.place_refused(strategy, &e),
                }
            }
            Intent::Cancel(id) => {
                if let Err(e) = venue.cancel(id, now, &mut self.events).await {
                    self.refused(id, "cancel", &e);
                }
            }
            Intent::Modify { id, changes } => {
                if let Err(e) = venue.modify(id, changes, now, &mut self.events).await {
                    self.refused(id, "modify", &e);
                }
            }
        }
    }

    // The refusals are out of line and cold: the logging they expand to
    // would otherwise sit between the hot instructions of `submit`.

    #[cold]
    #[inline(never)]
    fn place_refused(&mut self, strategy: usize, e: &VenueError) {
        self.stats.venue_refused += 1;
        tracing::warn!(strategy, error = %e, "order refused by the venue");
    }

    #[cold]
    #[inline(never)]
    fn refused(&mut self, id: OrderId, what: &str, e: &VenueError) {
        self.stats.venue_refused += 1;
        match e {
            // A child cancelled with its parent, an order filled meanwhile.
            VenueError::UnknownOrder(_) | VenueError::NotWorking(..) => {
                tracing::debug!(%id, error = %e, "{what} refused by the venue")
            }
            _ => tracing::warn!(%id, error = %e, "{what} refused by the venue"),
        }
    }

    /// Hand the queued reports to the sink and the strategies, in order,
    /// then flush the sink.
    async fn deliver_pending<S: Strategy, K: Sink>(
        &mut self,
        d: &mut Dispatcher<S>,
        sink: &mut K,
    ) -> Result<(), RouteError> {
        self.deliver_now(d, sink)?;
        sink.flush().await
    }

    fn deliver_now<S: Strategy, K: Sink>(
        &mut self,
        d: &mut Dispatcher<S>,
        sink: &mut K,
    ) -> Result<(), RouteError> {
        let mut events = std::mem::take(&mut self.events);
        let delivered = self.deliver_events(&mut events, d, sink);
        // Keep the allocation for the next round (emptied by the drain,
        // or cleared after an error).
        events.clear();
        self.events = events;
        delivered
    }

    fn deliver_events<S: Strategy, K: Sink>(
        &mut self,
        events: &mut Vec<Event>,
        d: &mut Dispatcher<S>,
        sink: &mut K,
    ) -> Result<(), RouteError> {
        let mut pending = events.drain(..);
        while let Some(event) = pending.next() {
            match event {
                Event::Execution(first) => {
                    let netted = matches!(
                        pending.as_slice().first(),
                        Some(Event::Execution(e)) if e.side == ExecSide::Netting
                    );
                    if !netted {
                        // One execution alone: the common case.
                        sink.executions(std::slice::from_ref(&first))?;
                        self.stats.executions += 1;
                        d.on_execution(&first);
                        continue;
                    }
                    // A fill and the netting reports that follow it.
                    self.executions.push(first);
                    while let Some(Event::Execution(e)) = pending.as_slice().first() {
                        if e.side != ExecSide::Netting {
                            break;
                        }
                        if let Some(Event::Execution(e)) = pending.next() {
                            self.executions.push(e);
                        }
                    }
                    sink.executions(&self.executions)?;
                    for e in self.executions.drain(..) {
                        self.stats.executions += 1;
                        d.on_execution(&e);
                    }
                }
                Event::OrderUpdate(o) => {
                    // Recorded before the strategy hears it.
                    if d.deliver_order(o, |changed| sink.order(changed))? {
                        self.stats.order_updates += 1;
                    }
                }
                other => d.dispatch(other),
            }
        }
        Ok(())
    }
}

/// Poll `fut` once: its output when it completes at once, `None` when it
/// would wait. Simulated venues complete at once, so the backtest runs the
/// router's async code without an executor or a boxed future.
pub fn now_or_never<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut cx = TaskContext::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}
