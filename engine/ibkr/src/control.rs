//! Control of a client from outside its requests: the operator's stop and
//! kill switch, and what the client found out that ends a run (the 429
//! penalty box, a session that is gone for good).
//!
//! Why a separate handle: a bot's control loop awaits one thing at a time,
//! and a request held by the pacer (a 15-minute penalty box, a 5-second
//! endpoint window) would hold Ctrl-C, `--duration` and the kill switch
//! behind it. Signals set flags here instead, from their own tasks, and
//! every pacer wait watches them:
//!
//! * [`ClientControl::stop`]: the run is ending. A request that would wait
//!   out the penalty box fails at once ([`IbkrError::PenaltyBox`]) instead;
//!   rate-window waits (seconds) still run, so a clean shutdown can cancel.
//! * [`ClientControl::halt_orders`]: the kill switch. Order entry (place,
//!   reply, modify) fails at once with [`IbkrError::Halted`], including a
//!   request already waiting in the pacer; cancels go ahead of every other
//!   request.
//!
//! The handle lives in [`crate::ClientConfig::control`], so the client a
//! [`crate::node::LiveNode`] builds from that config (and all its clones)
//! and the binary that keeps a clone of the config share one.
//!
//! [`IbkrError::PenaltyBox`]: crate::IbkrError::PenaltyBox
//! [`IbkrError::Halted`]: crate::IbkrError::Halted

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// The flags every pacer wait watches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    /// The run is ending: do not wait out a penalty.
    pub stopping: bool,
    /// Order entry is refused (kill switch, session gone).
    pub orders_halted: bool,
}

#[derive(Debug)]
struct Shared {
    flags: watch::Sender<Flags>,
    penalty_until: Mutex<Option<Instant>>,
    session_ended: Mutex<Option<String>>,
    halt_reason: Mutex<Option<String>>,
}

/// A shared, cheap-to-clone handle on one client's control state; see the
/// module documentation. `Default` is a fresh handle with nothing set.
#[derive(Debug, Clone)]
pub struct ClientControl {
    shared: Arc<Shared>,
}

impl Default for ClientControl {
    fn default() -> Self {
        ClientControl {
            shared: Arc::new(Shared {
                flags: watch::Sender::new(Flags::default()),
                penalty_until: Mutex::new(None),
                session_ended: Mutex::new(None),
                halt_reason: Mutex::new(None),
            }),
        }
    }
}

impl ClientControl {
    /// The run is ending: no request waits out a penalty box from now on
    /// (it fails with [`crate::IbkrError::PenaltyBox`] at once, and so does
    /// one already waiting). Idempotent.
    pub fn stop(&self) {
        self.shared.flags.send_if_modified(|f| {
            let changed = !f.stopping;
            f.stopping = true;
            changed
        });
    }

    /// True once [`ClientControl::stop`] was called.
    pub fn is_stopping(&self) -> bool {
        self.shared.flags.borrow().stopping
    }

    /// Resolves when [`ClientControl::stop`] is called (at once if it was):
    /// the stop future of a run loop.
    pub async fn stopped(&self) {
        let mut rx = self.shared.flags.subscribe();
        let _ = rx.wait_for(|f| f.stopping).await;
    }

    /// The kill switch, at the transport: refuse every order entry request
    /// from now on, and fail the ones already waiting in the pacer, with
    /// [`crate::IbkrError::Halted`]. Cancels are not affected (they go first).
    /// The first reason is kept. Idempotent.
    pub fn halt_orders(&self, reason: &str) {
        {
            let mut r = self
                .shared
                .halt_reason
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if r.is_none() {
                *r = Some(reason.to_owned());
            }
        }
        self.shared.flags.send_if_modified(|f| {
            let changed = !f.orders_halted;
            f.orders_halted = true;
            changed
        });
    }

    /// Why order entry is halted, if it is.
    pub fn orders_halted(&self) -> Option<String> {
        if !self.shared.flags.borrow().orders_halted {
            return None;
        }
        self.shared
            .halt_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .or_else(|| Some("halted".to_owned()))
    }

    /// The gateway's session is gone for good (logged out, taken by a
    /// competing login): recorded by the websocket task when it gives up,
    /// with order entry halted. The first reason is kept.
    pub fn end_session(&self, reason: &str) {
        {
            let mut s = self
                .shared
                .session_ended
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if s.is_none() {
                *s = Some(reason.to_owned());
            }
        }
        self.halt_orders(&format!("gateway session ended: {reason}"));
    }

    /// Why the session ended, if the client gave up on it.
    pub fn session_ended(&self) -> Option<String> {
        self.shared
            .session_ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Time left in the 429 penalty box, if the client is in it.
    pub fn penalty_remaining(&self) -> Option<Duration> {
        let until = (*self
            .shared
            .penalty_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner))?;
        let now = Instant::now();
        (until > now).then(|| until - now)
    }

    /// The end of the penalty box, if one was recorded (past or not).
    pub(crate) fn penalty_until(&self) -> Option<Instant> {
        *self
            .shared
            .penalty_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Record a penalty box ending at `until`.
    pub(crate) fn set_penalty_until(&self, until: Instant) {
        *self
            .shared
            .penalty_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(until);
    }

    /// The current flags.
    pub(crate) fn flags(&self) -> Flags {
        self.shared.flags.borrow().clone()
    }

    /// A receiver of flag changes, for waits that must end on one.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Flags> {
        self.shared.flags.subscribe()
    }
}
