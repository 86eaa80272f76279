//! Client for the Interactive Brokers Client Portal Web API (the CP Gateway
//! on `https://localhost:5000/v1/api`, or the built-in simulator).
//!
//! * [`rest`]: the typed REST client ([`IbkrClient`]), with the pacing
//!   limiter ([`pacing`]) in front of every request.
//! * [`messages`]: tolerant serde types of the responses.
//! * [`smd`]: market data decoding (websocket `smd` and snapshots).
//! * [`ws`]: the websocket client that publishes [`crate::bus::Event`]s.
//! * [`session`]: keeps the session alive (`/tickle`, re-init, reset times).
//! * [`history`]: the history downloader (split, fetch, stitch, save).

pub mod error;
pub mod history;
pub mod messages;
pub mod pacing;
pub mod rest;
pub mod session;
pub mod smd;
pub mod ws;

pub use error::IbkrError;
pub use rest::{ClientConfig, IbkrClient};
