//! The simulated gateway's order desk: the orders it has accepted, the
//! batches staged behind a bar in progress, the executions it remembers,
//! the question (precaution prompt) awaiting a reply, and the bookkeeping
//! of what the exchange reports ([`Desk::apply`]). The HTTP side is
//! [`super::order_handlers`]; the JSON it renders is [`super::order_json`].
//!
//! Timing: an order placed while a bar of its contract is in progress is
//! handed to the exchange when that bar completes ([`Desk::on_bar`],
//! [`Desk::release_staged`]), so its first chance to fill is the next bar.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};

use rust_decimal::Decimal;
use serde_json::json;

use engine::event::Event;
use engine::model::OrderChanges;
use engine::model::{Bar, Conid, Execution, OrderRequest, OrderStatus, Timestamp};

use super::config::Instrument;
use super::order_json::{order_json, trade_json};
use super::portfolio::Books;
use super::prompts::Prompt;
use super::state::{Push, Shared};
use backtest::exchange::{ExchangeConfig, SimExchange};

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
    pub(crate) exchange: SimExchange,
    pub(crate) orders: BTreeMap<u64, GwOrder>,
    pub(crate) staged: Vec<Staged>,
    pub(crate) trades: VecDeque<Execution>,
    pub(crate) next_id: u64,
    pub(crate) scratch: Vec<Event>,
    pub(crate) pending: Option<Pending>,
    pub(crate) suppressed: HashSet<String>,
    pub(crate) reply_seq: u64,
    /// The account the executions book (positions, cash, PnL).
    pub books: Books,
}

impl Desk {
    pub fn new(
        cfg: ExchangeConfig,
        instruments: &BTreeMap<Conid, Instrument>,
        initial_cash: Decimal,
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
            exchange,
            orders: BTreeMap::new(),
            staged: Vec::new(),
            trades: VecDeque::new(),
            next_id: 1_000_000_000,
            scratch: Vec::new(),
            pending: None,
            suppressed: HashSet::new(),
            reply_seq: 0,
            books: Books::new(initial_cash),
        }
    }

    /// Feed one completed bar (ending at `end`). Batches staged behind
    /// bars that ended earlier go to the exchange first; those behind bars
    /// ending at `end` wait until every such bar has been fed.
    pub fn on_bar(&mut self, bar: &Bar, end: Timestamp, sh: &Shared) {
        self.release(|at| at < end, sh);
        let mut events = std::mem::take(&mut self.scratch);
        if self.exchange.has_orders() {
            self.exchange.on_bar(bar, &mut events);
        }
        self.apply(&mut events, sh, end);
        self.scratch = events;
    }

    /// After the bars due by `now` were fed: release what waited for them.
    pub fn release_staged(&mut self, now: Timestamp, sh: &Shared) {
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
            let mut events = std::mem::take(&mut self.scratch);
            let _ = self.exchange.place(0, s.batch, s.release_at, &mut events);
            self.apply(&mut events, sh, s.release_at);
            self.scratch = events;
        }
    }

    /// Record what the exchange reported and tell the websockets. `at` is
    /// the replay time the gateway learnt it: executions and order updates
    /// are stamped with it (the exchange stamps fills with the bar's start,
    /// which for daily bars is a day before anyone could have seen them).
    pub(crate) fn apply(&mut self, events: &mut Vec<Event>, sh: &Shared, at: Timestamp) {
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
                    if let Some(g) = e.order_id.and_then(|id| self.orders.get_mut(&id.0)) {
                        g.last_exec = Some(e.time);
                    }
                    let user_ref = self.user_ref(&e).map(str::to_owned);
                    for e in sh
                        .forecast
                        .pairing()
                        .venue_reports(e, |c| self.books.quantity(c))
                    {
                        // The str topic documents two keys the REST list lacks.
                        let mut t = trade_json(&e, user_ref.as_deref(), sh);
                        t["contract_description_2"] = json!("");
                        t["open_close"] = json!("???");
                        sh.push(Push::Trade(t));
                        self.books.apply(&e);
                        if self.trades.len() >= KEEP_TRADES {
                            self.trades.pop_front();
                        }
                        self.trades.push_back(e);
                    }
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
