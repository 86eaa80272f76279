//! The one trait strategy authors implement, and the [`Context`] it trades
//! through.
//!
//! Callbacks are synchronous and must not block: the engine owns every socket,
//! file and clock. A strategy reads state from the context and records
//! *intents*; the engine hands them to risk and execution after the callback
//! returns. The same compiled strategy therefore runs unchanged in backtest,
//! against the simulator and live.
//!
//! # Restarts: saved state and warm-up
//!
//! A live bot is restarted (a deploy, a crash, a gateway that logged out).
//! Two things keep a restarted strategy from behaving like a newborn one:
//!
//! * **Saved state.** [`Context::save_state`] stores any `Serialize` value
//!   (as JSON) for this strategy, from any callback; the live engine writes
//!   it to the journal (the SQLite store) and hands it back to the next run,
//!   where [`Context::saved_state`] reads it, from `on_start` on. Use it for
//!   what cannot be recomputed from market data: a daily trade count, the
//!   entry price of a position, a mode switched by hand. State is kept per
//!   strategy, by its index in the run and its [`Strategy::name`]; a
//!   different strategy at that index does not get it. A backtest keeps
//!   state in memory only: nothing is written, and each run starts empty.
//! * **Warm-up.** Indicators need history: an SMA of 30 bars is meaningless
//!   for the first 29. A strategy says how many bars it needs with
//!   [`Strategy::warmup_bars`]; before live bars arrive, the engine replays
//!   that many recent bars per contract through `on_bar` with
//!   [`Context::is_warming_up`] true. Orders and timers asked for during
//!   warm-up are dropped (the bars are history: acting on them now would
//!   trade on stale prices), so the first live bar finds the indicators as
//!   a backtest would have them and the strategy trades on it at once,
//!   instead of sitting out (or, worse, trading on half-built indicators).
//!   A strategy that tracks the ids of its orders should not place any
//!   while warming up: those orders never exist.
//!
//! ```
//! # extern crate ibflow_engine as engine;
//! use engine::dispatch::Dispatcher;
//! use engine::model::{Bar, Conid};
//! use engine::portfolio::Portfolio;
//! use engine::strategy::{Context, SavedState, Strategy};
//! use engine::Decimal;
//! use serde::{Deserialize, Serialize};
//!
//! /// Buys once per run of `n` rising closes; remembers across restarts how
//! /// many entries it made.
//! struct Rising {
//!     n: usize,
//!     closes: Vec<Decimal>,
//!     memo: Memo,
//! }
//!
//! #[derive(Default, Serialize, Deserialize)]
//! struct Memo {
//!     entries: u32,
//! }
//!
//! impl Strategy for Rising {
//!     fn name(&self) -> &str {
//!         "rising" // stable: the key its saved state is found by
//!     }
//!     fn warmup_bars(&self) -> usize {
//!         self.n // a full window before the first live bar
//!     }
//!     fn on_start(&mut self, ctx: &mut Context<'_>) {
//!         // A state that no longer fits `Memo` is an error, not a panic:
//!         // start afresh (the engine has logged a warning).
//!         self.memo = ctx.saved_state().ok().flatten().unwrap_or_default();
//!     }
//!     fn on_bar(&mut self, ctx: &mut Context<'_>, bar: &Bar) {
//!         self.closes.push(bar.close);
//!         if self.closes.len() > self.n {
//!             self.closes.remove(0);
//!         }
//!         let rising = self.closes.len() == self.n
//!             && self.closes.windows(2).all(|w| w[0] < w[1]);
//!         // Indicators update during warm-up; decisions wait for live bars.
//!         if rising && !ctx.is_warming_up() && ctx.position(bar.conid).is_zero() {
//!             ctx.buy(bar.conid, Decimal::ONE);
//!             self.memo.entries += 1;
//!             if let Err(e) = ctx.save_state(&self.memo) {
//!                 tracing::warn!(error = %e, "could not save state");
//!             }
//!         }
//!     }
//! }
//!
//! let strategy = Rising { n: 3, closes: Vec::new(), memo: Memo::default() };
//! let mut d = Dispatcher::new(vec![strategy], Portfolio::new(Decimal::from(1000)));
//! // What an earlier run saved (live: LiveEngine::restore_states reads it).
//! d.restore_states(vec![SavedState {
//!     index: 0,
//!     name: "rising".into(),
//!     json: r#"{"entries":4}"#.into(),
//! }]);
//! d.start();
//! let bar = |min: i64, close: i64| Bar {
//!     conid: Conid(1),
//!     time: engine::model::from_epoch_ms(min * 60_000).unwrap_or_default(),
//!     open: close.into(),
//!     high: close.into(),
//!     low: close.into(),
//!     close: close.into(),
//!     volume: Decimal::ZERO,
//! };
//! // History: three rising closes. Nothing is bought on them.
//! d.warm_up(&[bar(0, 10), bar(1, 11), bar(2, 12)]);
//! assert!(!d.outbox().has_intents());
//! // The first live bar continues the rise: the strategy buys at once.
//! d.on_bar(&bar(3, 13));
//! assert_eq!(d.outbox().drain_intents().count(), 1);
//! // ...and its memo, now 5 entries, waits for the live engine to persist.
//! let dirty = d.take_dirty_states();
//! assert_eq!(dirty[0].json, r#"{"entries":5}"#);
//! ```

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Serialize;

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
    /// Intents and timers asked for during warm-up, and dropped.
    pub(crate) dropped: u64,
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

/// The largest state, in bytes of JSON, one strategy may save: state is
/// for what cannot be recomputed (counters, entry prices, modes), not for
/// price history, and every save is written to the journal.
pub const MAX_STATE_BYTES: usize = 1024 * 1024;

/// A strategy's saved state as the journal keeps it and the dispatcher
/// hands it back: whose it is (index and name) and the JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedState {
    /// The strategy's index in the dispatcher (its place in the run's
    /// list of strategies).
    pub index: usize,
    /// The [`Strategy::name`] of the strategy that saved it; the state goes
    /// back only to a strategy of the same name at the same index.
    pub name: String,
    /// The state, as JSON text (at most [`MAX_STATE_BYTES`] bytes).
    pub json: String,
}

/// Why a strategy's state could not be saved or read back.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The value does not serialize to JSON (e.g. a map with non-string
    /// keys). Nothing was saved; the previous state stands.
    #[error("strategy state does not serialize to JSON: {0}")]
    Encode(#[source] serde_json::Error),
    /// The JSON is larger than [`MAX_STATE_BYTES`]. Nothing was saved; the
    /// previous state stands.
    #[error("strategy state is {size} bytes of JSON, more than the {limit} allowed")]
    TooLarge {
        /// Size of the refused JSON, in bytes.
        size: usize,
        /// The limit, [`MAX_STATE_BYTES`].
        limit: usize,
    },
    /// The saved JSON does not deserialize into the type asked for: it was
    /// saved by another version of the strategy, or edited by hand. The
    /// saved text is kept until the strategy saves anew.
    #[error(
        "saved strategy state does not fit the type asked for (saved by another version?): {0}"
    )]
    Decode(#[source] serde_json::Error),
    /// This context has no state slot: a context built with
    /// [`Context::new`] alone (a test calling a strategy directly).
    #[error("this context keeps no strategy state")]
    Unavailable,
}

/// One strategy's state in the dispatcher: what an earlier run saved, what
/// this run saved, and whether that still has to be persisted.
#[derive(Debug, Clone, Default)]
pub struct StateSlot {
    /// Handed over from an earlier run.
    loaded: Option<String>,
    /// Saved during this run; supersedes `loaded`.
    saved: Option<String>,
    /// `saved` has not been taken for persisting yet.
    dirty: bool,
}

impl StateSlot {
    /// A slot holding what an earlier run saved.
    pub fn restored(json: String) -> Self {
        StateSlot {
            loaded: Some(json),
            saved: None,
            dirty: false,
        }
    }

    /// The current state: the latest saved in this run, else what an
    /// earlier run saved.
    pub fn json(&self) -> Option<&str> {
        self.saved.as_deref().or(self.loaded.as_deref())
    }

    /// Saved since it was last taken for persisting.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The state to persist, if it changed since the last call; clears the
    /// flag.
    pub fn take_dirty(&mut self) -> Option<&str> {
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        self.saved.as_deref()
    }

    /// Flag the state as not persisted (a journal write failed): the next
    /// persisting tries again.
    pub fn mark_dirty(&mut self) {
        self.dirty = self.saved.is_some();
    }

    fn save(&mut self, json: String) {
        self.saved = Some(json);
        self.dirty = true;
    }
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
    state: Option<&'a mut StateSlot>,
    warming_up: bool,
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
            state: None,
            warming_up: false,
        }
    }

    /// This context reads and saves the strategy's state in `slot` (the
    /// dispatcher lends each strategy its own).
    #[inline]
    pub fn with_state(mut self, slot: &'a mut StateSlot) -> Self {
        self.state = Some(slot);
        self
    }

    /// This context delivers history (see [`Context::is_warming_up`]):
    /// the intents and timers asked for through it are dropped.
    #[inline]
    pub fn warming_up(mut self, yes: bool) -> Self {
        self.warming_up = yes;
        self
    }

    /// True while the engine replays history to build the strategy's
    /// indicators (see [`Strategy::warmup_bars`]). Orders and timers asked
    /// for now are dropped, never reaching risk or the venue: update
    /// indicators, but decide nothing (an order id returned now names an
    /// order that will never exist).
    pub fn is_warming_up(&self) -> bool {
        self.warming_up
    }

    /// Save `value` as this strategy's state (JSON), replacing what was
    /// saved before. Live, the engine writes it to the journal after the
    /// callback, so the next run of the bot finds it with
    /// [`Context::saved_state`]; a backtest keeps it in memory only.
    ///
    /// Fails, keeping the previous state, when the value does not serialize
    /// or its JSON exceeds [`MAX_STATE_BYTES`]; and with
    /// [`StateError::Unavailable`] on a context without a state slot.
    pub fn save_state<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), StateError> {
        let Some(slot) = self.state.as_deref_mut() else {
            return Err(StateError::Unavailable);
        };
        let json = serde_json::to_string(value).map_err(StateError::Encode)?;
        if json.len() > MAX_STATE_BYTES {
            return Err(StateError::TooLarge {
                size: json.len(),
                limit: MAX_STATE_BYTES,
            });
        }
        slot.save(json);
        Ok(())
    }

    /// This strategy's state: the latest [`Context::save_state`] of this
    /// run, else what an earlier run saved (from `on_start` on), else
    /// `None`. A saved state that does not deserialize into `T` (another
    /// version of the strategy saved it) is [`StateError::Decode`], with a
    /// warning logged, never a panic.
    pub fn saved_state<T: DeserializeOwned>(&self) -> Result<Option<T>, StateError> {
        let Some(json) = self.state.as_deref().and_then(StateSlot::json) else {
            return Ok(None);
        };
        match serde_json::from_str(json) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                tracing::warn!(
                    strategy = self.strategy,
                    error = %e,
                    "the saved strategy state does not fit the type asked for; \
                     it is ignored until the strategy saves a new one"
                );
                Err(StateError::Decode(e))
            }
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

    #[inline]
    fn push(&mut self, intent: Intent) {
        if self.warming_up {
            self.outbox.dropped += 1;
            return;
        }
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

    /// Ask for [`Strategy::on_timer`] at `at` (engine time). During
    /// warm-up the timer is dropped: it would be set for a time in the past.
    pub fn set_timer(&mut self, at: Timestamp) -> TimerId {
        self.outbox.next_timer_id += 1;
        let id = TimerId(self.outbox.next_timer_id);
        if self.warming_up {
            self.outbox.dropped += 1;
        } else {
            self.outbox.timers.push((self.strategy, id, at));
        }
        id
    }
}

/// A trading strategy. Every callback has a default that does nothing, so a
/// strategy implements only what it reacts to.
pub trait Strategy: Send {
    /// The name the strategy's saved state is kept under (with its index in
    /// the run): a state goes back only to a strategy of the same name at
    /// the same index. Override it with a stable name (the built-in
    /// strategies return their registry name): the default, the Rust type
    /// name, changes when the type is renamed or moved, and may change with
    /// the compiler version; the saved state is then not handed over (a
    /// warning says so).
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }
    /// How many bars of history (per contract) the strategy's indicators
    /// need before it should trade: live, that many recent bars are
    /// replayed through `on_bar` with [`Context::is_warming_up`] true before
    /// the first live bar, so it does not trade on half-built indicators
    /// nor sit out the first hour. Zero (the default) asks for no history.
    fn warmup_bars(&self) -> usize {
        0
    }
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
    fn name(&self) -> &str {
        (**self).name()
    }
    fn warmup_bars(&self) -> usize {
        (**self).warmup_bars()
    }
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
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn warmup_bars(&self) -> usize {
        self.inner.warmup_bars()
    }
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
