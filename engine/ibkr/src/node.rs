//! A live trading node: everything between "here are my strategies and a
//! gateway" and a running bot, so a bot is a few lines of any crate's
//! `main`, and `ibflow run` is one of them.
//!
//! [`LiveNode::connect`] does, in order:
//! 1. picks the account (the configured one, else the gateway's first);
//! 2. asks `/trsrv/secdef` what each contract is (security type,
//!    exchange, multiplier, tick), and `/trsrv/event/contracts` for the
//!    YES/NO pairs of ForecastEx markets among them;
//! 3. seeds the portfolio from the account: cash from
//!    `/portfolio/{acct}/summary` (`totalcashvalue`), positions at their
//!    average cost marked at the market price from
//!    `/portfolio/{acct}/positions`. Strategies see what the account holds
//!    from their first callback, not an invented balance;
//! 4. opens the websocket (`sor`, `str`, `smd` of each contract) and waits
//!    until it is up, so no update is missed;
//! 5. starts the session keeper (`/tickle`, re-init after resets);
//! 6. builds the executor (cOIDs `{bot}.{run}.{strategy}.{engine}`: the
//!    bot's id, random bits from the OS, see [`cpapi::order_ticket`]; the
//!    reply policy)
//!    and the [`LiveEngine`] with bars of the configured period, trading
//!    hours from `/trsrv/secdef/schedule` when asked.
//!
//! Then [`LiveNode::with_journal`] (optional) reconciles a journal with the
//! account, [`LiveNode::run`] trades until told to stop, and
//! [`LiveNode::finish`] cancels working orders (unless asked not to),
//! closes the connections and says what happened.
//!
//! With a lasting bot id ([`NodeConfig::bot_id`], the store's), the node
//! also re-attaches the working orders an earlier run of this bot placed
//! to the strategies that placed them (the strategy index is part of the
//! cOID): a restarted bot does not place them again, and their fills reach
//! their owner. It does so in `with_journal`, before reconciling, where
//! the journal names the bracket children the gateway lists without a
//! cOID (else at the start of `run`, parents only). Orders of other bots
//! and of TWS are left alone, and a journal's reconciliation reports them.
//!
//! While the brokerage session is lost (the session keeper's report; it
//! checks every minute and at once when the websocket closes or says so)
//! trading is paused: new orders are refused with the reason, cancels go.
//! Once the session is back and the catch-up below has run, it resumes.
//!
//! Exactly once across gaps: the executions the venue lists at start are
//! in the seeded portfolio and marked delivered; after every websocket
//! reconnect and every re-established session, the trades and live orders
//! are fetched and what the feed missed is delivered through the same gate
//! as `str` (one execution id, one delivery), before trading resumes.
//!
//! Assumption (spec silent on order): `/portfolio/accounts` is called
//! before the other `/portfolio` endpoints, as IBKR's documentation asks
//! of a new session.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use cpapi::order_ticket::TicketBuilder;
use engine::contracts::Contracts;
use engine::event::{Event, SessionStatus};
use engine::forecastex::{NettingError, Pairing, StrikeSide};
use engine::journal::{Discrepancy, Journal, JournalError};
use engine::model::{Conid, Contract, Position};
use engine::portfolio::{AccountError, Portfolio};
use engine::risk::{RiskConfig, TradingState};
use engine::strategy::Strategy;

use crate::broker::IbkrBroker;
use crate::executor::LiveExecutor;
use crate::live_engine::{LiveEngine, LiveStats};
use crate::reply::ReplyPolicy;
use crate::session;
use crate::ws::{self, Subscription, WsConfig, WsHandle, WsMessage};
use crate::{ClientConfig, IbkrClient, IbkrError};

/// The longest start-up waits for warm-up history before trading cold.
const WARMUP_WITHIN: Duration = Duration::from_secs(60);

/// How to build a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The gateway (or `api.ibkr.com`) and how to reach it.
    pub client: ClientConfig,
    /// Account to trade; `None`: the gateway's first.
    pub account: Option<String>,
    /// Contracts to subscribe to and trade.
    pub conids: Vec<Conid>,
    /// Length of the bars built from quotes for `on_bar` strategies.
    pub bar_period: Duration,
    /// Which order prompts to confirm.
    pub reply: ReplyPolicy,
    /// Pre-trade risk limits.
    pub risk: RiskConfig,
    /// Refuse orders outside each contract's trading hours
    /// (`/trsrv/secdef/schedule`).
    pub trading_hours: bool,
    /// `extOperator` of futures orders (CME Rule 536-B).
    pub ext_operator: String,
    /// How long to wait for the websocket before giving up.
    pub connect_timeout: Duration,
    /// The bot's identity in every cOID (1 to 8 of `[0-9a-z]`): stable
    /// across restarts so a restarted bot knows its earlier orders (the
    /// store keeps one: `Store::bot_id`). `None`: a random
    /// one for this run only.
    pub bot_id: Option<String>,
    /// How often [`LiveNode::with_journal`] tries to reconcile before it
    /// gives up (the node then never trades): default 6.
    pub reconcile_attempts: u32,
    /// The wait before the second attempt; it doubles after each failure,
    /// up to 30 s. Default 2 s (2 + 4 + 8 + 16 + 30 s over 6 attempts).
    pub reconcile_backoff: Duration,
}

impl NodeConfig {
    /// Defaults for `client`: one-minute bars, no prompts confirmed, no
    /// risk limits, no trading-hours check, 30 s to connect.
    pub fn new(client: ClientConfig) -> Self {
        NodeConfig {
            client,
            account: None,
            conids: Vec::new(),
            bar_period: Duration::from_secs(60),
            reply: ReplyPolicy::default(),
            risk: RiskConfig::default(),
            trading_hours: false,
            ext_operator: format!("ibflow-{}", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(30),
            bot_id: None,
            reconcile_attempts: 6,
            reconcile_backoff: Duration::from_secs(2),
        }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A request to the gateway failed; `what` names the request.
    #[error("{what}: {source}")]
    Gateway {
        /// The request, as `GET /path (purpose)`.
        what: &'static str,
        /// What went wrong.
        source: IbkrError,
    },
    /// The gateway lists no brokerage account.
    #[error("the gateway lists no account")]
    NoAccount,
    /// Nothing to trade.
    #[error("no contracts to trade: name at least one conid")]
    NoContracts,
    /// `/trsrv/secdef` does not know a contract.
    #[error("the gateway knows no contract {0}")]
    UnknownContract(Conid),
    /// The account summary has no cash value.
    #[error("/portfolio/{0}/summary has no totalcashvalue")]
    NoCash(String),
    /// The account's report cannot be accounted for.
    #[error("account {account}: {source}")]
    Account {
        /// The account.
        account: String,
        /// What is wrong with its report.
        source: AccountError,
    },
    /// ForecastEx contracts that cannot be paired.
    #[error("ForecastEx contracts: {0}")]
    Pairing(#[from] NettingError),
    /// The websocket did not come up.
    #[error("the websocket did not connect within {0:?}")]
    WebsocketTimeout(Duration),
    /// Reconciling the journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Reconciliation failed every time it was tried (the venue's orders,
    /// executions or positions could not be fetched): the node does not
    /// trade on an account it could not compare with its journal.
    #[error("reconciliation failed {attempts} time(s), not trading: {last}")]
    NotReconciled {
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        last: JournalError,
    },
    /// The configured bot id cannot be part of a cOID.
    #[error(transparent)]
    BotId(#[from] cpapi::order_ticket::BadBotId),
}

/// The cOID prefix of this run: the bot's id (or a random one) and 41 bits
/// from the OS, so two bots started in the same second, on one account,
/// never send the same cOID.
pub fn run_coid_prefix(bot_id: Option<&str>) -> Result<String, NodeError> {
    let bot = match bot_id {
        Some(b) => b.to_owned(),
        None => cpapi::order_ticket::base36(rand::random::<u64>() % 36u64.pow(6), 6),
    };
    Ok(TicketBuilder::unique_prefix(&bot, rand::random::<u64>())?)
}

fn gateway(what: &'static str) -> impl FnOnce(IbkrError) -> NodeError {
    move |source| NodeError::Gateway { what, source }
}

/// Stops trading from anywhere (a signal handler, an operator endpoint):
/// halts and cancels every working order; the node keeps running and
/// refuses new orders.
#[derive(Debug, Clone)]
pub struct KillSwitch(mpsc::UnboundedSender<String>);

impl KillSwitch {
    /// Pull the switch, with the reason logged and reported.
    pub fn kill(&self, reason: impl Into<String>) {
        let _ = self.0.send(reason.into());
    }
}

/// What a finished run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeSummary {
    /// Counters.
    pub stats: LiveStats,
    /// Equity at the end, as the engine accounts it.
    pub equity: Decimal,
    /// Realized PnL of the run.
    pub realized_pnl: Decimal,
    /// Open positions at the end.
    pub positions: Vec<Position>,
    /// Active, reducing or halted.
    pub trading_state: TradingState,
}

/// A connected live bot.
pub struct LiveNode<S: Strategy = Box<dyn Strategy>> {
    engine: LiveEngine<S, IbkrBroker>,
    rx: mpsc::Receiver<WsMessage>,
    session_rx: mpsc::Receiver<SessionStatus>,
    /// Wakes the session keeper for a check now (see
    /// [`session::spawn_keeper`]).
    keeper_nudge: Arc<tokio::sync::Notify>,
    /// An earlier run's working orders are still to be re-attached.
    adopt_pending: bool,
    keeper: JoinHandle<()>,
    ws: WsHandle,
    kill_tx: mpsc::UnboundedSender<String>,
    kill_rx: mpsc::UnboundedReceiver<String>,
    account: String,
    contracts: Contracts,
    event_records: Vec<StrikeSide>,
    started: bool,
    reconcile_attempts: u32,
    reconcile_backoff: Duration,
    /// For answering `ntf` server prompts.
    client: IbkrClient,
    reply: crate::reply::ReplyPolicy,
    /// The executions the venue reported at start are marked delivered
    /// (by reconciliation, or by [`LiveNode::run`] before it starts).
    primed: bool,
    /// When priming failed: the next attempt, and the wait after it.
    prime_retry: Option<(tokio::time::Instant, Duration)>,
    /// The websocket is down (or was, and the catch-up has not run yet):
    /// the timer is held, so no strategy acts on a stale picture.
    feed_down: bool,
    /// The last session status said authenticated.
    authenticated: bool,
    /// The contracts subscribed, and the live bar period: what warm-up
    /// history is fetched for.
    conids: Vec<Conid>,
    bar_period: Duration,
}

impl<S: Strategy> std::fmt::Debug for LiveNode<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveNode")
            .field("account", &self.account)
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl<S: Strategy> LiveNode<S> {
    /// Connect to the gateway and assemble the node (see the module doc).
    /// Strategies are not called until [`LiveNode::run`].
    pub async fn connect(cfg: NodeConfig, strategies: Vec<S>) -> Result<Self, NodeError> {
        let client = IbkrClient::new(cfg.client.clone()).map_err(gateway("building the client"))?;
        Self::connect_with(client, cfg, strategies).await
    }

    /// [`LiveNode::connect`] through a client already made from
    /// `cfg.client` (one that asked the gateway something first, as
    /// [`crate::startup::wait_until_ready`] does): one client, one pacer,
    /// so start-up's burst of requests stays within the gateway's global
    /// limit of 10 a second. Two clients each keep to it alone, and
    /// together they can break it into the 15-minute penalty box.
    pub async fn connect_with(
        client: IbkrClient,
        cfg: NodeConfig,
        strategies: Vec<S>,
    ) -> Result<Self, NodeError> {
        if cfg.conids.is_empty() {
            return Err(NodeError::NoContracts);
        }
        let account = match &cfg.account {
            Some(a) => a.clone(),
            None => client
                .iserver_accounts()
                .await
                .map_err(gateway("GET /iserver/accounts (which account)"))?
                .accounts
                .into_iter()
                .next()
                .ok_or(NodeError::NoAccount)?,
        };
        let (resolved, event_records) = resolve_contracts(&client, &cfg.conids).await?;
        let pairing = Pairing::from_records(&event_records)?;
        // The one table risk, the broker and the portfolio read.
        let mut contracts = Contracts::new(resolved);
        contracts.mark_events(&pairing);
        let portfolio = seed_portfolio(&client, &account, &contracts).await?;

        let exec = LiveExecutor::new(
            client.clone(),
            TicketBuilder {
                account: account.clone(),
                coid_prefix: run_coid_prefix(cfg.bot_id.as_deref())?,
                ext_operator: cfg.ext_operator.clone(),
            },
            cfg.reply.clone(),
        );
        let broker = IbkrBroker::new(exec, account.clone()).with_contracts(contracts.clone());
        let (ws, mut rx) = ws::spawn(client.clone(), WsConfig::default(), 1024);
        ws.subscribe(Subscription::Orders);
        ws.subscribe(Subscription::Trades {
            realtime_only: true,
            days: None,
        });
        for c in contracts.iter() {
            ws.subscribe(Subscription::quote(c.conid));
        }
        let connected = tokio::time::timeout(cfg.connect_timeout, async {
            while let Some(m) = rx.recv().await {
                if matches!(m, WsMessage::Connected { .. }) {
                    return true;
                }
            }
            false
        });
        if !connected.await.unwrap_or(false) {
            ws.shutdown().await;
            return Err(NodeError::WebsocketTimeout(cfg.connect_timeout));
        }

        let (session_tx, session_rx) = mpsc::channel(16);
        let keeper_nudge = Arc::new(tokio::sync::Notify::new());
        let keeper = session::spawn_keeper(
            client.clone(),
            session::SessionConfig::default(),
            session_tx,
            keeper_nudge.clone(),
        );
        let mut engine =
            LiveEngine::new(strategies, portfolio, cfg.risk, broker, contracts.clone())
                .with_bars(cfg.bar_period)
                .with_telemetry(client.config().telemetry.clone());
        if !pairing.is_empty() {
            tracing::info!(
                strikes = pairing.pairs().len(),
                "ForecastEx strikes known to strategies"
            );
            engine.set_event_pairing(pairing);
        }
        if cfg.trading_hours {
            load_trading_hours(&client, &contracts, &mut engine).await;
        }
        let (kill_tx, kill_rx) = mpsc::unbounded_channel();
        Ok(LiveNode {
            engine,
            rx,
            session_rx,
            keeper,
            keeper_nudge,
            ws,
            kill_tx,
            kill_rx,
            account,
            contracts,
            event_records,
            started: false,
            reconcile_attempts: cfg.reconcile_attempts,
            reconcile_backoff: cfg.reconcile_backoff,
            client,
            reply: cfg.reply,
            primed: false,
            prime_retry: None,
            feed_down: false,
            authenticated: true,
            conids: cfg.conids.clone(),
            bar_period: cfg.bar_period,
            adopt_pending: cfg.bot_id.is_some(),
        })
    }

    /// A bot with a lasting identity may find its earlier run's orders
    /// working: they go back to their strategies. Once, before
    /// reconciliation when there is a journal (it names the bracket
    /// children), else before the start. Not fatal: reconciliation, which
    /// retries, reports what could not be re-attached.
    async fn adopt_earlier_orders(&mut self) {
        if !std::mem::take(&mut self.adopt_pending) {
            return;
        }
        match self.engine.adopt_earlier_orders().await {
            Ok(adopted) => tracing::info!(
                adopted,
                "earlier runs' working orders re-attached to their strategies"
            ),
            Err(e) => tracing::error!(
                error = %e,
                "earlier runs' working orders could not be listed: not re-attached"
            ),
        }
    }

    /// Record orders and executions in `journal`, and reconcile it with the
    /// account now: the differences found (also logged, and delivered to
    /// strategies when they start). A reconciliation that cannot fetch what
    /// it compares is retried with backoff ([`NodeConfig::reconcile_attempts`],
    /// [`NodeConfig::reconcile_backoff`]) and, failing every time, is
    /// [`NodeError::NotReconciled`]: strategies never start on an account
    /// the journal was not compared with.
    pub async fn with_journal(
        mut self,
        journal: Box<dyn Journal>,
    ) -> Result<(Self, Vec<Discrepancy>), NodeError> {
        self.engine = self.engine.with_journal(journal);
        self.adopt_earlier_orders().await;
        let attempts = self.reconcile_attempts.max(1);
        let mut wait = self.reconcile_backoff;
        let mut attempt = 1;
        loop {
            match self.engine.reconcile().await {
                Ok(found) => {
                    self.primed = true;
                    return Ok((self, found));
                }
                Err(last) if attempt >= attempts => {
                    tracing::error!(attempts, error = %last, "reconciliation failed: not trading");
                    return Err(NodeError::NotReconciled { attempts, last });
                }
                Err(e) => {
                    tracing::error!(
                        attempt,
                        of = attempts,
                        error = %e,
                        retry_in = ?wait,
                        "reconciliation failed; not trading until it succeeds"
                    );
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2).min(Duration::from_secs(30));
                    attempt += 1;
                }
            }
        }
    }

    /// What the broker says of one order by its id, whatever its age
    /// (`/iserver/account/order/status/{id}`): status, filled quantity and
    /// average price. Reconciliation asks it about orders the journal holds
    /// as working that the live list no longer shows (finished on an
    /// earlier day, while the bot was down).
    pub async fn order_status(
        &self,
        broker_order_id: &str,
    ) -> Result<(engine::model::OrderStatus, Decimal, Option<Decimal>), engine::venue::VenueError>
    {
        self.engine
            .venue()
            .fetch_order_status(broker_order_id)
            .await
    }

    /// The account traded.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The contracts traded, as the gateway describes them.
    pub fn contracts(&self) -> &Contracts {
        &self.contracts
    }

    /// The ForecastEx contract records among them (for a store to net
    /// positions by strike).
    pub fn event_records(&self) -> &[StrikeSide] {
        &self.event_records
    }

    /// The engine (strategies, portfolio, stats).
    pub fn engine(&self) -> &LiveEngine<S, IbkrBroker> {
        &self.engine
    }

    /// A handle that halts trading and cancels every working order.
    pub fn kill_switch(&self) -> KillSwitch {
        KillSwitch(self.kill_tx.clone())
    }

    /// Start the strategies (once) and trade until `stop` resolves or the
    /// websocket ends: venue messages, session changes, a one-second timer
    /// that closes bars, and the kill switch.
    ///
    /// Starting hands each strategy the state it saved in an earlier run
    /// (from the journal, before `on_start`), then warms the strategies up
    /// on the last bars of history ([`crate::warmup`]). States saved with
    /// `Context::save_state` are written to the journal after every message
    /// and timer tick that changed them, and once more at the stop.
    ///
    /// While the websocket is down the timer is held (no bar closes, no
    /// timer fires: strategies do not act on a picture that stopped
    /// moving). When it is back, and when the brokerage session is
    /// re-established after a loss (the daily reset, the 24-hour limit),
    /// the executions and order changes of the gap are fetched and
    /// delivered through the exactly-once path before anything else
    /// ([`LiveEngine::catch_up`]). `ntf` server prompts are answered by the
    /// reply policy ([`ReplyPolicy::answer_notification`]).
    ///
    /// [`ReplyPolicy::answer_notification`]: crate::reply::ReplyPolicy::answer_notification
    pub async fn run(&mut self, stop: impl Future<Output = ()>) {
        if !self.started {
            self.started = true;
            // Before `on_start`, which may read them.
            if let Err(e) = self.engine.restore_states().await {
                tracing::error!(error = %e,
                    "the strategies' saved states could not be read: they start without them");
            }
            self.adopt_earlier_orders().await;
            if !self.primed {
                self.prime().await;
            }
            self.engine.start().await;
            self.warm_up().await;
            self.engine.persist_states().await;
        }
        let mut timer = tokio::time::interval(Duration::from_secs(1));
        let mut ticks: u64 = 0;
        // Far enough to never fire; `select!` evaluates every branch's
        // future, so the retry branch needs a deadline even when idle.
        let idle = || tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                msg = self.rx.recv() => match msg {
                    Some(WsMessage::Connected { reconnects }) => {
                        if reconnects > 0 || self.feed_down {
                            tracing::info!(reconnects, "websocket back: catching up before trading resumes");
                            self.catch_up("websocket reconnected").await;
                        }
                        self.feed_down = false;
                    }
                    Some(m @ WsMessage::Disconnected { .. }) => {
                        // A closed socket may be the daily reset: is the
                        // session still there?
                        self.keeper_nudge.notify_one();
                        self.feed_down = true;
                        self.engine.handle(m).await;
                        self.engine.persist_states().await;
                    }
                    Some(WsMessage::Notification { raw, id, title, text }) => {
                        self.on_notification(&raw, &id, &title, &text).await;
                    }
                    Some(m) => {
                        if matches!(&m, WsMessage::Event(Event::Session(s)) if !s.authenticated) {
                            self.keeper_nudge.notify_one();
                        }
                        self.engine.handle(m).await;
                        self.engine.persist_states().await;
                    }
                    None => break,
                },
                _ = timer.tick() => {
                    if !self.feed_down {
                        self.engine.tick().await;
                        self.engine.persist_states().await;
                    }
                    self.engine.publish_status();
                    if ticks.is_multiple_of(60) {
                        self.status_line();
                    }
                    ticks = ticks.wrapping_add(1);
                }
                Some(status) = self.session_rx.recv() => {
                    let regained = status.authenticated && !self.authenticated;
                    let lost = !status.authenticated && self.authenticated;
                    self.authenticated = status.authenticated;
                    if lost {
                        tracing::warn!("brokerage session lost: new orders wait until it is re-established");
                        self.engine.pause("the brokerage session is being re-established");
                    }
                    self.engine.handle(WsMessage::Event(Event::Session(status))).await;
                    if regained {
                        self.catch_up("brokerage session re-established").await;
                        self.engine.resume();
                        tracing::info!("trading resumed");
                    }
                }
                Some(reason) = self.kill_rx.recv() => {
                    tracing::error!(%reason, "kill switch: cancelling every working order, trading halted");
                    self.engine.kill(&reason).await;
                }
                _ = tokio::time::sleep_until(self.prime_retry.map_or_else(idle, |(at, _)| at)),
                    if self.prime_retry.is_some() => self.prime().await,
                _ = &mut stop => break,
            }
        }
        // A kill switch pulled as the stop came (`select!` picks among
        // ready branches at random) still halts: the summary says Halted.
        while let Ok(reason) = self.kill_rx.try_recv() {
            tracing::error!(%reason, "kill switch: cancelling every working order, trading halted");
            self.engine.kill(&reason).await;
        }
        self.engine.stop().await;
        self.engine.persist_states().await;
    }

    /// The minute's one INFO line: is the bot trading, and what it holds.
    fn status_line(&self) {
        let stats = self.engine.stats();
        let p = self.engine.dispatcher().portfolio();
        tracing::info!(
            state = ?self.engine.trading_state(),
            feed = if self.feed_down { "down" } else { "up" },
            authenticated = self.authenticated,
            positions = p.positions().filter(|p| !p.is_flat()).count(),
            working_orders = self.engine.dispatcher().orders().open().count(),
            equity = %p.equity(),
            realized = %p.realized_pnl(),
            quotes = stats.quotes,
            executions = stats.executions,
            "status"
        );
    }

    /// Replay the last bars of history through the strategies' `on_bar`
    /// (as many as the most demanding asks, [`LiveEngine::warmup_bars`]),
    /// so their indicators are built before the first live bar. History
    /// that cannot be had is logged; strategies then start cold.
    async fn warm_up(&mut self) {
        let wanted = self.engine.warmup_bars();
        if wanted == 0 {
            return;
        }
        // The loop waits for the warm-up: never for a 429 penalty box
        // (minutes) nor for longer than WARMUP_WITHIN, so the kill switch
        // and the stop signal are heard soon after start whatever the
        // gateway does.
        if let Some(left) = self.client.pacer().penalty_remaining() {
            tracing::error!(
                penalty_left_s = left.as_secs(),
                "no warm-up history in the 429 penalty box: strategies start cold"
            );
            return;
        }
        let fetch = crate::warmup::fetch(
            &self.client,
            &self.conids,
            self.bar_period,
            wanted,
            chrono::Utc::now(),
        );
        match tokio::time::timeout(WARMUP_WITHIN, fetch).await {
            Ok(bars) => {
                self.engine.warm_up(&bars);
            }
            Err(_) => tracing::error!(
                within_s = WARMUP_WITHIN.as_secs(),
                "warm-up history took too long: strategies start cold"
            ),
        }
    }

    /// Mark the executions the venue reports now as delivered (they are in
    /// the account the portfolio was seeded from). Without it a catch-up
    /// could not tell a missed execution from an old one, so until it
    /// succeeds catch-ups prime instead of delivering.
    ///
    /// One attempt: a failure schedules the next one in [`LiveNode::run`]'s
    /// loop (backoff doubling to 30 s), so a gateway that refuses for long
    /// (the 429 penalty box) never keeps the loop from the stop signal or
    /// the kill switch.
    async fn prime(&mut self) {
        match self.engine.prime_executions().await {
            Ok(n) => {
                tracing::info!(executions = n, "the venue's recent executions are known");
                self.primed = true;
                self.prime_retry = None;
            }
            Err(e) => {
                let wait = self.prime_retry.map_or(self.reconcile_backoff, |(_, w)| w);
                tracing::error!(error = %e, retry_in = ?wait,
                    "could not list the venue's recent executions: executions missed during a \
                     websocket gap are not fetched until they can be");
                let next = wait.saturating_mul(2).min(Duration::from_secs(30));
                self.prime_retry = Some((tokio::time::Instant::now() + wait, next));
            }
        }
    }

    /// The gap's executions and order changes, before trading resumes.
    async fn catch_up(&mut self, why: &'static str) {
        if !self.primed {
            self.prime().await;
            return;
        }
        match self.engine.catch_up().await {
            Ok(found) => tracing::info!(
                %why,
                executions = found.executions,
                order_updates = found.order_updates,
                "caught up with the venue"
            ),
            Err(e) => tracing::error!(
                %why,
                error = %e,
                "could not catch up with the venue: executions of the gap reach the engine \
                 when the feed repeats them, and the store at the next reconciliation"
            ),
        }
    }

    /// An `ntf` message: a server prompt is answered by the reply policy
    /// through `/iserver/notification`; anything else is logged.
    async fn on_notification(&self, raw: &serde_json::Value, id: &str, title: &str, text: &str) {
        let Some(prompt) = cpapi::messages::ServerPrompt::from_args(raw) else {
            tracing::info!(%id, %title, %text, "IBKR notification");
            return;
        };
        let Some(answer) = self.reply.answer_notification(&prompt) else {
            return;
        };
        let Ok(order_id) = prompt.order_id.parse::<i64>() else {
            tracing::error!(order = %prompt.order_id, "server prompt with a non-numeric order id: unanswered");
            return;
        };
        match self
            .client
            .answer_notification(order_id, &prompt.req_id, answer)
            .await
        {
            Ok(status) => {
                tracing::info!(prompt = %prompt.id, %answer, %status, "server prompt answered")
            }
            Err(e) => {
                tracing::error!(prompt = %prompt.id, error = %e, "answering a server prompt failed")
            }
        }
    }

    /// End the run: cancel every working order (unless `keep_orders`),
    /// close the websocket and the session keeper, and say what happened.
    pub async fn finish(mut self, keep_orders: bool) -> NodeSummary {
        self.keeper.abort();
        if !keep_orders {
            self.engine.shutdown().await;
        }
        let pf = self.engine.dispatcher().portfolio();
        let summary = NodeSummary {
            stats: self.engine.stats(),
            equity: pf.equity(),
            realized_pnl: pf.realized_pnl(),
            positions: pf.positions().filter(|p| !p.is_flat()).cloned().collect(),
            trading_state: self.engine.trading_state(),
        };
        self.ws.shutdown().await;
        summary
    }
}

/// What the gateway says the contracts are (`/trsrv/secdef`), so risk
/// checks the real thing (a ForecastEx contract cannot be sold), and the
/// YES/NO pairs of the ForecastEx markets among them
/// (`/trsrv/event/contracts`), for `Context::event_pair`.
async fn resolve_contracts(
    client: &IbkrClient,
    conids: &[Conid],
) -> Result<(Vec<Contract>, Vec<StrikeSide>), NodeError> {
    let defs = client
        .trsrv_secdef(conids)
        .await
        .map_err(gateway("GET /trsrv/secdef (contract details)"))?;
    let mut contracts = Vec::with_capacity(conids.len());
    for conid in conids {
        let def = defs
            .secdef
            .iter()
            .find(|d| d.conid == *conid)
            .ok_or(NodeError::UnknownContract(*conid))?;
        contracts.push(def.contract());
    }
    let markets: BTreeSet<i64> = defs
        .secdef
        .iter()
        .filter(|d| d.is_event_contract == Some(true))
        .filter_map(|d| d.und_conid)
        .collect();
    let mut records = Vec::new();
    for market in markets {
        let body = client
            .event_contracts(Conid(market), "FORECASTX")
            .await
            .map_err(gateway("GET /trsrv/event/contracts (ForecastEx pairs)"))?;
        for k in &body.contracts {
            records.push(k.record()?);
        }
    }
    Ok((contracts, records))
}

/// The account's cash and positions as the engine's portfolio.
async fn seed_portfolio(
    client: &IbkrClient,
    account: &str,
    contracts: &Contracts,
) -> Result<Portfolio, NodeError> {
    client
        .portfolio_accounts()
        .await
        .map_err(gateway("GET /portfolio/accounts"))?;
    let summary = client
        .portfolio_summary(account)
        .await
        .map_err(gateway("GET /portfolio/{acct}/summary (cash)"))?;
    let cash = summary
        .get("totalcashvalue")
        .and_then(|v| v.amount)
        .ok_or_else(|| NodeError::NoCash(account.to_owned()))?;
    let held = client
        .positions(account)
        .await
        .map_err(gateway("GET /portfolio/{acct}/positions"))?;
    let positions = held
        .iter()
        .filter(|p| !p.position.is_zero())
        .map(|p| (p.to_position(), p.mkt_price));
    let mut portfolio =
        Portfolio::from_account(cash, positions).map_err(|source| NodeError::Account {
            account: account.to_owned(),
            source,
        })?;
    for c in contracts.iter() {
        // A held position carries the multiplier the account reported.
        if portfolio.quantity(c.conid).is_zero() {
            portfolio.set_multiplier(c.conid, c.multiplier);
        }
    }
    tracing::info!(
        %account,
        cash = %portfolio.cash(),
        equity = %portfolio.equity(),
        positions = portfolio.positions().filter(|p| !p.is_flat()).count(),
        "portfolio seeded from the account"
    );
    Ok(portfolio)
}

/// Trading hours of each contract; a contract whose schedule cannot be
/// read trades unchecked, with a warning.
async fn load_trading_hours<S: Strategy>(
    client: &IbkrClient,
    contracts: &Contracts,
    engine: &mut LiveEngine<S, IbkrBroker>,
) {
    for c in contracts.iter() {
        let asset = serde_json::to_value(&c.sec_type)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "STK".to_owned());
        match client.trading_schedule(&asset, &c.symbol, None).await {
            Ok(s) => match s.first().map(cpapi::messages::TradingSchedule::to_hours) {
                Some(Ok(h)) => engine.set_trading_hours(c.conid, h),
                Some(Err(e)) => {
                    tracing::warn!(conid = %c.conid, error = %e, "trading hours not enforced")
                }
                None => tracing::warn!(conid = %c.conid, "no trading schedule; hours not enforced"),
            },
            Err(e) => tracing::warn!(conid = %c.conid, error = %e, "trading hours not enforced"),
        }
    }
}
