//! Bars on the replay clock: which bars have completed (and go to the
//! exchange), quotes synthesized from the bar in progress, and the market
//! data endpoints (snapshot, unsubscribe, both history endpoints).
//!
//! Quotes: while a bar is in progress its last price walks open -> low ->
//! high -> close (open -> high -> low -> close when the bar falls), a third
//! of the bar length per leg, rounded to the tick; bid and ask sit one tick
//! either side; the day's high/low follow what the walk has visited; volume
//! accrues linearly. Between bars the quote rests at the last close. These
//! are choices of the simulator: the spec describes fields, not dynamics.
//!
//! All bars are held in memory (the history endpoints need random access to
//! the past); the simulator is meant for data sets of test size, not for the
//! multi-gigabyte replays the backtester streams.

use cpapi::smd::field;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::TimeDelta;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Map, Value};

use engine::model::{Bar, Conid, Timestamp};

use super::config::Instrument;
use super::state::{Shared, State as State_};
use super::wire::{
    bad_request, dstr, epoch_ms, error, html_404, num, ny_compact, ok, parse_compact, utc_compact,
};

/// Bars of one contract and their length.
#[derive(Debug)]
struct Series {
    bars: Vec<Bar>,
    len: TimeDelta,
}

/// A synthesized top of book at one replay instant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QuoteView {
    pub last: Decimal,
    pub bid: Decimal,
    pub ask: Decimal,
    pub size: Decimal,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub prior_close: Option<Decimal>,
    pub volume: Decimal,
}

#[derive(Debug)]
pub(crate) struct Market {
    series: BTreeMap<Conid, Series>,
    /// Every bar with its completion time, in completion order.
    feed: Vec<(Timestamp, Bar)>,
    next: usize,
    server_id: u64,
}

impl Market {
    /// `bars` must be non-empty (checked by the caller).
    pub(crate) fn new(bars: Vec<Bar>) -> Self {
        let mut by: BTreeMap<Conid, Vec<Bar>> = BTreeMap::new();
        for b in bars {
            by.entry(b.conid).or_default().push(b);
        }
        let mut series = BTreeMap::new();
        let mut feed = Vec::new();
        for (conid, mut bars) in by {
            bars.sort_by_key(|b| b.time);
            bars.dedup_by_key(|b| b.time);
            // The bar length is the most common gap between bars: daily bars
            // skip weekends and shift an hour at DST changes, intraday bars
            // skip nights; none of those is the bar size.
            let mut gaps: HashMap<i64, usize> = HashMap::new();
            for w in bars.windows(2) {
                let g = (w[1].time - w[0].time).num_milliseconds();
                if g > 0 {
                    *gaps.entry(g).or_default() += 1;
                }
            }
            let len = gaps
                .into_iter()
                .max_by_key(|&(g, n)| (n, std::cmp::Reverse(g)))
                .map(|(g, _)| TimeDelta::milliseconds(g))
                .unwrap_or(TimeDelta::days(1));
            feed.extend(bars.iter().map(|b| (b.time + len, *b)));
            series.insert(conid, Series { bars, len });
        }
        feed.sort_by_key(|(end, b)| (*end, b.conid));
        Market {
            series,
            feed,
            next: 0,
            server_id: 0,
        }
    }

    pub(crate) fn first_time(&self) -> Timestamp {
        self.series
            .values()
            .filter_map(|s| s.bars.first().map(|b| b.time))
            .min()
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// The weekdays in `from..=to` (New York dates) inside the span of
    /// `conid`'s data on which no bar of it overlaps the liquid hours
    /// (09:30-16:00 New York): the replayed market was closed (holidays).
    /// Only for data of a day or shorter bars; days outside the data's
    /// span are not judged.
    pub(crate) fn closed_weekdays(
        &self,
        conid: Conid,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Vec<chrono::NaiveDate> {
        use chrono::{Datelike, NaiveTime, TimeZone, Weekday};
        use chrono_tz::America::New_York;
        let Some(s) = self.series.get(&conid) else {
            return Vec::new();
        };
        let (Some(first), Some(last)) = (s.bars.first(), s.bars.last()) else {
            return Vec::new();
        };
        if s.len > TimeDelta::days(1) {
            return Vec::new();
        }
        let span = (
            first.time.with_timezone(&New_York).date_naive(),
            (last.time + s.len).with_timezone(&New_York).date_naive(),
        );
        let at = |d: chrono::NaiveDate, h: u32, m: u32| {
            let t = NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN);
            New_York
                .from_local_datetime(&d.and_time(t))
                .earliest()
                .map(|x| x.to_utc())
        };
        from.iter_days()
            .take_while(|d| *d <= to)
            .filter(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
            .filter(|d| span.0 <= *d && *d <= span.1)
            .filter(|d| {
                let (Some(open), Some(close)) = (at(*d, 9, 30), at(*d, 16, 0)) else {
                    return false;
                };
                let i = s.bars.partition_point(|b| b.time < close);
                let covered = i
                    .checked_sub(1)
                    .and_then(|j| s.bars.get(j))
                    .is_some_and(|b| b.time + s.len > open);
                !covered
            })
            .collect()
    }

    /// The open of the first bar of `conid`: the price an order is valued
    /// at before any of its bars has started.
    pub(crate) fn first_open(&self, conid: Conid) -> Option<Decimal> {
        self.series.get(&conid)?.bars.first().map(|b| b.open)
    }

    /// Bars completed by `now` and not handed out before, in order.
    pub(crate) fn take_due(&mut self, now: Timestamp) -> Vec<(Timestamp, Bar)> {
        let start = self.next;
        while self.next < self.feed.len() && self.feed[self.next].0 <= now {
            self.next += 1;
        }
        self.feed[start..self.next].to_vec()
    }

    /// End of the bar of `conid` in progress at `t`, if one is.
    pub(crate) fn in_progress_end(&self, conid: Conid, t: Timestamp) -> Option<Timestamp> {
        let s = self.series.get(&conid)?;
        let i = s.bars.partition_point(|b| b.time <= t);
        let b = s.bars.get(i.checked_sub(1)?)?;
        let end = b.time + s.len;
        (t < end).then_some(end)
    }

    pub(crate) fn quote(&self, conid: Conid, t: Timestamp, tick: Decimal) -> Option<QuoteView> {
        let s = self.series.get(&conid)?;
        let i = s.bars.partition_point(|b| b.time <= t);
        let b = *s.bars.get(i.checked_sub(1)?)?;
        let prior_close = i
            .checked_sub(2)
            .and_then(|j| s.bars.get(j))
            .map(|p| p.close);
        let end = b.time + s.len;
        let (last, high, low, volume) = if t >= end {
            (b.close, b.high, b.low, b.volume)
        } else {
            let total = s.len.num_milliseconds().max(1);
            let done = (t - b.time).num_milliseconds().clamp(0, total);
            let f = Decimal::from(done) / Decimal::from(total);
            walk(&b, f, tick)
        };
        let tick = if tick > Decimal::ZERO {
            tick
        } else {
            Decimal::new(1, 2)
        };
        let size = (b.volume / Decimal::from(1_000_000))
            .round()
            .max(Decimal::ONE);
        Some(QuoteView {
            last,
            bid: last - tick,
            ask: last + tick,
            size,
            open: b.open,
            high,
            low,
            prior_close,
            volume,
        })
    }

    /// The string fields of a quote, by market data field id.
    pub(crate) fn quote_fields(inst: &Instrument, q: &QuoteView) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_owned(), v);
        };
        put(field::LAST, dstr(q.last));
        put(field::BID, dstr(q.bid));
        put(field::ASK, dstr(q.ask));
        put(field::BID_SIZE, dstr(q.size));
        put(field::ASK_SIZE, dstr(q.size));
        put(field::LAST_SIZE, "100".to_owned());
        put(field::HIGH, dstr(q.high));
        put(field::LOW, dstr(q.low));
        put(field::OPEN, dstr(q.open));
        put(field::VOLUME, volume_text(q.volume));
        put(field::VOLUME_LONG, dstr(q.volume.round()));
        put(field::MARK, dstr(q.last));
        if let Some(pc) = q.prior_close {
            put(field::PRIOR_CLOSE, dstr(pc));
            let ch = q.last - pc;
            put(field::CHANGE, dstr(ch));
            if !pc.is_zero() {
                put(
                    field::CHANGE_PCT,
                    dstr((ch / pc * Decimal::ONE_HUNDRED).round_dp(2)),
                );
            }
        }
        put(field::SYMBOL, inst.symbol.clone());
        put(field::COMPANY_NAME, inst.company_name.clone());
        put(field::SEC_TYPE, inst.sec_type.clone());
        put(field::LISTING_EXCHANGE, inst.listing_exchange.clone());
        put(field::EXCHANGE, inst.listing_exchange.clone());
        put(field::AVAILABILITY, "RpB".to_owned());
        m
    }

    pub(crate) fn all_quote_fields(
        &self,
        now: Timestamp,
        instruments: &BTreeMap<Conid, Instrument>,
    ) -> Vec<(Conid, BTreeMap<String, String>, i64)> {
        self.series
            .keys()
            .filter_map(|&c| {
                let inst = instruments.get(&c)?;
                let q = self.quote(c, now, inst.tick_size)?;
                Some((c, Self::quote_fields(inst, &q), epoch_ms(now)))
            })
            .collect()
    }

    /// Completed bars (end <= now) of `conid` starting in `[from, to)`.
    fn completed(&self, conid: Conid, from: Timestamp, to: Timestamp, now: Timestamp) -> &[Bar] {
        let Some(s) = self.series.get(&conid) else {
            return &[];
        };
        let lo = s.bars.partition_point(|b| b.time < from);
        let hi = s
            .bars
            .partition_point(|b| b.time < to && b.time + s.len <= now);
        if lo >= hi {
            &[]
        } else {
            &s.bars[lo..hi]
        }
    }

    fn bar_len(&self, conid: Conid) -> Option<TimeDelta> {
        self.series.get(&conid).map(|s| s.len)
    }

    fn next_server_id(&mut self) -> u64 {
        self.server_id += 1;
        self.server_id
    }
}

/// Price, high and low so far, and volume at fraction `f` of the bar.
fn walk(b: &Bar, f: Decimal, tick: Decimal) -> (Decimal, Decimal, Decimal, Decimal) {
    let (a, c) = if b.close >= b.open {
        (b.low, b.high)
    } else {
        (b.high, b.low)
    };
    let path = [b.open, a, c, b.close];
    let s = f * Decimal::from(3);
    let leg = s.floor().to_usize().unwrap_or(0).min(2);
    let frac = s - Decimal::from(leg as u64);
    let raw = path[leg] + (path[leg + 1] - path[leg]) * frac;
    let last = if tick > Decimal::ZERO {
        ((raw / tick).round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven) * tick)
            .max(b.low)
            .min(b.high)
    } else {
        raw
    };
    let visited = &path[..=leg];
    let high = visited.iter().copied().fold(last, Decimal::max);
    let low = visited.iter().copied().fold(last, Decimal::min);
    (last, high, low, b.volume * f)
}

/// Field 87: volume with K or M, as the gateway formats it.
fn volume_text(v: Decimal) -> String {
    let m = Decimal::from(1_000_000);
    let k = Decimal::from(1_000);
    if v >= m {
        format!("{}M", dstr((v / m).round_dp(2)))
    } else if v >= k {
        format!("{}K", dstr((v / k).round_dp(2)))
    } else {
        dstr(v.round())
    }
}

/// How bars are grouped into a requested bar size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    /// Fixed-length buckets aligned to the epoch (intraday sizes).
    Fixed(TimeDelta),
    /// New York calendar day, ISO week, month.
    Day,
    Week,
    Month,
}

impl Bucket {
    /// The bucket of a bar size; `None` for one that cannot be read or is
    /// longer than [`MAX_PERIOD`] (a bar of 856969073 years overflowed the
    /// millisecond arithmetic of [`Bucket::key`]; found by the fuzz test).
    fn of(bar: &str) -> Option<(Bucket, TimeDelta)> {
        let span = parse_span(bar).filter(|s| *s <= MAX_PERIOD)?;
        let unit = bar.trim().trim_start_matches(|c: char| c.is_ascii_digit());
        let one = bar.trim().starts_with("1")
            && bar.trim()[1..].starts_with(|c: char| !c.is_ascii_digit());
        Some(match unit {
            "d" | "D" if one => (Bucket::Day, span),
            "w" | "W" if one => (Bucket::Week, span),
            "m" | "M" if one => (Bucket::Month, span),
            _ => (Bucket::Fixed(span), span),
        })
    }

    fn key(self, t: Timestamp) -> i64 {
        use chrono::Datelike;
        let ny = t.with_timezone(&chrono_tz::America::New_York).date_naive();
        match self {
            Bucket::Fixed(d) => t.timestamp_millis().div_euclid(d.num_milliseconds().max(1)),
            Bucket::Day => i64::from(ny.num_days_from_ce()),
            Bucket::Week => {
                let w = ny.iso_week();
                i64::from(w.year()) * 100 + i64::from(w.week())
            }
            Bucket::Month => i64::from(ny.year()) * 100 + i64::from(ny.month()),
        }
    }
}

/// Bars at the requested `bar` size: consecutive bars of one bucket merged
/// (first open, highest high, lowest low, last close, summed volume, the
/// first bar's time). A size at or below the data's own (`native`), or one
/// that cannot be read, serves the data's bars unchanged: the simulator
/// cannot make finer bars than it has. Returns the bars and their length.
fn resample(bars: &[Bar], native: TimeDelta, bar: Option<&str>) -> (Vec<Bar>, TimeDelta) {
    let Some((bucket, size)) = bar.and_then(Bucket::of) else {
        return (bars.to_vec(), native);
    };
    if size <= native {
        return (bars.to_vec(), native);
    }
    let mut out: Vec<Bar> = Vec::new();
    let mut last_key = None;
    for b in bars {
        let k = bucket.key(b.time);
        match out.last_mut() {
            Some(cur) if last_key == Some(k) => {
                cur.high = cur.high.max(b.high);
                cur.low = cur.low.min(b.low);
                cur.close = b.close;
                cur.volume += b.volume;
            }
            _ => out.push(*b),
        }
        last_key = Some(k);
    }
    (out, size)
}

/// A period or bar length: a count and a unit (`S`/`secs`, `min`, `h`/`hrs`,
/// `d`, `w`, `m` (month, 30 days), `y` (365 days)).
pub(crate) fn parse_span(s: &str) -> Option<TimeDelta> {
    let s = s.trim();
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    let n: i64 = s[..digits].parse().ok()?;
    if n <= 0 {
        return None;
    }
    let unit = s[digits..].trim();
    let one = match unit {
        "S" | "s" | "sec" | "secs" => TimeDelta::seconds(1),
        "min" | "mins" => TimeDelta::minutes(1),
        "h" | "hr" | "hrs" | "hour" | "hours" => TimeDelta::hours(1),
        "d" | "D" => TimeDelta::days(1),
        "w" | "W" => TimeDelta::weeks(1),
        "m" | "M" => TimeDelta::days(30),
        "y" | "Y" => TimeDelta::days(365),
        _ => return None,
    };
    one.checked_mul(i32::try_from(n).ok()?)
}

/// The longest history window served: 792 weeks, the largest period the
/// spec lists for `/iserver/marketdata/history` (`{1-792}w`; `{1-15}y` and
/// `{1-182}m` are shorter). A longer `period` is refused with 400 before
/// any date arithmetic: `300000y` used to overflow the timestamp and panic
/// the handler (issue 12).
pub(crate) const MAX_PERIOD: TimeDelta = TimeDelta::weeks(792);

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/iserver/marketdata/snapshot", get(snapshot))
        .route("/iserver/marketdata/history", get(iserver_history))
        .route("/hmds/history", get(hmds_history))
        .route("/iserver/marketdata/unsubscribe", post(unsubscribe))
        .route("/iserver/marketdata/unsubscribeall", get(unsubscribe_all))
}

fn conid_list(s: &str) -> Result<Vec<Conid>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            // `conid@EXCHANGE` is allowed; the exchange is ignored.
            let id = p.split('@').next().unwrap_or(p);
            id.parse::<Conid>()
                .map_err(|_| format!("conid {p:?} is not a number"))
        })
        .collect()
}

/// Fields given as strings are strings; 6008 (conid) is an integer as the
/// field table types it.
fn field_value(conid: Conid, field: &str, fields: &BTreeMap<String, String>) -> Option<Value> {
    if field == "6008" {
        return Some(json!(conid.0));
    }
    fields.get(field).map(|v| json!(v))
}

/// `?conids=265598,8314&fields=31,84,86`. The first request for a conid in
/// a session is the pre-flight: it answers the identification keys and no
/// fields. Later requests answer every requested field the simulator has.
/// Without `fields` (the spec makes it required) 31, 84, 86 are assumed.
async fn snapshot(
    State(sh): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(conids) = q.get("conids") else {
        return bad_request("conids is required");
    };
    let conids = match conid_list(conids) {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => return bad_request("conids is empty"),
        Err(e) => return bad_request(e),
    };
    let fields: Vec<String> = q
        .get("fields")
        .map(|f| {
            f.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_else(|| {
            [field::LAST, field::BID, field::ASK]
                .map(str::to_owned)
                .to_vec()
        });
    let mut st = sh.lock();
    sh.pump(&mut st);
    let now = st.clock.now();
    let mut out = Vec::new();
    for (i, conid) in conids.into_iter().enumerate() {
        let server_id = format!("q{i}");
        let mut o = Map::new();
        o.insert("_updated".into(), json!(epoch_ms(now)));
        o.insert("conidEx".into(), json!(conid.to_string()));
        o.insert("conid".into(), json!(conid.0));
        o.insert("server_id".into(), json!(server_id));
        o.insert(field::DELIVERY_MARKER.into(), json!(server_id));
        let warm = !st.session.preflight.insert(conid);
        if warm {
            if let Some(inst) = sh.instrument(conid) {
                if let Some(qv) = st.market.quote(conid, now, inst.tick_size) {
                    let all = Market::quote_fields(inst, &qv);
                    for f in &fields {
                        if let Some(v) = field_value(conid, f, &all) {
                            o.insert(f.clone(), v);
                        }
                    }
                    o.insert(field::AVAILABILITY.into(), json!("RpB"));
                }
            }
        }
        out.push(Value::Object(o));
    }
    ok(Value::Array(out))
}

/// Body `{"conid": 265598}`: `{"success": true}`, or 500 `{"error":
/// "unknown"}` when the conid had no market data request open.
async fn unsubscribe(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let conid = match super::wire::body_conid(&body) {
        Ok(c) => c,
        Err(e) => return bad_request(e),
    };
    if sh.lock().session.preflight.remove(&conid) {
        ok(json!({ "success": true }))
    } else {
        error(StatusCode::INTERNAL_SERVER_ERROR, "unknown")
    }
}

async fn unsubscribe_all(State(sh): State<Arc<Shared>>) -> Response {
    sh.lock().session.preflight.clear();
    ok(json!({ "confirmed": "success" }))
}

/// The window a history request covers: it ends at `startTime` (UTC
/// `YYYYMMDD-HH:mm:ss`, clamped to the replay clock) or now, and spans
/// `period` backwards. Assumption: the spec's `direction` semantics are
/// unclear ("-1: time from the startTime to now"); the simulator always
/// reads `startTime` as the window's end, the way the spec's iserver example
/// pairs `startTime=20230821-13:30:00` with bars before it.
fn window(
    q: &HashMap<String, String>,
    default_period: &str,
    now: Timestamp,
) -> Result<(Timestamp, Timestamp, String), String> {
    let period = q
        .get("period")
        .cloned()
        .unwrap_or_else(|| default_period.to_owned());
    let span = parse_span(&period).ok_or_else(|| format!("period {period:?} is not valid"))?;
    if span > MAX_PERIOD {
        return Err(format!(
            "period {period:?} is too long: at most 792w (15 years) of history is served"
        ));
    }
    let end = match q.get("startTime").filter(|s| !s.trim().is_empty()) {
        Some(s) => parse_compact(s)
            .ok_or_else(|| format!("startTime {s:?} is not YYYYMMDD-HH:mm:ss"))?
            .min(now),
        None => now,
    };
    let from = end
        .checked_sub_signed(span)
        .ok_or_else(|| format!("period {period:?} reaches before the earliest date"))?;
    Ok((from, end, period))
}

/// The request's conid; unreadable is 400, unknown 500 (the spec's
/// documented history error).
fn history_conid(sh: &Shared, q: &HashMap<String, String>) -> Result<Conid, (StatusCode, String)> {
    let bad = |m: String| (StatusCode::BAD_REQUEST, m);
    let raw = q
        .get("conid")
        .ok_or_else(|| bad("conid is required".to_owned()))?;
    let conid: Conid = raw
        .split('@')
        .next()
        .unwrap_or(raw)
        .parse()
        .map_err(|_| bad(format!("conid {raw:?} is not a number")))?;
    if sh.instrument(conid).is_none() {
        return Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("no data for conid {conid}"),
        ));
    }
    Ok(conid)
}

/// `/iserver/marketdata/history` in the spec's priceFactor format: bars at
/// the requested size (see [`resample`]), at most the 1000 most recent.
async fn iserver_history(
    State(sh): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = sh.lock();
    match iserver_history_json(&mut st, &sh, &q) {
        Ok(v) => ok(v),
        Err((status, msg)) => error(status, msg),
    }
}

/// The `/iserver/marketdata/history` object (also the websocket `smh`
/// answer) for query parameters `q`.
pub(crate) fn iserver_history_json(
    st: &mut State_,
    sh: &Shared,
    q: &HashMap<String, String>,
) -> Result<Value, (StatusCode, String)> {
    let started = Instant::now();
    let conid = history_conid(sh, q)?;
    sh.pump(st);
    let now = st.clock.now();
    let (from, to, period) = window(q, "1w", now).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    let server_id = st.market.next_server_id();
    let native = st.market.bar_len(conid).unwrap_or(TimeDelta::days(1));
    let (bars, len) = resample(
        st.market.completed(conid, from, to, now),
        native,
        q.get("bar").map(String::as_str),
    );
    let bars = &bars[bars.len().saturating_sub(1000)..];
    let inst = sh.instrument(conid);
    let price_factor = Decimal::ONE_HUNDRED;
    let first = bars.first().map(|b| b.time).unwrap_or(from);
    let summary = |pick: fn(&Bar) -> Decimal, hi: bool| -> String {
        let best = bars.iter().fold(None::<&Bar>, |acc, b| match acc {
            Some(a) if (hi && pick(a) >= pick(b)) || (!hi && pick(a) <= pick(b)) => Some(a),
            _ => Some(b),
        });
        match best {
            Some(b) => format!(
                "{}/{}/{}",
                dstr((pick(b) * price_factor).round()),
                dstr(b.volume),
                (b.time - first).num_minutes()
            ),
            None => "0/0/0".to_owned(),
        }
    };
    let data: Vec<Value> = bars.iter().map(bar_json).collect();
    let outside_rth = super::wire::truthy(q.get("outsideRth").map(String::as_str));
    Ok(json!({
        "serverId": server_id.to_string(),
        "symbol": inst.map(|i| i.symbol.clone()).unwrap_or_default(),
        "text": inst.map(|i| i.company_name.clone()).unwrap_or_default(),
        "priceFactor": 100,
        "startTime": utc_compact(first),
        "high": summary(|b| b.high, true),
        "low": summary(|b| b.low, false),
        "timePeriod": period,
        "barLength": len.num_seconds(),
        "mdAvailability": "S",
        "mktDataDelay": 0,
        "outsideRth": outside_rth,
        "tradingDayDuration": 1440,
        "volumeFactor": 1,
        "priceDisplayRule": 1,
        "priceDisplayValue": "2",
        "chartPanStartTime": utc_compact(to),
        "direction": -1,
        "negativeCapable": false,
        "messageVersion": 2,
        "points": data.len().saturating_sub(1),
        "data": data,
        "travelTime": started.elapsed().as_millis() as u64,
    }))
}

/// One bar as both history endpoints list it.
fn bar_json(b: &Bar) -> Value {
    json!({
        "t": epoch_ms(b.time), "o": num(b.open), "c": num(b.close),
        "h": num(b.high), "l": num(b.low), "v": num(b.volume),
    })
}

/// `/hmds/history`: the 404 page on the first call of a session, then
/// `{startTime, startTimeVal, endTime, endTimeVal, data, points,
/// mktDataDelay}` with exchange (New York) wall times beside epoch ms.
async fn hmds_history(
    State(sh): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    {
        let mut st = sh.lock();
        if !st.session.hmds_ready {
            st.session.hmds_ready = true;
            return html_404();
        }
    }
    let conid = match history_conid(&sh, &q) {
        Ok(c) => c,
        Err((status, msg)) => return error(status, msg),
    };
    let mut st = sh.lock();
    sh.pump(&mut st);
    let now = st.clock.now();
    let (from, to, _) = match window(&q, "1d", now) {
        Ok(w) => w,
        Err(e) => return bad_request(e),
    };
    let native = st.market.bar_len(conid).unwrap_or(TimeDelta::days(1));
    let (bars, _) = resample(
        st.market.completed(conid, from, to, now),
        native,
        q.get("bar").map(String::as_str),
    );
    let first = bars.first().map(|b| b.time).unwrap_or(from);
    let data: Vec<Value> = bars.iter().map(bar_json).collect();
    ok(json!({
        "startTime": ny_compact(first),
        "startTimeVal": epoch_ms(first),
        "endTime": ny_compact(to),
        "endTimeVal": epoch_ms(to),
        "points": data.len(),
        "data": data,
        "mktDataDelay": 0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use rust_decimal_macros::dec;

    fn bar(day: u32, o: Decimal, h: Decimal, l: Decimal, c: Decimal) -> Bar {
        Bar {
            conid: Conid(1),
            time: Utc.with_ymd_and_hms(2024, 1, day, 0, 0, 0).unwrap(),
            open: o,
            high: h,
            low: l,
            close: c,
            volume: dec!(3000000),
        }
    }

    #[test]
    fn quotes_walk_the_bar() {
        let m = Market::new(vec![
            bar(1, dec!(10), dec!(12), dec!(9), dec!(11)),
            bar(2, dec!(11), dec!(13), dec!(10), dec!(10.5)),
        ]);
        let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let q = |h: i64| {
            m.quote(Conid(1), t0 + TimeDelta::hours(h), dec!(0.01))
                .unwrap()
        };
        assert_eq!(q(0).last, dec!(10));
        assert_eq!(q(8).last, dec!(9), "rising bar visits the low first");
        assert_eq!(q(16).last, dec!(12));
        assert_eq!(q(16).low, dec!(9));
        assert_eq!(q(24).last, dec!(11), "next bar opens");
        assert_eq!(q(24).prior_close, Some(dec!(11)));
        assert_eq!(q(32).last, dec!(13), "falling bar visits the high first");
        assert_eq!(q(48).last, dec!(10.5), "after the last bar: its close");
        assert!(m
            .quote(Conid(1), t0 - TimeDelta::hours(1), dec!(0.01))
            .is_none());
        for h in 0..48 {
            let v = q(h);
            assert!(v.bid < v.last && v.last < v.ask);
        }
    }

    #[test]
    fn bars_complete_in_order() {
        let mut m = Market::new(vec![
            bar(1, dec!(10), dec!(12), dec!(9), dec!(11)),
            bar(2, dec!(11), dec!(13), dec!(10), dec!(10.5)),
        ]);
        let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        assert!(m.take_due(t0 + TimeDelta::hours(23)).is_empty());
        assert_eq!(m.take_due(t0 + TimeDelta::hours(24)).len(), 1);
        assert_eq!(m.take_due(t0 + TimeDelta::hours(100)).len(), 1);
        assert!(m.take_due(t0 + TimeDelta::hours(200)).is_empty());
        assert_eq!(
            m.in_progress_end(Conid(1), t0 + TimeDelta::hours(30)),
            Some(t0 + TimeDelta::hours(48))
        );
    }

    #[test]
    fn resampling_merges_buckets() {
        // Mon 2024-01-01 .. Mon 2024-01-08 at noon UTC (morning in New
        // York, whose calendar the buckets follow): a week and a day.
        let bars: Vec<Bar> = (1..=8)
            .map(|d| {
                let mut b = bar(
                    d,
                    Decimal::from(d),
                    Decimal::from(d + 1),
                    Decimal::from(d) - Decimal::ONE,
                    Decimal::from(d),
                );
                b.time += TimeDelta::hours(12);
                b
            })
            .collect();
        let (w, len) = resample(&bars, TimeDelta::days(1), Some("1w"));
        assert_eq!(len, TimeDelta::weeks(1));
        assert_eq!(w.len(), 2);
        assert_eq!(
            (w[0].open, w[0].high, w[0].low, w[0].close),
            (dec!(1), dec!(8), dec!(0), dec!(7))
        );
        assert_eq!(w[0].volume, dec!(21000000));
        assert_eq!(w[1].time, bars[7].time);
        let (same, _) = resample(&bars, TimeDelta::days(1), Some("1h"));
        assert_eq!(same, bars, "no finer bars than the data");
        let (same, _) = resample(&bars, TimeDelta::days(1), Some("bogus"));
        assert_eq!(same.len(), 8);
        let (m, _) = resample(&bars, TimeDelta::days(1), Some("1m"));
        assert_eq!(m.len(), 1);
        let (two, _) = resample(&bars, TimeDelta::days(1), Some("2d"));
        assert!(two.len() >= 4 && two.len() <= 5, "{}", two.len());
    }

    #[test]
    fn spans() {
        assert_eq!(parse_span("1w"), Some(TimeDelta::weeks(1)));
        assert_eq!(parse_span("30min"), Some(TimeDelta::minutes(30)));
        assert_eq!(parse_span("3600S"), Some(TimeDelta::hours(1)));
        assert_eq!(parse_span("6m"), Some(TimeDelta::days(180)));
        assert_eq!(parse_span("x"), None);
        assert_eq!(parse_span("0d"), None);
        assert_eq!(parse_span("5parsecs"), None);
        assert_eq!(volume_text(dec!(1234567)), "1.23M");
        assert_eq!(volume_text(dec!(12346)), "12.35K");
    }
}
