//! The server: [`tcp_server::EpollTPServer`] binds the listening socket(s) and runs N loops
//! whose role is an [`acceptor::Acceptor`], sharing the accepting as the
//! [`strategy::AcceptStrategy`] says (by default, turns at one listener through the accept
//! mutex).

pub(crate) mod accept_shared;
pub(crate) mod acceptor;
pub(crate) mod config;
pub(crate) mod handover;
pub(crate) mod listeners;
pub(crate) mod proxy_protocol;
pub(crate) mod strategy;
pub(crate) mod tcp_server;
