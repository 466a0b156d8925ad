//! The client: [`tcp_client::EpollTPClient`] runs N loops whose role is a
//! [`connector::Connector`], taking targets from a shared [`target_pool::TargetPool`] and
//! connecting them without blocking.

pub(crate) mod config;
pub(crate) mod connector;
pub(crate) mod resolver;
pub(crate) mod target_pool;
pub(crate) mod tcp_client;
