//! JSON and format helpers shared by the endpoint modules.

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::TimeZone;
use chrono_tz::America::New_York;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use engine::model::Timestamp;

/// 200 with a JSON body.
pub(crate) fn ok(v: Value) -> Response {
    (StatusCode::OK, Json(v)).into_response()
}

/// `status` with `{"error": msg}`: the shape the spec shows for 429, 500 and
/// the 200 order reject.
pub(crate) fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

/// A request the simulator cannot read (bad JSON, missing field): 400 with
/// a message naming what is wrong. The spec documents no shape for it.
pub(crate) fn bad_request(msg: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, msg)
}

/// Unknown paths: 404 with the same HTML page the real gateway serves.
pub(crate) async fn not_found(uri: Uri) -> Response {
    tracing::debug!("sim gateway: no route for {}", uri.path());
    html_404()
}

pub(crate) fn html_404() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(axum::http::header::CONTENT_TYPE, "text/html")],
        "<html><body><h1>Resource not found</h1></body></html>",
    )
        .into_response()
}

/// The `conid` of a JSON body such as `{"conid": 265598, ...}` (a number
/// or a numeric string), or why there is none.
pub(crate) fn body_conid(body: &[u8]) -> Result<engine::model::Conid, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    v.get("conid")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .ok_or_else(|| "conid is required".to_owned())
}

/// A JSON number from a decimal. JSON numbers are binary floats to most
/// clients anyway; the spec types these fields as float.
pub(crate) fn num(d: Decimal) -> Value {
    match d.normalize().to_f64() {
        Some(f) => json!(f),
        None => Value::Null,
    }
}

/// A price as the gateway's string fields carry it: plain decimal notation,
/// no exponent, trailing zeros dropped ("192.26", "5").
pub(crate) fn dstr(d: Decimal) -> String {
    d.normalize().to_string()
}

/// Quantities in strings like `total_size`: one decimal at least ("5.0").
pub(crate) fn qty_str(d: Decimal) -> String {
    let n = d.normalize();
    if n.scale() == 0 {
        format!("{n}.0")
    } else {
        n.to_string()
    }
}

pub(crate) fn epoch_ms(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

/// `YYYYMMDD-HH:mm:ss` in UTC (history `startTime`, trades `trade_time`).
pub(crate) fn utc_compact(t: Timestamp) -> String {
    t.format("%Y%m%d-%H:%M:%S").to_string()
}

/// `YYYYMMDD-HH:mm:ss` in New York wall time (hmds `startTime`/`endTime`, as
/// the spec example pairs `04:00:00` with `...Val` 09:00 UTC).
pub(crate) fn ny_compact(t: Timestamp) -> String {
    t.with_timezone(&New_York)
        .format("%Y%m%d-%H:%M:%S")
        .to_string()
}

/// `YYMMDDHHmmss` in UTC (order `lastExecutionTime`, `order_time`).
pub(crate) fn yymmdd(t: Timestamp) -> String {
    t.format("%y%m%d%H%M%S").to_string()
}

/// Parse `YYYYMMDD-HH:mm:ss` (UTC) as the history endpoints take it.
pub(crate) fn parse_compact(s: &str) -> Option<Timestamp> {
    let t = chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y%m%d-%H:%M:%S").ok()?;
    chrono::Utc.from_local_datetime(&t).single()
}

/// A boolean from `true`/`false` JSON or query strings.
pub(crate) fn truthy(s: Option<&str>) -> bool {
    matches!(
        s.map(|v| v.trim().to_ascii_lowercase()).as_deref(),
        Some("true" | "1" | "yes")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn number_formats() {
        assert_eq!(dstr(dec!(192.260)), "192.26");
        assert_eq!(qty_str(dec!(5)), "5.0");
        assert_eq!(qty_str(dec!(2.50)), "2.5");
        assert_eq!(num(dec!(173.40)), json!(173.4));
    }

    #[test]
    fn time_formats() {
        let t = parse_compact("20231211-09:00:00").unwrap();
        assert_eq!(epoch_ms(t), 1702285200000);
        assert_eq!(ny_compact(t), "20231211-04:00:00");
        assert_eq!(utc_compact(t), "20231211-09:00:00");
        assert_eq!(yymmdd(t), "231211090000");
        assert!(parse_compact("2023-12-11").is_none());
    }
}
