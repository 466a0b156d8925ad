//! Bytes in memory: the [`buffer::Buffer`] a connection reads into and writes from, and the
//! per-loop [`buffer_pool::BufferPool`] that recycles them.

pub mod buffer;
pub mod buffer_pool;
