//! Executions from what the venue sends: a `/iserver/account/trades`
//! response (a JSON array of trade records) or websocket `str` messages
//! (`{"topic": "str", "args": [...]}`). Both carry the same record; it is
//! parsed tolerantly (numbers may be strings, unknown fields ignored) and the
//! original JSON of each record is kept for the executions table.

use chrono::{NaiveDateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use engine::model::{Conid, ExecSide, Execution, Timestamp};

/// Why a record could not become an execution. `what` names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}")]
pub struct RecordError {
    pub what: String,
}

fn err<T>(what: impl Into<String>) -> Result<T, RecordError> {
    Err(RecordError { what: what.into() })
}

fn decimal(v: &Value, field: &str) -> Result<Option<Decimal>, RecordError> {
    let text = match v.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().replace(',', ""),
        Some(other) => return err(format!("{field} is not a number: {other}")),
    };
    // Floats like 1e-5 come through serde_json in exponent form.
    Decimal::from_str_exact(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map(Some)
        .or_else(|_| err(format!("{field} is not a number: {text:?}")))
}

fn string(v: &Value, field: &str) -> Option<String> {
    match v.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn trade_time(v: &Value) -> Result<Timestamp, RecordError> {
    if let Some(ms) = v.get("trade_time_r").and_then(Value::as_i64) {
        return Utc
            .timestamp_millis_opt(ms)
            .single()
            .map_or_else(|| err(format!("trade_time_r out of range: {ms}")), Ok);
    }
    match string(v, "trade_time") {
        Some(s) => NaiveDateTime::parse_from_str(&s, "%Y%m%d-%H:%M:%S")
            .map(|t| t.and_utc())
            .or_else(|_| err(format!("trade_time is not YYYYMMDD-HH:mm:ss: {s:?}"))),
        None => err("missing trade_time_r and trade_time"),
    }
}

/// One trade record (an element of the trades response, or of a `str`
/// message's `args`) as an execution.
pub fn execution_from_record(v: &Value) -> Result<Execution, RecordError> {
    if !v.is_object() {
        return err(format!("a trade record must be an object, got {v}"));
    }
    let Some(execution_id) = string(v, "execution_id") else {
        return err("missing execution_id");
    };
    let side_text = string(v, "side").ok_or(RecordError {
        what: "missing side".into(),
    })?;
    let side: ExecSide = side_text.parse().map_err(|e| RecordError {
        what: format!("side: {e}"),
    })?;
    let conid: Conid = match v.get("conid").or_else(|| v.get("conidEx")) {
        Some(c) => serde_json::from_value(c.clone()).map_err(|e| RecordError {
            what: format!("conid: {e}"),
        })?,
        None => return err("missing conid"),
    };
    let Some(account) = string(v, "account").or_else(|| string(v, "accountCode")) else {
        return err("missing account");
    };
    let Some(size) = decimal(v, "size")? else {
        return err("missing size");
    };
    let Some(price) = decimal(v, "price")? else {
        return err("missing price");
    };
    let commission = decimal(v, "commission")?.unwrap_or(Decimal::ZERO);
    let net_amount = match decimal(v, "net_amount")? {
        Some(n) => n,
        None => size.checked_mul(price).ok_or(RecordError {
            what: "size * price overflows".into(),
        })?,
    };
    Ok(Execution {
        execution_id,
        order_id: None,
        order_ref: string(v, "order_ref"),
        account,
        conid,
        side,
        size,
        price,
        commission,
        net_amount,
        time: trade_time(v)?,
    })
}

/// Parse each record of a list, keeping its JSON text.
pub fn records(list: &[Value]) -> Vec<Result<(Execution, String), RecordError>> {
    list.iter()
        .map(|v| execution_from_record(v).map(|e| (e, v.to_string())))
        .collect()
}

/// What one websocket message holds for the store.
#[derive(Debug)]
pub enum Message {
    /// A `str` message: its trade records.
    Trades(Vec<Value>),
    /// Any other topic (heartbeats, system, market data): nothing to store.
    Other,
}

/// Classify one websocket message (one line of a capture).
pub fn parse_message(line: &str) -> Result<Message, RecordError> {
    let v: Value = serde_json::from_str(line).map_err(|e| RecordError {
        what: format!("not JSON: {e}"),
    })?;
    if v.get("topic").and_then(Value::as_str) != Some("str") {
        return Ok(Message::Other);
    }
    match v.get("args") {
        Some(Value::Array(a)) => Ok(Message::Trades(a.clone())),
        Some(o @ Value::Object(_)) => Ok(Message::Trades(vec![o.clone()])),
        _ => err("str message without args"),
    }
}
