//! The dispatcher that feeds events to strategies.
//!
//! The [`Dispatcher`] owns the strategies and the account state they read.
//! Every event first updates that state (an execution moves cash and
//! position, a bar marks the position) and is then delivered to strategies in
//! registration order, so a run is reproducible event for event. Intents the
//! strategies emit wait in the [`Outbox`] until the driver (backtest loop or
//! live runner) collects them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rust_decimal::Decimal;

use crate::event::Event;
use crate::forecastex::Pairing;
use crate::model::{Bar, Conid, Execution, Order, Quote, Timestamp};
use crate::portfolio::Portfolio;
use crate::strategy::{Context, Outbox, Strategy, TimerId};
use crate::working_orders::WorkingOrders;

/// Owns strategies, portfolio, order book and timers; routes events.
pub struct Dispatcher<S: Strategy = Box<dyn Strategy>> {
    strategies: Vec<S>,
    portfolio: Portfolio,
    orders: WorkingOrders,
    outbox: Outbox,
    timers: BinaryHeap<Reverse<(Timestamp, u64, usize)>>,
    now: Timestamp,
    /// ForecastEx YES/NO pairs strategies can look up (empty unless given).
    events: Pairing,
}

impl<S: Strategy> std::fmt::Debug for Dispatcher<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("strategies", &self.strategies.len())
            .field("now", &self.now)
            .field("working_orders", &self.orders.len())
            .finish_non_exhaustive()
    }
}

impl<S: Strategy> Dispatcher<S> {
    /// Strategies in the order they hear every event (index = position),
    /// over a portfolio that may already hold positions and cash. Engine
    /// time starts at the Unix epoch until the first event sets it.
    pub fn new(strategies: Vec<S>, portfolio: Portfolio) -> Self {
        Dispatcher {
            strategies,
            portfolio,
            orders: WorkingOrders::default(),
            outbox: Outbox::default(),
            timers: BinaryHeap::new(),
            now: Timestamp::UNIX_EPOCH,
            events: Pairing::default(),
        }
    }

    /// The ForecastEx strikes strategies see through
    /// [`Context::event_pair`]: from `/trsrv/event/contracts` live, from a
    /// saved copy in a backtest.
    pub fn set_event_pairing(&mut self, pairing: Pairing) {
        self.events = pairing;
    }

    /// The ForecastEx strikes given with [`Self::set_event_pairing`]; empty
    /// by default.
    pub fn event_pairing(&self) -> &Pairing {
        &self.events
    }

    /// The account state every strategy reads.
    pub fn portfolio(&self) -> &Portfolio {
        &self.portfolio
    }

    /// For drivers that seed or reconcile the account (a live start from
    /// the broker's positions and cash); strategies never get this.
    pub fn portfolio_mut(&mut self) -> &mut Portfolio {
        &mut self.portfolio
    }

    /// Working orders of every strategy, as folded from venue reports.
    pub fn orders(&self) -> &WorkingOrders {
        &self.orders
    }

    /// How many finished orders to remember against late reports (see
    /// [`WorkingOrders::set_finished_memory`]).
    pub fn set_finished_memory(&mut self, n: usize) {
        self.orders.set_finished_memory(n);
    }

    /// Take over a working order an earlier run placed (a restarted live
    /// bot), owned by `order.strategy`, under an id drawn from
    /// [`Outbox::next_order_id`]: before `on_start`, so the strategy finds
    /// it among its open orders instead of placing it again. No strategy is
    /// called.
    pub fn adopt_order(&mut self, order: Order) {
        self.orders.update(order);
    }

    /// Intents and timers the strategies emitted; the driver drains the
    /// intents after each event and hands them to the router.
    pub fn outbox(&mut self) -> &mut Outbox {
        &mut self.outbox
    }

    /// The strategies, in registration (dispatch) order.
    pub fn strategies(&self) -> &[S] {
        &self.strategies
    }

    /// Engine time: the latest bar, quote, fill or timer time seen; never
    /// goes backwards.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Advance engine time. Time never goes backwards.
    pub fn set_time(&mut self, now: Timestamp) {
        if now > self.now {
            self.now = now;
        }
    }

    // Always inlined: it is the per-bar path of every backtest, and whether
    // the compiler inlines it should not depend on how much other code
    // shares its codegen unit.
    #[inline(always)]
    fn each(&mut self, mut f: impl FnMut(&mut S, &mut Context<'_>)) {
        for (i, s) in self.strategies.iter_mut().enumerate() {
            let mut ctx = Context::new(
                self.now,
                i,
                &self.portfolio,
                &self.orders,
                &self.events,
                &mut self.outbox,
            );
            f(s, &mut ctx);
        }
        self.collect_timers();
    }

    fn one(&mut self, idx: usize, f: impl FnOnce(&mut S, &mut Context<'_>)) {
        self.one_seeing_orders(idx, |s, ctx, _| f(s, ctx));
    }

    /// [`Dispatcher::one`], with the working orders lent to `f` beside the
    /// context: an order update hands the strategy the order's state as
    /// the working orders hold it.
    fn one_seeing_orders(
        &mut self,
        idx: usize,
        f: impl FnOnce(&mut S, &mut Context<'_>, &WorkingOrders),
    ) {
        if let Some(s) = self.strategies.get_mut(idx) {
            let mut ctx = Context::new(
                self.now,
                idx,
                &self.portfolio,
                &self.orders,
                &self.events,
                &mut self.outbox,
            );
            f(s, &mut ctx, &self.orders);
        }
        self.collect_timers();
    }

    #[inline]
    fn collect_timers(&mut self) {
        if !self.outbox.timers.is_empty() {
            for (strategy, id, at) in self.outbox.drain_timers() {
                self.timers.push(Reverse((at, id.0, strategy)));
            }
        }
    }

    /// Call every strategy's `on_start`, once, before the first event.
    pub fn start(&mut self) {
        self.each(|s, ctx| s.on_start(ctx));
    }

    /// Call every strategy's `on_stop`, once, after the last event.
    pub fn stop(&mut self) {
        self.each(|s, ctx| s.on_stop(ctx));
    }

    /// Deliver a bar: mark the portfolio at its close, then call `on_bar`.
    /// Takes the bar by reference; the per-bar path copies nothing.
    #[inline(always)]
    pub fn on_bar(&mut self, bar: &Bar) {
        self.set_time(bar.time);
        self.portfolio.mark(bar.conid, bar.close);
        self.each(|s, ctx| s.on_bar(ctx, bar));
    }

    /// Deliver a quote: advance time to its stamp (if any), mark the
    /// portfolio at its last price (or mid), then call `on_quote`.
    pub fn on_quote(&mut self, quote: &Quote) {
        if let Some(t) = quote.time {
            self.set_time(t);
        }
        if let Some(p) = quote.last.or_else(|| quote.mid()) {
            self.portfolio.mark(quote.conid, p);
        }
        self.each(|s, ctx| s.on_quote(ctx, quote));
    }

    /// Fold a report of an order into the working orders, then tell its
    /// owner what changed. A repeated or stale report changes nothing and
    /// nobody hears it; returns whether the order changed.
    pub fn on_order_update(&mut self, order: Order) -> bool {
        match self.deliver_order(order, |_| Ok::<(), std::convert::Infallible>(())) {
            Ok(changed) => changed,
            Err(never) => match never {},
        }
    }

    /// [`Dispatcher::on_order_update`], with `record` shown the order's new
    /// state before its owner hears it (the router's sink); an error from
    /// `record` is returned and nobody is told.
    pub(crate) fn deliver_order<E>(
        &mut self,
        order: Order,
        record: impl FnOnce(&Order) -> Result<(), E>,
    ) -> Result<bool, E> {
        let applied = self.orders.update(order);
        let Some(changed) = applied.order(&self.orders) else {
            return Ok(false);
        };
        record(changed)?;
        let idx = changed.strategy;
        self.one_seeing_orders(idx, |s, ctx, orders| {
            if let Some(o) = applied.order(orders) {
                s.on_order_update(ctx, o);
            }
        });
        Ok(true)
    }

    /// Book an execution, then tell the owner of its order (working or
    /// recently finished: a fill often arrives after the update that
    /// closed its order), or every strategy when the order is not one of
    /// ours.
    pub fn on_execution(&mut self, exec: &Execution) {
        let owner = exec.order_id.and_then(|id| self.orders.owner(id));
        self.set_time(exec.time);
        self.portfolio.apply(exec);
        match owner {
            Some(i) => self.one(i, |s, ctx| s.on_execution(ctx, exec)),
            None => self.each(|s, ctx| s.on_execution(ctx, exec)),
        }
    }

    /// Fire every timer due at or before `now`, earliest first.
    pub fn fire_timers(&mut self, now: Timestamp) {
        while let Some(Reverse((at, id, strategy))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            self.set_time(at);
            self.one(strategy, |s, ctx| s.on_timer(ctx, TimerId(id)));
        }
    }

    /// Earliest pending timer, if any.
    pub fn next_timer(&self) -> Option<Timestamp> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Route any event. Orders and executions of unknown owners go to all
    /// strategies.
    pub fn dispatch(&mut self, event: Event) {
        match event {
            Event::Bar(b) => self.on_bar(&b),
            Event::Quote(q) => self.on_quote(&q),
            Event::OrderUpdate(o) => {
                self.on_order_update(o);
            }
            Event::Execution(e) => self.on_execution(&e),
            Event::Timer { strategy, id, at } => {
                self.set_time(at);
                self.one(strategy, |s, ctx| s.on_timer(ctx, id));
            }
            Event::Session(_) | Event::Pnl(_) | Event::Discrepancy(_) | Event::Bulletin { .. } => {
                self.each(|s, ctx| s.on_event(ctx, &event))
            }
        }
    }

    /// Mark-to-market helper for drivers that know a price without a bar.
    pub fn mark(&mut self, conid: Conid, price: Decimal) {
        self.portfolio.mark(conid, price);
    }
}
