//! The typed REST client.
//!
//! Every call goes through [`IbkrClient::send`]: pacing first, then the
//! request with the spec's headers, then one place that turns the gateway's
//! failure shapes into [`IbkrError`] variants. Response bodies are read in
//! full and decoded with `serde_path_to_error`, so a decode error names the
//! field that did not fit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;

use crate::control::ClientControl;
use crate::error::{api_error, looks_like_html, snippet, IbkrError};
use crate::pacing::{Pacer, PacingConfig};
use crate::telemetry::Telemetry;
use crate::ws::ReconnectLimits;
use cpapi::messages::*;
use engine::model::{Conid, OrderStatus};

/// Settings of the REST client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL including `/v1/api`.
    pub base_url: String,
    /// Accept the gateway's self-signed certificate. Only allowed when the
    /// host is a loopback address or `localhost`.
    pub accept_invalid_certs: bool,
    /// `User-Agent` header of every request (default `ibflow/VERSION`).
    pub user_agent: String,
    /// Whole-request timeout, connect to last body byte (default 30 s); past
    /// it the call fails with [`IbkrError::Transport`].
    pub timeout: Duration,
    /// Client-side rate limits, applied before each request.
    pub pacing: PacingConfig,
    /// Wait before retrying the first `/hmds/history` call of a session,
    /// which returns a 404 page while the history service warms up.
    pub hmds_warmup: Duration,
    /// Wait before repeating a snapshot whose first answer was the pre-flight
    /// (no fields yet).
    pub snapshot_preflight_wait: Duration,
    /// The handle through which the operator stops the run or halts order
    /// entry, and the client reports a penalty box or a lost session;
    /// shared by every client built from (a clone of) this config.
    pub control: ClientControl,
    /// When the websocket stops reconnecting to a session that is gone.
    pub reconnect: ReconnectLimits,
    /// Metrics, health and status of the bot; shared, like `control`, by
    /// every client built from (a clone of) this config, so the binary
    /// that serves them sees what the node's clients counted.
    pub telemetry: Telemetry,
    /// Sent as `Authorization: Bearer ...` with every request: for a
    /// client whose base URL is a bot's control endpoint (its gateway
    /// proxy), which asks for the bot's token. `None` for a gateway.
    pub bearer: Option<BearerToken>,
}

/// A bearer token that never shows in `Debug` output, logs or errors (a
/// config file may hold one, and configs get logged).
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct BearerToken(String);

impl BearerToken {
    /// Wrap `token`.
    pub fn new(token: impl Into<String>) -> Self {
        BearerToken(token.into())
    }

    /// The token itself, for the one place that sends or compares it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(***)")
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            base_url: "https://localhost:5000/v1/api".into(),
            accept_invalid_certs: false,
            user_agent: concat!("ibflow/", env!("CARGO_PKG_VERSION")).into(),
            timeout: Duration::from_secs(30),
            pacing: PacingConfig::default(),
            hmds_warmup: Duration::from_secs(1),
            snapshot_preflight_wait: Duration::from_millis(500),
            control: ClientControl::default(),
            reconnect: ReconnectLimits::default(),
            telemetry: Telemetry::default(),
            bearer: None,
        }
    }
}

impl ClientConfig {
    /// The defaults with another base URL (the simulator, a remote gateway).
    pub fn with_base_url(base_url: impl Into<String>) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            ..Self::default()
        }
    }

    /// A client of the CP Gateway simulator (`ibflow sim-gateway`, or one
    /// a test starts) at `base_url`: the simulator's history service and
    /// snapshots are ready after a short wait, not the real gateway's
    /// second, and a request the simulator's pacer puts in the penalty box
    /// fails at once ([`IbkrError::TooManyRequests`], then
    /// [`IbkrError::PenaltyBox`]) instead of waiting it out, so a
    /// pacing mistake shows as an error.
    pub fn for_simulator(base_url: impl Into<String>) -> Self {
        ClientConfig {
            hmds_warmup: Duration::from_millis(50),
            snapshot_preflight_wait: Duration::from_millis(100),
            pacing: PacingConfig {
                wait_out_penalty: false,
                ..PacingConfig::default()
            },
            ..Self::with_base_url(base_url)
        }
    }
}

/// True for `localhost` and loopback IP literals.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The shared state of a client and its clones.
pub(crate) struct Inner {
    http: reqwest::Client,
    base: Url,
    config: ClientConfig,
    pacer: Pacer,
    accounts_called: AtomicBool,
    hmds_warm: AtomicBool,
    orders_called: AtomicBool,
}

/// What [`crate::telemetry::Telemetry`] keeps a weak reference to.
pub(crate) type ClientInner = Inner;

/// The CP Web API REST client. Cheap to clone; clones share the cookie
/// store and the pacing limiter.
#[derive(Clone)]
pub struct IbkrClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for IbkrClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IbkrClient")
            .field("base", &self.inner.base.as_str())
            .finish_non_exhaustive()
    }
}

/// A parsed base URL, validated the way the client needs it.
pub fn parse_base_url(s: &str) -> Result<Url, IbkrError> {
    let mut u = Url::parse(s).map_err(|e| IbkrError::Config(format!("bad base URL {s:?}: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(IbkrError::Config(format!(
            "base URL must be http or https, got {s:?}"
        )));
    }
    if u.host().is_none() {
        return Err(IbkrError::Config(format!("base URL has no host: {s:?}")));
    }
    let path = u.path().trim_end_matches('/').to_owned();
    u.set_path(&path);
    u.set_query(None);
    Ok(u)
}

impl IbkrClient {
    /// Build a client: validates the base URL and refuses
    /// `accept_invalid_certs` for a host that is not a loopback one. No
    /// request is sent.
    pub fn new(config: ClientConfig) -> Result<Self, IbkrError> {
        let base = parse_base_url(&config.base_url)?;
        if config.accept_invalid_certs && !is_loopback(&base) {
            return Err(IbkrError::Config(format!(
                "accepting an unverified certificate is only allowed for a loopback gateway, not {}",
                base.host_str().unwrap_or("?")
            )));
        }
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
        if let Some(token) = &config.bearer {
            let mut v =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    IbkrError::Config("the bearer token is not a valid header value".into())
                })?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .default_headers(headers)
            .cookie_store(true)
            .redirect(redirect_policy(&base, config.accept_invalid_certs))
            .danger_accept_invalid_certs(config.accept_invalid_certs)
            .timeout(config.timeout)
            .build()
            .map_err(|e| IbkrError::Config(format!("cannot build HTTP client: {e}")))?;
        let inner = Arc::new(Inner {
            http,
            base,
            pacer: Pacer::with_control(config.pacing.clone(), config.control.clone()),
            config,
            accounts_called: AtomicBool::new(false),
            hmds_warm: AtomicBool::new(false),
            orders_called: AtomicBool::new(false),
        });
        inner.config.telemetry.register_client(&inner);
        Ok(IbkrClient { inner })
    }

    /// The client around `inner` (from [`Telemetry::bot_client`]).
    pub(crate) fn from_inner(inner: Arc<Inner>) -> Self {
        IbkrClient { inner }
    }

    /// The base URL, without a trailing slash or query.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The settings it was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The control handle (stop, kill switch, penalty box, lost session)
    /// this client answers to.
    pub fn control(&self) -> &ClientControl {
        &self.inner.config.control
    }

    /// The pacing limiter every request of this client (and its clones) goes
    /// through.
    pub fn pacer(&self) -> &Pacer {
        &self.inner.pacer
    }

    /// The websocket URL of this gateway: `wss://host:port/v1/api/ws`.
    pub fn ws_url(&self) -> Result<Url, IbkrError> {
        let mut u = self.inner.base.clone();
        let scheme = if u.scheme() == "https" { "wss" } else { "ws" };
        u.set_scheme(scheme)
            .map_err(|_| IbkrError::Config("cannot derive the websocket URL".into()))?;
        let path = format!("{}/ws", u.path().trim_end_matches('/'));
        u.set_path(&path);
        Ok(u)
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> Result<Url, IbkrError> {
        let mut u = self.inner.base.clone();
        let full = format!("{}{}", u.path().trim_end_matches('/'), path);
        u.set_path(&full);
        if !query.is_empty() {
            let mut q = u.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        Ok(u)
    }

    /// Send one request and return the successful body. The body of a POST
    /// is JSON (`{}` when the endpoint takes none) with its Content-Length.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<Vec<u8>, IbkrError> {
        let _permit = self.inner.pacer.acquire(method.as_str(), path).await?;
        let url = self.url(path, query)?;
        let mut req = self.inner.http.request(method.clone(), url);
        if method == Method::POST || method == Method::PUT || body.is_some() {
            let bytes = match body {
                Some(b) => serde_json::to_vec(b).map_err(|e| IbkrError::Decode {
                    endpoint: path.to_owned(),
                    message: format!("cannot encode request body: {e}"),
                    snippet: String::new(),
                })?,
                None => b"{}".to_vec(),
            };
            req = req
                .header(CONTENT_TYPE, "application/json")
                .header(CONTENT_LENGTH, bytes.len())
                .body(bytes);
        }
        tracing::debug!(method = %method, endpoint = path, "request");
        let resp = req
            .send()
            .await
            .map_err(|e| IbkrError::transport(path, e))?;
        let status = resp.status().as_u16();
        if resp.status().is_redirection() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|v| redirect_target(&self.inner.base, v.as_bytes()))
                .unwrap_or_else(|| "(no Location header)".to_owned());
            tracing::error!(endpoint = path, status, %location, "redirect not followed");
            return Err(IbkrError::Redirect {
                endpoint: path.to_owned(),
                status,
                location,
            });
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| IbkrError::transport(path, e))?;
        if status == 429 {
            self.inner.config.telemetry.http_429();
            self.inner.pacer.penalize(path);
        }
        if status == 401 {
            self.inner.config.telemetry.set_authenticated(false);
        }
        check_response(path, status, &body)?;
        Ok(body.to_vec())
    }

    /// Send and decode.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<T, IbkrError> {
        let bytes = self.send(method, path, query, body).await?;
        decode(path, &bytes)
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        q: &[(&str, String)],
    ) -> Result<T, IbkrError> {
        self.call(Method::GET, path, q, None).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, IbkrError> {
        self.call(Method::POST, path, &[], body.as_ref()).await
    }

    // ------------------------------------------------------------ session

    /// `POST /tickle`: keeps the session alive; its `session` value is the
    /// websocket cookie.
    pub async fn tickle(&self) -> Result<Tickle, IbkrError> {
        self.post("/tickle", None).await
    }

    /// `POST /iserver/auth/status`.
    pub async fn auth_status(&self) -> Result<AuthStatus, IbkrError> {
        self.post("/iserver/auth/status", None).await
    }

    /// `POST /iserver/auth/ssodh/init` with `publish: true` (the spec says a
    /// false value gets a 500).
    pub async fn ssodh_init(&self, compete: bool) -> Result<AuthStatus, IbkrError> {
        self.post(
            "/iserver/auth/ssodh/init",
            Some(serde_json::json!({"publish": true, "compete": compete})),
        )
        .await
    }

    /// `POST /logout`.
    pub async fn logout(&self) -> Result<LogoutResponse, IbkrError> {
        self.post("/logout", None).await
    }

    /// `GET /sso/validate`.
    pub async fn sso_validate(&self) -> Result<SsoValidate, IbkrError> {
        self.get("/sso/validate", &[]).await
    }

    // ----------------------------------------------------------- accounts

    /// `GET /iserver/accounts`. Also the pre-flight of market data snapshots.
    pub async fn iserver_accounts(&self) -> Result<BrokerageAccounts, IbkrError> {
        let r = self.get("/iserver/accounts", &[]).await?;
        self.inner.accounts_called.store(true, Ordering::Relaxed);
        Ok(r)
    }

    /// `GET /portfolio/accounts`.
    pub async fn portfolio_accounts(&self) -> Result<Vec<PortfolioAccount>, IbkrError> {
        self.get("/portfolio/accounts", &[]).await
    }

    /// `POST /iserver/account`: switch the selected account.
    pub async fn switch_account(&self, acct_id: &str) -> Result<SwitchAccount, IbkrError> {
        self.post(
            "/iserver/account",
            Some(serde_json::json!({"acctId": acct_id})),
        )
        .await
    }

    // ---------------------------------------------------------- contracts

    /// `GET /iserver/secdef/search?symbol=&secType=&name=`.
    pub async fn secdef_search(
        &self,
        symbol: &str,
        sec_type: Option<&str>,
        name: bool,
    ) -> Result<Vec<SecdefSearchResult>, IbkrError> {
        let mut q = vec![("symbol", symbol.to_owned())];
        if let Some(t) = sec_type {
            q.push(("secType", t.to_owned()));
        }
        if name {
            q.push(("name", "true".into()));
        }
        self.get("/iserver/secdef/search", &q).await
    }

    /// `GET /iserver/secdef/info` (derivatives: sectype, month, strike, right).
    pub async fn secdef_info(
        &self,
        conid: Conid,
        sec_type: &str,
        month: Option<&str>,
        exchange: Option<&str>,
        strike: Option<&str>,
        right: Option<&str>,
    ) -> Result<Vec<SecdefInfo>, IbkrError> {
        let mut q = vec![
            ("conid", conid.to_string()),
            ("sectype", sec_type.to_owned()),
        ];
        for (k, v) in [
            ("month", month),
            ("exchange", exchange),
            ("strike", strike),
            ("right", right),
        ] {
            if let Some(v) = v {
                q.push((k, v.to_owned()));
            }
        }
        self.get("/iserver/secdef/info", &q).await
    }

    /// `GET /iserver/contract/{conid}/info`.
    pub async fn contract_info(&self, conid: Conid) -> Result<ContractInfo, IbkrError> {
        self.get(&format!("/iserver/contract/{conid}/info"), &[])
            .await
    }

    /// `POST /iserver/contract/rules`.
    pub async fn contract_rules(
        &self,
        conid: Conid,
        is_buy: bool,
    ) -> Result<ContractRules, IbkrError> {
        self.post(
            "/iserver/contract/rules",
            Some(serde_json::json!({"conid": conid.0, "isBuy": is_buy})),
        )
        .await
    }

    /// `GET /trsrv/secdef?conids=`.
    pub async fn trsrv_secdef(&self, conids: &[Conid]) -> Result<TrsrvSecdefs, IbkrError> {
        self.get("/trsrv/secdef", &[("conids", join(conids))]).await
    }

    /// `GET /trsrv/secdef/schedule?assetClass=&symbol=&exchange=`.
    pub async fn trading_schedule(
        &self,
        asset_class: &str,
        symbol: &str,
        exchange: Option<&str>,
    ) -> Result<Vec<TradingSchedule>, IbkrError> {
        let mut q = vec![
            ("assetClass", asset_class.to_owned()),
            ("symbol", symbol.to_owned()),
        ];
        if let Some(e) = exchange {
            q.push(("exchange", e.to_owned()));
        }
        self.get("/trsrv/secdef/schedule", &q).await
    }

    /// `GET /trsrv/stocks?symbols=`.
    pub async fn stocks(&self, symbols: &[&str]) -> Result<StocksBySymbol, IbkrError> {
        self.get("/trsrv/stocks", &[("symbols", symbols.join(","))])
            .await
    }

    /// `GET /trsrv/futures?symbols=`.
    pub async fn futures(&self, symbols: &[&str]) -> Result<FuturesBySymbol, IbkrError> {
        self.get("/trsrv/futures", &[("symbols", symbols.join(","))])
            .await
    }

    /// `GET /iserver/secdef/strikes?conid=&sectype=&month=`.
    pub async fn strikes(
        &self,
        conid: Conid,
        sec_type: &str,
        month: &str,
        exchange: Option<&str>,
    ) -> Result<Strikes, IbkrError> {
        let mut q = vec![
            ("conid", conid.to_string()),
            ("sectype", sec_type.to_owned()),
            ("month", month.to_owned()),
        ];
        if let Some(e) = exchange {
            q.push(("exchange", e.to_owned()));
        }
        self.get("/iserver/secdef/strikes", &q).await
    }

    /// `GET /trsrv/event/category-tree`.
    pub async fn event_category_tree(
        &self,
    ) -> Result<std::collections::BTreeMap<String, EventCategory>, IbkrError> {
        self.get("/trsrv/event/category-tree", &[]).await
    }

    /// `GET /trsrv/event/contracts?market=&exchange=`.
    pub async fn event_contracts(
        &self,
        market: Conid,
        exchange: &str,
    ) -> Result<EventContracts, IbkrError> {
        self.get(
            "/trsrv/event/contracts",
            &[
                ("market", market.to_string()),
                ("exchange", exchange.to_owned()),
            ],
        )
        .await
    }

    // -------------------------------------------------------- market data

    /// `GET /iserver/marketdata/snapshot`, with its pre-flight rule: the
    /// accounts endpoint is called first (once per client), and when the
    /// first answer carries none of the requested fields (the pre-flight
    /// answer) the request is repeated once after a short wait.
    pub async fn snapshot(
        &self,
        conids: &[Conid],
        fields: &[&str],
    ) -> Result<Vec<SnapshotRow>, IbkrError> {
        if !self.inner.accounts_called.load(Ordering::Relaxed) {
            self.iserver_accounts().await?;
        }
        let q = [("conids", join(conids)), ("fields", fields.join(","))];
        let rows: Vec<SnapshotRow> = self.get("/iserver/marketdata/snapshot", &q).await?;
        let has_fields = rows
            .iter()
            .any(|r| fields.iter().any(|f| r.contains_key(*f)));
        if has_fields || fields.is_empty() {
            return Ok(rows);
        }
        tokio::time::sleep(self.inner.config.snapshot_preflight_wait).await;
        self.get("/iserver/marketdata/snapshot", &q).await
    }

    /// `POST /iserver/marketdata/unsubscribe`.
    pub async fn unsubscribe_market_data(
        &self,
        conid: Conid,
    ) -> Result<serde_json::Value, IbkrError> {
        self.post(
            "/iserver/marketdata/unsubscribe",
            Some(serde_json::json!({"conid": conid.0})),
        )
        .await
    }

    /// `GET /iserver/marketdata/unsubscribeall`.
    pub async fn unsubscribe_all_market_data(&self) -> Result<serde_json::Value, IbkrError> {
        self.get("/iserver/marketdata/unsubscribeall", &[]).await
    }

    /// `GET /iserver/marketdata/history`: the raw body (parse it with
    /// [`cpapi::history::parse_history`], or save it for backtests).
    pub async fn iserver_history_raw(&self, req: &HistoryRequest) -> Result<Vec<u8>, IbkrError> {
        self.send(
            Method::GET,
            "/iserver/marketdata/history",
            &req.query(),
            None,
        )
        .await
    }

    /// `GET /hmds/history`: the raw body. The first call of a session
    /// returns a 404 HTML page while the service starts; that one is
    /// retried once after [`ClientConfig::hmds_warmup`].
    pub async fn hmds_history_raw(&self, req: &HistoryRequest) -> Result<Vec<u8>, IbkrError> {
        let q = req.query();
        match self.send(Method::GET, "/hmds/history", &q, None).await {
            Err(IbkrError::Html { status: 404, .. })
                if !self.inner.hmds_warm.swap(true, Ordering::Relaxed) =>
            {
                tracing::info!("/hmds/history warming up (first-call 404), retrying once");
                tokio::time::sleep(self.inner.config.hmds_warmup).await;
                self.send(Method::GET, "/hmds/history", &q, None).await
            }
            other => {
                self.inner.hmds_warm.store(true, Ordering::Relaxed);
                other
            }
        }
    }

    /// `/hmds/history` parsed into bars.
    pub async fn hmds_history(
        &self,
        req: &HistoryRequest,
    ) -> Result<cpapi::history::HistoryBars, IbkrError> {
        let body = self.hmds_history_raw(req).await?;
        cpapi::history::parse_history(req.conid, &body)
            .map_err(|e| history_error("/hmds/history", e))
    }

    /// `/iserver/marketdata/history` parsed into bars.
    pub async fn iserver_history(
        &self,
        req: &HistoryRequest,
    ) -> Result<cpapi::history::HistoryBars, IbkrError> {
        let body = self.iserver_history_raw(req).await?;
        cpapi::history::parse_history(req.conid, &body)
            .map_err(|e| history_error("/iserver/marketdata/history", e))
    }

    // ------------------------------------------------------------- orders

    /// `POST /iserver/account/{acct}/orders` with an `{"orders": [...]}` body
    /// (`cpapi::order_ticket::OrdersBody`). The answer is either the
    /// acknowledged orders or a question to answer with [`Self::reply`].
    pub async fn place_orders<B: Serialize>(
        &self,
        account: &str,
        body: &B,
    ) -> Result<PlaceOutcome, IbkrError> {
        let path = format!("/iserver/account/{account}/orders");
        self.place_like(&path, body).await
    }

    /// `POST /iserver/reply/{id}`: answer a prompt. The answer may be
    /// another prompt; the caller decides each one.
    pub async fn reply(&self, reply_id: &str, confirmed: bool) -> Result<PlaceOutcome, IbkrError> {
        let path = format!("/iserver/reply/{reply_id}");
        self.place_like(&path, &serde_json::json!({"confirmed": confirmed}))
            .await
    }

    /// `POST /iserver/account/{acct}/order/{orderId}`: modify. The body is
    /// the full order as when placing it.
    pub async fn modify_order<B: Serialize>(
        &self,
        account: &str,
        order_id: &str,
        body: &B,
    ) -> Result<PlaceOutcome, IbkrError> {
        let path = format!("/iserver/account/{account}/order/{order_id}");
        self.place_like(&path, body).await
    }

    async fn place_like<B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<PlaceOutcome, IbkrError> {
        let body = serde_json::to_value(body).map_err(|e| IbkrError::Decode {
            endpoint: path.to_owned(),
            message: format!("cannot encode order: {e}"),
            snippet: String::new(),
        })?;
        let v: serde_json::Value = self.call(Method::POST, path, &[], Some(&body)).await?;
        let text = v.to_string();
        PlaceOutcome::from_value(v).map_err(|message| IbkrError::Decode {
            endpoint: path.to_owned(),
            message,
            snippet: snippet(text.as_bytes()),
        })
    }

    /// `POST /iserver/account/{acct}/orders/whatif`.
    pub async fn whatif<B: Serialize>(&self, account: &str, body: &B) -> Result<WhatIf, IbkrError> {
        let path = format!("/iserver/account/{account}/orders/whatif");
        let body = serde_json::to_value(body).map_err(|e| IbkrError::Config(e.to_string()))?;
        self.call(Method::POST, &path, &[], Some(&body)).await
    }

    /// `DELETE /iserver/account/{acct}/order/{orderId}`; `order_id` may be
    /// `-1` to cancel every open order of the account.
    pub async fn cancel_order(
        &self,
        account: &str,
        order_id: &str,
    ) -> Result<CancelResponse, IbkrError> {
        self.cancel_order_as(account, order_id, None).await
    }

    /// Cancel with the CME Rule 536-B query parameters the spec requires
    /// for futures and futures options: `manualIndicator` and `extOperator`
    /// (`compliance = Some((manual, operator))`).
    pub async fn cancel_order_as(
        &self,
        account: &str,
        order_id: &str,
        compliance: Option<(bool, &str)>,
    ) -> Result<CancelResponse, IbkrError> {
        let path = format!("/iserver/account/{account}/order/{order_id}");
        let query: Vec<(&str, String)> = match compliance {
            Some((manual, operator)) => vec![
                ("manualIndicator", manual.to_string()),
                ("extOperator", operator.to_owned()),
            ],
            None => Vec::new(),
        };
        self.call(Method::DELETE, &path, &query, None).await
    }

    /// `GET /iserver/account/orders?filters=&force=`, with its pre-flight
    /// rule: the first call of a session (and any `force` call) may answer
    /// with an empty list while the gateway collects orders, so an empty
    /// first answer is followed by one more request (the pacer spaces them
    /// by the endpoint's 5 seconds).
    pub async fn live_orders(
        &self,
        filters: &[OrderStatus],
        force: bool,
    ) -> Result<LiveOrders, IbkrError> {
        let first = !self.inner.orders_called.swap(true, Ordering::Relaxed);
        let r = self.live_orders_once(filters, force).await?;
        if r.orders.is_empty() && (first || force) {
            return self.live_orders_once(filters, false).await;
        }
        Ok(r)
    }

    async fn live_orders_once(
        &self,
        filters: &[OrderStatus],
        force: bool,
    ) -> Result<LiveOrders, IbkrError> {
        let mut q = Vec::new();
        if !filters.is_empty() {
            let f: Vec<&str> = filters
                .iter()
                .map(|s| cpapi::spelling::status_filter(*s))
                .collect();
            q.push(("filters", f.join(",")));
        }
        if force {
            q.push(("force", "true".to_owned()));
        }
        self.get("/iserver/account/orders", &q).await
    }

    /// `GET /iserver/account/order/status/{orderId}`.
    pub async fn order_status(&self, order_id: &str) -> Result<OrderStatusInfo, IbkrError> {
        self.get(&format!("/iserver/account/order/status/{order_id}"), &[])
            .await
    }

    /// `GET /iserver/account/trades?days=` (days 1..=7; none = today).
    pub async fn trades(&self, days: Option<u8>) -> Result<Vec<Trade>, IbkrError> {
        let q: Vec<(&str, String)> = days.map(|d| ("days", d.to_string())).into_iter().collect();
        self.get("/iserver/account/trades", &q).await
    }

    /// `POST /iserver/questions/suppress`.
    pub async fn suppress_questions(
        &self,
        message_ids: &[&str],
    ) -> Result<StatusResponse, IbkrError> {
        self.post(
            "/iserver/questions/suppress",
            Some(serde_json::json!({"messageIds": message_ids})),
        )
        .await
    }

    /// `POST /iserver/questions/suppress/reset`.
    pub async fn reset_suppressed_questions(&self) -> Result<StatusResponse, IbkrError> {
        self.post("/iserver/questions/suppress/reset", None).await
    }

    /// `POST /iserver/notification`: answer a server prompt from `ntf`.
    /// The response is a bare status text.
    pub async fn answer_notification(
        &self,
        order_id: i64,
        req_id: &str,
        text: &str,
    ) -> Result<String, IbkrError> {
        let body = cpapi::messages::NotificationAnswer {
            order_id,
            req_id: req_id.to_owned(),
            text: text.to_owned(),
        };
        let body = serde_json::to_value(body).map_err(|e| IbkrError::Decode {
            endpoint: "/iserver/notification".to_owned(),
            message: format!("cannot encode the answer: {e}"),
            snippet: String::new(),
        })?;
        let bytes = self
            .send(Method::POST, "/iserver/notification", &[], Some(&body))
            .await?;
        Ok(match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(serde_json::Value::String(s)) => s,
            Ok(other) => other.to_string(),
            Err(_) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        })
    }

    // ---------------------------------------------------------- portfolio

    /// `GET /portfolio/{acct}/positions/{page}` (pages of up to 100).
    pub async fn positions_page(
        &self,
        account: &str,
        page: u32,
    ) -> Result<Vec<PortfolioPosition>, IbkrError> {
        self.get(&format!("/portfolio/{account}/positions/{page}"), &[])
            .await
    }

    /// Every page of positions: pages are read until one is short or empty.
    pub async fn positions(&self, account: &str) -> Result<Vec<PortfolioPosition>, IbkrError> {
        const PAGE: usize = 100;
        let mut all = Vec::new();
        for page in 0..1000 {
            let p = self.positions_page(account, page).await?;
            let n = p.len();
            all.extend(p);
            if n < PAGE {
                break;
            }
        }
        Ok(all)
    }

    /// `GET /portfolio2/{acct}/positions` (near real time, no paging).
    pub async fn positions2(&self, account: &str) -> Result<Vec<PortfolioPosition>, IbkrError> {
        self.get(&format!("/portfolio2/{account}/positions"), &[])
            .await
    }

    /// `GET /portfolio/{acct}/summary`.
    pub async fn portfolio_summary(&self, account: &str) -> Result<PortfolioSummary, IbkrError> {
        self.get(&format!("/portfolio/{account}/summary"), &[])
            .await
    }

    /// `GET /portfolio/{acct}/ledger`.
    pub async fn ledger(&self, account: &str) -> Result<Ledger, IbkrError> {
        self.get(&format!("/portfolio/{account}/ledger"), &[]).await
    }
}

/// Parameters of both history endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRequest {
    /// The contract.
    pub conid: Conid,
    /// `1d`, `1w`, ...
    pub period: String,
    /// `1min`, `1h`, `1d`, ...
    pub bar: String,
    /// `YYYYMMDD-HH:MM:SS` UTC.
    pub start_time: Option<String>,
    /// `outsideRth`: include bars outside regular trading hours.
    pub outside_rth: bool,
    /// `exchange` to take the data from; `None` leaves it out (SMART).
    pub exchange: Option<String>,
    /// `/hmds/history` only: Last, Bid, Ask, Midpoint, ...
    pub bar_type: Option<String>,
}

impl HistoryRequest {
    /// A request for `period` of `bar` bars with nothing else set: no
    /// `startTime` (the gateway's default range), regular trading hours
    /// only, no exchange, no bar type.
    pub fn new(conid: Conid, period: &str, bar: &str) -> Self {
        HistoryRequest {
            conid,
            period: period.into(),
            bar: bar.into(),
            start_time: None,
            outside_rth: false,
            exchange: None,
            bar_type: None,
        }
    }

    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("conid", self.conid.to_string()),
            ("period", self.period.clone()),
            ("bar", self.bar.clone()),
            ("outsideRth", self.outside_rth.to_string()),
        ];
        if let Some(s) = &self.start_time {
            q.push(("startTime", s.clone()));
        }
        if let Some(e) = &self.exchange {
            q.push(("exchange", e.clone()));
        }
        if let Some(b) = &self.bar_type {
            q.push(("barType", b.clone()));
        }
        q
    }
}

fn join(conids: &[Conid]) -> String {
    conids
        .iter()
        .map(Conid::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn history_error(endpoint: &str, e: cpapi::history::HistoryError) -> IbkrError {
    use cpapi::history::HistoryError as H;
    match e {
        H::Api(message) => IbkrError::Api {
            endpoint: endpoint.into(),
            message,
        },
        H::Html { snippet } => IbkrError::Html {
            endpoint: endpoint.into(),
            status: 200,
            snippet,
        },
        other => IbkrError::Decode {
            endpoint: endpoint.into(),
            message: other.to_string(),
            snippet: String::new(),
        },
    }
}

/// The one check of every answer, before decoding: a non-success status,
/// an HTML page where JSON was expected, or a 2xx `{"error": ...}` body
/// each become their [`IbkrError`] variant. Public so the fuzz tests drive
/// exactly what the client runs.
pub fn check_response(endpoint: &str, status: u16, body: &[u8]) -> Result<(), IbkrError> {
    if !(200..300).contains(&status) {
        return Err(IbkrError::from_status(endpoint, status, body));
    }
    if looks_like_html(body) {
        return Err(IbkrError::Html {
            endpoint: endpoint.to_owned(),
            status,
            snippet: snippet(body),
        });
    }
    if let Some(message) = api_error(body) {
        return Err(IbkrError::Api {
            endpoint: endpoint.to_owned(),
            message,
        });
    }
    Ok(())
}

/// The redirect rule: none at all with an unverified certificate (a
/// loopback endpoint must not be able to send the client, certificate
/// checks off, to another host); otherwise only within the base URL's
/// scheme, host and port, at most 5 in a row. A redirect not followed
/// comes back as its 3xx answer, which [`IbkrClient::send`] turns into
/// [`IbkrError::Redirect`].
fn redirect_policy(base: &Url, insecure: bool) -> reqwest::redirect::Policy {
    use reqwest::redirect::Policy;
    if insecure {
        return Policy::none();
    }
    let home = origin(base);
    Policy::custom(move |attempt| {
        if attempt.previous().len() > 5 || origin(attempt.url()) != home {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

/// Scheme, host and port (the default port made explicit).
fn origin(u: &Url) -> (String, Option<String>, Option<u16>) {
    (
        u.scheme().to_owned(),
        u.host_str().map(str::to_ascii_lowercase),
        u.port_or_known_default(),
    )
}

/// A `Location` value as an error may show it: resolved against the base,
/// scheme, host and port only (its path or query could carry a token).
fn redirect_target(base: &Url, location: &[u8]) -> String {
    let Ok(text) = std::str::from_utf8(location) else {
        return "(unreadable Location header)".to_owned();
    };
    match base.join(text) {
        Ok(u) => match (u.host_str(), u.port_or_known_default()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
            (Some(h), None) => format!("{}://{h}", u.scheme()),
            _ => format!("{}:", u.scheme()),
        },
        Err(_) => "(unparsable Location header)".to_owned(),
    }
}

/// Decode a body, naming the path of the field that did not fit.
pub fn decode<T: DeserializeOwned>(endpoint: &str, body: &[u8]) -> Result<T, IbkrError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| IbkrError::Decode {
        endpoint: endpoint.to_owned(),
        message: e.to_string(),
        snippet: snippet(body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_tls_only_for_loopback() {
        for ok in [
            "https://localhost:5000/v1/api",
            "https://127.0.0.1:5000/v1/api",
            "https://[::1]:5000/v1/api",
        ] {
            let c = ClientConfig {
                accept_invalid_certs: true,
                ..ClientConfig::with_base_url(ok)
            };
            assert!(IbkrClient::new(c).is_ok(), "{ok}");
        }
        let c = ClientConfig {
            accept_invalid_certs: true,
            ..ClientConfig::with_base_url("https://api.ibkr.com/v1/api")
        };
        assert!(matches!(IbkrClient::new(c), Err(IbkrError::Config(_))));
        assert!(
            IbkrClient::new(ClientConfig::with_base_url("https://api.ibkr.com/v1/api")).is_ok()
        );
        assert!(IbkrClient::new(ClientConfig::with_base_url("ftp://x/")).is_err());
        assert!(IbkrClient::new(ClientConfig::with_base_url("not a url")).is_err());
    }

    #[test]
    fn urls() {
        let c = IbkrClient::new(ClientConfig::with_base_url(
            "https://localhost:5000/v1/api/",
        ))
        .unwrap();
        assert_eq!(
            c.ws_url().unwrap().as_str(),
            "wss://localhost:5000/v1/api/ws"
        );
        let u = c.url("/iserver/accounts", &[("a", "b c".into())]).unwrap();
        assert_eq!(
            u.as_str(),
            "https://localhost:5000/v1/api/iserver/accounts?a=b+c"
        );
    }
}
