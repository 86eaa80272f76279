//! Example strategies.
