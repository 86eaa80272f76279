//! The client of the Interactive Brokers Client Portal Web API (a CP Gateway
//! on `https://localhost:5000/v1/api`, or the built-in simulator): all of
//! ibflow's network I/O toward IBKR.
//!
//! * [`rest`]: the typed REST client ([`IbkrClient`]), with the pacer
//!   ([`pacing`]) in front of every request.
//! * [`ws`]: the websocket client that publishes [`engine::event::Event`]s.
//! * [`session`]: keeps the session alive (`/tickle`, re-init, reset times).
//! * [`control`]: the operator's stop and kill switch as every pacer wait
//!   sees them, and what ends a run (penalty box, session gone).
//! * [`telemetry`]: Prometheus metrics, health and the status snapshot a
//!   bot's control endpoint serves.
//! * [`history`]: the history downloader (split, fetch, stitch, save).
//! * [`executor`]: one order submission at a time, prompts answered by the
//!   [`reply`] policy, lost answers recovered by cOID.
//! * [`broker`]: [`broker::IbkrBroker`], the client behind the engine's
//!   venue seam.
//! * [`live_engine`]: strategies, risk and a venue fed by its messages.
//! * [`venue_clock`]: the venue's time from its quotes (a replaying
//!   gateway keeps its own), for trading hours and bar closing.
//! * [`node`]: [`node::LiveNode`], a whole bot from a config: account,
//!   contracts, a portfolio seeded from the account, websocket, session
//!   keeper, executor, journal.
//!
//! The wire types are in the `cpapi` crate; nothing here parses JSON by
//! hand.

pub mod broker;
pub mod control;
pub mod error;
pub mod executor;
pub mod history;
pub mod live_engine;
pub mod node;
pub mod pacing;
pub mod reply;
pub mod rest;
pub mod session;
pub mod startup;
pub mod telemetry;
pub mod venue_clock;
pub mod warmup;
pub mod ws;

pub use control::ClientControl;
pub use error::IbkrError;
pub use rest::{BearerToken, ClientConfig, IbkrClient};
pub use telemetry::Telemetry;
