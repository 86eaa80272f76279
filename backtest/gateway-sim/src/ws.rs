//! The websocket `/v1/api/ws`.
//!
//! The upgrade needs the `api` cookie equal to the session token (the
//! `session` value of `/tickle`); the spec's Python example sends it as
//! `{"session":"..."}`, which is accepted too. Without it: 401.
//!
//! On connect: `system` with the username, `act` (the `/iserver/accounts`
//! object), `sts`, and the `ntf` of every unanswered server prompt
//! (`notifications.rs`). Unsolicited `ntf` and `blt` go to every socket,
//! without a subscription. Then a `system` heartbeat every `heartbeat` (assumption:
//! `{"topic":"system","hb":<epoch ms>}`; the spec says only that the
//! heartbeat carries the unix time in milliseconds).
//!
//! Topics: `smd+CONID+{"fields":[...]}` (first message: every requested
//! field the simulator has; then only fields whose value changed), `umd`;
//! `sor+{}` / `uor+{}` (order updates as they happen, no initial list, as
//! the spec advises calling `/iserver/account/orders` first); `str+{...}` /
//! `utr` (unless `realtimeUpdatesOnly`, the executions of the last `days`
//! first); `smh+CONID+{period, bar, outsideRth}` (the
//! `/iserver/marketdata/history` object once, with `topic`; bad parameters
//! get no answer) / `umh`; `spl` / `upl` (PnL on every change); `ssd+ACCT+{keys, fields}` /
//! `usd+ACCT` and `sld+ACCT+{keys, fields}` / `uld+ACCT` (account summary and
//! ledger at once, then every heartbeat period); `tic` (keeps the session
//! alive; no answer, the spec shows none).
//! Anything else, malformed or unknown, is ignored. Brokerage topics (smd,
//! sor, str) are ignored while the brokerage session is not authenticated.
//! Messages go out as text frames, or as binary frames while a test asks
//! for them (`GatewayHandle::binary_websocket_frames`).

use cpapi::smd::field;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};
use tokio::sync::broadcast::error::RecvError;

use engine::model::{Conid, Timestamp};

use super::accounts::accounts_json;
use super::config::Instrument;
use super::ladder::{ladder_message, LADDER_ROWS};
use super::market::Market;
use super::order_handlers::recent_trades;
use super::state::{Push, Shared, State as GwState};
use super::wire::{epoch_ms, error};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/ws", get(upgrade))
}

/// The `api` cookie's session token, bare or as `{"session": "..."}`.
fn api_cookie(headers: &HeaderMap) -> Option<String> {
    for h in headers.get_all(header::COOKIE) {
        let Ok(s) = h.to_str() else { continue };
        for part in s.split(';') {
            let Some((k, v)) = part.trim().split_once('=') else {
                continue;
            };
            if k.trim() != "api" {
                continue;
            }
            let v = v.trim().trim_matches('"');
            if v.starts_with('{') {
                if let Ok(j) = serde_json::from_str::<Value>(v) {
                    if let Some(t) = j.get("session").and_then(Value::as_str) {
                        return Some(t.to_owned());
                    }
                }
                continue;
            }
            return Some(v.to_owned());
        }
    }
    None
}

async fn upgrade(
    State(sh): State<Arc<Shared>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let connection = {
        let mut st = sh.lock();
        let allowed =
            st.session.connected() && api_cookie(&headers).as_deref() == Some(st.session.token());
        allowed.then(|| st.log.ws_connected())
    };
    let Some(connection) = connection else {
        return error(
            StatusCode::UNAUTHORIZED,
            "websocket needs the api cookie of the current session",
        );
    };
    ws.on_upgrade(move |socket| run(socket, sh, connection))
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One market data subscription: requested fields and what was last sent.
struct MdSub {
    fields: Vec<String>,
    sent: BTreeMap<String, String>,
}

/// The socket's BookTrader ladder (`sbd`): which contract, its tick, and
/// the last ladder sent (a quote change that leaves the ladder as it was,
/// such as volume, sends nothing).
struct LadderSub {
    account: String,
    conid: Conid,
    tick: Decimal,
    sent: Option<Value>,
}

impl LadderSub {
    /// The ladder for `fields` if it differs from the last one sent.
    fn update(&mut self, fields: &BTreeMap<String, String>) -> Option<Value> {
        let m = ladder_message(&self.account, self.conid, fields, self.tick, LADDER_ROWS)?;
        if self.sent.as_ref() == Some(&m) {
            return None;
        }
        self.sent = Some(m.clone());
        Some(m)
    }
}

#[derive(Default)]
struct Subs {
    md: HashMap<Conid, MdSub>,
    orders: bool,
    trades: bool,
    pnl: bool,
    /// `ssd` / `sld` subscriptions: (keys, fields) filters.
    summary: Option<(Vec<String>, Vec<String>)>,
    ledger: Option<(Vec<String>, Vec<String>)>,
    /// One ladder per socket: `ubd+ACCT` names only the account, and the
    /// simulator has one account, so a new `sbd` replaces the ladder.
    ladder: Option<LadderSub>,
}

fn strings(v: &Value, k: &str) -> Vec<String> {
    v.get(k)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The periodic account messages (`ssd`, `sld`) of a socket.
fn account_messages(sh: &Shared, subs: &Subs) -> Vec<Value> {
    if subs.summary.is_none() && subs.ledger.is_none() {
        return Vec::new();
    }
    let mut guard = sh.lock();
    let st = &mut *guard;
    super::portfolio::refresh(st, sh);
    let acct = &sh.cfg.account;
    let mut out = Vec::new();
    if let Some((k, f)) = &subs.summary {
        out.push(super::portfolio::ssd_message(st, acct, k, f));
    }
    if let Some((k, f)) = &subs.ledger {
        out.push(super::portfolio::sld_message(st, acct, k, f));
    }
    out
}

/// An smd message with the requested fields that changed since the last
/// one; `None` when nothing changed.
fn smd_delta(
    conid: Conid,
    sub: &mut MdSub,
    fields: &BTreeMap<String, String>,
    updated: i64,
) -> Option<Value> {
    let first = sub.sent.is_empty();
    let mut o = Map::new();
    for f in &sub.fields {
        let Some(v) = fields.get(f) else { continue };
        if sub.sent.get(f) != Some(v) {
            o.insert(f.clone(), json!(v));
            sub.sent.insert(f.clone(), v.clone());
        }
    }
    if o.is_empty() {
        return None;
    }
    o.insert("server_id".into(), json!("q0"));
    o.insert("conidEx".into(), json!(conid.to_string()));
    o.insert("conid".into(), json!(conid.0));
    o.insert("_updated".into(), json!(updated));
    if first {
        o.insert(field::DELIVERY_MARKER.into(), json!("q0"));
    }
    o.insert("topic".into(), json!(format!("smd+{conid}")));
    Some(Value::Object(o))
}

/// Serve one websocket; `connection` is its number in the request log.
async fn run(socket: WebSocket, sh: Arc<Shared>, connection: usize) {
    let (mut tx, mut rx) = socket.split();
    let mut events = sh.events.subscribe();
    let (token, authenticated, prompts) = {
        let st = sh.lock();
        (
            st.session.token().to_owned(),
            st.session.authenticated(),
            super::notifications::unanswered(&st),
        )
    };
    let sid = super::accounts::session_id(&token);
    let hello = [
        json!({ "topic": "system", "success": sh.cfg.username }),
        json!({ "topic": "act", "args": accounts_json(&sh.cfg.account, &sid) }),
        json!({ "topic": "sts", "args": { "authenticated": authenticated } }),
    ];
    for m in hello.into_iter().chain(prompts) {
        if tx.send(frame(&sh, m.to_string())).await.is_err() {
            return;
        }
    }
    let mut hb = tokio::time::interval(sh.cfg.heartbeat);
    hb.tick().await; // the first tick is immediate
    let mut subs = Subs::default();
    loop {
        let out: Vec<Value> = tokio::select! {
            msg = rx.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    sh.lock().log.ws_message(connection, t.as_str());
                    handle_caught(t.as_str(), &sh, &mut subs)
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => Vec::new(),
            },
            ev = events.recv() => match ev {
                Ok(Push::Disconnect) | Err(RecvError::Closed) => break,
                Ok(p) => on_push(p, &mut subs),
                Err(RecvError::Lagged(_)) => Vec::new(),
            },
            _ = hb.tick() => {
                // Account summary and ledger follow the heartbeat period
                // (the spec: sld "every 10 seconds").
                let mut out = account_messages(&sh, &subs);
                if !sh.lock().faults.heartbeats_stopped {
                    out.push(json!({ "topic": "system", "hb": wall_ms() }));
                }
                out
            }
        };
        for m in out {
            // A top-level JSON string is a raw frame (fault injection).
            let text = match m {
                Value::String(raw) => raw,
                other => other.to_string(),
            };
            if tx.send(frame(&sh, text)).await.is_err() {
                return;
            }
        }
    }
    let _ = tx.send(Message::Close(None)).await;
}

/// A text frame, or a binary one carrying the same bytes while binary
/// frames are asked for.
fn frame(sh: &Shared, text: String) -> Message {
    if sh.lock().faults.binary_frames {
        Message::Binary(text.into_bytes().into())
    } else {
        Message::Text(text.into())
    }
}

fn on_push(p: Push, subs: &mut Subs) -> Vec<Value> {
    match p {
        Push::Order(o) if subs.orders => vec![json!({ "topic": "sor", "args": [o] })],
        Push::Trade(t) if subs.trades => vec![json!({ "topic": "str", "args": [t] })],
        Push::Raw(t) => vec![Value::String(t)],
        Push::Ntf(args) => vec![super::notifications::ntf_message(args)],
        Push::Blt(args) => vec![super::notifications::blt_message(args)],
        Push::Pnl(msg) if subs.pnl => vec![msg],
        Push::Sts { authenticated } => {
            vec![json!({ "topic": "sts", "args": { "authenticated": authenticated } })]
        }
        Push::Quote {
            conid,
            fields,
            updated,
        } => {
            let md = subs
                .md
                .get_mut(&conid)
                .and_then(|sub| smd_delta(conid, sub, &fields, updated));
            let ladder = subs
                .ladder
                .as_mut()
                .filter(|l| l.conid == conid)
                .and_then(|l| l.update(&fields));
            md.into_iter().chain(ladder).collect()
        }
        _ => Vec::new(),
    }
}

/// `TOPIC+TARGET+{ARGS}` split into its parts; the target is optional.
fn parse_topic(msg: &str) -> (&str, Option<&str>, Value) {
    let mut parts = msg.splitn(3, '+');
    let topic = parts.next().unwrap_or("").trim();
    let second = parts.next().map(str::trim);
    let third = parts.next().map(str::trim);
    let (target, args) = match (second, third) {
        (Some(s), None) if s.starts_with('{') => (None, Some(s)),
        (s, a) => (s.filter(|s| !s.is_empty()), a),
    };
    let args = args
        .and_then(|a| serde_json::from_str(a).ok())
        .unwrap_or(Value::Null);
    (topic, target, args)
}

/// The contract's quote fields at the replay clock (brought up to date
/// first), for the first message of a new subscription.
fn quote_now(
    st: &mut GwState,
    sh: &Shared,
    inst: &Instrument,
) -> Option<(BTreeMap<String, String>, Timestamp)> {
    sh.pump(st);
    let now = st.clock.now();
    let q = st.market.quote(inst.conid, now, inst.tick_size)?;
    Some((Market::quote_fields(inst, &q), now))
}

/// [`handle`], with a panic caught and logged: a message that trips a bug
/// is ignored (with an ERROR line) and the socket goes on serving, rather
/// than the socket task dying (issue 12: `smh` with `"period":"99999999y"`
/// used to kill it).
fn handle_caught(msg: &str, sh: &Shared, subs: &mut Subs) -> Vec<Value> {
    super::state::guarded(|| handle(msg, sh, subs)).unwrap_or_else(|why| {
        let shown: String = msg.chars().take(200).collect();
        tracing::error!("sim gateway: websocket message {shown:?} failed ({why}); ignored");
        Vec::new()
    })
}

fn handle(msg: &str, sh: &Shared, subs: &mut Subs) -> Vec<Value> {
    let msg = msg.trim();
    let (topic, target, args) = parse_topic(msg);
    let mut st = sh.lock();
    if topic == "tic" {
        st.session.touch();
        return Vec::new();
    }
    let brokerage = st.session.authenticated();
    match topic {
        "smd" if brokerage => {
            let Some(conid) = target
                .and_then(|t| t.split('@').next())
                .and_then(|t| t.parse::<Conid>().ok())
            else {
                return Vec::new();
            };
            let Some(inst) = sh.instrument(conid) else {
                return Vec::new();
            };
            let fields: Vec<String> = match args.get("fields").and_then(Value::as_array) {
                Some(f) => f
                    .iter()
                    .filter_map(|x| match x {
                        Value::String(s) => Some(s.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .collect(),
                None => [field::LAST, field::BID, field::ASK]
                    .map(str::to_owned)
                    .to_vec(),
            };
            let mut sub = MdSub {
                fields,
                sent: BTreeMap::new(),
            };
            let first = quote_now(&mut st, sh, inst)
                .and_then(|(f, now)| smd_delta(conid, &mut sub, &f, epoch_ms(now)));
            subs.md.insert(conid, sub);
            first.into_iter().collect()
        }
        "smh" if brokerage => {
            let Some(conid) = target.and_then(|t| t.split('@').next()) else {
                return Vec::new();
            };
            let mut q: HashMap<String, String> = HashMap::new();
            q.insert("conid".into(), conid.to_owned());
            for k in ["period", "bar", "exchange", "outsideRth"] {
                match args.get(k) {
                    Some(Value::String(v)) => {
                        q.insert(k.into(), v.clone());
                    }
                    Some(Value::Bool(b)) => {
                        q.insert(k.into(), b.to_string());
                    }
                    _ => {}
                }
            }
            match super::market::iserver_history_json(&mut st, sh, &q) {
                Ok(mut v) => {
                    v["topic"] = json!(format!("smh+{conid}"));
                    vec![v]
                }
                Err((_, why)) => {
                    tracing::debug!("sim gateway: smh refused: {why}");
                    Vec::new()
                }
            }
        }
        "sbd" if brokerage => {
            // `sbd+ACCT+CONID[+EXCHANGE]`: split here, parse_topic would
            // read `CONID+EXCHANGE` as JSON arguments. The exchange is
            // accepted and ignored (one simulated venue).
            let parts: Vec<&str> = msg.split('+').map(str::trim).collect();
            let (account, conid) = match parts.as_slice() {
                [_, a, c] | [_, a, c, _] => (*a, c.parse::<Conid>().ok()),
                _ => return Vec::new(),
            };
            let Some(conid) = conid else {
                return Vec::new();
            };
            if account != sh.cfg.account {
                return Vec::new();
            }
            let Some(inst) = sh.instrument(conid) else {
                return Vec::new();
            };
            let mut sub = LadderSub {
                account: account.to_owned(),
                conid,
                tick: inst.tick_size,
                sent: None,
            };
            let first = quote_now(&mut st, sh, inst).and_then(|(f, _)| sub.update(&f));
            subs.ladder = Some(sub);
            first.into_iter().collect()
        }
        "ubd" => {
            if subs.ladder.as_ref().map(|l| Some(l.account.as_str())) == Some(target) {
                subs.ladder = None;
            }
            Vec::new()
        }
        "umh" => Vec::new(),
        "umd" => {
            if let Some(conid) = target.and_then(|t| t.split('@').next()?.parse::<Conid>().ok()) {
                subs.md.remove(&conid);
            }
            Vec::new()
        }
        "sor" if brokerage => {
            subs.orders = true;
            Vec::new()
        }
        "uor" => {
            subs.orders = false;
            Vec::new()
        }
        "str" if brokerage => {
            subs.trades = true;
            let realtime = args
                .get("realtimeUpdatesOnly")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if realtime {
                return Vec::new();
            }
            let days = args.get("days").and_then(Value::as_i64).unwrap_or(1);
            let past = recent_trades(&st, sh, days);
            if past.is_empty() {
                Vec::new()
            } else {
                vec![json!({ "topic": "str", "args": past })]
            }
        }
        "utr" => {
            subs.trades = false;
            Vec::new()
        }
        "spl" => {
            subs.pnl = true;
            super::portfolio::refresh(&mut st, sh);
            vec![super::portfolio::spl_message(&st, &sh.cfg.account)]
        }
        "upl" => {
            subs.pnl = false;
            Vec::new()
        }
        "ssd" | "sld" if target == Some(sh.cfg.account.as_str()) => {
            let filters = Some((strings(&args, "keys"), strings(&args, "fields")));
            if topic == "ssd" {
                subs.summary = filters;
            } else {
                subs.ledger = filters;
            }
            drop(st);
            let mut only = Subs::default();
            if topic == "ssd" {
                only.summary = subs.summary.clone();
            } else {
                only.ledger = subs.ledger.clone();
            }
            account_messages(sh, &only)
        }
        "usd" => {
            subs.summary = None;
            vec![json!({ "result": "unsubscribed from summary" })]
        }
        "uld" => {
            subs.ledger = None;
            vec![json!({ "result": "unsubscribed from ledger" })]
        }
        _ => {
            tracing::debug!(topic, "sim gateway: ignoring websocket message");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse() {
        let (t, target, args) = parse_topic(r#"smd+265598+{"fields":["31","84"]}"#);
        assert_eq!((t, target), ("smd", Some("265598")));
        assert_eq!(args["fields"][1], "84");
        let (t, target, args) = parse_topic(r#"str+{"days":2}"#);
        assert_eq!((t, target), ("str", None));
        assert_eq!(args["days"], 2);
        let (t, target, args) = parse_topic("tic");
        assert_eq!((t, target, args), ("tic", None, Value::Null));
        let (t, _, args) = parse_topic("smd+1+{not json");
        assert_eq!((t, args), ("smd", Value::Null));
        let (t, _, _) = parse_topic("");
        assert_eq!(t, "");
    }

    #[test]
    fn cookie_forms() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "x=1; api=abc123".parse().unwrap());
        assert_eq!(api_cookie(&h).as_deref(), Some("abc123"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, r#"api={"session":"s1"}"#.parse().unwrap());
        assert_eq!(api_cookie(&h).as_deref(), Some("s1"));
        assert_eq!(api_cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn ladder_sent_on_change_only_and_for_its_conid() {
        let mut subs = Subs {
            ladder: Some(LadderSub {
                account: "DU1".into(),
                conid: Conid(1),
                tick: Decimal::new(1, 2),
                sent: None,
            }),
            ..Subs::default()
        };
        let quote = |conid: i64, last: &str, volume: &str| Push::Quote {
            conid: Conid(conid),
            fields: [
                ("31".to_owned(), last.to_owned()),
                ("84".to_owned(), "9.99".to_owned()),
                ("86".to_owned(), "10.01".to_owned()),
                ("87".to_owned(), volume.to_owned()),
            ]
            .into(),
            updated: 1,
        };
        let first = on_push(quote(1, "10", "1K"), &mut subs);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0]["topic"], "sbd+DU1+1");
        assert!(
            on_push(quote(1, "10", "2K"), &mut subs).is_empty(),
            "same ladder"
        );
        assert!(
            on_push(quote(2, "11", "2K"), &mut subs).is_empty(),
            "other conid"
        );
        assert_eq!(on_push(quote(1, "10.01", "2K"), &mut subs).len(), 1);
    }

    #[test]
    fn smd_sends_changes_only() {
        let mut sub = MdSub {
            fields: vec!["31".into(), "84".into()],
            sent: BTreeMap::new(),
        };
        let mut f: BTreeMap<String, String> =
            [("31".into(), "10".into()), ("84".into(), "9.99".into())].into();
        let first = smd_delta(Conid(1), &mut sub, &f, 1).unwrap();
        assert_eq!(first["31"], "10");
        assert_eq!(first["topic"], "smd+1");
        assert!(smd_delta(Conid(1), &mut sub, &f, 2).is_none());
        f.insert("31".into(), "10.01".into());
        let d = smd_delta(Conid(1), &mut sub, &f, 3).unwrap();
        assert_eq!(d["31"], "10.01");
        assert!(d.get("84").is_none());
        assert!(d.get("6119").is_none());
    }
}
