//! One connection: its state machine, its write path, the typed view a callback gets
//! ([`view::Conn`]), and the handle that reaches it from other threads. Knows nothing of the
//! loop that drives it beyond the services it borrows ([`env::Env`]).

pub(crate) mod close;
pub(crate) mod connection;
pub(crate) mod env;
pub(crate) mod handle;
pub(crate) mod idle;
pub(crate) mod inbox;
pub(crate) mod intro;
pub(crate) mod job;
pub(crate) mod outbound;
pub(crate) mod state;
pub(crate) mod target;
pub(crate) mod view;
