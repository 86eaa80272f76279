//! The store as the engine's [`Journal`]: every order change and execution
//! of a live run, and reconciliation with the venue at start.

use async_trait::async_trait;

use engine::journal::{
    Journal, JournalError, JournalOrder, Reconciled, VenueReport, WorkingOrderIds,
};
use engine::model::Execution;
use engine::strategy::SavedState;

use crate::{Store, StoredOrder};

use cpapi::messages::TRADES_WINDOW_DAYS;

fn err(e: crate::StoreError) -> JournalError {
    JournalError(e.to_string())
}

#[async_trait]
impl Journal for Store {
    async fn record_order(&mut self, o: JournalOrder<'_>) -> Result<(), JournalError> {
        let mut row = StoredOrder::from_order(o.order, None, Some(o.account));
        o.client_order_id.clone_into(&mut row.client_order_id);
        row.parent = o.parent.map(str::to_owned);
        self.upsert_order(&row).await.map(|_| ()).map_err(err)
    }

    async fn record_execution(&mut self, e: &Execution) -> Result<(), JournalError> {
        Store::record_execution(self, e, None)
            .await
            .map(|_| ())
            .map_err(err)
    }

    async fn reconcile(
        &mut self,
        _account: &str,
        venue: VenueReport,
    ) -> Result<Reconciled, JournalError> {
        let now = chrono::Utc::now();
        // Checked before ingesting: what the broker sends now is not what
        // the store had.
        if let Some(gap) = self
            .history_gap(now, i64::from(TRADES_WINDOW_DAYS))
            .await
            .map_err(err)?
        {
            tracing::error!(
                last_recorded = %gap.last_recorded.to_rfc3339(),
                recoverable_from = %gap.recoverable_from.to_rfc3339(),
                "the store was last written more than {TRADES_WINDOW_DAYS} days ago: executions \
                 from {} to {} cannot be fetched from the broker any more and may be missing",
                gap.last_recorded.date_naive(),
                gap.recoverable_from.date_naive()
            );
        }
        let batch: Vec<_> = venue.executions.into_iter().map(|e| (e, None)).collect();
        let ingested = self.record_executions(&batch).await.map_err(err)?;
        let mut out = Reconciled {
            ingested: ingested.new_count(),
            discrepancies: Vec::new(),
        };
        if let Some(o) = &venue.orders {
            for r in self.resolve_open_orders(o, now).await.map_err(err)? {
                tracing::warn!(
                    order = %r.client_order_id,
                    was = %r.was,
                    now = %r.now,
                    from = r.source,
                    "reconcile: an order finished while the bot was down"
                );
            }
        }
        if let Some(p) = venue.positions {
            let found = self.position_discrepancies(&p).await.map_err(err)?;
            out.discrepancies.extend(found);
        }
        if let Some(o) = venue.orders {
            let found = self.order_discrepancies(&o).await.map_err(err)?;
            out.discrepancies.extend(found);
        }
        Ok(out)
    }

    async fn save_strategy_state(
        &mut self,
        index: usize,
        name: &str,
        json: &str,
    ) -> Result<(), JournalError> {
        self.save_strategy_snapshot(index, name, json)
            .await
            .map_err(err)
    }

    async fn load_strategy_states(&mut self) -> Result<Vec<SavedState>, JournalError> {
        let rows = self.strategy_snapshots().await.map_err(err)?;
        Ok(rows.into_iter().map(|(s, _)| s).collect())
    }

    async fn working_order_ids(&mut self) -> Result<Vec<WorkingOrderIds>, JournalError> {
        let open = self.open_orders().await.map_err(err)?;
        Ok(open
            .into_iter()
            .filter_map(|o| {
                Some(WorkingOrderIds {
                    broker_order_id: o.broker_order_id?,
                    client_order_id: o.client_order_id,
                    parent: o.parent,
                })
            })
            .collect())
    }
}
