//! Fuzzing the simulator's HTTP handlers (issue 12): generated requests
//! (paths from the endpoint table with absurd segments, random query
//! strings, random JSON bodies and order tickets with absurd numbers, and
//! plain random bytes) against a running simulator on 127.0.0.1, over real
//! TCP. Stable Rust, proptest-driven.
//!
//! What counts as a failure:
//! * any panic in the process (a panic hook counts them: axum turns a
//!   handler panic into a dropped connection, which would otherwise look
//!   like a network error, and a panic in the replay ticker would
//!   otherwise pass unseen);
//! * a well-formed request that gets no answer (a dropped connection);
//! * `/tickle` not answering 200 after a case.
//!
//! The websocket's message handler gets the same treatment: generated
//! topic messages on one socket, which must keep answering.
//!
//! Bounded for CI: 1000 HTTP cases (about a second; a case is three
//! loopback requests and six replay hours) and 300 websocket cases by
//! default; `FUZZ_CASES` (or `PROPTEST_CASES`) overrides both. The long run:
//! `FUZZ_CASES=1000000 cargo test --release -p ibflow-gateway-sim --test gateway_fuzz -- --nocapture`
//! (it prints the cases run, the time taken and the answers by status).
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_gateway_sim as gateway_sim;

#[path = "../../../tests/support/fuzz.rs"]
mod fuzz;
mod support;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Panics anywhere in this process since the hook was installed.
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// The tests of this file run one at a time: the panic count is the
/// process's, and a panic must be blamed on the test that caused it.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// The simulator's endpoints with their methods, placeholders in braces
/// (a tenth of the cases use another method). The ones that do arithmetic
/// on what they are sent (orders, whatif, history) are listed several
/// times, so they get more of the cases.
const PATHS: &[(&str, &str)] = &[
    ("GET", "/tickle"),
    ("POST", "/tickle"),
    ("GET", "/sso/validate"),
    ("POST", "/iserver/auth/status"),
    ("POST", "/iserver/auth/ssodh/init"),
    ("POST", "/iserver/reauthenticate"),
    ("POST", "/logout"),
    ("GET", "/iserver/accounts"),
    ("GET", "/portfolio/accounts"),
    ("GET", "/iserver/secdef/search"),
    ("POST", "/iserver/secdef/search"),
    ("GET", "/iserver/contract/{conid}/info"),
    ("GET", "/iserver/contract/{conid}/info-and-rules"),
    ("POST", "/iserver/contract/rules"),
    ("GET", "/iserver/secdef/info"),
    ("GET", "/trsrv/secdef"),
    ("GET", "/trsrv/stocks"),
    ("GET", "/trsrv/secdef/schedule"),
    ("GET", "/trsrv/event/category-tree"),
    ("GET", "/trsrv/event/contracts"),
    ("GET", "/iserver/marketdata/snapshot"),
    ("GET", "/iserver/marketdata/history"),
    ("GET", "/hmds/history"),
    ("POST", "/iserver/marketdata/unsubscribe"),
    ("GET", "/iserver/marketdata/unsubscribeall"),
    ("POST", "/iserver/account/{acct}/orders"),
    ("POST", "/iserver/account/{acct}/orders"),
    ("POST", "/iserver/account/{acct}/orders"),
    ("POST", "/iserver/account/{acct}/orders"),
    ("POST", "/iserver/account/{acct}/orders"),
    ("POST", "/iserver/account/{acct}/orders"),
    ("POST", "/iserver/account/{acct}/orders/whatif"),
    ("POST", "/iserver/account/{acct}/orders/whatif"),
    ("POST", "/iserver/account/{acct}/orders/whatif"),
    ("GET", "/iserver/marketdata/history"),
    ("GET", "/iserver/marketdata/history"),
    ("GET", "/iserver/marketdata/history"),
    ("GET", "/hmds/history"),
    ("GET", "/hmds/history"),
    ("GET", "/hmds/history"),
    ("POST", "/iserver/account/{acct}/order/{id}"),
    ("DELETE", "/iserver/account/{acct}/order/{id}"),
    ("POST", "/iserver/reply/{id}"),
    ("GET", "/iserver/account/orders"),
    ("GET", "/iserver/account/order/status/{id}"),
    ("GET", "/iserver/account/trades"),
    ("POST", "/iserver/questions/suppress"),
    ("POST", "/iserver/questions/suppress/reset"),
    ("GET", "/iserver/account/pnl/partitioned"),
    ("GET", "/portfolio/{acct}/positions/{page}"),
    ("GET", "/portfolio/{acct}/position/{conid}"),
    ("GET", "/portfolio/{acct}/summary"),
    ("GET", "/portfolio/{acct}/ledger"),
    ("GET", "/ws"),
];

const QUERY_KEYS: &[&str] = &[
    "conid",
    "conids",
    "fields",
    "period",
    "bar",
    "startTime",
    "outsideRth",
    "direction",
    "days",
    "force",
    "filters",
    "symbol",
    "symbols",
    "name",
    "secType",
    "exchange",
    "month",
    "strike",
    "right",
    "underlyingConid",
];

const BODY_KEYS: &[&str] = &[
    "orders",
    "conid",
    "conidex",
    "orderType",
    "side",
    "tif",
    "quantity",
    "price",
    "auxPrice",
    "trailingAmt",
    "trailingType",
    "cOID",
    "parentId",
    "isSingleGroup",
    "acctId",
    "outsideRth",
    "confirmed",
    "messageIds",
    "compete",
    "publish",
    "symbol",
    "name",
    "isBuy",
];

/// Sizes and prices an order may carry as a JSON number or string.
const SIZES: &[&str] = &[
    "1",
    "10",
    "100",
    "1e9",
    "1000000001",
    "1e20",
    "1e25",
    "1e27",
    "5e28",
    "79228162514264337593543950335",
    "-79228162514264337593543950335",
    "0.0000000000000000000000000001",
    "0.5",
    "-5",
];

const WORDS: &[&str] = &[
    "DU1234567",
    "265598",
    "8314",
    "-1",
    "0",
    "AAPL",
    "LMT",
    "MKT",
    "STP",
    "STOP_LIMIT",
    "TRAIL",
    "TRAILLMT",
    "MIDPRICE",
    "BUY",
    "SELL",
    "DAY",
    "GTC",
    "IOC",
    "1d",
    "1w",
    "15y",
    "300000y",
    "99999999y",
    "9999999999999d",
    "0d",
    "1min",
    "3600S",
    "20230601-14:00:00",
    "99991231-23:59:59",
    "00000000-00:00:00",
    "true",
    "false",
    "31,84,86",
    "%",
    "amt",
    "%25",
];

/// A string that is often meaningful and sometimes garbage.
fn word() -> BoxedStrategy<String> {
    prop_oneof![
        3 => proptest::sample::select(WORDS).prop_map(str::to_owned),
        3 => proptest::sample::select(fuzz::EXTREME_NUMBERS).prop_map(str::to_owned),
        1 => "[0-9]{1,40}",
        2 => span(),
        1 => "\\PC{0,24}",
    ]
    .boxed()
}

/// A period or bar size, often far too long.
fn span() -> BoxedStrategy<String> {
    (
        prop_oneof![1 => "[0-9]{1,5}", 1 => "[1-9][0-9]{5,9}", 1 => "[0-9]{10,14}"],
        proptest::sample::select(&["y", "m", "w", "d", "h", "min", "S", "secs", "hrs", "x"][..]),
    )
        .prop_map(|(n, unit)| format!("{n}{unit}"))
        .boxed()
}

/// Percent-encode everything outside the unreserved set, so any string
/// makes a valid request line.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A JSON string literal of `s`.
fn jstr(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// JSON text (not a `serde_json::Value`: numbers like `1e400` must be
/// sent as text, as a hostile client would).
fn json_text() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        any::<bool>().prop_map(|b| b.to_string()),
        proptest::sample::select(fuzz::EXTREME_NUMBERS).prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        word().prop_map(|w| jstr(&w)),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6)
                .prop_map(|v| format!("[{}]", v.join(","))),
            proptest::collection::vec((proptest::sample::select(BODY_KEYS), inner), 0..8).prop_map(
                |kv| {
                    let fields: Vec<String> =
                        kv.iter().map(|(k, v)| format!("{}:{v}", jstr(k))).collect();
                    format!("{{{}}}", fields.join(","))
                }
            ),
        ]
    })
    .boxed()
}

/// An order ticket: mostly a plausible one with an absurd size or price,
/// sometimes with garbage fields besides.
fn order_text() -> BoxedStrategy<String> {
    let value = prop_oneof![
        2 => word().prop_map(|w| jstr(&w)),
        2 => proptest::sample::select(fuzz::EXTREME_NUMBERS).prop_map(str::to_owned),
        1 => json_text(),
    ];
    // Numbers JSON can carry (1e400 would only make the body unreadable,
    // which the other bodies try), huge and tiny ones among them.
    let number = prop_oneof![
        3 => proptest::sample::select(SIZES).prop_map(str::to_owned),
        1 => proptest::sample::select(SIZES).prop_map(jstr),
        1 => proptest::sample::select(fuzz::EXTREME_NUMBERS).prop_map(str::to_owned),
    ];
    // Sizes and prices are where absurd numbers hurt: one or two of them
    // are always among the fields.
    let sized = proptest::collection::vec(
        (
            proptest::sample::select(&["quantity", "price", "auxPrice", "trailingAmt"][..]),
            number,
        ),
        1..3,
    );
    let extras = prop_oneof![
        3 => Just(Vec::new()),
        1 => proptest::collection::vec((proptest::sample::select(BODY_KEYS), value), 1..5),
    ];
    (
        prop_oneof![
            4 => Just("MKT"),
            3 => proptest::sample::select(
                &["LMT", "STP", "STOP_LIMIT", "TRAIL", "TRAILLMT", "MIDPRICE"][..]
            ),
        ],
        proptest::sample::select(&["BUY", "SELL"][..]),
        proptest::sample::select(&["265598", "8314"][..]),
        sized,
        extras,
    )
        .prop_map(|(ty, side, conid, sized, extras)| {
            // One value per key (a reader of structs refuses duplicates,
            // which would stop every such ticket at the door): later
            // fields replace earlier ones.
            let mut fields: Vec<(String, String)> = vec![
                ("conid".to_owned(), conid.to_owned()),
                ("orderType".to_owned(), jstr(ty)),
                ("side".to_owned(), jstr(side)),
                ("tif".to_owned(), jstr("DAY")),
                ("quantity".to_owned(), "1".to_owned()),
            ];
            if ty != "MKT" {
                fields.push(("price".to_owned(), "150".to_owned()));
                fields.push(("auxPrice".to_owned(), "150".to_owned()));
                fields.push(("trailingAmt".to_owned(), "1".to_owned()));
            }
            let extras = extras.into_iter().map(|(k, v)| (k.to_owned(), v));
            let sized = sized.into_iter().map(|(k, v)| (k.to_owned(), v));
            for (k, v) in extras.chain(sized) {
                match fields.iter_mut().find(|(fk, _)| *fk == k) {
                    Some(f) => f.1 = v,
                    None => fields.push((k, v)),
                }
            }
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{}:{v}", jstr(k)))
                .collect();
            format!("{{{}}}", fields.join(","))
        })
        .boxed()
}

/// One generated request.
#[derive(Debug, Clone)]
enum Req {
    /// A well-formed HTTP/1.1 request: it must be answered.
    Http {
        method: &'static str,
        target: String,
        body: Vec<u8>,
    },
    /// Bytes that may not even be HTTP: only "no panic" is asked.
    Raw(Vec<u8>),
}

impl Req {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Req::Raw(b) => b.clone(),
            Req::Http {
                method,
                target,
                body,
            } => {
                let mut out = format!(
                    "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                out.extend_from_slice(body);
                out
            }
        }
    }
}

/// A method and a path (after `/v1/api`).
fn path() -> BoxedStrategy<(&'static str, String)> {
    // Mostly the simulated account and known contracts, so the cases get
    // past the first checks to the arithmetic.
    let acct = prop_oneof![4 => Just("DU1234567".to_owned()), 1 => word()];
    let conid = prop_oneof![
        2 => Just("265598".to_owned()),
        1 => Just("8314".to_owned()),
        2 => word(),
    ];
    let templated = (
        proptest::sample::select(PATHS),
        (acct, conid, word(), word()).prop_map(|(a, c, i, p)| vec![a, c, i, p]),
        proptest::option::weighted(
            0.1,
            proptest::sample::select(&["GET", "POST", "DELETE", "PUT"][..]),
        ),
    )
        .prop_map(|((method, p), segs, other)| {
            let path = p
                .replace("{acct}", &enc(&segs[0]))
                .replace("{conid}", &enc(&segs[1]))
                .replace("{id}", &enc(&segs[2]))
                .replace("{page}", &enc(&segs[3]));
            (other.unwrap_or(method), path)
        });
    let any_path = (
        proptest::sample::select(&["GET", "POST"][..]),
        "(/[a-z{}]{0,12}){0,5}",
    );
    prop_oneof![
        19 => templated,
        1 => any_path,
    ]
    .boxed()
}

fn query() -> BoxedStrategy<String> {
    // The history endpoints' `period` and `bar` are where absurd spans
    // hide: a third of the queries carry them.
    let focused = proptest::option::weighted(
        0.5,
        (
            proptest::sample::select(&["period", "period", "bar"][..]),
            prop_oneof![1 => word(), 1 => span()],
        ),
    );
    // A known contract, most of the time, so history requests get past
    // the conid check to the period.
    let contract = proptest::option::weighted(
        0.7,
        proptest::sample::select(&["265598", "8314"][..]).prop_map(str::to_owned),
    );
    (
        focused,
        contract,
        proptest::collection::vec((proptest::sample::select(QUERY_KEYS), word()), 0..4),
    )
        .prop_map(|(focus, contract, mut kv)| {
            kv.extend(focus);
            kv.extend(contract.map(|c| ("conid", c)));
            if kv.is_empty() {
                return String::new();
            }
            let pairs: Vec<String> = kv.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
            format!("?{}", pairs.join("&"))
        })
        .boxed()
}

/// `?conid=265598&period=...&bar=...`, sometimes with `startTime`.
fn history_query() -> BoxedStrategy<String> {
    (
        proptest::sample::select(&["265598", "8314"][..]),
        span(),
        prop_oneof![1 => span(), 1 => word()],
        proptest::option::weighted(0.3, word()),
    )
        .prop_map(|(conid, period, bar, start)| {
            let mut q = format!("?conid={conid}&period={}&bar={}", enc(&period), enc(&bar));
            if let Some(t) = start {
                let _ = write!(q, "&startTime={}", enc(&t));
            }
            q
        })
        .boxed()
}

fn body() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        2 => Just(Vec::new()),
        3 => json_text().prop_map(String::into_bytes),
        2 => order_text().prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..256),
    ]
    .boxed()
}

/// `{"orders": [...]}` with up to three tickets.
fn orders_body() -> BoxedStrategy<Vec<u8>> {
    let count = prop_oneof![4 => Just(1usize), 1 => 2usize..4];
    count
        .prop_flat_map(|n| proptest::collection::vec(order_text(), n))
        .prop_map(|o| format!(r#"{{"orders":[{}]}}"#, o.join(",")).into_bytes())
        .boxed()
}

fn request() -> BoxedStrategy<Req> {
    let http = (
        path(),
        (query(), history_query()),
        body(),
        orders_body(),
        any::<u8>(),
    )
        .prop_map(|((method, path), (query, history), body, orders, pick)| {
            // Order paths get order bodies four times in five, history
            // paths a history query (known contract, generated period and
            // bar) seven times in ten.
            let ordering = path.ends_with("/orders") || path.ends_with("/whatif");
            let body = if ordering && pick % 5 != 0 {
                orders
            } else {
                body
            };
            let query = if path.ends_with("/history") && pick % 10 < 7 {
                history
            } else {
                query
            };
            Req::Http {
                method,
                target: format!("/v1/api{path}{query}"),
                body,
            }
        });
    prop_oneof![
        19 => http,
        1 => proptest::collection::vec(any::<u8>(), 0..512).prop_map(Req::Raw),
    ]
    .boxed()
}

/// Send `bytes` on a new connection and read until the server closes it:
/// the status of the answer, or `None` when there was none.
async fn send(addr: SocketAddr, bytes: &[u8], half_close: bool) -> Option<u16> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(bytes).await.ok()?;
    if half_close {
        // Raw bytes may leave a request unfinished: say we are done
        // sending (the server then closes: it does not serve half-closed
        // connections).
        let _ = s.shutdown().await;
    }
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut buf)).await;
    if !matches!(read, Ok(Ok(_))) && buf.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&buf);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[test]
fn http_handlers_never_panic() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    count_panics();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The replay clock is paused and moved on by 6 hours after every case,
    // from the sample's first bar: orders the cases leave fill (the ticker
    // path that used to panic on absurd sizes) within the run. The sample
    // holds about 1250 daily bars; a fresh simulator replaces the old one
    // every 4000 cases so long runs keep trading.
    let fresh = || {
        let gw = rt.block_on(support::start(|c| {
            c.start = Some(
                chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2019, 1, 2, 12, 0, 0).unwrap(),
            );
            c.server.max_connections = 4096;
        }));
        // No precaution prompts: orders go straight to the exchange, where
        // their sizes meet the arithmetic (a case may reset this).
        let body = r#"{"messageIds":["o163","o354","o10331","o383"]}"#;
        let suppress = format!(
            "POST /v1/api/iserver/questions/suppress HTTP/1.1\r\nHost: x\r\n\
             Connection: close\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(
            rt.block_on(send(gw.addr(), suppress.as_bytes(), false)),
            Some(200)
        );
        gw
    };
    let gw = std::sync::Mutex::new((fresh(), 0u64));
    let cases = fuzz::cases(1000);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        // A panic can leave the simulator broken for every later request
        // (that is the wedge this test guards against), so shrinking would
        // only mislead: the failure names the case and the recent ones.
        max_shrink_iters: 0,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<String, usize>::new());
    // The last cases: an order's fill (and a panic in it) comes cases
    // after the order.
    let recent = std::sync::Mutex::new(std::collections::VecDeque::<String>::new());
    let result = runner.run(&request(), |req| {
        {
            let mut r = recent.lock().unwrap_or_else(|e| e.into_inner());
            if r.len() == 30 {
                r.pop_front();
            }
            let shown = String::from_utf8_lossy(&req.bytes()).into_owned();
            r.push_back(shown.chars().take(600).collect());
        }
        let addr = {
            let mut g = gw.lock().unwrap_or_else(|e| e.into_inner());
            g.1 += 1;
            if g.1 % 4000 == 0 {
                g.0 = fresh();
            }
            g.0.addr()
        };
        let before = PANICS.load(Ordering::SeqCst);
        let raw = matches!(req, Req::Raw(_));
        let status = rt.block_on(send(addr, &req.bytes(), raw));
        let key = status.map_or_else(|| "none".to_owned(), |s| s.to_string());
        *statuses.lock().unwrap().entry(key).or_default() += 1;
        if !raw && status.is_none() {
            return Err(TestCaseError::fail(format!("no answer to {req:?}")));
        }
        // Keep the session usable (a case may log out) and check that the
        // simulator still answers.
        let init = b"POST /v1/api/iserver/auth/ssodh/init HTTP/1.1\r\nHost: x\r\n\
                     Connection: close\r\nContent-Type: application/json\r\n\
                     Content-Length: 32\r\n\r\n{\"publish\":true,\"compete\":true}\n";
        let _ = rt.block_on(send(addr, init, false));
        // Fills happen here, in this thread: a panic in the exchange or
        // the books is counted by the hook and fails the case.
        let advanced = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            gw.lock()
                .unwrap_or_else(|e| e.into_inner())
                .0
                .advance(Duration::from_secs(6 * 3600));
        }));
        if advanced.is_err() {
            return Err(TestCaseError::fail(format!(
                "the replay (fills) panicked after {req:?}"
            )));
        }
        let tickle = b"GET /v1/api/tickle HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let t = rt.block_on(send(addr, tickle, false));
        if t != Some(200) {
            return Err(TestCaseError::fail(format!(
                "/tickle answered {t:?} after {req:?}"
            )));
        }
        let after = PANICS.load(Ordering::SeqCst);
        if after != before {
            return Err(TestCaseError::fail(format!(
                "the simulator panicked on {req:?}"
            )));
        }
        Ok(())
    });
    eprintln!(
        "gateway_fuzz: {cases} cases in {:.1} s; answers by status: {:?}",
        started.elapsed().as_secs_f64(),
        statuses.lock().unwrap()
    );
    if let Err(e) = result {
        let r = recent.lock().unwrap_or_else(|e| e.into_inner());
        let cases: Vec<&String> = r.iter().collect();
        panic!(
            "{e}\nthe last {} cases, oldest first:\n{cases:#?}",
            cases.len()
        );
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a panic between cases");
}

/// A websocket message: a topic, maybe a target, maybe arguments (JSON
/// text, or history arguments with generated spans).
fn ws_message() -> BoxedStrategy<String> {
    // `smh` does arithmetic on what it is sent: a third of the messages.
    let topic = prop_oneof![
        1 => Just("smh"),
        2 => proptest::sample::select(
            &[
                "smd", "umd", "smh", "umh", "sbd", "ubd", "sor", "uor", "str", "utr", "spl",
                "upl", "ssd", "usd", "sld", "uld", "tic", "xyz", "",
            ][..],
        ),
    ];
    let target = prop_oneof![
        2 => proptest::sample::select(&["265598", "8314", "DU1234567", "265598@SMART"][..])
            .prop_map(str::to_owned),
        1 => word(),
    ];
    let args = prop_oneof![
        2 => (span(), prop_oneof![1 => span(), 1 => word()]).prop_map(|(p, b)| {
            format!(r#"{{"period":{},"bar":{},"outsideRth":false}}"#, jstr(&p), jstr(&b))
        }),
        2 => json_text(),
        1 => "\\PC{0,40}",
    ];
    (
        topic,
        proptest::option::weighted(0.8, target),
        proptest::option::weighted(0.7, args),
        proptest::option::weighted(0.1, "\\PC{0,10}"),
    )
        .prop_map(|(topic, target, args, tail)| {
            let mut m = topic.to_owned();
            for part in [target, args, tail].into_iter().flatten() {
                m.push('+');
                m.push_str(&part);
            }
            m
        })
        .boxed()
}

/// The websocket's message handler: generated topic messages (absurd
/// history periods, bar sizes, targets and arguments) on one socket. No
/// panic anywhere, and after each message the same socket still answers
/// (`spl` always does). `FUZZ_CASES` overrides the 300 cases.
#[test]
fn websocket_messages_never_kill_the_socket() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    count_panics();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let gw = rt.block_on(support::start(|_| {}));
    let ws = std::sync::Mutex::new(rt.block_on(support::connect_ws(&gw)));
    let cases = fuzz::cases(300);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 0,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    let result = runner.run(&ws_message(), |msg| {
        let before = PANICS.load(Ordering::SeqCst);
        let mut ws = ws.lock().unwrap_or_else(|e| e.into_inner());
        let alive = rt.block_on(async {
            support::send(&mut ws, &msg).await;
            support::send(&mut ws, "spl+{}").await;
            support::wait_topic(&mut ws, |t| t == "spl", Duration::from_secs(30)).await
        });
        if alive.is_none() {
            return Err(TestCaseError::fail(format!(
                "the socket stopped answering after {msg:?}"
            )));
        }
        if PANICS.load(Ordering::SeqCst) != before {
            return Err(TestCaseError::fail(format!(
                "the simulator panicked on {msg:?}"
            )));
        }
        Ok(())
    });
    eprintln!(
        "gateway_fuzz (websocket): {cases} cases in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}
