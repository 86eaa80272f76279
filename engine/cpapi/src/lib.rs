//! The Client Portal Web API's wire format, with no I/O: what the gateway
//! sends and what it must be sent, as the spec (`shared/spec`) shows it.
//!
//! * [`lenient`]: the serde helpers for its loose JSON (numbers as strings,
//!   ids as either), used by every type here.
//! * [`messages`]: response bodies of the REST endpoints and their
//!   conversions into the engine's model.
//! * [`order_ticket`]: the Place Order body and the per-run cOID prefix.
//! * [`spelling`]: order type, status, time in force and side spellings,
//!   per endpoint, in both directions.
//! * [`smd`]: market data fields (websocket `smd` and snapshots).
//! * [`history`]: the two historical bar responses.
//! * [`endpoints`]: the endpoints with their methods and pacing limits,
//!   one table for the client's pacer and the simulator's limiter.
//!
//! The client (`ibkr`) and the simulator (`gateway-sim`) both speak through
//! these types, so a spelling is written once.

pub mod endpoints;
pub mod history;
pub mod lenient;
pub mod messages;
pub mod order_ticket;
pub mod reset;
pub mod smd;
pub mod spelling;
