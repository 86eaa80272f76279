//! Websocket client (see `mod.rs`).
