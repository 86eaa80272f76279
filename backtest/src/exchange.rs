//! The simulated exchange: fills orders against bars.
//!
//! Fill rules (the README quotes these):
//!
//! * An order is first evaluated on the first bar of its contract that
//!   arrives after it was placed. A market order placed while handling bar N
//!   therefore fills at the open of bar N+1.
//! * Limit orders fill at the open when the open is already through the
//!   limit, else at the limit when the bar's range reaches it.
//! * Stop orders trigger when the range reaches the stop; when the open gaps
//!   through the stop they fill at the open, else at the stop.
//! * Stop-limit: triggers as a stop; fills at the trigger price when that is
//!   within the limit, else rests as a limit from the next bar.
//! * TRAIL / TRAILLMT: the stop trails the bar extremes (highs for a sell,
//!   lows for a buy) by the trailing amount or percent. The level used on a bar
//!   comes from the bars before it; a bar's own extreme moves the stop for the
//!   next bar. The limit of a TRAILLMT keeps its initial distance to the stop.
//! * MIDPRICE: filled at the open (the bar's best estimate of the midpoint),
//!   capped by its price like a limit when one is given. No slippage.
//! * Slippage of N ticks applies to market and stop fills, against the trader,
//!   and is clamped to the bar's range: no fill is ever outside its bar.
//! * When several orders of one bracket or OCA group could fill in the same
//!   bar, orders filled at the open come first; then stop-type orders before
//!   limits ([`Intrabar::StopFirst`], the default, the pessimistic reading) or
//!   the reverse ([`Intrabar::TargetFirst`]); then the trigger nearest the
//!   open. The first fill cancels its siblings.
//! * Brackets: children (parentId = parent's cOID) are held (`PreSubmitted`)
//!   until the parent fills and start working on the next bar; a child fill
//!   cancels its siblings; cancelling the parent cancels the children.
//! * OCA (`oca_group`): the first fill cancels every other order of the group,
//!   and the children of cancelled parents.
//! * DAY orders expire when the first bar of a later session arrives (session
//!   = calendar date in the configured exchange time zone). An order placed
//!   after a session's last bar belongs to the next session.
//! * IOC and OPG orders get exactly one bar; what is not filled there is
//!   cancelled.
//! * Orders fill completely (no partial fills, no volume limit).

use std::collections::VecDeque;
use std::str::FromStr;

use chrono::NaiveDate;
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Serialize;

use engine::contracts::Contracts;
use engine::event::Event;
use engine::model::OrderChanges;
use engine::model::{
    Bar, Conid, Contract, ExecSide, Execution, Order, OrderId, OrderRequest, OrderStatus,
    OrderType, Side, Tif, Timestamp,
};
use engine::venue::VenueError;

/// Which of two exits of one bracket fills when a bar reaches both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Intrabar {
    /// Stop-type orders fill before limits: the stop-loss wins (the
    /// pessimistic reading, the default).
    #[default]
    StopFirst,
    /// Limits fill before stop-type orders: the take-profit wins.
    TargetFirst,
}

/// How commissions are charged per execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum CommissionModel {
    /// No commission (the default).
    #[default]
    None,
    /// IBKR Pro fixed: per share, a minimum per order, and a maximum as a
    /// fraction of trade value (the maximum wins over the minimum).
    IbkrFixed {
        /// Charge per share (or contract), in the account currency.
        per_share: Decimal,
        /// Least charged per order.
        minimum: Decimal,
        /// Most charged, as a fraction of the trade value (0.01 = 1%).
        max_fraction: Decimal,
    },
    /// A flat amount per order.
    PerOrder(Decimal),
}

impl CommissionModel {
    /// IBKR's published US stock fixed rate: USD 0.005 per share, USD 1.00
    /// minimum, 1% of trade value maximum.
    pub fn ibkr_fixed() -> Self {
        CommissionModel::IbkrFixed {
            per_share: Decimal::new(5, 3),
            minimum: Decimal::ONE,
            max_fraction: Decimal::new(1, 2),
        }
    }

    /// The commission of one execution of `quantity` at `price` of a contract
    /// with `multiplier` (1 for stocks), in the account currency. Orders fill
    /// completely in one execution, so this is also the per-order charge.
    pub fn charge(&self, quantity: Decimal, price: Decimal, multiplier: Decimal) -> Decimal {
        match *self {
            CommissionModel::None => Decimal::ZERO,
            CommissionModel::PerOrder(x) => x,
            CommissionModel::IbkrFixed {
                per_share,
                minimum,
                max_fraction,
            } => {
                // Saturating, not checked: the charge is capped by a
                // fraction of the value, so a value beyond range (orders
                // are bounded by `engine::limits`, multipliers are not)
                // still gives the cap, never a panic.
                let value = quantity
                    .saturating_mul(price)
                    .saturating_mul(multiplier)
                    .abs();
                quantity
                    .abs()
                    .saturating_mul(per_share)
                    .max(minimum)
                    .min(value.saturating_mul(max_fraction))
            }
        }
    }
}

impl std::fmt::Display for CommissionModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommissionModel::None => f.write_str("none"),
            CommissionModel::IbkrFixed {
                per_share,
                minimum,
                max_fraction,
            } => write!(f, "ibkr-fixed:{per_share}/{minimum}/{max_fraction}"),
            CommissionModel::PerOrder(x) => write!(f, "per-order:{x}"),
        }
    }
}

/// `none`, `ibkr-fixed` or `per-order:X`.
impl FromStr for CommissionModel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s {
            "none" => return Ok(CommissionModel::None),
            "ibkr-fixed" => return Ok(CommissionModel::ibkr_fixed()),
            _ => {}
        }
        if let Some(x) = s.strip_prefix("per-order:") {
            let v = Decimal::from_str(x.trim())
                .map_err(|_| format!("per-order amount {x:?} is not a number"))?;
            if v.is_sign_negative() {
                return Err(format!("per-order amount {v} is negative"));
            }
            return Ok(CommissionModel::PerOrder(v));
        }
        Err(format!(
            "unknown commission model {s:?}: use none, ibkr-fixed or per-order:X"
        ))
    }
}

/// Settings of the simulated exchange.
#[derive(Debug, Clone)]
pub struct ExchangeConfig {
    /// How executions are charged (default none).
    pub commission: CommissionModel,
    /// Adverse slippage of market and stop fills, in ticks of the contract
    /// (default 0); never beyond the bar's range.
    pub slippage_ticks: u32,
    /// Which exit of a bracket or OCA group fills when one bar reaches both.
    pub intrabar: Intrabar,
    /// Time zone whose calendar date defines a session (DAY expiry).
    pub session_tz: Tz,
    /// Account id written on every execution (default `DU0000000`).
    pub account: String,
    /// How many recent executions [`SimExchange::executions`] keeps; older
    /// ones are dropped so memory stays flat on long runs.
    pub keep_executions: usize,
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        ExchangeConfig {
            commission: CommissionModel::None,
            slippage_ticks: 0,
            intrabar: Intrabar::StopFirst,
            session_tz: chrono_tz::America::New_York,
            account: "DU0000000".to_owned(),
            keep_executions: 10_000,
        }
    }
}

#[derive(Debug, Clone)]
struct Working {
    order: Order,
    /// Bracket child waiting for its parent to fill.
    held: bool,
    /// Session date of the first bar this order saw while active.
    session: Option<NaiveDate>,
    bars_seen: u32,
    /// Stop-limit (or TRAILLMT) whose stop has triggered: now a plain limit.
    triggered: bool,
    /// Current trailing stop level and the extreme it trails.
    trail_stop: Option<Decimal>,
    trail_extreme: Option<Decimal>,
    /// TRAILLMT: limit = stop -/+ this offset.
    trail_limit_offset: Decimal,
    seq: u64,
}

/// An order that can fill on the current bar: (index into `working`, fill
/// price, intrabar sort key). The key orders fills by estimated time within
/// the bar: at the open first, then stop/limit rank, then distance from the
/// open, then submission order.
type Triggered = (usize, Decimal, (u8, u8, Decimal, u64));

/// What a fill needs of its contract, read from the contract table once
/// per bar.
#[derive(Debug, Clone, Copy)]
struct Instrument {
    conid: Conid,
    multiplier: Decimal,
    tick: Decimal,
}

/// Bar-driven matching engine with brackets, OCA groups and commissions.
#[derive(Debug)]
pub struct SimExchange {
    cfg: ExchangeConfig,
    contracts: Contracts,
    working: Vec<Working>,
    recent: VecDeque<Execution>,
    exec_seq: u64,
    order_seq: u64,
    /// Scratch buffer for one bar's triggered orders, reused across bars.
    triggered: Vec<Triggered>,
}

impl SimExchange {
    /// An exchange with no contracts and no orders.
    pub fn new(cfg: ExchangeConfig) -> Self {
        SimExchange {
            cfg,
            contracts: Contracts::default(),
            working: Vec::new(),
            recent: VecDeque::new(),
            exec_seq: 0,
            order_seq: 0,
            triggered: Vec::new(),
        }
    }

    /// The settings it was built with.
    pub fn config(&self) -> &ExchangeConfig {
        &self.cfg
    }

    /// Trade on `contracts` (multipliers and ticks; a contract the table
    /// does not know has multiplier 1 and a one-cent tick).
    pub fn with_contracts(mut self, contracts: Contracts) -> Self {
        self.contracts = contracts;
        self
    }

    /// Tell the exchange one more contract (or a new description of one).
    pub fn add_contract(&mut self, c: &Contract) {
        self.contracts.insert(c.clone());
    }

    fn instrument(&self, conid: Conid) -> Instrument {
        match self.contracts.get(conid) {
            Some(c) => Instrument {
                conid,
                multiplier: c.multiplier,
                tick: c.tick_size,
            },
            None => Instrument {
                conid,
                multiplier: Decimal::ONE,
                tick: Decimal::new(1, 2),
            },
        }
    }

    /// True when any order is working or held: lets the replay skip the
    /// exchange entirely on the (common) bars where nothing can fill.
    #[inline]
    pub fn has_orders(&self) -> bool {
        !self.working.is_empty()
    }

    /// Working and held orders, in submission order.
    pub fn orders(&self) -> impl Iterator<Item = &Order> {
        self.working.iter().map(|w| &w.order)
    }

    /// The most recent executions (bounded by `keep_executions`).
    pub fn executions(&self) -> impl Iterator<Item = &Execution> {
        self.recent.iter()
    }

    /// Accept a batch (single order, bracket or OCA group). A batch is
    /// all-or-nothing: if any order is invalid every order of it is rejected
    /// (status `Inactive` with the reason), as the gateway refuses the whole
    /// request.
    pub fn place(
        &mut self,
        strategy: usize,
        batch: Vec<OrderRequest>,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), VenueError> {
        if let Err(reason) = self.validate_batch(&batch) {
            for req in batch {
                out.push(Event::OrderUpdate(Order::rejected(
                    req,
                    strategy,
                    now,
                    reason.clone(),
                )));
            }
            return Err(VenueError::Rejected(reason));
        }
        for req in batch {
            let held = req.parent.is_some();
            let trail_limit_offset = match (req.order_type, req.stop_price, req.limit_price) {
                (OrderType::TrailLimit, Some(s), Some(l)) => (s - l).abs(),
                _ => Decimal::ZERO,
            };
            self.order_seq += 1;
            let order = Order {
                // The engine's id is the only id a simulated order needs; the
                // CP Gateway simulator assigns IBKR-style ids of its own.
                broker_order_id: None,
                status: if held {
                    OrderStatus::PreSubmitted
                } else {
                    OrderStatus::Submitted
                },
                filled_quantity: Decimal::ZERO,
                avg_fill_price: None,
                reason: None,
                strategy,
                created: now,
                updated: now,
                request: req,
            };
            out.push(Event::OrderUpdate(order.clone()));
            self.working.push(Working {
                order,
                held,
                session: None,
                bars_seen: 0,
                triggered: false,
                trail_stop: None,
                trail_extreme: None,
                trail_limit_offset,
                seq: self.order_seq,
            });
        }
        Ok(())
    }

    fn validate_batch(&self, batch: &[OrderRequest]) -> Result<(), String> {
        if batch.is_empty() {
            return Err("empty order batch".to_owned());
        }
        for (i, req) in batch.iter().enumerate() {
            req.validate()
                .map_err(|e| format!("order {} ({}): {e}", req.id, req.client_order_id))?;
            if self.working.iter().any(|w| w.order.id() == req.id)
                || batch[..i].iter().any(|o| o.id == req.id)
            {
                return Err(format!("duplicate order id {}", req.id));
            }
            if self
                .working
                .iter()
                .any(|w| w.order.request.client_order_id == req.client_order_id)
                || batch[..i]
                    .iter()
                    .any(|o| o.client_order_id == req.client_order_id)
            {
                return Err(format!("duplicate cOID {:?}", req.client_order_id));
            }
            if let Some(parent) = &req.parent {
                let in_batch = batch[..i].iter().any(|o| &o.client_order_id == parent);
                let working = self
                    .working
                    .iter()
                    .any(|w| &w.order.request.client_order_id == parent);
                if !in_batch && !working {
                    return Err(format!(
                        "order {}: parentId {parent:?} names no working order",
                        req.id
                    ));
                }
            }
        }
        Ok(())
    }

    /// Cancel a working order and, for a bracket parent, its children.
    pub fn cancel(
        &mut self,
        id: OrderId,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), VenueError> {
        let idx = self
            .working
            .iter()
            .position(|w| w.order.id() == id)
            .ok_or(VenueError::UnknownOrder(id))?;
        self.cancel_tree(idx, now, "cancelled by request", out);
        self.working.retain(|w| w.order.is_open());
        Ok(())
    }

    /// Change quantity or prices of a working order.
    pub fn modify(
        &mut self,
        id: OrderId,
        changes: OrderChanges,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), VenueError> {
        let w = self
            .working
            .iter_mut()
            .find(|w| w.order.id() == id)
            .ok_or(VenueError::UnknownOrder(id))?;
        let mut req = w.order.request.clone();
        changes.apply_to(&mut req);
        if changes.stop_price.is_some() {
            w.trail_stop = None;
        }
        req.validate().map_err(VenueError::Rejected)?;
        w.order.request = req;
        w.order.updated = now;
        out.push(Event::OrderUpdate(w.order.clone()));
        Ok(())
    }

    fn cancel_at(&mut self, idx: usize, now: Timestamp, reason: &str, out: &mut Vec<Event>) {
        let w = &mut self.working[idx];
        if !w.order.is_open() {
            return;
        }
        w.order.status = OrderStatus::Cancelled;
        w.order.reason = Some(reason.to_owned());
        w.order.updated = now;
        out.push(Event::OrderUpdate(w.order.clone()));
    }

    /// Cancel order `idx` and every held child of it.
    fn cancel_tree(&mut self, idx: usize, now: Timestamp, reason: &str, out: &mut Vec<Event>) {
        self.cancel_at(idx, now, reason, out);
        let coid = self.working[idx].order.request.client_order_id.clone();
        for j in 0..self.working.len() {
            if self.working[j].order.request.parent.as_deref() == Some(coid.as_str()) {
                self.cancel_at(j, now, reason, out);
            }
        }
    }

    /// Process one bar: expire, trigger and fill the orders of its contract.
    /// Emits executions before the order update that reports the fill.
    pub fn on_bar(&mut self, bar: &Bar, out: &mut Vec<Event>) {
        if !self
            .working
            .iter()
            .any(|w| !w.held && w.order.request.conid == bar.conid)
        {
            return;
        }
        let session = bar.time.with_timezone(&self.cfg.session_tz).date_naive();
        let inst = self.instrument(bar.conid);

        // 1. DAY expiry and session stamping.
        for i in 0..self.working.len() {
            let w = &self.working[i];
            if w.held || w.order.request.conid != bar.conid || !w.order.is_open() {
                continue;
            }
            match w.session {
                Some(s) if s < session && w.order.request.tif == Tif::Day => {
                    self.cancel_tree(i, bar.time, "DAY order expired at session end", out);
                }
                Some(_) => {}
                None => self.working[i].session = Some(session),
            }
        }

        // 2. Which orders can fill on this bar, and at what price.
        let mut triggered = std::mem::take(&mut self.triggered);
        triggered.clear();
        for (i, w) in self.working.iter_mut().enumerate() {
            if w.held || w.order.request.conid != bar.conid || !w.order.is_open() {
                continue;
            }
            w.bars_seen += 1;
            if let Some((price, at_open, stop_like)) =
                evaluate(w, bar, &inst, self.cfg.slippage_ticks)
            {
                let rank = match (self.cfg.intrabar, stop_like) {
                    (Intrabar::StopFirst, true) | (Intrabar::TargetFirst, false) => 0,
                    _ => 1,
                };
                let distance = (price - bar.open).abs();
                triggered.push((i, price, (u8::from(!at_open), rank, distance, w.seq)));
            }
        }
        triggered.sort_by_key(|t| t.2);

        // 3. Fill in estimated intrabar order; a fill cancels its siblings.
        for &(i, price, _) in &triggered {
            if !self.working[i].order.is_open() {
                continue; // cancelled by an earlier sibling fill in this bar
            }
            self.fill(i, price, bar.time, &inst, out);
        }
        self.triggered = triggered;

        // 4. IOC / OPG get one bar; trailing stops follow this bar's extreme.
        for i in 0..self.working.len() {
            let w = &self.working[i];
            if w.held || w.order.request.conid != bar.conid || !w.order.is_open() {
                continue;
            }
            if matches!(w.order.request.tif, Tif::Ioc | Tif::Opg) && w.bars_seen >= 1 {
                let reason = if w.order.request.tif == Tif::Ioc {
                    "IOC: unfilled rest cancelled"
                } else {
                    "OPG: not filled at the open"
                };
                self.cancel_tree(i, bar.time, reason, out);
                continue;
            }
            update_trail(&mut self.working[i], bar);
        }
        self.working.retain(|w| w.order.is_open());
    }

    fn fill(
        &mut self,
        idx: usize,
        price: Decimal,
        time: Timestamp,
        inst: &Instrument,
        out: &mut Vec<Event>,
    ) {
        let (qty, side, id, coid, oca, parent) = {
            let w = &mut self.working[idx];
            let req = &w.order.request;
            (
                w.order.remaining(),
                req.side,
                req.id,
                req.client_order_id.clone(),
                req.oca_group.clone(),
                req.parent.clone(),
            )
        };
        self.exec_seq += 1;
        let commission = self.cfg.commission.charge(qty, price, inst.multiplier);
        let exec = Execution {
            execution_id: format!("sim.{}", self.exec_seq),
            order_id: Some(id),
            order_ref: Some(coid.clone()),
            account: self.cfg.account.clone(),
            conid: inst.conid,
            side: match side {
                Side::Buy => ExecSide::Bought,
                Side::Sell => ExecSide::Sold,
            },
            size: qty,
            price,
            commission,
            // Informational (the portfolio books from size and price);
            // saturating for the same reason as the commission.
            net_amount: qty.saturating_mul(price).saturating_mul(inst.multiplier),
            time,
        };
        if self.cfg.keep_executions > 0 {
            if self.recent.len() >= self.cfg.keep_executions {
                self.recent.pop_front();
            }
            self.recent.push_back(exec.clone());
        }
        out.push(Event::Execution(exec));
        {
            let w = &mut self.working[idx];
            w.order.filled_quantity += qty;
            w.order.avg_fill_price = Some(price);
            w.order.status = OrderStatus::Filled;
            w.order.updated = time;
            out.push(Event::OrderUpdate(w.order.clone()));
        }

        // Children of this order go live; they start working on the next bar.
        for w in self.working.iter_mut() {
            if w.held
                && w.order.request.parent.as_deref() == Some(coid.as_str())
                && w.order.is_open()
            {
                w.held = false;
                w.session = None;
                w.order.status = OrderStatus::Submitted;
                w.order.updated = time;
                out.push(Event::OrderUpdate(w.order.clone()));
            }
        }
        // A child fill cancels its siblings.
        if let Some(parent) = parent {
            for j in 0..self.working.len() {
                if j != idx
                    && self.working[j].order.request.parent.as_deref() == Some(parent.as_str())
                {
                    self.cancel_at(j, time, "bracket sibling filled", out);
                }
            }
        }
        // An OCA fill cancels the rest of the group, with their children.
        if let Some(group) = oca {
            for j in 0..self.working.len() {
                if j != idx
                    && self.working[j].order.request.oca_group.as_deref() == Some(group.as_str())
                    && self.working[j].order.is_open()
                {
                    self.cancel_tree(j, time, "OCA group member filled", out);
                }
            }
        }
    }
}

/// Adverse slippage, clamped to the bar.
fn slip(price: Decimal, side: Side, ticks: u32, inst: &Instrument, bar: &Bar) -> Decimal {
    if ticks == 0 {
        return price;
    }
    // Saturating is exact here: the result is clamped to the bar anyway.
    let s = inst.tick.saturating_mul(Decimal::from(ticks));
    match side {
        Side::Buy => price.saturating_add(s).min(bar.high),
        Side::Sell => price.saturating_sub(s).max(bar.low),
    }
}

/// Limit check: fill at the open if it is through the limit, else at the
/// limit if the range reaches it.
fn limit_fill(side: Side, limit: Decimal, bar: &Bar) -> Option<(Decimal, bool)> {
    match side {
        Side::Buy if bar.open <= limit => Some((bar.open, true)),
        Side::Buy if bar.low <= limit => Some((limit, false)),
        Side::Sell if bar.open >= limit => Some((bar.open, true)),
        Side::Sell if bar.high >= limit => Some((limit, false)),
        _ => None,
    }
}

/// Stop trigger: the price it triggers at (open on a gap), if it does.
fn stop_trigger(side: Side, stop: Decimal, bar: &Bar) -> Option<(Decimal, bool)> {
    match side {
        Side::Buy if bar.open >= stop => Some((bar.open, true)),
        Side::Buy if bar.high >= stop => Some((stop, false)),
        Side::Sell if bar.open <= stop => Some((bar.open, true)),
        Side::Sell if bar.low <= stop => Some((stop, false)),
        _ => None,
    }
}

/// Price an order fills at on `bar`, whether that is at the open, and
/// whether it is a stop-type fill. Updates trigger state.
fn evaluate(
    w: &mut Working,
    bar: &Bar,
    inst: &Instrument,
    ticks: u32,
) -> Option<(Decimal, bool, bool)> {
    let req = &w.order.request;
    let side = req.side;
    match req.order_type {
        OrderType::Market => Some((slip(bar.open, side, ticks, inst, bar), true, false)),
        OrderType::MidPrice => match req.limit_price {
            Some(cap) => limit_fill(side, cap, bar).map(|(p, o)| (p, o, false)),
            None => Some((bar.open, true, false)),
        },
        OrderType::Limit => {
            let limit = req.limit_price?;
            limit_fill(side, limit, bar).map(|(p, o)| (p, o, false))
        }
        OrderType::Stop => {
            let stop = req.stop_price?;
            stop_trigger(side, stop, bar).map(|(p, o)| (slip(p, side, ticks, inst, bar), o, true))
        }
        OrderType::StopLimit => {
            let limit = req.limit_price?;
            if w.triggered {
                return limit_fill(side, limit, bar).map(|(p, o)| (p, o, false));
            }
            let stop = req.stop_price?;
            stop_limit(w, side, stop, limit, bar)
        }
        OrderType::Trail | OrderType::TrailLimit => {
            let trail = req.trail?;
            let stop = *w.trail_stop.get_or_insert_with(|| {
                req.stop_price.unwrap_or_else(|| match side {
                    Side::Sell => bar.open - trail.offset(bar.open),
                    Side::Buy => bar.open + trail.offset(bar.open),
                })
            });
            if req.order_type == OrderType::Trail {
                return stop_trigger(side, stop, bar)
                    .map(|(p, o)| (slip(p, side, ticks, inst, bar), o, true));
            }
            let limit = match side {
                Side::Sell => stop - w.trail_limit_offset,
                Side::Buy => stop + w.trail_limit_offset,
            };
            if w.triggered {
                return limit_fill(side, limit, bar).map(|(p, o)| (p, o, false));
            }
            stop_limit(w, side, stop, limit, bar)
        }
    }
}

fn stop_limit(
    w: &mut Working,
    side: Side,
    stop: Decimal,
    limit: Decimal,
    bar: &Bar,
) -> Option<(Decimal, bool, bool)> {
    let (p, at_open) = stop_trigger(side, stop, bar)?;
    w.triggered = true;
    let marketable = match side {
        Side::Buy => p <= limit,
        Side::Sell => p >= limit,
    };
    marketable.then_some((p, at_open, true))
}

/// Move a trailing stop after the bar: only ever in the trader's favour.
fn update_trail(w: &mut Working, bar: &Bar) {
    let req = &w.order.request;
    if !matches!(req.order_type, OrderType::Trail | OrderType::TrailLimit) || w.triggered {
        return;
    }
    let Some(trail) = req.trail else { return };
    match req.side {
        Side::Sell => {
            let ext = w.trail_extreme.map_or(bar.high, |e| e.max(bar.high));
            w.trail_extreme = Some(ext);
            let candidate = ext - trail.offset(ext);
            w.trail_stop = Some(w.trail_stop.map_or(candidate, |s| s.max(candidate)));
        }
        Side::Buy => {
            let ext = w.trail_extreme.map_or(bar.low, |e| e.min(bar.low));
            w.trail_extreme = Some(ext);
            let candidate = ext + trail.offset(ext);
            w.trail_stop = Some(w.trail_stop.map_or(candidate, |s| s.min(candidate)));
        }
    }
}
