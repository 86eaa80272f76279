//! The store as the engine's [`Journal`]: every order change and execution
//! of a live run, and reconciliation with the venue at start.

use async_trait::async_trait;

use engine::journal::{Journal, JournalError, JournalOrder, Reconciled, VenueReport};
use engine::model::Execution;

use crate::{Store, StoredOrder};

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
        let batch: Vec<_> = venue.executions.into_iter().map(|e| (e, None)).collect();
        let ingested = self.record_executions(&batch).await.map_err(err)?;
        let mut out = Reconciled {
            ingested: ingested.new_count(),
            discrepancies: Vec::new(),
        };
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
}
