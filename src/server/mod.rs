//! The server: [`tcp_server::EpollTPServer`] binds a listening socket and runs N loops whose
//! role is an [`acceptor::Acceptor`], taking turns at the listener through the accept mutex.

pub(crate) mod accept_mutex;
pub(crate) mod acceptor;
pub(crate) mod config;
pub(crate) mod tcp_server;
