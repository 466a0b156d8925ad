//! # kingpin
//!
//! A thread-pool epoll reactor for TCP servers and clients on Linux, in the nginx/muduo
//! style: implement one trait, [`IoHandler`], and get a server that holds tens of thousands of
//! connections on a few threads, each thread running its own epoll loop.
//!
//! ```text
//!                       ┌──────────── accept mutex (try_lock) ────────────┐
//!                       │ the winner watches the listening socket this turn│
//!                       └───────┬──────────────────┬──────────────────┬───┘
//!   any thread                  │                  │                  │
//!   ConnHandle ──mailbox──► ┌───▼──────┐      ┌────▼─────┐      ┌─────▼────┐
//!   LoopHandle   +eventfd   │ IO thread│      │ IO thread│  …   │ IO thread│
//!   Shutdown                │  epoll   │      │  epoll   │      │  epoll   │
//!                           │ handler  │      │ handler  │      │ handler  │
//!                           │ conns    │      │ conns    │      │ conns    │
//!                           │ timers   │      │ timers   │      │ timers   │
//!                           │ buffers  │      │ buffers  │      │ buffers  │
//!                           └──────────┘      └──────────┘      └──────────┘
//! ```
//!
//! A connection lives on the thread that accepted it for its whole life, so the hot path
//! takes no lock: one `epoll_wait` serves every ready socket, and an echoed message costs one
//! `readv` and one `send`, with buffers recycled through a per-thread [`BufferPool`].
//!
//! ## Example
//!
//! ```
//! use kingpin::{Conn, EpollTPServer, IoHandler, ServerConfig};
//! use std::io::{Read, Write};
//!
//! /// Answers "Hello, kingpin!" and closes once the answer is written.
//! struct Hello;
//!
//! impl IoHandler for Hello {
//!     fn on_connect(&mut self, conn: &mut Conn<'_>) {
//!         conn.send(b"Hello, kingpin!\n");
//!     }
//!     fn on_write_complete(&mut self, conn: &mut Conn<'_>) {
//!         conn.close();
//!     }
//! }
//!
//! let server = EpollTPServer::from_fn(ServerConfig::default().threads(2), || Hello).start()?;
//! let mut reply = String::new();
//! std::net::TcpStream::connect(server.local_addr())?.read_to_string(&mut reply)?;
//! assert_eq!(reply, "Hello, kingpin!\n");
//! server.shutdown();
//! server.join()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## Threads
//!
//! - [`IoHandler`] callbacks, [`Conn`] and [`LoopCtx`] live on one IO thread: no locks.
//! - [`ConnHandle`], [`LoopHandle`], [`Shutdown`] and [`ServerHandle`] may be used from any
//!   thread; they reach a loop through its mailbox and wake it through an eventfd.
//!
//! See `docs/architecture.md` in the repository for the design.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod acceptor;
mod budget;
pub mod buffer;
pub mod buffer_pool;
mod client;
mod config;
mod connection;
mod connector;
pub mod context;
mod dispatch;
mod error;
mod event_loop;
mod handle;
mod handler;
mod idle;
mod io_ctx;
pub mod logger;
mod loop_ctx;
mod loop_group;
mod mailbox;
mod server;
mod signal;
mod slab;
mod stats;
mod sys;
mod target;
mod target_pool;
mod timer;
mod waker;

pub use buffer::Buffer;
pub use buffer_pool::BufferPool;
pub use client::{ClientHandle, EpollTPClient};
pub use config::{ClientConfig, PanicPolicy, ServerConfig};
pub use connection::{Conn, Output};
pub use context::{run_cancellable, run_cancellable_with, run_with_timeout, CancelToken, ContextError};
pub use error::Error;
pub use event_loop::LoopCtx;
pub use handle::{ConnHandle, LoopHandle};
pub use handler::{CloseReason, IoHandler};
pub use idle::{IdleAction, IdleKind, IdleTimeouts};
pub use logger::{AsyncLogger, InitError, LogLine, LoggerBuilder, LoggerGuard, LoggerStats};
pub use server::{EpollTPServer, ServerHandle, Shutdown};
pub use signal::{on_termination, SignalShutdown};
pub use slab::ConnId;
pub use stats::Stats;
pub use target::{ConnectFailure, Reconnect, Target};
pub use target_pool::TargetPool;
pub use timer::TimerId;
