//! Accounts and contract reference data: `/iserver/accounts`,
//! `/portfolio/accounts`, `/iserver/secdef/search`,
//! `/iserver/contract/{conid}/info`, `/trsrv/secdef`.
//!
//! Shapes follow the spec's examples key for key. Unknown conids: the
//! contract info endpoint answers 400 `{"error": ...}` and `/trsrv/secdef`
//! leaves them out; a search without matches answers `[]` (the spec shows
//! neither case).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use engine::model::Conid;

use super::config::Instrument;
use super::session::{SERVER_NAME, SERVER_VERSION};
use super::state::Shared;
use super::wire::{bad_request, num, ok, truthy};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/iserver/accounts", get(iserver_accounts))
        .route("/portfolio/accounts", get(portfolio_accounts))
        .route(
            "/iserver/secdef/search",
            get(secdef_search).post(secdef_search),
        )
        .route("/iserver/contract/{conid}/info", get(contract_info))
        .route(
            "/iserver/contract/{conid}/info-and-rules",
            get(info_and_rules),
        )
        .route("/trsrv/secdef", get(trsrv_secdef))
        .route("/trsrv/stocks", get(trsrv_stocks))
        .route("/iserver/secdef/info", get(secdef_info))
        .route("/trsrv/secdef/schedule", get(schedule))
        .route("/iserver/contract/rules", post(contract_rules))
}

/// The `/iserver/accounts` object; the websocket `act` topic carries the
/// same object as its `args`.
pub(crate) fn accounts_json(account: &str, session: &str) -> Value {
    json!({
        "accounts": [account],
        "acctProps": {
            account: {
                "hasChildAccounts": false,
                "supportsCashQty": true,
                "noFXConv": false,
                "isProp": false,
                "supportsFractions": false,
                "allowCustomerTime": false
            }
        },
        "aliases": { account: account },
        "allowFeatures": {
            "showGFIS": true,
            "showEUCostReport": false,
            "allowEventContract": true,
            "allowFXConv": false,
            "allowFinancialLens": false,
            "allowMTA": false,
            "allowTypeAhead": true,
            "allowEventTrading": true,
            "snapshotRefreshTimeout": 30,
            "liteUser": false,
            "showWebNews": false,
            "research": false,
            "debugPnl": false,
            "showTaxOpt": false,
            "showImpactDashboard": false,
            "allowDynAccount": false,
            "allowCrypto": false,
            "allowedAssetTypes": "STK"
        },
        "chartPeriods": { "STK": ["*"], "CRYPTO": ["*"] },
        "groups": [],
        "profiles": [],
        "selectedAccount": account,
        "serverInfo": { "serverName": SERVER_NAME, "serverVersion": SERVER_VERSION },
        "sessionId": session,
        "isFT": false,
        "isPaper": true
    })
}

/// The `sessionId` of `/iserver/accounts` and `act` ("1234a5b.12345678" in
/// the spec): derived from the token by a one-way hash, so it is stable per
/// session without revealing the cookie value.
pub(crate) fn session_id(token: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    token.hash(&mut h);
    let x = h.finish();
    format!("{:07x}.{:08x}", (x >> 40) & 0xfff_ffff, x & 0xffff_ffff)
}

async fn iserver_accounts(State(sh): State<Arc<Shared>>) -> Response {
    let sid = session_id(sh.lock().session.token());
    ok(accounts_json(&sh.cfg.account, &sid))
}

async fn portfolio_accounts(State(sh): State<Arc<Shared>>) -> Response {
    let a = &sh.cfg.account;
    ok(json!([{
        "id": a,
        "PrepaidCrypto-Z": false,
        "PrepaidCrypto-P": false,
        "brokerageAccess": true,
        "accountId": a,
        "accountVan": a,
        "accountTitle": "",
        "displayName": a,
        "accountAlias": null,
        "accountStatus": 1644814800000i64,
        "currency": "USD",
        "type": "DEMO",
        "tradingType": "PMRGN",
        "businessType": "IB_PROSERVE",
        "ibEntity": "IBLLC-US",
        "faclient": false,
        "clearingStatus": "O",
        "covestor": false,
        "noClientTrading": false,
        "trackVirtualFXPortfolio": true,
        "parent": {
            "mmc": [],
            "accountId": "",
            "isMParent": false,
            "isMChild": false,
            "isMultiplex": false
        },
        "desc": a
    }]))
}

fn search_entry(i: &Instrument) -> Value {
    json!({
        "conid": i.conid.to_string(),
        "companyHeader": format!("{} - {}", i.company_name, i.listing_exchange),
        "companyName": i.company_name,
        "symbol": i.symbol,
        "description": i.listing_exchange,
        "restricted": null,
        "sections": [{ "secType": i.sec_type }],
        "secType": i.sec_type
    })
}

/// `?symbol=AAPL` matches the symbol exactly (case-insensitive); with
/// `name=true` the symbol is searched in company names. `secType` other
/// than the instrument's filters it out.
async fn secdef_search(
    State(sh): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(symbol) = q.get("symbol").map(|s| s.trim().to_ascii_uppercase()) else {
        return bad_request("symbol is required");
    };
    let by_name = truthy(q.get("name").map(String::as_str));
    let sec_type = q.get("secType").map(|s| s.trim().to_ascii_uppercase());
    let found: Vec<Value> = sh
        .instruments
        .values()
        .filter(|i| {
            if by_name {
                i.company_name.to_ascii_uppercase().contains(&symbol)
            } else {
                i.symbol.eq_ignore_ascii_case(&symbol)
            }
        })
        .filter(|i| sec_type.as_deref().is_none_or(|t| t == i.sec_type))
        .map(search_entry)
        .collect();
    ok(Value::Array(found))
}

fn valid_exchanges(i: &Instrument) -> String {
    format!("SMART,{},{}", i.listing_exchange, i.execution_exchange)
}

async fn contract_info(State(sh): State<Arc<Shared>>, Path(conid): Path<String>) -> Response {
    match path_instrument(&sh, &conid) {
        Ok(i) => ok(info_json(&sh, i)),
        Err(e) => bad_request(e),
    }
}

/// `/iserver/contract/{conid}/info-and-rules?isBuy=`: the info object with
/// the rules object under `rules`.
async fn info_and_rules(State(sh): State<Arc<Shared>>, Path(conid): Path<String>) -> Response {
    let i = match path_instrument(&sh, &conid) {
        Ok(i) => i,
        Err(e) => return bad_request(e),
    };
    let mut info = info_json(&sh, i);
    info["rules"] = rules_json(&sh, i);
    ok(info)
}

/// The instrument a `{conid}` path segment names, or why there is none.
fn path_instrument<'a>(sh: &'a Shared, conid: &str) -> Result<&'a Instrument, String> {
    let Ok(conid) = conid.parse::<Conid>() else {
        return Err(format!("conid {conid:?} is not a number"));
    };
    sh.instrument(conid)
        .ok_or_else(|| format!("no contract for conid {conid}"))
}

/// The `/iserver/contract/{conid}/info` object.
fn info_json(sh: &Shared, i: &Instrument) -> Value {
    let conid = i.conid;
    let mut info = json!({
        "cfi_code": "",
        "symbol": i.symbol,
        "cusip": null,
        "expiry_full": null,
        "con_id": i.conid.0,
        "maturity_date": null,
        "industry": i.industry,
        "instrument_type": i.sec_type,
        "trading_class": if i.listing_exchange == "NASDAQ" { "NMS" } else { i.listing_exchange.as_str() },
        "valid_exchanges": valid_exchanges(i),
        "allow_sell_long": false,
        "is_zero_commission_security": false,
        "local_symbol": i.symbol,
        "contract_clarification_type": null,
        "classifier": null,
        "currency": i.currency,
        "text": null,
        "underlying_con_id": 0,
        "r_t_h": true,
        "multiplier": null,
        "underlying_issuer": null,
        "contract_month": null,
        "company_name": i.company_name,
        "smart_available": true,
        "exchange": "SMART",
        "category": i.category
    });
    if let Some(pair) = sh.forecast.pair(conid) {
        // An event contract: its options-style description, its market's
        // index as the underlying, its resolution date, its one venue.
        info["local_symbol"] = json!(sh.forecast.short_description(conid));
        info["underlying_con_id"] = json!(pair.underlying.0);
        info["maturity_date"] = json!(pair.expiration);
        info["exchange"] = json!(super::events::FORECASTX);
        info["smart_available"] = json!(false);
        info["multiplier"] = json!("1");
    }
    info
}

/// One contract as `/trsrv/secdef` describes it (also merged into
/// `/portfolio/{acct}/position/{conid}` answers).
pub(crate) fn secdef_entry(i: &Instrument) -> Value {
    json!({
        "conid": i.conid.0,
        "currency": i.currency,
        "time": 0,
        "chineseName": "",
        "allExchanges": valid_exchanges(i),
        "listingExchange": i.listing_exchange,
        "countryCode": "US",
        "name": i.company_name,
        "assetClass": i.sec_type,
        "expiry": null,
        "lastTradingDay": null,
        "group": i.industry,
        "putOrCall": null,
        "sector": i.sector,
        "sectorGroup": i.category,
        "strike": "0",
        "ticker": i.symbol,
        "undConid": 0,
        "multiplier": 0.0,
        "type": "COMMON",
        "hasOptions": false,
        "fullName": i.symbol,
        "isUS": true,
        "incrementRules": [{ "lowerEdge": 0.0, "increment": super::wire::num(i.tick_size) }],
        "displayRule": {
            "magnification": 0,
            "displayRuleStep": [{ "decimalDigits": i.tick_size.scale(), "lowerEdge": 0.0, "wholeDigits": 4 }]
        },
        "isEventContract": false,
        "pageSize": 100
    })
}

async fn trsrv_secdef(
    State(sh): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(list) = q.get("conids") else {
        return bad_request("conids is required");
    };
    let mut out = Vec::new();
    for part in list.split(',').filter(|p| !p.trim().is_empty()) {
        let Ok(conid) = part.parse::<Conid>() else {
            return bad_request(format!("conid {part:?} is not a number"));
        };
        let Some(i) = sh.instrument(conid) else {
            continue;
        };
        out.push(secdef_entry(i));
        if let (Some(pair), Some(rec)) = (sh.forecast.pair(conid), out.last_mut()) {
            // An event contract is an option on its market's artificial
            // index: YES a call, NO a put (spec, "Event Contracts").
            rec["isEventContract"] = json!(true);
            rec["putOrCall"] = json!(if pair.yes == conid { "C" } else { "P" });
            rec["strike"] = json!(super::wire::dstr(pair.strike));
            rec["undConid"] = json!(pair.underlying.0);
            rec["expiry"] = json!(pair.expiration);
            rec["type"] = json!("EVENT");
        }
    }
    ok(json!({ "secdef": out }))
}

/// `/trsrv/stocks?symbols=A,B`: per symbol, its issuers with their
/// listings. The simulator has one listing per stock; unknown symbols are
/// left out of the object (assumption: the spec shows known ones only).
async fn trsrv_stocks(
    State(sh): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(list) = q.get("symbols") else {
        return bad_request("symbols is required");
    };
    let mut out = serde_json::Map::new();
    for symbol in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let issuers: Vec<Value> = sh
            .instruments
            .values()
            .filter(|i| i.sec_type == "STK" && i.symbol.eq_ignore_ascii_case(symbol))
            .map(|i| {
                json!({
                    "name": i.company_name,
                    "chineseName": "",
                    "assetClass": "STK",
                    "contracts": [{
                        "conid": i.conid.0,
                        "exchange": i.listing_exchange,
                        "isUS": i.currency == "USD",
                    }],
                })
            })
            .collect();
        if !issuers.is_empty() {
            out.insert(symbol.to_ascii_uppercase(), Value::Array(issuers));
        }
    }
    ok(Value::Object(out))
}

fn query_conid(sh: &Shared, q: &HashMap<String, String>) -> Result<Conid, String> {
    let raw = q.get("conid").ok_or("conid is required")?;
    let conid: Conid = raw
        .parse()
        .map_err(|_| format!("conid {raw:?} is not a number"))?;
    if sh.instrument(conid).is_none() {
        return Err(format!("no contract for conid {conid}"));
    }
    Ok(conid)
}

/// `/iserver/secdef/info` for the simulator's stocks. Derivative security
/// types are refused with 400: the simulator lists no options or futures.
async fn secdef_info(
    State(sh): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let conid = match query_conid(&sh, &q) {
        Ok(c) => c,
        Err(e) => return bad_request(e),
    };
    let Some(i) = sh.instrument(conid) else {
        return bad_request(format!("no contract for conid {conid}"));
    };
    let sec_type = q
        .get("sectype")
        .or_else(|| q.get("secType"))
        .map(|s| s.trim().to_ascii_uppercase())
        .unwrap_or_else(|| i.sec_type.clone());
    if sec_type != i.sec_type {
        return bad_request(format!(
            "the simulator has no {sec_type} contracts for conid {conid}"
        ));
    }
    ok(json!([{
        "conid": i.conid.0,
        "symbol": i.symbol,
        "secType": i.sec_type,
        "exchange": "SMART",
        "listingExchange": i.listing_exchange,
        "right": "",
        "strike": 0.0,
        "currency": i.currency,
        "cusip": null,
        "coupon": "No Coupon",
        "desc1": i.symbol,
        "desc2": i.company_name,
        "maturityDate": "",
        "multiplier": "1",
        "tradingClass": if i.listing_exchange == "NASDAQ" { "NMS" } else { i.listing_exchange.as_str() },
        "validExchanges": valid_exchanges(i)
    }]))
}

/// US equity hours for every instrument: regular 09:30-16:00 (LIQUID),
/// extended 04:00-20:00, Monday to Friday, New York time, as the spec's
/// weekday templates (`20000103`..`20000107`), which hold for every
/// replayed date. Holidays come from the data: a weekday from a week
/// before to two weeks after the replay date, inside the data's span, on
/// which no bar of the contract overlaps 09:30-16:00 is listed under its
/// own date with no sessions and no trading times (closed). Assumption:
/// the spec promises at least one trading time per day, but a dated day
/// overrides its weekday, and an empty one is how the client reads a
/// closed day.
async fn schedule(
    State(sh): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    // The spec names conid and symbol; its own example, and clients
    // (ibind, ours), send only assetClass and symbol.
    let conid = match (q.contains_key("conid"), q.get("symbol")) {
        (false, Some(symbol)) => {
            let asset = q.get("assetClass").map(|a| a.trim().to_ascii_uppercase());
            let found = sh.instruments.values().find(|i| {
                i.symbol.eq_ignore_ascii_case(symbol.trim())
                    && asset.as_deref().is_none_or(|a| a == i.sec_type)
            });
            match found {
                Some(i) => i.conid,
                None => return bad_request(format!("no contract for symbol {symbol:?}")),
            }
        }
        _ => match query_conid(&sh, &q) {
            Ok(c) => c,
            Err(e) => return bad_request(e),
        },
    };
    let days: Vec<Value> = (3..=7)
        .map(|d| {
            json!({
                "clearingCycleEndTime": "2000",
                "tradingScheduleDate": format!("2000010{d}"),
                "sessions": [{ "openingTime": "0930", "closingTime": "1600", "prop": "LIQUID" }],
                "tradingtimes": [{ "openingTime": "0400", "closingTime": "2000", "cancelDayOrders": "Y" }]
            })
        })
        .collect();
    let closed = {
        let st = sh.lock();
        let today = st
            .clock
            .now()
            .with_timezone(&chrono_tz::America::New_York)
            .date_naive();
        st.market.closed_weekdays(
            conid,
            today - chrono::Days::new(7),
            today + chrono::Days::new(14),
        )
    };
    let days: Vec<Value> = days
        .into_iter()
        .chain(closed.into_iter().map(|d| {
            json!({
                "clearingCycleEndTime": "2000",
                "tradingScheduleDate": d.format("%Y%m%d").to_string(),
                "sessions": [],
                "tradingtimes": []
            })
        }))
        .collect();
    ok(json!([{
        "id": format!("p{}", conid.0),
        "tradeVenueId": format!("v{}", conid.0),
        "timezone": "America/New_York",
        "schedules": days
    }]))
}

/// `POST /iserver/contract/rules` with `{"conid": ..., "isBuy": ...}`: the
/// order types the simulated exchange fills, the tick, the last price as
/// the default limit and stop.
async fn contract_rules(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let conid = match super::wire::body_conid(&body) {
        Ok(c) => c,
        Err(e) => return bad_request(e),
    };
    let Some(i) = sh.instrument(conid) else {
        return bad_request(format!("no contract for conid {conid}"));
    };
    ok(rules_json(&sh, i))
}

/// The `/iserver/contract/rules` object of `i` at the current quote.
fn rules_json(sh: &Shared, i: &Instrument) -> Value {
    let conid = i.conid;
    let last = {
        let mut st = sh.lock();
        sh.pump(&mut st);
        let now = st.clock.now();
        st.market.quote(conid, now, i.tick_size).map(|q| q.last)
    };
    let last_num = last.map(num).unwrap_or(Value::Null);
    use engine::model::OrderType;
    let types = [
        OrderType::Limit,
        OrderType::MidPrice,
        OrderType::Market,
        OrderType::Stop,
        OrderType::StopLimit,
        OrderType::Trail,
        OrderType::TrailLimit,
    ]
    .map(cpapi::spelling::rules_order_type);
    let outside = [
        OrderType::Limit,
        OrderType::StopLimit,
        OrderType::TrailLimit,
    ]
    .map(cpapi::spelling::rules_order_type);
    json!({
        "algoEligible": false,
        "overnightEligible": false,
        "costReport": false,
        "canTradeAcctIds": [sh.cfg.account],
        "error": null,
        "orderTypes": types,
        "ibAlgoTypes": [],
        "fraqTypes": [],
        "forceOrderPreview": false,
        "cqtTypes": [],
        "orderDefaults": { "LMT": { "LP": last.map(|l| format!("{l:.2}")).unwrap_or_default() } },
        "orderTypesOutside": outside,
        "defaultSize": 100,
        "cashSize": 0.0,
        "sizeIncrement": 1,
        "tifTypes": ["IOC/MARKET,LIMIT,MIDPRICE,a", "GTC/o,a", "OPG/LIMIT,MARKET,a", "DAY/o,a"],
        "tifDefaults": { "TIF": "DAY", "SIZE": "100.00" },
        "limitPrice": last_num,
        "stopprice": last_num,
        "orderOrigination": null,
        "preview": true,
        "displaySize": null,
        "fraqInt": 0,
        "cashCcy": i.currency,
        "cashQtyIncr": 500,
        "priceMagnifier": null,
        "negativeCapable": false,
        "incrementType": 1,
        "incrementRules": [{ "lowerEdge": 0.0, "increment": num(i.tick_size) }],
        "hasSecondary": false,
        "increment": num(i.tick_size),
        "incrementDigits": i.tick_size.scale()
    })
}
