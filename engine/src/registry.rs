//! Build strategies by name with typed parameters.
//!
//! Parameters arrive as a TOML table (from a config file) or as `k=v` pairs
//! from the command line; each strategy deserializes them into its own typed
//! struct, so a misspelt or ill-typed parameter is an error naming the
//! strategy and the field, not a silently ignored default.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use crate::strategy::Strategy;

/// Why a strategy could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No strategy is registered under `name` (names are case-sensitive).
    #[error("unknown strategy {name:?}; known: {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// Every registered name, comma-separated, so the error says what
        /// to type instead.
        known: String,
    },
    /// The parameters do not fit the strategy's parameter struct: an
    /// unknown or misspelt key (when the struct denies them), a wrong type,
    /// or a required key missing.
    #[error("bad parameters for {strategy}: {message}")]
    BadParams {
        /// The strategy being built.
        strategy: String,
        /// What was wrong, prefixed with the offending key when there is one
        /// (`fast: invalid type`).
        message: String,
    },
    /// A command-line `--param` without `=`, or with an empty key.
    #[error("parameter {0:?} is not of the form key=value")]
    BadPair(String),
}

/// Untyped parameters, as parsed from TOML or `--param`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params(toml::Table);

impl Params {
    /// No parameters: the strategy's own defaults apply, and a field
    /// without one is reported missing.
    pub fn new() -> Self {
        Params(toml::Table::new())
    }

    /// Parameters from a TOML table, e.g. a strategy's section of the
    /// config file. Values keep their TOML types.
    pub fn from_table(table: toml::Table) -> Self {
        Params(table)
    }

    /// The raw table, e.g. to record the parameters a run used.
    pub fn table(&self) -> &toml::Table {
        &self.0
    }

    /// Parse `key=value`. The value is read as a TOML value when it is one
    /// (`10`, `0.5`, `true`, `"x"`), otherwise kept as a string.
    pub fn set_pair(&mut self, pair: &str) -> Result<(), RegistryError> {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| RegistryError::BadPair(pair.to_owned()))?;
        let k = k.trim();
        if k.is_empty() {
            return Err(RegistryError::BadPair(pair.to_owned()));
        }
        self.set(k, parse_value(v.trim()));
        Ok(())
    }

    /// Set `key` to `value`, replacing any earlier value.
    pub fn set(&mut self, key: &str, value: toml::Value) {
        self.0.insert(key.to_owned(), value);
    }

    /// Later values win: `self` overlaid with `other`.
    pub fn merged(&self, other: &Params) -> Params {
        let mut t = self.0.clone();
        for (k, v) in &other.0 {
            t.insert(k.clone(), v.clone());
        }
        Params(t)
    }

    /// Deserialize into a strategy's parameter struct.
    pub fn parse<T: DeserializeOwned>(&self, strategy: &str) -> Result<T, RegistryError> {
        // serde_path_to_error names the offending key ("fast: invalid type").
        serde_path_to_error::deserialize(toml::Value::Table(self.0.clone())).map_err(
            |e: serde_path_to_error::Error<toml::de::Error>| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let message = if path == "." || path.is_empty() {
                    inner.message().to_owned()
                } else {
                    format!("{path}: {}", inner.message())
                };
                RegistryError::BadParams {
                    strategy: strategy.to_owned(),
                    message,
                }
            },
        )
    }
}

fn parse_value(v: &str) -> toml::Value {
    // Decimal-looking values stay strings so `0.1` reaches a Decimal field
    // exactly; integer fields accept them through `serde` as well.
    if let Ok(i) = v.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match v {
        "true" => return toml::Value::Boolean(true),
        "false" => return toml::Value::Boolean(false),
        _ => {}
    }
    if let Some(s) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        return toml::Value::String(s.to_owned());
    }
    toml::Value::String(v.to_owned())
}

type Factory = fn(&Params) -> Result<Box<dyn Strategy>, RegistryError>;

/// What the registry knows about one strategy.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The name the strategy is built by, from the command line or a config
    /// file.
    pub name: &'static str,
    /// One line, as `ibflow strategies` lists it.
    pub description: &'static str,
    factory: Factory,
}

/// Strategies by name.
#[derive(Clone, Debug, Default)]
pub struct StrategyRegistry {
    entries: BTreeMap<&'static str, Entry>,
}

impl StrategyRegistry {
    /// An empty registry; the `strategies` crate fills the shipped one.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a strategy under `name`. Registering a name again replaces the
    /// earlier entry.
    pub fn register(&mut self, name: &'static str, description: &'static str, factory: Factory) {
        self.entries.insert(
            name,
            Entry {
                name,
                description,
                factory,
            },
        );
    }

    /// Build the strategy `name` with `params`. Fails with
    /// [`RegistryError::Unknown`] (listing the known names) or whatever the
    /// factory reports, usually [`RegistryError::BadParams`].
    pub fn build(&self, name: &str, params: &Params) -> Result<Box<dyn Strategy>, RegistryError> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| RegistryError::Unknown {
                name: name.to_owned(),
                known: self.entries.keys().copied().collect::<Vec<_>>().join(", "),
            })?;
        (entry.factory)(params)
    }

    /// Every registered strategy, sorted by name.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// True when a strategy is registered under exactly `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }
}

/// Deserialize `T` from `params` for the strategy `name`: the usual first
/// line of a factory.
pub fn typed<T: DeserializeOwned>(name: &str, params: &Params) -> Result<T, RegistryError> {
    params.parse(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct P {
        fast: usize,
        size: Decimal,
        #[serde(default)]
        name: Option<String>,
    }

    #[test]
    fn pairs_become_typed_params() {
        let mut p = Params::new();
        p.set_pair("fast=10").unwrap();
        p.set_pair("size=0.1").unwrap();
        p.set_pair("name=abc").unwrap();
        let v: P = p.parse("t").unwrap();
        assert_eq!(v.fast, 10);
        assert_eq!(v.size, Decimal::new(1, 1));
        assert_eq!(v.name.as_deref(), Some("abc"));
    }

    #[test]
    fn errors_name_the_problem() {
        let mut p = Params::new();
        p.set_pair("fast=ten").unwrap();
        p.set_pair("size=1").unwrap();
        let e = p.parse::<P>("sma").unwrap_err().to_string();
        assert!(e.contains("sma") && e.contains("fast"), "{e}");
        let mut p = Params::new();
        p.set_pair("fast=1").unwrap();
        p.set_pair("size=1").unwrap();
        p.set_pair("slwo=1").unwrap();
        let e = p.parse::<P>("sma").unwrap_err().to_string();
        assert!(e.contains("slwo"), "{e}");
        assert!(Params::new().set_pair("novalue").is_err());
    }

    #[test]
    fn toml_table_params() {
        let t: toml::Table = toml::from_str("fast = 3\nsize = \"2.5\"").unwrap();
        let v: P = Params::from_table(t).parse("t").unwrap();
        assert_eq!(v.size, Decimal::new(25, 1));
    }
}
