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
//! `recv` and one `send` (the sends of a callback are gathered into one write), with buffers
//! recycled through a per-thread [`BufferPool`]. Each connection keeps the handler's typed
//! [`IoHandler::ConnState`] inline.
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
//!     type ConnState = ();
//!
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
//! ## Layers
//!
//! Each folder of the source is a layer that uses only the layers below it:
//! `sys` (every syscall and `unsafe`) ← `base` (ids, timers, counters) ← `io` (buffers),
//! `logger` ← `conn` (one connection: state machine, write path, [`Conn`]) ← `reactor` (the
//! event loop, generic over its role) ← `server` and `client` (the acceptor and the connector
//! roles). See `docs/architecture.md` in the repository for the design.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod base;
mod client;
pub mod codec;
mod conn;
pub mod context;
mod io;
pub mod logger;
mod proxy;
mod reactor;
mod server;
mod sys;
mod tls;
mod work;

pub use io::{buffer, buffer_pool};

pub use base::error::Error;
pub use base::slab::ConnId;
pub use base::stats::Stats;
pub use base::timer::TimerId;
pub use client::config::ClientConfig;
pub use client::target_pool::TargetPool;
pub use client::tcp_client::{ClientHandle, EpollTPClient};
pub use codec::{Decoder, Encoder, FixedHeader, FrameError, LengthPrefixed, LinesCodec};
pub use conn::close::CloseReason;
pub use conn::handle::ConnHandle;
pub use conn::idle::{IdleAction, IdleKind, IdleTimeouts};
pub use conn::job::JobError;
pub use conn::target::{ConnectFailure, Reconnect, Target};
pub use conn::view::{Conn, Output, Parts};
pub use context::{run_cancellable, run_cancellable_with, run_with_timeout, ContextError};
pub use io::buffer::Buffer;
pub use io::buffer_pool::BufferPool;
pub use logger::{AsyncLogger, InitError, LogLine, LoggerBuilder, LoggerGuard, LoggerStats};
pub use proxy::{
    encode_proxy_v1, encode_proxy_v2, encode_proxy_v2_local, parse_proxy_header, Parsed, ProxyCommand, ProxyError,
    ProxyHeader, ProxyVersion, MAX_V1_HEADER, MAX_V2_HEADER,
};
pub use reactor::config::PanicPolicy;
pub use reactor::handler::{IoHandler, LoopCtx, LoopHandle};
pub use reactor::shutdown::Shutdown;
pub use reactor::signal::{on_restart_signal, on_termination, SignalShutdown};
pub use server::config::ServerConfig;
pub use server::handover::Handover;
pub use server::listeners::{ListenerSource, Listeners};
pub use server::proxy_protocol::ProxyProtocol;
pub use server::strategy::AcceptStrategy;
pub use server::tcp_server::{EpollTPServer, ServerHandle};
pub use tls::error::TlsError;
pub use tls::info::TlsInfo;
pub use work::cancel::CancelToken;
pub use work::pool::{WorkerPool, WorkerStats};

/// The README's code, compiled and run as doc tests so that it stays true to the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
