//! Comparing what the store believes with what the broker reports. The
//! comparison only finds differences; deciding what to do about them (an
//! event, a log line, a halt) is the caller's, so nothing is overwritten
//! silently.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::{Result, Store, StoredOrder, StoredPosition};
use cpapi::order_ticket::CoidParts;
use engine::model::Conid;

pub use engine::journal::{BrokerOrder, BrokerPosition, Discrepancy};

/// Position differences, in account and conid order. A key absent on one
/// side counts as flat there.
pub fn compare_positions(local: &[StoredPosition], broker: &[BrokerPosition]) -> Vec<Discrepancy> {
    let mut both: BTreeMap<(String, Conid), (Decimal, Decimal)> = BTreeMap::new();
    for p in local {
        both.entry((p.account.clone(), p.conid)).or_default().0 += p.quantity;
    }
    for p in broker {
        both.entry((p.account.clone(), p.conid)).or_default().1 += p.quantity;
    }
    both.into_iter()
        .filter(|(_, (l, b))| l != b)
        .map(
            |((account, conid), (local, broker))| Discrepancy::Position {
                account,
                conid,
                local,
                broker,
            },
        )
        .collect()
}

/// Order differences between our open orders and the broker's list.
pub fn compare_orders(local_open: &[StoredOrder], broker: &[BrokerOrder]) -> Vec<Discrepancy> {
    let theirs: BTreeMap<&str, &BrokerOrder> = broker
        .iter()
        .map(|o| (o.client_order_id.as_str(), o))
        .collect();
    let ours: BTreeMap<&str, &StoredOrder> = local_open
        .iter()
        .map(|o| (o.client_order_id.as_str(), o))
        .collect();
    let mut out = Vec::new();
    for (coid, o) in &ours {
        match theirs.get(coid) {
            None => out.push(Discrepancy::OrderMissingAtBroker {
                client_order_id: (*coid).to_owned(),
            }),
            Some(b) if b.status != o.status || b.filled_quantity != o.filled_quantity => {
                out.push(Discrepancy::OrderState {
                    client_order_id: (*coid).to_owned(),
                    local: (o.status, o.filled_quantity),
                    broker: (b.status, b.filled_quantity),
                })
            }
            Some(_) => {}
        }
    }
    for coid in theirs.keys() {
        if !ours.contains_key(coid) {
            out.push(Discrepancy::UnknownOrder {
                client_order_id: (*coid).to_owned(),
            });
        }
    }
    out
}

impl Store {
    /// Stored positions against the broker's.
    pub async fn position_discrepancies(
        &self,
        broker: &[BrokerPosition],
    ) -> Result<Vec<Discrepancy>> {
        Ok(compare_positions(&self.positions().await?, broker))
    }

    /// Stored open orders against the broker's live orders. Orders the
    /// broker reports that we hold as finished are not discrepancies; an
    /// order we stored as finished but the broker still works is, as an
    /// unknown order only when we never stored its cOID. Orders whose cOID
    /// names another ibflow bot (once this store has a
    /// [`Store::bot_id`]) are that bot's, not unknown.
    ///
    /// A finished broker order without a cOID (a bracket child: children
    /// carry no cOID on the wire) cannot be matched by cOID and changes
    /// nothing any more; its fills are reconciled through executions and
    /// positions, so it is left out. A working one is still reported.
    pub async fn order_discrepancies(&self, broker: &[BrokerOrder]) -> Result<Vec<Discrepancy>> {
        let broker: Vec<BrokerOrder> = broker
            .iter()
            .filter(|b| !(b.client_order_id.is_empty() && b.status.is_terminal()))
            .cloned()
            .collect();
        let broker = broker.as_slice();
        let open = self.open_orders().await?;
        let all = self.orders().await?;
        let known: std::collections::HashSet<&str> =
            all.iter().map(|o| o.client_order_id.as_str()).collect();
        let open_ids: std::collections::HashSet<&str> =
            open.iter().map(|o| o.client_order_id.as_str()).collect();
        // Broker rows for orders we closed locally are compared too when the
        // broker says they are still working.
        let relevant: Vec<BrokerOrder> = broker
            .iter()
            .filter(|b| {
                open_ids.contains(b.client_order_id.as_str())
                    || !known.contains(b.client_order_id.as_str())
            })
            .cloned()
            .collect();
        // Another ibflow bot's orders on a shared account are its own
        // store's business, not unknown to this one.
        let own_bot = self.stored_bot_id().await?;
        let relevant: Vec<BrokerOrder> = relevant
            .into_iter()
            .filter(|b| match (&own_bot, CoidParts::parse(&b.client_order_id)) {
                (Some(own), Some(parts)) => parts.bot == own,
                _ => true,
            })
            .collect();
        let mut out = compare_orders(&open, &relevant);
        for b in broker {
            let id = b.client_order_id.as_str();
            if known.contains(id) && !open_ids.contains(id) && !b.status.is_terminal() {
                if let Some(o) = all.iter().find(|o| o.client_order_id == id) {
                    out.push(Discrepancy::OrderState {
                        client_order_id: id.to_owned(),
                        local: (o.status, o.filled_quantity),
                        broker: (b.status, b.filled_quantity),
                    });
                }
            }
        }
        Ok(out)
    }
}
