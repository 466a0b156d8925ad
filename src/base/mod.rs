//! Plain values and single-thread tools that every layer above may use: the error type, the
//! slab that names connections, the timer queue, the per-loop counters, panic payloads. Nothing
//! here does I/O or knows of loops.

pub(crate) mod error;
pub(crate) mod panic;
pub(crate) mod slab;
pub(crate) mod stats;
pub(crate) mod timer;
