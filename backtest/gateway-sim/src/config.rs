//! Settings of the CP Gateway simulator and the instruments it knows.

use std::path::PathBuf;
use std::time::Duration;

use rust_decimal::Decimal;

use engine::model::{Conid, Timestamp};

use super::events::EventMarket;
use super::reset::ResetRegion;
use backtest::exchange::ExchangeConfig;

/// How the simulator runs. `Default` is what `ibflow sim-gateway` serves:
/// the bundled sample at real-time speed, on an ephemeral port unless
/// `port` is set.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Port on 127.0.0.1; 0 picks a free one (tests).
    pub port: u16,
    /// Serve HTTPS/WSS with a self-signed certificate made at start.
    pub tls: bool,
    /// Bar files and directories (the backtest formats); empty = the bundled
    /// sample.
    pub data: Vec<PathBuf>,
    /// Replay clock speed: replay seconds per real second (0 = paused).
    pub speed: f64,
    /// Replay clock start; default: the first bar of the data.
    pub start: Option<Timestamp>,
    /// The one account of the simulated user.
    pub account: String,
    /// Username reported by `/sso/validate` and the websocket `system` topic.
    pub username: String,
    /// Instruments with their reference data. Conids in the data but not here
    /// get a stock with the conid as symbol.
    pub instruments: Vec<Instrument>,
    /// The brokerage session times out after this long without requests
    /// (the spec: "approximately 6 minutes").
    pub idle_timeout: Duration,
    /// Websocket `system` heartbeat period (the spec: every 10 seconds).
    pub heartbeat: Duration,
    /// How often the replay clock is pumped and quotes pushed to websockets.
    pub tick: Duration,
    /// Request rate limits and the penalty box.
    pub pacing: PacingConfig,
    /// Order precaution prompts, checked in this order.
    pub prompts: Vec<PromptRule>,
    /// Cash (USD) the simulated account starts with.
    pub initial_cash: Decimal,
    /// Fill rules, commissions, session time zone of the simulated exchange.
    /// `account` is overwritten by [`GatewayConfig::account`].
    pub exchange: ExchangeConfig,
    /// ForecastEx markets listed by the event contract endpoints and
    /// tradable like any contract (buy only, netted).
    pub event_markets: Vec<EventMarket>,
    /// Timeouts and the connection cap of the HTTP server.
    pub server: ServerLimits,
    /// Serve the admin API under `/sim/admin/...` (fault injection over
    /// HTTP, for tests of a separately running bot). Off by default: the
    /// paths are 404 then.
    pub admin: bool,
    /// Orders whose quantity exceeds this are accepted, then held
    /// (`PreSubmitted`, not working) behind a server prompt sent by the
    /// `ntf` websocket topic until `POST /iserver/notification` answers it
    /// (`notifications.rs`). `None` (default): no order is held.
    pub ntf_prompt_above: Option<Decimal>,
    /// The region whose midnight (on the replay clock) is IBKR's daily
    /// reset: websockets close and the session times out until
    /// `ssodh/init`. `None` (default) for no scheduled reset, so that
    /// replays at high speed are not interrupted every real second.
    pub reset_region: Option<ResetRegion>,
    /// How long (replay time) before each scheduled reset the `blt`
    /// bulletin warning of it goes out. Default 5 minutes.
    pub reset_warning: Duration,
    /// The longest a brokerage session stays authenticated (replay time;
    /// the spec: 24 hours), counted from the start and from every
    /// `ssodh/init`; then it times out like a reset. `None` (default):
    /// no limit, as tests that jump the replay clock by days expect.
    pub session_max_age: Option<Duration>,
}

/// Timeouts and the connection cap of the simulator's HTTP server, so that
/// clients that connect and never finish a request (or never leave) cannot
/// make it unreachable (issue 12). Tests shorten them.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// A connection must send a complete request head within this long of
    /// the server waiting for one (and finish a TLS handshake within it),
    /// or it is closed. Default 10 s.
    pub header_timeout: Duration,
    /// A request body must arrive whole within this long, or the request
    /// is answered 408 and the connection closed. Default 30 s.
    pub body_timeout: Duration,
    /// A kept-alive connection on which nothing is read or written for
    /// this long is closed. Default 60 s.
    pub idle_timeout: Duration,
    /// The most connections open at once (websockets included); more are
    /// answered 503 and closed. Default 256.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 256,
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            port: 0,
            tls: false,
            data: Vec::new(),
            speed: 1.0,
            start: None,
            account: "DU1234567".to_owned(),
            username: "simuser1".to_owned(),
            instruments: Instrument::sample(),
            idle_timeout: Duration::from_secs(6 * 60),
            heartbeat: Duration::from_secs(10),
            tick: Duration::from_millis(100),
            pacing: PacingConfig::default(),
            prompts: PromptRule::defaults(),
            initial_cash: Decimal::from(1_000_000),
            exchange: ExchangeConfig::default(),
            event_markets: EventMarket::sample(),
            server: ServerLimits::default(),
            admin: false,
            ntf_prompt_above: None,
            reset_region: None,
            reset_warning: Duration::from_secs(5 * 60),
            session_max_age: None,
        }
    }
}

impl GatewayConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !self.speed.is_finite() || self.speed < 0.0 {
            return Err(format!(
                "speed must be a finite number >= 0, got {}",
                self.speed
            ));
        }
        if self.account.trim().is_empty() {
            return Err("account must not be empty".to_owned());
        }
        if self.tick.is_zero() || self.heartbeat.is_zero() {
            return Err("tick and heartbeat must be positive".to_owned());
        }
        let l = &self.server;
        if l.header_timeout.is_zero() || l.body_timeout.is_zero() || l.idle_timeout.is_zero() {
            return Err("server timeouts must be positive".to_owned());
        }
        if l.max_connections == 0 {
            return Err("max_connections must be at least 1".to_owned());
        }
        if self.session_max_age.is_some_and(|a| a.is_zero()) {
            return Err("session_max_age must be positive (None: no limit)".to_owned());
        }
        if self.ntf_prompt_above.is_some_and(|q| q.is_sign_negative()) {
            return Err("ntf_prompt_above must not be negative".to_owned());
        }
        if self.reset_warning > Duration::from_secs(23 * 3600) {
            return Err("reset_warning must be shorter than a day".to_owned());
        }
        Ok(())
    }
}

/// The spec's "Pacing Limitations": a global 10 requests per second per
/// client address plus the per-endpoint table; a violation answers 429 and
/// puts the address in a penalty box in which every request gets 429.
#[derive(Debug, Clone)]
pub struct PacingConfig {
    /// False: no request is ever answered 429.
    pub enabled: bool,
    /// Global limit per second.
    pub global_per_second: u32,
    /// Penalty box length (the spec: 15 minutes; tests shorten it).
    pub penalty: Duration,
}

impl Default for PacingConfig {
    fn default() -> Self {
        PacingConfig {
            enabled: true,
            global_per_second: cpapi::endpoints::GLOBAL.count as u32,
            penalty: cpapi::endpoints::PENALTY_BOX,
        }
    }
}

impl PacingConfig {
    /// No limits: for tests that are about something else.
    pub fn off() -> Self {
        PacingConfig {
            enabled: false,
            ..PacingConfig::default()
        }
    }
}

/// A precaution the gateway asks the user to confirm before it transmits an
/// order (answered through `/iserver/reply/{id}`), unless suppressed through
/// `/iserver/questions/suppress`.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptRule {
    /// `o163`: a limit (or stop) price more than `percent` away from the
    /// last price.
    PriceFarFromMarket {
        /// Allowed distance from the last price, in percent of it; a price
        /// exactly this far is not asked about.
        percent: Decimal,
    },
    /// `o354`: no market data yet for the contract (before its first bar).
    NoMarketData,
    /// `o10331`: any stop-type order (STP, STOP_LIMIT, TRAIL, TRAILLMT).
    StopOrder,
    /// `o383`: quantity above `max`.
    SizeLimit {
        /// Largest quantity transmitted without asking.
        max: Decimal,
    },
}

impl PromptRule {
    /// o163 at 3% (the spec's example message), o354 and o10331.
    pub fn defaults() -> Vec<PromptRule> {
        vec![
            PromptRule::PriceFarFromMarket {
                percent: Decimal::new(3, 0),
            },
            PromptRule::NoMarketData,
            PromptRule::StopOrder,
        ]
    }

    /// The prompt's `messageIds` entry in an `/iserver/account/{acct}/orders`
    /// answer, and the id `/iserver/questions/suppress` takes to silence it.
    pub fn message_id(&self) -> &'static str {
        match self {
            PromptRule::PriceFarFromMarket { .. } => "o163",
            PromptRule::NoMarketData => "o354",
            PromptRule::StopOrder => "o10331",
            PromptRule::SizeLimit { .. } => "o383",
        }
    }
}

/// Reference data of one instrument, as the contract endpoints report it.
#[derive(Debug, Clone, PartialEq)]
pub struct Instrument {
    /// IBKR contract id; the key bars, quotes and orders are matched by.
    pub conid: Conid,
    /// Ticker (`symbol`, `ticker`, `local_symbol` in the contract endpoints).
    pub symbol: String,
    /// `companyName`; contract searches also match it.
    pub company_name: String,
    /// Primary exchange (`NASDAQ`, `NYSE`).
    pub listing_exchange: String,
    /// Where executions are reported (`ISLAND`, `NYSE`).
    pub execution_exchange: String,
    /// Currency of prices and cash (`USD`).
    pub currency: String,
    /// `STK` for everything in the first increment.
    pub sec_type: String,
    /// `industry` of `/iserver/contract/{conid}/info`, `group` of
    /// `/trsrv/secdef`; empty in [`Instrument::stock`].
    pub industry: String,
    /// `category` of the contract info, `sectorGroup` of `/trsrv/secdef`.
    pub category: String,
    /// `sector` of `/trsrv/secdef`.
    pub sector: String,
    /// Minimum price increment (default 0.01): the `incrementRules`, the
    /// quote's bid/ask one tick either side of the last price, and the
    /// exchange's slippage tick.
    pub tick_size: Decimal,
}

impl Instrument {
    /// A US stock with placeholder reference data.
    pub fn stock(conid: Conid, symbol: &str, company_name: &str, listing_exchange: &str) -> Self {
        Instrument {
            conid,
            symbol: symbol.to_owned(),
            company_name: company_name.to_owned(),
            listing_exchange: listing_exchange.to_owned(),
            execution_exchange: if listing_exchange == "NASDAQ" {
                "ISLAND".to_owned()
            } else {
                listing_exchange.to_owned()
            },
            currency: "USD".to_owned(),
            sec_type: "STK".to_owned(),
            industry: String::new(),
            category: String::new(),
            sector: String::new(),
            tick_size: Decimal::new(1, 2),
        }
    }

    /// The bundled sample's two instruments: AAPL (265598) and IBM (8314).
    pub fn sample() -> Vec<Instrument> {
        let mut aapl = Instrument::stock(Conid(265598), "AAPL", "APPLE INC", "NASDAQ");
        aapl.industry = "Computers".to_owned();
        aapl.category = "Computers".to_owned();
        aapl.sector = "Technology".to_owned();
        let mut ibm = Instrument::stock(Conid(8314), "IBM", "INTL BUSINESS MACHINES CORP", "NYSE");
        ibm.industry = "Computers".to_owned();
        ibm.category = "Computer Services".to_owned();
        ibm.sector = "Technology".to_owned();
        vec![aapl, ibm]
    }

    /// `NASDAQ.NMS` style listing as live orders and trades show it.
    pub(crate) fn listing_detail(&self) -> String {
        if self.listing_exchange == "NASDAQ" {
            "NASDAQ.NMS".to_owned()
        } else {
            self.listing_exchange.clone()
        }
    }
}
