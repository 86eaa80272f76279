//! Column encodings shared by the tables: instants as epoch milliseconds UTC,
//! decimals as their exact text.

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;

use super::{parse_col, Result, StoreError};
use engine::model::Timestamp;

pub(super) fn ms(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

pub(super) fn from_ms(table: &'static str, column: &'static str, v: i64) -> Result<Timestamp> {
    Utc.timestamp_millis_opt(v)
        .single()
        .ok_or(StoreError::Corrupt {
            table,
            column,
            value: v.to_string(),
        })
}

pub(super) fn dec(table: &'static str, column: &'static str, v: String) -> Result<Decimal> {
    parse_col(table, column, v)
}

pub(super) fn opt_dec(
    table: &'static str,
    column: &'static str,
    v: Option<String>,
) -> Result<Option<Decimal>> {
    v.map(|s| dec(table, column, s)).transpose()
}

pub(super) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}
