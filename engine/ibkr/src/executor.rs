//! Submitting order batches to a CP Web API gateway.
//!
//! The spec asks that no further order is placed until the previous one is
//! fully acknowledged, prompts included; [`LiveExecutor`] keeps exactly one
//! submission in flight. Prompts are answered by the [`ReplyPolicy`]; a
//! declined prompt is answered `confirmed: false` and reported. A 503 on a
//! reply means the gateway invalidated the order. When a submission fails
//! in transport (timeout, connection reset) the order may still have
//! reached the venue, so the executor looks for its cOIDs among the live
//! orders before reporting the failure: a retry never duplicates an order.
//!
//! A listing of the live orders may be reused ([`LiveExecutor::recent_live_orders`])
//! within the endpoint's pacing window (5 s) when this executor has placed,
//! modified or cancelled nothing since:
//! a fresh listing could not be had sooner (the pacer would hold it), and
//! what changed meanwhile reaches the engine over the websocket. Start-up
//! lists the orders twice in a row (re-attaching an earlier run's orders,
//! then reconciling); without reuse each listing cost 5 s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::reply::{Prompt, ReplyDecision, ReplyPolicy};
use crate::{IbkrClient, IbkrError};
use cpapi::messages::{LiveOrder, OrderAck, PlaceOutcome, ReplyPrompt};
use cpapi::order_ticket::OrderTicket;
use cpapi::order_ticket::TicketBuilder;
use engine::model::{Conid, OrderRequest, SecType};

/// Why a batch was not placed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// A precaution prompt the [`ReplyPolicy`] does not confirm; the gateway
    /// was answered `confirmed: false` and the order is not placed.
    #[error(
        "order prompt {id} declined by the reply policy (message ids {unexpected:?}): {messages:?}"
    )]
    Declined {
        /// The prompt's reply id (`/iserver/reply/{id}`).
        id: String,
        /// Its message ids the policy does not allow (`(no message id)`
        /// when it had none).
        unexpected: Vec<String>,
        /// The prompt's texts, for the operator.
        messages: Vec<String>,
    },
    /// A 503 to a confirmed reply: the gateway dropped the order (the
    /// spec's "invalidated" reply); the server's message.
    #[error("the gateway invalidated the order while its prompt was answered: {0}")]
    Invalidated(String),
    /// Every answer raised another prompt, this many times (8); the last
    /// one is left unanswered.
    #[error("more than {0} prompts in a row; giving up")]
    TooManyPrompts(usize),
    /// The request itself failed. After a transport failure the live orders
    /// were searched first: the batch was not found there.
    #[error(transparent)]
    Venue(#[from] IbkrError),
}

/// What a placed batch became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The gateway's acknowledgement of each order (`order_id`,
    /// `order_status`); rebuilt from the live orders when `recovered`.
    pub acks: Vec<OrderAck>,
    /// Prompts confirmed on the way, by message id.
    pub confirmed: Vec<String>,
    /// True when the batch was found among the live orders after a
    /// transport failure rather than acknowledged directly.
    pub recovered: bool,
}

/// Places batches on one account, one at a time.
#[derive(Debug)]
pub struct LiveExecutor {
    client: IbkrClient,
    builder: TicketBuilder,
    policy: ReplyPolicy,
    max_prompts: usize,
    in_flight: Mutex<()>,
    /// Bumped by every placement, modification and cancel.
    changes: AtomicU64,
    /// The last listing: when it was taken, `changes` then, the orders.
    recent: std::sync::Mutex<Option<(Instant, u64, Vec<LiveOrder>)>>,
}

/// How long a listing of the live orders may be reused: the endpoint's
/// window in [`cpapi::endpoints`] (1 request per 5 s).
fn listing_reuse() -> Duration {
    match cpapi::endpoints::lookup("GET", "/iserver/account/orders").map(|m| m.endpoint.pacing) {
        Some(cpapi::endpoints::Pacing::Rate(r)) => r.per,
        _ => Duration::ZERO,
    }
}

impl LiveExecutor {
    /// An executor placing through `client` the tickets `builder` makes
    /// (account, cOID prefix, `extOperator`), answering prompts by
    /// `policy`; at most 8 prompts per submission.
    pub fn new(client: IbkrClient, builder: TicketBuilder, policy: ReplyPolicy) -> Self {
        LiveExecutor {
            client,
            builder,
            policy,
            max_prompts: 8,
            in_flight: Mutex::new(()),
            changes: AtomicU64::new(0),
            recent: std::sync::Mutex::new(None),
        }
    }

    /// The REST client it places through.
    pub fn client(&self) -> &IbkrClient {
        &self.client
    }

    /// The prefix of every cOID and `parentId` it sends: unique per run,
    /// it tells this run's orders from any other's.
    pub fn coid_prefix(&self) -> &str {
        &self.builder.coid_prefix
    }

    /// What every cOID of this bot starts with, whatever the run
    /// ([`TicketBuilder::bot_prefix`]): how a restarted bot knows its own.
    pub fn bot_prefix(&self) -> &str {
        self.builder.bot_prefix()
    }

    /// Cancel a working order; futures and futures options carry
    /// `manualIndicator=false` and `extOperator` as the spec requires.
    pub async fn cancel(&self, order_id: &str, sec_type: &SecType) -> Result<(), SubmitError> {
        self.changes.fetch_add(1, Ordering::Relaxed);
        let compliance = matches!(sec_type, SecType::Future | SecType::FutureOption)
            .then_some((false, self.builder.ext_operator.as_str()));
        self.client
            .cancel_order_as(&self.builder.account, order_id, compliance)
            .await?;
        Ok(())
    }

    /// The wire form of one order exactly as [`Self::submit`] sends it
    /// (cOID prefix, futures compliance fields): modify bodies use it too.
    pub fn ticket(&self, req: &OrderRequest, sec_type: SecType) -> OrderTicket {
        let mut body = self
            .builder
            .body(std::slice::from_ref(req), |_| sec_type.clone());
        body.orders.pop().unwrap_or_default()
    }

    /// Place `batch` (single order, bracket or OCA group) and see it through
    /// its prompts.
    pub async fn submit(
        &self,
        batch: &[OrderRequest],
        sec_type: impl Fn(Conid) -> SecType,
    ) -> Result<Placed, SubmitError> {
        let _one_at_a_time = self.in_flight.lock().await;
        self.changes.fetch_add(1, Ordering::Relaxed);
        let body = self.builder.body(batch, sec_type);
        let coids: Vec<String> = body.orders.iter().filter_map(|o| o.c_oid.clone()).collect();
        let first = match self.client.place_orders(&self.builder.account, &body).await {
            Ok(outcome) => outcome,
            Err(e @ IbkrError::Transport { .. }) => {
                // It may have arrived anyway: look before anyone retries.
                return match self.find_live(&coids).await {
                    Some(acks) if !acks.is_empty() => Ok(Placed {
                        acks,
                        confirmed: Vec::new(),
                        recovered: true,
                    }),
                    _ => Err(SubmitError::Venue(e)),
                };
            }
            Err(e) => return Err(SubmitError::Venue(e)),
        };
        self.answer_prompts(first).await
    }

    /// Modify a working order (`body` is the whole order, as when placing
    /// it); prompts are answered by the same policy.
    pub async fn modify(&self, order_id: &str, body: &OrderTicket) -> Result<Placed, SubmitError> {
        let _one_at_a_time = self.in_flight.lock().await;
        self.changes.fetch_add(1, Ordering::Relaxed);
        let first = self
            .client
            .modify_order(&self.builder.account, order_id, body)
            .await?;
        self.answer_prompts(first).await
    }

    async fn answer_prompts(&self, mut outcome: PlaceOutcome) -> Result<Placed, SubmitError> {
        let mut confirmed = Vec::new();
        for _ in 0..self.max_prompts {
            let p: ReplyPrompt = match outcome {
                PlaceOutcome::Acknowledged(acks) => {
                    return Ok(Placed {
                        acks,
                        confirmed,
                        recovered: false,
                    })
                }
                PlaceOutcome::Prompt(p) => p,
            };
            let prompt = Prompt {
                id: p.id.clone(),
                messages: p.message.clone(),
                message_ids: p.message_ids.clone(),
            };
            match self.policy.decide(&prompt) {
                ReplyDecision::Confirm => {
                    confirmed.extend(p.message_ids.iter().cloned());
                    outcome = match self.client.reply(&p.id, true).await {
                        Ok(o) => o,
                        Err(IbkrError::Unavailable { message, .. }) => {
                            return Err(SubmitError::Invalidated(message))
                        }
                        Err(e) => return Err(SubmitError::Venue(e)),
                    };
                }
                ReplyDecision::Decline { unexpected } => {
                    // Tell the gateway no, so the prompt does not linger.
                    if let Err(e) = self.client.reply(&p.id, false).await {
                        tracing::debug!(error = %e, "declining a prompt failed");
                    }
                    return Err(SubmitError::Declined {
                        id: p.id,
                        unexpected,
                        messages: p.message,
                    });
                }
            }
        }
        Err(SubmitError::TooManyPrompts(self.max_prompts))
    }

    /// The account's live orders, fresh: `force=true` clears the gateway's
    /// cache and answers a blank list (the spec), so the client asks again;
    /// an answer still blank and not marked `snapshot` is asked twice more.
    pub async fn live_orders(&self) -> Result<Vec<LiveOrder>, IbkrError> {
        let changes = self.changes.load(Ordering::Relaxed);
        let mut live = self.client.live_orders(&[], true).await?;
        for _ in 0..2 {
            if live.snapshot || !live.orders.is_empty() {
                break;
            }
            live = self.client.live_orders(&[], false).await?;
        }
        if let Ok(mut recent) = self.recent.lock() {
            *recent = Some((Instant::now(), changes, live.orders.clone()));
        }
        Ok(live.orders)
    }

    /// The live orders, from the last listing when it is within the reuse
    /// window (module doc), fresh otherwise. For reconciliation right after
    /// start-up's listing; a catch-up after a gap asks afresh.
    pub async fn recent_live_orders(&self) -> Result<Vec<LiveOrder>, IbkrError> {
        match self.reusable(self.changes.load(Ordering::Relaxed)) {
            Some(orders) => Ok(orders),
            None => self.live_orders().await,
        }
    }

    /// The last listing, if it is young enough and nothing was placed,
    /// modified or cancelled since.
    fn reusable(&self, changes: u64) -> Option<Vec<LiveOrder>> {
        let recent = self.recent.lock().ok()?;
        let (at, then, orders) = recent.as_ref()?;
        (*then == changes && at.elapsed() < listing_reuse()).then(|| orders.clone())
    }

    /// Acks for live orders whose `order_ref` (the cOID) is one of `coids`.
    async fn find_live(&self, coids: &[String]) -> Option<Vec<OrderAck>> {
        let live = self.live_orders().await.ok()?;
        Some(
            live.iter()
                .filter(|o| o.order_ref.as_ref().is_some_and(|r| coids.contains(r)))
                .map(|o| OrderAck {
                    order_id: o.order_id.clone(),
                    order_status: o.status.clone(),
                    ..OrderAck::default()
                })
                .collect(),
        )
    }
}
