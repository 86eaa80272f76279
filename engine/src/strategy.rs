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

    pub fn has_intents(&self) -> bool {
        !self.intents.is_empty()
    }

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
    pub conid: Conid,
    pub side: Side,
    pub quantity: Decimal,
    pub order_type: OrderType,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub trail: Option<Trail>,
    pub tif: Tif,
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

    pub fn market(conid: Conid, side: Side, quantity: Decimal) -> Self {
        Self::new(conid, side, quantity, OrderType::Market)
    }

    pub fn limit(conid: Conid, side: Side, quantity: Decimal, price: Decimal) -> Self {
        let mut s = Self::new(conid, side, quantity, OrderType::Limit);
        s.limit_price = Some(price);
        s
    }

    pub fn stop(conid: Conid, side: Side, quantity: Decimal, stop: Decimal) -> Self {
        let mut s = Self::new(conid, side, quantity, OrderType::Stop);
        s.stop_price = Some(stop);
        s
    }

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

    pub fn midprice(conid: Conid, side: Side, quantity: Decimal, cap: Option<Decimal>) -> Self {
        let mut s = Self::new(conid, side, quantity, OrderType::MidPrice);
        s.limit_price = cap;
        s
    }

    pub fn tif(mut self, tif: Tif) -> Self {
        self.tif = tif;
        self
    }

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
    pub take_profit: Option<Decimal>,
    pub stop_loss: Option<Decimal>,
}

/// Ids of the orders a bracket placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BracketIds {
    pub entry: OrderId,
    pub take_profit: Option<OrderId>,
    pub stop_loss: Option<OrderId>,
}

/// The strategy's window on the engine during one callback.
pub struct Context<'a> {
    now: Timestamp,
    strategy: usize,
    portfolio: &'a Portfolio,
    orders: &'a WorkingOrders,
    events: &'a Pairing,
    outbox: &'a mut Outbox,
}

impl<'a> Context<'a> {
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

    pub fn cash(&self) -> Decimal {
        self.portfolio.cash()
    }

    pub fn equity(&self) -> Decimal {
        self.portfolio.equity()
    }

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

    pub fn buy(&mut self, conid: Conid, quantity: Decimal) -> OrderId {
        self.submit(OrderSpec::market(conid, Side::Buy, quantity))
    }

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

    pub fn cancel(&mut self, id: OrderId) {
        self.push(Intent::Cancel(id));
    }

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
    fn on_start(&mut self, _ctx: &mut Context<'_>) {}
    fn on_bar(&mut self, _ctx: &mut Context<'_>, _bar: &Bar) {}
    fn on_quote(&mut self, _ctx: &mut Context<'_>, _quote: &Quote) {}
    /// Every status change of one of this strategy's orders, including
    /// rejections (status `Inactive` with a reason).
    fn on_order_update(&mut self, _ctx: &mut Context<'_>, _order: &Order) {}
    fn on_execution(&mut self, _ctx: &mut Context<'_>, _exec: &Execution) {}
    fn on_timer(&mut self, _ctx: &mut Context<'_>, _timer: TimerId) {}
    /// Session, PnL and other events with no dedicated callback.
    fn on_event(&mut self, _ctx: &mut Context<'_>, _event: &Event) {}
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
    pub fn new(inner: S, conids: impl IntoIterator<Item = Conid>) -> Self {
        let mut conids: Vec<Conid> = conids.into_iter().collect();
        conids.sort_unstable();
        conids.dedup();
        Scoped { inner, conids }
    }

    pub fn conids(&self) -> &[Conid] {
        &self.conids
    }

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
