//! The order state machine: status updates from any source (websocket
//! `sor`, REST polls, the simulated exchange) folded into one state per
//! order. Repeated and out-of-order updates are tolerated, and a terminal
//! state (Filled, Cancelled) never regresses.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::OrderStatus;

/// Progress rank of a status. Updates that would move an order back to a
/// lower rank are stale and ignored.
fn rank(s: OrderStatus) -> u8 {
    match s {
        OrderStatus::Inactive | OrderStatus::PendingSubmit => 0,
        OrderStatus::PreSubmitted => 1,
        OrderStatus::Submitted | OrderStatus::WarnState => 2,
        OrderStatus::PendingCancel => 3,
        OrderStatus::Filled | OrderStatus::Cancelled => 4,
    }
}

/// Filled and cancelled are final; nothing changes them.
pub fn is_final(s: OrderStatus) -> bool {
    matches!(s, OrderStatus::Filled | OrderStatus::Cancelled)
}

/// The status and fill progress of one order as updates arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    /// Latest status that was not stale.
    pub status: OrderStatus,
    /// Cumulative filled quantity, unsigned; only grows.
    pub filled: Decimal,
}

impl OrderState {
    /// A fresh order in `status` with nothing filled.
    pub fn new(status: OrderStatus) -> Self {
        OrderState {
            status,
            filled: Decimal::ZERO,
        }
    }

    /// Apply an update; returns whether anything changed.
    ///
    /// A final state never changes. A cancel request that the venue refused
    /// (`PendingCancel` followed by `Submitted`) goes back to working. Other
    /// moves to a lower rank are stale and ignored. The filled quantity only
    /// grows.
    pub fn apply(&mut self, status: OrderStatus, filled: Option<Decimal>) -> bool {
        if is_final(self.status) {
            return false;
        }
        let mut changed = false;
        if let Some(f) = filled {
            if f > self.filled {
                self.filled = f;
                changed = true;
            }
        }
        let cancel_refused = self.status == OrderStatus::PendingCancel
            && matches!(status, OrderStatus::Submitted | OrderStatus::PreSubmitted);
        if status != self.status && (rank(status) >= rank(self.status) || cancel_refused) {
            self.status = status;
            changed = true;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn any_status() -> impl Strategy<Value = OrderStatus> {
        prop::sample::select(OrderStatus::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn final_states_never_change(start in any_status(), updates in prop::collection::vec((any_status(), 0u32..100), 0..30)) {
            let mut s = OrderState::new(start);
            let mut seen_final: Option<OrderState> = None;
            let mut last_filled = Decimal::ZERO;
            for (u, f) in updates {
                s.apply(u, Some(Decimal::from(f)));
                prop_assert!(s.filled >= last_filled, "filled never shrinks");
                last_filled = s.filled;
                if let Some(fin) = seen_final {
                    prop_assert_eq!(s, fin);
                }
                if is_final(s.status) {
                    seen_final = Some(s);
                }
            }
        }
    }

    #[test]
    fn tolerates_repeats_and_stale_updates() {
        let mut s = OrderState::new(OrderStatus::PreSubmitted);
        assert!(s.apply(OrderStatus::Submitted, None));
        assert!(!s.apply(OrderStatus::Submitted, None), "repeat");
        assert!(!s.apply(OrderStatus::PreSubmitted, None), "stale");
        assert!(s.apply(OrderStatus::PendingCancel, None));
        assert!(s.apply(OrderStatus::Submitted, None), "cancel refused");
        assert!(s.apply(OrderStatus::Filled, Some(dec!(10))));
        assert!(!s.apply(OrderStatus::Cancelled, None));
        assert_eq!((s.status, s.filled), (OrderStatus::Filled, dec!(10)));
    }
}
