//! Executions from what the venue sends: a `/iserver/account/trades`
//! response (a JSON array of trade records) or websocket `str` messages
//! (`{"topic": "str", "args": [...]}`). Both carry the same record, read by
//! cpapi's one trade parser ([`cpapi::messages::Trade`]); the original JSON
//! of each record is kept for the executions table.

use serde_json::Value;

use cpapi::messages::Trade;
use engine::model::Execution;

/// Why a record could not become an execution. `what` names the record and
/// the field ([`cpapi::messages::TradeError`]'s message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}")]
pub struct RecordError {
    /// The message: `trade <execution_id>: <field>: <reason>`.
    pub what: String,
}

fn err<T>(what: impl Into<String>) -> Result<T, RecordError> {
    Err(RecordError { what: what.into() })
}

/// One trade record (an element of the trades response, or of a `str`
/// message's `args`) as an execution: the same parser and rules as the
/// live client's REST trades and websocket `str`
/// ([`Trade::to_execution`]).
pub fn execution_from_record(v: &Value) -> Result<Execution, RecordError> {
    Trade::execution_from_value(v).map_err(|e| RecordError {
        what: e.to_string(),
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
    if v.get("topic").is_none() {
        if let Some(e) = v.get("error") {
            // A saved error answer (`{"error": "..."}`), not trades.
            return err(format!("the gateway's error answer, not trades: {e}"));
        }
    }
    if v.get("topic").and_then(Value::as_str) != Some("str") {
        return Ok(Message::Other);
    }
    match v.get("args") {
        Some(Value::Array(a)) => Ok(Message::Trades(a.clone())),
        Some(o @ Value::Object(_)) => Ok(Message::Trades(vec![o.clone()])),
        _ => err("str message without args"),
    }
}
