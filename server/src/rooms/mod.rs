//! The rooms service on `/ws`: publish/subscribe with presence.
//!
//! - [`hub`]: the registry of rooms and the fan-out (serialise once, share
//!   the bytes);
//! - [`outbox`]: each client's direct path to its socket, its bounded
//!   queue, and the slow-client policy;
//! - [`history`]: each room's epoch ([`epoch`]), offsets and last
//!   messages, for recovery after a reconnect;
//! - [`post`]: a published message, encoded once it has its offset;
//! - [`client`]: one connection's side of the protocol (`duplex-protocol`).
//!
//! The connection code (`crate::connection`) owns the socket and shares it
//! with the [`Outbox`] (`crate::wire::SharedWriter`): it hands data
//! messages to [`Client::handle`] and writes out what the outbox queued.

mod client;
mod epoch;
mod history;
mod hub;
mod outbox;
mod post;

pub(crate) use client::{Abusive, Client, Limits};
pub(crate) use epoch::Epoch;
pub(crate) use hub::{Engine, Hub};
pub(crate) use outbox::Outbox;
pub(crate) use post::{Body, Post};
