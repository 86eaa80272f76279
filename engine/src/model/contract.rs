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
    /// Stocks and ETFs (`STK`); the default when a contract file omits the type.
    #[default]
    #[serde(rename = "STK")]
    Stock,
    /// Futures (`FUT`); usually traded with a multiplier above 1.
    #[serde(rename = "FUT")]
    Future,
    /// Equity and index options (`OPT`).
    #[serde(rename = "OPT")]
    Option,
    /// Options on futures (`FOP`).
    #[serde(rename = "FOP")]
    FutureOption,
    /// Currency pairs (`CASH`), as IDEALPRO quotes them.
    #[serde(rename = "CASH")]
    Forex,
    /// Crypto currencies (`CRYPTO`), as Paxos/ZEROHASH quotes them.
    #[serde(rename = "CRYPTO")]
    Crypto,
    /// ForecastEx and CME event contracts (`EC`): YES/NO contracts that
    /// settle at 0 or 1 and are netted pairwise (see [`crate::forecastex`]).
    #[serde(rename = "EC")]
    EventContract,
    /// Indices (`IND`): market data only, never an order.
    #[serde(rename = "IND")]
    Index,
    /// Any other gateway code, kept verbatim so that a new type the
    /// gateway starts sending does not fail the whole payload.
    #[serde(untagged)]
    Other(String),
}

/// What the engine needs to know about an instrument to trade and account for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contract {
    /// IBKR's contract id: the key every order, quote and position uses.
    pub conid: Conid,
    /// Ticker or local symbol, for people and logs; the engine keys on
    /// `conid`, never on this.
    pub symbol: String,
    /// Security type; `STK` when omitted.
    #[serde(default)]
    pub sec_type: SecType,
    /// Routing destination; `SMART` (IBKR smart routing) when omitted.
    #[serde(default = "default_exchange")]
    pub exchange: String,
    /// Currency of prices and PnL; `USD` when omitted. The engine does not
    /// convert currencies: one portfolio is assumed to be one currency.
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
