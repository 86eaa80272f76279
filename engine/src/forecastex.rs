//! ForecastEx YES/NO netting, as pure functions over the engine model.
//!
//! ForecastEx contracts cannot be sold. A position is exited by buying the
//! opposite contract of the same strike (NO reduces YES, YES reduces NO), and
//! the venue reports that as one `B` execution followed by two `N` (netting)
//! executions that reduce both sides by the overlap (spec, "Executions and
//! Netting"). Everything here is plain data in, plain data out, so the store,
//! the portfolio and the simulator all net the same way.
//!
//! The YES/NO pairing of conids comes from the `/trsrv/event/contracts`
//! records (read by `cpapi`, handed over as [`StrikeSide`]s): a strike has
//! a YES (`putOrCall: "C"`) and a NO (`"P"`) contract, each with its own
//! conid.

use std::collections::HashMap;
use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::{Conid, Contract, ExecSide, Execution, SecType};

/// Side of a strike. YES is modelled as a call, NO as a put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Right {
    /// The event happens (`putOrCall` `C`); pays the payout if it does.
    Yes,
    /// The event does not happen (`putOrCall` `P`); pays the payout if it
    /// does not.
    No,
}

impl Right {
    /// The other side of the strike: the contract a position in this side
    /// is exited by buying.
    pub fn opposite(self) -> Right {
        match self {
            Right::Yes => Right::No,
            Right::No => Right::Yes,
        }
    }

    /// The `putOrCall` spelling: `C` is YES, `P` is NO.
    pub fn as_put_or_call(self) -> &'static str {
        match self {
            Right::Yes => "C",
            Right::No => "P",
        }
    }
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Right::Yes => "YES",
            Right::No => "NO",
        })
    }
}

impl std::str::FromStr for Right {
    type Err = NettingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "C" | "CALL" | "YES" => Ok(Right::Yes),
            "P" | "PUT" | "NO" => Ok(Right::No),
            other => Err(NettingError::UnknownRight(other.to_owned())),
        }
    }
}

impl Serialize for Right {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_put_or_call())
    }
}

impl<'de> Deserialize<'de> for Right {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Why a netting computation refused its input. Nothing here panics on venue
/// data: a malformed record or an impossible execution is one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NettingError {
    /// A `putOrCall` that is neither `C`/`CALL`/`YES` nor `P`/`PUT`/`NO`;
    /// the text as it arrived.
    #[error("unknown putOrCall value {0:?} (expected C for YES or P for NO)")]
    UnknownRight(String),
    /// An event contract record lacks a field pairing needs.
    #[error("event contract {conid} has no {field}: it cannot be paired")]
    Incomplete {
        /// The record's conid.
        conid: Conid,
        /// The missing field, as the wire names it.
        field: &'static str,
    },
    /// An execution's conid is neither side of the strike it was netted
    /// against.
    #[error("conid {conid} is not a YES or NO contract of a known strike")]
    UnknownConid {
        /// The execution's conid.
        conid: Conid,
    },
    /// Two different conids claim the same side of one strike; netting
    /// either would be a guess, so the whole pairing is refused.
    #[error("strike {strike} of underlying {underlying} lists two {right} contracts: {a} and {b}")]
    DuplicateSide {
        /// The market (event) conid.
        underlying: Conid,
        /// The strike value.
        strike: Decimal,
        /// The side listed twice.
        right: Right,
        /// The conid seen first.
        a: Conid,
        /// The conid seen second.
        b: Conid,
    },
    /// An `S` execution of a ForecastEx contract: the venue has no sells,
    /// so the report is corrupt or not ForecastEx.
    #[error("execution {execution_id}: ForecastEx contracts cannot be sold (side S)")]
    SellNotAllowed {
        /// The execution's id.
        execution_id: String,
    },
    /// An execution of zero or negative size.
    #[error("execution {execution_id}: size must be positive, got {size}")]
    BadSize {
        /// The execution's id.
        execution_id: String,
        /// The size it carried.
        size: Decimal,
    },
    /// Netting reports were asked for a fill that is not a buy; the venue
    /// only nets after a `B`.
    #[error("execution {execution_id}: the venue's netting sequence starts with a buy (B), got {side:?}")]
    NotABuy {
        /// The fill's id.
        execution_id: String,
        /// The side it had instead.
        side: ExecSide,
    },
}

/// One side (the YES or the NO contract) of one strike: what pairing
/// needs to know of an event contract. A plain engine value: the
/// `/trsrv/event/contracts` wire record is `cpapi::messages::EventContract`,
/// which converts into this (`EventContract::record`), and the store keeps
/// these in its `event_contracts` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrikeSide {
    /// This contract's own conid: what orders and executions carry.
    pub conid: Conid,
    /// The market (event) the strike belongs to.
    pub underlying_conid: Conid,
    /// Numeric even when the question is not (elections carry the candidate
    /// in `strike_label`).
    pub strike: Decimal,
    /// Whether this is the YES or the NO contract.
    pub right: Right,
    /// The strike as people read it (e.g. a candidate or a range), when
    /// the record has one.
    pub strike_label: Option<String>,
    /// Resolution date (`YYYYMMDD`). Part of the strike key: one market can
    /// list the same strike value for several measured periods.
    pub expiration: Option<String>,
    /// What one contract pays when it resolves in the money.
    pub payout: Option<Decimal>,
}

/// The YES and NO conids of one strike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrikePair {
    /// The market (event) the strike belongs to.
    pub underlying: Conid,
    /// Resolution date (`YYYYMMDD`), when the records give one.
    pub expiration: Option<String>,
    /// Numeric strike value; see `strike_label` for the readable one.
    pub strike: Decimal,
    /// Readable strike, from either side's record.
    pub strike_label: Option<String>,
    /// Conid of the YES contract.
    pub yes: Conid,
    /// Conid of the NO contract.
    pub no: Conid,
    /// Payout per contract at resolution; 1 when the record does not say.
    pub payout: Decimal,
}

impl StrikePair {
    /// Conid of the `right` side: what to buy to trade that side.
    pub fn conid(&self, right: Right) -> Conid {
        match right {
            Right::Yes => self.yes,
            Right::No => self.no,
        }
    }

    /// Which side of this strike `conid` is, if any.
    pub fn right_of(&self, conid: Conid) -> Option<Right> {
        if conid == self.yes {
            Some(Right::Yes)
        } else if conid == self.no {
            Some(Right::No)
        } else {
            None
        }
    }
}

/// The strikes of one or more markets, indexed by conid.
#[derive(Debug, Clone, Default)]
pub struct Pairing {
    pairs: Vec<StrikePair>,
    by_conid: HashMap<Conid, (usize, Right)>,
    /// Conids whose opposite side was not in the records (kept so callers can
    /// log them; they cannot be netted).
    pub unpaired: Vec<Conid>,
}

impl Pairing {
    /// Pair YES and NO records that share underlying, expiration and strike.
    /// Two different conids for the same side of one strike is an error: the
    /// netting of either would be a guess.
    pub fn from_records(records: &[StrikeSide]) -> Result<Pairing, NettingError> {
        type Key = (Conid, Option<String>, Decimal);
        let mut sides: Vec<(Key, [Option<&StrikeSide>; 2])> = Vec::new();
        let mut index: HashMap<Key, usize> = HashMap::new();
        for r in records {
            let key = (
                r.underlying_conid,
                r.expiration.clone(),
                r.strike.normalize(),
            );
            let i = *index.entry(key.clone()).or_insert_with(|| {
                sides.push((key, [None, None]));
                sides.len() - 1
            });
            let slot = &mut sides[i].1[r.right as usize];
            match slot {
                Some(prev) if prev.conid != r.conid => {
                    return Err(NettingError::DuplicateSide {
                        underlying: r.underlying_conid,
                        strike: r.strike,
                        right: r.right,
                        a: prev.conid,
                        b: r.conid,
                    })
                }
                _ => *slot = Some(r),
            }
        }
        let mut out = Pairing::default();
        for (_, [yes, no]) in sides {
            match (yes, no) {
                (Some(y), Some(n)) => out.insert(StrikePair {
                    underlying: y.underlying_conid,
                    expiration: y.expiration.clone(),
                    strike: y.strike,
                    strike_label: y.strike_label.clone().or_else(|| n.strike_label.clone()),
                    yes: y.conid,
                    no: n.conid,
                    payout: y.payout.or(n.payout).unwrap_or(Decimal::ONE),
                }),
                (Some(r), None) | (None, Some(r)) => out.unpaired.push(r.conid),
                (None, None) => {}
            }
        }
        Ok(out)
    }

    /// Add one pair (e.g. loaded back from the store).
    pub fn insert(&mut self, pair: StrikePair) {
        let i = self.pairs.len();
        self.by_conid.insert(pair.yes, (i, Right::Yes));
        self.by_conid.insert(pair.no, (i, Right::No));
        self.pairs.push(pair);
    }

    /// Every paired strike, in the order added.
    pub fn pairs(&self) -> &[StrikePair] {
        &self.pairs
    }

    /// True when no strike is known: the engine then treats no contract
    /// as ForecastEx.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Make `contract` what a paired conid is: a ForecastEx event contract
    /// (exchange `FORECASTX`, multiplier 1), so risk refuses sells of it.
    /// Other contracts are left alone.
    pub fn mark_contract(&self, contract: &mut Contract) {
        if self.by_conid.contains_key(&contract.conid) {
            contract.sec_type = SecType::EventContract;
            contract.exchange = "FORECASTX".to_owned();
            contract.multiplier = Decimal::ONE;
        }
    }

    /// What the venue reports for `fill` given the account's quantities
    /// before it: a buy of a paired contract is followed by the netting
    /// reports ([`venue_executions`]); anything else is the fill alone.
    /// For simulated venues, whose exchanges report fills only.
    pub fn venue_reports(
        &self,
        fill: Execution,
        quantity: impl Fn(Conid) -> Decimal,
    ) -> Vec<Execution> {
        let Some((pair, _)) = self.lookup(fill.conid) else {
            return vec![fill];
        };
        let held = StrikePosition {
            yes: quantity(pair.yes),
            no: quantity(pair.no),
        };
        match venue_executions(pair, held, &fill) {
            Ok(reports) => reports,
            Err(e) => {
                // A sell reached the venue (risk refuses them) or a fill
                // had no size: report the fill alone rather than lose it.
                tracing::warn!("ForecastEx netting of {}: {e}", fill.execution_id);
                vec![fill]
            }
        }
    }

    /// The strike `conid` belongs to and its side.
    pub fn lookup(&self, conid: Conid) -> Option<(&StrikePair, Right)> {
        self.by_conid
            .get(&conid)
            .map(|&(i, right)| (&self.pairs[i], right))
    }

    /// The conid on the other side of `conid`'s strike.
    pub fn opposite(&self, conid: Conid) -> Option<Conid> {
        self.lookup(conid)
            .map(|(pair, right)| pair.conid(right.opposite()))
    }
}

/// Long YES and long NO holdings of one strike. Between a `B` and its two
/// `N` reports both can be positive; once netting completes at most one is.
/// A quantity can go negative when an `N` is delivered before the `B` it
/// nets; it comes back when the `B` arrives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrikePosition {
    /// YES contracts held.
    pub yes: Decimal,
    /// NO contracts held.
    pub no: Decimal,
}

/// Net holding of a strike: the venue's view once netting is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetPosition {
    /// Nothing held, or YES and NO equal (they net to nothing).
    Flat,
    /// Net long YES by this many contracts (positive).
    Yes(Decimal),
    /// Net long NO by this many contracts (positive).
    No(Decimal),
}

impl StrikePosition {
    /// Contracts held on the `right` side.
    pub fn get(&self, right: Right) -> Decimal {
        match right {
            Right::Yes => self.yes,
            Right::No => self.no,
        }
    }

    fn get_mut(&mut self, right: Right) -> &mut Decimal {
        match right {
            Right::Yes => &mut self.yes,
            Right::No => &mut self.no,
        }
    }

    /// Apply one execution report on `right`. ForecastEx has no sells.
    pub fn apply(
        &mut self,
        right: Right,
        side: ExecSide,
        size: Decimal,
        execution_id: &str,
    ) -> Result<(), NettingError> {
        if size <= Decimal::ZERO {
            return Err(NettingError::BadSize {
                execution_id: execution_id.to_owned(),
                size,
            });
        }
        if side == ExecSide::Sold {
            return Err(NettingError::SellNotAllowed {
                execution_id: execution_id.to_owned(),
            });
        }
        *self.get_mut(right) += side.signed(size);
        Ok(())
    }

    /// Apply an execution of `pair`'s YES or NO conid.
    pub fn apply_execution(
        &mut self,
        pair: &StrikePair,
        exec: &Execution,
    ) -> Result<(), NettingError> {
        let right = pair
            .right_of(exec.conid)
            .ok_or(NettingError::UnknownConid { conid: exec.conid })?;
        self.apply(right, exec.side, exec.size, &exec.execution_id)
    }

    /// Netting is complete: YES and NO are not both held, and neither is
    /// negative (no `N` is waiting for its `B`).
    pub fn is_settled(&self) -> bool {
        self.yes >= Decimal::ZERO
            && self.no >= Decimal::ZERO
            && (self.yes.is_zero() || self.no.is_zero())
    }

    /// YES minus NO: what the strike is worth in YES contracts. Invariant
    /// under netting, so it is the venue's position at every instant.
    pub fn net_yes(&self) -> Decimal {
        self.yes - self.no
    }

    /// [`Self::net_yes`] as the side held and its size: what the venue
    /// shows once netting is done.
    pub fn net(&self) -> NetPosition {
        let n = self.net_yes();
        if n.is_zero() {
            NetPosition::Flat
        } else if n > Decimal::ZERO {
            NetPosition::Yes(n)
        } else {
            NetPosition::No(-n)
        }
    }
}

/// One execution report of the venue's sequence for a buy, before ids and
/// prices are attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leg {
    /// The side of the strike the report is for.
    pub right: Right,
    /// `B` for the buy itself, `N` for a netting report.
    pub side: ExecSide,
    /// Contracts, positive.
    pub size: Decimal,
}

/// The reports the venue sends when `qty` of `buy` is bought while `held` is
/// held: `B qty` on the bought side, then, when the opposite side is long,
/// `N` of the overlap on the held side and `N` of the overlap on the bought
/// side, in that order (spec, "Executions and Netting").
pub fn venue_legs(held: StrikePosition, buy: Right, qty: Decimal) -> Vec<Leg> {
    let mut legs = vec![Leg {
        right: buy,
        side: ExecSide::Bought,
        size: qty,
    }];
    let overlap = held.get(buy.opposite()).max(Decimal::ZERO).min(qty);
    if overlap > Decimal::ZERO {
        legs.push(Leg {
            right: buy.opposite(),
            side: ExecSide::Netting,
            size: overlap,
        });
        legs.push(Leg {
            right: buy,
            side: ExecSide::Netting,
            size: overlap,
        });
    }
    legs
}

/// The full execution sequence the venue produces for the buy `fill` (a `B`
/// on one side of `pair`) given what was `held` before it: `fill` itself,
/// then the netting reports. For the simulator.
///
/// The spec does not say what ids and prices the `N` reports carry; this
/// assumes ids `<fill id>.N1` and `.N2`, no commission, the held side
/// netted at `payout - fill price` (buying NO at p is selling YES at
/// payout - p) and the bought side at the fill price, each with
/// `net_amount` = size x price. The two legs of a netted pair then release
/// exactly the payout in cash, and the realized PnL under average cost is
/// the pair's true PnL.
pub fn venue_executions(
    pair: &StrikePair,
    held: StrikePosition,
    fill: &Execution,
) -> Result<Vec<Execution>, NettingError> {
    if fill.side != ExecSide::Bought {
        return Err(NettingError::NotABuy {
            execution_id: fill.execution_id.clone(),
            side: fill.side,
        });
    }
    if fill.size <= Decimal::ZERO {
        return Err(NettingError::BadSize {
            execution_id: fill.execution_id.clone(),
            size: fill.size,
        });
    }
    let buy = pair
        .right_of(fill.conid)
        .ok_or(NettingError::UnknownConid { conid: fill.conid })?;
    let legs = venue_legs(held, buy, fill.size);
    let mut out = Vec::with_capacity(legs.len());
    out.push(fill.clone());
    for (n, leg) in legs.iter().skip(1).enumerate() {
        let price = if leg.right == buy {
            fill.price
        } else {
            pair.payout - fill.price
        };
        out.push(Execution {
            execution_id: format!("{}.N{}", fill.execution_id, n + 1),
            conid: pair.conid(leg.right),
            side: ExecSide::Netting,
            size: leg.size,
            price,
            commission: Decimal::ZERO,
            net_amount: leg.size * price,
            ..fill.clone()
        });
    }
    Ok(out)
}

/// The venue's reports for one buy ([`venue_executions`]) as a trade
/// history reads them: the bought side's `N` cancels the same quantity of
/// its `B` (bought and netted at one price, nothing held in between), so
/// what remains is the held side closed by its `N` at `payout - price` and
/// the part of the buy beyond the overlap. The buy's commission goes with
/// what remains of it, or with the close when nothing does. Reports that
/// are not such a sequence come back unchanged.
///
/// For reports (round trips, win rate): a netted exit is one closed YES
/// trade, not a YES trade plus a zero-length NO trade.
pub fn economic_fills(reports: &[Execution]) -> Vec<Execution> {
    let [b, held, bought] = reports else {
        return reports.to_vec();
    };
    let shape = b.side == ExecSide::Bought
        && held.side == ExecSide::Netting
        && bought.side == ExecSide::Netting
        && bought.conid == b.conid
        && held.conid != b.conid
        && bought.size == held.size
        && bought.size <= b.size;
    if !shape {
        return reports.to_vec();
    }
    let rest = b.size - bought.size;
    let mut close = held.clone();
    if rest.is_zero() {
        close.commission += b.commission;
        return vec![close];
    }
    let opened = Execution {
        size: rest,
        net_amount: rest * b.price,
        ..b.clone()
    };
    vec![close, opened]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_put_or_call_is_an_error() {
        let err = "X".parse::<Right>().unwrap_err();
        assert!(err.to_string().contains("putOrCall"), "{err}");
        assert_eq!("C".parse::<Right>(), Ok(Right::Yes));
        assert_eq!("P".parse::<Right>(), Ok(Right::No));
    }
}
