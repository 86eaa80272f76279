//! The one trait strategy authors implement, and the [`Context`] it trades
//! through.
//!
//! Callbacks are synchronous and must not block: the engine owns every socket,
//! file and clock. A strategy reads state from the context and records
//! *intents*; the engine hands them to risk and execution after the callback
//! returns. The same compiled strategy therefore runs unchanged in backtest,
//! against the simulator and live.

use rust_decimal::Decimal;

use crate::event::Event;
use crate::forecastex::{Pairing, Right, StrikePair, StrikePosition};
use crate::model::{
    Bar, Conid, Execution, Order, OrderChanges, OrderId, OrderRequest, OrderType, Quote, Side, Tif,
    Timestamp, Trail,
};
use crate::portfolio::Portfolio;
use crate::working_orders::WorkingOrders;

/// Identifies a timer set with [`Context::set_timer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId(pub u64);

/// A request from a strategy to the execution side of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// One batch as the CP Web API takes it: a single order, a bracket (parent
    /// plus children naming its cOID), or an OCA group.
    Place(Vec<OrderRequest>),
    /// Cancel a working order. Cancelling an order that already finished
    /// is harmless: the venue reports it as it is.
    Cancel(OrderId),
    /// Change price or quantity of a working order.
    Modify {
        /// The working order to change.
        id: OrderId,
        /// What changes; `None` fields keep their value.
        changes: OrderChanges,
    },
}

/// Where a strategy's intents and timers wait until the engine collects them.
/// Owned by the engine and reused, so emitting nothing allocates nothing.
#[derive(Debug, Default)]
pub struct Outbox {
    pub(crate) intents: Vec<(usize, Intent)>,
    pub(crate) timers: Vec<(usize, TimerId, Timestamp)>,
    next_order_id: u64,
    next_timer_id: u64,
}

impl Outbox {
    /// Take every pending intent, tagged with the index of the strategy that
    /// sent it, in emission order.
    pub fn drain_intents(&mut self) -> std::vec::Drain<'_, (usize, Intent)> {
        self.intents.drain(..)
    }

    /// True when a strategy emitted something the driver has not yet
    /// collected; lets the hot path skip routing.
    pub fn has_intents(&self) -> bool {
        !self.intents.is_empty()
    }

    /// Take every timer requested since the last drain as (strategy index,
    /// id, due time); the dispatcher moves them into its queue after each
    /// callback.
    pub fn drain_timers(&mut self) -> std::vec::Drain<'_, (usize, TimerId, Timestamp)> {
        self.timers.drain(..)
    }

    /// Allocate the next engine order id.
    pub fn next_order_id(&mut self) -> OrderId {
        self.next_order_id += 1;
        OrderId(self.next_order_id)
    }
}

/// A single order before it is sent, built with the helpers below and passed
/// to [`Context::submit`], [`Context::bracket`] or [`Context::oca`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSpec {
    /// Contract to trade.
    pub conid: Conid,
    /// Buy or sell.
    pub side: Side,
    /// Units, unsigned; must be positive or the order is rejected.
    pub quantity: Decimal,
    /// Set by the constructor used.
    pub order_type: OrderType,
    /// Limit price, or the cap of a MidPrice order.
    pub limit_price: Option<Decimal>,
    /// Trigger price of stops; the initial stop of trailing orders.
    pub stop_price: Option<Decimal>,
    /// Trailing distance of `TRAIL` and `TRAILLMT` orders.
    pub trail: Option<Trail>,
    /// Time in force; GTC unless [`Self::tif`] changes it.
    pub tif: Tif,
    /// Work in extended hours too; false unless [`Self::outside_rth`]
    /// sets it.
    pub outside_rth: bool,
}

impl OrderSpec {
    fn new(conid: Conid, side: Side, quantity: Decimal, order_type: OrderType) -> Self {
        OrderSpec {
            conid,
            side,
            quantity,
            order_type,
            limit_price: None,
            stop_price: None,
            trail: None,
            tif: Tif::Gtc,
            outside_rth: false,
        }
    }

    /// Market order, GTC, regular hours only.
    pub fn market(conid: Conid, side: Side, quantity: Decimal) -> Self {
        Self::new(conid, side, quantity, OrderType::Market)
    }

    /// Limit order at `price` or better, GTC.
    pub fn limit(conid: Conid, side: Side, quantity: Decimal, price: Decimal) -> Self {
        let mut s = Self::new(conid, side, quantity, OrderType::Limit);
        s.limit_price = Some(price);
        s
    }

    /// Stop order: a market order once the market trades through `stop`.
    /// A sell stop sits below the market, a buy stop above.
    pub fn stop(conid: Conid, side: Side, quantity: Decimal, stop: Decimal) -> Self {
        let mut s = Self::new(conid, side, quantity, OrderType::Stop);
        s.stop_price = Some(stop);
        s
    }

    /// Stop-limit: once the market trades through `stop`, a limit order at
    /// `limit`; it may then never fill if the market gaps past the limit.
    pub fn stop_limit(
        conid: Conid,
        side: Side,
        quantity: Decimal,
        stop: Decimal,
        limit: Decimal,
    ) -> Self {
        let mut s = Self::new(conid, side, quantity, OrderType::StopLimit);
        s.stop_price = Some(stop);
        s.limit_price = Some(limit);
        s
    }

    /// Trailing stop; `stop` is the initial trigger, or `None` to start at
    /// the trail distance from the next bar's extreme.
    pub fn trail(
        conid: Conid,
        side: Side,
        quantity: Decimal,
        trail: Trail,
        stop: Option<Decimal>,
    ) -> Self {
        let mut s = Self::new(conid, side, quantity, OrderType::Trail);
        s.trail = Some(trail);
        s.stop_price = stop;
        s
    }

    /// Trailing stop-limit: the limit keeps its initial distance to the stop
    /// as the stop trails.
    pub fn trail_limit(
        conid: Conid,
        side: Side,
        quantity: Decimal,
        trail: Trail,
        stop: Decimal,
        limit: Decimal,
    ) -> Self {
        let mut s = Self::new(conid, side, quantity, OrderType::TrailLimit);
        s.trail = Some(trail);
        s.stop_price = Some(stop);
        s.limit_price = Some(limit);
        s
    }

    /// IBKR MidPrice order: fills at the midpoint, never worse than `cap`
    /// when one is given (`None` means uncapped).
    pub fn midprice(conid: Conid, side: Side, quantity: Decimal, cap: Option<Decimal>) -> Self {
        let mut s = Self::new(conid, side, quantity, OrderType::MidPrice);
        s.limit_price = cap;
        s
    }

    /// Replace the time in force (GTC by default).
    pub fn tif(mut self, tif: Tif) -> Self {
        self.tif = tif;
        self
    }

    /// Let the order work outside regular trading hours (`outsideRTH`).
    /// Risk then checks the contract's all-sessions schedule.
    pub fn outside_rth(mut self, yes: bool) -> Self {
        self.outside_rth = yes;
        self
    }

    fn into_request(
        self,
        id: OrderId,
        parent: Option<String>,
        oca: Option<String>,
    ) -> OrderRequest {
        OrderRequest {
            id,
            conid: self.conid,
            side: self.side,
            order_type: self.order_type,
            quantity: self.quantity,
            limit_price: self.limit_price,
            stop_price: self.stop_price,
            trail: self.trail,
            tif: self.tif,
            outside_rth: self.outside_rth,
            client_order_id: client_order_id(id),
            parent,
            oca_group: oca,
        }
    }
}

fn client_order_id(id: OrderId) -> String {
    format!("ibf-{}", id.0)
}

/// Exit prices attached to an entry: a take-profit limit and/or a stop-loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Exits {
    /// Limit price of the profit-taking exit; `None` places none.
    pub take_profit: Option<Decimal>,
    /// Trigger price of the stop-loss exit (a stop order); `None` places
    /// none.
    pub stop_loss: Option<Decimal>,
}

/// Ids of the orders a bracket placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BracketIds {
    /// The entry (parent) order.
    pub entry: OrderId,
    /// The take-profit child, when [`Exits::take_profit`] was set.
    pub take_profit: Option<OrderId>,
    /// The stop-loss child, when [`Exits::stop_loss`] was set.
    pub stop_loss: Option<OrderId>,
}

/// The strategy's window on the engine during one callback.
#[derive(Debug)]
pub struct Context<'a> {
    now: Timestamp,
    strategy: usize,
    portfolio: &'a Portfolio,
    orders: &'a WorkingOrders,
    events: &'a Pairing,
    outbox: &'a mut Outbox,
}

impl<'a> Context<'a> {
    /// A context for strategy number `strategy` (its index in the
    /// dispatcher) at engine time `now`. The dispatcher builds one per
    /// callback; tests build their own to call a strategy directly.
    pub fn new(
        now: Timestamp,
        strategy: usize,
        portfolio: &'a Portfolio,
        orders: &'a WorkingOrders,
        events: &'a Pairing,
        outbox: &'a mut Outbox,
    ) -> Self {
        Context {
            now,
            strategy,
            portfolio,
            orders,
            events,
            outbox,
        }
    }

    /// ForecastEx: the strike `conid` (its YES or NO contract) belongs to,
    /// when the engine was given the market's contracts.
    pub fn event_pair(&self, conid: Conid) -> Option<&'a StrikePair> {
        self.events.lookup(conid).map(|(pair, _)| pair)
    }

    /// ForecastEx: YES and NO held in `pair`. Once the venue's netting
    /// reports are in, at most one side is non-zero.
    pub fn event_position(&self, pair: &StrikePair) -> StrikePosition {
        StrikePosition {
            yes: self.portfolio.quantity(pair.yes),
            no: self.portfolio.quantity(pair.no),
        }
    }

    /// Engine time: the current bar's start in backtest, wall time live.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Account cash after every booked fill and commission, in the account
    /// currency.
    pub fn cash(&self) -> Decimal {
        self.portfolio.cash()
    }

    /// Cash plus every position marked at its latest bar close or quote.
    pub fn equity(&self) -> Decimal {
        self.portfolio.equity()
    }

    /// The whole account: positions, PnL and commissions, shared by every
    /// strategy of the engine.
    pub fn portfolio(&self) -> &Portfolio {
        self.portfolio
    }

    /// Signed position in `conid` (account-wide).
    pub fn position(&self, conid: Conid) -> Decimal {
        self.portfolio.quantity(conid)
    }

    /// This strategy's working orders.
    pub fn open_orders(&self) -> impl Iterator<Item = &Order> + '_ {
        let me = self.strategy;
        self.orders.open().filter(move |o| o.strategy == me)
    }

    /// A working order by id, whichever strategy owns it; `None` once it
    /// is filled, cancelled or rejected (its last state came through
    /// [`Strategy::on_order_update`]).
    pub fn order(&self, id: OrderId) -> Option<&Order> {
        self.orders.get(id)
    }

    fn push(&mut self, intent: Intent) {
        self.outbox.intents.push((self.strategy, intent));
    }

    /// Send one order; returns its id at once so the strategy can track it.
    pub fn submit(&mut self, spec: OrderSpec) -> OrderId {
        let id = self.outbox.next_order_id();
        self.push(Intent::Place(vec![spec.into_request(id, None, None)]));
        id
    }

    /// Market buy of `quantity` (GTC, regular hours).
    pub fn buy(&mut self, conid: Conid, quantity: Decimal) -> OrderId {
        self.submit(OrderSpec::market(conid, Side::Buy, quantity))
    }

    /// Market sell of `quantity` (GTC, regular hours). Selling more than
    /// is held goes short.
    pub fn sell(&mut self, conid: Conid, quantity: Decimal) -> OrderId {
        self.submit(OrderSpec::market(conid, Side::Sell, quantity))
    }

    fn bracket_requests(
        &mut self,
        entry: OrderSpec,
        exits: Exits,
        oca: Option<String>,
        out: &mut Vec<OrderRequest>,
    ) -> BracketIds {
        let entry_id = self.outbox.next_order_id();
        let parent = client_order_id(entry_id);
        let (conid, exit_side, qty) = (entry.conid, entry.side.opposite(), entry.quantity);
        out.push(entry.into_request(entry_id, None, oca));
        let mut ids = BracketIds {
            entry: entry_id,
            take_profit: None,
            stop_loss: None,
        };
        if let Some(tp) = exits.take_profit {
            let id = self.outbox.next_order_id();
            let spec = OrderSpec::limit(conid, exit_side, qty, tp).tif(Tif::Gtc);
            out.push(spec.into_request(id, Some(parent.clone()), None));
            ids.take_profit = Some(id);
        }
        if let Some(sl) = exits.stop_loss {
            let id = self.outbox.next_order_id();
            let spec = OrderSpec::stop(conid, exit_side, qty, sl).tif(Tif::Gtc);
            out.push(spec.into_request(id, Some(parent.clone()), None));
            ids.stop_loss = Some(id);
        }
        ids
    }

    /// Entry with a take-profit and/or stop-loss that go live when the entry
    /// fills; the first exit to fill cancels the other. The exits are GTC
    /// whatever the entry's time in force: they protect a position, and a
    /// position outlives the session a DAY entry was good for.
    pub fn bracket(&mut self, entry: OrderSpec, exits: Exits) -> BracketIds {
        let mut batch = Vec::with_capacity(3);
        let ids = self.bracket_requests(entry, exits, None, &mut batch);
        self.push(Intent::Place(batch));
        ids
    }

    /// One-cancels-all group of entries, each optionally with its own exits:
    /// the first entry to fill cancels the other entries (and their exits).
    pub fn oca(&mut self, legs: Vec<(OrderSpec, Exits)>) -> Vec<BracketIds> {
        let mut batch = Vec::with_capacity(legs.len() * 3);
        let group = format!("oca-{}", self.outbox.next_order_id.saturating_add(1));
        let ids = legs
            .into_iter()
            .map(|(spec, exits)| {
                self.bracket_requests(spec, exits, Some(group.clone()), &mut batch)
            })
            .collect();
        self.push(Intent::Place(batch));
        ids
    }

    /// Ask the venue to cancel order `id`. The order stays working until
    /// the venue confirms, and may still fill meanwhile.
    pub fn cancel(&mut self, id: OrderId) {
        self.push(Intent::Cancel(id));
    }

    /// Change a working order: `None` keeps the current quantity, limit or
    /// stop price. The quantity is the new total, filled part included.
    pub fn modify(
        &mut self,
        id: OrderId,
        quantity: Option<Decimal>,
        limit_price: Option<Decimal>,
        stop_price: Option<Decimal>,
    ) {
        self.push(Intent::Modify {
            id,
            changes: OrderChanges {
                quantity,
                limit_price,
                stop_price,
            },
        });
    }

    /// Cancel this strategy's working orders, in `conid` or everywhere.
    /// Orders emitted earlier in the same callback are not working yet and
    /// are not included.
    pub fn cancel_all(&mut self, conid: Option<Conid>) {
        let me = self.strategy;
        let ids: Vec<OrderId> = self
            .orders
            .open()
            .filter(|o| o.strategy == me && conid.is_none_or(|c| o.request.conid == c))
            .map(Order::id)
            .collect();
        for id in ids {
            self.push(Intent::Cancel(id));
        }
    }

    /// Cancel working orders in `conid` and close the position at market.
    pub fn flatten(&mut self, conid: Conid) -> Option<OrderId> {
        self.cancel_all(Some(conid));
        let qty = self.position(conid);
        if qty.is_zero() {
            return None;
        }
        let side = if qty.is_sign_positive() {
            Side::Sell
        } else {
            Side::Buy
        };
        Some(self.submit(OrderSpec::market(conid, side, qty.abs())))
    }

    /// ForecastEx: buy the YES or NO contract of a strike (event contracts
    /// trade as limit orders on a probability price).
    pub fn buy_event(
        &mut self,
        pair: &StrikePair,
        right: Right,
        quantity: Decimal,
        limit: Decimal,
    ) -> OrderId {
        self.submit(OrderSpec::limit(
            pair.conid(right),
            Side::Buy,
            quantity,
            limit,
        ))
    }

    /// ForecastEx exit: the venue permits no sells, so reducing a position in
    /// `held` means buying the opposite contract at the same strike; the
    /// venue nets the two (a `B` execution, then two `N`).
    pub fn exit_event(
        &mut self,
        pair: &StrikePair,
        held: Right,
        quantity: Decimal,
        limit: Decimal,
    ) -> OrderId {
        self.buy_event(pair, held.opposite(), quantity, limit)
    }

    /// Ask for [`Strategy::on_timer`] at `at` (engine time).
    pub fn set_timer(&mut self, at: Timestamp) -> TimerId {
        self.outbox.next_timer_id += 1;
        let id = TimerId(self.outbox.next_timer_id);
        self.outbox.timers.push((self.strategy, id, at));
        id
    }
}

/// A trading strategy. Every callback has a default that does nothing, so a
/// strategy implements only what it reacts to.
pub trait Strategy: Send {
    /// Once, before any market data: set timers or place opening orders
    /// here.
    fn on_start(&mut self, _ctx: &mut Context<'_>) {}
    /// Each bar of any contract the engine feeds (see [`Scoped`] to narrow
    /// it), after the portfolio was marked at its close.
    fn on_bar(&mut self, _ctx: &mut Context<'_>, _bar: &Bar) {}
    /// Each quote update, after the portfolio was marked at its last (or
    /// mid) price.
    fn on_quote(&mut self, _ctx: &mut Context<'_>, _quote: &Quote) {}
    /// Every status change of one of this strategy's orders, including
    /// rejections (status `Inactive` with a reason).
    fn on_order_update(&mut self, _ctx: &mut Context<'_>, _order: &Order) {}
    /// Each fill of this strategy's orders, after the portfolio booked it.
    /// Fills of orders the engine did not place reach every strategy.
    fn on_execution(&mut self, _ctx: &mut Context<'_>, _exec: &Execution) {}
    /// A timer set with [`Context::set_timer`] fell due; engine time is
    /// the time it was set for.
    fn on_timer(&mut self, _ctx: &mut Context<'_>, _timer: TimerId) {}
    /// Session, PnL and other events with no dedicated callback.
    fn on_event(&mut self, _ctx: &mut Context<'_>, _event: &Event) {}
    /// Once at the end of a backtest or when a live engine shuts down.
    /// Live, orders emitted here are still routed (e.g. a flatten); a
    /// backtest has no bar left to fill them and drops them.
    fn on_stop(&mut self, _ctx: &mut Context<'_>) {}
}

impl<S: Strategy + ?Sized> Strategy for Box<S> {
    fn on_start(&mut self, ctx: &mut Context<'_>) {
        (**self).on_start(ctx)
    }
    fn on_bar(&mut self, ctx: &mut Context<'_>, bar: &Bar) {
        (**self).on_bar(ctx, bar)
    }
    fn on_quote(&mut self, ctx: &mut Context<'_>, quote: &Quote) {
        (**self).on_quote(ctx, quote)
    }
    fn on_order_update(&mut self, ctx: &mut Context<'_>, order: &Order) {
        (**self).on_order_update(ctx, order)
    }
    fn on_execution(&mut self, ctx: &mut Context<'_>, exec: &Execution) {
        (**self).on_execution(ctx, exec)
    }
    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) {
        (**self).on_timer(ctx, timer)
    }
    fn on_event(&mut self, ctx: &mut Context<'_>, event: &Event) {
        (**self).on_event(ctx, event)
    }
    fn on_stop(&mut self, ctx: &mut Context<'_>) {
        (**self).on_stop(ctx)
    }
}

/// A strategy that sees the market data (bars and quotes) of some
/// contracts only, so several strategies can share one engine without each
/// filtering what it is fed. Order updates, executions, timers and other
/// events reach it as before: it may trade contracts outside its scope (a
/// ForecastEx exit buys the other side of the strike).
#[derive(Debug, Clone)]
pub struct Scoped<S> {
    inner: S,
    conids: Vec<Conid>,
}

impl<S: Strategy> Scoped<S> {
    /// Feed `inner` the market data of `conids` only (duplicates ignored).
    pub fn new(inner: S, conids: impl IntoIterator<Item = Conid>) -> Self {
        let mut conids: Vec<Conid> = conids.into_iter().collect();
        conids.sort_unstable();
        conids.dedup();
        Scoped { inner, conids }
    }

    /// The contracts in scope, sorted and without duplicates.
    pub fn conids(&self) -> &[Conid] {
        &self.conids
    }

    /// The wrapped strategy, e.g. to read its state after a backtest.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    #[inline]
    fn sees(&self, conid: Conid) -> bool {
        self.conids.binary_search(&conid).is_ok()
    }
}

impl<S: Strategy> Strategy for Scoped<S> {
    fn on_start(&mut self, ctx: &mut Context<'_>) {
        self.inner.on_start(ctx)
    }
    fn on_bar(&mut self, ctx: &mut Context<'_>, bar: &Bar) {
        if self.sees(bar.conid) {
            self.inner.on_bar(ctx, bar)
        }
    }
    fn on_quote(&mut self, ctx: &mut Context<'_>, quote: &Quote) {
        if self.sees(quote.conid) {
            self.inner.on_quote(ctx, quote)
        }
    }
    fn on_order_update(&mut self, ctx: &mut Context<'_>, order: &Order) {
        self.inner.on_order_update(ctx, order)
    }
    fn on_execution(&mut self, ctx: &mut Context<'_>, exec: &Execution) {
        self.inner.on_execution(ctx, exec)
    }
    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) {
        self.inner.on_timer(ctx, timer)
    }
    fn on_event(&mut self, ctx: &mut Context<'_>, event: &Event) {
        self.inner.on_event(ctx, event)
    }
    fn on_stop(&mut self, ctx: &mut Context<'_>) {
        self.inner.on_stop(ctx)
    }
}
