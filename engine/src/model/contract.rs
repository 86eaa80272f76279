use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// IBKR contract identifier. The gateway sends it as a number or a string
/// depending on the endpoint; both deserialize.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Conid(pub i64);

impl fmt::Display for Conid {
    /// The number, honouring width and alignment (`{:>12}` in tables).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for Conid {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse().map(Conid)
    }
}

impl<'de> Deserialize<'de> for Conid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(v) => Ok(Conid(v)),
            Raw::Str(s) => s
                .parse()
                .map_err(|_| serde::de::Error::custom(format!("conid is not an integer: {s:?}"))),
        }
    }
}

/// Security type as the gateway spells it (`STK`, `FUT`, ...). `EC` marks
/// event contracts (ForecastEx / CME event options).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum SecType {
    #[default]
    #[serde(rename = "STK")]
    Stock,
    #[serde(rename = "FUT")]
    Future,
    #[serde(rename = "OPT")]
    Option,
    #[serde(rename = "FOP")]
    FutureOption,
    #[serde(rename = "CASH")]
    Forex,
    #[serde(rename = "CRYPTO")]
    Crypto,
    #[serde(rename = "EC")]
    EventContract,
    #[serde(rename = "IND")]
    Index,
    #[serde(untagged)]
    Other(String),
}

/// What the engine needs to know about an instrument to trade and account for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contract {
    pub conid: Conid,
    pub symbol: String,
    #[serde(default)]
    pub sec_type: SecType,
    #[serde(default = "default_exchange")]
    pub exchange: String,
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Contract multiplier: 1 for stocks, 50 for ES, 1 for event contracts.
    #[serde(default = "Contract::one")]
    pub multiplier: Decimal,
    /// Minimum price increment, used for slippage and price validation.
    #[serde(default = "Contract::cent")]
    pub tick_size: Decimal,
}

fn default_exchange() -> String {
    "SMART".to_owned()
}
fn default_currency() -> String {
    "USD".to_owned()
}

impl Contract {
    fn one() -> Decimal {
        Decimal::ONE
    }
    fn cent() -> Decimal {
        Decimal::new(1, 2)
    }

    /// A US stock on SMART with multiplier 1 and a one-cent tick: the default
    /// when a backtest only knows a conid.
    pub fn stock(conid: Conid, symbol: impl Into<String>) -> Self {
        Contract {
            conid,
            symbol: symbol.into(),
            sec_type: SecType::Stock,
            exchange: default_exchange(),
            currency: default_currency(),
            multiplier: Decimal::ONE,
            tick_size: Self::cent(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conid_from_number_or_string() {
        let a: Conid = serde_json::from_str("265598").unwrap();
        let b: Conid = serde_json::from_str("\"265598\"").unwrap();
        assert_eq!(a, b);
        assert!(serde_json::from_str::<Conid>("\"AAPL\"").is_err());
    }

    #[test]
    fn sec_type_keeps_unknown_values() {
        let t: SecType = serde_json::from_str("\"STK\"").unwrap();
        assert_eq!(t, SecType::Stock);
        let t: SecType = serde_json::from_str("\"WAR\"").unwrap();
        assert_eq!(t, SecType::Other("WAR".into()));
    }
}
