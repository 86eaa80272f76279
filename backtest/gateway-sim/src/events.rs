//! ForecastEx event contracts in the simulator: the markets it lists, the
//! two discovery endpoints, prices for the YES and NO contracts, and the
//! venue's rules (no sells; buying the opposite side nets).
//!
//! * `GET /trsrv/event/category-tree`: every category of the configured
//!   markets keyed by id (`g1234`), `parentId` on all but the roots, the
//!   markets (`name`, `symbol`, `exchange`, `conid`) on the leaves.
//! * `GET /trsrv/event/contracts?market=CONID&exchange=FORECASTX`: one
//!   record per YES (`putOrCall: "C"`) and NO (`"P"`) contract of every
//!   strike of the market, with the keys and value types of the spec's
//!   example. An unknown market, or an exchange other than FORECASTX, gives
//!   an empty `contracts` array; a missing or non-numeric `market` is a 400.
//! * Orders: a SELL of a FORECASTX contract is rejected (200 with
//!   `{"error": ...}`), and so is any order once the contract's last trade
//!   time has passed on the replay clock. A buy fill is reported as the
//!   spec's "Executions and Netting" sequence: the `B` execution, then, when
//!   the opposite side of the strike is held, `N` on the held side and `N`
//!   on the bought side for the overlap
//!   ([`engine::forecastex::venue_executions`]), so positions end netted.
//!
//! Assumptions where the spec is silent: the `N` reports carry ids
//! `<B id>.N1` / `.N2`, the order reference of the buy that caused them, no
//! commission, and prices that make the pair worth its payout (the held side
//! at `payout - price`, the bought side at the fill price), so netting
//! releases `payout` of cash per netted pair, as the venue pays for a YES
//! and NO of one strike. Resolution and payout at expiry are not simulated.
//!
//! Prices: a contract with bars in the simulator's data trades on those;
//! otherwise the YES contract gets a deterministic random walk in whole
//! cents between 0.02 and 0.98 on the times of the data's longest series,
//! and the NO contract the mirror image (`payout - YES`), so the two sides
//! always add up to the payout.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use cpapi::messages::EventContract;
use engine::forecastex::{Pairing, Right, StrikePair};
use engine::model::{Bar, Conid, Timestamp};

use super::config::Instrument;
use super::state::Shared;
use super::wire::{bad_request, dstr, num, ok};

/// The exchange ForecastEx contracts list on.
pub const FORECASTX: &str = "FORECASTX";

/// A ForecastEx market: questions of one form on one artificial underlying,
/// one [`EventStrike`] per tradable question.
#[derive(Debug, Clone, PartialEq)]
pub struct EventMarket {
    /// Conid of the artificial underlying index: the `market` parameter of
    /// `/trsrv/event/contracts`.
    pub conid: Conid,
    /// Product code (`HORC`): symbol, commodity code, underlying symbol.
    pub symbol: String,
    /// `underlyingName` and the market's name in the category tree.
    pub name: String,
    /// Category path from the root to the leaf that lists the market:
    /// `(id, label)`, three levels in the real tree.
    pub categories: Vec<(String, String)>,
    /// IANA zone of the times below (`America/Chicago`).
    pub timezone: chrono_tz::Tz,
    /// Trading ceases (local time).
    pub last_trade: NaiveDateTime,
    /// The outcome is published (local time); its date is the expiration.
    pub expected_resolution: NaiveDateTime,
    /// Payout to winning holders (local time): `expectedPayoutTime`.
    pub expected_payout: NaiveDateTime,
    /// The measured period (`timespecifierParam`, e.g. `2026.11`).
    pub measured_period: String,
    /// Who publishes the outcome (`sourceAgency`).
    pub source_agency: String,
    /// `eventAuthorityURL`: where the outcome is published.
    pub event_authority_url: String,
    /// `marketRulesLink`: the contract terms (a PDF at ForecastEx).
    pub market_rules_link: String,
    /// What a contract resolving in the money pays.
    pub payout: Decimal,
    /// The market's questions (strikes); at least one.
    pub strikes: Vec<EventStrike>,
}

/// One question of a market, with its YES and NO contracts.
#[derive(Debug, Clone, PartialEq)]
pub struct EventStrike {
    /// Strike value (`strike`), also the `strikeLabel` when `label` is absent.
    /// With a label (the sample HORC market) it only numbers the choices.
    pub strike: Decimal,
    /// `strikeLabel` when the strike is not a number (a candidate, a party).
    pub label: Option<String>,
    /// The canonical question (`longDescription`).
    pub question: String,
    /// Conid of the YES contract (`putOrCall` `C`).
    pub yes: Conid,
    /// Conid of the NO contract (`putOrCall` `P`).
    pub no: Conid,
    /// Where the synthesized YES price starts (0.02 to 0.98).
    pub start_yes: Decimal,
}

fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_opt(h, min, 0))
        .unwrap_or_default()
}

impl EventMarket {
    /// The spec's HORC market (its Democratic YES contract is the spec's
    /// example record, conid 762089343) and a USIP market with numeric
    /// strikes in the spec's example category branch.
    pub fn sample() -> Vec<EventMarket> {
        let chicago = chrono_tz::America::Chicago;
        let house = |party: &str| {
            format!(
                "Will the {party} Party win a majority in the United States House of \
                 Representatives in the 2026 general election?"
            )
        };
        let horc = EventMarket {
            conid: Conid(733131966),
            symbol: "HORC".into(),
            name: "US House of Representatives Control".into(),
            categories: vec![
                ("g7428".into(), "Politics".into()),
                ("g17460".into(), "Elections".into()),
                ("g17502".into(), "United States".into()),
            ],
            timezone: chicago,
            last_trade: local(2027, 1, 2, 23, 59),
            expected_resolution: local(2027, 1, 4, 9, 0),
            expected_payout: local(2027, 1, 4, 13, 0),
            measured_period: "2026.11".into(),
            source_agency: "United States Congress".into(),
            event_authority_url: "https://www.congress.gov/".into(),
            market_rules_link: "https://data.forecastex.com/regulatory/HORCTermsandConditions.pdf"
                .into(),
            payout: Decimal::ONE,
            strikes: vec![
                EventStrike {
                    strike: Decimal::ONE,
                    label: Some("Democratic".into()),
                    question: house("Democratic"),
                    yes: Conid(762089343),
                    no: Conid(762089344),
                    start_yes: Decimal::new(55, 2),
                },
                EventStrike {
                    strike: Decimal::TWO,
                    label: Some("Republican".into()),
                    question: house("Republican"),
                    yes: Conid(762089345),
                    no: Conid(762089346),
                    start_yes: Decimal::new(45, 2),
                },
            ],
        };
        let usip_strike = |tenths: i64, yes: i64, start: i64| EventStrike {
            strike: Decimal::new(tenths, 1),
            label: None,
            question: format!(
                "Will US industrial production grow by more than {}% month over month \
                 in December 2026?",
                Decimal::new(tenths, 1)
            ),
            yes: Conid(yes),
            no: Conid(yes + 1),
            start_yes: Decimal::new(start, 2),
        };
        let usip = EventMarket {
            conid: Conid(751047561),
            symbol: "USIP".into(),
            name: "US Industrial Production".into(),
            categories: vec![
                ("g1003".into(), "Economic Indicators".into()),
                ("g17574".into(), "Industry".into()),
                ("g17654".into(), "United States".into()),
            ],
            timezone: chicago,
            last_trade: local(2027, 1, 15, 7, 59),
            expected_resolution: local(2027, 1, 15, 8, 15),
            expected_payout: local(2027, 1, 15, 13, 0),
            measured_period: "2026.12".into(),
            source_agency: "Federal Reserve Board".into(),
            event_authority_url: "https://www.federalreserve.gov/releases/g17/".into(),
            market_rules_link: "https://data.forecastex.com/regulatory/USIPTermsandConditions.pdf"
                .into(),
            payout: Decimal::ONE,
            strikes: vec![
                usip_strike(0, 751100001, 70),
                usip_strike(2, 751100003, 45),
                usip_strike(4, 751100005, 20),
            ],
        };
        vec![horc, usip]
    }

    fn check(&self) -> Result<(), String> {
        if self.strikes.is_empty() {
            return Err(format!("event market {} has no strikes", self.conid));
        }
        if self.categories.is_empty() {
            return Err(format!("event market {} has no category", self.conid));
        }
        if self.payout <= Decimal::ZERO {
            return Err(format!("event market {}: payout must be > 0", self.conid));
        }
        for s in &self.strikes {
            if s.yes == s.no {
                return Err(format!("strike {} uses conid {} twice", s.strike, s.yes));
            }
            let cents = s.start_yes * Decimal::ONE_HUNDRED;
            if !cents.fract().is_zero()
                || s.start_yes <= Decimal::ZERO
                || s.start_yes >= self.payout
            {
                return Err(format!(
                    "strike {}: start_yes {} must be whole cents strictly between 0 and the payout",
                    s.strike, s.start_yes
                ));
            }
        }
        Ok(())
    }

    fn millis(&self, t: NaiveDateTime) -> i64 {
        self.timezone
            .from_local_datetime(&t)
            .earliest()
            .map(|t| t.timestamp_millis())
            .unwrap_or_else(|| t.and_utc().timestamp_millis())
    }

    /// `Nov'26` from a `2026.11` measured period (the raw value otherwise).
    fn period_label(&self) -> String {
        let parsed = self
            .measured_period
            .split_once('.')
            .and_then(|(y, m)| Some((y.parse::<i32>().ok()?, m.parse::<u32>().ok()?)))
            .and_then(|(y, m)| NaiveDate::from_ymd_opt(y, m, 1));
        match parsed {
            Some(d) => d.format("%b'%y").to_string(),
            None => self.measured_period.clone(),
        }
    }

    /// The `/trsrv/event/contracts` record of one side of a strike.
    fn record(&self, s: &EventStrike, right: Right, rank: usize) -> Value {
        let leaf = self
            .categories
            .last()
            .map(|(_, l)| l.clone())
            .unwrap_or_default();
        let label = s.label.clone().unwrap_or_else(|| dstr(s.strike));
        let strike_text = strike_text(s.strike);
        json!({
            "market": leaf,
            "popularityRank": 1_000_000 + rank,
            "name": format!("{} {} {}", self.symbol, self.period_label(), label),
            "longDescription": s.question,
            "putOrCall": right.as_put_or_call(),
            "expiration": self.expected_resolution.format("%Y%m%d").to_string(),
            "currency": "USD",
            "lastTradeMillis": self.millis(self.last_trade),
            "lastTradeDate": self.last_trade.format("%Y%m%d").to_string(),
            "lastTradeTime": self.last_trade.format("%H%M").to_string(),
            "timezone": self.timezone.name(),
            "commodityCode": self.symbol,
            "eventAuthorityURL": self.event_authority_url,
            "eventFixedPayout": dstr(self.payout),
            "sourceAgency": self.source_agency,
            "marketRulesLink": self.market_rules_link,
            "underlyingName": self.name,
            "categories": self.categories.iter().rev().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
            "expectedResolutionTime": self.expected_resolution.format("%Y%m%d%H%M%S").to_string(),
            "expectedPayoutTime": self.expected_payout.format("%Y%m%d%H%M%S").to_string(),
            "timespecifierParam": self.measured_period,
            "exchange": FORECASTX,
            "priceIncrement": 0.01,
            "tradingHours": { "timezone": self.timezone.name(), "holidays": [] },
            "conid": match right { Right::Yes => s.yes.0, Right::No => s.no.0 },
            "underlyingConid": self.conid.0,
            "underlyingSymbol": self.symbol,
            "shortDescription": format!(
                "{} {} {} {} @{FORECASTX}",
                self.symbol,
                self.expected_resolution.format("%b%d'%y"),
                strike_text,
                right
            ),
            "strike": num(s.strike),
            "strikeLabel": label,
        })
    }
}

/// A strike as the short description prints it: at least one decimal
/// (`1.0`, `0.2`).
fn strike_text(d: Decimal) -> String {
    let n = d.normalize();
    if n.scale() == 0 {
        format!("{n}.0")
    } else {
        n.to_string()
    }
}

/// What the simulator knows about its event contracts, built once at start.
#[derive(Debug, Default)]
pub(crate) struct EventBook {
    markets: Vec<EventMarket>,
    pairing: Pairing,
    contracts: HashMap<Conid, ContractFacts>,
}

/// What the endpoints need of one event contract beyond its pairing.
#[derive(Debug)]
struct ContractFacts {
    last_trade_ms: i64,
    /// `shortDescription` (`HORC Jan04'27 1.0 YES @FORECASTX`).
    description: String,
}

impl EventBook {
    pub(crate) fn new(markets: Vec<EventMarket>) -> Result<EventBook, String> {
        let mut records = Vec::new();
        let mut contracts = HashMap::new();
        let mut seen_markets = HashMap::new();
        for (i, m) in markets.iter().enumerate() {
            m.check()?;
            if seen_markets.insert(m.conid, i).is_some() {
                return Err(format!("event market {} is listed twice", m.conid));
            }
            let last = m.millis(m.last_trade);
            for (r, s) in m.strikes.iter().enumerate() {
                for right in [Right::Yes, Right::No] {
                    let v = m.record(s, right, i * 100 + r);
                    let facts = ContractFacts {
                        last_trade_ms: last,
                        description: v["shortDescription"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    };
                    // Read back through the client's own wire type, so the
                    // records served are the records the client can pair.
                    let rec = serde_json::from_value::<EventContract>(v)
                        .map_err(|e| format!("event market {}: {e}", m.conid))?
                        .record()
                        .map_err(|e| format!("event market {}: {e}", m.conid))?;
                    if contracts.insert(rec.conid, facts).is_some() {
                        return Err(format!(
                            "event contract conid {} is listed twice",
                            rec.conid
                        ));
                    }
                    records.push(rec);
                }
            }
        }
        let pairing = Pairing::from_records(&records).map_err(|e| e.to_string())?;
        Ok(EventBook {
            markets,
            pairing,
            contracts,
        })
    }

    pub(crate) fn markets(&self) -> &[EventMarket] {
        &self.markets
    }

    pub(crate) fn pairing(&self) -> &Pairing {
        &self.pairing
    }

    /// The strike `conid` trades on, if it is an event contract.
    pub(crate) fn pair(&self, conid: Conid) -> Option<&StrikePair> {
        self.pairing.lookup(conid).map(|(p, _)| p)
    }

    /// The options-style description of an event contract.
    pub(crate) fn short_description(&self, conid: Conid) -> Option<&str> {
        self.contracts.get(&conid).map(|c| c.description.as_str())
    }

    pub(crate) fn is_event(&self, conid: Conid) -> bool {
        self.contracts.contains_key(&conid)
    }

    /// Why an order on `conid` cannot be accepted at `now`, if it cannot.
    pub(crate) fn refuse(&self, conid: Conid, sell: bool, now: Timestamp) -> Option<String> {
        let last_trade = self.contracts.get(&conid)?.last_trade_ms;
        if sell {
            return Some(format!(
                "ForecastEx contract {conid} cannot be sold: to reduce or close a position \
                 buy the opposite contract of the same strike (NO reduces YES, YES reduces NO)"
            ));
        }
        if now.timestamp_millis() > last_trade {
            return Some(format!(
                "ForecastEx contract {conid}: trading ceased at its last trade time"
            ));
        }
        None
    }

    /// Reference data for the contract endpoints, orders and trades.
    pub(crate) fn instruments(&self) -> Vec<Instrument> {
        let mut out = Vec::new();
        for m in &self.markets {
            for s in &m.strikes {
                for conid in [s.yes, s.no] {
                    let mut i = Instrument::stock(conid, &m.symbol, &m.name, FORECASTX);
                    i.sec_type = "OPT".into();
                    i.execution_exchange = FORECASTX.into();
                    i.category = m
                        .categories
                        .last()
                        .map(|(_, l)| l.clone())
                        .unwrap_or_default();
                    out.push(i);
                }
            }
        }
        out
    }

    /// Bars for every event contract `have` lacks: the YES walk and its
    /// mirror, on the times of the longest series of `bars`.
    pub(crate) fn synthesize(&self, bars: &[Bar]) -> Vec<Bar> {
        let mut by: BTreeMap<Conid, Vec<Timestamp>> = BTreeMap::new();
        for b in bars {
            by.entry(b.conid).or_default().push(b.time);
        }
        let Some(times) = by
            .iter()
            .filter(|(c, _)| !self.is_event(**c))
            .max_by_key(|(c, t)| (t.len(), std::cmp::Reverse(**c)))
            .map(|(_, t)| t.clone())
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for m in &self.markets {
            for s in &m.strikes {
                if by.contains_key(&s.yes) || by.contains_key(&s.no) {
                    continue;
                }
                out.extend(walk(m, s, &times));
            }
        }
        out
    }

    /// `/trsrv/event/category-tree`.
    fn category_tree(&self) -> Value {
        let mut tree = Map::new();
        for m in &self.markets {
            let mut parent: Option<&str> = None;
            for (depth, (id, label)) in m.categories.iter().enumerate() {
                let node = tree.entry(id.clone()).or_insert_with(|| {
                    let mut n = json!({ "label": label, "markets": [] });
                    if let Some(p) = parent {
                        n["parentId"] = json!(p);
                    }
                    n
                });
                if depth + 1 == m.categories.len() {
                    if let Some(list) = node.get_mut("markets").and_then(Value::as_array_mut) {
                        list.push(json!({
                            "name": m.name,
                            "symbol": m.symbol,
                            "exchange": FORECASTX,
                            "conid": m.conid.0,
                        }));
                    }
                }
                parent = Some(id);
            }
        }
        Value::Object(tree)
    }

    /// `/trsrv/event/contracts` of one market.
    fn contracts_of(&self, market: Conid) -> Vec<Value> {
        let mut out = Vec::new();
        for (i, m) in self.markets.iter().enumerate() {
            if m.conid != market {
                continue;
            }
            for (r, s) in m.strikes.iter().enumerate() {
                out.push(m.record(s, Right::Yes, i * 100 + r));
                out.push(m.record(s, Right::No, i * 100 + r));
            }
        }
        out
    }
}

/// xorshift64*: a fixed, seedable sequence so the synthesized prices are the
/// same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `-k..=k`.
    fn step(&mut self, k: i64) -> i64 {
        (self.next() % (2 * k as u64 + 1)) as i64 - k
    }
}

/// YES bars in whole cents (kept 2 cents inside 0..payout so a one-tick
/// quote spread stays inside it too) and the mirrored NO bars.
fn walk(m: &EventMarket, s: &EventStrike, times: &[Timestamp]) -> Vec<Bar> {
    let cent = Decimal::new(1, 2);
    let top = (m.payout * Decimal::ONE_HUNDRED)
        .trunc()
        .try_into()
        .unwrap_or(100i64)
        - 2;
    let clamp = |c: i64| c.clamp(2, top.max(2));
    let mut rng = Rng(s.yes.0 as u64 ^ 0x9e37_79b9_7f4a_7c15);
    let mut close: i64 = clamp(
        (s.start_yes * Decimal::ONE_HUNDRED)
            .trunc()
            .try_into()
            .unwrap_or(50),
    );
    let mut out = Vec::with_capacity(times.len() * 2);
    for &t in times {
        let open = close;
        close = clamp(open + rng.step(3));
        let high = clamp(open.max(close) + rng.step(1).abs());
        let low = clamp(open.min(close) - rng.step(1).abs());
        let volume = Decimal::from(500 + rng.next() % 5_000);
        let c = |x: i64| Decimal::from(x) * cent;
        out.push(Bar {
            conid: s.yes,
            time: t,
            open: c(open),
            high: c(high),
            low: c(low),
            close: c(close),
            volume,
        });
        out.push(Bar {
            conid: s.no,
            time: t,
            open: m.payout - c(open),
            high: m.payout - c(low),
            low: m.payout - c(high),
            close: m.payout - c(close),
            volume,
        });
    }
    out
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/trsrv/event/category-tree", get(category_tree))
        .route("/trsrv/event/contracts", get(contracts))
}

async fn category_tree(State(sh): State<Arc<Shared>>) -> Response {
    ok(sh.forecast.category_tree())
}

async fn contracts(
    State(sh): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(market) = q.get("market") else {
        return bad_request("market (the conid of the event market) is required");
    };
    let Ok(market) = market.trim().parse::<Conid>() else {
        return bad_request(format!("market {market:?} is not a conid"));
    };
    let exchange_ok = q
        .get("exchange")
        .is_none_or(|e| e.trim().eq_ignore_ascii_case(FORECASTX));
    let list = if exchange_ok {
        sh.forecast.contracts_of(market)
    } else {
        Vec::new()
    };
    ok(json!({ "contracts": list }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, Utc};

    #[test]
    fn sample_records_match_the_spec_example() {
        let m = &EventMarket::sample()[0];
        let v = m.record(&m.strikes[0], Right::Yes, 0);
        assert_eq!(v["conid"], json!(762089343));
        assert_eq!(v["underlyingConid"], json!(733131966));
        assert_eq!(v["putOrCall"], json!("C"));
        assert_eq!(v["name"], json!("HORC Nov'26 Democratic"));
        assert_eq!(v["expiration"], json!("20270104"));
        assert_eq!(v["lastTradeDate"], json!("20270102"));
        assert_eq!(v["lastTradeTime"], json!("2359"));
        // 2027-01-02 23:59 in Chicago (UTC-6), as in the spec's record.
        assert_eq!(v["lastTradeMillis"], json!(1798955940000_i64));
        assert_eq!(v["expectedResolutionTime"], json!("20270104090000"));
        assert_eq!(
            v["shortDescription"],
            json!("HORC Jan04'27 1.0 YES @FORECASTX")
        );
        assert_eq!(v["categories"], json!(["g17502", "g17460", "g7428"]));
        assert_eq!(v["strike"], json!(1.0));
        assert_eq!(v["strikeLabel"], json!("Democratic"));
        let no = m.record(&m.strikes[0], Right::No, 0);
        assert_eq!(no["putOrCall"], json!("P"));
        assert_eq!(no["conid"], json!(762089344));
        assert!(no["shortDescription"]
            .as_str()
            .unwrap()
            .ends_with("NO @FORECASTX"));
    }

    #[test]
    fn book_pairs_every_strike_and_refuses_sells() {
        let book = EventBook::new(EventMarket::sample()).unwrap();
        let pair = book.pair(Conid(762089344)).unwrap();
        assert_eq!((pair.yes, pair.no), (Conid(762089343), Conid(762089344)));
        assert!(book.pair(Conid(265598)).is_none());
        let before = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert!(book.refuse(Conid(762089343), true, before).is_some());
        assert!(book.refuse(Conid(762089343), false, before).is_none());
        let after = Utc.with_ymd_and_hms(2027, 1, 3, 6, 0, 0).unwrap();
        let why = book.refuse(Conid(762089343), false, after).unwrap();
        assert!(why.contains("ceased"), "{why}");
        assert!(book.refuse(Conid(265598), true, before).is_none());
    }

    #[test]
    fn bad_markets_are_refused() {
        let mut twice = EventMarket::sample();
        twice[1].strikes[0].yes = Conid(762089343);
        assert!(EventBook::new(twice).unwrap_err().contains("twice"));
        let mut price = EventMarket::sample();
        price[0].strikes[0].start_yes = Decimal::new(555, 3);
        assert!(EventBook::new(price).is_err());
    }

    #[test]
    fn category_tree_links_leaves_to_roots() {
        let book = EventBook::new(EventMarket::sample()).unwrap();
        let tree = book.category_tree();
        assert_eq!(tree["g1003"]["label"], json!("Economic Indicators"));
        assert!(tree["g1003"].get("parentId").is_none());
        assert_eq!(tree["g17574"]["parentId"], json!("g1003"));
        assert_eq!(tree["g17654"]["parentId"], json!("g17574"));
        assert_eq!(
            tree["g17654"]["markets"],
            json!([{ "name": "US Industrial Production", "symbol": "USIP",
                     "exchange": "FORECASTX", "conid": 751047561 }])
        );
    }

    #[test]
    fn synthesized_sides_add_up_to_the_payout() {
        let book = EventBook::new(EventMarket::sample()).unwrap();
        let t0 = Utc.with_ymd_and_hms(2024, 1, 2, 0, 0, 0).unwrap();
        let stock: Vec<Bar> = (0..300)
            .map(|i| Bar {
                conid: Conid(8314),
                time: t0 + TimeDelta::days(i),
                open: Decimal::TEN,
                high: Decimal::TEN,
                low: Decimal::TEN,
                close: Decimal::TEN,
                volume: Decimal::ONE,
            })
            .collect();
        let bars = book.synthesize(&stock);
        assert_eq!(bars.len(), 300 * 2 * 5);
        for w in bars.chunks(2) {
            let (yes, no) = (&w[0], &w[1]);
            assert_eq!(yes.time, no.time);
            assert!(yes.is_consistent() && no.is_consistent());
            assert_eq!(yes.close + no.close, Decimal::ONE);
            assert_eq!(yes.high + no.low, Decimal::ONE);
            assert!(yes.low >= Decimal::new(2, 2) && yes.high <= Decimal::new(98, 2));
        }
        assert_eq!(book.synthesize(&stock), bars, "deterministic");
    }
}
