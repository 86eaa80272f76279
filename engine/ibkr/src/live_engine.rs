//! The live engine loop: strategies, risk and a CP Web API broker, fed by
//! the websocket.
//!
//! Order updates (`sor`) are folded into each order's [`OrderState`] (so a
//! repeated or stale update never reaches a strategy twice or backwards),
//! executions (`str`, already de-duplicated by execution id) move the
//! portfolio, quotes mark it. After every event the strategies' intents go
//! through risk and then to the broker, one submission at a time.

use std::collections::BTreeMap;

use tokio::sync::mpsc;

use crate::broker::IbkrBroker;
use crate::ws::WsMessage;
use cpapi::messages::LiveOrder;
use engine::bars::BarBuilder;
use engine::dispatch::Dispatcher;
use engine::event::Event;
use engine::journal::{
    BrokerOrder, BrokerPosition, Discrepancy, Journal, JournalError, JournalOrder, VenueReport,
};
use engine::model::{Conid, Contract, Order, OrderId};
use engine::order_state::{is_final, OrderState};
use engine::portfolio::Portfolio;
use engine::risk::{RiskConfig, RiskEngine};
use engine::strategy::{Intent, Strategy};
use engine::venue::{OrderChanges, Venue};

/// Strategies trading through a live (or simulated) gateway.
pub struct LiveEngine<S: Strategy> {
    dispatcher: Dispatcher<S>,
    risk: RiskEngine,
    broker: IbkrBroker,
    contracts: Vec<Contract>,
    orders: BTreeMap<OrderId, (OrderState, Order)>,
    /// Quotes into bars for `on_bar` strategies (off until configured).
    bars: Option<BarBuilder>,
    /// Time stamp of the latest quote (the feed's clock).
    feed_time: Option<chrono::DateTime<chrono::Utc>>,
    stats: LiveStats,
    /// Where orders and executions are recorded, when configured.
    journal: Option<Box<dyn Journal>>,
    /// Orders changed by broker answers, written at the end of a routing
    /// round.
    unsaved: Vec<Order>,
}

/// Counters of what a live run handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LiveStats {
    pub quotes: u64,
    pub bars: u64,
    pub order_updates: u64,
    pub executions: u64,
    pub rejected: u64,
}

impl<S: Strategy> LiveEngine<S> {
    pub fn new(
        strategies: Vec<S>,
        portfolio: Portfolio,
        risk: RiskConfig,
        mut broker: IbkrBroker,
        contracts: Vec<Contract>,
    ) -> Self {
        for c in &contracts {
            broker.add_contract(c.clone());
        }
        LiveEngine {
            dispatcher: Dispatcher::new(strategies, portfolio),
            risk: RiskEngine::new(risk),
            broker,
            contracts,
            orders: BTreeMap::new(),
            bars: None,
            feed_time: None,
            stats: LiveStats::default(),
            journal: None,
            unsaved: Vec::new(),
        }
    }

    /// Build bars of `period` from the quotes and deliver them to
    /// `on_bar`, so backtested strategies run live unchanged.
    pub fn with_bars(mut self, period: std::time::Duration) -> Self {
        self.bars = Some(BarBuilder::new(period));
        self
    }

    /// Close bars whose period has ended (call on a timer). Only for a
    /// live feed: when the quotes carry times far from the wall clock (a
    /// replay), bars close as later quotes arrive instead.
    pub async fn tick(&mut self) {
        let now = chrono::Utc::now();
        self.dispatcher.set_time(now);
        let live_feed = self
            .feed_time
            .is_some_and(|t| (now - t).num_minutes().abs() < 10);
        if let (Some(b), true) = (&mut self.bars, live_feed) {
            for bar in b.flush(now) {
                self.stats.bars += 1;
                self.dispatcher.on_bar(&bar);
            }
        }
        self.route_intents().await;
    }

    pub fn dispatcher(&self) -> &Dispatcher<S> {
        &self.dispatcher
    }

    pub fn broker(&self) -> &IbkrBroker {
        &self.broker
    }

    /// Refuse orders in `conid` outside these hours (see [`engine::risk`]).
    /// ForecastEx strikes strategies find through `Context::event_pair`
    /// (the venue nets; the engine only needs the pairs).
    pub fn set_event_pairing(&mut self, pairing: engine::forecastex::Pairing) {
        self.dispatcher.set_event_pairing(pairing);
    }

    pub fn set_trading_hours(&mut self, conid: Conid, hours: engine::hours::TradingHours) {
        self.risk.set_trading_hours(conid, hours);
    }

    pub fn stats(&self) -> LiveStats {
        self.stats
    }

    /// `on_start`, and whatever the strategies asked for in it.
    pub async fn start(&mut self) {
        self.dispatcher.set_time(chrono::Utc::now());
        self.dispatcher.start();
        self.route_intents().await;
    }

    /// Handle websocket messages until the channel closes or `stop`
    /// resolves, closing bars on a one-second timer.
    pub async fn run(
        &mut self,
        mut rx: mpsc::Receiver<WsMessage>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut timer = tokio::time::interval(std::time::Duration::from_secs(1));
        tokio::pin!(stop);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => self.handle(m).await,
                    None => break,
                },
                _ = timer.tick() => self.tick().await,
                _ = &mut stop => break,
            }
        }
        self.stop().await;
    }

    /// `on_stop`, and whatever the strategies asked for in it.
    pub async fn stop(&mut self) {
        self.dispatcher.stop();
        self.route_intents().await;
    }

    /// One websocket message.
    pub async fn handle(&mut self, msg: WsMessage) {
        self.dispatcher.set_time(chrono::Utc::now());
        match msg {
            WsMessage::OrderUpdate(lo) => {
                if let Some(order) = self.on_sor(&lo) {
                    self.persist_order(&order).await;
                }
            }
            WsMessage::Event(Event::Execution(mut e)) => {
                if e.order_id.is_none() {
                    e.order_id = e
                        .order_ref
                        .as_deref()
                        .and_then(|r| self.broker.engine_id_by_ref(r));
                }
                self.stats.executions += 1;
                self.persist_execution(&e).await;
                let owner = e
                    .order_id
                    .and_then(|id| self.orders.get(&id))
                    .map(|(_, o)| o.strategy);
                self.dispatcher.on_execution(&e, owner);
            }
            WsMessage::Event(Event::Quote(q)) => {
                self.dispatcher.on_quote(&q);
                let now = chrono::Utc::now();
                self.feed_time = Some(q.time.unwrap_or(now));
                self.stats.quotes += 1;
                if let Some(bar) = self.bars.as_mut().and_then(|b| b.on_quote(&q, now)) {
                    self.stats.bars += 1;
                    self.dispatcher.on_bar(&bar);
                }
            }
            WsMessage::Event(ev) => self.dispatcher.dispatch(&ev),
            WsMessage::Disconnected { reason } => {
                tracing::warn!(%reason, "websocket lost; it reconnects and resubscribes")
            }
            WsMessage::Malformed { error } => tracing::warn!(%error, "malformed websocket message"),
            _ => {}
        }
        if self.risk.on_equity(self.dispatcher.portfolio().equity()) {
            self.cancel_all().await;
        }
        self.route_intents().await;
    }

    /// Kill switch (operator, signal): halt trading and cancel every
    /// working order this engine placed.
    pub async fn kill(&mut self, reason: &str) {
        self.risk.kill(reason);
        self.cancel_all().await;
        // Strategies hear of the cancels and may react; risk refuses what
        // they send now.
        self.route_intents().await;
    }

    /// Orderly stop: halt trading and cancel every working order, as the
    /// kill switch does, without raising the alarm.
    pub async fn shutdown(&mut self) {
        tracing::info!("shutting down: cancelling working orders, trading halted");
        self.risk.halt_quietly("shutdown");
        self.cancel_all().await;
        self.route_intents().await;
    }

    pub fn trading_state(&self) -> engine::risk::TradingState {
        self.risk.state()
    }

    async fn cancel_all(&mut self) {
        let working: Vec<OrderId> = self
            .orders
            .iter()
            .filter(|(_, (state, _))| !is_final(state.status))
            .map(|(id, _)| *id)
            .collect();
        for id in working {
            match self.broker.cancel(id).await {
                Ok(o) => self.record(&o),
                Err(e) => tracing::warn!(%id, error = %e, "cancel failed"),
            }
        }
    }

    /// A `sor` update: fold it into the order's state; tell the owner only
    /// when something changed.
    fn on_sor(&mut self, lo: &LiveOrder) -> Option<Order> {
        let Some(id) = lo
            .order_id
            .as_deref()
            .and_then(|b| self.broker.engine_id(b))
        else {
            tracing::debug!(order = ?lo.order_id, "update for an order this engine did not place");
            return None;
        };
        let Ok(status) = lo.order_status() else {
            tracing::warn!(status = ?lo.status, "order update with an unknown status");
            return None;
        };
        let (state, order) = self.orders.get_mut(&id)?;
        if !state.apply(status, lo.filled_quantity) {
            return None;
        }
        order.status = state.status;
        order.filled_quantity = state.filled;
        if lo.avg_price.is_some() {
            order.avg_fill_price = lo.avg_price;
        }
        order.updated = self.dispatcher.now();
        let order = order.clone();
        self.stats.order_updates += 1;
        self.dispatcher.on_order_update(&order);
        Some(order)
    }

    /// An order as the broker just answered for it (placed, cancel
    /// requested, modified): recorded, and the owner told when it is new or
    /// changed.
    fn record(&mut self, order: &Order) {
        let changed = match self.orders.get_mut(&order.id()) {
            None => {
                self.orders
                    .insert(order.id(), (OrderState::new(order.status), order.clone()));
                true
            }
            Some((state, known)) => {
                let moved = state.apply(order.status, None);
                let reshaped = known.request != order.request;
                known.request = order.request.clone();
                known.status = state.status;
                moved || reshaped
            }
        };
        if changed {
            if let Some((_, o)) = self.orders.get(&order.id()) {
                let o = o.clone();
                self.dispatcher.on_order_update(&o);
                if self.journal.is_some() {
                    self.unsaved.push(o);
                }
            }
        }
    }

    /// Intents -> risk -> broker, until the strategies are quiet.
    async fn route_intents(&mut self) {
        for _round in 0..100 {
            for o in std::mem::take(&mut self.unsaved) {
                self.persist_order(&o).await;
            }
            let intents: Vec<_> = self.dispatcher.outbox().drain_intents().collect();
            if intents.is_empty() {
                return;
            }
            for (strategy, intent) in intents {
                let now = self.dispatcher.now();
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
                        self.stats.rejected += 1;
                        for o in &refused {
                            self.dispatcher.on_order_update(o);
                        }
                        continue;
                    }
                };
                match intent {
                    Intent::Place(batch) => {
                        match self.broker.place(strategy, batch.clone()).await {
                            Ok(orders) => {
                                for o in &orders {
                                    self.record(o);
                                }
                            }
                            Err(e) => {
                                tracing::warn!(strategy, error = %e, "order refused");
                                for req in batch {
                                    let o = Order::rejected(req, strategy, now, e.to_string());
                                    self.dispatcher.on_order_update(&o);
                                }
                            }
                        }
                    }
                    Intent::Cancel(id) => match self.broker.cancel(id).await {
                        Ok(o) => self.record(&o),
                        Err(e) => tracing::warn!(%id, error = %e, "cancel failed"),
                    },
                    Intent::Modify {
                        id,
                        quantity,
                        limit_price,
                        stop_price,
                    } => {
                        let changes = OrderChanges {
                            quantity,
                            limit_price,
                            stop_price,
                        };
                        match self.broker.modify(id, changes).await {
                            Ok(o) => self.record(&o),
                            Err(e) => tracing::warn!(%id, error = %e, "modify failed"),
                        }
                    }
                }
            }
        }
        tracing::error!("strategies kept emitting intents for 100 rounds; stopped routing");
    }
}

impl<S: Strategy> LiveEngine<S> {
    /// Record orders and executions in `journal` (exactly once per
    /// execution id), so a restarted bot knows what it owns and sent.
    pub fn with_journal(mut self, journal: Box<dyn Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    async fn persist_order(&mut self, order: &Order) {
        let Some(journal) = &mut self.journal else {
            return;
        };
        let coid = self.broker.wire_coid(&order.request.client_order_id);
        let parent = order
            .request
            .parent
            .as_deref()
            .map(|p| self.broker.wire_coid(p));
        let row = JournalOrder {
            order,
            account: self.broker.account(),
            client_order_id: &coid,
            parent: parent.as_deref(),
        };
        if let Err(e) = journal.record_order(row).await {
            tracing::error!(error = %e, %coid, "could not record an order");
        }
    }

    async fn persist_execution(&mut self, e: &engine::model::Execution) {
        let Some(journal) = &mut self.journal else {
            return;
        };
        if let Err(err) = journal.record_execution(e).await {
            tracing::error!(error = %err, id = %e.execution_id, "could not record an execution");
        }
    }

    /// At start: ingest the broker's executions of the last 7 days (each
    /// recorded once), then compare the journal's positions and open
    /// orders with the broker's. Differences are returned, logged and
    /// delivered to strategies as [`Event::Discrepancy`], never overwritten.
    pub async fn reconcile(&mut self) -> Result<Vec<Discrepancy>, JournalError> {
        if self.journal.is_none() {
            return Ok(Vec::new());
        }
        let account = self.broker.account().to_owned();
        let mut venue = VenueReport::default();
        match self.broker.executions().await {
            Ok(v) => venue.executions = v,
            Err(e) => {
                tracing::error!(error = %e, "reconcile: could not fetch the broker's executions")
            }
        }
        match self.broker.positions().await {
            Ok(p) => {
                venue.positions = Some(
                    p.iter()
                        .map(|p| BrokerPosition {
                            account: account.clone(),
                            conid: p.conid,
                            quantity: p.quantity,
                        })
                        .collect(),
                )
            }
            Err(e) => tracing::error!(error = %e, "reconcile: could not fetch positions"),
        }
        match self.broker.orders().await {
            Ok(orders) => {
                venue.orders = Some(
                    orders
                        .iter()
                        .map(|o| BrokerOrder {
                            client_order_id: if o.strategy == usize::MAX {
                                o.request.client_order_id.clone()
                            } else {
                                self.broker.wire_coid(&o.request.client_order_id)
                            },
                            status: o.status,
                            filled_quantity: o.filled_quantity,
                        })
                        .collect(),
                )
            }
            Err(e) => tracing::error!(error = %e, "reconcile: could not fetch orders"),
        }
        let Some(journal) = &mut self.journal else {
            return Ok(Vec::new());
        };
        let found = journal.reconcile(&account, venue).await?;
        if found.ingested > 0 {
            tracing::warn!(
                new = found.ingested,
                "reconcile: executions the journal had missed were ingested"
            );
        }
        for d in &found.discrepancies {
            tracing::warn!(discrepancy = ?d, "reconcile: broker and journal disagree");
            self.dispatcher
                .dispatch(&Event::Discrepancy(format!("{d:?}")));
        }
        Ok(found.discrepancies)
    }
}
