//! The simulated gateway's order desk: the orders it has accepted, the
//! batches staged behind a bar in progress, the executions it remembers,
//! the question (precaution prompt) awaiting a reply, and what it tells the
//! websockets of the venue's reports ([`Desk::apply`]). The HTTP side is
//! [`super::order_handlers`]; the JSON it renders is [`super::order_json`].
//!
//! The desk trades on the backtest's [`SimVenue`]: the exchange, the
//! ForecastEx netting and the account's books (positions and cash) are the
//! venue's, written once for the backtest and the simulator.
//!
//! Timing: an order placed while a bar of its contract is in progress is
//! handed to the venue when that bar completes ([`Desk::on_bar`],
//! [`Desk::release_staged`]), so its first chance to fill is the next bar.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};

use rust_decimal::Decimal;
use serde_json::json;

use engine::event::Event;
use engine::forecastex::Pairing;
use engine::model::{
    Bar, Conid, Execution, OrderChanges, OrderId, OrderRequest, OrderStatus, Timestamp,
};
use engine::venue::{Venue, VenueError};

use super::config::Instrument;
use super::order_json::{order_json, trade_json};
use super::portfolio::Books;
use super::prompts::Prompt;
use super::state::{Push, Shared};
use backtest::exchange::{ExchangeConfig, SimExchange};
use backtest::sim_venue::{at_once, BarVenue, SimVenue};

/// How many executions the desk remembers (trades covers 7 days at most).
const KEEP_TRADES: usize = 10_000;

/// One order as the gateway reports it.
#[derive(Debug, Clone)]
pub(crate) struct GwOrder {
    pub req: OrderRequest,
    /// The cOID the client gave, if it gave one (`order_ref`).
    pub user_coid: Option<String>,
    pub status: OrderStatus,
    pub filled: Decimal,
    pub avg_price: Option<Decimal>,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub last_exec: Option<Timestamp>,
}

impl GwOrder {
    pub(crate) fn id(&self) -> u64 {
        self.req.id.0
    }
}

#[derive(Debug)]
pub(crate) struct Staged {
    pub(crate) release_at: Timestamp,
    pub(crate) batch: Vec<OrderRequest>,
}

/// A batch held behind an `ntf` server prompt (`notifications.rs`): booked
/// (`PreSubmitted`), not handed to the exchange until the prompt is
/// answered yes.
#[derive(Debug)]
pub(crate) struct Held {
    /// The order the prompt names (`orderId`).
    pub(crate) order_id: u64,
    /// The prompt's `reqId`.
    pub(crate) req_id: String,
    /// The `ntf` args as sent (re-sent to websockets that connect later).
    pub(crate) args: serde_json::Value,
    /// The answers offered.
    pub(crate) options: Vec<String>,
    pub(crate) batch: Vec<OrderRequest>,
}

#[derive(Debug)]
pub(crate) enum Action {
    Place(Vec<(OrderRequest, Option<String>)>),
    Modify(u64, OrderChanges),
}

#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) id: String,
    pub(crate) action: Action,
    pub(crate) questions: VecDeque<Prompt>,
}

pub(crate) struct Desk {
    /// The exchange, the ForecastEx netting and the account's books. The
    /// books are kept from the start ([`SimVenue::with_books`]), so
    /// [`SimVenue::books`] is never `None` here; readers that meet `None`
    /// answer as for an empty account rather than panic.
    pub(crate) venue: SimVenue,
    pub(crate) orders: BTreeMap<u64, GwOrder>,
    pub(crate) staged: Vec<Staged>,
    pub(crate) trades: VecDeque<Execution>,
    pub(crate) next_id: u64,
    /// This run's component of execution ids
    /// ([`super::state::run_ids`]).
    run_tag: String,
    pub(crate) scratch: Vec<Event>,
    pub(crate) pending: Option<Pending>,
    pub(crate) suppressed: HashSet<String>,
    pub(crate) reply_seq: u64,
    /// Batches held behind an unanswered `ntf` server prompt.
    pub(crate) held: Vec<Held>,
    /// Numbers the `reqId`s of server prompts.
    pub(crate) ntf_seq: u64,
    /// The daily PnL base (positions and cash are the venue's books).
    pub books: Books,
}

impl Desk {
    /// A desk over a venue holding `instruments`, netting the `pairing`'s
    /// ForecastEx strikes, whose account starts with `initial_cash`.
    pub(crate) fn new(
        cfg: ExchangeConfig,
        instruments: &BTreeMap<Conid, Instrument>,
        pairing: Pairing,
        initial_cash: Decimal,
        first_order_id: u64,
        run_tag: String,
    ) -> Self {
        let mut exchange = SimExchange::new(ExchangeConfig {
            keep_executions: 0,
            ..cfg
        });
        for i in instruments.values() {
            let mut c = engine::model::Contract::stock(i.conid, i.symbol.clone());
            c.tick_size = i.tick_size;
            c.currency = i.currency.clone();
            exchange.add_contract(&c);
        }
        Desk {
            venue: SimVenue::new(exchange, pairing).with_books(initial_cash),
            orders: BTreeMap::new(),
            staged: Vec::new(),
            trades: VecDeque::new(),
            next_id: first_order_id,
            run_tag,
            scratch: Vec::new(),
            pending: None,
            suppressed: HashSet::new(),
            reply_seq: 0,
            held: Vec::new(),
            ntf_seq: 0,
            books: Books::default(),
        }
    }

    /// Feed one completed bar (ending at `end`). Batches staged behind
    /// bars that ended earlier go to the exchange first; those behind bars
    /// ending at `end` wait until every such bar has been fed.
    pub(crate) fn on_bar(&mut self, bar: &Bar, end: Timestamp, sh: &Shared) {
        self.release(|at| at < end, sh);
        let mut events = std::mem::take(&mut self.scratch);
        if self.venue.has_orders() {
            self.venue.on_bar(bar, &mut events);
        }
        self.apply(&mut events, sh, end);
        self.scratch = events;
    }

    /// After the bars due by `now` were fed: release what waited for them.
    pub(crate) fn release_staged(&mut self, now: Timestamp, sh: &Shared) {
        self.release(|at| at <= now, sh);
    }

    fn release(&mut self, due: impl Fn(Timestamp) -> bool, sh: &Shared) {
        if self.staged.is_empty() {
            return;
        }
        let (due, keep): (Vec<Staged>, Vec<Staged>) = std::mem::take(&mut self.staged)
            .into_iter()
            .partition(|s| due(s.release_at));
        self.staged = keep;
        for s in due {
            if s.batch.is_empty() {
                continue;
            }
            // A refused batch is reported by its orders' updates.
            let _ = self.place(s.batch, s.release_at, sh);
        }
    }

    /// Hand `batch` to the venue at `now` and report what it answered.
    pub(crate) fn place(
        &mut self,
        batch: Vec<OrderRequest>,
        now: Timestamp,
        sh: &Shared,
    ) -> Result<(), VenueError> {
        let mut events = std::mem::take(&mut self.scratch);
        let r = at_once(self.venue.place(0, batch, now, &mut events))
            .unwrap_or_else(|w| Err(VenueError::Unavailable(w.to_string())));
        self.apply(&mut events, sh, now);
        self.scratch = events;
        r
    }

    /// Ask the venue to cancel order `id` at `now`; report what it answered.
    pub(crate) fn cancel(
        &mut self,
        id: u64,
        now: Timestamp,
        sh: &Shared,
    ) -> Result<(), VenueError> {
        let mut events = std::mem::take(&mut self.scratch);
        let r = at_once(self.venue.cancel(OrderId(id), now, &mut events))
            .unwrap_or_else(|w| Err(VenueError::Unavailable(w.to_string())));
        self.apply(&mut events, sh, now);
        self.scratch = events;
        r
    }

    /// Ask the venue to change order `id` at `now`; report what it answered.
    pub(crate) fn modify(
        &mut self,
        id: u64,
        changes: OrderChanges,
        now: Timestamp,
        sh: &Shared,
    ) -> Result<(), VenueError> {
        let mut events = std::mem::take(&mut self.scratch);
        let r = at_once(self.venue.modify(OrderId(id), changes, now, &mut events))
            .unwrap_or_else(|w| Err(VenueError::Unavailable(w.to_string())));
        self.apply(&mut events, sh, now);
        self.scratch = events;
        r
    }

    /// Record what the venue reported and tell the websockets. `at` is
    /// the replay time the gateway learnt it: executions and order updates
    /// are stamped with it (the exchange stamps fills with the bar's start,
    /// which for daily bars is a day before anyone could have seen them).
    /// The venue has already netted and booked the executions; stamping
    /// after netting is as stamping before, since a netting report copies
    /// its fill's time and order.
    fn apply(&mut self, events: &mut Vec<Event>, sh: &Shared, at: Timestamp) {
        for ev in events.drain(..) {
            match ev {
                Event::OrderUpdate(o) => {
                    let id = o.request.id.0;
                    if let Some(g) = self.orders.get_mut(&id) {
                        g.status = o.status;
                        g.filled = o.filled_quantity;
                        g.avg_price = o.avg_fill_price;
                        g.updated = at;
                        g.req = o.request;
                        sh.push(Push::Order(order_json(g, sh, true)));
                    }
                }
                Event::Execution(mut e) => {
                    e.time = at;
                    // The exchange numbers its fills from `sim.1` in every
                    // run; the run tag makes them unique across runs.
                    let seq = e
                        .execution_id
                        .strip_prefix("sim.")
                        .unwrap_or(&e.execution_id);
                    e.execution_id = format!("sim.{}.{seq}", self.run_tag);
                    if let Some(g) = e.order_id.and_then(|id| self.orders.get_mut(&id.0)) {
                        g.last_exec = Some(e.time);
                    }
                    // The str topic documents two keys the REST list lacks.
                    let mut t = trade_json(&e, self.user_ref(&e), sh);
                    t["contract_description_2"] = json!("");
                    t["open_close"] = json!("???");
                    sh.push(Push::Trade(t));
                    if self.trades.len() >= KEEP_TRADES {
                        self.trades.pop_front();
                    }
                    self.trades.push_back(e);
                }
                _ => {}
            }
        }
    }

    /// The cOID the client gave the order of `e`, if it gave one.
    pub(crate) fn user_ref(&self, e: &Execution) -> Option<&str> {
        e.order_id
            .and_then(|id| self.orders.get(&id.0))
            .and_then(|g| g.user_coid.as_deref())
    }

    pub(crate) fn reply_id(&mut self) -> String {
        self.reply_seq += 1;
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(self.reply_seq);
        let a = h.finish();
        h.write_u64(a);
        let b = h.finish();
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }

    pub(crate) fn user_coid_taken(&self, coid: &str) -> bool {
        self.orders
            .values()
            .any(|o| o.user_coid.as_deref() == Some(coid))
    }

    /// The cOID a `parentId` refers to: a cOID, or the order id of an
    /// existing order (the spec allows brackets "submitted sequentially
    /// using the default order_id").
    pub(crate) fn resolve_parent(&self, parent: &str) -> String {
        if let Ok(id) = parent.parse::<u64>() {
            if let Some(o) = self.orders.get(&id) {
                return o.req.client_order_id.clone();
            }
        }
        parent.to_owned()
    }

    pub(crate) fn open_by_coid(&self, coid: &str) -> bool {
        self.orders
            .values()
            .any(|o| !o.status.is_terminal() && o.req.client_order_id == coid)
    }
}
