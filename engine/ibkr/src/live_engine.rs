//! The live engine loop: strategies, risk and a venue, fed by the venue's
//! own messages (for IBKR, the websocket).
//!
//! Intents and reports go through [`engine::router::Router`], the same
//! code the backtest runs: risk, the venue, the order state machine (a
//! repeated or stale `sor` update never reaches a strategy twice or
//! backwards), the daily loss halt. What is live-only is here: turning the
//! venue's messages into engine events ([`LiveVenue::translate`]),
//! building bars from quotes, the one-second timer, and the journal.

use engine::bars::BarBuilder;
use engine::contracts::Contracts;
use engine::dispatch::Dispatcher;
use engine::event::Event;
use engine::journal::{
    BrokerOrder, BrokerPosition, Discrepancy, Journal, JournalError, JournalOrder, VenueReport,
};
use engine::model::{Conid, Execution, Order, OrderStatus, Timestamp};
use rust_decimal::Decimal;

use crate::telemetry::{OrderOutcome, PositionRow, StatusSnapshot, Telemetry, WorkingOrderRow};
use crate::venue_clock::VenueClock;
use engine::portfolio::Portfolio;
use engine::risk::{RiskConfig, RiskReject, TradingState};
use engine::router::{RouteError, Router, Sink};
use engine::strategy::Strategy;
use engine::venue::{Venue, VenueState};
use engine::working_orders::WorkingOrders;

/// A venue the live engine can run on: it takes orders ([`Venue`]), says
/// what it holds ([`VenueState`]), and speaks in messages of its own that
/// become engine events.
pub trait LiveVenue: Venue + VenueState + Send {
    /// What the venue's feed delivers (the websocket's messages for IBKR).
    type Message: Send;

    /// Turn one message into engine events, with the venue's order ids
    /// mapped to the engine's. `orders` is the engine's record of working
    /// orders, for reports that carry only a status.
    fn translate(&mut self, msg: Self::Message, orders: &WorkingOrders, out: &mut Vec<Event>);

    /// The account traded.
    fn account(&self) -> &str;

    /// What the venue's cOIDs add in front of the engine's (this run's
    /// prefix): the journal keys orders by the cOID the venue knows.
    fn coid_prefix(&self) -> &str;

    /// Executions reconciliation fetched: already in the account the
    /// engine started from, so a later report of them must not count them
    /// again. A venue whose feed cannot repeat itself ignores this.
    fn mark_delivered(&mut self, _executions: &[Execution]) {}
}

/// Counters of what a live run handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LiveStats {
    /// Quotes received.
    pub quotes: u64,
    /// Bars built from them.
    pub bars: u64,
    /// Order updates that changed an order.
    pub order_updates: u64,
    /// Executions delivered.
    pub executions: u64,
    /// Intents refused by risk.
    pub rejected: u64,
}

/// The journal as the router's sink: every order change and execution,
/// under the names the venue knows them by. A failed write is logged,
/// never fatal: reconciliation finds what it missed.
struct JournalSink {
    journal: Option<Box<dyn Journal>>,
    account: String,
    /// The venue's cOID of an engine cOID is `prefix + coid`.
    prefix: String,
    /// Recorded since the last flush, in order.
    unwritten: Vec<Unwritten>,
    /// Where order outcomes are counted (`ibflow_orders_total`).
    telemetry: Option<Telemetry>,
}

/// A record waiting for [`Sink::flush`].
enum Unwritten {
    Order(Box<Order>),
    Execution(Execution),
}

/// The cOID the venue knows an engine order by: this run's prefix and the
/// engine's cOID, or, for an earlier run's order this run adopted, the
/// whole cOID it already carries.
fn wire_coid(prefix: &str, client_order_id: &str) -> String {
    if cpapi::order_ticket::CoidParts::parse(client_order_id).is_some() {
        return client_order_id.to_owned();
    }
    format!("{prefix}{client_order_id}")
}

impl JournalSink {
    async fn write_order(journal: &mut dyn Journal, account: &str, prefix: &str, order: &Order) {
        let coid = wire_coid(prefix, &order.request.client_order_id);
        let parent = order
            .request
            .parent
            .as_deref()
            .map(|p| wire_coid(prefix, p));
        let row = JournalOrder {
            order,
            account,
            client_order_id: &coid,
            parent: parent.as_deref(),
        };
        if let Err(e) = journal.record_order(row).await {
            tracing::error!(error = %e, %coid, "could not record an order");
        }
    }
}

impl JournalSink {
    /// One INFO line and one count per order that reached an end: filled,
    /// cancelled, refused before it left (risk, a declined prompt, a
    /// halted client: no gateway id) or rejected by the gateway. Sent and
    /// acknowledged are reported by the venue, which sees them happen.
    fn report(&self, order: &Order) {
        let outcome = match order.status {
            OrderStatus::Filled => OrderOutcome::Filled,
            OrderStatus::Cancelled => OrderOutcome::Cancelled,
            OrderStatus::Inactive if order.broker_order_id.is_none() => OrderOutcome::Refused,
            OrderStatus::Inactive => OrderOutcome::Rejected,
            _ => return,
        };
        if let Some(t) = &self.telemetry {
            t.order_outcome(outcome);
        }
        let coid = wire_coid(&self.prefix, &order.request.client_order_id);
        tracing::info!(
            %coid,
            strategy = order.strategy,
            conid = %order.request.conid,
            side = ?order.request.side,
            quantity = %order.request.quantity,
            filled = %order.filled_quantity,
            avg_price = ?order.avg_fill_price,
            reason = order.reason.as_deref().unwrap_or(""),
            "order {}",
            outcome.as_str()
        );
    }
}

impl Sink for JournalSink {
    fn order(&mut self, order: &Order) -> Result<(), RouteError> {
        self.report(order);
        if self.journal.is_some() {
            self.unwritten
                .push(Unwritten::Order(Box::new(order.clone())));
        }
        Ok(())
    }

    fn executions(&mut self, group: &[Execution]) -> Result<(), RouteError> {
        for e in group {
            tracing::info!(execution = %e.execution_id, conid = %e.conid, side = ?e.side,
                size = %e.size, price = %e.price, order_ref = e.order_ref.as_deref().unwrap_or(""),
                "execution");
        }
        if self.journal.is_some() {
            self.unwritten
                .extend(group.iter().cloned().map(Unwritten::Execution));
        }
        Ok(())
    }

    /// A record that cannot be written is logged, not retried: the next
    /// reconciliation finds what the journal missed.
    async fn flush(&mut self) -> Result<(), RouteError> {
        let Some(journal) = &mut self.journal else {
            self.unwritten.clear();
            return Ok(());
        };
        for item in self.unwritten.drain(..) {
            match item {
                Unwritten::Order(order) => {
                    Self::write_order(journal.as_mut(), &self.account, &self.prefix, &order).await
                }
                Unwritten::Execution(e) => {
                    if let Err(err) = journal.record_execution(&e).await {
                        tracing::error!(error = %err, id = %e.execution_id, "could not record an execution");
                    }
                }
            }
        }
        Ok(())
    }
}

/// Strategies trading through a live (or simulated) venue.
pub struct LiveEngine<S: Strategy, V: LiveVenue> {
    dispatcher: Dispatcher<S>,
    router: Router,
    venue: V,
    sink: JournalSink,
    /// Quotes into bars for `on_bar` strategies (off until configured).
    bars: Option<BarBuilder>,
    /// The venue's clock, from the quotes' times.
    venue_clock: VenueClock,
    quotes: u64,
    bars_built: u64,
    scratch: Vec<Event>,
    pending: Vec<Event>,
}

impl<S: Strategy, V: LiveVenue> std::fmt::Debug for LiveEngine<S, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveEngine")
            .field("dispatcher", &self.dispatcher)
            .field("trading_state", &self.router.risk().state())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<S: Strategy, V: LiveVenue> LiveEngine<S, V> {
    /// An engine trading `strategies` on `venue`, screened by `risk`.
    /// `portfolio` is what strategies see at their first callback.
    pub fn new(
        strategies: Vec<S>,
        portfolio: Portfolio,
        risk: RiskConfig,
        venue: V,
        contracts: Contracts,
    ) -> Self {
        let account = venue.account().to_owned();
        let prefix = venue.coid_prefix().to_owned();
        LiveEngine {
            dispatcher: Dispatcher::new(strategies, portfolio),
            router: Router::new(risk, contracts),
            venue,
            sink: JournalSink {
                journal: None,
                account,
                prefix,
                unwritten: Vec::new(),
                telemetry: None,
            },
            bars: None,
            venue_clock: VenueClock::default(),
            quotes: 0,
            bars_built: 0,
            scratch: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Build bars of `period` from the quotes and deliver them to
    /// `on_bar`, so backtested strategies run live unchanged.
    pub fn with_bars(mut self, period: std::time::Duration) -> Self {
        self.bars = Some(BarBuilder::new(period));
        self
    }

    /// Record orders and executions in `journal` (exactly once per
    /// execution id), so a restarted bot knows what it owns and sent.
    pub fn with_journal(mut self, journal: Box<dyn Journal>) -> Self {
        self.sink.journal = Some(journal);
        self
    }

    /// Count order outcomes and risk refusals in `telemetry`, and publish
    /// the status snapshot there ([`LiveEngine::publish_status`]).
    pub fn with_telemetry(mut self, telemetry: Telemetry) -> Self {
        self.sink.telemetry = Some(telemetry);
        self
    }

    /// Hand the control endpoint what `GET /status` and `/metrics` show of
    /// the engine: trading state, positions, working orders, PnL and
    /// equity at the last marks. Call on a timer (the node: every second).
    pub fn publish_status(&self) {
        let Some(t) = &self.sink.telemetry else {
            return;
        };
        let p = self.dispatcher.portfolio();
        let realized = p.realized_pnl();
        // (mark - average) x quantity x multiplier over the holdings with a
        // mark; checked, since every factor came from the network.
        let unrealized = p
            .positions()
            .filter(|pos| !pos.is_flat())
            .filter_map(|pos| {
                let mark = p.mark_price(pos.conid)?;
                mark.checked_sub(pos.avg_price)?
                    .checked_mul(pos.quantity)?
                    .checked_mul(pos.multiplier)
            })
            .fold(Decimal::ZERO, |acc, x| acc.checked_add(x).unwrap_or(acc));
        let equity = p.equity();
        t.set_pnl(realized, unrealized);
        t.set_equity(equity);
        t.publish_status(StatusSnapshot {
            account: Some(self.sink.account.clone()),
            trading_state: format!("{:?}", self.trading_state()),
            positions: p
                .positions()
                .filter(|p| !p.is_flat())
                .map(PositionRow::from)
                .collect(),
            working_orders: self
                .dispatcher
                .orders()
                .open()
                .map(|o| WorkingOrderRow {
                    coid: wire_coid(&self.sink.prefix, &o.request.client_order_id),
                    conid: o.request.conid.0,
                    side: o.request.side.to_string(),
                    quantity: o.request.quantity,
                    filled: o.filled_quantity,
                    status: o.status.to_string(),
                    price: o.request.limit_price.or(o.request.stop_price),
                })
                .collect(),
            realized_pnl: realized,
            unrealized_pnl: unrealized,
            equity,
            ..StatusSnapshot::default()
        });
    }

    /// The dispatcher: strategies, portfolio, working orders.
    pub fn dispatcher(&self) -> &Dispatcher<S> {
        &self.dispatcher
    }

    /// The venue.
    pub fn venue(&self) -> &V {
        &self.venue
    }

    /// ForecastEx strikes strategies find through `Context::event_pair`
    /// (the venue nets; the engine only needs the pairs).
    pub fn set_event_pairing(&mut self, pairing: engine::forecastex::Pairing) {
        self.dispatcher.set_event_pairing(pairing);
    }

    /// Refuse orders in `conid` outside these hours (see [`engine::risk`]).
    pub fn set_trading_hours(&mut self, conid: Conid, hours: engine::hours::TradingHours) {
        self.router.risk_mut().set_trading_hours(conid, hours);
    }

    /// What the engine handled so far.
    pub fn stats(&self) -> LiveStats {
        let r = self.router.stats();
        LiveStats {
            quotes: self.quotes,
            bars: self.bars_built,
            order_updates: r.order_updates,
            executions: r.executions,
            rejected: r.rejected,
        }
    }

    /// Trading state (active, reducing, halted).
    pub fn trading_state(&self) -> TradingState {
        self.router.risk().state()
    }

    /// New orders wait (are refused with `reason`) until
    /// [`LiveEngine::resume`]: the venue cannot take them now. See
    /// [`engine::risk::RiskEngine::pause`].
    pub fn pause(&mut self, reason: &str) {
        self.router.risk_mut().pause(reason);
    }

    /// Take orders again.
    pub fn resume(&mut self) {
        self.router.risk_mut().resume();
    }

    /// `on_start`, and whatever the strategies asked for in it.
    pub async fn start(&mut self) {
        self.set_clocks();
        self.dispatcher.start();
        self.route().await;
    }

    /// Close bars whose period has ended (call on a timer). Only when the
    /// venue runs on the wall clock: on a replay (quotes stamped far from
    /// it, see [`VenueClock`]) bars close as later quotes arrive instead.
    pub async fn tick(&mut self) {
        let now = self.set_clocks();
        if let (Some(b), false) = (&mut self.bars, self.venue_clock.is_replay()) {
            for bar in b.flush(now) {
                self.bars_built += 1;
                self.dispatcher.on_bar(&bar);
            }
        }
        self.route().await;
    }

    /// Engine time is the wall clock (strategies' `now`, timers, the rate
    /// limit); trading hours are checked on the venue's clock. Returns the
    /// wall time.
    fn set_clocks(&mut self) -> Timestamp {
        let now = chrono::Utc::now();
        self.dispatcher.set_time(now);
        self.sync_venue_time(now);
        now
    }

    /// Hand risk the venue's time at wall time `now`.
    fn sync_venue_time(&mut self, now: Timestamp) {
        self.router
            .risk_mut()
            .set_venue_time(Some(self.venue_clock.now(now)));
    }

    /// `on_stop`, and whatever the strategies asked for in it.
    pub async fn stop(&mut self) {
        self.set_clocks();
        self.dispatcher.stop();
        self.route().await;
    }

    /// One message from the venue.
    pub async fn handle(&mut self, msg: V::Message) {
        let now = self.set_clocks();
        let mut events = std::mem::take(&mut self.scratch);
        self.venue
            .translate(msg, self.dispatcher.orders(), &mut events);
        for ev in events.drain(..) {
            match ev {
                Event::Quote(q) => {
                    self.dispatcher.on_quote(&q);
                    if let Some(t) = q.time {
                        self.venue_clock.observe(t, now);
                    }
                    self.quotes += 1;
                    if let Some(bar) = self.bars.as_mut().and_then(|b| b.on_quote(&q, now)) {
                        self.bars_built += 1;
                        self.dispatcher.on_bar(&bar);
                    }
                }
                other => self.pending.push(other),
            }
        }
        self.scratch = events;
        // Once per message, after its quotes moved the venue's clock and
        // before anything is routed.
        self.sync_venue_time(now);
        self.deliver_pending().await;
        let checked = self
            .router
            .check_equity(&mut self.dispatcher, &mut self.venue, &mut self.sink)
            .await
            .map(|_| ());
        self.after(checked).await;
        self.route().await;
    }

    /// Kill switch (operator, signal): halt trading and cancel every
    /// working order this engine placed.
    pub async fn kill(&mut self, reason: &str) {
        let done = self
            .router
            .kill(
                reason,
                &mut self.dispatcher,
                &mut self.venue,
                &mut self.sink,
            )
            .await;
        if let Err(e) = done {
            tracing::error!(error = %e, "while cancelling after the kill switch");
        }
    }

    /// Orderly stop: halt trading and cancel every working order, as the
    /// kill switch does, without raising the alarm.
    pub async fn shutdown(&mut self) {
        let done = self
            .router
            .shutdown(&mut self.dispatcher, &mut self.venue, &mut self.sink)
            .await;
        if let Err(e) = done {
            tracing::error!(error = %e, "while cancelling at shutdown");
        }
    }

    /// Deliver the venue reports waiting in `pending` through the router
    /// (portfolio, strategies, journal), then route what strategies ask.
    async fn deliver_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        let delivered = self
            .router
            .deliver(
                &mut self.dispatcher,
                &mut self.venue,
                &mut self.sink,
                &mut pending,
            )
            .await;
        self.pending = pending;
        self.after(delivered).await;
    }

    async fn route(&mut self) {
        let routed = self
            .router
            .route(&mut self.dispatcher, &mut self.venue, &mut self.sink)
            .await;
        let refusals = self.router.risk_mut().take_refusals();
        if let Some(t) = &self.sink.telemetry {
            for (kind, &n) in RiskReject::KINDS.iter().zip(&refusals) {
                if n > 0 {
                    t.risk_rejects(kind, n);
                }
            }
        }
        self.after(routed).await;
    }

    /// A strategy that keeps answering its own orders is a bug: halt
    /// trading and cancel everything rather than keep going.
    async fn after(&mut self, result: Result<(), RouteError>) {
        if let Err(e) = result {
            tracing::error!(error = %e, "routing stopped");
            self.kill(&e.to_string()).await;
        }
    }

    /// At start: ingest the venue's executions of the last 7 days (each
    /// recorded once), then compare the journal's positions and open
    /// orders with the venue's. Differences are returned, logged and
    /// delivered to strategies as [`Event::Discrepancy`], never overwritten.
    /// A fetch that fails fails the reconciliation (nothing is written): a
    /// comparison with what could not be fetched would report "no
    /// discrepancies" it never checked.
    pub async fn reconcile(&mut self) -> Result<Vec<Discrepancy>, JournalError> {
        if self.sink.journal.is_none() {
            return Ok(Vec::new());
        }
        let account = self.venue.account().to_owned();
        let mut report = VenueReport::default();
        let mut failed = Vec::new();
        match self.venue.executions().await {
            Ok(v) => {
                self.venue.mark_delivered(&v);
                report.executions = v;
            }
            Err(e) => {
                tracing::error!(error = %e, "reconcile: could not fetch the venue's executions");
                failed.push(format!("executions: {e}"));
            }
        }
        match self.venue.positions().await {
            Ok(p) => {
                report.positions = Some(
                    p.iter()
                        .map(|p| BrokerPosition {
                            account: account.clone(),
                            conid: p.conid,
                            quantity: p.quantity,
                        })
                        .collect(),
                )
            }
            Err(e) => {
                tracing::error!(error = %e, "reconcile: could not fetch positions");
                failed.push(format!("positions: {e}"));
            }
        }
        match self.venue.orders().await {
            Ok(orders) => {
                report.orders = Some(
                    orders
                        .iter()
                        .map(|o| BrokerOrder {
                            client_order_id: if o.strategy == usize::MAX {
                                o.request.client_order_id.clone()
                            } else {
                                wire_coid(&self.sink.prefix, &o.request.client_order_id)
                            },
                            status: o.status,
                            filled_quantity: o.filled_quantity,
                        })
                        .collect(),
                )
            }
            Err(e) => {
                tracing::error!(error = %e, "reconcile: could not fetch orders");
                failed.push(format!("orders: {e}"));
            }
        }
        if !failed.is_empty() {
            return Err(JournalError(format!(
                "reconciliation failed: could not fetch the venue's {}",
                failed.join("; ")
            )));
        }
        let Some(journal) = &mut self.sink.journal else {
            return Ok(Vec::new());
        };
        let found = journal.reconcile(&account, report).await?;
        if found.ingested > 0 {
            tracing::warn!(
                new = found.ingested,
                "reconcile: executions the journal had missed were ingested"
            );
        }
        for d in &found.discrepancies {
            tracing::warn!(discrepancy = ?d, "reconcile: venue and journal disagree");
            self.dispatcher
                .dispatch(Event::Discrepancy(format!("{d:?}")));
        }
        Ok(found.discrepancies)
    }
}

/// What only the IBKR venue can do for the engine: adopt an earlier run's
/// orders, and catch up on what the websocket missed.
impl<S: Strategy> LiveEngine<S, crate::broker::IbkrBroker> {
    /// Re-attach the working orders an earlier run of this bot placed to
    /// the strategies that placed them (see
    /// [`crate::broker::IbkrBroker::adopt_earlier_orders`]). Call before
    /// [`LiveEngine::start`], after [`LiveEngine::with_journal`] when there
    /// is a journal: it knows the bracket children by their gateway ids.
    /// Returns how many were adopted.
    pub async fn adopt_earlier_orders(&mut self) -> Result<usize, engine::venue::VenueError> {
        let strategies = self.dispatcher.strategies().len();
        let outbox = self.dispatcher.outbox();
        let known: std::collections::HashMap<String, engine::journal::WorkingOrderIds> =
            match &mut self.sink.journal {
                Some(j) => j.working_order_ids().await.unwrap_or_else(|e| {
                    tracing::warn!(error = %e,
                    "the journal's working orders could not be read: bracket children are not \
                     re-attached");
                    Vec::new()
                }),
                None => Vec::new(),
            }
            .into_iter()
            .map(|w| (w.broker_order_id.clone(), w))
            .collect();
        let orders = self
            .venue
            .adopt_earlier_orders(strategies, &known, || outbox.next_order_id())
            .await?;
        let n = orders.len();
        for order in orders {
            self.dispatcher.adopt_order(order);
        }
        Ok(n)
    }

    /// Mark the executions the venue reports now as already delivered (they
    /// are in the positions the portfolio was seeded with).
    pub async fn prime_executions(&mut self) -> Result<usize, engine::venue::VenueError> {
        self.venue.prime_executions().await
    }

    /// After a websocket gap or a session re-init, before trading resumes:
    /// the executions and order changes the feed missed, delivered through
    /// the same exactly-once path as the feed's own (portfolio, strategies,
    /// journal), then whatever the strategies ask in reaction routed.
    pub async fn catch_up(&mut self) -> Result<crate::broker::CaughtUp, engine::venue::VenueError> {
        self.set_clocks();
        let mut events = std::mem::take(&mut self.scratch);
        let found = self
            .venue
            .catch_up(self.dispatcher.orders(), &mut events)
            .await;
        self.pending.append(&mut events);
        self.scratch = events;
        self.deliver_pending().await;
        found
    }
}

/// Restarts: saved strategy state and warm-up (see `engine::strategy`).
///
/// A restarted bot should not behave like a newborn one: its strategies
/// find the state they saved ([`LiveEngine::restore_states`], persisted by
/// [`LiveEngine::persist_states`]) and indicators already built from recent
/// history ([`LiveEngine::warm_up`]), so they neither forget what they
/// knew nor trade on half-built indicators. Start-up order:
/// [`LiveEngine::reconcile`], [`LiveEngine::restore_states`],
/// [`LiveEngine::start`], [`LiveEngine::warm_up`] (with
/// [`LiveEngine::warmup_bars`] bars per contract), then the live loop,
/// calling [`LiveEngine::persist_states`] after each routed batch
/// ([`LiveEngine::handle`], [`LiveEngine::tick`]) and after
/// [`LiveEngine::stop`].
impl<S: Strategy, V: LiveVenue> LiveEngine<S, V> {
    /// Hand the strategies the states the journal kept from earlier runs;
    /// call before [`LiveEngine::start`], so `on_start` can read them. A
    /// state goes back only to a strategy of the same name at the same
    /// index (others are logged and left in the journal until overwritten).
    /// Returns how many were handed over; `Ok(0)` without a journal. A
    /// journal that cannot be read is an error: starting as if nothing had
    /// been saved is the caller's decision.
    pub async fn restore_states(&mut self) -> Result<usize, JournalError> {
        let Some(journal) = &mut self.sink.journal else {
            return Ok(0);
        };
        let saved = journal.load_strategy_states().await?;
        let found = saved.len();
        let restored = self.dispatcher.restore_states(saved);
        tracing::info!(found, restored, "strategy states restored from the journal");
        Ok(restored)
    }

    /// Write the states strategies saved since the last call to the
    /// journal (last write wins); returns how many were written. Cheap when
    /// nothing was saved. A write that fails is logged and retried at the
    /// next call (the state stays in memory meanwhile), never fatal to
    /// trading. Without a journal, states live in memory only and nothing
    /// is written.
    pub async fn persist_states(&mut self) -> usize {
        if !self.dispatcher.has_dirty_states() {
            return 0;
        }
        let dirty = self.dispatcher.take_dirty_states();
        let Some(journal) = &mut self.sink.journal else {
            return 0;
        };
        let mut written = 0;
        for st in dirty {
            match journal
                .save_strategy_state(st.index, &st.name, &st.json)
                .await
            {
                Ok(()) => written += 1,
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        index = st.index,
                        strategy = %st.name,
                        "could not persist a strategy state; retrying at the next save"
                    );
                    self.dispatcher.mark_state_dirty(st.index);
                }
            }
        }
        written
    }

    /// The most bars of history (per contract) a strategy asks for: how
    /// many recent completed bars, of the period live bars are built with,
    /// to fetch before [`LiveEngine::warm_up`]. Zero: no history needed.
    pub fn warmup_bars(&self) -> usize {
        self.dispatcher.warmup_bars()
    }

    /// Replay recent history through the strategies' `on_bar` before the
    /// first live bar, so their indicators are built (see
    /// `Dispatcher::warm_up`): call after [`LiveEngine::start`], with
    /// completed bars older than the first live one. Nothing is routed:
    /// orders and timers asked for during warm-up are dropped, and the
    /// portfolio and the engine clock are left as they were. Returns how
    /// many `on_bar` calls were made.
    pub fn warm_up(&mut self, bars: &[engine::model::Bar]) -> usize {
        let calls = self.dispatcher.warm_up(bars);
        tracing::info!(bars = bars.len(), calls, "strategies warmed up on history");
        calls
    }
}
