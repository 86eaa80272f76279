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

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use engine::model::Conid;

use super::config::Instrument;
use super::session::{SERVER_NAME, SERVER_VERSION};
use super::state::Shared;
use super::wire::{bad_request, ok, truthy};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/iserver/accounts", get(iserver_accounts))
        .route("/portfolio/accounts", get(portfolio_accounts))
        .route(
            "/iserver/secdef/search",
            get(secdef_search).post(secdef_search),
        )
        .route("/iserver/contract/{conid}/info", get(contract_info))
        .route("/trsrv/secdef", get(trsrv_secdef))
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

async fn iserver_accounts(State(sh): State<Arc<Shared>>) -> Response {
    let session = sh.lock().session.token().to_owned();
    // The spec's sessionId looks like "1234a5b.12345678", not the cookie;
    // the first 16 hex digits of the token keep it stable per session.
    let sid = format!(
        "{}.{}",
        &session[..7.min(session.len())],
        &session[7..15.min(session.len())]
    );
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
    let Ok(conid) = conid.parse::<Conid>() else {
        return bad_request(format!("conid {conid:?} is not a number"));
    };
    let Some(i) = sh.instrument(conid) else {
        return bad_request(format!("no contract for conid {conid}"));
    };
    ok(json!({
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
    }))
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
        out.push(json!({
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
        }));
    }
    ok(json!({ "secdef": out }))
}
