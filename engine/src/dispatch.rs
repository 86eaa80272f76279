//! The dispatcher that feeds events to strategies.
//!
//! The [`Dispatcher`] owns the strategies and the account state they read.
//! Every event first updates that state (an execution moves cash and
//! position, a bar marks the position) and is then delivered to strategies in
//! registration order, so a run is reproducible event for event. Intents the
//! strategies emit wait in the [`Outbox`] until the driver (backtest loop or
//! live runner) collects them.
//!
//! The dispatcher also keeps each strategy's saved state (see
//! [`crate::strategy`]): what [`Dispatcher::restore_states`] handed over
//! from an earlier run, and what the strategies saved since, until the
//! driver takes it with [`Dispatcher::take_dirty_states`] to persist it (a
//! backtest never does: its states live in memory only). And it replays
//! history for warm-up ([`Dispatcher::warm_up`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rust_decimal::Decimal;

use crate::event::Event;
use crate::forecastex::Pairing;
use crate::model::{Bar, Conid, Execution, Order, Quote, Timestamp};
use crate::portfolio::Portfolio;
use crate::strategy::{Context, Outbox, SavedState, StateSlot, Strategy, TimerId};
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
    /// Saved state of each strategy, by index.
    states: Vec<StateSlot>,
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
        let states = vec![StateSlot::default(); strategies.len()];
        Dispatcher {
            states,
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
        let slots = self.strategies.iter_mut().zip(self.states.iter_mut());
        for (i, (s, slot)) in slots.enumerate() {
            let mut ctx = Context::new(
                self.now,
                i,
                &self.portfolio,
                &self.orders,
                &self.events,
                &mut self.outbox,
            )
            .with_state(slot);
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
        if let (Some(s), Some(slot)) = (self.strategies.get_mut(idx), self.states.get_mut(idx)) {
            let mut ctx = Context::new(
                self.now,
                idx,
                &self.portfolio,
                &self.orders,
                &self.events,
                &mut self.outbox,
            )
            .with_state(slot);
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

    /// Hand the states an earlier run saved (from the journal) back to
    /// their strategies, before [`Dispatcher::start`]: each goes to the
    /// strategy at its index when that strategy has the same
    /// [`Strategy::name`]. A state whose index is past the last strategy,
    /// or whose strategy's name changed, is not handed over (a warning
    /// names it): another strategy's state would be read as its own.
    /// Returns how many states were handed over.
    pub fn restore_states(&mut self, saved: impl IntoIterator<Item = SavedState>) -> usize {
        let mut restored = 0;
        for st in saved {
            match self.strategies.get(st.index) {
                Some(s) if s.name() == st.name => {
                    if let Some(slot) = self.states.get_mut(st.index) {
                        *slot = StateSlot::restored(st.json);
                        restored += 1;
                    }
                }
                Some(s) => tracing::warn!(
                    index = st.index,
                    saved_by = %st.name,
                    now = %s.name(),
                    "a saved strategy state belongs to another strategy than the one now at \
                     its index; not handed over (it is replaced once the strategy saves)"
                ),
                None => tracing::warn!(
                    index = st.index,
                    saved_by = %st.name,
                    strategies = self.strategies.len(),
                    "a saved strategy state's index is past the last strategy of this run; \
                     not handed over"
                ),
            }
        }
        restored
    }

    /// The state strategy `index` holds now (saved this run, else handed
    /// over by [`Dispatcher::restore_states`]), as JSON.
    pub fn state_json(&self, index: usize) -> Option<&str> {
        self.states.get(index).and_then(StateSlot::json)
    }

    /// True when a strategy saved state since the last
    /// [`Dispatcher::take_dirty_states`]; cheap, for the driver's hot path.
    pub fn has_dirty_states(&self) -> bool {
        self.states.iter().any(StateSlot::is_dirty)
    }

    /// The states saved since the last call (the latest of each strategy
    /// only, by index), for the driver to persist; clears the dirty set.
    /// Allocates nothing when nothing was saved.
    pub fn take_dirty_states(&mut self) -> Vec<SavedState> {
        let mut out = Vec::new();
        for (index, (s, slot)) in self.strategies.iter().zip(&mut self.states).enumerate() {
            if let Some(json) = slot.take_dirty() {
                out.push(SavedState {
                    index,
                    name: s.name().to_owned(),
                    json: json.to_owned(),
                });
            }
        }
        out
    }

    /// Put strategy `index`'s state back in the dirty set (persisting it
    /// failed), so the next [`Dispatcher::take_dirty_states`] returns it
    /// again.
    pub fn mark_state_dirty(&mut self, index: usize) {
        if let Some(slot) = self.states.get_mut(index) {
            slot.mark_dirty();
        }
    }

    /// The most bars of history any strategy asks for
    /// ([`Strategy::warmup_bars`]): how many recent bars per contract the
    /// driver should fetch for [`Dispatcher::warm_up`].
    pub fn warmup_bars(&self) -> usize {
        self.strategies
            .iter()
            .map(Strategy::warmup_bars)
            .max()
            .unwrap_or(0)
    }

    /// Build the strategies' indicators from history before live data:
    /// `bars` are delivered to `on_bar` in time order (stable: bars of the
    /// same time keep their order), each strategy getting only the last
    /// [`Strategy::warmup_bars`] bars of each contract (none when it asks
    /// for none), through a context that [`Context::is_warming_up`].
    ///
    /// History is not the present, so warm-up changes nothing but the
    /// strategies: intents and timers they ask for are dropped (counted,
    /// and logged as a warning); pending timers do not fire; the portfolio
    /// is not marked at the bars' closes (positions keep their live marks:
    /// a stale close would misstate equity and the risk checks built on
    /// it); engine time does not move (the context's `now` is each bar's
    /// time, as in a backtest). Saved state may be read and saved.
    ///
    /// Pass completed bars of the period live bars are built with, older
    /// than the first live bar; call it after [`Dispatcher::start`] (a
    /// backtest also starts its strategies before the first bar). Returns
    /// how many `on_bar` calls were made.
    pub fn warm_up(&mut self, bars: &[Bar]) -> usize {
        let wants: Vec<usize> = self.strategies.iter().map(Strategy::warmup_bars).collect();
        if bars.is_empty() || wants.iter().all(|&n| n == 0) {
            return 0;
        }
        let mut order: Vec<usize> = (0..bars.len()).collect();
        order.sort_by_key(|&i| bars[i].time);
        // Per contract: (conid, bars in the history, bars delivered so far).
        let mut per_conid: Vec<(Conid, usize, usize)> = Vec::new();
        for b in bars {
            match per_conid.iter_mut().find(|(c, _, _)| *c == b.conid) {
                Some(e) => e.1 += 1,
                None => per_conid.push((b.conid, 1, 0)),
            }
        }
        let dropped_before = self.outbox.dropped;
        let mut calls = 0;
        for i in order {
            let bar = &bars[i];
            let Some(entry) = per_conid.iter_mut().find(|(c, _, _)| *c == bar.conid) else {
                continue;
            };
            // This bar is the `rank`-th of its contract, `total` in all:
            // strategy `s` gets it when it is among the last `wants[s]`.
            let (total, rank) = (entry.1, entry.2);
            entry.2 += 1;
            let slots = self.strategies.iter_mut().zip(self.states.iter_mut());
            for (idx, (s, slot)) in slots.enumerate() {
                let want = wants.get(idx).copied().unwrap_or(0);
                if want == 0 || rank.saturating_add(want) < total {
                    continue;
                }
                let mut ctx = Context::new(
                    bar.time,
                    idx,
                    &self.portfolio,
                    &self.orders,
                    &self.events,
                    &mut self.outbox,
                )
                .with_state(slot)
                .warming_up(true);
                s.on_bar(&mut ctx, bar);
                calls += 1;
            }
        }
        let dropped = self.outbox.dropped - dropped_before;
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "strategies asked for orders or timers during warm-up; they were dropped \
                 (a strategy should check Context::is_warming_up before deciding)"
            );
        }
        calls
    }

    /// How many intents and timers strategies asked for during warm-up
    /// (all dropped), over the dispatcher's life.
    pub fn dropped_in_warm_up(&self) -> u64 {
        self.outbox.dropped
    }

    /// Mark-to-market helper for drivers that know a price without a bar.
    pub fn mark(&mut self, conid: Conid, price: Decimal) {
        self.portfolio.mark(conid, price);
    }
}
