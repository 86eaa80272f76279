//! Pre-trade risk: every intent passes here before any venue sees it.
//!
//! Limits are configured globally and per strategy (both apply). A rejected
//! intent never reaches the broker; the driver reports it to the strategy as
//! an order update with status `Inactive` and the reason, and logs it.
//!
//! Trading state: `Active` lets everything through that passes the limits;
//! `Reducing` lets only orders through that shrink a position; `Halted`
//! refuses every new order (cancels still pass). The daily loss limit moves
//! the engine to `Halted`; [`RiskEngine::kill`] does the same on demand and
//! the driver then cancels every working order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::Duration;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::contracts::Contracts;
use crate::hours::TradingHours;
use crate::model::{Conid, Contract, OrderRequest, SecType, Side, Timestamp};
use crate::portfolio::Portfolio;
use crate::strategy::Intent;
use crate::working_orders::WorkingOrders;

/// Limits that apply to one strategy, or to all of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskLimits {
    /// Largest absolute position per conid, counting working orders that
    /// would add to it.
    pub max_position: Option<Decimal>,
    /// Largest quantity of one order, in units (shares, contracts).
    pub max_order_quantity: Option<Decimal>,
    /// quantity * price * multiplier of one order (price: its limit or stop,
    /// else the last price).
    pub max_order_notional: Option<Decimal>,
    /// Most working orders a strategy may have, counting the new batch
    /// (a bracket counts each child). A global value applies to each
    /// strategy on its own.
    pub max_open_orders: Option<usize>,
    /// Orders per rolling minute.
    pub max_orders_per_minute: Option<u32>,
    /// Loss from the session's starting equity that halts trading (a
    /// positive amount).
    pub daily_loss_limit: Option<Decimal>,
    /// When set, only these conids may be traded.
    pub allowed_conids: Option<BTreeSet<Conid>>,
    /// When set, only these security types (`STK`, `FUT`, ...).
    pub allowed_sec_types: Option<BTreeSet<String>>,
    /// Largest distance of a limit or stop price from the last price, in
    /// percent.
    pub price_collar_pct: Option<Decimal>,
    /// Refuse sells that would open or grow a short position.
    pub no_short: bool,
}

/// The whole risk configuration (`[risk]` in the config file).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    /// Limits every strategy's intents must pass. The rate limit here
    /// counts all strategies together, and only the global
    /// `daily_loss_limit` is enforced.
    pub global: RiskLimits,
    /// By strategy index as the engine numbers them (registration order).
    pub per_strategy: BTreeMap<usize, RiskLimits>,
}

/// What may trade right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TradingState {
    /// Normal trading: every order that passes the limits goes out.
    Active,
    /// Only orders that shrink a position.
    Reducing,
    /// No new orders; cancels only.
    Halted,
}

/// Why an intent was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RiskReject {
    /// Trading is halted (kill switch, daily loss limit, shutdown); the
    /// text is the halt's reason. Modifies are refused too, cancels pass.
    #[error("trading is halted: {0}")]
    Halted(String),
    /// Reducing-only, and an entry of the batch would open, grow or flip
    /// the position in this conid.
    #[error("trading is reducing-only and this order would not reduce the position in {0}")]
    NotReducing(Conid),
    /// The conid is not in `allowed_conids`.
    #[error("conid {0} is not in the allowed list")]
    ConidNotAllowed(Conid),
    /// The security type (gateway code, e.g. `FUT`) is not in
    /// `allowed_sec_types`.
    #[error("security type {0} is not allowed")]
    SecTypeNotAllowed(String),
    /// One order is larger than `max_order_quantity`.
    #[error("order quantity {quantity} exceeds the limit {limit}")]
    OrderQuantity {
        /// The order's quantity.
        quantity: Decimal,
        /// The configured maximum.
        limit: Decimal,
    },
    /// One order is worth more than `max_order_notional`.
    #[error("order notional {notional} exceeds the limit {limit}")]
    OrderNotional {
        /// quantity * price * multiplier, in the contract currency.
        notional: Decimal,
        /// The configured maximum.
        limit: Decimal,
    },
    /// The position could grow beyond `max_position` if this entry and
    /// the working orders on the same side all filled.
    #[error("position in {conid} could reach {position}, beyond the limit {limit}")]
    Position {
        /// The contract.
        conid: Conid,
        /// The signed worst-case position.
        position: Decimal,
        /// The configured maximum (absolute).
        limit: Decimal,
    },
    /// The strategy would have more working orders than
    /// `max_open_orders`.
    #[error("{open} open orders plus {new} new exceed the limit {limit}")]
    OpenOrders {
        /// The strategy's working orders now.
        open: usize,
        /// Orders in the refused batch.
        new: usize,
        /// The configured maximum.
        limit: usize,
    },
    /// `max_orders_per_minute` (the value given) was reached in the last
    /// rolling minute.
    #[error("order rate limit of {0} per minute reached")]
    Rate(u32),
    /// A limit or stop price is further from the last price than
    /// `price_collar_pct`: usually a fat finger or a stale price.
    #[error("price {price} is more than {pct}% away from the last price {last}")]
    Collar {
        /// The offending limit or stop price.
        price: Decimal,
        /// The last known price of the contract.
        last: Decimal,
        /// The configured collar, in percent.
        pct: Decimal,
    },
    /// `no_short` is set and the sell is larger than the long position.
    #[error("short selling {0} is not allowed")]
    Short(Conid),
    /// A notional or collar limit needs a price and the contract has not
    /// been priced yet (no bar, quote or fill); refused rather than waved
    /// through.
    #[error("no price known for {0} to check the order's notional or collar")]
    NoPrice(Conid),
    /// The contract's schedule says the market is closed (regular hours,
    /// or all sessions for `outside_rth` orders).
    #[error("{conid} is outside its trading hours at {at}")]
    MarketClosed {
        /// The contract.
        conid: Conid,
        /// The venue's time of the check, UTC (engine time unless the
        /// venue keeps its own clock, see [`RiskEngine::set_venue_time`]).
        at: Timestamp,
    },
    /// A sell of a ForecastEx contract: the venue only takes buys, so an
    /// exit buys the opposite contract instead. Checked whatever the
    /// limits.
    #[error("ForecastEx contracts cannot be sold ({0}); exit by buying the opposite contract")]
    ForecastExSell(Conid),
    /// Trading is paused while the venue cannot take orders (the
    /// brokerage session is being re-established); it resumes by itself.
    /// Cancels still go.
    #[error("trading paused: {0}")]
    Paused(String),
}

impl RiskReject {
    /// Every kind's label, in the enum's order: bounded labels for metrics
    /// (the messages carry quantities and prices, the kinds do not).
    pub const KINDS: [&'static str; 15] = [
        "halted",
        "not_reducing",
        "conid_not_allowed",
        "sec_type_not_allowed",
        "order_quantity",
        "order_notional",
        "position",
        "open_orders",
        "rate",
        "collar",
        "short",
        "no_price",
        "market_closed",
        "forecastex_sell",
        "paused",
    ];

    /// The refusal's position in [`RiskReject::KINDS`].
    pub fn kind_index(&self) -> usize {
        match self {
            RiskReject::Halted(_) => 0,
            RiskReject::NotReducing(_) => 1,
            RiskReject::ConidNotAllowed(_) => 2,
            RiskReject::SecTypeNotAllowed(_) => 3,
            RiskReject::OrderQuantity { .. } => 4,
            RiskReject::OrderNotional { .. } => 5,
            RiskReject::Position { .. } => 6,
            RiskReject::OpenOrders { .. } => 7,
            RiskReject::Rate(_) => 8,
            RiskReject::Collar { .. } => 9,
            RiskReject::Short(_) => 10,
            RiskReject::NoPrice(_) => 11,
            RiskReject::MarketClosed { .. } => 12,
            RiskReject::ForecastExSell(_) => 13,
            RiskReject::Paused(_) => 14,
        }
    }

    /// The refusal's kind (`position`, `rate`, ...).
    pub fn kind(&self) -> &'static str {
        Self::KINDS[self.kind_index()]
    }
}

/// What the risk engine needs to know about the account and instruments.
pub struct RiskView<'a> {
    /// Engine time: the rate limit's window and the trading hours use it.
    pub now: Timestamp,
    /// Positions (account-wide) and last prices.
    pub portfolio: &'a Portfolio,
    /// Working orders of every strategy, for open-order and position
    /// limits.
    pub orders: &'a WorkingOrders,
    /// What the contracts are (security type, multiplier, exchange).
    pub contracts: &'a Contracts,
}

impl std::fmt::Debug for RiskView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RiskView")
            .field("now", &self.now)
            .field("working_orders", &self.orders.len())
            .finish_non_exhaustive()
    }
}

/// Pre-trade checks and the trading state.
#[derive(Debug, Clone)]
pub struct RiskEngine {
    cfg: RiskConfig,
    /// No limit configured: only the trading state and hours are checked,
    /// without touching the per-order limit code (the backtest default).
    unlimited: bool,
    state: TradingState,
    halt_reason: Option<String>,
    /// Submission times per strategy, for the rate limit (bounded by it).
    recent: BTreeMap<usize, VecDeque<Timestamp>>,
    recent_all: VecDeque<Timestamp>,
    day_start_equity: Option<Decimal>,
    /// Trading hours by conid (from `/trsrv/secdef/schedule`); contracts
    /// without an entry are not checked.
    hours: BTreeMap<Conid, TradingHours>,
    /// The venue's clock, when it is not engine time (a gateway replaying
    /// history stamps its quotes in replay time): trading hours are the
    /// venue's, so they are checked on its clock. `None`: engine time.
    venue_time: Option<Timestamp>,
    /// Why new orders wait, while the venue cannot take them.
    paused: Option<String>,
    /// Refusals by kind ([`RiskReject::KINDS`]) since
    /// [`RiskEngine::take_refusals`] last emptied it: what a live run
    /// counts in its metrics. Counters, so a backtest that never asks pays
    /// one increment per refusal and keeps nothing.
    refusals: [u64; RiskReject::KINDS.len()],
}

impl RiskEngine {
    /// An `Active` engine with these limits. The default (empty) config
    /// checks only the trading state, hours and venue rules.
    pub fn new(cfg: RiskConfig) -> Self {
        let unlimited = cfg == RiskConfig::default();
        RiskEngine {
            unlimited,
            cfg,
            state: TradingState::Active,
            halt_reason: None,
            recent: BTreeMap::new(),
            recent_all: VecDeque::new(),
            day_start_equity: None,
            hours: BTreeMap::new(),
            venue_time: None,
            paused: None,
            refusals: [0; RiskReject::KINDS.len()],
        }
    }

    /// How many refusals of each kind ([`RiskReject::KINDS`], same order)
    /// since the last call.
    pub fn take_refusals(&mut self) -> [u64; RiskReject::KINDS.len()] {
        std::mem::take(&mut self.refusals)
    }

    /// The trading state now; `Active` until halted or set.
    pub fn state(&self) -> TradingState {
        self.state
    }

    /// Set the trading state by hand (operator). Leaving `Halted` clears
    /// the halt's reason; the daily loss limit can halt again.
    pub fn set_state(&mut self, state: TradingState) {
        self.state = state;
        if state != TradingState::Halted {
            self.halt_reason = None;
        }
    }

    /// Kill switch: halt. The caller cancels every working order.
    pub fn kill(&mut self, reason: impl Into<String>) {
        let reason = reason.into();
        tracing::error!(%reason, "kill switch: trading halted");
        self.halt_quietly(reason);
    }

    /// Halt as part of an orderly stop: the same state as [`Self::kill`],
    /// logged as routine rather than as an alarm.
    pub fn halt_quietly(&mut self, reason: impl Into<String>) {
        self.state = TradingState::Halted;
        self.halt_reason = Some(reason.into());
    }

    /// Refuse orders in `conid` outside these hours (regular hours, or all
    /// trading hours for `outside_rth` orders).
    pub fn set_trading_hours(&mut self, conid: Conid, hours: TradingHours) {
        self.hours.insert(conid, hours);
    }

    /// Refuse new orders and modifications (not cancels) until
    /// [`RiskEngine::resume`]: the venue cannot take them now (a live
    /// engine pauses while the brokerage session is re-established). Not
    /// a halt: nothing is cancelled, and the trading state is unchanged.
    pub fn pause(&mut self, reason: impl Into<String>) {
        self.paused = Some(reason.into());
    }

    /// Take orders again after [`RiskEngine::pause`].
    pub fn resume(&mut self) {
        self.paused = None;
    }

    /// The venue's time now, for the trading-hours check (`None`: engine
    /// time). A live engine sets it before each batch of callbacks.
    pub fn set_venue_time(&mut self, at: Option<Timestamp>) {
        self.venue_time = at;
    }

    /// Start of a session: the daily loss limit counts from this equity.
    pub fn start_day(&mut self, equity: Decimal) {
        self.day_start_equity = Some(equity);
    }

    /// Check the daily loss limit against the current equity. Returns true
    /// when this call halted trading (the caller then cancels all orders).
    pub fn on_equity(&mut self, equity: Decimal) -> bool {
        let Some(limit) = self.cfg.global.daily_loss_limit else {
            return false;
        };
        let start = *self.day_start_equity.get_or_insert(equity);
        if self.state != TradingState::Halted && start - equity >= limit {
            self.kill(format!(
                "daily loss limit {limit} reached (equity {equity}, session start {start})"
            ));
            return true;
        }
        false
    }

    fn limits(&self, strategy: usize) -> impl Iterator<Item = &RiskLimits> {
        std::iter::once(&self.cfg.global).chain(self.cfg.per_strategy.get(&strategy))
    }

    /// Approve or refuse one intent of `strategy`. An approved placement is
    /// counted against the rate limit.
    pub fn check(
        &mut self,
        strategy: usize,
        intent: &Intent,
        view: &RiskView<'_>,
    ) -> Result<(), RiskReject> {
        if let (Some(why), false) = (&self.paused, matches!(intent, Intent::Cancel(_))) {
            return Err(RiskReject::Paused(why.clone()));
        }
        let batch = match intent {
            Intent::Cancel(_) => return Ok(()),
            Intent::Modify { .. } if self.state == TradingState::Halted => {
                return Err(RiskReject::Halted(self.reason()))
            }
            Intent::Modify { .. } => return Ok(()),
            Intent::Place(batch) => batch,
        };
        if self.state == TradingState::Halted {
            return Err(RiskReject::Halted(self.reason()));
        }
        // A venue rule, whatever the limits: ForecastEx contracts are never
        // sold.
        for o in batch.iter().filter(|o| o.side == Side::Sell) {
            if view.contracts.get(o.conid).is_some_and(is_forecastex) {
                return Err(RiskReject::ForecastExSell(o.conid));
            }
        }
        if self.unlimited && self.state == TradingState::Active && self.hours.is_empty() {
            return Ok(());
        }
        // Entries are the orders without a parent; exits cannot add to a
        // position beyond what their entry did. OCA members are
        // alternatives: at most one of them fills.
        let entries: Vec<&OrderRequest> = batch.iter().filter(|o| o.parent.is_none()).collect();
        if self.state == TradingState::Reducing {
            for e in &entries {
                if !reduces(view.portfolio.quantity(e.conid), e.side, e.quantity) {
                    return Err(RiskReject::NotReducing(e.conid));
                }
            }
        }
        let venue_now = self.venue_time.unwrap_or(view.now);
        for o in batch {
            if let Some(h) = self.hours.get(&o.conid) {
                if !h.is_open(venue_now, o.outside_rth) {
                    return Err(RiskReject::MarketClosed {
                        conid: o.conid,
                        at: venue_now,
                    });
                }
            }
        }
        for limits in self.limits(strategy) {
            check_limits(limits, strategy, batch, &entries, view)?;
        }
        self.check_rate(strategy, batch.len(), view.now)?;
        Ok(())
    }

    /// Check `intent` against the engine's state. `Ok` passes it on; a
    /// refusal is logged and comes back as what the strategy must hear:
    /// each order of a refused placement as an `Inactive` update with the
    /// reason (a refused cancel or modify has no order to report).
    /// Backtest and live both route intents through here.
    #[allow(clippy::result_large_err)]
    pub fn screen(
        &mut self,
        strategy: usize,
        intent: Intent,
        now: Timestamp,
        portfolio: &Portfolio,
        orders: &WorkingOrders,
        contracts: &Contracts,
    ) -> Result<Intent, Vec<crate::model::Order>> {
        let view = RiskView {
            now,
            portfolio,
            orders,
            contracts,
        };
        match self.check(strategy, &intent, &view) {
            Ok(()) => Ok(intent),
            Err(reject) => {
                tracing::info!(strategy, %reject, "intent rejected by risk");
                let n = &mut self.refusals[reject.kind_index()];
                *n = n.saturating_add(1);
                let reason = format!("risk: {reject}");
                Err(match intent {
                    Intent::Place(batch) => batch
                        .into_iter()
                        .map(|req| {
                            crate::model::Order::rejected(req, strategy, now, reason.clone())
                        })
                        .collect(),
                    _ => Vec::new(),
                })
            }
        }
    }

    fn reason(&self) -> String {
        self.halt_reason
            .clone()
            .unwrap_or_else(|| "halted by the operator".to_owned())
    }

    fn check_rate(&mut self, strategy: usize, n: usize, now: Timestamp) -> Result<(), RiskReject> {
        let window = now - Duration::minutes(1);
        let global = self.cfg.global.max_orders_per_minute;
        let local = self
            .cfg
            .per_strategy
            .get(&strategy)
            .and_then(|l| l.max_orders_per_minute);
        let q = self.recent.entry(strategy).or_default();
        while q.front().is_some_and(|t| *t <= window) {
            q.pop_front();
        }
        while self.recent_all.front().is_some_and(|t| *t <= window) {
            self.recent_all.pop_front();
        }
        if let Some(l) = local {
            if q.len() + n > l as usize {
                return Err(RiskReject::Rate(l));
            }
        }
        if let Some(l) = global {
            if self.recent_all.len() + n > l as usize {
                return Err(RiskReject::Rate(l));
            }
        }
        if local.is_some() {
            q.extend(std::iter::repeat_n(now, n));
        }
        if global.is_some() {
            self.recent_all.extend(std::iter::repeat_n(now, n));
        }
        Ok(())
    }
}

/// True when a `side` order of `qty` moves `position` toward zero without
/// crossing it.
fn reduces(position: Decimal, side: Side, qty: Decimal) -> bool {
    match side {
        Side::Sell => position > Decimal::ZERO && qty <= position,
        Side::Buy => position < Decimal::ZERO && qty <= -position,
    }
}

fn check_limits(
    l: &RiskLimits,
    strategy: usize,
    batch: &[OrderRequest],
    entries: &[&OrderRequest],
    view: &RiskView<'_>,
) -> Result<(), RiskReject> {
    if let Some(max) = l.max_open_orders {
        let open = view
            .orders
            .open()
            .filter(|o| o.strategy == strategy)
            .count();
        if open + batch.len() > max {
            return Err(RiskReject::OpenOrders {
                open,
                new: batch.len(),
                limit: max,
            });
        }
    }
    for o in batch {
        if let Some(allowed) = &l.allowed_conids {
            if !allowed.contains(&o.conid) {
                return Err(RiskReject::ConidNotAllowed(o.conid));
            }
        }
        let contract = view.contracts.get(o.conid);
        let (sec_type, multiplier) = contract.map_or((&SecType::Stock, Decimal::ONE), |c| {
            (&c.sec_type, c.multiplier)
        });

        if let Some(allowed) = &l.allowed_sec_types {
            let name = sec_type_name(sec_type);
            if !allowed.contains(&name) {
                return Err(RiskReject::SecTypeNotAllowed(name));
            }
        }
        if let Some(max) = l.max_order_quantity {
            if o.quantity > max {
                return Err(RiskReject::OrderQuantity {
                    quantity: o.quantity,
                    limit: max,
                });
            }
        }
        let last = view.portfolio.mark_price(o.conid);
        let price = o.limit_price.or(o.stop_price).or(last);
        if let Some(max) = l.max_order_notional {
            let p = price.ok_or(RiskReject::NoPrice(o.conid))?;
            let notional = o.quantity * p * multiplier;
            if notional > max {
                return Err(RiskReject::OrderNotional {
                    notional,
                    limit: max,
                });
            }
        }
        if let Some(pct) = l.price_collar_pct {
            for p in [o.limit_price, o.stop_price].into_iter().flatten() {
                let last = last.ok_or(RiskReject::NoPrice(o.conid))?;
                if last > Decimal::ZERO && (p - last).abs() * Decimal::ONE_HUNDRED > pct * last {
                    return Err(RiskReject::Collar {
                        price: p,
                        last,
                        pct,
                    });
                }
            }
        }
    }
    // Position: current, plus working orders of the same direction, plus the
    // largest entry of this batch per direction (OCA alternatives, or a
    // single order).
    for e in entries {
        let pos = view.portfolio.quantity(e.conid);
        if l.no_short && e.side == Side::Sell && e.quantity > pos.max(Decimal::ZERO) {
            return Err(RiskReject::Short(e.conid));
        }
        if let Some(max) = l.max_position {
            let pending: Decimal = view
                .orders
                .open()
                .filter(|o| o.request.conid == e.conid && o.request.side == e.side)
                .filter(|o| o.request.parent.is_none())
                .map(|o| o.remaining())
                .sum();
            let worst = pos + e.side.sign() * (pending + e.quantity);
            if worst.abs() > max && !reduces(pos, e.side, e.quantity) {
                return Err(RiskReject::Position {
                    conid: e.conid,
                    position: worst,
                    limit: max,
                });
            }
        }
    }
    Ok(())
}

/// ForecastEx event contracts (exchange `FORECASTX`) can only be bought;
/// CME event contracts trade both ways.
fn is_forecastex(c: &Contract) -> bool {
    c.sec_type == SecType::EventContract && c.exchange.eq_ignore_ascii_case("FORECASTX")
}

fn sec_type_name(t: &SecType) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
