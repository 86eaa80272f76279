//! Response bodies of the REST endpoints, as the gateway really sends them.
//!
//! Every field is optional or defaulted unless the engine cannot do without
//! it, numbers may arrive as strings (`"192.26"`) or numbers (`192.26`), ids
//! as either, and unknown fields are ignored. Conversions into the engine's
//! model (`Execution`, `Position`, `OrderStatus`, ...) live beside the wire
//! types and fail with a message naming the field instead of panicking.

use std::collections::BTreeMap;
use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::lenient::{
    decimal, decimals, lenient_bool, opt_decimal, opt_grouped_decimal, opt_i64, opt_string, string,
    string_map,
};
use crate::spelling;
use engine::forecastex::{NettingError, Pairing, StrikeSide};
use engine::model::from_epoch_ms;
use engine::model::{
    Conid, Contract, Execution, OrderId, OrderRequest, OrderStatus, OrderType, Position, SecType,
    Side, Timestamp, UnknownValue,
};

/// The `session` value of `/tickle`: the websocket's `api` cookie. Never
/// printed: `Debug` and `Display` show a placeholder.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SessionToken(String);

impl SessionToken {
    /// Wrap a token value (tests and tools; the client reads it from `/tickle`).
    pub fn new(s: impl Into<String>) -> Self {
        SessionToken(s.into())
    }
    /// The secret itself, for building the cookie. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// True when the gateway sent no `session` (or an empty one): there is no
    /// cookie to open the websocket with.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

impl fmt::Display for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

// ---------------------------------------------------------------- session

/// The `serverInfo` object of the auth status: which IBKR server the
/// brokerage session is on. The spec calls both fields internal; kept for
/// logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ServerInfo {
    /// `serverName`, for example `JifN19053`.
    #[serde(default, rename = "serverName")]
    pub server_name: Option<String>,
    /// `serverVersion`, a build string such as `Build 10.25.0p, Dec 5, 2023`.
    #[serde(default, rename = "serverVersion")]
    pub server_version: Option<String>,
}

/// `/iserver/auth/status`, `/iserver/auth/ssodh/init`, and the `authStatus`
/// inside `/tickle`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct AuthStatus {
    /// The brokerage session is authenticated: trading and market data work.
    /// False after a timeout or logout, and whenever the gateway omits it.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub authenticated: bool,
    /// Another connection (TWS, the mobile app, another gateway) holds the
    /// brokerage session for this user.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub competing: bool,
    /// The gateway is connected to IBKR, authenticated or not.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub connected: bool,
    /// Why the status is what it is; an authenticated session sends `""`.
    #[serde(default)]
    pub message: Option<String>,
    /// The reason the status could not be retrieved (`fail`); usually `""`.
    #[serde(default)]
    pub fail: Option<String>,
    /// `serverInfo`: absent in the logged-out form of the response.
    #[serde(default, rename = "serverInfo")]
    pub server_info: Option<ServerInfo>,
}

impl AuthStatus {
    /// The engine's session status. `message` is the first non-empty of
    /// `message` and `fail`, so an empty string never reads as a reason.
    pub fn to_session_status(&self) -> engine::event::SessionStatus {
        let msg = [self.message.as_deref(), self.fail.as_deref()]
            .into_iter()
            .flatten()
            .find(|s| !s.is_empty())
            .map(str::to_owned);
        engine::event::SessionStatus {
            authenticated: self.authenticated,
            connected: self.connected,
            competing: self.competing,
            message: msg,
        }
    }
}

/// The `iserver` object of `/tickle`: it carries the `/iserver/auth/status`
/// body under `authStatus`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TickleIserver {
    /// `authStatus`: absent when the gateway has no brokerage session.
    #[serde(default, rename = "authStatus")]
    pub auth_status: Option<AuthStatus>,
}

/// `/tickle`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Tickle {
    /// The session identifier, the value of the websocket's `api` cookie.
    /// Empty when the gateway sent none.
    #[serde(default)]
    pub session: SessionToken,
    /// `ssoExpires`: time left until the SSO session expires, in milliseconds
    /// (a duration, not an epoch instant).
    #[serde(default, rename = "ssoExpires", deserialize_with = "opt_i64")]
    pub sso_expires_ms: Option<i64>,
    /// `collission` (the spec's spelling): internal to IBKR per the spec.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub collission: bool,
    /// `userId`: internal to IBKR per the spec.
    #[serde(default, rename = "userId", deserialize_with = "opt_i64")]
    pub user_id: Option<i64>,
    /// `hmds`: historical data bridge information, kept raw (for example
    /// `{"error": "no bridge"}` when no history request is running).
    #[serde(default)]
    pub hmds: Option<serde_json::Value>,
    /// `iserver`: holds the brokerage auth status; see [`Tickle::auth_status`].
    #[serde(default)]
    pub iserver: Option<TickleIserver>,
}

impl Tickle {
    /// The brokerage status inside the tickle, or "not connected" when the
    /// gateway left it out (it does when the session is gone).
    pub fn auth_status(&self) -> AuthStatus {
        self.iserver
            .as_ref()
            .and_then(|i| i.auth_status.clone())
            .unwrap_or_default()
    }
}

/// `/sso/validate`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct SsoValidate {
    /// `USER_ID`: IBKR's internal user number.
    #[serde(default, rename = "USER_ID", deserialize_with = "opt_i64")]
    pub user_id: Option<i64>,
    /// `USER_NAME`: the username logged in for this session.
    #[serde(default, rename = "USER_NAME")]
    pub user_name: Option<String>,
    /// `RESULT`: true if the session validated.
    #[serde(default, rename = "RESULT", deserialize_with = "lenient_bool")]
    pub result: bool,
    /// `AUTH_TIME`: when the user authenticated, epoch milliseconds.
    #[serde(default, rename = "AUTH_TIME", deserialize_with = "opt_i64")]
    pub auth_time_ms: Option<i64>,
    /// `EXPIRES`: time left until the SSO session expires, in milliseconds
    /// (a duration, like `ssoExpires` of `/tickle`).
    #[serde(default, rename = "EXPIRES", deserialize_with = "opt_i64")]
    pub expires_ms: Option<i64>,
    /// `IS_MASTER`: a master account (true) or a subaccount (false).
    #[serde(default, rename = "IS_MASTER", deserialize_with = "lenient_bool")]
    pub is_master: bool,
    /// 1 live, 2 paper.
    #[serde(default, rename = "LOGIN_TYPE", deserialize_with = "opt_i64")]
    pub login_type: Option<i64>,
    /// `PAPER_USER_NAME`: the paper trading username of the account.
    #[serde(default, rename = "PAPER_USER_NAME")]
    pub paper_user_name: Option<String>,
    /// `region`: IBKR's region code for the session (`NJ` in the spec's
    /// example); not described by the spec.
    #[serde(default)]
    pub region: Option<String>,
}

/// `/logout`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct LogoutResponse {
    /// True if the gateway session was ended.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub status: bool,
}

// --------------------------------------------------------------- accounts

/// `/iserver/accounts`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct BrokerageAccounts {
    /// Every account id the user may trade (`U1234567`, `DU1234567`).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Account id -> alias. Non-string values are dropped.
    #[serde(default, deserialize_with = "string_map")]
    pub aliases: BTreeMap<String, String>,
    /// `selectedAccount`: the account `/iserver` requests act on; change it
    /// with `POST /iserver/account` ([`SwitchAccount`]).
    #[serde(default, rename = "selectedAccount")]
    pub selected_account: Option<String>,
    /// `isPaper`: the session is a paper trading one.
    #[serde(default, rename = "isPaper", deserialize_with = "lenient_bool")]
    pub is_paper: bool,
    /// `isFT`: the user has fractional trading access.
    #[serde(default, rename = "isFT", deserialize_with = "lenient_bool")]
    pub is_ft: bool,
}

/// One entry of `/portfolio/accounts`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct PortfolioAccount {
    /// The account id (`U1234567`); required by the type, so an entry without
    /// it reads as `""`.
    #[serde(default)]
    pub id: String,
    /// `accountId`: the same account id as `id` in the spec's example.
    #[serde(default, rename = "accountId")]
    pub account_id: Option<String>,
    /// `displayName`: the name Client Portal shows (the id unless renamed).
    #[serde(default, rename = "displayName")]
    pub display_name: Option<String>,
    /// `currency`: the account's base currency.
    #[serde(default)]
    pub currency: Option<String>,
    /// `type`: the account type (`DEMO` in the spec's example of a paper
    /// account).
    #[serde(default, rename = "type")]
    pub account_type: Option<String>,
    /// `tradingType`: the account's trading structure (`PMRGN` in the spec's
    /// example).
    #[serde(default, rename = "tradingType")]
    pub trading_type: Option<String>,
    /// `desc`: `"accountId - accountAlias"`, or just the id.
    #[serde(default)]
    pub desc: Option<String>,
}

/// `POST /iserver/account` (switch account).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct SwitchAccount {
    /// The gateway confirms the switch was made.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub set: bool,
    /// `acctId`: the account switched to.
    #[serde(default, rename = "acctId")]
    pub acct_id: Option<String>,
}

// -------------------------------------------------------------- contracts

/// One result of `/iserver/secdef/search`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SecdefSearchResult {
    /// The contract id; the spec sends it as a string in this endpoint.
    pub conid: Conid,
    /// `companyHeader`: company name with its primary exchange
    /// (`"IBKR INTERACTIVE BROKERS GRO-CL A (NASDAQ) "`); for bonds, the bond
    /// type.
    #[serde(default, rename = "companyHeader")]
    pub company_header: Option<String>,
    /// `companyName`; null for bonds.
    #[serde(default, rename = "companyName")]
    pub company_name: Option<String>,
    /// The ticker; null for bonds.
    #[serde(default)]
    pub symbol: Option<String>,
    /// The primary exchange per the spec; null for bonds and often null
    /// otherwise.
    #[serde(default)]
    pub description: Option<String>,
    /// `secType` of this result (`STK`, `IND`, `BOND`).
    #[serde(default, rename = "secType")]
    pub sec_type: Option<String>,
    /// The derivatives listed on this underlying, one section per security
    /// type; empty when there are none.
    #[serde(default)]
    pub sections: Vec<SecdefSection>,
}

/// A derivative section of a search result (`OPT` with its months, ...).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct SecdefSection {
    /// `secType` of the derivatives (`OPT`, `FUT`, `WAR`, ...).
    #[serde(default, rename = "secType")]
    pub sec_type: Option<String>,
    /// Expiry months, semicolon-separated: `"JAN24;FEB24;MAR24"`. These are the
    /// `month` values `/iserver/secdef/strikes` and `/secdef/info` accept.
    #[serde(default)]
    pub months: Option<String>,
    /// Exchanges, semicolon-separated: `"SMART;CBOE;ISE"`.
    #[serde(default)]
    pub exchange: Option<String>,
}

/// One entry of `/iserver/secdef/info`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SecdefInfo {
    /// The derivative's own contract id.
    pub conid: Conid,
    /// Ticker of the underlying (`AAPL` for an AAPL option).
    #[serde(default)]
    pub symbol: Option<String>,
    /// `secType` (`OPT`, `FUT`, `WAR`, `CASH`, `CFD`).
    #[serde(default, rename = "secType")]
    pub sec_type: Option<String>,
    /// The exchange the request named (`SMART` by default).
    #[serde(default)]
    pub exchange: Option<String>,
    /// `listingExchange`: primary exchange; often null for derivatives.
    #[serde(default, rename = "listingExchange")]
    pub listing_exchange: Option<String>,
    /// `P` or `C` for options; absent otherwise.
    #[serde(default)]
    pub right: Option<String>,
    /// The option strike, in the contract's price currency.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub strike: Option<Decimal>,
    /// Currency the contract trades in.
    #[serde(default)]
    pub currency: Option<String>,
    /// `maturityDate`: expiry as `YYYYMMDD`.
    #[serde(default, rename = "maturityDate")]
    pub maturity_date: Option<String>,
    /// Contract multiplier (`"100"` for US equity options), as sent.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub multiplier: Option<Decimal>,
    /// `tradingClass`.
    #[serde(default, rename = "tradingClass")]
    pub trading_class: Option<String>,
    /// First description line: the underlying symbol.
    #[serde(default)]
    pub desc1: Option<String>,
    /// Second description line, for example `"JAN 05 '24 195 Put"`.
    #[serde(default)]
    pub desc2: Option<String>,
}

/// `/iserver/contract/{conid}/info`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ContractInfo {
    /// `con_id`: this endpoint spells it with an underscore.
    #[serde(rename = "con_id")]
    pub conid: Conid,
    /// The ticker (`AAPL`).
    #[serde(default)]
    pub symbol: Option<String>,
    /// `instrument_type`: the security type (`STK`, `OPT`, `FUT`, ...), the
    /// spelling [`SecType`] deserializes from.
    #[serde(default)]
    pub instrument_type: Option<String>,
    /// The exchange the request is for (`SMART` in the spec's example).
    #[serde(default)]
    pub exchange: Option<String>,
    /// Currency the contract trades in.
    #[serde(default)]
    pub currency: Option<String>,
    /// Company long name (`APPLE INC`).
    #[serde(default)]
    pub company_name: Option<String>,
    /// `local_symbol`: the exchange's symbol of the contract.
    #[serde(default)]
    pub local_symbol: Option<String>,
    /// `trading_class` (`NMS` for a NASDAQ stock).
    #[serde(default)]
    pub trading_class: Option<String>,
    /// Every exchange the contract trades on, comma-separated, SMART included.
    #[serde(default)]
    pub valid_exchanges: Option<String>,
    /// Contract multiplier; null for stocks, so `None` or zero is "no
    /// multiplier" (1).
    #[serde(default, deserialize_with = "opt_decimal")]
    pub multiplier: Option<Decimal>,
    /// Expiry of a derivative; null for stocks.
    #[serde(default)]
    pub maturity_date: Option<String>,
    /// The underlying's conid; `0` for a contract without one.
    #[serde(default, deserialize_with = "opt_i64")]
    pub underlying_con_id: Option<i64>,
    /// `r_t_h`: not described by the spec (`true` for the stock of its
    /// example); read as a regular-trading-hours flag. Absent is false.
    #[serde(default, rename = "r_t_h", deserialize_with = "lenient_bool")]
    pub rth: bool,
}

impl ContractInfo {
    /// The engine's contract for this conid. The tick size is not in this
    /// response (it is in the rules); one cent is assumed until known.
    pub fn to_contract(&self) -> engine::model::Contract {
        let mut c =
            engine::model::Contract::stock(self.conid, self.symbol.clone().unwrap_or_default());
        if let Some(t) = &self.instrument_type {
            c.sec_type = serde_json::from_value(serde_json::Value::String(t.clone()))
                .unwrap_or(engine::model::SecType::Other(t.clone()));
        }
        if let Some(e) = &self.exchange {
            c.exchange = e.clone();
        }
        if let Some(cur) = &self.currency {
            c.currency = cur.clone();
        }
        if let Some(m) = self.multiplier.filter(|m| !m.is_zero()) {
            c.multiplier = m;
        }
        c
    }
}

/// `POST /iserver/contract/rules`. Only the fields the engine uses are
/// typed; the rest stays in `extra`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ContractRules {
    /// `algoEligible`: IB algos can be used on this contract.
    #[serde(default, rename = "algoEligible", deserialize_with = "lenient_bool")]
    pub algo_eligible: bool,
    /// `overnightEligible`: trading outside regular hours is permitted.
    #[serde(
        default,
        rename = "overnightEligible",
        deserialize_with = "lenient_bool"
    )]
    pub overnight_eligible: bool,
    /// `canTradeAcctIds`: the accounts permitted to trade the contract.
    #[serde(default, rename = "canTradeAcctIds")]
    pub can_trade_acct_ids: Vec<String>,
    /// `orderTypes`: order types allowed for ordinary quantities, lower case
    /// (`limit`, `stop_limit`, `trailing_stop`, ...; see
    /// [`crate::spelling::rules_order_type`]).
    #[serde(default, rename = "orderTypes")]
    pub order_types: Vec<String>,
    /// `orderTypesOutside`: order types allowed outside regular trading hours,
    /// same spelling as `orderTypes`.
    #[serde(default, rename = "orderTypesOutside")]
    pub order_types_outside: Vec<String>,
    /// `defaultSize`: the default order quantity.
    #[serde(default, rename = "defaultSize", deserialize_with = "opt_decimal")]
    pub default_size: Option<Decimal>,
    /// `sizeIncrement`: the quantity step.
    #[serde(default, rename = "sizeIncrement", deserialize_with = "opt_decimal")]
    pub size_increment: Option<Decimal>,
    /// `increment`: the minimum price increment (the tick).
    #[serde(default, rename = "increment", deserialize_with = "opt_decimal")]
    pub increment: Option<Decimal>,
    /// `forceOrderPreview`: an order must be previewed before submission.
    #[serde(
        default,
        rename = "forceOrderPreview",
        deserialize_with = "lenient_bool"
    )]
    pub force_order_preview: bool,
    /// `tifTypes`: allowed times in force, each `"TIF/order types"`
    /// (`"IOC/MARKET,LIMIT,..."`, `"GTC/o,a"`).
    #[serde(default, rename = "tifTypes")]
    pub tif_types: Vec<String>,
    /// Why rules could not be retrieved; null when they were.
    #[serde(default)]
    pub error: Option<String>,
    /// Every other field of the response, untouched (`ibAlgoTypes`,
    /// `cqtTypes`, `incrementRules`, ...).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `/trsrv/secdef`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct TrsrvSecdefs {
    /// One entry per conid of the request.
    #[serde(default)]
    pub secdef: Vec<TrsrvSecdef>,
}

/// One contract of `/trsrv/secdef`: the source of the engine's
/// [`Contract`] (see [`TrsrvSecdef::contract`]).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TrsrvSecdef {
    /// The contract id.
    pub conid: Conid,
    /// Currency the contract trades in.
    #[serde(default)]
    pub currency: Option<String>,
    /// Company or instrument name (`APPLE INC`).
    #[serde(default)]
    pub name: Option<String>,
    /// `assetClass`: the security type (`STK`, `OPT`, `FUT`, ...). Event
    /// contracts come as `OPT`; `isEventContract` tells them apart.
    #[serde(default, rename = "assetClass")]
    pub asset_class: Option<String>,
    /// The ticker; the engine's symbol when present.
    #[serde(default)]
    pub ticker: Option<String>,
    /// `listingExchange`: primary exchange (`NASDAQ`, `FORECASTX`).
    #[serde(default, rename = "listingExchange")]
    pub listing_exchange: Option<String>,
    /// `allExchanges`: comma-separated exchanges the contract trades on.
    #[serde(default, rename = "allExchanges")]
    pub all_exchanges: Option<String>,
    /// `countryCode`: where the contract trades (`US`).
    #[serde(default, rename = "countryCode")]
    pub country_code: Option<String>,
    /// Expiry of a derivative; null for instruments without one.
    #[serde(default)]
    pub expiry: Option<String>,
    /// `putOrCall`: `P` or `C` for options (for event contracts, `C` is YES and
    /// `P` is NO); null otherwise.
    #[serde(default, rename = "putOrCall")]
    pub put_or_call: Option<String>,
    /// The strike; the spec sends `"0"` for stocks.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub strike: Option<Decimal>,
    /// Contract multiplier; `0.0` for stocks, which reads as none (1).
    #[serde(default, deserialize_with = "opt_decimal")]
    pub multiplier: Option<Decimal>,
    /// `undConid`: the underlying's conid; `0` when there is none.
    #[serde(default, rename = "undConid", deserialize_with = "opt_i64")]
    pub und_conid: Option<i64>,
    /// `isEventContract`: a ForecastEx or CME event contract. Absent is not
    /// an event contract.
    #[serde(default, rename = "isEventContract")]
    pub is_event_contract: Option<bool>,
    /// `incrementRules`: the price grid, one rule per price band. The spec
    /// warns it is not exact for every exchange (`/iserver/contract/rules` is).
    #[serde(default, rename = "incrementRules")]
    pub increment_rules: Vec<IncrementRule>,
}

/// A price increment from `lowerEdge` up.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct IncrementRule {
    /// `lowerEdge`: the price from which this increment applies.
    #[serde(default, rename = "lowerEdge", deserialize_with = "opt_decimal")]
    pub lower_edge: Option<Decimal>,
    /// The tick size from `lowerEdge` up.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub increment: Option<Decimal>,
}

impl TrsrvSecdef {
    /// The engine's contract: what risk (security type, ForecastEx sell
    /// refusal, notional with the multiplier) and the order ticket need.
    /// Event contracts keep their listing exchange (`FORECASTX`); the rest
    /// route through SMART. The tick is the first increment rule's.
    pub fn contract(&self) -> Contract {
        let symbol = self
            .ticker
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| self.conid.to_string());
        let mut c = Contract::stock(self.conid, symbol);
        let asset = self.asset_class.as_deref().unwrap_or("STK");
        c.sec_type = if self.is_event_contract == Some(true) {
            SecType::EventContract
        } else {
            serde_json::from_value(serde_json::Value::String(asset.to_owned()))
                .unwrap_or(SecType::Other(asset.to_owned()))
        };
        if c.sec_type == SecType::EventContract {
            if let Some(x) = self.listing_exchange.clone().filter(|x| !x.is_empty()) {
                c.exchange = x;
            }
        }
        if let Some(ccy) = self.currency.clone().filter(|x| !x.is_empty()) {
            c.currency = ccy;
        }
        if let Some(m) = self.multiplier.filter(|m| *m > Decimal::ZERO) {
            c.multiplier = m;
        }
        if let Some(t) = self
            .increment_rules
            .first()
            .and_then(|r| r.increment)
            .filter(|t| *t > Decimal::ZERO)
        {
            c.tick_size = t;
        }
        c
    }
}

/// `/trsrv/stocks`: symbol -> issuers, each with its listings.
pub type StocksBySymbol = BTreeMap<String, Vec<StockIssuer>>;

/// One issuer of a symbol in `/trsrv/stocks`: one symbol can name several
/// (`AAPL` is Apple Inc. and also an `LS 1X AAPL` ETF).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct StockIssuer {
    /// Issuer name (`APPLE INC`, `LS 1X AAPL`).
    #[serde(default)]
    pub name: Option<String>,
    /// `assetClass` (`STK`).
    #[serde(default, rename = "assetClass")]
    pub asset_class: Option<String>,
    /// The issuer's listings, typically one per primary exchange or currency.
    #[serde(default)]
    pub contracts: Vec<StockListing>,
}

/// One listing of a [`StockIssuer`]: a conid on its primary exchange.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StockListing {
    /// The listing's contract id.
    pub conid: Conid,
    /// Primary exchange of the listing (`NASDAQ`, `MEXI`).
    #[serde(default)]
    pub exchange: Option<String>,
    /// `isUS`: the listing is a US one.
    #[serde(default, rename = "isUS", deserialize_with = "lenient_bool")]
    pub is_us: bool,
}

/// `/trsrv/futures`: symbol -> contracts.
pub type FuturesBySymbol = BTreeMap<String, Vec<FutureContract>>;

/// One non-expired future of `/trsrv/futures`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FutureContract {
    /// The future's contract id.
    pub conid: Conid,
    /// The requested symbol (`ES`).
    #[serde(default)]
    pub symbol: Option<String>,
    /// `underlyingConid`: the future's underlying (the index or commodity).
    #[serde(default, rename = "underlyingConid", deserialize_with = "opt_i64")]
    pub underlying_conid: Option<i64>,
    /// `expirationDate`: expiry as `YYYYMMDD` (a number on the wire).
    #[serde(default, rename = "expirationDate", deserialize_with = "opt_string")]
    pub expiration_date: Option<String>,
    /// `ltd`: last trading day as `YYYYMMDD` (a number on the wire).
    #[serde(default, deserialize_with = "opt_string")]
    pub ltd: Option<String>,
}

/// One entry of `/trsrv/secdef/schedule`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct TradingSchedule {
    /// Exchange parameter id (`p102082`).
    #[serde(default)]
    pub id: Option<String>,
    /// `tradeVenueId`: the trade venue of the exchange parameter.
    #[serde(default, rename = "tradeVenueId")]
    pub trade_venue_id: Option<String>,
    /// IANA time zone of every time in the schedule (`America/New_York`);
    /// [`TradingSchedule::to_hours`] assumes New York when absent.
    #[serde(default)]
    pub timezone: Option<String>,
    /// One entry per date; the spec promises at least one trading time each.
    #[serde(default)]
    pub schedules: Vec<ScheduleDay>,
}

/// One date of a [`TradingSchedule`].
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ScheduleDay {
    /// `clearingCycleEndTime`: end of the clearing cycle, `HHMM` (`"2000"`).
    #[serde(default, rename = "clearingCycleEndTime")]
    pub clearing_cycle_end_time: Option<String>,
    /// `tradingScheduleDate`: `YYYYMMDD`. `20000101` ... `20000107` stand for
    /// every Saturday ... Friday; any other date stands for itself. A day
    /// without it is skipped.
    #[serde(
        default,
        rename = "tradingScheduleDate",
        deserialize_with = "opt_string"
    )]
    pub trading_schedule_date: Option<String>,
    /// Liquid hours, present only when they differ from the whole trading day.
    #[serde(default)]
    pub sessions: Vec<ScheduleSession>,
    /// `tradingtimes` (lower case on the wire): the whole trading day,
    /// extended hours included.
    #[serde(default)]
    pub tradingtimes: Vec<ScheduleSession>,
}

/// One session of a [`ScheduleDay`]: `HHMM` times in the schedule's zone.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ScheduleSession {
    /// `openingTime`, `HHMM` (`"0930"`).
    #[serde(default, rename = "openingTime", deserialize_with = "opt_string")]
    pub opening_time: Option<String>,
    /// `closingTime`, `HHMM` (`"1600"`). A session without both times is
    /// skipped.
    #[serde(default, rename = "closingTime", deserialize_with = "opt_string")]
    pub closing_time: Option<String>,
    /// `LIQUID` when the whole trading day is liquid hours.
    #[serde(default)]
    pub prop: Option<String>,
    /// `cancelDayOrders`: `"Y"` when day orders are cancelled at this close.
    #[serde(default, rename = "cancelDayOrders")]
    pub cancel_day_orders: Option<String>,
}

/// `/iserver/secdef/strikes`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Strikes {
    /// Call strikes of the requested month, ascending as sent. Empty unless
    /// `/iserver/secdef/search` was called for the underlying first.
    #[serde(default, deserialize_with = "decimals")]
    pub call: Vec<Decimal>,
    /// Put strikes, as `call`.
    #[serde(default, deserialize_with = "decimals")]
    pub put: Vec<Decimal>,
}

// ----------------------------------------------------------- event contracts

/// One node of `/trsrv/event/category-tree` (keyed by category id).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct EventCategory {
    /// Display name (`Economic Indicators`).
    #[serde(default)]
    pub label: Option<String>,
    /// `parentId`: the parent category; absent on the top level. The tree is
    /// three levels deep.
    #[serde(default, rename = "parentId")]
    pub parent_id: Option<String>,
    /// The markets of a leaf (level-3) category; empty elsewhere.
    #[serde(default)]
    pub markets: Vec<EventMarket>,
}

/// A ForecastEx market: a group of event contracts asking the same form of
/// question, listed on one (artificial) underlying.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct EventMarket {
    /// Market name (`US Industrial Production`).
    #[serde(default)]
    pub name: Option<String>,
    /// Market symbol (`USIP`).
    #[serde(default)]
    pub symbol: Option<String>,
    /// Exchange (`FORECASTX`).
    #[serde(default)]
    pub exchange: Option<String>,
    /// The market's underlying conid: the `market` parameter of
    /// `/trsrv/event/contracts`.
    pub conid: Conid,
}

/// `/trsrv/event/contracts`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct EventContracts {
    /// Every tradable contract of the market: one YES and one NO per strike.
    #[serde(default)]
    pub contracts: Vec<EventContract>,
}

/// One event contract of `/trsrv/event/contracts`: the YES (call) or NO
/// (put) side of one strike. See [`EventContract::record`].
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct EventContract {
    /// This side's own contract id (YES and NO have one each).
    pub conid: Conid,
    /// Display name (`"HORC Nov'26 Democratic"`).
    #[serde(default)]
    pub name: Option<String>,
    /// The market's region or topic (`United States`).
    #[serde(default)]
    pub market: Option<String>,
    /// `putOrCall`: `C` is YES, `P` is NO.
    #[serde(default, rename = "putOrCall")]
    pub put_or_call: Option<String>,
    /// Resolution date, `YYYYMMDD`: when the outcome is published.
    #[serde(default, deserialize_with = "opt_string")]
    pub expiration: Option<String>,
    /// Currency of price and payout.
    #[serde(default)]
    pub currency: Option<String>,
    /// `lastTradeMillis`: when trading stops, epoch milliseconds.
    #[serde(default, rename = "lastTradeMillis", deserialize_with = "opt_i64")]
    pub last_trade_ms: Option<i64>,
    /// Exchange (`FORECASTX`).
    #[serde(default)]
    pub exchange: Option<String>,
    /// `priceIncrement`: the tick size (`0.01`).
    #[serde(default, rename = "priceIncrement", deserialize_with = "opt_decimal")]
    pub price_increment: Option<Decimal>,
    /// `underlyingConid`: the market's artificial underlying. YES and NO of a
    /// strike share it.
    #[serde(default, rename = "underlyingConid", deserialize_with = "opt_i64")]
    pub underlying_conid: Option<i64>,
    /// `underlyingSymbol`: the market symbol (`HORC`).
    #[serde(default, rename = "underlyingSymbol")]
    pub underlying_symbol: Option<String>,
    /// The strike value. Numeric on the wire even when the question is not
    /// (the label says what it means).
    #[serde(default, deserialize_with = "opt_decimal")]
    pub strike: Option<Decimal>,
    /// `strikeLabel`: what the strike means in words (a candidate's name, a
    /// rate).
    #[serde(default, rename = "strikeLabel")]
    pub strike_label: Option<String>,
    /// `shortDescription`: options-style description
    /// (`"HORC Jan04'27 1.0 YES @FORECASTX"`).
    #[serde(default, rename = "shortDescription")]
    pub short_description: Option<String>,
    /// Category ids (`g17502`) the contract sits under in the category tree.
    #[serde(default)]
    pub categories: Vec<String>,
    /// What one contract pays in the money (`"1"`).
    #[serde(default, rename = "eventFixedPayout", deserialize_with = "opt_decimal")]
    pub payout: Option<Decimal>,
}

impl EventContract {
    /// The engine's side of a strike: the fields netting needs, checked. A
    /// record without a side (`putOrCall`), underlying or strike cannot be
    /// paired and is an error, not a guess.
    pub fn record(&self) -> Result<StrikeSide, NettingError> {
        let missing = |field| NettingError::Incomplete {
            conid: self.conid,
            field,
        };
        Ok(StrikeSide {
            conid: self.conid,
            underlying_conid: Conid(
                self.underlying_conid
                    .ok_or_else(|| missing("underlyingConid"))?,
            ),
            strike: self.strike.ok_or_else(|| missing("strike"))?,
            right: self
                .put_or_call
                .as_deref()
                .ok_or_else(|| missing("putOrCall"))?
                .parse()?,
            strike_label: self.strike_label.clone(),
            expiration: self.expiration.clone(),
            payout: self.payout,
        })
    }
}

impl EventContracts {
    /// The YES/NO pairing of a market's contracts: what
    /// [`engine::strategy::Context::exit_event`] and the store's netting need.
    pub fn pairing(&self) -> Result<Pairing, NettingError> {
        Pairing::from_records(&self.records()?)
    }

    /// Every contract as the engine's [`StrikeSide`] (what the store
    /// keeps), or the first that cannot be read.
    pub fn records(&self) -> Result<Vec<StrikeSide>, NettingError> {
        self.contracts.iter().map(EventContract::record).collect()
    }
}

// ----------------------------------------------------------------- orders

/// One order of `/iserver/account/orders`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct LiveOrder {
    /// `acct`: the account the order is in.
    #[serde(default)]
    pub acct: Option<String>,
    /// The contract id.
    pub conid: Conid,
    /// `orderId`: the gateway's order id (a number on the wire). Optional so
    /// that a listing row without it still decodes; the caller decides.
    #[serde(rename = "orderId", deserialize_with = "opt_string")]
    pub order_id: Option<String>,
    /// The ticker.
    #[serde(default)]
    pub ticker: Option<String>,
    /// `secType` (`STK`, `OPT`, ...).
    #[serde(default, rename = "secType")]
    pub sec_type: Option<String>,
    /// `orderDesc`: human-readable summary (`"Sold 5 Market, GTC"`).
    #[serde(default, rename = "orderDesc")]
    pub order_desc: Option<String>,
    /// `remainingQuantity`: what is left to fill.
    #[serde(
        default,
        rename = "remainingQuantity",
        deserialize_with = "opt_decimal"
    )]
    pub remaining_quantity: Option<Decimal>,
    /// `filledQuantity`: what has filled.
    #[serde(default, rename = "filledQuantity", deserialize_with = "opt_decimal")]
    pub filled_quantity: Option<Decimal>,
    /// `totalSize`: the order's quantity. Not in the spec's field list, but in
    /// its example.
    #[serde(default, rename = "totalSize", deserialize_with = "opt_decimal")]
    pub total_size: Option<Decimal>,
    /// `status`, spelled `Submitted`, `PreSubmitted`, `Filled`, ... (see
    /// [`crate::spelling::order_status`]).
    #[serde(default)]
    pub status: Option<String>,
    /// The current type, spelled `Limit`, `Stop Limit`... (see
    /// [`crate::spelling`]).
    #[serde(default, rename = "orderType")]
    pub order_type: Option<String>,
    /// The type as placed, spelled `LIMIT`, `STOP_LIMIT`...: read when
    /// `orderType` is missing.
    #[serde(default, rename = "origOrderType")]
    pub orig_order_type: Option<String>,
    /// `timeInForce` (`GTC`, `DAY`, ...).
    #[serde(default, rename = "timeInForce")]
    pub time_in_force: Option<String>,
    /// `side`: `BUY` or `SELL`.
    #[serde(default)]
    pub side: Option<String>,
    /// `avgPrice`: average fill price (a string on the wire).
    #[serde(default, rename = "avgPrice", deserialize_with = "opt_decimal")]
    pub avg_price: Option<Decimal>,
    /// `price`: what the order ticket's `price` means for its type (the limit
    /// price, or the stop price of a stop order).
    #[serde(default, deserialize_with = "opt_decimal")]
    pub price: Option<Decimal>,
    /// `auxPrice`: the stop price of a stop-limit order (the second price of
    /// a trailing limit order).
    #[serde(default, rename = "auxPrice", deserialize_with = "opt_decimal")]
    pub aux_price: Option<Decimal>,
    /// `order_ref`: the cOID the order was placed with (ibflow's client order
    /// id); absent for orders placed without one.
    #[serde(default)]
    pub order_ref: Option<String>,
    /// `lastExecutionTime_r`: the last fill's time, epoch milliseconds.
    #[serde(default, rename = "lastExecutionTime_r", deserialize_with = "opt_i64")]
    pub last_execution_ms: Option<i64>,
}

impl LiveOrder {
    /// The status as the engine's enum, or an error naming the value.
    pub fn order_status(&self) -> Result<OrderStatus, UnknownValue> {
        spelling::order_status(self.status.as_deref().unwrap_or(""))
    }
    /// The side as the engine's enum, or an error naming the value.
    pub fn side(&self) -> Result<Side, UnknownValue> {
        spelling::side(self.side.as_deref().unwrap_or(""))
    }

    /// [`LiveOrder::order_status`] as a [`LiveOrderError`] naming the order.
    pub fn status_of_order(&self) -> Result<OrderStatus, LiveOrderError> {
        self.order_status()
            .map_err(|e| self.error("status", e.to_string()))
    }

    /// The order type: `orderType`, else `origOrderType`.
    pub fn order_type(&self) -> Result<OrderType, LiveOrderError> {
        let (field, text) = match (&self.order_type, &self.orig_order_type) {
            (Some(t), _) if !t.trim().is_empty() => ("orderType", t),
            (_, Some(t)) => ("origOrderType", t),
            _ => return Err(self.error("orderType", "missing".into())),
        };
        spelling::order_type(text).map_err(|e| self.error(field, e.to_string()))
    }

    fn error(&self, field: &'static str, reason: String) -> LiveOrderError {
        LiveOrderError {
            order_id: self.order_id.clone(),
            order_ref: self.order_ref.clone(),
            field,
            reason,
        }
    }

    /// The engine request this listed order describes (engine id 0): what
    /// a broker that did not place it (a restarted bot, an order from TWS)
    /// knows of it.
    ///
    /// Every field the engine needs must be readable; a field that is not
    /// is an error naming the order and the field, never a guess and never
    /// a silently skipped order. Choices:
    /// * quantity is `totalSize`, else `remainingQuantity` + `filledQuantity`;
    /// * `price`/`auxPrice` mean what they mean on the order ticket (see
    ///   [`crate::order_ticket`]); a limit, stop or stop-limit order without
    ///   its price(s) is an error. Trailing orders may list no price (their
    ///   stop moves), and the listing carries no trailing amount, so
    ///   `trail` is `None`;
    /// * `timeInForce` is required (a DAY order read as GTC would outlive
    ///   its day in the engine's books);
    /// * `order_ref` (the cOID) becomes `client_order_id`; parent, OCA
    ///   group and `outsideRTH` are not listed and stay unset.
    pub fn to_request(&self) -> Result<OrderRequest, LiveOrderError> {
        let order_type = self.order_type()?;
        let side = self.side().map_err(|e| self.error("side", e.to_string()))?;
        let quantity = match (self.total_size, self.remaining_quantity) {
            (Some(q), _) => q,
            (None, Some(r)) => r + self.filled_quantity.unwrap_or_default(),
            (None, None) => return Err(self.error("totalSize", "missing".into())),
        };
        let tif = match self.time_in_force.as_deref() {
            Some(t) => spelling::tif(t).map_err(|e| self.error("timeInForce", e.to_string()))?,
            None => return Err(self.error("timeInForce", "missing".into())),
        };
        let need = |field: &'static str, v: Option<Decimal>| {
            v.map(Some).ok_or_else(|| {
                self.error(
                    field,
                    format!(
                        "missing for a {} order",
                        spelling::listed_order_type(order_type)
                    ),
                )
            })
        };
        let (limit_price, stop_price) = match order_type {
            OrderType::Market => (None, None),
            OrderType::MidPrice => (self.price, None),
            OrderType::Limit => (need("price", self.price)?, None),
            OrderType::Stop => (None, need("price", self.price.or(self.aux_price))?),
            OrderType::StopLimit => (
                need("price", self.price)?,
                need("auxPrice", self.aux_price)?,
            ),
            OrderType::Trail => (None, self.price.or(self.aux_price)),
            OrderType::TrailLimit => (self.price, self.aux_price),
        };
        Ok(OrderRequest {
            id: OrderId(0),
            conid: self.conid,
            side,
            order_type,
            quantity,
            limit_price,
            stop_price,
            trail: None,
            tif,
            outside_rth: false,
            client_order_id: self.order_ref.clone().unwrap_or_default(),
            parent: None,
            oca_group: None,
        })
    }
}

/// Why a live order (`/iserver/account/orders` or `sor`) cannot be read as
/// an engine order: names the order (gateway id and cOID) and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "live order {} (cOID {}): {field}: {reason}",
    order_id.as_deref().unwrap_or("without orderId"),
    order_ref.as_deref().unwrap_or("none")
)]
pub struct LiveOrderError {
    /// The gateway's order id, when the row had one.
    pub order_id: Option<String>,
    /// The cOID, when the row had one.
    pub order_ref: Option<String>,
    /// The wire field at fault (`orderType`, `timeInForce`, `price`, ...).
    pub field: &'static str,
    /// What is wrong with it (`missing`, or the unknown spelling).
    pub reason: String,
}

/// `/iserver/account/orders`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct LiveOrders {
    /// At most 1000 orders: today's orders of the selected account, filled
    /// and cancelled ones included.
    #[serde(default)]
    pub orders: Vec<LiveOrder>,
    /// The gateway marks the answer as a snapshot of the account's orders.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub snapshot: bool,
}

/// `/iserver/account/order/status/{orderId}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OrderStatusInfo {
    /// `order_id`: the gateway's order id.
    #[serde(deserialize_with = "opt_string")]
    pub order_id: Option<String>,
    /// The contract id.
    pub conid: Conid,
    /// The ticker.
    #[serde(default)]
    pub symbol: Option<String>,
    /// Side, one letter (`B`, `S`) in the spec's example.
    #[serde(default)]
    pub side: Option<String>,
    /// `size`: "the quantity of the order" per the spec; its filled example
    /// shows `"0.0"` beside a `total_size` of `"5.0"`, so it reads as what
    /// is still working.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub size: Option<Decimal>,
    /// `total_size`: the order's full quantity.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub total_size: Option<Decimal>,
    /// `cum_fill`: quantity filled so far.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub cum_fill: Option<Decimal>,
    /// The account the order was placed for.
    #[serde(default)]
    pub account: Option<String>,
    /// `order_type`, spelled `MARKET`, `LIMIT`, ... (the placed spelling).
    #[serde(default)]
    pub order_type: Option<String>,
    /// `order_status`: `Submitted`, `Filled`, ... (see
    /// [`OrderStatusInfo::status`]).
    #[serde(default)]
    pub order_status: Option<String>,
    /// Time in force (`DAY`, `GTC`).
    #[serde(default)]
    pub tif: Option<String>,
    /// `average_price`: average fill price.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub average_price: Option<Decimal>,
    /// `limit_price`, for orders that have one.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub limit_price: Option<Decimal>,
    /// `stop_price`, for orders that have one.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub stop_price: Option<Decimal>,
    /// `cannot_cancel_order`: a cancel would be refused (filled, or executing).
    #[serde(default, deserialize_with = "lenient_bool")]
    pub cannot_cancel_order: bool,
    /// `order_not_editable`: a modify would be refused.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub order_not_editable: bool,
    /// `order_time`: when the order was placed, `YYMMDDHHmmss` UTC.
    #[serde(default)]
    pub order_time: Option<String>,
}

impl OrderStatusInfo {
    /// The status as the engine's enum, or an error naming the value.
    pub fn status(&self) -> Result<OrderStatus, UnknownValue> {
        spelling::order_status(self.order_status.as_deref().unwrap_or(""))
    }
}

/// How far back `/iserver/account/trades` reaches: its `days` parameter
/// is at most 7 (the spec). Executions older than that cannot be fetched
/// again; a restart after a longer absence has a gap.
pub const TRADES_WINDOW_DAYS: u8 = 7;

/// One trade record: an element of `/iserver/account/trades`, of a
/// websocket `str` message's `args`, and of an executions import file (a
/// saved trades response or `str` capture). All three are read by this one
/// type with one set of rules ([`Trade::to_execution`]).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Trade {
    /// String or number, trimmed.
    #[serde(deserialize_with = "string")]
    pub execution_id: String,
    /// Absent in some records: then `conidEx` names the contract.
    #[serde(default)]
    pub conid: Option<Conid>,
    /// `conidEx`: `conid` or `conid@EXCHANGE` (the spec: "the conidEx of the
    /// order if specified. Otherwise returns conid"); read when `conid` is
    /// absent.
    #[serde(default, rename = "conidEx", deserialize_with = "opt_string")]
    pub conid_ex: Option<String>,
    /// Optional here so that a record's missing fields are reported by
    /// [`Trade::to_execution`] in one order (side, conid, account, size,
    /// price), whatever the source.
    #[serde(default, deserialize_with = "opt_string")]
    pub side: Option<String>,
    /// Quantity traded; the side carries the direction, so a signed size is
    /// read by its magnitude. May carry thousands separators.
    #[serde(default, deserialize_with = "opt_grouped_decimal")]
    pub size: Option<Decimal>,
    /// Fill price (a string on the wire).
    #[serde(default, deserialize_with = "opt_grouped_decimal")]
    pub price: Option<Decimal>,
    /// Commission charged for this fill; absent is zero.
    #[serde(default, deserialize_with = "opt_grouped_decimal")]
    pub commission: Option<Decimal>,
    /// `net_amount`: the amount traded. The `str` topic's description says the
    /// multiplier is applied; when absent, [`Trade::to_execution`] computes
    /// size * price without it.
    #[serde(default, deserialize_with = "opt_grouped_decimal")]
    pub net_amount: Option<Decimal>,
    /// The account the fill is booked to.
    #[serde(default, deserialize_with = "opt_string")]
    pub account: Option<String>,
    /// `accountCode`: the same account; read when `account` is absent.
    #[serde(default, rename = "accountCode", deserialize_with = "opt_string")]
    pub account_code: Option<String>,
    /// The ticker.
    #[serde(default)]
    pub symbol: Option<String>,
    /// `order_ref`: the cOID of the order this fill belongs to; how ibflow
    /// finds its own order.
    #[serde(default, deserialize_with = "opt_string")]
    pub order_ref: Option<String>,
    /// Exchange the fill happened on (`ISLAND`).
    #[serde(default)]
    pub exchange: Option<String>,
    /// `trade_time`: `YYYYMMDD-HH:mm:ss` in UTC; read when `trade_time_r` is
    /// absent.
    #[serde(default, deserialize_with = "opt_string")]
    pub trade_time: Option<String>,
    /// `trade_time_r`: the fill time, epoch milliseconds.
    #[serde(default, deserialize_with = "opt_i64")]
    pub trade_time_r: Option<i64>,
    /// `sec_type` (`STK`, `OPT`, ...).
    #[serde(default)]
    pub sec_type: Option<String>,
}

/// Why a trade record is not an execution: the record's `execution_id`
/// (when it has one) and the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trade {}: {field}: {reason}", execution_id.as_deref().unwrap_or("without execution_id"))]
pub struct TradeError {
    /// The record's `execution_id`, when it had a non-empty one.
    pub execution_id: Option<String>,
    /// The field at fault, named as in the record (`side`, `conidEx`,
    /// `trade_time_r`, ...).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A non-empty trimmed string.
fn text(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Trade {
    /// Read one record from JSON (for records not decoded as part of a
    /// response body): a decode failure names the field it is in.
    pub fn from_value(v: &serde_json::Value) -> Result<Trade, TradeError> {
        let id = v
            .get("execution_id")
            .and_then(|x| match x {
                serde_json::Value::String(s) => Some(s.trim().to_owned()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|s| !s.is_empty());
        if !v.is_object() {
            return Err(TradeError {
                execution_id: None,
                field: "record".into(),
                reason: format!("a trade record must be an object, got {v}"),
            });
        }
        serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            // A missing field is reported at the record ("."): name it.
            let field = match inner.strip_prefix("missing field `") {
                Some(rest) => rest.trim_end_matches('`').to_owned(),
                None => path,
            };
            TradeError {
                execution_id: id,
                field,
                reason: inner,
            }
        })
    }

    /// [`Trade::from_value`] then [`Trade::to_execution`].
    pub fn execution_from_value(v: &serde_json::Value) -> Result<Execution, TradeError> {
        Trade::from_value(v)?.to_execution()
    }

    fn error(&self, field: &str, reason: impl Into<String>) -> TradeError {
        TradeError {
            execution_id: Some(self.execution_id.clone()),
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// The engine's execution. One set of rules for every source:
    ///
    /// * `execution_id`: required, non-empty (string or number).
    /// * `side`: any spelling of [`crate::spelling::exec_side`] (`B`, `S`,
    ///   `N` for ForecastEx netting, `BOT`/`SLD`, `BUY`/`SELL`); anything else
    ///   is an error, not a guess.
    /// * `conid`, else the conid part of `conidEx` (the spec: "the conidEx
    ///   of the order if specified. Otherwise returns conid", so it may be
    ///   `265598@SMART`).
    /// * account: `account`, else `accountCode` (the spec lists both on
    ///   both endpoints); neither is an error: a fill booked to no account
    ///   would misstate that account's positions.
    /// * `size`: unsigned (the side carries the direction), so a signed size
    ///   is read by its magnitude; zero is an error (no fill is of nothing).
    /// * numbers may be JSON numbers or strings, with thousands separators.
    /// * `net_amount`, when absent, is size * price (without a multiplier,
    ///   which the record does not carry); an overflow is an error.
    /// * `commission` absent is zero.
    /// * time: `trade_time_r` (epoch ms) when present (out of range is an
    ///   error), else `trade_time` (`YYYYMMDD-HH:mm:ss`, UTC per the spec).
    /// * `order_ref` trimmed; empty is none.
    pub fn to_execution(&self) -> Result<Execution, TradeError> {
        if self.execution_id.is_empty() {
            return Err(self.error("execution_id", "empty"));
        }
        let side = text(&self.side).ok_or_else(|| self.error("side", "missing"))?;
        let side = spelling::exec_side(side).map_err(|e| self.error("side", e.to_string()))?;
        let conid = match (self.conid, text(&self.conid_ex)) {
            (Some(c), _) => c,
            (None, Some(cx)) => {
                let head = cx.split('@').next().unwrap_or_default();
                head.trim().parse::<Conid>().map_err(|_| {
                    self.error("conidEx", format!("{cx:?} does not start with a conid"))
                })?
            }
            (None, None) => return Err(self.error("conid", "missing (and no conidEx)")),
        };
        let account = text(&self.account)
            .or(text(&self.account_code))
            .ok_or_else(|| self.error("account", "missing (and no accountCode)"))?
            .to_owned();
        let size = self
            .size
            .ok_or_else(|| self.error("size", "missing"))?
            .abs();
        let price = self.price.ok_or_else(|| self.error("price", "missing"))?;
        if size.is_zero() {
            return Err(self.error("size", "zero"));
        }
        let net_amount = match self.net_amount {
            Some(n) => n,
            None => size
                .checked_mul(price)
                .ok_or_else(|| self.error("net_amount", "size * price overflows"))?,
        };
        let time = match (self.trade_time_r, text(&self.trade_time)) {
            (Some(ms), _) => from_epoch_ms(ms)
                .ok_or_else(|| self.error("trade_time_r", format!("{ms} is out of range")))?,
            (None, Some(t)) => parse_trade_time(t).ok_or_else(|| {
                self.error("trade_time", format!("{t:?} is not YYYYMMDD-HH:mm:ss"))
            })?,
            (None, None) => return Err(self.error("trade_time", "missing (and no trade_time_r)")),
        };
        Ok(Execution {
            execution_id: self.execution_id.clone(),
            order_id: None,
            order_ref: text(&self.order_ref).map(str::to_owned),
            account,
            conid,
            side,
            size,
            price,
            commission: self.commission.unwrap_or_default(),
            net_amount,
            time,
        })
    }
}

/// `YYYYMMDD-HH:MM:SS` as UTC.
pub fn parse_trade_time(s: &str) -> Option<Timestamp> {
    chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y%m%d-%H:%M:%S")
        .ok()
        .map(|n| n.and_utc())
}

/// An order the gateway accepted (place, reply, modify).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct OrderAck {
    /// `order_id` (or `orderId`): the gateway's id, used to modify, cancel and
    /// follow the order.
    #[serde(default, alias = "orderId", deserialize_with = "opt_string")]
    pub order_id: Option<String>,
    /// `order_status` at the time of the answer (`Submitted`, `PreSubmitted`,
    /// ...).
    #[serde(default)]
    pub order_status: Option<String>,
    /// `encrypt_message`: `"1"` when the message was encrypted, per the spec.
    #[serde(default)]
    pub encrypt_message: Option<String>,
    /// Set for bracket children: the parent's order id.
    #[serde(default, deserialize_with = "opt_string")]
    pub parent_order_id: Option<String>,
    /// `local_order_id`: not in the spec's answer; kept as sent when a
    /// gateway includes it.
    #[serde(default)]
    pub local_order_id: Option<String>,
}

/// A question the gateway asks before it transmits an order; answer it with
/// `IbkrClient::reply`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ReplyPrompt {
    /// The reply id: the path parameter of `POST /iserver/reply/{replyId}`.
    pub id: String,
    /// The warning text(s), for example a price that exceeds the percentage
    /// constraint.
    #[serde(default)]
    pub message: Vec<String>,
    /// `messageIds`: the warning codes (`o163`, `o354`, ...), which
    /// `/iserver/questions/suppress` accepts.
    #[serde(default, rename = "messageIds")]
    pub message_ids: Vec<String>,
    /// `isSuppressed`: the spec says this is always false.
    #[serde(default, rename = "isSuppressed", deserialize_with = "lenient_bool")]
    pub is_suppressed: bool,
}

/// A server prompt delivered by the `ntf` websocket topic, answered with
/// `POST /iserver/notification` ("Respond to a Server Prompt").
///
/// Assumption (the spec's `ntf` example shows only `id`, `text`, `title`
/// and `url`, while the answer needs `orderId`, `reqId` and one of an
/// `options` array): a prompt is an `ntf` whose `args` also carry
/// `orderId`, `reqId` and a non-empty `options` array; an `ntf` without
/// them is information only. `id` is the prompt's message id (`o354`...),
/// the same ids a reply policy lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ServerPrompt {
    /// The notification's id: what a reply policy matches.
    #[serde(default, deserialize_with = "string")]
    pub id: String,
    /// Headline.
    #[serde(default, deserialize_with = "string")]
    pub title: String,
    /// Body text.
    #[serde(default, deserialize_with = "string")]
    pub text: String,
    /// `orderId`: the order the prompt holds.
    #[serde(rename = "orderId", deserialize_with = "string")]
    pub order_id: String,
    /// `reqId`: the request the answer refers to.
    #[serde(rename = "reqId", deserialize_with = "string")]
    pub req_id: String,
    /// The answers offered (`["Yes", "No"]`); the reply sends one back
    /// verbatim.
    pub options: Vec<String>,
}

impl ServerPrompt {
    /// The prompt an `ntf` message's `args` carry, or `None` when it is
    /// information only (no `orderId`, `reqId` or `options`, or no option
    /// offered).
    pub fn from_args(args: &serde_json::Value) -> Option<ServerPrompt> {
        let p: ServerPrompt = serde_json::from_value(args.clone()).ok()?;
        (!p.options.is_empty() && !p.order_id.is_empty() && !p.req_id.is_empty()).then_some(p)
    }

    /// The option that says yes: the first one spelled `Yes`, `OK`,
    /// `Confirm`, `Accept` or `Transmit` (any case), else the first offered.
    pub fn yes(&self) -> &str {
        const YES: [&str; 5] = ["yes", "ok", "confirm", "accept", "transmit"];
        self.options
            .iter()
            .find(|o| YES.iter().any(|y| o.trim().eq_ignore_ascii_case(y)))
            .or_else(|| self.options.first())
            .map_or("", String::as_str)
    }

    /// The option that says no (`No`, `Cancel`, `Decline`, `Reject`), if
    /// one is offered: a prompt is never declined with a guess.
    pub fn no(&self) -> Option<&str> {
        const NO: [&str; 4] = ["no", "cancel", "decline", "reject"];
        self.options
            .iter()
            .find(|o| NO.iter().any(|n| o.trim().eq_ignore_ascii_case(n)))
            .map(String::as_str)
    }
}

/// The body of `POST /iserver/notification`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct NotificationAnswer {
    /// `orderId` of the prompt (an int in the spec).
    #[serde(rename = "orderId")]
    pub order_id: i64,
    /// `reqId` of the prompt.
    #[serde(rename = "reqId")]
    pub req_id: String,
    /// One of the prompt's `options`, verbatim.
    pub text: String,
}

/// The answer to place, reply and modify: either the orders went through,
/// or the gateway asks a question first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum PlaceOutcome {
    /// The gateway took the order(s): one ack per order (a bracket has one per
    /// leg).
    Acknowledged(Vec<OrderAck>),
    /// The gateway asks a question first: answer it with
    /// `POST /iserver/reply/{id}`; nothing is transmitted until then, and no
    /// other order may be placed meanwhile.
    Prompt(ReplyPrompt),
}

impl PlaceOutcome {
    /// Decode a body of place/reply/modify: an array of acks or prompts
    /// (a single object is accepted too).
    pub fn from_value(v: serde_json::Value) -> Result<PlaceOutcome, String> {
        let items = match v {
            serde_json::Value::Array(a) => a,
            o @ serde_json::Value::Object(_) => vec![o],
            other => return Err(format!("expected an array of orders, got {other}")),
        };
        let mut acks = Vec::with_capacity(items.len());
        for item in items {
            if item.get("id").is_some() && item.get("message").is_some() {
                let p: ReplyPrompt = serde_json::from_value(item).map_err(|e| e.to_string())?;
                return Ok(PlaceOutcome::Prompt(p));
            }
            acks.push(serde_json::from_value::<OrderAck>(item).map_err(|e| e.to_string())?);
        }
        Ok(PlaceOutcome::Acknowledged(acks))
    }
}

/// `DELETE /iserver/account/{acct}/order/{id}`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct CancelResponse {
    /// Confirmation text (`"Request was submitted"`).
    #[serde(default)]
    pub msg: Option<String>,
    /// The cancelled order's id (a number on the wire).
    #[serde(default, deserialize_with = "opt_string")]
    pub order_id: Option<String>,
    /// The order's conid; `-1` for an order cancelled at once on request.
    #[serde(default, deserialize_with = "opt_i64")]
    pub conid: Option<i64>,
    /// The order's account; null for an order cancelled at once on request.
    #[serde(default)]
    pub account: Option<String>,
}

/// One `current/change/after` triple of a whatif preview. Values are display
/// strings with thousands separators ("215,415,594"), kept as sent.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct WhatIfTriple {
    /// The value before the order.
    #[serde(default, deserialize_with = "opt_string")]
    pub current: Option<String>,
    /// What the order changes it by.
    #[serde(default, deserialize_with = "opt_string")]
    pub change: Option<String>,
    /// The value after the order.
    #[serde(default, deserialize_with = "opt_string")]
    pub after: Option<String>,
}

/// The `amount` object of a whatif preview: the order's cost, as display
/// strings with units (`"1,977.60 USD (10 Shares)"`, `"1 USD"`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct WhatIfAmount {
    /// Cost of the order itself.
    #[serde(default, deserialize_with = "opt_string")]
    pub amount: Option<String>,
    /// Commission of the order; [`WhatIf::commission`] reads it as a number.
    #[serde(default, deserialize_with = "opt_string")]
    pub commission: Option<String>,
    /// Cost with commission.
    #[serde(default, deserialize_with = "opt_string")]
    pub total: Option<String>,
}

/// `POST /iserver/account/{acct}/orders/whatif`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct WhatIf {
    /// The order's cost.
    #[serde(default)]
    pub amount: Option<WhatIfAmount>,
    /// Effect on equity.
    #[serde(default)]
    pub equity: Option<WhatIfTriple>,
    /// Effect on initial margin.
    #[serde(default)]
    pub initial: Option<WhatIfTriple>,
    /// Effect on maintenance margin.
    #[serde(default)]
    pub maintenance: Option<WhatIfTriple>,
    /// Effect on the position.
    #[serde(default)]
    pub position: Option<WhatIfTriple>,
    /// A warning the order would raise (for example no market data); null if
    /// none.
    #[serde(default)]
    pub warn: Option<String>,
    /// An error the order would raise; null if none.
    #[serde(default)]
    pub error: Option<String>,
}

impl WhatIf {
    /// The commission as a number: "1 USD" -> 1, "1,234.5 USD" -> 1234.5.
    pub fn commission(&self) -> Option<Decimal> {
        let s = self.amount.as_ref()?.commission.as_deref()?;
        let n: String = s
            .split_whitespace()
            .next()?
            .chars()
            .filter(|c| *c != ',')
            .collect();
        n.parse().ok()
    }
}

/// `/iserver/questions/suppress` and `/suppress/reset`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct StatusResponse {
    /// `"submitted"` when the request went through.
    #[serde(default)]
    pub status: Option<String>,
}

// -------------------------------------------------------------- portfolio

/// One entry of `/portfolio/{acct}/positions/{page}` (and `/portfolio2`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PortfolioPosition {
    /// `acctId`: the account holding the position.
    #[serde(default, rename = "acctId")]
    pub acct_id: Option<String>,
    /// The contract id (a string in `/portfolio2`'s example).
    pub conid: Conid,
    /// `contractDesc` (`description` in `/portfolio2`): the local symbol.
    #[serde(default, rename = "contractDesc", alias = "description")]
    pub contract_desc: Option<String>,
    /// The position's size, signed: negative is short. Required.
    #[serde(deserialize_with = "decimal")]
    pub position: Decimal,
    /// `mktPrice` (`marketPrice` in `/portfolio2`): current price of one unit.
    #[serde(
        default,
        rename = "mktPrice",
        alias = "marketPrice",
        deserialize_with = "opt_decimal"
    )]
    pub mkt_price: Option<Decimal>,
    /// `mktValue` (`marketValue` in `/portfolio2`): the position's value.
    #[serde(
        default,
        rename = "mktValue",
        alias = "marketValue",
        deserialize_with = "opt_decimal"
    )]
    pub mkt_value: Option<Decimal>,
    /// Currency the contract trades in.
    #[serde(default)]
    pub currency: Option<String>,
    /// `avgCost`: average cost per unit *times the multiplier*.
    #[serde(default, rename = "avgCost", deserialize_with = "opt_decimal")]
    pub avg_cost: Option<Decimal>,
    /// `avgPrice`: average price per unit, without the multiplier; preferred
    /// over `avgCost` by [`PortfolioPosition::to_position`].
    #[serde(default, rename = "avgPrice", deserialize_with = "opt_decimal")]
    pub avg_price: Option<Decimal>,
    /// `realizedPnl`: profit realized today through trades.
    #[serde(default, rename = "realizedPnl", deserialize_with = "opt_decimal")]
    pub realized_pnl: Option<Decimal>,
    /// `unrealizedPnl`: profit if the position were closed at `mktPrice`.
    #[serde(default, rename = "unrealizedPnl", deserialize_with = "opt_decimal")]
    pub unrealized_pnl: Option<Decimal>,
    /// Contract multiplier; null for stocks.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub multiplier: Option<Decimal>,
    /// `assetClass` (`secType` in `/portfolio2`): `STK`, `OPT`, ...
    #[serde(default, rename = "assetClass", alias = "secType")]
    pub asset_class: Option<String>,
}

impl PortfolioPosition {
    /// The engine's position. A missing or zero multiplier (stocks send
    /// null) is 1.
    pub fn to_position(&self) -> Position {
        let multiplier = self
            .multiplier
            .filter(|m| !m.is_zero())
            .unwrap_or(Decimal::ONE);
        Position {
            conid: self.conid,
            quantity: self.position,
            avg_price: self.avg_price.or(self.avg_cost).unwrap_or_default(),
            realized_pnl: self.realized_pnl.unwrap_or_default(),
            multiplier,
        }
    }
}

/// One value of `/portfolio/{acct}/summary` (keyed by name).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct SummaryValue {
    /// The numeric value of the key, when it has one (null when not needed).
    #[serde(default, deserialize_with = "opt_decimal")]
    pub amount: Option<Decimal>,
    /// Currency the value is in; null for non-monetary keys.
    #[serde(default)]
    pub currency: Option<String>,
    /// `isNull`: the value is unavailable.
    #[serde(default, rename = "isNull", deserialize_with = "lenient_bool")]
    pub is_null: bool,
    /// When the value was retrieved, epoch milliseconds in the spec's example.
    #[serde(default, deserialize_with = "opt_i64")]
    pub timestamp: Option<i64>,
    /// A non-numeric value (`"U1234567"` for `accountcode`), kept raw.
    #[serde(default)]
    pub value: Option<serde_json::Value>,
}

/// `/portfolio/{acct}/summary`: key -> value, 45 to 135 keys. Keys come
/// plain (all segments) and again with `-c` (commodities) and `-s`
/// (securities) suffixes.
pub type PortfolioSummary = BTreeMap<String, SummaryValue>;

/// One currency of `/portfolio/{acct}/ledger` (keyed by currency or BASE).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct LedgerEntry {
    /// The currency's symbol (`USD`); `BASE` for the base-currency totals.
    #[serde(default)]
    pub currency: Option<String>,
    /// Total cash in this currency.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub cashbalance: Option<Decimal>,
    /// Settled cash in this currency.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub settledcash: Option<Decimal>,
    /// Net liquidation value of what is held in this currency.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub netliquidationvalue: Option<Decimal>,
    /// Unrealized P&L of positions in this currency.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub unrealizedpnl: Option<Decimal>,
    /// Realized P&L of positions in this currency.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub realizedpnl: Option<Decimal>,
    /// Market value of stock positions in this currency.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub stockmarketvalue: Option<Decimal>,
    /// Exchange rate from the base currency to this one.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub exchangerate: Option<Decimal>,
    /// Dividends held in this currency.
    #[serde(default, deserialize_with = "opt_decimal")]
    pub dividends: Option<Decimal>,
    /// Interest in this currency (the spec calls it the margin interest rate;
    /// its example shows an amount).
    #[serde(default, deserialize_with = "opt_decimal")]
    pub interest: Option<Decimal>,
    /// When the values were retrieved, epoch time as sent (seconds in the
    /// spec's example, unlike the summary's milliseconds).
    #[serde(default, deserialize_with = "opt_i64")]
    pub timestamp: Option<i64>,
}

/// `/portfolio/{acct}/ledger`: currency (or `BASE`) -> entry.
pub type Ledger = BTreeMap<String, LedgerEntry>;

/// A snapshot row of `/iserver/marketdata/snapshot`: decoded by
/// [`crate::smd`], the same decoder as websocket `smd` messages.
pub type SnapshotRow = serde_json::Map<String, serde_json::Value>;

/// A BookTrader price ladder: one websocket `sbd` message
/// (`{"topic": "sbd+ACCT+CONID", "data": [{"row", "focus", "price", "bid",
/// "ask"}, ...]}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PriceLadder {
    /// The account of the topic (`sbd+ACCOUNT+CONID`).
    pub account: String,
    /// The contract of the topic.
    pub conid: Conid,
    /// In the order sent (the gateway sends row 0 first).
    pub rows: Vec<LadderRow>,
}

/// One price level of a [`PriceLadder`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LadderRow {
    /// The row number the gateway gave this level.
    pub row: i64,
    /// The row of the last traded price.
    pub focus: bool,
    /// The price of this level; `None` when the row had no (or an empty)
    /// price.
    pub price: Option<Decimal>,
    /// The size of the last trade at this price: the spec's `"size @ price"`
    /// form of `price`.
    pub last_size: Option<Decimal>,
    /// Bid size at this price (`bid`); `K`/`M` suffixes expanded.
    pub bid_size: Option<Decimal>,
    /// Ask size at this price (`ask`); `K`/`M` suffixes expanded.
    pub ask_size: Option<Decimal>,
}

/// Why an `sbd` message is not a price ladder. A row that cannot be read
/// fails the whole message: a ladder with a silently missing level would
/// misstate the book.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LadderError {
    /// The message is not a JSON object.
    #[error("price ladder message is not a JSON object")]
    NotObject,
    /// The topic is not `sbd+ACCOUNT+CONID[+EXCHANGE]`, or its conid is not a
    /// number.
    #[error("price ladder topic {0:?} is not sbd+ACCOUNT+CONID")]
    Topic(String),
    /// No `data` array.
    #[error("price ladder has no data array")]
    NoData,
    /// A row could not be read; the whole message is refused.
    #[error("price ladder row {index}: {message}")]
    Row {
        /// Position of the row in `data`, from 0.
        index: usize,
        /// What is wrong with the row, naming the field.
        message: String,
    },
}

/// Decode an `sbd` message. Numbers may be JSON numbers or strings (with
/// thousands separators, sizes also with a `K`/`M` suffix); empty strings
/// and nulls are absent values; unknown fields are ignored. The topic may
/// carry the exchange of the request (`sbd+ACCT+CONID+EXCHANGE`).
pub fn parse_price_ladder(v: &serde_json::Value) -> Result<PriceLadder, LadderError> {
    let o = v.as_object().ok_or(LadderError::NotObject)?;
    let topic = o
        .get("topic")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let bad_topic = || LadderError::Topic(topic.to_owned());
    let parts: Vec<&str> = topic.split('+').map(str::trim).collect();
    let (account, conid) = match parts.as_slice() {
        ["sbd", a, c] | ["sbd", a, c, _] if !a.is_empty() => (*a, c),
        _ => return Err(bad_topic()),
    };
    let conid: Conid = conid.parse().map_err(|_| bad_topic())?;
    let data = o
        .get("data")
        .and_then(serde_json::Value::as_array)
        .ok_or(LadderError::NoData)?;
    let rows = data
        .iter()
        .enumerate()
        .map(|(index, r)| ladder_row(r).map_err(|message| LadderError::Row { index, message }))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PriceLadder {
        account: account.to_owned(),
        conid,
        rows,
    })
}

fn ladder_row(v: &serde_json::Value) -> Result<LadderRow, String> {
    let o = v
        .as_object()
        .ok_or_else(|| format!("{v} is not an object"))?;
    let field = |k: &str, size: bool| -> Result<Option<Decimal>, String> {
        ladder_number(o.get(k), size).map_err(|e| format!("{k}: {e}"))
    };
    let row = field("row", false)?.ok_or("row is missing")?;
    if !row.fract().is_zero() {
        return Err(format!("row: {row} is not an integer"));
    }
    let row = i64::try_from(row).map_err(|_| format!("row: {row} is out of range"))?;
    let focus = match o.get("focus") {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(_) => !field("focus", false)?.unwrap_or_default().is_zero(),
    };
    let (price, last_size) = match o.get("price") {
        Some(serde_json::Value::String(s)) if s.contains('@') => {
            let (size, price) = s.split_once('@').unwrap_or((s, ""));
            // Both halves are required: a size without its price (or the
            // reverse) is not a level one can place.
            let size = ladder_text(size, true)
                .and_then(|d| d.ok_or_else(|| "no size".to_owned()))
                .map_err(|e| format!("price {s:?}: {e}"))?;
            let price = ladder_text(price, false)
                .and_then(|d| d.ok_or_else(|| "no price".to_owned()))
                .map_err(|e| format!("price {s:?}: {e}"))?;
            (Some(price), Some(size))
        }
        _ => (field("price", false)?, None),
    };
    Ok(LadderRow {
        row,
        focus,
        price,
        last_size,
        bid_size: field("bid", true)?,
        ask_size: field("ask", true)?,
    })
}

/// A ladder number from a JSON value: absent, null and `""` are `None`.
fn ladder_number(v: Option<&serde_json::Value>, size: bool) -> Result<Option<Decimal>, String> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => ladder_text(s, size),
        Some(n @ serde_json::Value::Number(_)) => opt_decimal(n).map_err(|e| e.to_string()),
        Some(other) => Err(format!("{other} is not a number")),
    }
}

/// A ladder number from text, read like every market data number
/// ([`crate::smd::parse_number`]: thousands separators, `K`/`M`/`B`
/// suffixes, overflow an error). Prices carry no suffix; sizes may.
fn ladder_text(s: &str, size: bool) -> Result<Option<Decimal>, String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let suffixed = t.ends_with(|c: char| c.is_ascii_alphabetic());
    if suffixed && !size {
        return Err(format!("{s:?} is not a price"));
    }
    crate::smd::parse_number(t)
        .map(Some)
        .ok_or_else(|| format!("{s:?} is not a number"))
}

// ---------------------------------------------------------- trading hours

use engine::hours::{ScheduleDay as HoursDay, ScheduleError, TradingHours};

impl TradingSchedule {
    /// The engine's trading hours of this `/trsrv/secdef/schedule` entry.
    pub fn to_hours(&self) -> Result<TradingHours, ScheduleError> {
        let s = self;
        let tz = s.timezone.as_deref().unwrap_or("America/New_York");
        let pairs = |v: &'_ [ScheduleSession]| -> Vec<(String, String)> {
            v.iter()
                .filter_map(|x| Some((x.opening_time.clone()?, x.closing_time.clone()?)))
                .collect()
        };
        type OwnedDay = (String, Vec<(String, String)>, Vec<(String, String)>);
        let owned: Vec<OwnedDay> = s
            .schedules
            .iter()
            .filter_map(|d| {
                Some((
                    d.trading_schedule_date.clone()?,
                    pairs(&d.sessions),
                    pairs(&d.tradingtimes),
                ))
            })
            .collect();
        TradingHours::new(
            tz,
            owned.iter().map(|(date, sessions, times)| HoursDay {
                date,
                sessions: sessions
                    .iter()
                    .map(|(a, b)| (a.as_str(), b.as_str()))
                    .collect(),
                trading_times: times
                    .iter()
                    .map(|(a, b)| (a.as_str(), b.as_str()))
                    .collect(),
            }),
        )
    }
}

#[cfg(test)]
mod ladder_tests {
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    fn row(row: i64, focus: bool, price: Option<Decimal>) -> LadderRow {
        LadderRow {
            row,
            focus,
            price,
            last_size: None,
            bid_size: None,
            ask_size: None,
        }
    }

    #[test]
    fn the_spec_example() {
        let v = json!({
            "topic": "sbd+DU1234567+265598",
            "data": [
                {"row": 0, "focus": 0, "price": "192.28"},
                {"row": 1, "focus": 0, "price": "300 @ 192.27"},
                {"row": 2, "focus": 0, "price": "192.25", "bid": "1,200"},
                {"row": 3, "focus": 0, "price": "192.29", "ask": "800"},
                {"row": 4, "focus": 1, "price": "100 @ 192.30", "ask": "2.5K"}
            ]
        });
        let l = parse_price_ladder(&v).unwrap();
        assert_eq!(l.account, "DU1234567");
        assert_eq!(l.conid, Conid(265598));
        assert_eq!(l.rows.len(), 5);
        assert_eq!(l.rows[0], row(0, false, Some(dec!(192.28))));
        assert_eq!(
            l.rows[1],
            LadderRow {
                last_size: Some(dec!(300)),
                ..row(1, false, Some(dec!(192.27)))
            }
        );
        assert_eq!(l.rows[2].bid_size, Some(dec!(1200)));
        assert_eq!(l.rows[2].ask_size, None);
        assert_eq!(l.rows[3].ask_size, Some(dec!(800)));
        assert_eq!(
            l.rows[4],
            LadderRow {
                last_size: Some(dec!(100)),
                ask_size: Some(dec!(2500)),
                ..row(4, true, Some(dec!(192.30)))
            }
        );
    }

    #[test]
    fn numbers_unknown_fields_and_exchange() {
        let v = json!({
            "topic": "sbd+U1+8314+NYSE",
            "extra": {"x": 1},
            "data": [
                {"row": "7", "focus": true, "price": 135.5, "bid": 300, "ask": null, "mystery": [1]},
                {"row": 8.0, "focus": "1", "price": "", "bid": ""},
                {"row": 9}
            ]
        });
        let l = parse_price_ladder(&v).unwrap();
        assert_eq!((l.account.as_str(), l.conid), ("U1", Conid(8314)));
        assert_eq!(
            l.rows[0],
            LadderRow {
                bid_size: Some(dec!(300)),
                ..row(7, true, Some(dec!(135.5)))
            }
        );
        assert_eq!(l.rows[1], row(8, true, None));
        assert_eq!(l.rows[2], row(9, false, None));
        let empty = parse_price_ladder(&json!({"topic": "sbd+U1+8314", "data": []})).unwrap();
        assert!(empty.rows.is_empty());
    }

    #[test]
    fn malformed_messages_are_errors() {
        let bad_row = |r: serde_json::Value| {
            parse_price_ladder(&json!({"topic": "sbd+U1+1", "data": [{"row": 0}, r]}))
        };
        for r in [
            json!({"row": 1, "price": "abc"}),
            json!({"row": 1, "price": "x @ 10"}),
            json!({"row": 1, "price": "100 @ "}),
            json!({"row": 1, "price": "100 @ 1.2.3"}),
            json!({"row": 1, "price": {"p": 1}}),
            json!({"row": 1, "bid": "lots"}),
            json!({"row": 1, "ask": "99999999999999999999999999M"}),
            json!({"row": 1, "price": " @ 10"}),
            json!({"row": 1, "focus": "maybe"}),
            json!({"row": 1.5}),
            json!({"price": "10"}),
            json!({"row": 1e300}),
            json!("row"),
        ] {
            match bad_row(r.clone()) {
                Err(LadderError::Row { index: 1, .. }) => {}
                other => panic!("{r}: {other:?}"),
            }
        }
        assert_eq!(parse_price_ladder(&json!([])), Err(LadderError::NotObject));
        assert_eq!(
            parse_price_ladder(&json!({"topic": "sbd+U1+1"})),
            Err(LadderError::NoData)
        );
        for t in ["smd+1", "sbd+U1", "sbd++1", "sbd+U1+abc", "sbd+U1+1+X+Y"] {
            let r = parse_price_ladder(&json!({"topic": t, "data": []}));
            assert_eq!(r, Err(LadderError::Topic(t.to_owned())), "{t}");
        }
        assert!(matches!(
            parse_price_ladder(&json!({"data": []})),
            Err(LadderError::Topic(_))
        ));
    }
}

#[cfg(test)]
mod contract_tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn secdef_of_an_event_contract_is_a_forecastex_contract() {
        let d: TrsrvSecdef = serde_json::from_str(
            r#"{"conid": 762089343, "ticker": "HORC", "assetClass": "OPT",
                "listingExchange": "FORECASTX", "isEventContract": true,
                "putOrCall": "C", "strike": "1", "undConid": 733131966,
                "incrementRules": [{"lowerEdge": 0.0, "increment": 0.01}]}"#,
        )
        .unwrap();
        let c = d.contract();
        assert_eq!(c.sec_type, SecType::EventContract);
        assert_eq!(c.exchange, "FORECASTX");
        assert_eq!(c.tick_size, dec!(0.01));
        let stock: TrsrvSecdef = serde_json::from_str(
            r#"{"conid": 265598, "ticker": "AAPL", "assetClass": "STK",
                "listingExchange": "NASDAQ", "multiplier": 0.0}"#,
        )
        .unwrap();
        let c = stock.contract();
        assert_eq!((c.sec_type, c.exchange.as_str()), (SecType::Stock, "SMART"));
        assert_eq!(c.multiplier, Decimal::ONE, "0 is no multiplier");
        let fut: TrsrvSecdef =
            serde_json::from_str(r#"{"conid": 1, "assetClass": "FUT", "multiplier": "50"}"#)
                .unwrap();
        let c = fut.contract();
        assert_eq!((c.sec_type, c.multiplier), (SecType::Future, dec!(50)));
        assert_eq!(c.symbol, "1");
    }

    /// The spec's event contract record (`/trsrv/event/contracts`).
    const SPEC_RECORD: &str = r#"{
      "market": "United States", "popularityRank": 1032228,
      "name": "HORC Nov'26 Democratic",
      "putOrCall": "C", "expiration": "20270104", "currency": "USD",
      "eventFixedPayout": "1", "priceIncrement": 0.01,
      "tradingHours": {"timezone": "America/Chicago", "holidays": []},
      "conid": 762089343, "underlyingConid": 733131966, "underlyingSymbol": "HORC",
      "shortDescription": "HORC Jan04'27 1.0 YES @FORECASTX",
      "strike": 1.0, "strikeLabel": "Democratic"
    }"#;

    #[test]
    fn the_spec_event_contract_is_a_strike_side() {
        let r = serde_json::from_str::<EventContract>(SPEC_RECORD)
            .unwrap()
            .record()
            .unwrap();
        assert_eq!(r.conid, Conid(762089343));
        assert_eq!(r.underlying_conid, Conid(733131966));
        assert_eq!(r.right, engine::forecastex::Right::Yes);
        assert_eq!(r.strike, Decimal::ONE);
        assert_eq!(r.payout, Some(Decimal::ONE));
        assert_eq!(r.strike_label.as_deref(), Some("Democratic"));
        assert_eq!(r.expiration.as_deref(), Some("20270104"));
        let bad = SPEC_RECORD.replace(r#""putOrCall": "C""#, r#""putOrCall": "X""#);
        let err = serde_json::from_str::<EventContract>(&bad)
            .unwrap()
            .record()
            .unwrap_err();
        assert!(err.to_string().contains("putOrCall"), "{err}");
    }

    /// Strikes written `1.0` and `"1"` are one strike; the same strike of
    /// another period is its own (unpaired) one.
    #[test]
    fn wire_strikes_pair_per_period() {
        let body: EventContracts = serde_json::from_str(
            r#"{"contracts": [
              {"conid": 11, "underlyingConid": 733131966, "strike": 1.0, "putOrCall": "C",
               "strikeLabel": "Democratic", "expiration": "20270104", "eventFixedPayout": "1"},
              {"conid": 12, "underlyingConid": 733131966, "strike": "1", "putOrCall": "P",
               "expiration": "20270104", "eventFixedPayout": "1"},
              {"conid": 31, "underlyingConid": 733131966, "strike": 1.0, "putOrCall": "C",
               "expiration": "20280104"}
            ]}"#,
        )
        .unwrap();
        let p = body.pairing().unwrap();
        assert_eq!(p.opposite(Conid(11)), Some(Conid(12)));
        assert_eq!(p.unpaired, vec![Conid(31)]);
        assert_eq!(body.records().unwrap().len(), 3);
    }

    #[test]
    fn event_contracts_pair_or_say_what_is_missing() {
        let body: EventContracts = serde_json::from_str(
            r#"{"contracts": [
              {"conid": 11, "underlyingConid": 5, "strike": 1.0, "putOrCall": "C", "eventFixedPayout": "1"},
              {"conid": 12, "underlyingConid": "5", "strike": "1", "putOrCall": "P"}]}"#,
        )
        .unwrap();
        let p = body.pairing().unwrap();
        assert_eq!(p.opposite(Conid(11)), Some(Conid(12)));
        let broken: EventContracts = serde_json::from_str(
            r#"{"contracts": [{"conid": 11, "strike": 1, "putOrCall": "C"}]}"#,
        )
        .unwrap();
        let err = broken.pairing().unwrap_err();
        assert!(err.to_string().contains("underlyingConid"), "{err}");
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    /// The spec's example response (its `{...}` placeholder removed).
    #[test]
    fn reads_the_spec_schedule_example() {
        let body = r#"[{"id": "p102082", "tradeVenueId": "v13133", "timezone": "America/New_York",
          "schedules": [{"clearingCycleEndTime": "2000", "tradingScheduleDate": "20000103",
            "sessions": [{"openingTime": "0930", "closingTime": "1600", "prop": "LIQUID"}],
            "tradingtimes": [{"openingTime": "0400", "closingTime": "2000", "cancelDayOrders": "Y"}]}]}]"#;
        let s: Vec<TradingSchedule> = serde_json::from_str(body).unwrap();
        let h = s[0].to_hours().unwrap();
        // Monday 2024-06-03 14:00 UTC = 10:00 EDT; Tuesday is not listed.
        assert!(h.is_open(Utc.with_ymd_and_hms(2024, 6, 3, 14, 0, 0).unwrap(), false));
        assert!(!h.is_open(Utc.with_ymd_and_hms(2024, 6, 4, 14, 0, 0).unwrap(), false));
    }
}

#[cfg(test)]
mod server_prompt_tests {
    use super::*;

    #[test]
    fn an_ntf_with_order_request_and_options_is_a_prompt() {
        let args = serde_json::json!({
            "id": "o354", "title": "Confirm", "text": "Size limit",
            "orderId": 987654321, "reqId": "12345", "options": ["Yes", "No"]
        });
        let p = ServerPrompt::from_args(&args).expect("a prompt");
        assert_eq!(
            (p.order_id.as_str(), p.req_id.as_str()),
            ("987654321", "12345")
        );
        assert_eq!((p.yes(), p.no()), ("Yes", Some("No")));
        let answer = NotificationAnswer {
            order_id: 987654321,
            req_id: p.req_id.clone(),
            text: p.yes().to_owned(),
        };
        assert_eq!(
            serde_json::to_value(answer).expect("serializes"),
            serde_json::json!({"orderId": 987654321, "reqId": "12345", "text": "Yes"})
        );
    }

    #[test]
    fn information_only_ntf_is_not_a_prompt() {
        for args in [
            serde_json::json!({"id": "1", "text": "t", "title": "T", "url": "u"}),
            serde_json::json!({"id": "1", "orderId": 5, "reqId": "9", "options": []}),
            serde_json::json!({"id": "1", "orderId": 5, "options": ["Yes"]}),
            serde_json::json!("not an object"),
        ] {
            assert_eq!(ServerPrompt::from_args(&args), None, "{args}");
        }
        let p = ServerPrompt::from_args(
            &serde_json::json!({"orderId": "5", "reqId": 9, "options": ["Transmit anyway"]}),
        )
        .expect("a prompt");
        assert_eq!((p.yes(), p.no()), ("Transmit anyway", None));
    }
}
