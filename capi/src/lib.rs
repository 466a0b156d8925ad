//! # kingpin's C and C++ API
//!
//! `libkingpin.so` / `libkingpin.a` and the header `kingpin.h` (generated from this crate by
//! cbindgen; `kingpin.hpp` wraps it for C++17). The same reactor as the Rust crate: a server
//! or client with N IO threads, one epoll each; the C program gives a struct of callbacks
//! ([`kp_handler`]) and gets them on the IO threads with a [`kp_conn`] that is valid until the
//! callback returns, and [`kp_handle`]s that reach a connection from any thread.
//!
//! Every function returns a status (`KP_OK` or a negative `KP_ERR_*`) or NULL on failure, with
//! [`kp_last_error_message`] saying why; none lets a Rust panic reach C. The ownership rules
//! are at the top of `kingpin.h` and, with a picture, in `docs/c-api.md`.
//!
//! Layers: this crate uses only the public API of `kingpin`, as any other user does.
//!
//! ```text
//!  status ─ ffi ─ config ─ tls ─ stats ─ running ─ log   (no kingpin callback involved)
//!     └────── conn (kp_conn tokens) ─ handle (kp_handle)
//!                  └──── handler (kp_handler → IoHandler)
//!                              └──── server (kp_server) ─ client (kp_client)
//! ```

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
// The exported names follow C conventions (`kp_conn`, `kp_server_start`).
#![allow(non_camel_case_types)]

pub mod client;
pub mod config;
pub mod conn;
mod ffi;
pub mod handle;
pub mod handler;
pub mod log;
mod running;
pub mod server;
pub mod stats;
pub mod status;
pub mod tls;

pub use client::*;
pub use config::*;
pub use conn::{kp_conn, *};
pub use handle::*;
pub use handler::*;
pub use log::*;
pub use server::*;
pub use stats::*;
pub use status::*;
pub use tls::*;
