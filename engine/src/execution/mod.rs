//! From approved intents to venue orders, and the order state machine.
//!
//! * [`OrderState::apply`] folds status updates (websocket `sor`, REST
//!   polls, the simulated exchange) into an order's state: repeated and
//!   out-of-order updates are tolerated, and a terminal state (Filled,
//!   Cancelled) never regresses.
//! * [`ReplyPolicy`] answers the `/iserver/reply/{id}` prompts: only
//!   message ids listed in the configuration are confirmed; everything else
//!   is declined and reported.
//! * [`TicketBuilder`] turns a batch into the request body: cOIDs carry a
//!   per-run prefix so they stay unique within IBKR's 24-hour window across
//!   restarts and stable across retries of the same order; futures orders
//!   carry the CME Rule 536-B fields.

use std::collections::BTreeSet;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::{Conid, OrderRequest, OrderStatus, SecType};
use crate::order_ticket::{OrderTicket, OrdersBody};

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
    pub status: OrderStatus,
    pub filled: Decimal,
}

impl OrderState {
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

/// A precaution prompt from place/modify or a reply: `{id, message[],
/// messageIds[]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub id: String,
    pub messages: Vec<String>,
    pub message_ids: Vec<String>,
}

/// What to answer to a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyDecision {
    Confirm,
    /// Declined; the ids that were not allowed, for the report.
    Decline {
        unexpected: Vec<String>,
    },
}

/// Which precaution messages may be confirmed automatically (for example
/// `o163` price far from market, `o354` no market data, `o10331` stop
/// order). A prompt is confirmed only if every one of its message ids is
/// allowed; a prompt without ids is declined, since we cannot tell what it
/// asks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplyPolicy {
    pub auto_confirm: BTreeSet<String>,
}

impl ReplyPolicy {
    pub fn decide(&self, prompt: &Prompt) -> ReplyDecision {
        let unexpected: Vec<String> = prompt
            .message_ids
            .iter()
            .filter(|id| !self.auto_confirm.contains(*id))
            .cloned()
            .collect();
        if prompt.message_ids.is_empty() || !unexpected.is_empty() {
            let unexpected = if unexpected.is_empty() {
                vec!["(no message id)".to_owned()]
            } else {
                unexpected
            };
            tracing::warn!(prompt = %prompt.id, ?unexpected, messages = ?prompt.messages,
                "order prompt declined by the reply policy");
            ReplyDecision::Decline { unexpected }
        } else {
            ReplyDecision::Confirm
        }
    }
}

/// Builds request bodies for one account.
#[derive(Debug, Clone)]
pub struct TicketBuilder {
    pub account: String,
    /// Prepended to every cOID and parentId; unique per engine run (for
    /// example the run's start time), so ids never repeat within 24 hours.
    pub coid_prefix: String,
    /// `extOperator` for futures and futures options orders.
    pub ext_operator: String,
}

impl TicketBuilder {
    /// A prefix derived from the run's start time (seconds, base 36): short,
    /// and different for every restart.
    pub fn run_prefix(started: crate::model::Timestamp) -> String {
        let mut n = started.timestamp().max(0) as u64;
        let mut digits = Vec::new();
        loop {
            let d = (n % 36) as u8;
            digits.push(if d < 10 { b'0' + d } else { b'a' + d - 10 });
            n /= 36;
            if n == 0 {
                break;
            }
        }
        digits.reverse();
        format!("{}-", String::from_utf8_lossy(&digits))
    }

    /// The body for `batch`. `sec_type` tells futures apart.
    pub fn body(&self, batch: &[OrderRequest], sec_type: impl Fn(Conid) -> SecType) -> OrdersBody {
        let orders = batch
            .iter()
            .map(|r| {
                let mut t = OrderTicket::from_request(r, &self.account);
                t.c_oid = t.c_oid.map(|c| format!("{}{c}", self.coid_prefix));
                t.parent_id = t.parent_id.map(|p| format!("{}{p}", self.coid_prefix));
                if matches!(sec_type(r.conid), SecType::Future | SecType::FutureOption) {
                    t.manual_indicator = Some(false);
                    t.ext_operator = Some(self.ext_operator.clone());
                }
                t
            })
            .collect();
        OrdersBody { orders }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OrderId, OrderType, Side, Tif};
    use chrono::TimeZone;
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

    #[test]
    fn reply_policy_confirms_only_listed_ids() {
        let policy = ReplyPolicy {
            auto_confirm: ["o163".to_owned(), "o354".to_owned()].into(),
        };
        let p = |ids: &[&str]| Prompt {
            id: "x".into(),
            messages: vec!["msg".into()],
            message_ids: ids.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(policy.decide(&p(&["o163"])), ReplyDecision::Confirm);
        assert_eq!(policy.decide(&p(&["o163", "o354"])), ReplyDecision::Confirm);
        assert_eq!(
            policy.decide(&p(&["o163", "o10331"])),
            ReplyDecision::Decline {
                unexpected: vec!["o10331".into()]
            }
        );
        assert!(matches!(
            policy.decide(&p(&[])),
            ReplyDecision::Decline { .. }
        ));
    }

    #[test]
    fn tickets_prefix_coids_and_mark_futures() {
        let req = |id: u64, parent: Option<&str>| OrderRequest {
            id: OrderId(id),
            conid: Conid(id as i64),
            side: Side::Buy,
            order_type: OrderType::Market,
            quantity: dec!(1),
            limit_price: None,
            stop_price: None,
            trail: None,
            tif: Tif::Day,
            outside_rth: false,
            client_order_id: format!("ibf-{id}"),
            parent: parent.map(str::to_owned),
            oca_group: None,
        };
        let started = chrono::Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let b = TicketBuilder {
            account: "U1".into(),
            coid_prefix: TicketBuilder::run_prefix(started),
            ext_operator: "bot-1".into(),
        };
        assert_eq!(b.coid_prefix, "s6k2o0-");
        let body = b.body(&[req(1, None), req(2, Some("ibf-1"))], |c| {
            if c == Conid(2) {
                SecType::Future
            } else {
                SecType::Stock
            }
        });
        assert_eq!(body.orders[0].c_oid.as_deref(), Some("s6k2o0-ibf-1"));
        assert_eq!(body.orders[1].parent_id.as_deref(), Some("s6k2o0-ibf-1"));
        assert_eq!(body.orders[1].c_oid, None);
        assert_eq!(body.orders[0].manual_indicator, None);
        assert_eq!(body.orders[1].manual_indicator, Some(false));
        assert_eq!(body.orders[1].ext_operator.as_deref(), Some("bot-1"));
        // Stable: the same batch gives the same body (safe to retry).
        let again = b.body(&[req(1, None), req(2, Some("ibf-1"))], |_| SecType::Stock);
        assert_eq!(again.orders[0].c_oid, body.orders[0].c_oid);
    }
}

#[cfg(feature = "ibkr")]
pub mod broker;
#[cfg(feature = "ibkr")]
pub mod engine;
#[cfg(feature = "ibkr")]
pub mod live;
