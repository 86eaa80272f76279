//! The CP Web API's loose JSON, read in one place.
//!
//! The gateway sends numbers as JSON numbers or as strings (`"192.26"`),
//! ids as either, booleans as `true`, `"true"`, `1` or `"Y"`. Every wire
//! type of this crate reads such fields through these serde helpers, so a
//! rule (for example that an empty string is no value) is written once.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

/// A number the gateway may send as a JSON number or a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Num {
    I(i64),
    U(u64),
    F(f64),
    S(String),
}

impl Num {
    fn to_decimal(&self) -> Result<Decimal, String> {
        match self {
            Num::I(i) => Ok(Decimal::from(*i)),
            Num::U(u) => Ok(Decimal::from(*u)),
            // Display of f64 is the shortest string that reads back as the
            // same float, i.e. the digits that were in the JSON text.
            Num::F(f) => Decimal::from_str(&f.to_string())
                .or_else(|_| Decimal::from_scientific(&format!("{f:e}")))
                .map_err(|e| format!("{f} is not a decimal: {e}")),
            Num::S(s) => {
                let t = s.trim();
                Decimal::from_str(t)
                    .or_else(|_| Decimal::from_scientific(t))
                    .map_err(|_| format!("{s:?} is not a number"))
            }
        }
    }
}

/// Serde helper: Decimal from a number or a numeric string.
pub fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    Num::deserialize(d)?
        .to_decimal()
        .map_err(serde::de::Error::custom)
}

/// Serde helper: optional Decimal from a number, a numeric string or null.
pub fn opt_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    match Option::<Num>::deserialize(d)? {
        None => Ok(None),
        Some(Num::S(s)) if s.trim().is_empty() => Ok(None),
        Some(n) => n.to_decimal().map(Some).map_err(serde::de::Error::custom),
    }
}

/// An optional number that may carry thousands separators (`"1,234.50"`),
/// as amounts in executions reports do: the separators are dropped, then it
/// is read like [`opt_decimal`] (null and `""` are `None`).
pub fn opt_grouped_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    match Option::<Num>::deserialize(d)?.map(ungroup) {
        None => Ok(None),
        Some(Num::S(s)) if s.trim().is_empty() => Ok(None),
        Some(n) => n.to_decimal().map(Some).map_err(serde::de::Error::custom),
    }
}

fn ungroup(n: Num) -> Num {
    match n {
        Num::S(s) => Num::S(s.replace(',', "")),
        other => other,
    }
}

/// A required string the gateway may send as a string or a number
/// (`execution_id`), trimmed.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match opt_string(d)? {
        Some(s) => Ok(s.trim().to_owned()),
        None => Err(serde::de::Error::custom("null where a string is required")),
    }
}

/// An instant in epoch milliseconds from a number or a numeric string, the
/// fraction dropped. A magnitude below 10^11 (before 1973 in milliseconds,
/// after 5138 in seconds) is taken as epoch seconds and scaled: history bars'
/// `t` is milliseconds on the real gateway, but a seconds value must not
/// read as January 1970.
pub fn timestamp_ms<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = Num::deserialize(d)?
        .to_decimal()
        .map_err(serde::de::Error::custom)?;
    let v: i64 = v
        .trunc()
        .try_into()
        .map_err(|_| serde::de::Error::custom(format!("timestamp {v} out of range")))?;
    // `unsigned_abs`: `i64::MIN.abs()` overflows (found by fuzzing).
    Ok(if v.unsigned_abs() < 100_000_000_000 {
        v.saturating_mul(1000)
    } else {
        v
    })
}

/// A string the gateway may send as a string or a number (`order_id`).
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        S(String),
        I(i64),
        U(u64),
        F(f64),
        B(bool),
    }
    Ok(Option::<Raw>::deserialize(d)?.map(|r| match r {
        Raw::S(s) => s,
        Raw::I(i) => i.to_string(),
        Raw::U(u) => u.to_string(),
        Raw::F(f) => f.to_string(),
        Raw::B(b) => b.to_string(),
    }))
}

/// An integer the gateway may send as a number or a numeric string.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match opt_decimal(d)? {
        None => Ok(None),
        Some(v) => v
            .trunc()
            .try_into()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{v} is not an integer"))),
    }
}

/// A boolean sent as `true`, `"true"`, `1` or `"1"`.
pub fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::Bool(b)) => b,
        Some(serde_json::Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(serde_json::Value::String(s)) => matches!(s.trim(), "true" | "1" | "Y" | "y"),
        _ => false,
    })
}

/// A map of strings; entries whose value is not a string are skipped.
pub fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let m = Option::<BTreeMap<String, serde_json::Value>>::deserialize(d)?.unwrap_or_default();
    Ok(m.into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, s)),
            _ => None,
        })
        .collect())
}

/// Serde helper: a list of Decimals, each a number or a numeric string;
/// null or missing is an empty list.
pub fn decimals<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Decimal>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "decimal")] Decimal);
    Ok(Option::<Vec<W>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|w| w.0)
        .collect())
}
