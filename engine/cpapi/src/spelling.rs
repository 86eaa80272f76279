//! Every spelling the CP Web API uses for order types, order statuses, time
//! in force and sides, in both directions, in one place.
//!
//! The gateway does not spell a value the same way on every endpoint. For
//! the order types the spec shows:
//!
//! | engine      | Place Order `orderType` | live orders / `sor` `orderType` | `origOrderType`, order status `order_type`, `sor` "Value Format" | contract rules `orderTypes` |
//! |-------------|-------------|---------------|-----------------------|-----------------------|
//! | Market      | `MKT`       | `Market`      | `MARKET`              | `market`              |
//! | Limit       | `LMT`       | `Limit`       | `LIMIT`               | `limit`               |
//! | Stop        | `STP`       | `Stop`        | `STOP`                | `stop`                |
//! | StopLimit   | `STOP_LIMIT`| `Stop Limit`  | `STOP_LIMIT`          | `stop_limit`          |
//! | Trail       | `TRAIL`     | `Trail`       | `TRAILING STOP`       | `trailing_stop`       |
//! | TrailLimit  | `TRAILLMT`  | `Trail Limit` | `TRAILING STOP LIMIT` | `trailing_stop_limit` |
//! | MidPrice    | `MIDPRICE`  | `MidPrice`    | `MIDPRICE`            | `midprice`            |
//!
//! The spec's examples show only `Market`/`MARKET` for the two live order
//! fields; the other rows of those columns are what the simulator renders
//! (the CP web UI's names), assumed to be what the gateway sends.
//! `STPLMT` (TWS's code) is read too.
//!
//! Reading ([`order_type`], [`tif`], [`order_status`], [`side`],
//! [`exec_side`]) accepts every spelling of every column, ASCII
//! case-insensitively and with spaces, `_` and `-` ignored (so `Stop Limit`,
//! `STOP_LIMIT` and `stop_limit` are one key, and `Presubmitted` and
//! `Pending Submit` as the `sor` section spells statuses are read).
//! Writing uses one function per column, named after the field it fills.
//!
//! The engine's own codes (`OrderType::code`, used by the store and serde)
//! are not wire spellings: nothing here depends on them.

use engine::model::{ExecSide, OrderStatus, OrderType, Side, Tif, UnknownValue};

/// The comparison key of a spelling: ASCII lowercase without spaces,
/// underscores and hyphens.
fn key(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn unknown(kind: &'static str, s: &str) -> UnknownValue {
    UnknownValue {
        kind,
        value: s.to_owned(),
    }
}

/// One row of the order type table: every column of the module's table.
struct TypeRow {
    ty: OrderType,
    ticket: &'static str,
    listed: &'static str,
    orig: &'static str,
    rules: &'static str,
    /// Further spellings read (not written).
    aliases: &'static [&'static str],
}

/// The row of `t`: an exhaustive match, so a new engine order type cannot
/// be added without its spellings.
fn type_row(t: OrderType) -> TypeRow {
    let row = |ticket, listed, orig, rules, aliases| TypeRow {
        ty: t,
        ticket,
        listed,
        orig,
        rules,
        aliases,
    };
    match t {
        OrderType::Market => row("MKT", "Market", "MARKET", "market", &[]),
        OrderType::Limit => row("LMT", "Limit", "LIMIT", "limit", &[]),
        OrderType::Stop => row("STP", "Stop", "STOP", "stop", &[]),
        OrderType::StopLimit => row(
            "STOP_LIMIT",
            "Stop Limit",
            "STOP_LIMIT",
            "stop_limit",
            &["STPLMT", "STOP_LMT"],
        ),
        OrderType::Trail => row("TRAIL", "Trail", "TRAILING STOP", "trailing_stop", &[]),
        OrderType::TrailLimit => row(
            "TRAILLMT",
            "Trail Limit",
            "TRAILING STOP LIMIT",
            "trailing_stop_limit",
            &[],
        ),
        OrderType::MidPrice => row("MIDPRICE", "MidPrice", "MIDPRICE", "midprice", &[]),
    }
}

/// An order type in any spelling the gateway uses.
pub fn order_type(s: &str) -> Result<OrderType, UnknownValue> {
    let k = key(s);
    OrderType::ALL
        .iter()
        .map(|t| type_row(*t))
        .find(|r| {
            [r.ticket, r.listed, r.orig, r.rules]
                .iter()
                .chain(r.aliases)
                .any(|x| key(x) == k)
        })
        .map(|r| r.ty)
        .ok_or_else(|| unknown("order type", s))
}

/// `orderType` of a Place Order / modify / whatif body: `LMT`, `STOP_LIMIT`...
pub fn ticket_order_type(t: OrderType) -> &'static str {
    type_row(t).ticket
}

/// `orderType` of a live order (`/iserver/account/orders`, `sor`) and the
/// type word of an order description (`"Buy 10 Limit 150, Day"`).
pub fn listed_order_type(t: OrderType) -> &'static str {
    type_row(t).listed
}

/// `origOrderType` of a live order and `order_type` of the order status
/// endpoint: `MARKET`, `STOP_LIMIT`, `TRAILING STOP`...
pub fn orig_order_type(t: OrderType) -> &'static str {
    type_row(t).orig
}

/// An entry of the contract rules' `orderTypes`: `limit`, `stop_limit`...
pub fn rules_order_type(t: OrderType) -> &'static str {
    type_row(t).rules
}

/// A time in force: `DAY`/`Day`, `GTC`, `IOC`, `OPG`, any case. `GTD` and
/// `PAX` (crypto) are not engine values and are errors.
pub fn tif(s: &str) -> Result<Tif, UnknownValue> {
    match key(s).as_str() {
        "day" => Ok(Tif::Day),
        "gtc" => Ok(Tif::Gtc),
        "ioc" => Ok(Tif::Ioc),
        "opg" => Ok(Tif::Opg),
        _ => Err(unknown("time in force", s)),
    }
}

/// `tif` of a Place Order body, `timeInForce` of a live order and `tif` of
/// the order status endpoint: `DAY`, `GTC`, `IOC`, `OPG`.
pub fn ticket_tif(t: Tif) -> &'static str {
    match t {
        Tif::Day => "DAY",
        Tif::Gtc => "GTC",
        Tif::Ioc => "IOC",
        Tif::Opg => "OPG",
    }
}

/// The time in force in an order description (`"Sold 5 Market, Day"`):
/// `Day`, the rest in capitals.
pub fn described_tif(t: Tif) -> &'static str {
    match t {
        Tif::Day => "Day",
        other => ticket_tif(other),
    }
}

/// The "Order Status Value" table: (Status, Filter Value).
fn status_row(s: OrderStatus) -> (&'static str, &'static str) {
    match s {
        OrderStatus::Inactive => ("Inactive", "inactive"),
        OrderStatus::PendingSubmit => ("PendingSubmit", "pending_submit"),
        OrderStatus::PreSubmitted => ("PreSubmitted", "pre_submitted"),
        OrderStatus::Submitted => ("Submitted", "submitted"),
        OrderStatus::Filled => ("Filled", "filled"),
        OrderStatus::PendingCancel => ("PendingCancel", "pending_cancel"),
        OrderStatus::Cancelled => ("Cancelled", "cancelled"),
        OrderStatus::WarnState => ("WarnState", "warn_state"),
    }
}

/// An order status: the "Order Status Value" table's status or filter
/// value, the `sor` section's `Presubmitted`, `order_ccp_status` text such
/// as `Pending Submit`, and the American `Canceled`.
pub fn order_status(s: &str) -> Result<OrderStatus, UnknownValue> {
    let k = key(s);
    if k == "canceled" {
        return Ok(OrderStatus::Cancelled);
    }
    OrderStatus::ALL
        .iter()
        .copied()
        .find(|st| key(status_row(*st).0) == k)
        .ok_or_else(|| unknown("order status", s))
}

/// `status` of a live order, `order_status` of the status endpoint and of
/// place/reply answers: the table's Status column (`PreSubmitted`).
pub fn status_name(s: OrderStatus) -> &'static str {
    status_row(s).0
}

/// The `filters` query value of live orders (`pre_submitted`).
pub fn status_filter(s: OrderStatus) -> &'static str {
    status_row(s).1
}

/// An order side: `BUY`/`SELL` (tickets, live orders), `Buy`/`Sell` (the
/// spec's bracket example), `B`/`S` (order status, trades), `BOT`/`SLD`
/// (executions reports). Anything else (the `sor` example's `EXER`) is an
/// error.
pub fn side(s: &str) -> Result<Side, UnknownValue> {
    match key(s).as_str() {
        "buy" | "b" | "bot" => Ok(Side::Buy),
        "sell" | "s" | "sld" => Ok(Side::Sell),
        _ => Err(unknown("side", s)),
    }
}

/// `side` of a Place Order body and of a live order: `BUY`, `SELL`.
pub fn ticket_side(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

/// `side` of the order status endpoint: `B`, `S`.
pub fn short_side(s: Side) -> &'static str {
    match s {
        Side::Buy => "B",
        Side::Sell => "S",
    }
}

/// The side of an execution: every order side spelling, plus `N`, the
/// ForecastEx netting report ("Executions and Netting").
pub fn exec_side(s: &str) -> Result<ExecSide, UnknownValue> {
    if key(s) == "n" {
        return Ok(ExecSide::Netting);
    }
    match side(s) {
        Ok(Side::Buy) => Ok(ExecSide::Bought),
        Ok(Side::Sell) => Ok(ExecSide::Sold),
        Err(_) => Err(unknown("execution side", s)),
    }
}

/// `side` of a trade (`/iserver/account/trades`, `str`): `B`, `S`, `N`.
pub fn trade_side(s: ExecSide) -> &'static str {
    match s {
        ExecSide::Bought => "B",
        ExecSide::Sold => "S",
        ExecSide::Netting => "N",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every order type spelling the spec shows (Place Order's list, the
    /// live orders and order status examples, the `sor` value format, the
    /// contract rules' `orderTypes` and `tifTypes`), and the simulator's.
    #[test]
    fn every_spelling_the_spec_shows_parses() {
        use OrderType::*;
        let cases = [
            ("LMT", Limit),
            ("MKT", Market),
            ("STP", Stop),
            ("STOP_LIMIT", StopLimit),
            ("MIDPRICE", MidPrice),
            ("TRAIL", Trail),
            ("TRAILLMT", TrailLimit),
            ("Market", Market),
            ("MARKET", Market),
            ("LIMIT", Limit),
            ("STOP", Stop),
            ("limit", Limit),
            ("midprice", MidPrice),
            ("market", Market),
            ("stop", Stop),
            ("stop_limit", StopLimit),
            ("trailing_stop", Trail),
            ("trailing_stop_limit", TrailLimit),
            ("Limit", Limit),
            ("Stop", Stop),
            ("Stop Limit", StopLimit),
            ("Trail", Trail),
            ("Trail Limit", TrailLimit),
            ("MidPrice", MidPrice),
            ("TRAILING STOP", Trail),
            ("TRAILING STOP LIMIT", TrailLimit),
            ("STPLMT", StopLimit),
            (" lmt ", Limit),
        ];
        for (s, want) in cases {
            assert_eq!(order_type(s), Ok(want), "{s:?}");
        }
        for bad in ["", "mit", "lit", "relative", "MARKETONCLOSE", "REL"] {
            let e = order_type(bad).unwrap_err();
            assert_eq!(e.value, bad);
        }
        for s in ["DAY", "Day", "GTC", "IOC", "OPG", "day"] {
            assert!(tif(s).is_ok(), "{s}");
        }
        assert!(tif("GTD").is_err() && tif("PAX").is_err());
        for (s, want) in [
            ("Inactive", OrderStatus::Inactive),
            ("PendingSubmit", OrderStatus::PendingSubmit),
            ("Pending Submit", OrderStatus::PendingSubmit),
            ("pending_submit", OrderStatus::PendingSubmit),
            ("PreSubmitted", OrderStatus::PreSubmitted),
            ("Presubmitted", OrderStatus::PreSubmitted),
            ("pre_submitted", OrderStatus::PreSubmitted),
            ("Submitted", OrderStatus::Submitted),
            ("Filled", OrderStatus::Filled),
            ("PendingCancel", OrderStatus::PendingCancel),
            ("Cancelled", OrderStatus::Cancelled),
            ("Canceled", OrderStatus::Cancelled),
            ("WarnState", OrderStatus::WarnState),
            ("warn_state", OrderStatus::WarnState),
        ] {
            assert_eq!(order_status(s), Ok(want), "{s}");
        }
        assert!(order_status("sort_by_time").is_err());
        for (s, want) in [
            ("BUY", Side::Buy),
            ("Buy", Side::Buy),
            ("B", Side::Buy),
            ("SELL", Side::Sell),
            ("Sell", Side::Sell),
            ("S", Side::Sell),
        ] {
            assert_eq!(side(s), Ok(want), "{s}");
        }
        assert!(side("EXER").is_err());
        assert_eq!(exec_side("N"), Ok(ExecSide::Netting));
        assert_eq!(exec_side("BOT"), Ok(ExecSide::Bought));
        assert_eq!(exec_side("S"), Ok(ExecSide::Sold));
        assert_eq!(exec_side("X").unwrap_err().kind, "execution side");
    }

    /// What is written reads back, for every value and every column.
    #[test]
    fn every_written_spelling_reads_back() {
        for t in OrderType::ALL.iter().copied() {
            for s in [
                ticket_order_type(t),
                listed_order_type(t),
                orig_order_type(t),
                rules_order_type(t),
            ] {
                assert_eq!(order_type(s), Ok(t), "{s}");
            }
        }
        for t in Tif::ALL.iter().copied() {
            assert_eq!(tif(ticket_tif(t)), Ok(t));
            assert_eq!(tif(described_tif(t)), Ok(t));
        }
        for s in OrderStatus::ALL.iter().copied() {
            assert_eq!(order_status(status_name(s)), Ok(s));
            assert_eq!(order_status(status_filter(s)), Ok(s));
        }
        for s in [Side::Buy, Side::Sell] {
            assert_eq!(side(ticket_side(s)), Ok(s));
            assert_eq!(side(short_side(s)), Ok(s));
        }
        for e in [ExecSide::Bought, ExecSide::Sold, ExecSide::Netting] {
            assert_eq!(exec_side(trade_side(e)), Ok(e));
        }
        assert_eq!(ticket_order_type(OrderType::StopLimit), "STOP_LIMIT");
        assert_eq!(listed_order_type(OrderType::StopLimit), "Stop Limit");
        assert_eq!(orig_order_type(OrderType::Trail), "TRAILING STOP");
        assert_eq!(status_filter(OrderStatus::PreSubmitted), "pre_submitted");
    }
}
