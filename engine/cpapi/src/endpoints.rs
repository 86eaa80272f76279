//! The CP Web API endpoints ibflow speaks, in one table: method(s), path
//! template and pacing row. The client's pacer (`ibkr::pacing`) and the
//! simulator's limiter (`gateway_sim`'s pacing middleware) both read
//! [`ENDPOINTS`] through [`lookup`], so the two sides cannot disagree on
//! which request falls under which limit (they once did: the simulator keyed
//! `/tickle` on GET only while the client sends POST, and it had no
//! `/hmds/history` row).
//!
//! # Source
//!
//! The spec's "Pacing Limitations" section (`shared/spec`):
//!
//! * a global limit of 10 requests per second ([`GLOBAL`]);
//! * the per-endpoint rows of its table, each copied here with the table's
//!   method;
//! * "Any endpoint not listed in the table below follows the global
//!   restriction": those rows are [`Pacing::Global`];
//! * a violation answers 429 and puts the address in a 15-minute penalty
//!   box ([`PENALTY_BOX`]).
//!
//! Rows with [`Pacing::Global`] are here too, so that every request the
//! client sends and every route the simulator serves has a named row (a unit
//! test checks the client's paths), and the method of each is written down
//! once.
//!
//! # Assumptions where the spec is silent
//!
//! * **`/tickle` is GET and POST, one endpoint.** The pacing table lists
//!   `GET /tickle` (1 req/sec) while the endpoint's own section ("Ping the
//!   server") sends `POST`. We take the limit to belong to the endpoint, not
//!   to one method: both methods share one row and one window, so a GET
//!   followed by a POST within a second is a violation.
//! * **`/hmds/history` shares the history pool.** The table has no row for
//!   it. The `/iserver/marketdata/history` section and the websocket `smh`
//!   topic both say "a max of 5 concurrent historical data requests", and
//!   all three are served by the same HMDS backend, so `/hmds/history` and
//!   `/iserver/marketdata/history` draw from one pool of 5 in-flight
//!   requests ([`Pool::History`]) per client address. It has no rate of its
//!   own beyond the global one.
//! * **"5 concurrent requests" counts requests in flight**: a slot is taken
//!   when the request is admitted and freed when its answer is produced.
//! * **Rates are sliding windows** ("1 req/5 secs" = at most 1 request in
//!   any 5-second window), counted per client address, and refused requests
//!   do not count.
//! * **Other methods on a listed path are global only.** The table names a
//!   method per row (`POST /iserver/scanner/run`); a `GET` on that path is
//!   not that row. Two rows on one path with different methods
//!   (`GET`/`PUT /fyi/disclaimer/{typecode}`) are separate limits.
//! * **The `/v1/api` prefix and a trailing slash do not matter**, nor does
//!   the query string: `/v1/api/tickle/?x=1` is `/tickle`.
//! * **A literal segment beats a placeholder**: `/fyi/notifications/more`
//!   is its own row, not `/fyi/notifications/{notificationId}`.
//! * Where an endpoint's section shows only a URL (ForecastEx
//!   `/trsrv/event/...`) or only an example, its method is the example's.
//!   `GET /iserver/secdef/search` also accepts the older `POST` form and
//!   `/iserver/auth/status` both, as the simulator serves them.
//! * The websocket upgrade `GET /ws` is one request against the global
//!   limit; messages on the socket are not paced by this table.
//!
//! # Margin policy
//!
//! The simulator enforces the exact limits of this table, as the gateway
//! does. The client must never see a 429 (the penalty box stops everything
//! for 15 minutes), yet it measures its windows by *send* time while the
//! gateway measures *arrival* time, and a loaded machine or network can
//! delay one request more than the next. So the client lengthens every
//! window it keeps, the global one included, by [`Margin::CLIENT`]: 5% of
//! the window, at least 100 ms (1 s becomes 1.1 s, 5 s becomes 5.25 s,
//! 1 min becomes 63 s). Counts are not changed, and concurrency pools need
//! no margin: the client frees its slot only after it has read the answer,
//! which is after the gateway freed its own.

use std::time::Duration;

/// An HTTP method of the table. Parsing is by name, so both sides can use
/// their own HTTP library's method type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
}

impl HttpMethod {
    /// The method named `s` (`"GET"`, `"post"`, ...); `None` for methods the
    /// API does not use (`HEAD`, `OPTIONS`, ...).
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Get, Self::Post, Self::Put, Self::Delete]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
    }

    /// The method's name in upper case, as on the wire and as [`HttpMethod::parse`]
    /// reads it back.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
        }
    }
}

/// At most `count` requests in any window of `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed in one window.
    pub count: usize,
    /// The window's length; windows slide (see the module doc).
    pub per: Duration,
}

impl Rate {
    /// At most `count` requests in any window of `per`.
    pub const fn new(count: usize, per: Duration) -> Self {
        Rate { count, per }
    }
}

/// A pool of requests that may be in flight at once, shared by the rows
/// that name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pool {
    /// `/iserver/marketdata/history` and `/hmds/history`: 5 at once.
    History,
}

impl Pool {
    /// How many requests the pool admits at once.
    pub const fn size(self) -> usize {
        match self {
            Pool::History => 5,
        }
    }
}

/// The limit one row sets, on top of the global one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// Only the global limit: the spec's "any endpoint not listed".
    Global,
    /// A rate of its own.
    Rate(Rate),
    /// A share of a concurrency pool.
    Concurrent(Pool),
}

/// One endpoint: the methods it is called with, its path template (`{x}`
/// matches one non-empty path segment) and its pacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// The methods this row covers; never empty. Another method on the same
    /// path is not this row.
    pub methods: &'static [HttpMethod],
    /// The path without the `/v1/api` prefix, query string or trailing
    /// slash: `/iserver/account/{accountId}/orders`.
    pub path: &'static str,
    /// The limit on top of [`GLOBAL`].
    pub pacing: Pacing,
}

/// A row of [`ENDPOINTS`], by position: the key of a per-endpoint window.
/// Rows, not paths, are keys, so that `GET` and `POST /tickle` share a
/// window and `GET` and `PUT /fyi/disclaimer/{typecode}` do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(pub usize);

/// A request matched to its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    /// The row's position: the key of its window.
    pub id: EndpointId,
    /// The row itself.
    pub endpoint: &'static Endpoint,
}

/// The global limit: "10 total requests per second".
pub const GLOBAL: Rate = Rate::new(10, SEC);

/// The spec's penalty box after a 429: 15 minutes.
pub const PENALTY_BOX: Duration = Duration::from_secs(15 * 60);

/// How much a side lengthens every window it keeps (see the module doc's
/// margin policy): `max(per * percent / 100, min)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Margin {
    /// Lengthening as a percentage of the window.
    pub percent: u32,
    /// The least lengthening, whatever the percentage gives.
    pub min: Duration,
}

impl Margin {
    /// The exact limits: the simulator, and client tests on a paused clock.
    pub const NONE: Margin = Margin {
        percent: 0,
        min: Duration::ZERO,
    };
    /// The client's default: 5%, at least 100 ms.
    pub const CLIENT: Margin = Margin {
        percent: 5,
        min: Duration::from_millis(100),
    };

    /// `rate` with its window lengthened by this margin.
    pub fn apply(self, rate: Rate) -> Rate {
        if self == Margin::NONE {
            return rate;
        }
        let extra = (rate.per * self.percent / 100).max(self.min);
        Rate::new(rate.count, rate.per.saturating_add(extra))
    }
}

const SEC: Duration = Duration::from_secs(1);
const GET: &[HttpMethod] = &[HttpMethod::Get];
const POST: &[HttpMethod] = &[HttpMethod::Post];
const PUT: &[HttpMethod] = &[HttpMethod::Put];
const DELETE: &[HttpMethod] = &[HttpMethod::Delete];
const GET_POST: &[HttpMethod] = &[HttpMethod::Get, HttpMethod::Post];

const PER_SEC: Pacing = Pacing::Rate(Rate::new(1, SEC));
const PER_5_SEC: Pacing = Pacing::Rate(Rate::new(1, Duration::from_secs(5)));
const PER_MIN: Pacing = Pacing::Rate(Rate::new(1, Duration::from_secs(60)));
const PER_15_MIN: Pacing = Pacing::Rate(Rate::new(1, Duration::from_secs(15 * 60)));

const fn row(methods: &'static [HttpMethod], path: &'static str, pacing: Pacing) -> Endpoint {
    Endpoint {
        methods,
        path,
        pacing,
    }
}

/// The table. The first block is the spec's pacing table row for row (with
/// `/tickle` widened to GET and POST and `/hmds/history` added, see the
/// module doc); the rest are the endpoints the client and the simulator use
/// that the table does not list, under the global limit only. The section
/// of the spec each comes from is named on its line.
pub static ENDPOINTS: &[Endpoint] = &[
    // --- "Pacing Limitations" table ---
    row(GET, "/fyi/unreadnumber", PER_SEC),
    row(GET, "/fyi/settings", PER_SEC),
    row(POST, "/fyi/settings/{typecode}", PER_SEC),
    row(GET, "/fyi/disclaimer/{typecode}", PER_SEC),
    row(PUT, "/fyi/disclaimer/{typecode}", PER_SEC),
    row(GET, "/fyi/deliveryoptions", PER_SEC),
    row(PUT, "/fyi/deliveryoptions/email", PER_SEC),
    row(POST, "/fyi/deliveryoptions/device", PER_SEC),
    row(DELETE, "/fyi/deliveryoptions/{deviceId}", PER_SEC),
    row(GET, "/fyi/notifications", PER_SEC),
    row(GET, "/fyi/notifications/more", PER_SEC),
    row(PUT, "/fyi/notifications/{notificationId}", PER_SEC),
    row(GET, "/iserver/account/orders", PER_5_SEC),
    row(GET, "/iserver/account/pnl/partitioned", PER_5_SEC),
    row(GET, "/iserver/account/trades", PER_5_SEC),
    row(
        GET,
        "/iserver/marketdata/history",
        Pacing::Concurrent(Pool::History),
    ),
    // "Historical Market Data (Beta)": no row in the table; the history pool.
    row(GET, "/hmds/history", Pacing::Concurrent(Pool::History)),
    row(
        GET,
        "/iserver/marketdata/snapshot",
        Pacing::Rate(Rate::new(10, SEC)),
    ),
    row(GET, "/iserver/scanner/params", PER_15_MIN),
    row(POST, "/iserver/scanner/run", PER_SEC),
    row(POST, "/pa/performance", PER_15_MIN),
    row(POST, "/pa/summary", PER_15_MIN),
    row(POST, "/pa/transactions", PER_15_MIN),
    row(GET, "/portfolio/accounts", PER_5_SEC),
    row(GET, "/portfolio/subaccounts", PER_5_SEC),
    row(GET, "/sso/validate", PER_MIN),
    // Table: GET; "Ping the server": POST. One endpoint, one window.
    row(GET_POST, "/tickle", PER_SEC),
    // --- Session: "Authentication Status", "Initialize Brokerage Session",
    // "Re-authenticate", "Logout of the current session" ---
    row(GET_POST, "/iserver/auth/status", Pacing::Global),
    row(POST, "/iserver/auth/ssodh/init", Pacing::Global),
    row(POST, "/iserver/reauthenticate", Pacing::Global),
    row(POST, "/logout", Pacing::Global),
    // --- Accounts: "Receive Brokerage Accounts", "Switch Account" ---
    row(GET, "/iserver/accounts", Pacing::Global),
    row(POST, "/iserver/account", Pacing::Global),
    // --- Contracts ---
    // "Search Contract by Symbol" (GET; POST is the older form).
    row(GET_POST, "/iserver/secdef/search", Pacing::Global),
    // "Search SecDef information by conid".
    row(GET, "/iserver/secdef/info", Pacing::Global),
    // "Search Strikes by Underlying Contract ID".
    row(GET, "/iserver/secdef/strikes", Pacing::Global),
    // "Contract information by Contract ID".
    row(GET, "/iserver/contract/{conid}/info", Pacing::Global),
    // "Find all Info and Rules for a given contract".
    row(
        GET,
        "/iserver/contract/{conid}/info-and-rules",
        Pacing::Global,
    ),
    // "Search Contract Rules".
    row(POST, "/iserver/contract/rules", Pacing::Global),
    // "Search the security definition by Contract ID".
    row(GET, "/trsrv/secdef", Pacing::Global),
    // "Trading Schedule by Symbol".
    row(GET, "/trsrv/secdef/schedule", Pacing::Global),
    // "Security Stocks by Symbol", "Security Future by Symbol".
    row(GET, "/trsrv/stocks", Pacing::Global),
    row(GET, "/trsrv/futures", Pacing::Global),
    // ForecastEx "Categorization", "Markets and Strikes" (URLs only).
    row(GET, "/trsrv/event/category-tree", Pacing::Global),
    row(GET, "/trsrv/event/contracts", Pacing::Global),
    // --- Market data: "Unsubscribe (Single)", "Unsubscribe (All)" ---
    row(POST, "/iserver/marketdata/unsubscribe", Pacing::Global),
    row(GET, "/iserver/marketdata/unsubscribeall", Pacing::Global),
    // --- Orders ---
    // "Place Order".
    row(POST, "/iserver/account/{accountId}/orders", Pacing::Global),
    // "Preview Order / WhatIf Order".
    row(
        POST,
        "/iserver/account/{accountId}/orders/whatif",
        Pacing::Global,
    ),
    // "Place Order Reply Confirmation".
    row(POST, "/iserver/reply/{replyId}", Pacing::Global),
    // "Modify Order" (POST) and "Cancel Order" (DELETE): one path, two
    // endpoints.
    row(
        POST,
        "/iserver/account/{accountId}/order/{orderId}",
        Pacing::Global,
    ),
    row(
        DELETE,
        "/iserver/account/{accountId}/order/{orderId}",
        Pacing::Global,
    ),
    // "Order Status".
    row(
        GET,
        "/iserver/account/order/status/{orderId}",
        Pacing::Global,
    ),
    // "Suppress Messages", "Reset Suppressed Messages".
    row(POST, "/iserver/questions/suppress", Pacing::Global),
    row(POST, "/iserver/questions/suppress/reset", Pacing::Global),
    // "Respond to a Server Prompt".
    row(POST, "/iserver/notification", Pacing::Global),
    // --- Portfolio: "Positions", "Positions (NEW)", "Positions by Conid",
    // "Portfolio Summary", "Portfolio Ledger" ---
    row(
        GET,
        "/portfolio/{accountId}/positions/{pageId}",
        Pacing::Global,
    ),
    row(GET, "/portfolio2/{accountId}/positions", Pacing::Global),
    row(
        GET,
        "/portfolio/{accountId}/position/{conid}",
        Pacing::Global,
    ),
    row(GET, "/portfolio/{accountId}/summary", Pacing::Global),
    row(GET, "/portfolio/{accountId}/ledger", Pacing::Global),
    // --- Websocket: "wss://localhost:5000/v1/api/ws" (the upgrade) ---
    row(GET, "/ws", Pacing::Global),
];

/// The API path of a request as the table spells it: without the query
/// string, the `/v1/api` prefix and a trailing slash.
pub fn api_path(path: &str) -> &str {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let path = match path.strip_prefix("/v1/api") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => path,
    };
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/"
    } else {
        trimmed
    }
}

/// How many `{placeholder}` segments `template` needs to match `path`
/// (both already split on `/`), or `None` if it does not match.
fn placeholders(template: &str, path: &str) -> Option<usize> {
    let mut t = template.split('/');
    let mut p = path.split('/');
    let mut params = 0;
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some(params),
            (Some(ts), Some(ps)) if ts.starts_with('{') && ts.ends_with('}') => {
                if ps.is_empty() {
                    return None;
                }
                params += 1;
            }
            (Some(ts), Some(ps)) if ts == ps => {}
            _ => return None,
        }
    }
}

/// The row a concrete request falls under: `method` by name, `path` with or
/// without the `/v1/api` prefix, query string or trailing slash. Among rows
/// whose template matches and that list the method, the one with the fewest
/// placeholders wins. `None`: no row, the global limit only.
///
/// This is the one matching function: the client's pacer and the
/// simulator's limiter both call it.
pub fn lookup(method: &str, path: &str) -> Option<Matched> {
    let method = HttpMethod::parse(method)?;
    let path = api_path(path);
    ENDPOINTS
        .iter()
        .enumerate()
        .filter(|(_, e)| e.methods.contains(&method))
        .filter_map(|(i, e)| placeholders(e.path, path).map(|n| (n, i, e)))
        .min_by_key(|(n, i, _)| (*n, *i))
        .map(|(_, i, endpoint)| Matched {
            id: EndpointId(i),
            endpoint,
        })
}

/// The pacing a request is subject to beyond the global limit.
pub fn pacing(method: &str, path: &str) -> Pacing {
    lookup(method, path).map_or(Pacing::Global, |m| m.endpoint.pacing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of(method: &str, path: &str) -> Option<&'static str> {
        lookup(method, path).map(|m| m.endpoint.path)
    }

    /// Every request `ibkr::rest::IbkrClient` sends (method and a concrete
    /// path as it builds them), one per typed call. Keep in step with
    /// rest.rs: a new call without a row here fails no build, but a new row
    /// spelled wrong fails this test.
    const CLIENT_CALLS: &[(&str, &str, &str)] = &[
        ("POST", "/tickle", "/tickle"),
        ("POST", "/iserver/auth/status", "/iserver/auth/status"),
        (
            "POST",
            "/iserver/auth/ssodh/init",
            "/iserver/auth/ssodh/init",
        ),
        ("POST", "/logout", "/logout"),
        ("GET", "/sso/validate", "/sso/validate"),
        ("GET", "/iserver/accounts", "/iserver/accounts"),
        ("GET", "/portfolio/accounts", "/portfolio/accounts"),
        ("POST", "/iserver/account", "/iserver/account"),
        (
            "GET",
            "/iserver/secdef/search?symbol=AAPL",
            "/iserver/secdef/search",
        ),
        ("GET", "/iserver/secdef/info", "/iserver/secdef/info"),
        (
            "GET",
            "/iserver/contract/265598/info",
            "/iserver/contract/{conid}/info",
        ),
        ("POST", "/iserver/contract/rules", "/iserver/contract/rules"),
        ("GET", "/trsrv/secdef", "/trsrv/secdef"),
        ("GET", "/trsrv/secdef/schedule", "/trsrv/secdef/schedule"),
        ("GET", "/trsrv/stocks", "/trsrv/stocks"),
        ("GET", "/trsrv/futures", "/trsrv/futures"),
        ("GET", "/iserver/secdef/strikes", "/iserver/secdef/strikes"),
        (
            "GET",
            "/trsrv/event/category-tree",
            "/trsrv/event/category-tree",
        ),
        ("GET", "/trsrv/event/contracts", "/trsrv/event/contracts"),
        (
            "GET",
            "/iserver/marketdata/snapshot",
            "/iserver/marketdata/snapshot",
        ),
        (
            "POST",
            "/iserver/marketdata/unsubscribe",
            "/iserver/marketdata/unsubscribe",
        ),
        (
            "GET",
            "/iserver/marketdata/unsubscribeall",
            "/iserver/marketdata/unsubscribeall",
        ),
        (
            "GET",
            "/iserver/marketdata/history",
            "/iserver/marketdata/history",
        ),
        ("GET", "/hmds/history", "/hmds/history"),
        (
            "POST",
            "/iserver/account/DU1234567/orders",
            "/iserver/account/{accountId}/orders",
        ),
        ("POST", "/iserver/reply/a1b2-c3", "/iserver/reply/{replyId}"),
        (
            "POST",
            "/iserver/account/DU1234567/order/1234",
            "/iserver/account/{accountId}/order/{orderId}",
        ),
        (
            "POST",
            "/iserver/account/DU1234567/orders/whatif",
            "/iserver/account/{accountId}/orders/whatif",
        ),
        (
            "DELETE",
            "/iserver/account/DU1234567/order/-1",
            "/iserver/account/{accountId}/order/{orderId}",
        ),
        ("GET", "/iserver/account/orders", "/iserver/account/orders"),
        (
            "GET",
            "/iserver/account/order/status/1234",
            "/iserver/account/order/status/{orderId}",
        ),
        ("GET", "/iserver/account/trades", "/iserver/account/trades"),
        (
            "POST",
            "/iserver/questions/suppress",
            "/iserver/questions/suppress",
        ),
        (
            "POST",
            "/iserver/questions/suppress/reset",
            "/iserver/questions/suppress/reset",
        ),
        ("POST", "/iserver/notification", "/iserver/notification"),
        (
            "GET",
            "/portfolio/DU1234567/positions/0",
            "/portfolio/{accountId}/positions/{pageId}",
        ),
        (
            "GET",
            "/portfolio2/DU1234567/positions",
            "/portfolio2/{accountId}/positions",
        ),
        (
            "GET",
            "/portfolio/DU1234567/summary",
            "/portfolio/{accountId}/summary",
        ),
        (
            "GET",
            "/portfolio/DU1234567/ledger",
            "/portfolio/{accountId}/ledger",
        ),
    ];

    #[test]
    fn every_client_call_has_a_row() {
        for (method, path, template) in CLIENT_CALLS {
            assert_eq!(path_of(method, path), Some(*template), "{method} {path}");
            // The simulator sees the same request with the prefix, maybe a
            // trailing slash: same row.
            let full = format!("/v1/api{path}");
            assert_eq!(path_of(method, &full), Some(*template), "{method} {full}");
            let (bare, query) = path.split_once('?').unwrap_or((path, ""));
            let slashed = format!("/v1/api{bare}/?{query}");
            assert_eq!(
                path_of(method, &slashed),
                Some(*template),
                "{method} {slashed}"
            );
        }
    }

    #[test]
    fn the_spec_limits() {
        let rate = |m, p| match pacing(m, p) {
            Pacing::Rate(r) => Some((r.count, r.per.as_secs())),
            _ => None,
        };
        assert_eq!(GLOBAL, Rate::new(10, Duration::from_secs(1)));
        assert_eq!(rate("GET", "/iserver/marketdata/snapshot"), Some((10, 1)));
        assert_eq!(rate("GET", "/iserver/account/orders"), Some((1, 5)));
        assert_eq!(rate("GET", "/iserver/account/trades"), Some((1, 5)));
        assert_eq!(rate("GET", "/portfolio/accounts"), Some((1, 5)));
        assert_eq!(rate("GET", "/tickle"), Some((1, 1)));
        assert_eq!(rate("GET", "/sso/validate"), Some((1, 60)));
        assert_eq!(rate("GET", "/iserver/scanner/params"), Some((1, 900)));
        assert_eq!(rate("POST", "/pa/summary"), Some((1, 900)));
        assert_eq!(
            pacing("GET", "/hmds/history"),
            Pacing::Concurrent(Pool::History)
        );
        assert_eq!(
            pacing("GET", "/iserver/marketdata/history"),
            Pacing::Concurrent(Pool::History)
        );
        assert_eq!(Pool::History.size(), 5);
        assert_eq!(pacing("GET", "/iserver/accounts"), Pacing::Global);
        assert_eq!(pacing("GET", "/not/an/endpoint"), Pacing::Global);
    }

    #[test]
    fn method_matters_where_the_spec_says_so() {
        // `/tickle`: the table's GET and the endpoint's POST are one row.
        let get = lookup("GET", "/tickle").map(|m| m.id);
        assert!(get.is_some());
        assert_eq!(lookup("POST", "/tickle").map(|m| m.id), get);
        assert_eq!(lookup("post", "/v1/api/tickle/").map(|m| m.id), get);
        // One path, two rows with their own limits.
        let dg = lookup("GET", "/fyi/disclaimer/14").map(|m| m.id);
        let dp = lookup("PUT", "/fyi/disclaimer/14").map(|m| m.id);
        assert!(dg.is_some() && dp.is_some() && dg != dp);
        let modify = lookup("POST", "/iserver/account/DU1/order/7").map(|m| m.id);
        let cancel = lookup("DELETE", "/iserver/account/DU1/order/7").map(|m| m.id);
        assert!(modify.is_some() && cancel.is_some() && modify != cancel);
        // A method the table does not list for a path is not that row.
        assert_eq!(pacing("GET", "/iserver/scanner/run"), Pacing::Global);
        assert_eq!(pacing("POST", "/iserver/account/orders"), Pacing::Global);
        assert_eq!(pacing("POST", "/sso/validate"), Pacing::Global);
        assert_eq!(pacing("PUT", "/tickle"), Pacing::Global);
        assert_eq!(pacing("HEAD", "/tickle"), Pacing::Global);
        assert_eq!(
            pacing("POST", "/iserver/scanner/run"),
            Pacing::Rate(Rate::new(1, SEC))
        );
    }

    #[test]
    fn literal_segments_beat_placeholders() {
        assert_eq!(
            path_of("GET", "/fyi/notifications/more"),
            Some("/fyi/notifications/more")
        );
        assert_eq!(
            path_of("PUT", "/fyi/notifications/123"),
            Some("/fyi/notifications/{notificationId}")
        );
        assert_eq!(path_of("GET", "/fyi/settings"), Some("/fyi/settings"));
        assert_eq!(path_of("POST", "/fyi/settings/"), None);
        assert_eq!(path_of("GET", "/iserver/contract//info"), None);
        assert_eq!(
            path_of("GET", "/iserver/account/orders?force=true"),
            Some("/iserver/account/orders")
        );
    }

    #[test]
    fn api_paths() {
        assert_eq!(api_path("/v1/api/tickle"), "/tickle");
        assert_eq!(api_path("/v1/apitickle"), "/v1/apitickle");
        assert_eq!(api_path("/v1/api"), "/");
        assert_eq!(api_path("/v1/api/"), "/");
        assert_eq!(api_path("/tickle//?a=b"), "/tickle");
    }

    #[test]
    fn table_is_well_formed() {
        for (i, e) in ENDPOINTS.iter().enumerate() {
            assert!(e.path.starts_with('/') && !e.path.ends_with('/'), "{e:?}");
            assert!(!e.methods.is_empty(), "{e:?}");
            // No two rows claim the same request.
            for other in &ENDPOINTS[i + 1..] {
                let same_path = e.path == other.path;
                let shared = e.methods.iter().any(|m| other.methods.contains(m));
                assert!(!(same_path && shared), "{e:?} and {other:?}");
            }
        }
    }

    #[test]
    fn client_margin() {
        let one = Rate::new(1, SEC);
        assert_eq!(Margin::NONE.apply(one), one);
        assert_eq!(Margin::CLIENT.apply(one).per, Duration::from_millis(1100));
        assert_eq!(
            Margin::CLIENT
                .apply(Rate::new(1, Duration::from_secs(5)))
                .per,
            Duration::from_millis(5250)
        );
        assert_eq!(Margin::CLIENT.apply(GLOBAL).count, 10);
    }
}
