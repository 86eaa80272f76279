//! The CP Web API behind the engine's [`Venue`] seam.
//!
//! Engine order ids map to the gateway's order ids as acknowledgements come
//! back; everything the gateway reports is turned into engine types. Orders
//! a strategy did not place (made in TWS, say) are reported with the
//! strategy index `usize::MAX`.
//!
//! Attribution: every order goes out with a cOID naming this bot, this run
//! and the strategy (see [`cpapi::order_ticket`]'s module doc); the broker
//! tags the engine's cOID with the strategy before placing, so the order
//! the engine and the journal hold carries the same cOID as the wire (after
//! the run prefix). An execution reaches the engine only when it is ours:
//! its `order_ref` is one of this run's orders, or names this bot (an
//! earlier run's order, still ours), or, without an `order_ref` (bracket
//! children carry none), it matches one of our bracket children by
//! contract and side. Another bot's fills on the same account, and fills
//! of orders made in TWS, never move a strategy's position.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use crate::executor::{LiveExecutor, SubmitError};
use crate::IbkrError;
use cpapi::messages::LiveOrderError;
use engine::contracts::Contracts;
use engine::event::Event;
use engine::model::{
    Conid, Execution, Order, OrderId, OrderRequest, OrderStatus, Position, SecType, Timestamp,
};
use engine::seen::SeenIds;
use engine::venue::{Venue, VenueError, VenueState};
use engine::working_orders::WorkingOrders;

use crate::live_engine::LiveVenue;
use crate::ws::WsMessage;
use engine::model::OrderChanges;

/// A live (or simulated) CP Web API account as a [`Venue`].
pub struct IbkrBroker {
    exec: LiveExecutor,
    account: String,
    contracts: Contracts,
    /// Orders this broker placed: the engine's request and the gateway id.
    placed: BTreeMap<OrderId, (OrderRequest, usize, Option<String>)>,
    /// Gateway order id -> engine id: every `sor` message is looked up here.
    by_broker_id: HashMap<String, OrderId>,
    /// Engine cOID of top-level orders -> engine id, for executions'
    /// `order_ref` (bracket children carry no cOID on the wire).
    by_coid: HashMap<String, OrderId>,
    /// Finished orders, oldest first, with when they finished: forgotten
    /// after [`FINISHED_GRACE`] or beyond [`KEEP_FINISHED`], so memory
    /// follows the working orders, not the run's history (it grew by about
    /// 2.4 KB per order).
    finished: VecDeque<(OrderId, Instant)>,
    /// The ids in `finished`.
    finished_ids: HashSet<OrderId>,
    /// Executions delivered to the engine, whatever reported them (`str`,
    /// the trades fetched after a gap): the exactly-once gate.
    seen: SeenIds,
}

/// How long a finished order stays known: its late reports (a fill after
/// the update that closed it, a repeated `sor`) still find it.
const FINISHED_GRACE: Duration = Duration::from_secs(600);

/// At most this many finished orders are kept, whatever their age.
const KEEP_FINISHED: usize = 512;

impl std::fmt::Debug for IbkrBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IbkrBroker")
            .field("account", &self.account)
            .field("placed", &self.placed.len())
            .finish_non_exhaustive()
    }
}

impl IbkrBroker {
    /// A broker placing through `exec` and reading positions of `account`
    /// (the same account as the executor's ticket builder). Knows no contract
    /// yet: see [`IbkrBroker::with_contracts`].
    pub fn new(exec: LiveExecutor, account: impl Into<String>) -> Self {
        IbkrBroker {
            exec,
            account: account.into(),
            contracts: Contracts::default(),
            placed: BTreeMap::new(),
            by_broker_id: HashMap::new(),
            by_coid: HashMap::new(),
            finished: VecDeque::new(),
            finished_ids: HashSet::new(),
            seen: SeenIds::default(),
        }
    }

    /// Orders this broker still knows (working, and finished within the
    /// grace period): bounded by what is live, not by the run's history.
    pub fn tracked_orders(&self) -> usize {
        self.placed
            .len()
            .max(self.by_broker_id.len())
            .max(self.by_coid.len())
    }

    /// An order reached a final status: keep it for late reports, then
    /// forget it (see [`FINISHED_GRACE`], [`KEEP_FINISHED`]). A late
    /// execution of a forgotten order still names this bot in its
    /// `order_ref` and is counted as the bot's, only no longer linked to
    /// its strategy.
    fn retire(&mut self, id: OrderId) {
        if self.finished_ids.insert(id) {
            self.finished.push_back((id, Instant::now()));
        }
        self.prune_finished();
    }

    fn prune_finished(&mut self) {
        while let Some(&(id, at)) = self.finished.front() {
            if self.finished.len() <= KEEP_FINISHED && at.elapsed() < FINISHED_GRACE {
                break;
            }
            self.finished.pop_front();
            self.finished_ids.remove(&id);
            self.forget(id);
        }
    }

    fn forget(&mut self, id: OrderId) {
        let Some((req, _, broker_id)) = self.placed.remove(&id) else {
            return;
        };
        if let Some(b) = broker_id {
            if self.by_broker_id.get(&b) == Some(&id) {
                self.by_broker_id.remove(&b);
            }
        }
        if self.by_coid.get(&req.client_order_id) == Some(&id) {
            self.by_coid.remove(&req.client_order_id);
        }
    }

    /// Trade `contracts`: the order ticket needs a contract's security
    /// type (futures get the compliance fields).
    pub fn with_contracts(mut self, contracts: Contracts) -> Self {
        self.contracts = contracts;
        self
    }

    /// The account this broker trades.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The gateway's id of an engine order, once acknowledged.
    pub fn broker_id(&self, id: OrderId) -> Option<&str> {
        self.placed.get(&id).and_then(|(_, _, b)| b.as_deref())
    }

    /// The engine order a gateway order id belongs to, if we placed it.
    pub fn engine_id(&self, broker_id: &str) -> Option<OrderId> {
        self.by_broker_id.get(broker_id).copied()
    }

    /// The engine order an execution's `order_ref` (a cOID with this run's
    /// prefix) belongs to. Bracket children carry no cOID on the wire, so
    /// their executions stay unlinked here; their `sor` updates link them.
    pub fn engine_id_by_ref(&self, order_ref: &str) -> Option<OrderId> {
        match order_ref.strip_prefix(self.exec.coid_prefix()) {
            Some(coid) => self.by_coid.get(coid).copied(),
            // An earlier run's order this run adopted: known by its whole cOID.
            None => self.by_coid.get(order_ref).copied(),
        }
    }

    /// Whether an execution belongs to this bot, linking it to its engine
    /// order when it is one of this run's. See the module doc: by
    /// `order_ref` (this run's, or this bot's from an earlier run), else
    /// (no `order_ref`: a bracket child) by one of our children of the
    /// same contract and side, the working one first.
    pub fn claim_execution(&self, e: &mut Execution, orders: &WorkingOrders) -> bool {
        if e.order_id.is_some() {
            return true;
        }
        match e.order_ref.as_deref() {
            Some(r) => {
                e.order_id = self.engine_id_by_ref(r);
                e.order_id.is_some() || r.starts_with(self.exec.bot_prefix())
            }
            None => {
                let side = match e.side {
                    engine::model::ExecSide::Bought => engine::model::Side::Buy,
                    engine::model::ExecSide::Sold => engine::model::Side::Sell,
                    // Netting reports follow a fill; they carry the leg's
                    // order_ref when the fill did.
                    engine::model::ExecSide::Netting => return false,
                };
                let children = self.placed.iter().rev().filter(|(_, (req, _, _))| {
                    req.parent.is_some() && req.conid == e.conid && req.side == side
                });
                let mut latest = None;
                for (id, _) in children {
                    if orders.get(*id).is_some_and(Order::is_open) {
                        e.order_id = Some(*id);
                        return true;
                    }
                    latest.get_or_insert(*id);
                }
                e.order_id = latest;
                latest.is_some()
            }
        }
    }

    /// Remember an order and index it by gateway id and cOID.
    fn remember(&mut self, req: OrderRequest, strategy: usize, broker_id: Option<String>) {
        let id = req.id;
        if let Some(b) = &broker_id {
            self.by_broker_id.insert(b.clone(), id);
        }
        if req.parent.is_none() {
            self.by_coid.insert(req.client_order_id.clone(), id);
        }
        self.placed.insert(id, (req, strategy, broker_id));
    }

    fn sec_type(&self, conid: Conid) -> SecType {
        self.contracts
            .get(conid)
            .map(|c| c.sec_type.clone())
            .unwrap_or_default()
    }

    fn order(&self, id: OrderId, status: OrderStatus) -> Result<Order, VenueError> {
        let (req, strategy, broker_id) =
            self.placed.get(&id).ok_or(VenueError::UnknownOrder(id))?;
        let now = chrono::Utc::now();
        Ok(Order {
            request: req.clone(),
            broker_order_id: broker_id.clone(),
            status,
            filled_quantity: Decimal::ZERO,
            avg_fill_price: None,
            reason: None,
            strategy: *strategy,
            created: now,
            updated: now,
        })
    }
}

/// Tag the engine cOIDs (and children's `parentId`) of a new batch with the
/// strategy that placed it ([`cpapi::order_ticket::tag_strategy`]), once:
/// a request already tagged (a retry) is left as it is.
fn tag_batch(strategy: usize, batch: &mut [OrderRequest]) {
    let tagged = cpapi::order_ticket::tag_strategy(strategy, "");
    let tag = |c: &mut String| {
        if !c.starts_with(&tagged) {
            *c = cpapi::order_ticket::tag_strategy(strategy, c);
        }
    };
    for r in batch {
        tag(&mut r.client_order_id);
        if let Some(p) = r.parent.as_mut() {
            tag(p);
        }
    }
}

/// An order as `/iserver/account/orders` lists it: its fill and average
/// price as listed, known to the engine as `request` of `strategy`.
fn listed_order(
    lo: &cpapi::messages::LiveOrder,
    request: OrderRequest,
    strategy: usize,
    status: OrderStatus,
) -> Order {
    let now: Timestamp = chrono::Utc::now();
    Order {
        request,
        broker_order_id: lo.order_id.clone(),
        status,
        filled_quantity: lo.filled_quantity.unwrap_or_default(),
        avg_fill_price: lo.avg_price,
        reason: None,
        strategy,
        created: now,
        updated: now,
    }
}

fn venue(e: IbkrError) -> VenueError {
    match e {
        IbkrError::Api { message, .. } => VenueError::Rejected(message),
        other => VenueError::Unavailable(other.to_string()),
    }
}

fn submit_error(e: SubmitError) -> VenueError {
    match e {
        SubmitError::Venue(v) => venue(v),
        other => VenueError::Rejected(other.to_string()),
    }
}

/// The status of a place/modify acknowledgement. The ack only confirms
/// the order was taken, so an absent or unknown status is `Submitted`; the
/// order's real status follows on `sor`.
fn parse_status(s: Option<&str>) -> OrderStatus {
    s.and_then(|s| cpapi::spelling::order_status(s).ok())
        .unwrap_or(OrderStatus::Submitted)
}

impl IbkrBroker {
    /// Place one batch; the orders as acknowledged, in batch order.
    pub async fn place_batch(
        &mut self,
        strategy: usize,
        mut batch: Vec<OrderRequest>,
    ) -> Result<Vec<Order>, VenueError> {
        tag_batch(strategy, &mut batch);
        let sec: BTreeMap<Conid, SecType> = batch
            .iter()
            .map(|r| (r.conid, self.sec_type(r.conid)))
            .collect();
        let telemetry = &self.exec.client().config().telemetry;
        let prefix = self.exec.coid_prefix();
        for req in &batch {
            telemetry.order_sent();
            // The cOID as the venue and the other order lines show it.
            tracing::info!(coid = format_args!("{prefix}{}", req.client_order_id), conid = %req.conid, side = ?req.side,
                quantity = %req.quantity, order_type = ?req.order_type,
                limit = ?req.limit_price, stop = ?req.stop_price, "order sent");
        }
        let sent = std::time::Instant::now();
        let placed = self
            .exec
            .submit(&batch, |c| sec.get(&c).cloned().unwrap_or_default())
            .await
            .map_err(submit_error)?;
        let round_trip = sent.elapsed();
        for ack in placed.acks.iter().filter(|a| a.order_id.is_some()) {
            telemetry.order_acked(round_trip);
            tracing::info!(
                order = ack.order_id.as_deref().unwrap_or(""),
                status = ack.order_status.as_deref().unwrap_or(""),
                round_trip_ms = round_trip.as_millis(),
                "order acknowledged"
            );
        }
        // The gateway answers one ack per order of the batch, in order.
        if placed.acks.len() != batch.len() {
            tracing::warn!(
                acks = placed.acks.len(),
                orders = batch.len(),
                "gateway acknowledged a different number of orders than sent"
            );
        }
        let mut out = Vec::with_capacity(batch.len());
        for (i, req) in batch.into_iter().enumerate() {
            let ack = placed.acks.get(i);
            let id = req.id;
            let broker_id = ack.and_then(|a| a.order_id.clone());
            let status = parse_status(ack.and_then(|a| a.order_status.as_deref()));
            self.remember(req, strategy, broker_id);
            out.push(self.order(id, status)?);
            if status.is_terminal() {
                self.retire(id);
            }
        }
        Ok(out)
    }

    /// Ask the gateway to cancel; the order as `PendingCancel`.
    pub async fn request_cancel(&mut self, id: OrderId) -> Result<Order, VenueError> {
        let broker_id = self
            .broker_id(id)
            .ok_or(VenueError::UnknownOrder(id))?
            .to_owned();
        let conid = self
            .placed
            .get(&id)
            .map(|(req, _, _)| req.conid)
            .ok_or(VenueError::UnknownOrder(id))?;
        self.exec
            .cancel(&broker_id, &self.sec_type(conid))
            .await
            .map_err(submit_error)?;
        self.order(id, OrderStatus::PendingCancel)
    }

    /// Modify a working order; the order as modified.
    pub async fn modify_order(
        &mut self,
        id: OrderId,
        changes: OrderChanges,
    ) -> Result<Order, VenueError> {
        let (req, strategy, broker_id) = self
            .placed
            .get(&id)
            .cloned()
            .ok_or(VenueError::UnknownOrder(id))?;
        let broker_id = broker_id.ok_or(VenueError::UnknownOrder(id))?;
        let mut new = req.clone();
        changes.apply_to(&mut new);
        new.validate().map_err(VenueError::Rejected)?;
        // The modify body is the whole order as when placing it.
        let body = self.exec.ticket(&new, self.sec_type(new.conid));
        self.exec
            .modify(&broker_id, &body)
            .await
            .map_err(submit_error)?;
        self.remember(new, strategy, Some(broker_id));
        self.order(id, OrderStatus::Submitted)
    }

    /// The account's non-flat positions.
    pub async fn fetch_positions(&self) -> Result<Vec<Position>, VenueError> {
        let p = self
            .exec
            .client()
            .positions(&self.account)
            .await
            .map_err(venue)?;
        Ok(p.iter()
            .map(|p| p.to_position())
            .filter(|p| !p.is_flat())
            .collect())
    }

    /// Every order of the live orders listing. Orders this broker placed
    /// keep their engine request; the others (placed before a restart, or
    /// in TWS) are described from the listing. An order that cannot be read
    /// fails the call, naming the order and the field: a working order the
    /// engine silently does not see is one it can neither cancel nor count
    /// against risk.
    pub async fn fetch_orders(&self) -> Result<Vec<Order>, VenueError> {
        // Reconciliation follows start-up's listing (the adoption of
        // earlier orders): within 5 s and with nothing placed, it is reused.
        let live = self.exec.recent_live_orders().await.map_err(venue)?;
        let mut out = Vec::with_capacity(live.len());
        for lo in live {
            let unreadable = |e: LiveOrderError| VenueError::Unreadable(e.to_string());
            let status = lo.status_of_order().map_err(unreadable)?;
            let known = lo
                .order_id
                .as_deref()
                .and_then(|b| self.engine_id(b))
                .and_then(|id| self.placed.get(&id));
            let (request, strategy) = match known {
                Some((req, s, _)) => (req.clone(), *s),
                // Not ours: describe it as far as the listing allows.
                None => (lo.to_request().map_err(unreadable)?, usize::MAX),
            };
            out.push(listed_order(&lo, request, strategy, status));
        }
        Ok(out)
    }

    /// One order's status as `/iserver/account/order/status/{id}` reports
    /// it, whatever its age: (status, filled quantity, average price). For
    /// the orders the live list no longer shows (finished on an earlier
    /// day) at reconciliation.
    pub async fn fetch_order_status(
        &self,
        broker_order_id: &str,
    ) -> Result<(OrderStatus, Decimal, Option<Decimal>), VenueError> {
        let info = self
            .exec
            .client()
            .order_status(broker_order_id)
            .await
            .map_err(venue)?;
        let status = cpapi::spelling::order_status(info.order_status.as_deref().unwrap_or(""))
            .map_err(|e| VenueError::Unreadable(format!("order {broker_order_id}: {e}")))?;
        Ok((
            status,
            info.cum_fill.unwrap_or_default(),
            info.average_price,
        ))
    }

    /// The account's executions as far back as the broker reports them
    /// ([`cpapi::messages::TRADES_WINDOW_DAYS`]).
    pub async fn fetch_executions(&self) -> Result<Vec<Execution>, VenueError> {
        let trades = self
            .exec
            .client()
            .trades(Some(cpapi::messages::TRADES_WINDOW_DAYS))
            .await
            .map_err(venue)?;
        let mut out = Vec::with_capacity(trades.len());
        for t in &trades {
            match t.to_execution() {
                Ok(mut e) => {
                    // Link our own orders by cOID (order_ref).
                    e.order_id = e
                        .order_ref
                        .as_deref()
                        .and_then(|r| self.engine_id_by_ref(r));
                    out.push(e)
                }
                Err(err) => tracing::warn!(%err, "skipping an execution the gateway sent"),
            }
        }
        Ok(out)
    }
}

/// What [`IbkrBroker::catch_up`] found after a gap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaughtUp {
    /// Executions the feed had not delivered (they happened in the gap).
    pub executions: usize,
    /// Order updates the feed had not delivered.
    pub order_updates: usize,
}

/// The gap, the restart and the exactly-once gate: what the websocket
/// cannot tell.
impl IbkrBroker {
    /// One execution, from any source, through the exactly-once gate and
    /// the attribution of [`IbkrBroker::claim_execution`]: delivered at most
    /// once per execution id, and only when it is this bot's.
    fn deliver_execution(
        &mut self,
        mut e: Execution,
        orders: &WorkingOrders,
        out: &mut Vec<Event>,
    ) -> bool {
        if !self.seen.insert(&e.execution_id) {
            tracing::debug!(execution = %e.execution_id, "execution already delivered");
            return false;
        }
        if self.claim_execution(&mut e, orders) {
            out.push(Event::Execution(e));
            return true;
        }
        tracing::info!(
            execution = %e.execution_id,
            order_ref = e.order_ref.as_deref().unwrap_or("none"),
            "execution of an order this bot did not place: not counted"
        );
        false
    }

    /// Mark the executions the venue reports now as delivered: at start
    /// they are already in the positions the portfolio was seeded with, so
    /// a later report of them (a `str` replay, a catch-up) must not count
    /// them again. Returns how many were marked.
    ///
    /// Assumption: an execution that lands between the portfolio's seeding
    /// and this call is counted by neither; the window is the time of one
    /// request, and the first reconciliation compares the journal's
    /// positions with the broker's.
    pub async fn prime_executions(&mut self) -> Result<usize, VenueError> {
        let executions = self.fetch_executions().await?;
        Ok(executions
            .iter()
            .filter(|e| self.seen.insert(&e.execution_id))
            .count())
    }

    /// After a websocket gap or a session re-init: what happened meanwhile.
    /// The trades of the last days (`/iserver/account/trades`) go through
    /// the same exactly-once gate as `str`, so an execution the feed missed
    /// is delivered once and one it did deliver is not delivered again;
    /// the live orders (`/iserver/account/orders`) become order updates
    /// where they moved past what `orders` (the engine's view) holds.
    pub async fn catch_up(
        &mut self,
        orders: &WorkingOrders,
        out: &mut Vec<Event>,
    ) -> Result<CaughtUp, VenueError> {
        let mut found = CaughtUp::default();
        for e in self.fetch_executions().await? {
            if self.deliver_execution(e, orders, out) {
                found.executions += 1;
            }
        }
        let mut listed = std::collections::HashSet::new();
        for lo in self.exec.live_orders().await.map_err(venue)? {
            let Some(order) = self.order_update(&lo, orders) else {
                continue;
            };
            listed.insert(order.id());
            self.push_if_moved(order, orders, out, &mut found);
        }
        // The live list shows finished orders of the venue's current day
        // only: an exit that filled, or an OCA sibling cancelled, on an
        // earlier day of the gap is missing from it and would stay
        // "working" here for ever (a strategy that waits for its exits to
        // end would never trade again). Each is asked for by id.
        let unlisted: Vec<(OrderId, String)> = orders
            .open()
            .filter(|o| !listed.contains(&o.id()))
            .filter_map(|o| Some((o.id(), self.broker_id(o.id())?.to_owned())))
            .collect();
        for (id, broker_id) in unlisted {
            let (status, filled, avg) = match self.fetch_order_status(&broker_id).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(%id, order = %broker_id, error = %e,
                        "an order missing from the live list could not be looked up");
                    continue;
                }
            };
            if let Some(order) = reported(orders, id, status, Some(filled), avg) {
                self.push_if_moved(order, orders, out, &mut found);
            }
        }
        Ok(found)
    }

    /// Deliver `order` when it differs from what the engine knows.
    fn push_if_moved(
        &mut self,
        order: Order,
        orders: &WorkingOrders,
        out: &mut Vec<Event>,
        found: &mut CaughtUp,
    ) {
        let moved = orders
            .get(order.id())
            .is_none_or(|k| k.status != order.status || k.filled_quantity != order.filled_quantity);
        if !moved {
            return;
        }
        if order.status.is_terminal() {
            self.retire(order.id());
        }
        found.order_updates += 1;
        out.push(Event::OrderUpdate(order));
    }

    /// At start: the working orders an earlier run of this bot placed (its
    /// cOID names this bot, another run), each given a new engine id by
    /// `next_id` and owned by the strategy its cOID names, so the strategy
    /// sees them among its open orders and hears their fills and updates.
    /// `strategies` is how many strategies run now: an order of an index
    /// beyond it is left alone with a warning. Bracket children carry no
    /// cOID on the wire (the spec): `known` maps gateway order ids to the
    /// cOIDs a journal recorded (`Journal::working_order_ids`), and finds
    /// them; without a journal they are not adopted (reconciliation
    /// reports them).
    pub async fn adopt_earlier_orders(
        &mut self,
        strategies: usize,
        known: &HashMap<String, engine::journal::WorkingOrderIds>,
        mut next_id: impl FnMut() -> OrderId,
    ) -> Result<Vec<Order>, VenueError> {
        let bot = self.exec.bot_prefix().to_owned();
        let this_run = self.exec.coid_prefix().to_owned();
        let mut adopted = Vec::new();
        for lo in self.exec.live_orders().await.map_err(venue)? {
            // A child is known by its gateway id in the journal.
            let journal = lo.order_id.as_deref().and_then(|id| known.get(id));
            let Some(coid) = lo
                .order_ref
                .clone()
                .filter(|r| !r.trim().is_empty())
                .or_else(|| Some(journal?.client_order_id.clone()))
            else {
                continue;
            };
            if !coid.starts_with(&bot) || coid.starts_with(&this_run) {
                continue;
            }
            let status = lo
                .status_of_order()
                .map_err(|e| VenueError::Unreadable(e.to_string()))?;
            if status.is_terminal() {
                continue;
            }
            let Some(parts) = cpapi::order_ticket::CoidParts::parse(&coid) else {
                tracing::warn!(%coid, "an earlier run's order with an unreadable cOID: not adopted");
                continue;
            };
            if parts.strategy >= strategies {
                tracing::warn!(
                    %coid,
                    strategy = parts.strategy,
                    running = strategies,
                    "an earlier run's order of a strategy that no longer runs: not adopted"
                );
                continue;
            }
            let strategy = parts.strategy;
            let mut request = lo
                .to_request()
                .map_err(|e| VenueError::Unreadable(e.to_string()))?;
            request.id = next_id();
            request.client_order_id = coid.clone();
            if request.parent.is_none() {
                // Children's executions carry no cOID: they are claimed by
                // being a child (`claim_execution`).
                request.parent = journal.and_then(|j| j.parent.clone());
            }
            let order = listed_order(&lo, request.clone(), strategy, status);
            self.remember(request, strategy, lo.order_id.clone());
            tracing::info!(
                %coid,
                strategy,
                order = %order.request.id,
                status = ?status,
                "re-attached an earlier run's working order"
            );
            adopted.push(order);
        }
        Ok(adopted)
    }
}

impl Venue for IbkrBroker {
    async fn place(
        &mut self,
        strategy: usize,
        mut batch: Vec<OrderRequest>,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), VenueError> {
        // Tagged once here (`place_batch` leaves a tagged batch as it is):
        // the refusal below names the orders as the journal would.
        tag_batch(strategy, &mut batch);
        let requests = batch.clone();
        match self.place_batch(strategy, batch).await {
            Ok(orders) => {
                out.extend(orders.into_iter().map(Event::OrderUpdate));
                Ok(())
            }
            Err(e) => {
                let reason = e.to_string();
                out.extend(requests.into_iter().map(|req| {
                    Event::OrderUpdate(Order::rejected(req, strategy, now, reason.clone()))
                }));
                Err(e)
            }
        }
    }

    async fn cancel(
        &mut self,
        id: OrderId,
        _now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), VenueError> {
        let order = self.request_cancel(id).await?;
        out.push(Event::OrderUpdate(order));
        Ok(())
    }

    async fn modify(
        &mut self,
        id: OrderId,
        changes: OrderChanges,
        _now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), VenueError> {
        let order = self.modify_order(id, changes).await?;
        out.push(Event::OrderUpdate(order));
        Ok(())
    }
}

impl VenueState for IbkrBroker {
    async fn positions(&self) -> Result<Vec<Position>, VenueError> {
        self.fetch_positions().await
    }

    async fn orders(&self) -> Result<Vec<Order>, VenueError> {
        self.fetch_orders().await
    }

    async fn executions(&self) -> Result<Vec<Execution>, VenueError> {
        self.fetch_executions().await
    }
}

impl LiveVenue for IbkrBroker {
    type Message = WsMessage;

    fn translate(&mut self, msg: WsMessage, orders: &WorkingOrders, out: &mut Vec<Event>) {
        match msg {
            WsMessage::OrderUpdate(lo) => {
                if let Some(order) = self.order_update(&lo, orders) {
                    if order.status.is_terminal() {
                        self.retire(order.id());
                    }
                    out.push(Event::OrderUpdate(order));
                }
            }
            WsMessage::Event(Event::Execution(e)) => {
                self.deliver_execution(e, orders, out);
            }
            WsMessage::Event(ev) => out.push(ev),
            WsMessage::Bulletin { id, message } => {
                tracing::warn!(%id, %message, "IBKR bulletin");
                out.push(Event::Bulletin { id, message });
            }
            WsMessage::Disconnected { reason } => {
                tracing::warn!(%reason, "websocket lost; it reconnects and resubscribes")
            }
            WsMessage::Malformed { error } => tracing::warn!(%error, "malformed websocket message"),
            _ => {}
        }
    }

    fn account(&self) -> &str {
        &self.account
    }

    fn coid_prefix(&self) -> &str {
        self.exec.coid_prefix()
    }

    fn mark_delivered(&mut self, executions: &[Execution]) {
        for e in executions {
            self.seen.insert(&e.execution_id);
        }
    }
}

impl IbkrBroker {
    /// A `sor` update as the engine's order: our order as we know it, with
    /// the status, fill and price the message carries. Updates of orders
    /// this engine did not place, or no longer works, are not ours to tell.
    fn order_update(
        &self,
        lo: &cpapi::messages::LiveOrder,
        orders: &WorkingOrders,
    ) -> Option<Order> {
        let Some(id) = lo.order_id.as_deref().and_then(|b| self.engine_id(b)) else {
            tracing::debug!(order = ?lo.order_id, "update for an order this engine did not place");
            return None;
        };
        let status = match lo.order_status() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%id, error = %e, "order update with an unknown status");
                return None;
            }
        };
        reported(orders, id, status, lo.filled_quantity, lo.avg_price)
    }
}

/// Order `id` as the engine holds it, with what the venue reports of it
/// now (a `sor` update, a live-orders row, an order-status answer).
fn reported(
    orders: &WorkingOrders,
    id: OrderId,
    status: OrderStatus,
    filled: Option<Decimal>,
    avg_price: Option<Decimal>,
) -> Option<Order> {
    let mut order = orders.get(id)?.clone();
    order.status = status;
    if let Some(f) = filled {
        order.filled_quantity = f;
    }
    if avg_price.is_some() {
        order.avg_fill_price = avg_price;
    }
    order.updated = chrono::Utc::now();
    Some(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpapi::order_ticket::TicketBuilder;
    use engine::model::{OrderType, Side, Tif};

    fn broker() -> IbkrBroker {
        let client = crate::IbkrClient::new(crate::ClientConfig::with_base_url(
            "http://127.0.0.1:9/v1/api",
        ))
        .expect("a client (it never connects here)");
        let exec = LiveExecutor::new(
            client,
            TicketBuilder {
                account: "U1".into(),
                coid_prefix: "bot1.00000000.".into(),
                ext_operator: "t".into(),
            },
            crate::reply::ReplyPolicy::default(),
        );
        IbkrBroker::new(exec, "U1")
    }

    fn request(id: u64) -> OrderRequest {
        OrderRequest {
            id: OrderId(id),
            conid: Conid(265598),
            side: Side::Buy,
            order_type: OrderType::Market,
            quantity: Decimal::ONE,
            limit_price: None,
            stop_price: None,
            trail: None,
            tif: Tif::Day,
            outside_rth: false,
            client_order_id: format!("0.ibf-{id}"),
            parent: None,
            oca_group: None,
        }
    }

    /// Placing and finishing many orders leaves the broker's maps bounded
    /// (they used to keep every order of the run); the latest finished
    /// orders are still found by their late reports.
    #[test]
    fn finished_orders_are_forgotten_beyond_the_cap() {
        let mut b = broker();
        let mut working = WorkingOrders::default();
        let n = 5_000u64;
        for id in 1..=n {
            b.remember(request(id), 0, Some(format!("{}", 1_000_000 + id)));
            let mut o = b.order(OrderId(id), OrderStatus::Submitted).expect("known");
            working.update(o.clone());
            let lo: cpapi::messages::LiveOrder = serde_json::from_value(serde_json::json!({
                "conid": 265598, "orderId": format!("{}", 1_000_000 + id), "status": "Filled",
                "filledQuantity": 1
            }))
            .expect("a sor row");
            let mut out = Vec::new();
            b.translate(WsMessage::OrderUpdate(lo), &working, &mut out);
            assert_eq!(out.len(), 1, "order {id}: the update is ours");
            o.status = OrderStatus::Filled;
            working.update(o);
            assert!(
                b.tracked_orders() <= KEEP_FINISHED + 1,
                "{}",
                b.tracked_orders()
            );
        }
        assert_eq!(b.tracked_orders(), KEEP_FINISHED);
        // The latest finished order is still linked by its cOID and id.
        let last = format!("bot1.00000000.0.ibf-{n}");
        assert_eq!(b.engine_id_by_ref(&last), Some(OrderId(n)));
        assert_eq!(b.engine_id(&format!("{}", 1_000_000 + n)), Some(OrderId(n)));
        // An old one is forgotten, yet its late fill is still the bot's.
        assert_eq!(b.engine_id_by_ref("bot1.00000000.0.ibf-1"), None);
        let mut late = Execution {
            execution_id: "late".into(),
            order_id: None,
            order_ref: Some("bot1.00000000.0.ibf-1".into()),
            account: "U1".into(),
            conid: Conid(265598),
            side: engine::model::ExecSide::Bought,
            size: Decimal::ONE,
            price: Decimal::ONE,
            commission: Decimal::ZERO,
            net_amount: Decimal::ONE,
            time: chrono::Utc::now(),
        };
        assert!(b.claim_execution(&mut late, &working));
        // Another bot's fill is not.
        let mut foreign = Execution {
            order_ref: Some("bot2.00000000.0.ibf-1".into()),
            ..late
        };
        assert!(!b.claim_execution(&mut foreign, &working));
    }
}
