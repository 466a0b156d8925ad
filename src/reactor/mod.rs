//! The reactor: one event loop per IO thread, one epoll each, serving connections for a
//! [`role::Role`] it knows only through that trait — it names neither the server nor the
//! client. Also the user's side of a loop ([`handler::IoHandler`], [`handler::LoopCtx`]), the
//! handles and mailbox that reach a loop from other threads, timers, the memory budget, load
//! balancing between loops, and the group of loops with its shutdown.

pub(crate) mod balance;
pub(crate) mod budget;
pub(crate) mod callback;
pub(crate) mod command;
pub(crate) mod config;
pub(crate) mod dispatch;
pub(crate) mod event_loop;
pub(crate) mod handler;
pub(crate) mod jobs;
pub(crate) mod loop_core;
pub(crate) mod loop_group;
pub(crate) mod mailbox;
pub(crate) mod memory;
pub(crate) mod parts;
pub(crate) mod proxy;
pub(crate) mod role;
pub(crate) mod settle;
pub(crate) mod shutdown;
pub(crate) mod signal;
pub(crate) mod teardown;
pub(crate) mod timers;
pub(crate) mod tls;
pub(crate) mod token;
pub(crate) mod waker;
