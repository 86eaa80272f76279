//! The one table of what the traded contracts are.
//!
//! Risk needs a contract's security type, exchange and multiplier; the
//! simulated exchange its multiplier and tick; the portfolio and the trade
//! report its multiplier; the live broker its security type for the order
//! ticket. They all read this table instead of keeping copies, so a
//! contract described once (from `/trsrv/secdef` live, from the backtest's
//! configuration, with ForecastEx pairs marked) is the same everywhere.
//!
//! Cloning the table is cheap (the contracts are shared); adding a contract
//! to a clone copies the list once and leaves the other clones as they were.

use std::sync::Arc;

use crate::forecastex::Pairing;
use crate::model::{Conid, Contract};

/// Contracts by conid. Lookups are a binary search over a list kept in
/// conid order; a bot trades tens of contracts, not thousands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contracts {
    by_conid: Arc<Vec<Contract>>,
}

impl Contracts {
    /// The table of `contracts`; a later contract with the same conid
    /// replaces an earlier one.
    pub fn new(contracts: impl IntoIterator<Item = Contract>) -> Self {
        let mut table = Contracts::default();
        for c in contracts {
            table.insert(c);
        }
        table
    }

    /// Add `contract`, or replace the one with its conid.
    pub fn insert(&mut self, contract: Contract) {
        let list = Arc::make_mut(&mut self.by_conid);
        match list.binary_search_by_key(&contract.conid, |c| c.conid) {
            Ok(i) => list[i] = contract,
            Err(i) => list.insert(i, contract),
        }
    }

    /// Mark the conids `pairing` pairs as what they are, ForecastEx event
    /// contracts ([`Pairing::mark_contract`]), whatever they were
    /// described as.
    pub fn mark_events(&mut self, pairing: &Pairing) {
        if pairing.is_empty() {
            return;
        }
        for c in Arc::make_mut(&mut self.by_conid) {
            pairing.mark_contract(c);
        }
    }

    /// The contract `conid`, when it is known.
    #[inline]
    pub fn get(&self, conid: Conid) -> Option<&Contract> {
        self.by_conid
            .binary_search_by_key(&conid, |c| c.conid)
            .ok()
            .map(|i| &self.by_conid[i])
    }

    /// Every contract, in conid order.
    pub fn iter(&self) -> impl Iterator<Item = &Contract> {
        self.by_conid.iter()
    }

    /// How many contracts the table knows.
    pub fn len(&self) -> usize {
        self.by_conid.len()
    }

    /// Whether the table knows no contract.
    pub fn is_empty(&self) -> bool {
        self.by_conid.is_empty()
    }
}

impl FromIterator<Contract> for Contracts {
    fn from_iter<I: IntoIterator<Item = Contract>>(iter: I) -> Self {
        Contracts::new(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn lookups_find_the_latest_description_and_clones_stay_apart() {
        let es = Contract {
            multiplier: Decimal::from(50),
            ..Contract::stock(Conid(7), "ES")
        };
        let mut t = Contracts::new([
            Contract::stock(Conid(9), "B"),
            Contract::stock(Conid(7), "old"),
            es.clone(),
            Contract::stock(Conid(3), "A"),
        ]);
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(Conid(7)), Some(&es));
        assert_eq!(
            t.get(Conid(7)).map(|c| c.multiplier),
            Some(Decimal::from(50))
        );
        assert!(t.get(Conid(4)).is_none());
        let conids: Vec<_> = t.iter().map(|c| c.conid.0).collect();
        assert_eq!(conids, [3, 7, 9]);

        let before = t.clone();
        t.insert(Contract::stock(Conid(4), "C"));
        assert_eq!(t.len(), 4);
        assert_eq!(before.len(), 3, "a clone does not see later inserts");
    }
}
