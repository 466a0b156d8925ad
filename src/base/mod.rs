//! Plain values and small tools that every layer above may use: the error type, the slab that
//! names connections, the timer queue, the per-loop counters, panic payloads, the per-address
//! connection counts. Nothing here does I/O or knows of loops.

pub(crate) mod error;
pub(crate) mod panic;
pub(crate) mod per_ip;
pub(crate) mod slab;
pub(crate) mod stats;
pub(crate) mod timer;
