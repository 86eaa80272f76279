//! Parsers for the two historical bar responses of the CP Web API.
//!
//! * `/hmds/history`: `{startTime, startTimeVal, endTime, endTimeVal, data:
//!   [{t, o, h, l, c, v}], points, mktDataDelay}` with `t` in epoch
//!   milliseconds.
//! * `/iserver/marketdata/history`: `{serverId, symbol, priceFactor,
//!   volumeFactor, startTime, barLength, ..., data: [{o, c, h, l, v, t}]}`.
//!   The `data` prices are already in price units (the spec's example has
//!   `h: 175.1` beside `high: "17510/..."` with `priceFactor: 100`), so
//!   `priceFactor` only applies to the summary `high`/`low` strings, which we
//!   do not need. Volume is multiplied by `volumeFactor` (default 1).
//!
//! Both are parsed by one tolerant reader: numbers may be strings, unknown
//! fields are ignored, a 200 carrying `{"error": ...}` and the HTML page the
//! first `/hmds/history` call returns are distinct errors.
//!
//! Assumption (spec example is truncated): `t` is epoch milliseconds, as the
//! real gateway sends; a value below 10^11 is read as epoch seconds. The
//! spec's own `/iserver/marketdata/history` example, `"t": 16923456000`,
//! is therefore the year 2506 and refused as a bar time (bars must lie in
//! 1970 to 2099, `engine::limits::time`); the client's tests answer with
//! the 13-digit value the real gateway sends.

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::lenient::{decimal, opt_decimal, timestamp_ms};
use engine::model::{from_epoch_ms, Bar, Conid};

/// Why a history response could not be turned into bars.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The body is an HTML page: per the spec, the first `/hmds/history`
    /// request of a session answers 404 with `Resource not found` while it
    /// starts the historical data service; later requests return data.
    #[error("history response is HTML, not JSON (the first /hmds/history call of a session returns a 404 page): {snippet}")]
    Html {
        /// The start of the page (up to 120 bytes), for the log.
        snippet: String,
    },
    /// The gateway answered with an `error` field (a string, or other JSON
    /// as text), even under a 200.
    #[error("history request failed: {0}")]
    Api(String),
    /// The body is not JSON, or a bar field is not a number.
    #[error("history response is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// No `data` array and no `error`: nothing to read.
    #[error("history response has no data array")]
    NoData,
    /// A bar decoded but is not a bar: a timestamp out of range, or prices
    /// that fail [`Bar::check`] (a time before 1970, a price that is not
    /// positive, a high below the low, ...).
    #[error("bar {index}: {reason}")]
    BadBar {
        /// Position of the bar in `data`, from 0.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// Which endpoint a response came from, as far as its fields tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryFormat {
    /// `/hmds/history`: none of `priceFactor`, `barLength`, `volumeFactor`.
    Hmds,
    /// `/iserver/marketdata/history`: at least one of those fields.
    Iserver,
}

/// A parsed response: bars in the order received, plus what we learnt.
#[derive(Debug, Clone)]
pub struct HistoryBars {
    /// The endpoint the body looks like it came from.
    pub format: HistoryFormat,
    /// `symbol`: only `/iserver/marketdata/history` sends it.
    pub symbol: Option<String>,
    /// The bars, in the order received, volume already multiplied by
    /// `volumeFactor`; a missing `v` is a volume of zero.
    pub bars: Vec<Bar>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    data: Option<Vec<RawBar>>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    symbol: Option<String>,
    #[serde(default, rename = "volumeFactor", deserialize_with = "opt_decimal")]
    volume_factor: Option<Decimal>,
    #[serde(default, rename = "priceFactor")]
    price_factor: Option<serde_json::Value>,
    #[serde(default, rename = "barLength")]
    bar_length: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawBar {
    #[serde(deserialize_with = "timestamp_ms")]
    t: i64,
    #[serde(deserialize_with = "decimal")]
    o: Decimal,
    #[serde(deserialize_with = "decimal")]
    h: Decimal,
    #[serde(deserialize_with = "decimal")]
    l: Decimal,
    #[serde(deserialize_with = "decimal")]
    c: Decimal,
    #[serde(default, deserialize_with = "opt_decimal")]
    v: Option<Decimal>,
}

/// Parse a body from either history endpoint into bars for `conid`.
///
/// A UTF-8 byte order mark before the JSON (editors on Windows write one
/// into saved files) is skipped.
pub fn parse_history(conid: Conid, body: &[u8]) -> Result<HistoryBars, HistoryError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let trimmed = trim_ascii_start(body);
    if trimmed.first() == Some(&b'<') {
        let snippet = String::from_utf8_lossy(&trimmed[..trimmed.len().min(120)]).into_owned();
        return Err(HistoryError::Html { snippet });
    }
    let raw: Raw = serde_json::from_slice(body)?;
    if let Some(e) = raw.error {
        let msg = match e {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        return Err(HistoryError::Api(msg));
    }
    let format =
        if raw.price_factor.is_some() || raw.bar_length.is_some() || raw.volume_factor.is_some() {
            HistoryFormat::Iserver
        } else {
            HistoryFormat::Hmds
        };
    let volume_factor = raw.volume_factor.unwrap_or(Decimal::ONE);
    let data = raw.data.ok_or(HistoryError::NoData)?;
    let mut bars = Vec::with_capacity(data.len());
    for (index, b) in data.into_iter().enumerate() {
        let time = from_epoch_ms(b.t).ok_or_else(|| HistoryError::BadBar {
            index,
            reason: format!("timestamp {} out of range", b.t),
        })?;
        let bar = Bar {
            conid,
            time,
            open: b.o,
            high: b.h,
            low: b.l,
            close: b.c,
            volume: b
                .v
                .unwrap_or(Decimal::ZERO)
                .checked_mul(volume_factor)
                .ok_or_else(|| HistoryError::BadBar {
                    index,
                    reason: format!(
                        "volume {:?} times volumeFactor {volume_factor} is out of range",
                        b.v
                    ),
                })?,
        };
        bar.check().map_err(|e| HistoryError::BadBar {
            index,
            reason: e.to_string(),
        })?;
        bars.push(bar);
    }
    Ok(HistoryBars {
        format,
        symbol: raw.symbol,
        bars,
    })
}

fn trim_ascii_start(b: &[u8]) -> &[u8] {
    let i = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    &b[i..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    const HMDS: &str = r#"{
      "startTime": "20231211-04:00:00",
      "startTimeVal": 1702285200000,
      "endTime": "20231211-17:51:20",
      "endTimeVal": 1702335080000,
      "data": [
        {"t": 1702285200000, "o": 195.01, "c": 194.8, "h": 195.01, "l": 194.8, "v": 1723.0},
        {"t": 1702285260000, "o": "194.8", "c": 194.9, "h": 195.0, "l": 194.7, "v": 10, "extra": 1}
      ],
      "points": 14,
      "mktDataDelay": 0
    }"#;

    const ISERVER: &str = r#"{
      "serverId": "20477", "symbol": "AAPL", "text": "APPLE INC", "priceFactor": 100,
      "startTime": "20230818-08:00:00", "high": "17510/472117.45/0", "low": "17170/472117.45/0",
      "timePeriod": "1d", "barLength": 86400, "mdAvailability": "S", "mktDataDelay": 0,
      "outsideRth": true, "tradingDayDuration": 1440, "volumeFactor": 1, "priceDisplayRule": 1,
      "priceDisplayValue": "2", "chartPanStartTime": "20230821-13:30:00", "direction": -1,
      "negativeCapable": false, "messageVersion": 2,
      "data": [{"o": 173.4, "c": 174.7, "h": 175.1, "l": 171.7, "v": 472117.45, "t": 1692345600000}],
      "points": 0, "travelTime": 48
    }"#;

    #[test]
    fn hmds_example() {
        let h = parse_history(Conid(265598), HMDS.as_bytes()).unwrap();
        assert_eq!(h.format, HistoryFormat::Hmds);
        assert_eq!(h.bars.len(), 2);
        let b = h.bars[0];
        assert_eq!(b.time.timestamp_millis(), 1702285200000);
        assert_eq!(
            (b.open, b.high, b.low, b.close),
            (dec!(195.01), dec!(195.01), dec!(194.8), dec!(194.8))
        );
        assert_eq!(b.volume, dec!(1723));
        assert_eq!(h.bars[1].open, dec!(194.8));
    }

    #[test]
    fn iserver_example() {
        let h = parse_history(Conid(265598), ISERVER.as_bytes()).unwrap();
        assert_eq!(h.format, HistoryFormat::Iserver);
        assert_eq!(h.symbol.as_deref(), Some("AAPL"));
        let b = h.bars[0];
        assert_eq!(b.high, dec!(175.1));
        assert_eq!(b.volume, dec!(472117.45));
        assert_eq!(b.time.to_rfc3339(), "2023-08-18T08:00:00+00:00");
    }

    #[test]
    fn volume_factor_and_seconds() {
        let body =
            r#"{"volumeFactor": "100", "data": [{"o":1,"h":2,"l":1,"c":2,"v":3,"t":1692345600}]}"#;
        let h = parse_history(Conid(1), body.as_bytes()).unwrap();
        assert_eq!(h.bars[0].volume, dec!(300));
        assert_eq!(h.bars[0].time.timestamp(), 1692345600);
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let plain = parse_history(Conid(265598), HMDS.as_bytes()).unwrap();
        let marked = [b"\xEF\xBB\xBF".as_slice(), HMDS.as_bytes()].concat();
        let h = parse_history(Conid(265598), &marked).unwrap();
        assert_eq!(h.bars, plain.bars);
        assert_eq!(h.bars.len(), 2);
    }

    #[test]
    fn errors_are_distinct() {
        let html = b"<html><body><h1>Resource not found</h1></body></html>";
        assert!(matches!(
            parse_history(Conid(1), html),
            Err(HistoryError::Html { .. })
        ));
        let e = parse_history(Conid(1), br#"{"error": "description"}"#).unwrap_err();
        assert!(matches!(&e, HistoryError::Api(m) if m == "description"));
        assert!(matches!(
            parse_history(Conid(1), b"{\"points\":0}"),
            Err(HistoryError::NoData)
        ));
        assert!(matches!(
            parse_history(Conid(1), b"{\"data\": [}"),
            Err(HistoryError::Json(_))
        ));
        let bad = br#"{"data":[{"o":1,"h":0.5,"l":1,"c":1,"t":1}]}"#;
        assert!(matches!(
            parse_history(Conid(1), bad),
            Err(HistoryError::BadBar { index: 0, .. })
        ));
        let bad = br#"{"data":[{"o":"x","h":1,"l":1,"c":1,"t":1}]}"#;
        assert!(parse_history(Conid(1), bad).is_err());
    }
}
