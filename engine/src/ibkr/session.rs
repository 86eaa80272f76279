//! Session keeping (see `mod.rs`).
