//! Market data decoding: websocket `smd` messages and snapshot rows.
//!
//! The gateway sends only the fields that changed since the last message of
//! a conid, so the decoder keeps a per-conid snapshot and merges each delta
//! into it. Field meanings (spec, "Market Data Fields"):
//!
//! * `31` last price, optionally prefixed `C` (previous close, no trade yet
//!   today) or `H` (trading halted);
//! * `84`/`86` bid/ask price, `88`/`85` bid/ask size, `7059` last size;
//! * `87` day volume formatted with `K`/`M` suffixes, `7762` the same volume
//!   at full precision (preferred when both are known);
//! * `6509` market data availability (`RpB`, `DPB`, ...);
//! * `_updated` epoch ms of the update.
//!
//! Every field is also kept verbatim in the raw field map, for the fields
//! [`Quote`] has no place for.
//!
//! Speed: a message is parsed with borrowed strings (no allocation for keys
//! or values without escapes); the raw map reuses its `String`s, so a delta
//! for a known conid and known fields allocates nothing beyond the small
//! scratch vector, which is reused too.
//!
//! Assumption (spec silent): sizes `88`/`85` are kept as displayed (US stocks
//! are shown divided by 100; the decoder cannot tell the listing, so it does
//! not scale them back).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::fmt::Write as _;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use engine::model::from_epoch_ms;
use engine::model::{Conid, Quote};

/// Market data field ids, named after the spec's "Market Data Fields"
/// table. The decoder, the client's subscriptions and the simulator all
/// spell a field through these, so an id is written once.
pub mod field {
    /// Last price, optionally prefixed `C` (prior close) or `H` (halted).
    pub const LAST: &str = "31";
    /// Symbol (`AAPL`).
    pub const SYMBOL: &str = "55";
    /// Current day high price.
    pub const HIGH: &str = "70";
    /// Current day low price.
    pub const LOW: &str = "71";
    /// Last price minus the prior close.
    pub const CHANGE: &str = "82";
    /// [`CHANGE`] in percent.
    pub const CHANGE_PCT: &str = "83";
    /// Highest bid price.
    pub const BID: &str = "84";
    /// Shown divided by 100 for US stocks.
    pub const ASK_SIZE: &str = "85";
    /// Lowest ask (offer) price.
    pub const ASK: &str = "86";
    /// Day volume with `K`/`M` suffixes; [`VOLUME_LONG`] is exact.
    pub const VOLUME: &str = "87";
    /// Shown divided by 100 for US stocks.
    pub const BID_SIZE: &str = "88";
    /// Exchange.
    pub const EXCHANGE: &str = "6004";
    /// Contract id, as an integer. Messages also carry a `conid` key, which
    /// the decoder reads instead.
    pub const CONID: &str = "6008";
    /// Asset class (`STK`, `OPT`, ...).
    pub const SEC_TYPE: &str = "6070";
    /// Marker of the market data delivery method (like a request id).
    pub const DELIVERY_MARKER: &str = "6119";
    /// Market data availability (`RpB`, `DPB`, ...).
    pub const AVAILABILITY: &str = "6509";
    /// Company name.
    pub const COMPANY_NAME: &str = "7051";
    /// Units traded at the last price.
    pub const LAST_SIZE: &str = "7059";
    /// Primary listing exchange.
    pub const LISTING_EXCHANGE: &str = "7221";
    /// Today's opening price.
    pub const OPEN: &str = "7295";
    /// Today's closing price.
    pub const CLOSE: &str = "7296";
    /// Mark price: the ask if it is below the last price, the bid if it is
    /// above, else the last price.
    pub const MARK: &str = "7635";
    /// Yesterday's closing price.
    pub const PRIOR_CLOSE: &str = "7741";
    /// Day volume at full precision.
    pub const VOLUME_LONG: &str = "7762";

    /// The fields a [`super::Quote`] is decoded from: what a live quote
    /// subscription asks for.
    pub const QUOTE: &[&str] = &[LAST, BID, ASK, ASK_SIZE, BID_SIZE, VOLUME, VOLUME_LONG];
}

/// What the prefix of field 31 said about the last price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum LastKind {
    /// A trade today.
    #[default]
    Trade,
    /// `C`: the previous day's close, no trade yet.
    PriorClose,
    /// `H`: trading is halted.
    Halted,
}

/// Market data availability, field 6509.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum Availability {
    /// `R`: real time; needs the market data subscription.
    RealTime,
    /// `D`: delayed 15 to 20 minutes.
    Delayed,
    /// `Z`: the last data recorded at the close, sent in real time.
    Frozen,
    /// `Y`: the last data recorded at the close, sent delayed.
    FrozenDelayed,
    /// `N`: no subscription for real-time or delayed data.
    NotSubscribed,
    /// Not sent yet, or a first letter the spec does not list (`i`
    /// incomplete, `v` VDR exempt, ...).
    #[default]
    Unknown,
}

impl Availability {
    /// Read field 6509 (`RpB`, `DPB`, ...) by its first letter; the second and
    /// third (snapshot or consolidated, book) are ignored.
    pub fn from_code(s: &str) -> Availability {
        match s.as_bytes().first() {
            Some(b'R') => Availability::RealTime,
            Some(b'D') => Availability::Delayed,
            Some(b'Z') => Availability::Frozen,
            Some(b'Y') => Availability::FrozenDelayed,
            Some(b'N') => Availability::NotSubscribed,
            _ => Availability::Unknown,
        }
    }
}

/// Everything known about one conid so far.
#[derive(Debug, Clone, Default)]
pub struct SmdState {
    /// The merged quote. A field sent empty keeps its previous value; volume is
    /// field 7762 when it has been seen, else field 87.
    pub quote: Quote,
    /// What the last price in `quote.last` is: a trade, the prior close, or a
    /// halted market.
    pub last_kind: LastKind,
    /// From field 6509; `Unknown` until the gateway sends it.
    pub availability: Availability,
    /// Volume from field 87 (formatted); 7762 wins when present.
    volume_formatted: Option<Decimal>,
    volume_long: Option<Decimal>,
    /// Every field as last sent, verbatim.
    pub raw: HashMap<String, String>,
}

impl SmdState {
    /// One field as last sent, verbatim (`raw("7051")` is the company name).
    pub fn raw(&self, field: &str) -> Option<&str> {
        self.raw.get(field).map(String::as_str)
    }
}

/// A malformed market data message.
#[derive(Debug, thiserror::Error)]
pub enum SmdError {
    /// The text is not a JSON object (the serde error's message).
    #[error("market data message is not a JSON object: {0}")]
    Json(String),
    /// Neither a `conid` key nor a `smd+CONID` topic names the contract.
    #[error("market data message has no conid")]
    NoConid,
    /// A numeric field whose text is not a number, even after dropping
    /// thousands separators and reading a `K`/`M`/`B` suffix.
    #[error("market data field {field}: {value:?} is not a number")]
    BadNumber {
        /// The field id (`84`, `7059`, ...).
        field: String,
        /// The text as sent.
        value: String,
    },
}

/// Per-conid snapshots, merged from deltas.
#[derive(Debug, Default)]
pub struct SmdDecoder {
    states: HashMap<Conid, SmdState>,
    scratch: Vec<(Cow<'static, str>, Val<'static>)>,
    text: String,
}

/// A JSON value of a market data message.
#[derive(Debug, Clone)]
enum Val<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Other,
}

impl Val<'_> {
    fn as_text(&self) -> Cow<'_, str> {
        match self {
            Val::Str(s) => Cow::Borrowed(s.as_ref()),
            Val::Int(i) => Cow::Owned(i.to_string()),
            Val::Float(f) => Cow::Owned(f.to_string()),
            Val::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Val::Other => Cow::Borrowed(""),
        }
    }
}

impl<'de> Deserialize<'de> for Val<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Val<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a market data value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Val<'de>, E> {
                Ok(Val::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Val<'de>, E> {
                Ok(Val::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Val<'de>, E> {
                Ok(Val::Str(Cow::Owned(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Val<'de>, E> {
                Ok(Val::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Val<'de>, E> {
                Ok(i64::try_from(v)
                    .map(Val::Int)
                    .unwrap_or(Val::Float(v as f64)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Val<'de>, E> {
                Ok(Val::Float(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Val<'de>, E> {
                Ok(Val::Bool(v))
            }
            fn visit_unit<E>(self) -> Result<Val<'de>, E> {
                Ok(Val::Other)
            }
            fn visit_none<E>(self) -> Result<Val<'de>, E> {
                Ok(Val::Other)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Val<'de>, A::Error> {
                while a.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Val::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Val<'de>, A::Error> {
                while a.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(Val::Other)
            }
        }
        d.deserialize_any(V)
    }
}

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Fills a caller-provided vector with the message's pairs.
struct Pairs<'v, 'de>(&'v mut Vec<(Cow<'de, str>, Val<'de>)>);

impl<'de> DeserializeSeed<'de> for Pairs<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Pairs<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a market data object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        while let Some(k) = a.next_key::<Key<'de>>()? {
            let v: Val<'de> = a.next_value()?;
            self.0.push((k.0, v));
        }
        Ok(())
    }
}

/// Parse a price or size: plain decimal, optionally with `K`/`M`/`B`
/// suffix and thousands separators.
pub fn parse_number(s: &str) -> Option<Decimal> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    let (body, mult) = match t.as_bytes()[t.len() - 1] {
        b'K' | b'k' => (&t[..t.len() - 1], Decimal::from(1_000)),
        b'M' | b'm' => (&t[..t.len() - 1], Decimal::from(1_000_000)),
        b'B' | b'b' => (&t[..t.len() - 1], Decimal::from(1_000_000_000)),
        _ => (t, Decimal::ONE),
    };
    let v = if body.contains(',') {
        let cleaned: String = body.chars().filter(|c| *c != ',').collect();
        Decimal::from_str(&cleaned).ok()?
    } else {
        Decimal::from_str(body).ok()?
    };
    // A huge value with a suffix must be an error, not an overflow panic.
    v.checked_mul(mult)
}

fn num_of(field: &str, v: &Val<'_>) -> Result<Option<Decimal>, SmdError> {
    match v {
        Val::Str(s) if s.trim().is_empty() => Ok(None),
        Val::Str(s) => parse_number(s)
            .map(Some)
            .ok_or_else(|| SmdError::BadNumber {
                field: field.to_owned(),
                value: s.to_string(),
            }),
        Val::Int(i) => Ok(Some(Decimal::from(*i))),
        Val::Float(f) => Ok(Decimal::from_str(&f.to_string()).ok()),
        _ => Ok(None),
    }
}

impl SmdDecoder {
    /// An empty decoder: no conid known yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything merged so far for `conid`; `None` before its first message
    /// or after [`SmdDecoder::remove`].
    pub fn state(&self, conid: Conid) -> Option<&SmdState> {
        self.states.get(&conid)
    }

    /// The merged quote of `conid`, as [`SmdDecoder::state`].
    pub fn quote(&self, conid: Conid) -> Option<&Quote> {
        self.states.get(&conid).map(|s| &s.quote)
    }

    /// Forget a conid (after unsubscribing), so a resubscription starts clean.
    pub fn remove(&mut self, conid: Conid) {
        self.states.remove(&conid);
    }

    /// Merge one message (websocket `smd` text or one snapshot row as JSON)
    /// and return the conid's merged state.
    pub fn decode(&mut self, msg: &str) -> Result<&SmdState, SmdError> {
        let conid = self
            .parse_then(msg, |_| true)
            .unwrap_or(Err(SmdError::NoConid))?;
        self.states.get(&conid).ok_or(SmdError::NoConid)
    }

    /// [`Self::decode`] for a frame that may be any websocket message:
    /// `None` (nothing merged) unless it is a JSON object whose `topic` starts
    /// with `smd`. A router calls this first, so an `smd` frame, the bulk of
    /// the traffic, is parsed once rather than once for its topic and again
    /// for its fields.
    pub fn decode_smd(&mut self, msg: &str) -> Option<Result<&SmdState, SmdError>> {
        let is_smd = |pairs: &[(Cow<'_, str>, Val<'_>)]| {
            pairs
                .iter()
                .any(|(k, v)| k == "topic" && matches!(v, Val::Str(s) if s.starts_with("smd")))
        };
        match self.parse_then(msg, is_smd) {
            Some(Ok(conid)) => Some(self.states.get(&conid).ok_or(SmdError::NoConid)),
            // Not readable as field pairs: the caller's general path decides.
            Some(Err(SmdError::Json(_))) | None => None,
            Some(Err(e)) => Some(Err(e)),
        }
    }

    /// Parse `msg` into the reused scratch pairs and merge them when `wanted`
    /// says so (`None`: parsed, not wanted, nothing merged).
    fn parse_then(
        &mut self,
        msg: &str,
        wanted: impl Fn(&[(Cow<'_, str>, Val<'_>)]) -> bool,
    ) -> Option<Result<Conid, SmdError>> {
        // Reuse the scratch allocation across messages: it is empty between
        // calls, so the lifetime change is only of an empty Vec.
        let mut scratch: Vec<(Cow<'_, str>, Val<'_>)> = std::mem::take(&mut self.scratch)
            .into_iter()
            .map(|_| unreachable_pair())
            .collect();
        scratch.clear();
        let mut de = serde_json::Deserializer::from_str(msg);
        let parsed = Pairs(&mut scratch)
            .deserialize(&mut de)
            .and_then(|_| de.end())
            .map_err(|e| SmdError::Json(e.to_string()));
        let result = match parsed {
            Err(e) => Some(Err(e)),
            Ok(()) if wanted(&scratch) => {
                Some(Self::merge(&mut self.states, &scratch, &mut self.text))
            }
            Ok(()) => None,
        };
        scratch.clear();
        self.scratch = scratch.into_iter().map(|_| unreachable_pair()).collect();
        result
    }

    /// Merge a snapshot row already parsed as a JSON map.
    pub fn decode_value(
        &mut self,
        row: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<&SmdState, SmdError> {
        let pairs: Vec<(Cow<'_, str>, Val<'_>)> = row
            .iter()
            .map(|(k, v)| {
                let val = match v {
                    serde_json::Value::String(s) => Val::Str(Cow::Borrowed(s.as_str())),
                    serde_json::Value::Number(n) => n
                        .as_i64()
                        .map(Val::Int)
                        .or_else(|| n.as_f64().map(Val::Float))
                        .unwrap_or(Val::Other),
                    serde_json::Value::Bool(b) => Val::Bool(*b),
                    _ => Val::Other,
                };
                (Cow::Borrowed(k.as_str()), val)
            })
            .collect();
        let conid = Self::merge(&mut self.states, &pairs, &mut self.text)?;
        self.states.get(&conid).ok_or(SmdError::NoConid)
    }

    fn merge(
        states: &mut HashMap<Conid, SmdState>,
        pairs: &[(Cow<'_, str>, Val<'_>)],
        buf: &mut String,
    ) -> Result<Conid, SmdError> {
        let mut conid = None;
        for (k, v) in pairs {
            if k == "conid" {
                conid = match v {
                    Val::Int(i) => Some(Conid(*i)),
                    Val::Str(s) => s.trim().parse().ok().map(Conid),
                    _ => None,
                };
                break;
            }
        }
        let conid = match conid {
            Some(c) => c,
            // `topic` is `smd+CONID`: the fallback when `conid` is absent.
            None => pairs
                .iter()
                .find(|(k, _)| k == "topic")
                .and_then(|(_, v)| match v {
                    Val::Str(s) => s.strip_prefix("smd+").and_then(|c| c.parse().ok()),
                    _ => None,
                })
                .map(Conid)
                .ok_or(SmdError::NoConid)?,
        };
        let st = states.entry(conid).or_default();
        st.quote.conid = conid;
        for (k, v) in pairs {
            let key: &str = k;
            match key {
                field::LAST => {
                    if let Val::Str(s) = v {
                        let t = s.trim();
                        let (kind, rest) = match t.as_bytes().first() {
                            Some(b'C') => (LastKind::PriorClose, &t[1..]),
                            Some(b'H') => (LastKind::Halted, &t[1..]),
                            _ => (LastKind::Trade, t),
                        };
                        if let Some(p) = num_of(key, &Val::Str(Cow::Borrowed(rest)))? {
                            st.quote.last = Some(p);
                            st.last_kind = kind;
                        }
                    } else if let Some(p) = num_of(key, v)? {
                        st.quote.last = Some(p);
                        st.last_kind = LastKind::Trade;
                    }
                }
                field::BID => st.quote.bid = num_of(key, v)?.or(st.quote.bid),
                field::ASK => st.quote.ask = num_of(key, v)?.or(st.quote.ask),
                field::BID_SIZE => st.quote.bid_size = num_of(key, v)?.or(st.quote.bid_size),
                field::ASK_SIZE => st.quote.ask_size = num_of(key, v)?.or(st.quote.ask_size),
                field::LAST_SIZE => st.quote.last_size = num_of(key, v)?.or(st.quote.last_size),
                field::VOLUME => {
                    if let Some(x) = num_of(key, v)? {
                        st.volume_formatted = Some(x);
                    }
                }
                field::VOLUME_LONG => {
                    if let Some(x) = num_of(key, v)? {
                        st.volume_long = Some(x);
                    }
                }
                field::AVAILABILITY => {
                    if let Val::Str(s) = v {
                        st.availability = Availability::from_code(s);
                    }
                }
                "_updated" => {
                    let ms = match v {
                        Val::Int(i) => Some(*i),
                        Val::Float(f) => Some(*f as i64),
                        Val::Str(s) => s.trim().parse().ok(),
                        _ => None,
                    };
                    if let Some(t) = ms.and_then(from_epoch_ms) {
                        st.quote.time = Some(t);
                    }
                }
                _ => {}
            }
            // Numbers are formatted into a reused buffer: no allocation
            // for the `conid` and `_updated` of every message.
            let text: &str = match v {
                Val::Str(s) => s,
                Val::Int(i) => {
                    buf.clear();
                    let _ = write!(buf, "{i}");
                    buf.as_str()
                }
                other => {
                    buf.clear();
                    buf.push_str(&other.as_text());
                    buf.as_str()
                }
            };
            match st.raw.get_mut(key) {
                Some(slot) => {
                    if slot.as_str() != text {
                        slot.clear();
                        slot.push_str(text);
                    }
                }
                None => {
                    st.raw.insert(key.to_owned(), text.to_owned());
                }
            }
        }
        st.quote.volume = st.volume_long.or(st.volume_formatted);
        Ok(conid)
    }
}

/// Only used to retype an empty Vec (see `decode`); never called on data.
fn unreachable_pair<'a, 'b>() -> (Cow<'a, str>, Val<'b>) {
    (Cow::Borrowed(""), Val::Other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn decode_smd_takes_smd_frames_only() {
        let mut d = SmdDecoder::new();
        assert!(d
            .decode_smd(r#"{"topic":"sor","args":[{"orderId":1,"conid":265598}]}"#)
            .is_none());
        assert!(d.decode_smd(r#"{"topic":"system","hb":1}"#).is_none());
        assert!(d.decode_smd("not json").is_none());
        assert!(d.states.is_empty(), "nothing merged from other topics");
        let s = d
            .decode_smd(r#"{"topic":"smd+265598","conid":265598,"31":"193.20"}"#)
            .expect("an smd frame")
            .unwrap();
        assert_eq!(s.quote.last, Some(dec!(193.20)));
        assert!(matches!(
            d.decode_smd(r#"{"topic":"smd+x"}"#),
            Some(Err(SmdError::NoConid))
        ));
    }

    #[test]
    fn merges_deltas_and_prefixes() {
        let mut d = SmdDecoder::new();
        let s = d
            .decode(r#"{"server_id":"q0","conidEx":"265598","conid":265598,"_updated":1702334859712,"6119":"q0","31":"C193.18","84":"193.06","86":"193.14","88":"3","85":"12","87":"1.23M","6509":"RpB","topic":"smd+265598"}"#)
            .unwrap();
        assert_eq!(s.quote.last, Some(dec!(193.18)));
        assert_eq!(s.last_kind, LastKind::PriorClose);
        assert_eq!(s.quote.volume, Some(dec!(1230000)));
        assert_eq!(s.availability, Availability::RealTime);
        assert_eq!(s.quote.bid_size, Some(dec!(3)));
        let s = d
            .decode(r#"{"conid":265598,"31":"193.20","7762":"1234567","_updated":1702334860000,"topic":"smd+265598"}"#)
            .unwrap();
        assert_eq!(s.quote.last, Some(dec!(193.20)));
        assert_eq!(s.last_kind, LastKind::Trade);
        assert_eq!(
            s.quote.bid,
            Some(dec!(193.06)),
            "kept from the first message"
        );
        assert_eq!(s.quote.volume, Some(dec!(1234567)));
        assert_eq!(s.raw("6119"), Some("q0"));
        assert_eq!(s.raw("31"), Some("193.20"));
        let s = d
            .decode(r#"{"conid":"265598","31":"H190.5","87":"12.5K"}"#)
            .unwrap();
        assert_eq!(s.last_kind, LastKind::Halted);
        assert_eq!(s.quote.last, Some(dec!(190.5)));
        assert_eq!(s.quote.volume, Some(dec!(1234567)), "7762 wins over 87");
    }

    #[test]
    fn conid_from_topic_and_errors() {
        let mut d = SmdDecoder::new();
        let s = d.decode(r#"{"topic":"smd+8314","84":"1.5"}"#).unwrap();
        assert_eq!(s.quote.conid, Conid(8314));
        assert!(matches!(d.decode(r#"{"84":"1"}"#), Err(SmdError::NoConid)));
        assert!(matches!(d.decode("not json"), Err(SmdError::Json(_))));
        assert!(matches!(d.decode("[1,2]"), Err(SmdError::Json(_))));
        assert!(matches!(
            d.decode(r#"{"conid":1,"84":"abc"}"#),
            Err(SmdError::BadNumber { .. })
        ));
        // Escaped strings and nested values are fine.
        let s = d
            .decode(r#"{"conid":1,"55":"A\"B","x":{"y":[1]},"84":1.25}"#)
            .unwrap();
        assert_eq!(s.raw("55"), Some("A\"B"));
        assert_eq!(s.quote.bid, Some(dec!(1.25)));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("1,234.5"), Some(dec!(1234.5)));
        assert_eq!(parse_number("2.5M"), Some(dec!(2500000)));
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("x"), None);
        // Overflow through the suffix is a bad number, not a panic.
        assert_eq!(parse_number("79228162514264337593543950335B"), None);
    }
}
